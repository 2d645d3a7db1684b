// The `native` backend: the js backend with its matrix multiplies on a system BLAS. Checked
// against the reference on the products it takes (a Linear, a conv's patches, attention's
// activation-by-activation products, float32 overflow), its fallback without --allow-ffi, the
// panel unpacking, and which attention operands sgemm reads in place. CI installs OpenBLAS and sets TESSERA_REQUIRE_NATIVE, so nothing skips there.
import assert from "node:assert/strict";
import { compile, graph, initParams, seedTokenizer, type TensorData } from "../mod.ts";
import { patchEmbedding } from "../models/vit_tokenizer.ts";
import { directEpilogue, unpackPanels } from "../codegen/render/js/blas_contraction.ts";
import { loadBlas } from "../codegen/backends/native_blas.ts";
import { strideView } from "../codegen/backends/blas_plan.ts";
import { findContraction } from "../codegen/passes/contraction.ts";
import { lowerProgram } from "../codegen/passes/pipeline.ts";
import { GEMM_TILE } from "../codegen/render/wasm/gemm_kernel.ts";
import { specialize } from "../graph/specialize.ts";
import { encoderBlock } from "../models/vit_encoder.ts";
import { lcgValues, NATIVE_AVAILABLE, scaledError } from "./helpers.ts";

const REQUIRED = Deno.env.get("TESSERA_REQUIRE_NATIVE") === "1";

Deno.test({
  name: "native: OpenBLAS loads where CI installed it",
  ignore: !REQUIRED,
  fn() {
    const blas = loadBlas(2);
    assert.ok(typeof blas !== "string", `native backend unavailable in CI: ${blas}`);
  },
});

Deno.test("native: panels unpack to row-major B", () => {
  // k = 3, nPadded = 4, nr = 2: panel p holds columns 2p, 2p+1 for every k.
  const packed = Float32Array.from({ length: 12 }, (_, i) => i);
  const b = unpackPanels(packed, 3, 4, 2);
  // Row kk, column col = panel * 2 + j comes from packed[panel * 6 + kk * 2 + j].
  assert.deepEqual([...b], [0, 1, 6, 7, 2, 3, 8, 9, 4, 5, 10, 11]);
});

async function agreesWithReference(
  g: Parameters<typeof compile>[0],
  inputs: Record<string, TensorData>,
): Promise<void> {
  const weights = initParams(g, 0);
  const want = await compile(g, { backend: "reference", weights });
  const got = await compile(g, { backend: "native", weights });
  try {
    assert.equal(got.backend, "native", got.fallbacks.join("; "));
    const a = await want.run(inputs, { stages: "all" });
    const b = await got.run(inputs, { stages: "all" });
    assert.ok(
      scaledError(b.output, a.output) <= 1e-5,
      `output: ${scaledError(b.output, a.output)}`,
    );
    for (const [name, value] of Object.entries(a.stages)) {
      assert.ok(scaledError(b.stages[name], value) <= 1e-5, name);
    }
    assert.match(got.explain(), /sgemm/);
  } finally {
    want.dispose();
    got.dispose();
  }
}

Deno.test({
  name: "native: Linear + GELU, conv patches and attention products match the reference",
  ignore: !NATIVE_AVAILABLE,
  async fn() {
    const g = graph("mix", (b) => {
      const image = b.input("image", ["B", 3, 16, 16]);
      const conv = b.conv2d(image, { out: 24, kernel: 4, stride: 4, name: "proj" });
      const tokens = b.label(b.transpose(b.flatten(conv, 2, 3), 1, 2), "tokens"); // [B, 16, 24]
      const h = b.gelu(b.linear(tokens, { in: 24, out: 40, name: "fc" }));
      const q = b.reshape(b.linear(h, { in: 40, out: 24, name: "q" }), ["B", 16, 2, 12]);
      const heads = b.transpose(q, 1, 2); // [B, 2, 16, 12]
      const scores = b.softmax(b.matmul(heads, b.transpose(heads, -2, -1)), -1);
      return b.matmul(scores, heads); // [B, 2, 16, 12]
    });
    for (const batch of [1, 3]) {
      await agreesWithReference(g, { image: lcgValues([batch, 3, 16, 16], 7 + batch) });
    }
  },
});

