// Every compiled backend against the PyTorch fixtures and the reference interpreter, plus the
// fallbacks: a missing adapter, an over-limit buffer, a kernel a backend cannot take.
import assert from "node:assert/strict";
import fc from "npm:fast-check@4.3.0";
import {
  type BackendName,
  compile,
  type Graph,
  graph,
  loadSafetensors,
  patchEmbedding,
  seedTokenizer,
  type TensorData,
} from "../mod.ts";
import { probeWebGpu } from "../codegen/backends/webgpu_device.ts";
import { graphForFixture, maxError } from "./helpers.ts";

const FIXTURES = new URL("./fixtures/", import.meta.url);
const index = JSON.parse(await Deno.readTextFile(new URL("index.json", FIXTURES)));
const adapter = await probeWebGpu();
if (!adapter) console.warn("backends_test: no WebGPU adapter here; webgpu cases are skipped");

const BACKENDS: { name: BackendName; tolerance: number; ignore: boolean }[] = [
  { name: "wasm", tolerance: 1e-5, ignore: false },
  { name: "js", tolerance: 1e-5, ignore: false },
  { name: "cpu", tolerance: 1e-5, ignore: false },
  { name: "webasm", tolerance: 1e-5, ignore: false },
  { name: "webgpu", tolerance: 1e-4, ignore: adapter === null },
  { name: "wgsl", tolerance: 1e-4, ignore: adapter === null },
];

function image(shape: number[], seed: number): TensorData {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = s / 2 ** 32;
  }
  return { shape, data };
}

const quiet = { onWarning: () => {} };

// Reductions long enough for the wasm backend's matrix multiply, with a row count (3 * 37) that
// is no multiple of its register or cache tiles, and 13 columns that it pads to 16.
function wideChain(): Graph {
  return graph("wide-chain", (g) => {
    const x = g.input("x", ["B", 37, 20]);
    const a = g.linear(x, { in: 20, out: 24, name: "a" });
    return g.linear(a, { in: 24, out: 13, name: "b" });
  });
}

// Four chained reductions: their intermediates share buffer slots (the plan reuses the first).
function linearChain(): Graph {
  return graph("linear-chain", (g) => {
    const x = g.input("x", ["B", 6, 10]);
    const a = g.linear(x, { in: 10, out: 12, name: "a" });
    const b = g.linear(a, { in: 12, out: 9, name: "b" });
    const c = g.linear(b, { in: 9, out: 11, name: "c" });
    return g.linear(c, { in: 11, out: 5, name: "d" });
  });
}

