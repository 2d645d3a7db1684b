// Reliability of compiled models (issue 10): concurrent callers each get their own result, an
// empty batch is an empty result, a caller's mistake is an `ArgumentError`/`InputError` that
// never downgrades the backend, and returned tensors never alias inputs or weights.
import assert from "node:assert/strict";
import {
  ArgumentError,
  type BackendName,
  batchAxisSymbol,
  compile,
  type Graph,
  graph,
  InputError,
  patchEmbedding,
  seedTokenizer,
  type TensorData,
} from "../mod.ts";
import { probeWebGpu } from "../codegen/backends/webgpu_device.ts";
import { maxError } from "./helpers.ts";

const adapter = await probeWebGpu();
const BACKENDS: { name: BackendName; tolerance: number; ignore: boolean }[] = [
  { name: "reference", tolerance: 0, ignore: false },
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
    data[i] = s / 2 ** 32 - 0.5;
  }
  return { shape, data };
}

// A timm patch embedding large enough that js/wasm split it across threads (a conv GEMM).
const standard = (): Graph =>
  patchEmbedding({ height: 32, width: 32, patch: 8, embedding: 48, channels: 3 });
const seed = (): Graph => seedTokenizer({ height: 32, width: 32, patch: 8, embedding: 16 });

function collectWarnings(): { warnings: string[]; onWarning: (m: string) => void } {
  const warnings: string[] = [];
  return { warnings, onWarning: (m) => warnings.push(m) };
}

for (const { name, tolerance, ignore } of BACKENDS) {
  Deno.test({
    name: `${name}: 24 concurrent run() calls each return their own input's result`,
    ignore,
    async fn() {
      const g = standard();
      const inputs = Array.from({ length: 24 }, (_, i) => image([2, 3, 32, 32], 100 + i));
      const oracle = await compile(g, { backend: "reference" });
      const expected: Float32Array[] = [];
      for (const x of inputs) expected.push((await oracle.run({ image: x })).output.data);
      const { warnings, onWarning } = collectWarnings();
      const model = await compile(g, { backend: name, onWarning });
      await model.run({ image: inputs[0] }); // warm: buffers allocated, workers started
      const results = await Promise.all(inputs.map((x) => model.run({ image: x })));
      assert.equal(model.backend, name, warnings.join("; "));
      results.forEach(({ output }, i) => {
        const err = maxError(output.data, expected[i]);
        assert.ok(err <= tolerance, `caller ${i}: max error ${err} against its own reference`);
      });
      // Each caller owns its array: no two results share memory.
      assert.equal(new Set(results.map((r) => r.output.data.buffer)).size, results.length);
      model.dispose();
    },
  });

  Deno.test({
    name: `${name}: batch size 0 returns empty outputs and stages, without a fallback`,
    ignore,
    async fn() {
      for (const g of [standard(), seed()]) {
        const { warnings, onWarning } = collectWarnings();
        const model = await compile(g, { backend: name, onWarning });
        const empty = { shape: [0, 3, 32, 32], data: new Float32Array(0) };
        const { output, stages } = await model.run({ image: empty }, { stages: "all" });
        assert.deepEqual(output.shape, [0, ...g.outShape.slice(1)]);
        assert.equal(output.data.length, 0);
        for (const [label, value] of Object.entries(stages)) {
          assert.equal(value.shape[0], 0, label);
          assert.equal(value.data.length, 0, label);
        }
        assert.equal(model.backend, name);
        assert.deepEqual(model.fallbacks, []);
        assert.deepEqual(warnings, []);
        // Nothing was compiled for the empty batch: no backend was called.
        assert.match(model.explain(), /not compiled yet/);
        await assert.rejects(() => model.resident({ image: [0, 3, 32, 32] }), InputError);
        model.dispose();
      }
    },
  });
}

Deno.test("a caller's mistakes throw ArgumentError/InputError and never change the backend", async () => {
  const { warnings, onWarning } = collectWarnings();
  const model = await compile(standard(), { backend: "wasm", onWarning });
  const x = image([1, 3, 32, 32], 3);
  const before = (await model.run({ image: x })).output.data;
  // deno-lint-ignore no-explicit-any
  const raw = model as any; // JavaScript callers pass anything
  const mistakes: [string, () => Promise<unknown>, RegExp][] = [
    ["extra input set to null", () => raw.run({ image: x, mask: null }), /"mask" is not an input/],
    ["extra input", () => raw.run({ image: x, other: x }), /"other" is not an input/],
    ["inputs null", () => raw.run(null), /run: inputs must be an object/],
    ["input null", () => raw.run({ image: null }), /"image" must be \{ shape, data \}/],
    [
      "shape not an array",
      () => raw.run({ image: { shape: "1,3,32,32", data: x.data } }),
      /"image" shape must be an array/,
    ],
    [
      "negative dim",
      () => raw.run({ image: { shape: [-1, 3, 32, 32], data: x.data } }),
      /"image" shape must be an array of whole numbers >= 0/,
    ],
    ["unknown stage", () => model.run({ image: x }, { stages: ["nope"] }), /no stage "nope"/],
    ["stages not a list", () => raw.run({ image: x }, { stages: "tokens" }), /stages must be/],
    ["options null", () => raw.run({ image: x }, null), /run: options must be an object/],
    [
      "into not requested",
      () => model.run({ image: x }, { into: { tokens: new Float32Array(1) } }),
      /into names "tokens"/,
    ],
    ["prepare shapes null", () => raw.prepare(null), /shapes must be an object/],
  ];
  for (const [what, call, message] of mistakes) {
    await assert.rejects(call, (e: Error) => {
      assert.ok(e instanceof ArgumentError, `${what}: ${e.name}: ${e.message}`);
      assert.match(e.message, message, what);
      assert.equal(e.message.split("\n").length, 1, what);
      return true;
    });
  }
  await assert.rejects(() => raw.run({ image: x, mask: null }), InputError);
  assert.equal(model.backend, "wasm");
  assert.deepEqual(model.fallbacks, []);
  assert.deepEqual(warnings, []);
  const after = (await model.run({ image: x })).output.data;
  assert.deepEqual(after, before);
  model.dispose();
});