Deno.test({
  name: "native: a product whose float32 sum overflows is summed again in float64",
  ignore: !NATIVE_AVAILABLE,
  async fn() {
    const g = graph(
      "overflow",
      (b) => b.linear(b.input("x", [2, 2]), { in: 2, out: 2, name: "w" }),
    );
    const weights = new Map([
      ["w.weight", { shape: [2, 2], data: Float32Array.of(4, -4, 1, 1) }],
      ["w.bias", { shape: [2], data: Float32Array.of(0, 0) }],
    ]);
    const x = { shape: [2, 2], data: Float32Array.of(3e38, 3e38, 1, 2) };
    const model = await compile(g, { backend: "native", weights });
    const { output } = await model.run({ x });
    model.dispose();
    // 3e38 * 4 + 3e38 * -4 is 0 exactly (the reference's value); 3e38 + 3e38 is Inf in float32.
    assert.equal(output.data[0], 0);
    assert.equal(output.data[1], Infinity);
    assert.deepEqual([...output.data.slice(2)], [-4, 3]);
  },
});

Deno.test("native: without --allow-ffi, compile falls back and says why", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tessera_native_" });
  try {
    const file = `${dir}/probe.ts`;
    await Deno.writeTextFile(
      file,
      `import { compile, graph } from ${JSON.stringify(new URL("../mod.ts", import.meta.url).href)};
const g = graph("g", (b) => b.linear(b.input("x", [2, 4]), { in: 4, out: 3, name: "fc" }));
const m = await compile(g, { backend: "native" });
console.log(JSON.stringify({ backend: m.backend, reason: m.reason }));
m.dispose();
`,
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-read", "--allow-env", file],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
    const result = JSON.parse(text.trim().split("\n").pop() as string);
    assert.notEqual(result.backend, "native");
    assert.match(result.reason, /requested native, unavailable .*--allow-ffi/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("native: timm attention's q·kᵀ and p·v read k and v in place from the qkv activation", () => {
  // Width 128, 2 heads of 64, 17 tokens, batch 2: qkv is [2, 17, 384], k at columns 128 + 64h.
  const g0 = graph("block", (b) => {
    const x = b.input("x", ["B", 17, 128]);
    return encoderBlock(b, x, { heads: 2, name: "blocks.0" });
  });
  const g = specialize(g0, { x: [2, 17, 128] }).graph;
  const program = lowerProgram(g, initParams(g0, 0), [g.output], { gpu: false });
  const views = program.kernels.flatMap((k) => {
    const c = findContraction(k, program, GEMM_TILE.nr);
    return c?.runtimeWeights ? [{ c, view: strideView(c, GEMM_TILE.nr) }] : [];
  });
  assert.equal(views.length, 2, "two products of activations: q·kᵀ and p·v");
  const [scores, mixed] = views;
  // Batch index = sample * 2 + head; each head's k (v) starts 64 columns after the last one.
  const bases = (offset: number): number[] =>
    Array.from({ length: 4 }, (_, b) => Math.floor(b / 2) * 17 * 384 + offset + (b % 2) * 64);
  assert.deepEqual(scores.view && { ...scores.view, bases: [...scores.view.bases] }, {
    buffer: scores.view?.buffer,
    bases: bases(128),
    ldb: 384,
    trans: true,
  });
  assert.deepEqual(mixed.view && { ...mixed.view, bases: [...mixed.view.bases] }, {
    buffer: mixed.view?.buffer,
    bases: bases(256),
    ldb: 384,
    trans: false,
  });
  assert.equal(scores.view?.buffer, mixed.view?.buffer, "both from the qkv activation");
  // sgemm does these epilogues itself: the qkv bias, the scale 1/sqrt(64), nothing, the proj
  // bias (the block's input is a graph input here, so its residual add is a kernel apart).
  // GELU and fc2's residual add stay epilogues.
  const epilogues = program.kernels.flatMap((k) => {
    const c = findContraction(k, program, GEMM_TILE.nr);
    return c ? [[k.ops.at(-1), directEpilogue(c)] as const] : [];
  });
  assert.deepEqual(epilogues.map(([op, d]) => [op?.replace(/_\d+$/, ""), d]), [
    ["linear", { alpha: 1, bias: "p_blocks_0_attn_qkv_bias" }],
    ["matmul", { alpha: 0.125, bias: undefined }],
    ["matmul", { alpha: 1, bias: undefined }],
    ["linear", { alpha: 1, bias: "p_blocks_0_attn_proj_bias" }],
    ["gelu", undefined],
    ["add", undefined],
  ]);
});

Deno.test({
  name: "auto: native for large weight matrices (standard tokenizer), wasm for the seed's",
  ignore: !NATIVE_AVAILABLE,
  async fn() {
    const sizes = { height: 224, width: 224, patch: 16, embedding: 768 };
    const cases = [[patchEmbedding(sizes), "native"], [seedTokenizer(sizes), "wasm"]] as const;
    for (const [g, want] of cases) {
      const model = await compile(g, { seed: 0 });
      try {
        assert.equal(model.backend, want, model.reason);
        if (want === "native") assert.match(model.reason, /for large weight matrices/);
      } finally {
        model.dispose();
      }
    }
  },
});