for (const { name, tolerance, ignore } of BACKENDS) {
  Deno.test({
    name: `${name}: every fixture, every stage, within ${tolerance}`,
    ignore,
    async fn() {
      for (const fixture of index.fixtures) {
        const file = await loadSafetensors(new URL(fixture.file, FIXTURES));
        const model = await compile(graphForFixture(file.metadata), {
          backend: name,
          weights: file.tensors,
          // llvmpipe compiles the default 128x128 GEMM tile in about 30 s a shape; the test of
          // wide matrix multiplies below runs it, the fixtures check a small tile's numbers.
          ...(name === "wgsl" ? { gemmTile: { bm: 32, bn: 32, bk: 4, tm: 4, tn: 4 } } : {}),
          ...quiet,
        });
        const input = file.tensors.get("input") as TensorData;
        const { output, stages } = await model.run({ image: input }, { stages: "all" });
        assert.equal(model.backend, name, `${fixture.name} fell back: ${model.fallbacks}`);
        for (const [stage, value] of Object.entries({ ...stages, output })) {
          const expected = file.tensors.get(stage) as TensorData;
          assert.deepEqual(value.shape, expected.shape, `${fixture.name}/${stage}`);
          const err = maxError(value.data, expected.data);
          assert.ok(err <= tolerance, `${fixture.name}/${stage}: error ${err} > ${tolerance}`);
        }
        model.dispose();
      }
    },
  });

  Deno.test({
    name: `${name}: hand-written graphs match the reference interpreter`,
    ignore,
    async fn() {
      const twoConvs = graph("two-convs", (g) => {
        const x = g.input("x", ["B", 2, 12, 12]);
        const a = g.conv2d(x, { out: 4, kernel: 3, stride: 1, padding: 1, name: "a" });
        return g.conv2d(a, { out: 3, kernel: 4, stride: 4, name: "b" }); // ["B", 3, 3, 3]
      });
      const transposeLinear = graph("transpose-linear", (g) => {
        const x = g.input("x", ["B", 5, 7]);
        const t = g.transpose(x, 1, 2); // ["B", 7, 5]
        const y = g.linear(t, { in: 5, out: 6, name: "proj" });
        return g.add(y, g.param("shift", [7, 1]));
      });
      const cases: [Graph, number[]][] = [
        [linearChain(), [2, 6, 10]],
        [wideChain(), [3, 37, 20]],
        [twoConvs, [2, 2, 12, 12]],
        [transposeLinear, [3, 5, 7]],
      ];
      for (const [g, shape] of cases) {
        const inputs = { x: image([...shape], 7) };
        const reference = await compile(g, { backend: "reference", seed: 3 });
        const model = await compile(g, { backend: name, seed: 3, ...quiet });
        const want = (await reference.run(inputs)).output;
        const got = (await model.run(inputs)).output;
        assert.equal(model.backend, name);
        assert.deepEqual(got.shape, want.shape);
        assert.ok(maxError(got.data, want.data) <= tolerance, `${g.name}`);
        model.dispose();
      }
    },
  });

  Deno.test({
    name: `${name}: random configs agree with the reference interpreter (fast-check)`,
    ignore,
    async fn() {
      const config = fc.record({
        batch: fc.integer({ min: 1, max: 3 }),
        channels: fc.integer({ min: 1, max: 4 }),
        patch: fc.integer({ min: 1, max: 5 }),
        rows: fc.integer({ min: 1, max: 4 }),
        cols: fc.integer({ min: 1, max: 4 }),
        embedding: fc.integer({ min: 1, max: 12 }),
        standard: fc.boolean(),
      });
      await fc.assert(
        fc.asyncProperty(config, async (c) => {
          const sizes = {
            height: c.rows * c.patch,
            width: c.cols * c.patch,
            patch: c.patch,
            embedding: c.embedding,
            channels: c.channels,
          };
          const g = c.standard
            ? patchEmbedding(sizes)
            : seedTokenizer({ ...sizes, generalized: true });
          const inputs = { image: image([c.batch, c.channels, sizes.height, sizes.width], 11) };
          const want = await (await compile(g, { backend: "reference" })).run(inputs, {
            stages: "all",
          });
          const model = await compile(g, { backend: name, ...quiet });
          const got = await model.run(inputs, { stages: "all" });
          model.dispose();
          assert.equal(model.backend, name);
          for (const [stage, value] of Object.entries({ ...got.stages, output: got.output })) {
            const expected = stage === "output" ? want.output : want.stages[stage];
            assert.deepEqual(value.shape, expected.shape, stage);
            assert.ok(maxError(value.data, expected.data) <= tolerance, stage);
          }
        }),
        { numRuns: name === "webgpu" || name === "wgsl" ? 6 : 15 },
      );
    },
  });
}

Deno.test("explain: the standard tokenizer is one kernel, the seed two", async () => {
  for (const backend of ["wasm", "js", "cpu", "webasm"] as const) {
    const standard = await compile(
      patchEmbedding({ height: 32, width: 32, patch: 8, embedding: 16 }),
      { backend },
    );
    await standard.run({ image: image([2, 3, 32, 32], 1) });
    const lines = standard.explain().split("\n").filter((l) => l.startsWith("kernel "));
    assert.equal(lines.length, 1, standard.explain());
    assert.match(lines[0], /^kernel 0: conv2d.*permute.*concat.*add.* launch 544 /);
    const seed = await compile(
      seedTokenizer({ height: 32, width: 32, patch: 8, embedding: 16 }),
      { backend },
    );
    await seed.run({ image: image([2, 3, 32, 32], 1) });
    const seedLines = seed.explain({ source: true }).split("\n");
    assert.equal(seedLines.filter((l) => l.startsWith("kernel ")).length, 2);
    assert.ok(seedLines.some((l) => l.includes("--- kernel 1 source ---")));
    assert.ok(seedLines.some((l) => /^kernel 1: .*reads .*c_0/.test(l)), "cls + pos[0] folded");
  }
});

