// The whole timm ViT (models/vit.ts) against timm ground truth: every stage of vit_micro on every
// backend, vit_tiny_patch16_224 from ../shared/fixtures/vit/ on every backend when present;
// timm's state_dict names; average pooling; the presets; the compile-time config checks.
import assert from "node:assert/strict";
import { compile, loadSafetensors, ShapeError, type TensorData, vit, VIT_PRESETS } from "../mod.ts";
import type { VitConfig } from "../models/vit.ts";
import { assertAttention, exists, fixtureTensor, MODEL_BACKENDS, scaledError } from "./helpers.ts";
import type { Equal, Expect, ShapeOf } from "./type_helpers.ts";

const BACKENDS = MODEL_BACKENDS;
const SMALL_TILE = { bm: 32, bn: 32, bk: 4, tm: 4, tn: 4 };
const TOLERANCE = 1e-4;
const MICRO = new URL("./fixtures/vit/vit_micro.safetensors", import.meta.url);
const TINY = new URL("../../shared/fixtures/vit/vit_tiny_patch16_224.safetensors", import.meta.url);

/** The `vit()` config of a fixture, from its timm `config` metadata and its input. */
function fixtureConfig(metadata: Record<string, string>, input: TensorData): VitConfig {
  const c = JSON.parse(metadata.config);
  const [, channels, height, width] = input.shape;
  return {
    image: [height, width],
    patch: c.patch_size,
    dim: c.embed_dim,
    depth: c.depth,
    heads: c.num_heads,
    classes: c.num_classes,
    mlpRatio: c.mlp_ratio ?? 4,
    pool: c.global_pool === "avg" ? "avg" : "token",
    channels,
  };
}

async function checkFixture(url: URL, backend: typeof BACKENDS[number]): Promise<void> {
  const { tensors, metadata } = await loadSafetensors(url);
  const input = fixtureTensor(tensors, "input");
  const config = fixtureConfig(metadata, input);
  const g = vit(config);
  const model = await compile(g, {
    backend,
    weights: tensors,
    ...(backend === "wgsl" ? { gemmTile: SMALL_TILE } : {}),
  });
  try {
    const { output, stages } = await model.run({ image: input }, { stages: "all" });
    assert.equal(model.backend, backend, `fell back: ${model.fallbacks.join("; ")}`);
    const names = [
      "tokens",
      "embedded",
      ...Array.from({ length: config.depth }, (_, i) => `blocks.${i}`),
      "features",
      "pooled",
      "logits",
    ];
    const maps = Array.from({ length: config.depth }, (_, i) => `blocks.${i}.attn`);
    assert.deepEqual(Object.keys(stages).sort(), [...names, ...maps].sort());
    const tokens = fixtureTensor(tensors, "embedded").shape[1];
    for (const m of maps) assertAttention(stages[m], config.heads, tokens);
    const errors: Record<string, number> = {};
    for (const name of names) {
      errors[name] = scaledError(stages[name], fixtureTensor(tensors, name));
    }
    errors.output = scaledError(output, fixtureTensor(tensors, "logits"));
    console.log(`${url.pathname.split("/").pop()} on ${backend}:`, errors);
    for (const [name, err] of Object.entries(errors)) {
      assert.ok(err <= TOLERANCE, `${name}: scaled error ${err} > ${TOLERANCE}`);
    }
  } finally {
    model.dispose();
  }
}

for (const backend of BACKENDS) {
  Deno.test(`vit matches timm on vit_micro (every stage to the logits) on ${backend}`, async () => {
    await checkFixture(MICRO, backend);
  });
}
// vit_tiny on every backend too: 2-11 s each here (wgsl and gpu.js on llvmpipe the slowest).
for (const backend of BACKENDS) {
  Deno.test({
    name: `vit matches timm on vit_tiny_patch16_224 (every stage) on ${backend}`,
    ignore: !exists(TINY),
    fn: () => checkFixture(TINY, backend),
  });
}

Deno.test("vit has timm's state_dict names, in timm's order", async () => {
  const { metadata } = await loadSafetensors(MICRO);
  const g = vit({ image: 32, patch: 8, dim: 32, depth: 2, heads: 2, classes: 10 });
  assert.deepEqual(g.params().map((p) => p.attrs.name), metadata.param_names.split(","));
});