Deno.test("compile(): bad options and weights are ArgumentErrors naming the option", async () => {
  const g = standard();
  // deno-lint-ignore no-explicit-any
  const loose = compile as (g: unknown, o?: any) => Promise<unknown>;
  const cases: [unknown, unknown, RegExp][] = [
    [g, { weights: 5 }, /weights must be a Map/],
    [g, { weights: new Map([["patch_embed.proj.weight", { shape: [1] }]]) }, /must be \{ shape/],
    [g, { backend: "tpu" }, /unknown backend "tpu"/],
    [g, { threads: 0 }, /threads must be a positive whole number/],
    [g, { seed: "x" }, /seed must be a whole number/],
    [g, null, /options must be an object/],
    [{ nodes: [] }, {}, /first argument must be a Graph/],
  ];
  for (const [graphArg, options, message] of cases) {
    await assert.rejects(() => loose(graphArg, options), (e: Error) => {
      assert.ok(e instanceof ArgumentError, `${e.name}: ${e.message}`);
      assert.match(e.message, message);
      return true;
    });
  }
});

Deno.test("compile(): weights as a plain object work like a Map", async () => {
  const g = standard();
  const byMap = await compile(g, { backend: "reference", seed: 4 });
  const x = image([1, 3, 32, 32], 9);
  const weights = Object.fromEntries(
    g.params().map((p) => {
      const values = new Float32Array(p.shape.reduce<number>((a, d) => a * Number(d), 1));
      values.forEach((_, i) => (values[i] = ((i * 7919) % 13) / 13 - 0.5));
      return [p.attrs.name, { shape: p.shape as number[], data: values }];
    }),
  );
  const plain = await compile(g, { backend: "reference", weights });
  const map = await compile(g, { backend: "reference", weights: new Map(Object.entries(weights)) });
  assert.deepEqual((await plain.run({ image: x })).output, (await map.run({ image: x })).output);
  assert.notDeepEqual(
    (await plain.run({ image: x })).output,
    (await byMap.run({ image: x })).output,
  );
});

for (const name of ["reference", "wasm", "js"] as const) {
  Deno.test(`${name}: inputs and parameters asked for as stages are copies, on the same backend`, async () => {
    const g = graph("leaves", (b) => {
      const x = b.input("x", ["B", 4, 6]);
      const y = b.linear(x, { in: 6, out: 5, name: "fc" });
      return b.addParam(y, { name: "pos", shape: [1, 4, 5] });
    });
    const { warnings, onWarning } = collectWarnings();
    const model = await compile(g, { backend: name, onWarning });
    const x = image([2, 4, 6], 1);
    const a = await model.run({ x }, { stages: ["x", "pos", "fc.weight"] });
    assert.deepEqual(a.stages.x.data, x.data);
    assert.notEqual(a.stages.x.data.buffer, x.data.buffer);
    assert.deepEqual(a.stages.pos.shape, [1, 4, 5]);
    // A caller writing into a returned parameter changes nothing later.
    a.stages.pos.data.fill(1000);
    a.stages["fc.weight"].data.fill(1000);
    a.output.data.fill(1000);
    const b = await model.run({ x }, { stages: ["pos"] });
    assert.ok(b.stages.pos.data.every((v) => v !== 1000));
    assert.ok(b.output.data.every((v) => Math.abs(v) < 100));
    assert.equal(model.backend, name);
    assert.deepEqual(model.fallbacks, []);
    assert.deepEqual(warnings, []);
  });
}

Deno.test("reference: an output that is a view of the input is not the input's buffer", async () => {
  const g = graph("view", (b) => b.flatten(b.input("x", ["B", 2, 3]), 1, 2));
  const model = await compile(g, { backend: "reference" });
  const x = image([1, 2, 3], 5);
  const keep = x.data.slice();
  const { output } = await model.run({ x });
  output.data.fill(0);
  assert.deepEqual(x.data, keep);
});

Deno.test("threads above the core count are clamped with one warning", async () => {
  const cores = navigator.hardwareConcurrency;
  const { warnings, onWarning } = collectWarnings();
  const g = standard();
  const model = await compile(g, { backend: "wasm", threads: 512, onWarning });
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], new RegExp(`threads 512 is more than the ${cores} cores here`));
  const x = image([2, 3, 32, 32], 11);
  const { output } = await model.run({ image: x });
  const oracle = await compile(g, { backend: "reference" });
  assert.ok(maxError(output.data, (await oracle.run({ image: x })).output.data) <= 1e-5);
  model.dispose();
});

Deno.test("batchAxisSymbol: a graph with an op along the batch axis is never split", () => {
  const along = (axis: number): Graph =>
    graph(
      "softmax",
      (b) => b.softmax(b.linear(b.input("x", ["B", 4, 6]), { in: 6, out: 5, name: "fc" }), axis),
    );
  assert.equal(batchAxisSymbol(along(1)), "B");
  assert.equal(batchAxisSymbol(along(-1)), "B");
  assert.equal(batchAxisSymbol(along(0)), undefined);
  assert.equal(batchAxisSymbol(along(-3)), undefined);
});