Deno.test("fallback: a missing WebGPU adapter falls back to a CPU backend with one warning", async () => {
  const warnings: string[] = [];
  const model = await compile(seedTokenizer({ height: 16, width: 16, patch: 8, embedding: 4 }), {
    backend: "webgpu",
    adapter: () => Promise.resolve(null),
    onWarning: (m) => warnings.push(m),
  });
  assert.equal(model.backend, "wasm");
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], /requestAdapter\(\) returned null/);
  assert.match(model.reason, /fell back to wasm/);
  const { output } = await model.run({ image: image([1, 3, 16, 16], 2) });
  assert.deepEqual(output.shape, [1, 5, 4]);
});

Deno.test("fallback: auto without a real GPU picks a CPU backend and says why", async () => {
  const model = await compile(seedTokenizer({ height: 16, width: 16, patch: 8, embedding: 4 }), {
    adapter: () =>
      Promise.resolve({
        description: "llvmpipe",
        isFallbackAdapter: true,
        maxStorageBufferBindingSize: 1 << 30,
      }),
  });
  assert.equal(model.backend, "wasm");
  assert.match(model.reason, /llvmpipe is a fallback \(software\) adapter/);
});

Deno.test("fallback: a batch over the buffer limit is split, and still matches", async () => {
  const g = patchEmbedding({ height: 16, width: 16, patch: 8, embedding: 8 });
  const inputs = { image: image([6, 3, 16, 16], 5) };
  const want = (await (await compile(g, { backend: "reference" })).run(inputs)).output;
  // One image is 3*16*16*4 = 3072 bytes, so the limit admits batches of at most 2.
  const model = await compile(g, { backend: "cpu", maxBufferBytes: 2 * 3072 });
  const got = (await model.run(inputs)).output;
  assert.equal(model.backend, "cpu");
  assert.deepEqual(got.shape, [6, 5, 8]);
  assert.ok(maxError(got.data, want.data) <= 1e-5);
});

Deno.test("fallback: a parameter over the limit falls back to the next backend", async () => {
  const warnings: string[] = [];
  const g = patchEmbedding({ height: 16, width: 16, patch: 8, embedding: 8 });
  const model = await compile(g, {
    backend: "webasm",
    maxBufferBytes: 1024,
    onWarning: (m) => warnings.push(m),
  });
  const { output } = await model.run({ image: image([1, 3, 16, 16], 5) });
  // The wasm backend keeps host memory only, so the device limit does not apply to it.
  assert.equal(model.backend, "wasm");
  assert.equal(output.data.length, 5 * 8);
  assert.deepEqual(warnings, model.fallbacks);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], /webasm -> wasm: buffer .* needs \d+ bytes but the limit is 1024/);
});

Deno.test("fallback: a graph gpu.js cannot take runs on the next backend", async () => {
  const warnings: string[] = [];
  const g = graph("five-inputs", (b) => {
    const xs = [0, 1, 2, 3, 4].map((i) => b.input(`x${i}`, [2]));
    return xs.slice(1).reduce((acc, x) => b.add(acc, x), xs[0]);
  });
  const model = await compile(g, { backend: "webasm", onWarning: (m) => warnings.push(m) });
  const inputs = Object.fromEntries(
    [0, 1, 2, 3, 4].map((i) => [`x${i}`, { shape: [2], data: new Float32Array([i, 1]) }]),
  );
  const { output } = await model.run(inputs);
  assert.deepEqual([...output.data], [10, 5]);
  assert.equal(model.backend, "wasm");
  assert.match(warnings.join("\n"), /5 inputs are not supported/);
});

