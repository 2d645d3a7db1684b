import assert from "node:assert/strict";
import { initConv2d, initLinear, kaimingUniformBound, TorchGenerator } from "../graph/random.ts";
import { loadSafetensors } from "../io/safetensors.ts";

const FIXTURES = new URL("./fixtures/", import.meta.url);

interface IndexEntry {
  name: string;
  file: string;
  metadata: Record<string, string>;
}

const index: { fixtures: IndexEntry[] } = JSON.parse(
  await Deno.readTextFile(new URL("index.json", FIXTURES)),
);

/** Regenerates a fixture's parameters and input in PyTorch's construction order. */
function regenerate(meta: Record<string, string>): Map<string, Float32Array> {
  const [b, c, h, w, p, d, n] = [
    "batch",
    "channels",
    "height",
    "width",
    "patch_size",
    "embedding_size",
    "num_patches",
  ].map((k) => Number(meta[k]));
  const gen = new TorchGenerator(BigInt(meta.seed));
  const out = new Map<string, Float32Array>();
  if (meta.variant === "standard") {
    // timm order: patch_embed is built before cls_token / pos_embed.
    const conv = initConv2d(gen, d, c, p);
    out.set("patch_embed.proj.weight", conv.weight);
    out.set("patch_embed.proj.bias", conv.bias);
    out.set("cls_token", gen.randn(d));
    out.set("pos_embed", gen.randn((n + 1) * d));
  } else {
    const conv = initConv2d(gen, c, c, p);
    out.set("patch_extractor.patch_extractor.weight", conv.weight);
    out.set("patch_extractor.patch_extractor.bias", conv.bias);
    // The seed hard-codes a 3-input Linear; the generalized variant uses C.
    const lin = initLinear(gen, d, meta.variant === "seed" ? 3 : c);
    out.set("token_embedding.embedding.weight", lin.weight);
    out.set("token_embedding.embedding.bias", lin.bias);
    out.set("class_token_prepender.class_token_vector", gen.randn(d));
    out.set("positional_embedding.positional_embedding", gen.randn((n + 1) * d));
  }
  out.set("input", gen.rand(b * c * h * w));
  return out;
}

for (const entry of index.fixtures) {
  if (entry.metadata.variant === "preprocess") continue;
  Deno.test(`random: ${entry.name} parameters and input are bit-exact`, async () => {
    const file = await loadSafetensors(new URL(entry.file, FIXTURES));
    const got = regenerate(file.metadata);
    const expectedNames = ["input", ...file.metadata.param_names.split(",")];
    assert.deepEqual([...got.keys()].sort(), expectedNames.sort());
    for (const [name, data] of got) {
      const want = file.tensors.get(name);
      assert.ok(want, `${entry.name}: fixture lacks ${name}`);
      assert.equal(data.length, want.data.length, `${entry.name}/${name} length`);
      let mismatches = 0;
      let maxDiff = 0;
      for (let i = 0; i < data.length; i++) {
        if (data[i] !== want.data[i]) mismatches++;
        maxDiff = Math.max(maxDiff, Math.abs(data[i] - want.data[i]));
      }
      assert.equal(mismatches, 0, `${entry.name}/${name}: ${mismatches} differ, max ${maxDiff}`);
    }
  });
}

Deno.test("random: randn(100k) is standard normal", () => {
  const x = new TorchGenerator(1234).randn(100_000);
  let sum = 0;
  let sq = 0;
  for (const v of x) {
    assert.ok(Number.isFinite(v));
    sum += v;
    sq += v * v;
  }
  const mean = sum / x.length;
  const std = Math.sqrt(sq / x.length - mean * mean);
  assert.ok(Math.abs(mean) < 0.015, `mean ${mean}`);
  assert.ok(Math.abs(std - 1) < 0.015, `std ${std}`);
});

Deno.test("random: scalar randn path (n < 16) caches the second Box-Muller value", () => {
  const a = new TorchGenerator(7);
  const pair = a.randn(2);
  const b = new TorchGenerator(7);
  const first = b.randn(1);
  const second = b.randn(1); // served from the cache, no new draws
  assert.deepEqual([first[0], second[0]], [pair[0], pair[1]]);
  assert.deepEqual(a.rand(3), b.rand(3));
});

Deno.test("random: rand is in [0, 1) and seeds wrap to 32 bits", () => {
  const x = new TorchGenerator(5).rand(10_000);
  for (const v of x) assert.ok(v >= 0 && v < 1);
  assert.deepEqual(new TorchGenerator(2n ** 32n + 5n).rand(8), x.subarray(0, 8));
  assert.deepEqual(new TorchGenerator(-1).rand(4), new TorchGenerator(0xffffffff).rand(4));
  assert.throws(() => new TorchGenerator(0.5), RangeError);
  assert.throws(() => new TorchGenerator(0).uniform(1, 1, 0), RangeError);
});

Deno.test("random: kaimingUniformBound follows torch's double arithmetic", () => {
  for (const fan of [3, 64, 192, 768]) {
    assert.ok(Math.abs(kaimingUniformBound(fan) - 1 / Math.sqrt(fan)) < 1e-15);
  }
});