Deno.test("average pooling: fc_norm of the mean over the patch tokens, and no final norm", async () => {
  const config = {
    image: 16,
    patch: 8,
    dim: 8,
    depth: 1,
    heads: 2,
    classes: 3,
    pool: "avg",
  } as const;
  const g = vit(config);
  const names = g.params().map((p) => p.attrs.name);
  assert.ok(names.includes("fc_norm.weight") && !names.includes("norm.weight"), names.join(", "));
  const model = await compile(g, { backend: "reference" });
  const image = {
    shape: [2, 3, 16, 16],
    data: Float32Array.from({ length: 2 * 3 * 256 }, (_, i) => Math.sin(i)),
  };
  const { stages } = await model.run({ image }, { stages: ["features", "pooled", "blocks.0"] });
  // features is the last block's output (timm's norm is the identity with avg pooling).
  assert.deepEqual(stages.features.data, stages["blocks.0"].data);
  // pooled = LayerNorm(mean over tokens 1..N) with fc_norm's initial weight 1 and bias 0.
  const [, n, d] = stages.features.shape;
  for (let b = 0; b < 2; b++) {
    const mean = Array.from({ length: d }, (_, j) => {
      let s = 0;
      for (let t = 1; t < n; t++) s += stages.features.data[(b * n + t) * d + j];
      return s / (n - 1);
    });
    const mu = mean.reduce((a, v) => a + v, 0) / d;
    const variance = mean.reduce((a, v) => a + (v - mu) ** 2, 0) / d;
    for (let j = 0; j < d; j++) {
      const want = (mean[j] - mu) / Math.sqrt(variance + 1e-6);
      assert.ok(Math.abs(stages.pooled.data[b * d + j] - want) < 1e-4, `pooled[${b}, ${j}]`);
    }
  }
  model.dispose();
});

Deno.test("vit is typed from its config: exact output, rectangular images, presets", () => {
  const rect = vit({ image: [64, 32], patch: 16, dim: 32, depth: 1, heads: 4, classes: 7 });
  const base = vit(VIT_PRESETS.vit_base_patch16_224);
  const fixed = vit({ image: 32, patch: 8, dim: 32, depth: 0, heads: 2, classes: 10, batch: 4 });
  // A preset chosen at run time: each member of the union is checked on its own.
  const name = "vit_small_patch32_384" as keyof typeof VIT_PRESETS;
  const chosen = vit(VIT_PRESETS[name]);
  const types: [
    Expect<Equal<ShapeOf<typeof rect>, readonly ["B", 7]>>,
    Expect<Equal<ShapeOf<typeof base>, readonly ["B", 1000]>>,
    Expect<Equal<ShapeOf<typeof fixed>, readonly [4, 10]>>,
    Expect<Equal<ShapeOf<typeof chosen>, readonly ["B", 1000]>>,
  ] = [true, true, true, true];
  assert.deepEqual(chosen.find("pos_embed")?.shape, [1, 145, 384]);
  assert.ok(types);
  assert.deepEqual(rect.outShape, ["B", 7]);
  assert.deepEqual(rect.find("embedded")?.shape, ["B", 4 * 2 + 1, 32]);
  assert.deepEqual(base.outShape, ["B", 1000]);
  assert.deepEqual(base.find("pos_embed")?.shape, [1, 197, 768]);
  assert.deepEqual(fixed.outShape, [4, 10]);
  assert.equal(Object.keys(VIT_PRESETS).length, 14);
});

Deno.test("a config whose heads do not divide the width, or whose patch does not divide the image, is a compile error and a one-line ShapeError", () => {
  const oneLine = (why: RegExp) => (e: unknown) => {
    assert.ok(e instanceof ShapeError && e.op === "vit", String(e));
    assert.ok(!e.message.includes("\n"), e.message);
    assert.match(e.message, why);
    return true;
  };
  assert.throws(
    // @ts-expect-error vit: dim 32 is not divisible by heads 5
    () => vit({ image: 32, patch: 8, dim: 32, depth: 1, heads: 5, classes: 10 }),
    oneLine(/dim 32 is not divisible by heads 5$/),
  );
  assert.throws(
    // @ts-expect-error vit: image width 36 is not divisible by patch 8
    () => vit({ image: [32, 36], patch: 8, dim: 32, depth: 1, heads: 2, classes: 10 }),
    oneLine(/image width 36 is not divisible by patch 8$/),
  );
  const sizes: VitConfig = { image: 30, patch: 8, dim: 32, depth: 1, heads: 2, classes: 10 };
  assert.throws(() => vit(sizes), oneLine(/image height 30 is not divisible by patch 8$/));
});