Deno.test("run(..., { into }) writes the caller's buffers on every backend, split batches too", async () => {
  const g = patchEmbedding({ height: 16, width: 16, patch: 8, embedding: 8 });
  const inputs = { image: image([4, 3, 16, 16], 9) };
  const want = (await (await compile(g, { backend: "reference" })).run(inputs)).output;
  for (const backend of ["reference", "wasm", "js", "cpu", "webasm"] as const) {
    for (const shared of [false, true]) {
      const n = 4 * 5 * 8;
      const output = shared ? new Float32Array(new SharedArrayBuffer(n * 4)) : new Float32Array(n);
      const model = await compile(g, { backend, onWarning: () => {} });
      const result = await model.run(inputs, { into: { output } });
      assert.equal(result.output.data, output, `${backend}: result is the caller's buffer`);
      assert.ok(maxError(output, want.data) <= 1e-5, backend);
      model.dispose();
    }
  }
  // A limit that forces two chunks: the halves land in the caller's buffer.
  const split = await compile(g, { backend: "cpu", maxBufferBytes: 2 * 3072 });
  const output = new Float32Array(4 * 5 * 8);
  await split.run(inputs, { into: { output } });
  assert.ok(maxError(output, want.data) <= 1e-5);
});

Deno.test("run(..., { into }) rejects a buffer of the wrong size before running", async () => {
  const g = patchEmbedding({ height: 16, width: 16, patch: 8, embedding: 8 });
  const model = await compile(g, { backend: "js" });
  await assert.rejects(
    () => model.run({ image: image([1, 3, 16, 16], 1) }, { into: { output: new Float32Array(3) } }),
    /into\.output must be a Float32Array of 40 values for \[1, 5, 8\]/,
  );
  await assert.rejects(
    () => model.run({ image: image([1, 3, 16, 16], 1) }, { into: { nope: new Float32Array(3) } }),
    /not output or a requested stage/,
  );
});

Deno.test("weight re-layout: the seed's Linear weights are read with unit stride", async () => {
  const g = seedTokenizer({ height: 32, width: 32, patch: 8, embedding: 16 });
  for (const backend of ["js", "cpu"] as const) {
    const model = await compile(g, { backend });
    await model.prepare({ image: [1, 3, 32, 32] });
    // The transposed copy [3, 16] replaces the [16, 3] weight in the fused output kernel.
    assert.match(model.explain(), /kernel 1: .*reads .*p_token_embedding_embedding_weight_T3/);
    model.dispose();
  }
});

Deno.test("auto on a real GPU adapter picks the WebGPU backends first", async () => {
  const model = await compile(seedTokenizer({ height: 16, width: 16, patch: 8, embedding: 4 }), {
    adapter: () =>
      Promise.resolve({
        description: "NVIDIA H100 80GB HBM3",
        isFallbackAdapter: false,
        maxStorageBufferBindingSize: 2 ** 31 - 4,
      }),
  });
  assert.equal(model.backend, "wgsl");
  assert.match(model.reason, /^auto: wgsl \(WebGPU\) on NVIDIA H100/);
  model.dispose();
});

Deno.test({
  name: "wgsl: resident runs keep tensors on the device and read back the same output",
  ignore: adapter === null,
  async fn() {
    const g = seedTokenizer({ height: 32, width: 32, patch: 8, embedding: 16 });
    const inputs = { image: image([2, 3, 32, 32], 4) };
    const want = (await (await compile(g, { backend: "reference" })).run(inputs)).output;
    const model = await compile(g, { backend: "wgsl" });
    const session = await model.resident({ image: [2, 3, 32, 32] });
    session.upload(inputs);
    for (let i = 0; i < 5; i++) session.run();
    await session.finish();
    const got = await session.read();
    assert.deepEqual(got.shape, [2, 17, 16]);
    assert.ok(maxError(got.data, want.data) <= 1e-4);
    model.dispose();
  },
});

Deno.test({
  name: "wgsl: wide matrix multiplies run as a tiled GEMM plus an epilogue, and match js",
  ignore: adapter === null,
  async fn() {
    // 2 x 17 rows and 80 columns: neither is a multiple of the 64 x 64 block.
    const g = patchEmbedding({ height: 32, width: 32, patch: 8, embedding: 80 });
    const inputs = { image: image([2, 3, 32, 32], 14) };
    const want = (await (await compile(g, { backend: "js" })).run(inputs)).output;
    const model = await compile(g, { backend: "wgsl" });
    const got = (await model.run(inputs)).output;
    assert.ok(maxError(got.data, want.data) <= 1e-4, `error ${maxError(got.data, want.data)}`);
    assert.match(model.explain(), /matrix multiply 34x192 by 192x80 as a tiled WGSL GEMM/);
    assert.match(model.explain({ source: true }), /--- kernel 0 source 2 ---/);
    model.dispose();
    // The seed's conv has 3 output channels: too narrow for GEMM blocks, and 192 taps are too
    // few to split.
    const seed = await compile(seedTokenizer({ height: 32, width: 32, patch: 8, embedding: 16 }), {
      backend: "wgsl",
    });
    await seed.prepare({ image: [1, 3, 32, 32] });
    assert.doesNotMatch(seed.explain(), /GEMM|split-reduction/);
    seed.dispose();
  },
});

Deno.test({
  name: "wgsl: narrow products with long reductions split each row over a thread group",
  ignore: adapter === null,
  async fn() {
    // 3 channels (padded to 4), 768 taps, 3 x 6 = 18 rows: not a whole number of 4-row groups.
    const g = seedTokenizer({ height: 48, width: 32, patch: 16, embedding: 8 });
    const inputs = { image: image([3, 3, 48, 32], 5) };
    const want = (await (await compile(g, { backend: "js" })).run(inputs)).output;
    const model = await compile(g, { backend: "wgsl" });
    const got = (await model.run(inputs)).output;
    assert.ok(maxError(got.data, want.data) <= 1e-4, `error ${maxError(got.data, want.data)}`);
    assert.match(model.explain(), /matrix multiply 18x768 by 768x3 as a split-reduction shader/);
    model.dispose();
  },
});

Deno.test("compile: a gemmTile the GEMM shader cannot use is refused up front", async () => {
  const g = patchEmbedding({ height: 16, width: 16, patch: 8, embedding: 8 });
  await assert.rejects(
    () => compile(g, { backend: "wgsl", gemmTile: { bm: 64, bn: 64, bk: 16, tm: 3, tn: 4 } }),
    /gemmTile 64x64x16\/3x4 cannot be used: bm 64 is not a multiple of tm 3/,
  );
  await assert.rejects(
    () => compile(g, { gemmTile: { bm: 128, bn: 128, bk: 8, tm: 4, tn: 4 } }),
    /1024 threads a workgroup; WebGPU guarantees 256/,
  );
});

Deno.test("resident runs on a host backend say which backend they need", async () => {
  const model = await compile(seedTokenizer({ height: 16, width: 16, patch: 8, embedding: 4 }), {
    backend: "js",
  });
  await assert.rejects(() => model.resident({ image: [1, 3, 16, 16] }), /need a device backend/);
});

Deno.test("wasm: matrix multiplies run on the WASM SIMD micro-kernel, the rest stays JS", async () => {
  const standard = await compile(
    patchEmbedding({ height: 224, width: 224, patch: 16, embedding: 768 }),
    { backend: "wasm" },
  );
  await standard.prepare({ image: [2, 3, 224, 224] });
  assert.match(
    standard.explain(),
    /kernel 0: conv2d.*matrix multiply 394x768 by 768x768 on WASM SIMD/,
  );
  standard.dispose();
  const chain = await compile(wideChain(), { backend: "wasm" });
  await chain.prepare({ x: [3, 37, 20] });
  const kernels = chain.explain({ source: true }).split("\n").filter((l) =>
    l.startsWith("kernel ")
  );
  assert.match(kernels[0], /matrix multiply 111x20 by 20x24/);
  assert.match(kernels[1], /matrix multiply 111x24 by 24x13/);
  chain.dispose();
  // The seed's conv multiplies along its channel axis; its 3-wide Linear is too short to be
  // worth a micro-kernel call.
  const seed = await compile(seedTokenizer({ height: 32, width: 32, patch: 8, embedding: 16 }), {
    backend: "wasm",
  });
  await seed.prepare({ image: [1, 3, 32, 32] });
  const seedKernels = seed.explain().split("\n").filter((l) => l.startsWith("kernel "));
  assert.match(seedKernels[0], /matrix multiply 16x192 by 192x3/);
  assert.doesNotMatch(seedKernels[1], /matrix multiply/);
  seed.dispose();
});

Deno.test("wasm: random Linear and conv sizes through the micro-kernel match the reference (fast-check)", async () => {
  const config = fc.record({
    batch: fc.integer({ min: 1, max: 3 }),
    rows: fc.integer({ min: 1, max: 23 }),
    features: fc.integer({ min: 16, max: 70 }),
    out: fc.integer({ min: 2, max: 37 }), // one column: a dot product, left to the loop nests
    conv: fc.boolean(),
  });
  await fc.assert(
    fc.asyncProperty(config, async (c) => {
      // Linear: [B, rows, features] -> [B, rows, out]. Conv 4x4 stride 4 over [B, cin, 8, 4 * rows]
      // -> [B, out, 2, rows], a reduction of cin * 16 along the channel axis.
      const cin = (c.features % 3) + 1;
      const g: Graph = c.conv
        ? graph("conv", (b) => {
          const x = b.input("x", ["B", cin, 8, 4 * c.rows]);
          return b.conv2d(x, { out: c.out, kernel: 4, stride: 4, name: "c" });
        })
        : graph("linear", (b) => {
          const x = b.input("x", ["B", c.rows, c.features]);
          return b.linear(x, { in: c.features, out: c.out, name: "l" });
        });
      const shape = c.conv ? [c.batch, cin, 8, 4 * c.rows] : [c.batch, c.rows, c.features];
      const inputs = { x: image(shape, c.rows) };
      const want = (await (await compile(g, { backend: "reference", seed: 5 })).run(inputs)).output;
      const model = await compile(g, { backend: "wasm", seed: 5 });
      const got = (await model.run(inputs)).output;
      assert.match(model.explain(), /matrix multiply/);
      model.dispose();
      assert.deepEqual(got.shape, want.shape);
      assert.ok(maxError(got.data, want.data) <= 1e-5, `error ${maxError(got.data, want.data)}`);
    }),
    { numRuns: 25 },
  );
});

Deno.test("wasm: rows an epilogue discards may point past the input, last rows included", async () => {
  // Tokens 5-904 are an appended parameter; their Linear input rows would lie up to 72 KB past the
  // end of x (and of WebAssembly memory), so they must borrow a valid row instead.
  const g = graph("append", (b) => {
    const x = b.input("x", [2, 5, 20]);
    const emb = b.linear(x, { in: 20, out: 16, name: "l" });
    const pad = b.expand(b.param("pad", [1, 900, 16]), [2, 900, 16]);
    return b.concat(emb, pad, 1);
  });
  const inputs = { x: image([2, 5, 20], 15) };
  const want = (await (await compile(g, { backend: "reference" })).run(inputs)).output;
  const model = await compile(g, { backend: "wasm" });
  const got = (await model.run(inputs)).output;
  assert.match(model.explain(), /matrix multiply 1810x20 by 20x16/);
  assert.ok(maxError(got.data, want.data) <= 1e-5, `error ${maxError(got.data, want.data)}`);
  model.dispose();
});

Deno.test("wasm: a batch larger than one staging window (1 MiB) matches the js backend", async () => {
  // 3 x 150528 inputs: each thread stages several windows, and tiles straddle image borders.
  const g = patchEmbedding({ height: 224, width: 224, patch: 16, embedding: 768 });
  const inputs = { image: image([3, 3, 224, 224], 12) };
  const js = await compile(g, { backend: "js" });
  const wasm = await compile(g, { backend: "wasm" });
  const want = (await js.run(inputs)).output;
  const got = (await wasm.run(inputs)).output;
  assert.ok(maxError(got.data, want.data) <= 1e-4, `error ${maxError(got.data, want.data)}`);
  js.dispose();
  wasm.dispose();
});

Deno.test("js and wasm: a NaN stops the run before anything is written, then runs go on", async () => {
  const g = patchEmbedding({ height: 224, width: 224, patch: 16, embedding: 64 });
  // 3 images: 451584 values, so the scan is split across threads; the NaN is in the last part.
  const good = image([3, 3, 224, 224], 13);
  const bad = { shape: good.shape, data: good.data.slice() };
  bad.data[450000] = NaN;
  for (const backend of ["js", "wasm"] as const) {
    const model = await compile(g, { backend });
    const output = new Float32Array(new SharedArrayBuffer(3 * 197 * 64 * 4)).fill(7);
    await assert.rejects(
      () => model.run({ image: bad }, { into: { output } }),
      /input "image" has NaN at flat index 450000; inputs must be finite/,
    );
    assert.ok(output.every((x) => x === 7), `${backend}: the caller's buffer is untouched`);
    const { output: after } = await model.run({ image: good }, { into: { output } });
    assert.ok(after.data.every(Number.isFinite));
    model.dispose();
  }
});

Deno.test({
  name: "wgsl: outputs read back in several mapped ranges arrive whole",
  ignore: adapter === null,
  async fn() {
    // 7 images: 1059072 output values, just over four 2^18-value ranges.
    const g = seedTokenizer({ height: 224, width: 224, patch: 16, embedding: 768 });
    const inputs = { image: image([7, 3, 224, 224], 8) };
    const want = (await (await compile(g, { backend: "js" })).run(inputs)).output;
    const model = await compile(g, { backend: "wgsl" });
    const got = (await model.run(inputs)).output;
    assert.ok(maxError(got.data, want.data) <= 1e-4, `error ${maxError(got.data, want.data)}`);
    model.dispose();
  },
});

Deno.test({
  name: "wgsl: NaN and infinities are caught on the device before anything is written",
  ignore: adapter === null,
  async fn() {
    const g = patchEmbedding({ height: 32, width: 32, patch: 8, embedding: 16 });
    const good = image([2, 3, 32, 32], 21);
    const model = await compile(g, { backend: "wgsl" });
    const output = new Float32Array(2 * 17 * 16).fill(7);
    for (const [at, value] of [[6143, NaN], [0, Infinity], [3000, -Infinity]]) {
      const bad = { shape: good.shape, data: good.data.slice() };
      bad.data[at] = value;
      await assert.rejects(
        () => model.run({ image: bad }, { into: { output } }),
        new RegExp(`input "image" has ${value} at flat index ${at}; inputs must be finite`),
      );
      assert.ok(output.every((x) => x === 7), "the caller's buffer is untouched");
    }
    const { output: after } = await model.run({ image: good }, { into: { output } });
    assert.ok(after.data.every(Number.isFinite));
    model.dispose();
  },
});

Deno.test("js and wasm: the threads option sets how many threads share each kernel", async () => {
  const g = patchEmbedding({ height: 224, width: 224, patch: 16, embedding: 64 });
  const inputs = { image: image([4, 3, 224, 224], 3) };
  const want = (await (await compile(g, { backend: "reference" })).run(inputs)).output;
  for (const backend of ["js", "wasm"] as const) {
    // Requests above the core count are clamped (reliability_test.ts), so 3 only where it fits.
    for (const threads of [1, Math.min(3, navigator.hardwareConcurrency)]) {
      const model = await compile(g, { backend, threads });
      const got = (await model.run(inputs)).output;
      assert.ok(maxError(got.data, want.data) <= 1e-5, `${backend} x${threads}`);
      const counts = [...model.explain().matchAll(/(\d+) threads?;/g)].map((m) => Number(m[1]));
      assert.ok(counts.length > 0 && counts.every((n) => n <= threads), model.explain());
      assert.ok(counts.includes(threads), `${backend}: some kernel uses all ${threads}`);
      model.dispose();
    }
  }
  for (const threads of [0, 1.5, -2]) {
    await assert.rejects(
      () => compile(g, { backend: "wasm", threads }),
      new RegExp(`compile: threads must be a positive whole number, got ${threads}`),
    );
  }
});

Deno.test("buffer planning: dead intermediates give their memory to later ones", async () => {
  const model = await compile(linearChain(), { backend: "js" });
  await model.prepare({ x: [2, 6, 10] });
  const plan = model.explain().split("\n").find((l) => l.startsWith("buffer plan:"));
  // a's output is dead once b has read it, so c's output takes its slot.
  assert.equal(plan, "buffer plan: t_linear_3->slot0, t_linear_6->slot1, t_linear_9->slot0");
  model.dispose();
});
