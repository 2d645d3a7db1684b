// The encoder ops at run time on every backend (reference, js, wasm, gpu.js cpu, webasm and
// webgpu, and wgsl): every op against the PyTorch fixtures in tests/fixtures/ops/ (copied from
// ../shared/fixtures/ops/), small hand-checked cases for the rest, the erf approximation's error
// over the float32 range, runtime shape errors, a property test that each shape rule agrees with
// its evaluation, and that js and wasm compile every op to kernels of their own, with no fallback.
// Each case's graph is built once and compiled on each backend in turn; a failure names the
// backend (the test step) and the case.
import assert from "node:assert/strict";
import fc from "npm:fast-check@4.3.0";
import {
  compile,
  type CompileOptions,
  type Graph,
  graph,
  type GraphBuilder,
  initParams,
  loadSafetensors,
  OPS,
  probeWebGpu,
  type Shape,
  ShapeError,
  specialize,
  type Tensor,
  type TensorData,
  type TShape,
  type Weights,
} from "../mod.ts";
import { erf, ERF_SERIES, ERF_TAIL } from "../ops/gelu.ts";
import type { OpDef } from "../ops/op.ts";
import { graphToDot } from "../viz/graph_diagram.ts";
import { maxError } from "./helpers.ts";

const FIXTURES = new URL("./fixtures/ops/", import.meta.url);
/** Against the fixtures: max |got - want| / max(1, max |want|), as tests/fixtures/ops asks. */
const TOLERANCE = 1e-5;
/** Against the reference interpreter, where a result is not exact in float32. */
const REFERENCE_TOLERANCE = 1e-6;

const BACKENDS = ["reference", "js", "wasm", "cpu", "webasm", "webgpu", "wgsl"] as const;
type TestBackend = typeof BACKENDS[number];
// wgsl with a small GEMM tile: llvmpipe compiles the default 128x128 tile for about 30 s a shape.
const SMALL_TILE = { bm: 32, bn: 32, bk: 4, tm: 4, tn: 4 };
const adapter = await probeWebGpu();
if (!adapter) console.warn("encoder_ops_test: no WebGPU adapter here; webgpu and wgsl are ignored");
const needsGpu = (backend: TestBackend) => backend === "webgpu" || backend === "wgsl";

async function fixture(name: string): Promise<Map<string, TensorData>> {
  return (await loadSafetensors(new URL(`${name}.safetensors`, FIXTURES))).tensors;
}

function tensor(file: Map<string, TensorData>, name: string): TensorData {
  const t = file.get(name);
  assert.ok(t, `fixture tensor ${name} is missing`);
  return t;
}

/** Runs a graph on `backend`, failing if it fell back, and returns its output. */
async function runOn(
  backend: TestBackend,
  g: Graph,
  inputs: Record<string, TensorData>,
  weights?: Weights,
): Promise<TensorData> {
  const warnings: string[] = [];
  const options: CompileOptions = {
    backend,
    weights,
    onWarning: (m) => warnings.push(m),
    ...(backend === "wgsl" ? { gemmTile: SMALL_TILE } : {}),
  };
  const model = await compile(g, options);
  try {
    const { output } = await model.run(inputs);
    assert.equal(model.backend, backend, `fell back: ${warnings.join("; ")}`);
    return output;
  } finally {
    model.dispose();
  }
}

/** Runs a graph on `reference` and returns its output. */
const runReference = (
  g: Graph,
  inputs: Record<string, TensorData>,
  weights?: Weights,
): Promise<TensorData> => runOn("reference", g, inputs, weights);

/** max |got - want| / max(1, max |want|): the fixtures' error measure (NaN when got has one). */
function scaledError(got: Float32Array, want: Float32Array): number {
  if (got.length !== want.length) return Infinity;
  let diff = 0;
  let scale = 1;
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i] - want[i]);
    diff = d > diff || Number.isNaN(d) ? d : diff;
    scale = Math.max(scale, Math.abs(want[i]));
  }
  return diff / scale;
}

/**
 * One graph run on every backend: its inputs (and weights), and what it must give: exactly
 * `want` when `tolerance` is absent, else `want` within `tolerance` in `scaledError`.
 */
interface Case {
  readonly name: string;
  readonly graph: Graph;
  readonly inputs: Record<string, TensorData>;
  readonly weights?: Weights;
  readonly want: TensorData;
  readonly tolerance?: number;
}

/** Why `got` is not what `c` wants, or null; `errors` gets its scaled and per-element errors. */
function mismatch(c: Case, got: TensorData, errors: [number, number][]): string | null {
  if (JSON.stringify(got.shape) !== JSON.stringify(c.want.shape)) {
    return `shape ${JSON.stringify(got.shape)}, want ${JSON.stringify(c.want.shape)}`;
  }
  if (c.want.data.every(Number.isFinite) && !got.data.every(Number.isFinite)) {
    return `non-finite values: ${got.data.find((v) => !Number.isFinite(v))}`;
  }
  if (c.tolerance === undefined) {
    const same = got.data.every((v, i) => v === c.want.data[i]);
    return same ? null : `got [${got.data}], want exactly [${c.want.data}]`;
  }
  const err = scaledError(got.data, c.want.data);
  errors.push([err, maxError(got.data, c.want.data)]);
  return err <= c.tolerance ? null : `scaled max error ${err} > ${c.tolerance}`;
}

/**
 * One step per backend, each running every case (reporting every case that fails, not just the
 * first), then one line per case with its max error on each backend.
 */
async function onEveryBackend(t: Deno.TestContext, cases: readonly Case[]): Promise<void> {
  const errors = new Map(cases.map((c) => [c.name, [] as string[]]));
  try {
    for (const backend of BACKENDS) {
      await t.step({
        name: backend,
        ignore: needsGpu(backend) && !adapter,
        fn: async () => {
          const wrong: string[] = [];
          for (const c of cases) {
            const seen: [number, number][] = [];
            try {
              const why = mismatch(c, await runOn(backend, c.graph, c.inputs, c.weights), seen);
              if (why) wrong.push(`${c.name}: ${why}`);
            } catch (e) {
              wrong.push(`${c.name}: ${e instanceof Error ? e.message : e}`);
            }
            for (const [scaled, elementwise] of seen) {
              const per = elementwise === scaled ? "" : ` (${elementwise.toExponential(1)}/elt)`;
              errors.get(c.name)?.push(`${backend} ${scaled.toExponential(1)}${per}`);
            }
          }
          if (wrong.length > 0) assert.fail(`on ${backend}:\n${wrong.join("\n")}`);
        },
      });
    }
  } finally {
    for (const [name, line] of errors) {
      if (line.length > 0) console.log(`${name} max error: ${line.join(", ")}`);
    }
  }
}

const td = (shape: number[], values: number[]): TensorData => ({
  shape,
  data: new Float32Array(values),
});

Deno.test("layerNorm matches F.layer_norm on every backend: affine (eps 1e-6) and init (eps 1e-5)", async (t) => {
  const f = await fixture("layer_norm");
  const x = tensor(f, "x");
  const affine = graph(
    "ln",
    (b) => b.layerNorm(b.input("x", ["B", 5, 48]), { name: "norm", eps: 1e-6 }),
  );
  const weights = new Map([["norm.weight", tensor(f, "weight")], ["norm.bias", tensor(f, "bias")]]);
  // Without loaded weights the LayerNorm params are PyTorch's init (ones, zeros): they come after
  // fc's in declaration order and draw nothing from the RNG.
  const withFc = graph("ln", (b) => {
    const input = b.input("x", [2, 5, 48]);
    return b.layerNorm(b.linear(input, { in: 48, out: 48, name: "fc" }), { name: "norm" });
  });
  const params = initParams(withFc, 0);
  assert.deepEqual([...params.keys()], ["fc.weight", "fc.bias", "norm.weight", "norm.bias"]);
  assert.ok(tensor(params, "norm.weight").data.every((v) => v === 1));
  assert.ok(tensor(params, "norm.bias").data.every((v) => v === 0));
  const plain = graph("ln", (b) => b.layerNorm(b.input("x", [2, 5, 48]), { name: "norm" }));
  assert.equal(plain.nodes.find((n) => n.op === "layer_norm")?.attrs.eps, 1e-5);
  const cases: Case[] = [
    { name: "layer_norm", graph: affine, inputs: { x }, weights, want: tensor(f, "layer_norm") },
    {
      name: "layer_norm_eps1e-5_noaffine",
      graph: plain,
      inputs: { x },
      want: tensor(f, "layer_norm_eps1e-5_noaffine"),
    },
  ];
  await onEveryBackend(t, cases.map((c) => ({ ...c, tolerance: TOLERANCE })));
});

Deno.test("softmax matches torch on every backend: last axis (a row overflows exp) and axis 1", async (t) => {
  const f = await fixture("softmax");
  const x = tensor(f, "x");
  // The fixture's shifted row really overflows float32 exp without the max subtraction.
  assert.ok(x.data.slice(0, 7).some((v) => Math.fround(Math.exp(v)) === Infinity));
  await onEveryBackend(
    t,
    ([[-1, "softmax_last"], [1, "softmax_axis1"]] as const).map(([axis, name]) => ({
      name,
      graph: graph("sm", (b) => b.softmax(b.input("x", ["B", 3, 7, 7]), axis)),
      inputs: { x },
      want: tensor(f, name),
      tolerance: TOLERANCE,
    })),
  );
});

Deno.test("gelu matches torch on every backend: exact (erf) and approximate='tanh'", async (t) => {
  const f = await fixture("gelu");
  const x = tensor(f, "x");
  const exact = graph("gelu", (b) => b.gelu(b.input("x", [1, 321])));
  // approximate: "none" is the default, so it builds the same graph.
  const none = graph("gelu", (b) => b.gelu(b.input("x", [1, 321]), { approximate: "none" }));
  assert.deepEqual(none.nodes, exact.nodes);
  const tanh = graph("gelu", (b) => b.gelu(b.input("x", [1, 321]), { approximate: "tanh" }));
  await onEveryBackend(t, [
    { name: "gelu", graph: exact, inputs: { x }, want: tensor(f, "gelu"), tolerance: TOLERANCE },
    {
      name: "gelu_tanh",
      graph: tanh,
      inputs: { x },
      want: tensor(f, "gelu_tanh"),
      tolerance: TOLERANCE,
    },
  ]);
});

Deno.test("matmul matches torch on every backend: batched, broadcast against a parameter (right and left), k-transposed", async (t) => {
  const f = await fixture("matmul");
  const x = tensor(f, "x");
  const y = tensor(f, "y");
  const weights = new Map([["weight", tensor(f, "weight")]]);
  const batched = graph(
    "mm",
    (b) => b.matmul(b.input("x", ["B", 3, 5, 8]), b.input("y", ["B", 3, 8, 6])),
  );
  const withParam = graph(
    "mm",
    (b) => b.matmul(b.input("x", ["B", 3, 5, 8]), b.param("weight", [8, 4])),
  );
  // The parameter on the left: weightᵀ [4, 8] @ xᵀ [.., 8, 5] is matmul_bcastᵀ.
  const paramLeft = graph("mm", (b) => {
    const w = b.transpose(b.param("weight", [8, 4]), 0, 1);
    return b.transpose(b.matmul(w, b.transpose(b.input("x", ["B", 3, 5, 8]), -1, -2)), -1, -2);
  });
  const kt = graph("mm", (b) => {
    const input = b.input("x", ["B", 3, 5, 8]);
    return b.mul(b.matmul(input, b.transpose(input, -2, -1)), 8 ** -0.5);
  });
  const cases: Case[] = [
    { name: "matmul", graph: batched, inputs: { x, y }, want: tensor(f, "matmul") },
    {
      name: "matmul_bcast",
      graph: withParam,
      inputs: { x },
      weights,
      want: tensor(f, "matmul_bcast"),
    },
    {
      name: "weightᵀ @ xᵀ",
      graph: paramLeft,
      inputs: { x },
      weights,
      want: tensor(f, "matmul_bcast"),
    },
    { name: "matmul_kt", graph: kt, inputs: { x }, want: tensor(f, "matmul_kt") },
  ];
  await onEveryBackend(t, cases.map((c) => ({ ...c, tolerance: TOLERANCE })));
});

Deno.test("matmul 1-D cases follow torch.matmul on every backend", async (t) => {
  const v = td([3], [1, 2, 3]);
  const m = td([2, 3, 2], [1, 0, 0, 1, 1, 1, 2, 0, 0, 2, 2, 2]);
  await onEveryBackend(t, [
    {
      name: "dot",
      graph: graph("dot", (b) => b.matmul(b.input("a", [3]), b.input("b", [3]))),
      inputs: { a: v, b: v },
      want: td([], [14]),
    },
    {
      name: "vector @ batch", // [1,2,3] @ m[i]
      graph: graph("vm", (b) => b.matmul(b.input("a", [3]), b.input("b", [2, 3, 2]))),
      inputs: { a: v, b: m },
      want: td([2, 2], [4, 5, 8, 10]),
    },
    {
      name: "batch @ vector",
      graph: graph("mv", (b) => b.matmul(b.input("b", [2, 3, 2]), b.input("a", [2]))),
      inputs: { a: td([2], [1, -1]), b: m },
      want: td([2, 3], [1, -1, 0, 2, -2, 0]),
    },
  ]);
});

Deno.test("mul, sub, div and add take a broadcast tensor or a number on every backend", async (t) => {
  const x = td([2, 3], [1, 2, 3, 4, 5, 6]);
  const y = td([3], [2, 4, 8]);
  const ops = [
    ["mul", [2, 8, 24, 8, 20, 48], [0.5, 1, 1.5, 2, 2.5, 3]],
    ["sub", [-1, -2, -5, 2, 1, -2], [0.5, 1.5, 2.5, 3.5, 4.5, 5.5]],
    ["div", [0.5, 0.5, 0.375, 2, 1.25, 0.75], [2, 4, 6, 8, 10, 12]],
    ["add", [3, 6, 11, 6, 9, 14], [1.5, 2.5, 3.5, 4.5, 5.5, 6.5]],
  ] as const;
  const cases: Case[] = ops.flatMap(([op, withTensor, withNumber]): Case[] => [
    {
      name: `${op} tensor`,
      graph: graph(op, (b) => b[op](b.input("x", ["B", 3]), b.input("y", [3]))),
      inputs: { x, y },
      want: td([2, 3], [...withTensor]),
    },
    {
      name: `${op} number`,
      graph: graph(op, (b) => b[op](b.input("x", ["B", 3]), 0.5)),
      inputs: { x },
      want: td([2, 3], [...withNumber]),
    },
  ]);
  // A number is rounded to float32 first, as torch does for a float32 tensor.
  cases.push({
    name: "mul by 0.1",
    graph: graph("mul", (b) => b.mul(b.input("x", [1]), 0.1)),
    inputs: { x: td([1], [3]) },
    want: td([1], [Math.fround(3 * Math.fround(0.1))]),
  });
  await onEveryBackend(t, cases);
});

Deno.test("select, slice and mean follow torch indexing, clamping and keepdim on every backend", async (t) => {
  const x = td([2, 3, 4], Array.from({ length: 24 }, (_, i) => i));
  const input = (b: GraphBuilder) => b.input("x", ["B", 3, 4]);
  const c = (
    name: string,
    build: (b: GraphBuilder) => Tensor<TShape>,
    shape: number[],
    want: number[],
  ): Case => ({ name, graph: graph("t", build), inputs: { x }, want: td(shape, want) });
  await onEveryBackend(t, [
    c("x[:, -1]", (b) => b.select(input(b), 1, -1), [2, 4], [8, 9, 10, 11, 20, 21, 22, 23]),
    c("x[..., 0]", (b) => b.select(input(b), -1, 0), [2, 3], [0, 4, 8, 12, 16, 20]),
    c(
      "x[..., 1:-1]",
      (b) => b.slice(input(b), 2, 1, -1),
      [2, 3, 2],
      [1, 2, 5, 6, 9, 10, 13, 14, 17, 18, 21, 22],
    ),
    c(
      "x[:, 1:]",
      (b) => b.slice(input(b), 1, 1),
      [2, 2, 4],
      [4, 5, 6, 7, 8, 9, 10, 11, 16, 17, 18, 19, 20, 21, 22, 23],
    ),
    c("x[:, -10:100]", (b) => b.slice(input(b), 1, -10, 100), [2, 3, 4], [...x.data]),
    c("x[:, 2:1]", (b) => b.slice(input(b), 1, 2, 1), [2, 0, 4], []),
    c("x.mean(1)", (b) => b.mean(input(b), 1), [2, 4], [4, 5, 6, 7, 16, 17, 18, 19]),
    c(
      "x.mean(-1, keepdim=True)",
      (b) => b.mean(input(b), -1, { keepdim: true }),
      [2, 3, 1],
      [1.5, 5.5, 9.5, 13.5, 17.5, 21.5],
    ),
    // x.transpose(-1, -3).permute(-1, 0, -2) == x.transpose(1, 2)
    c(
      "x.transpose(-1, -3).permute(-1, 0, -2)",
      (b) => b.permute(b.transpose(input(b), -1, -3), [-1, 0, -2]),
      [2, 4, 3],
      [0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11, 12, 16, 20, 13, 17, 21, 14, 18, 22, 15, 19, 23],
    ),
  ]);
});

// A high-precision erf for the check: the Taylor series below 2.5 (its terms stay below 20, so
// float64 keeps ~1e-15), the continued fraction of erfc above; both far below the 1e-6 target.
function erfReference(x: number): number {
  const a = Math.abs(x);
  if (Number.isNaN(x)) return NaN;
  let y: number;
  if (a < 2.5) {
    let term = a;
    let sum = a;
    for (let n = 1; n < 60; n++) {
      term *= (-a * a) / n;
      sum += term / (2 * n + 1);
    }
    y = (2 / Math.sqrt(Math.PI)) * sum;
  } else if (a < 27) {
    // erfc(a) = e^(-a²)/√π / (a + (1/2)/(a + 1/(a + (3/2)/(a + ...)))), evaluated from the tail.
    let f = a;
    for (let k = 400; k >= 1; k--) f = a + k / 2 / f;
    y = 1 - Math.exp(-a * a) / Math.sqrt(Math.PI) / f;
  } else {
    y = 1;
  }
  return x < 0 ? -y : y;
}

/** The same erf with every operation rounded to float32, as a WGSL or f32 kernel computes it. */
function erfFloat32(x: number): number {
  const f = Math.fround;
  const a = Math.abs(f(x));
  if (a < 0.5) {
    const z = f(x * x);
    let p = f(ERF_SERIES[ERF_SERIES.length - 1]);
    for (let i = ERF_SERIES.length - 2; i >= 0; i--) p = f(f(p * z) + f(ERF_SERIES[i]));
    return f(x * p);
  }
  const [p, ...c] = ERF_TAIL.map(f);
  const t = f(1 / f(1 + f(p * a)));
  let poly = c[c.length - 1];
  for (let i = c.length - 2; i >= 0; i--) poly = f(f(poly * t) + c[i]);
  const y = f(1 - f(f(t * poly) * f(Math.exp(f(-f(a * a))))));
  return x < 0 ? -y : y;
}

Deno.test("erf: max abs error over the whole float32 range is below 1e-6", () => {
  // The two reference methods agree where they meet.
  for (const x of [2.4, 2.5, 2.6]) {
    let f = x;
    for (let k = 400; k >= 1; k--) f = x + k / 2 / f;
    const cf = 1 - Math.exp(-x * x) / Math.sqrt(Math.PI) / f;
    let term = x;
    let sum = x;
    for (let n = 1; n < 60; n++) {
      term *= (-x * x) / n;
      sum += term / (2 * n + 1);
    }
    assert.ok(Math.abs(cf - (2 / Math.sqrt(Math.PI)) * sum) < 1e-13);
  }
  const bits = new Uint32Array(1);
  const asFloat = new Float32Array(bits.buffer);
  const worst = { f64: 0, f64At: 0, f32: 0, f32At: 0 };
  const check = (x: number): void => {
    const want = erfReference(x);
    const e = Math.abs(erf(x) - want);
    if (e > worst.f64) [worst.f64, worst.f64At] = [e, x];
    const e32 = Math.abs(erfFloat32(x) - want);
    if (e32 > worst.f32) [worst.f32, worst.f32At] = [e32, x];
  };
  // Every 1009th float32 bit pattern, both signs: all magnitudes from denormals to 3.4e38 ...
  for (let b = 0; b < 0x7f800000; b += 1009) {
    bits[0] = b;
    check(asFloat[0]);
    check(-asFloat[0]);
  }
  // ... and every 64th float32 in [0.25, 4), where erf bends and the two formulas meet.
  for (let b = 0x3e800000; b < 0x40800000; b += 64) {
    bits[0] = b;
    check(asFloat[0]);
  }
  for (const x of [0.5, Math.fround(0.5 - 2 ** -25), 3.4028234663852886e38, 2 ** -149]) check(x);
  assert.equal(erf(Infinity), 1);
  assert.equal(erf(-Infinity), -1);
  assert.ok(Number.isNaN(erf(NaN)));
  assert.equal(Object.is(erf(-0), -0), true);
  console.log(
    `erf max abs error: ${worst.f64.toExponential(3)} at x = ${worst.f64At} (float64 ` +
      `arithmetic), ${worst.f32.toExponential(3)} at x = ${worst.f32At} (every step in float32)`,
  );
  assert.ok(worst.f64 <= 1e-6 && worst.f32 <= 1e-6, JSON.stringify(worst));
});

/** The builder as plain JS sees it: any arguments, no type rules. */
type Loose = Record<string, (...args: unknown[]) => Tensor<TShape>>;
const loose = (b: GraphBuilder): Loose => b as unknown as Loose;
const build = (f: (u: Loose) => unknown) => graph("g", (b) => f(loose(b)) as Tensor<TShape>);

function throwsShape(f: () => unknown, op: string, reason: RegExp): void {
  assert.throws(f, (e: unknown) => {
    assert.ok(e instanceof ShapeError, `expected ShapeError, got ${e}`);
    assert.equal(e.op, op);
    assert.match(e.message, reason);
    assert.ok(!e.message.includes("\n"), `one-line message: ${e.message}`);
    return true;
  });
}

Deno.test("runtime shape errors name the op and the dims", () => {
  throwsShape(
    () => build((u) => u.layerNorm(u.input("x", ["B", "D"]), { name: "ln" })),
    "layerNorm",
    /last dim D must be a concrete size/,
  );
  throwsShape(
    () => build((u) => u.layerNorm(u.input("x", [2, 4]), { name: "ln", eps: -1 })),
    "layerNorm",
    /eps must be a finite number/,
  );
  throwsShape(() => build((u) => u.softmax(u.input("x", [2, 4]), 2)), "softmax", /axis 2/);
  throwsShape(
    () => build((u) => u.gelu(u.input("x", [2]), { approximate: "fast" })),
    "gelu",
    /approximate must be "none" or "tanh", got "fast"/,
  );
  throwsShape(
    () => build((u) => u.matmul(u.input("x", [2, 5, 8]), u.input("y", [7, 6]))),
    "matmul",
    /inner dims differ: 8 vs 7/,
  );
  throwsShape(
    () => build((u) => u.matmul(u.input("x", [2, 5, 8]), u.input("y", [3, 8, 6]))),
    "matmul",
    /batch dims do not broadcast/,
  );
  throwsShape(
    () => build((u) => u.matmul(u.input("x", []), u.input("y", [3]))),
    "matmul",
    /at least one dim/,
  );
  for (const op of ["add", "sub", "mul", "div"]) {
    throwsShape(
      () => build((u) => u[op](u.input("x", [2, 3]), u.input("y", [4, 3]))),
      op,
      /dims 2 and 4 at axis -2 do not match/,
    );
    throwsShape(() => build((u) => u[op](u.input("x", [2, 3]), "2")), op, /tensor or a number/);
  }
  throwsShape(() => build((u) => u.select(u.input("x", [2, 3]), 2, 0)), "select", /axis 2/);
  throwsShape(
    () => build((u) => u.select(u.input("x", [2, 3]), 1, 3)),
    "select",
    /index 3 is out of range for dim 3 \(axis 1\)/,
  );
  throwsShape(
    () => build((u) => u.slice(u.input("x", ["B", 3]), 0, 0, 1)),
    "slice",
    /symbolic size B/,
  );
  throwsShape(
    () => build((u) => u.slice(u.input("x", [2, 3]), 1, 0.5)),
    "slice",
    /must be integers/,
  );
  throwsShape(() => build((u) => u.mean(u.input("x", [2, 3]), -3)), "mean", /axis -3/);
  // A symbolic dim is checked once bound: select(x, 0, 5) on B = 2.
  const g = build((u) => u.select(u.input("x", ["B", 3]), 0, 5));
  throwsShape(() => specialize(g, { x: [2, 3] }), "select", /index 5 is out of range for dim 2/);
});

/** A random concrete shape of rank `lo..hi` with small dims (zero included). */
const shapeArb = (lo: number, hi: number) =>
  fc.array(fc.integer({ min: 0, max: 4 }), { minLength: lo, maxLength: hi });

/** Applies a rule: the inferred shape, or `undefined` when it throws `ShapeError`. */
function infer<A>(op: OpDef<A>, shapes: Shape[], attrs: A): number[] | undefined {
  try {
    return op.inferShape(shapes, attrs, "n") as number[];
  } catch (e) {
    if (e instanceof ShapeError) return undefined;
    throw e;
  }
}

function randomData(shape: readonly number[]): TensorData {
  const n = shape.reduce((s, d) => s * d, 1);
  return { shape, data: Float32Array.from({ length: n }, (_, i) => Math.sin(i + 1) * 3) };
}

/** When the rule accepts the shapes, evaluation fills exactly the shape it promised. */
function agrees<A>(op: OpDef<A>, shapes: number[][], attrs: A): boolean {
  const out = infer(op, shapes, attrs);
  if (out === undefined) return true;
  const data = op.evaluate(shapes.map(randomData), attrs, out);
  return data.length === out.reduce((s, d) => s * d, 1);
}

Deno.test("the runtime shape rules agree with evaluation on random shapes (fast-check)", () => {
  const axis = fc.integer({ min: -5, max: 4 });
  fc.assert(
    fc.property(shapeArb(1, 4), (x) => {
      const d = x[x.length - 1];
      return agrees(OPS.layer_norm, [x, [d], [d]], { eps: 1e-5 });
    }),
  );
  fc.assert(fc.property(shapeArb(0, 4), axis, (x, a) => agrees(OPS.softmax, [x], { axis: a })));
  fc.assert(
    fc.property(
      shapeArb(0, 4),
      fc.constantFrom("none", "tanh" as const),
      (x, approximate) => agrees(OPS.gelu, [x], { approximate }),
    ),
  );
  // matmul: operands built to fit often (shared k and batch), with random ones mixed in.
  fc.assert(
    fc.property(
      shapeArb(0, 2),
      shapeArb(0, 2),
      fc.integer({ min: 1, max: 4 }),
      fc.integer({ min: 0, max: 3 }),
      fc.integer({ min: 0, max: 3 }),
      fc.boolean(),
      fc.boolean(),
      (ba, bb, k, n, m, vecA, vecB) => {
        const a = vecA ? [k] : [...ba, n, k];
        const b = vecB ? [k] : [...bb, k, m];
        const out = infer(OPS.matmul, [a, b], {});
        if (!vecA && !vecB && out === undefined) {
          // Only a batch clash may reject well-fitting k.
          assert.ok(ba.some((d, i) => {
            const e = bb[bb.length - ba.length + i];
            return e !== undefined && d !== e && d !== 1 && e !== 1;
          }));
        }
        return agrees(OPS.matmul, [a, b], {});
      },
    ),
  );
  for (const op of [OPS.add, OPS.sub, OPS.mul, OPS.div]) {
    fc.assert(fc.property(shapeArb(0, 3), shapeArb(0, 3), (x, y) => agrees(op, [x, y], {})));
    fc.assert(fc.property(shapeArb(0, 3), (x) => agrees(op, [x], { scalar: 2 })));
  }
  fc.assert(
    fc.property(
      shapeArb(1, 4),
      axis,
      fc.integer({ min: -5, max: 5 }),
      (x, a, index) => agrees(OPS.select, [x], { axis: a, index }),
    ),
  );
  fc.assert(
    fc.property(
      shapeArb(1, 4),
      axis,
      fc.integer({ min: -6, max: 6 }),
      fc.option(fc.integer({ min: -6, max: 6 }), { nil: undefined }),
      (x, a, start, end) => {
        const ok = agrees(OPS.slice, [x], { axis: a, start, end });
        const out = infer(OPS.slice, [x], { axis: a, start, end });
        if (out === undefined) return ok;
        // Python's rule: the length of range(d)[start:end].
        const ax = a < 0 ? a + x.length : a;
        const want = [...Array(x[ax]).keys()].slice(start, end).length;
        return ok && out[ax] === want;
      },
    ),
  );
  fc.assert(
    fc.property(
      shapeArb(1, 4),
      axis,
      fc.boolean(),
      (x, a, keepdim) => agrees(OPS.mean, [x], { axis: a, keepdim }),
    ),
  );
});

Deno.test("js and wasm compile every new op to kernels of their own, with no fallback, matching reference", async (t) => {
  const x = td([1, 2, 4], [1, -2, 3, 0.5, 2, 2, -1, 0]);
  const y = td([4], [1, 2, -3, 4]);
  const cases: [string, (b: GraphBuilder, v: Tensor<readonly [1, 2, 4]>) => Tensor<TShape>][] = [
    ["layerNorm", (b, v) => b.layerNorm(v, { name: "ln" })],
    ["softmax", (b, v) => b.softmax(v, -1)],
    ["gelu", (b, v) => b.gelu(v)],
    ["gelu tanh", (b, v) => b.gelu(v, { approximate: "tanh" })],
    ["matmul", (b, v) => b.matmul(v, b.transpose(v, -1, -2))],
    ["mul", (b, v) => b.mul(v, v)],
    ["sub", (b, v) => b.sub(v, 1)],
    ["div", (b, v) => b.div(v, 4)],
    ["add with a number", (b, v) => b.add(v, 1)],
    ["add of two tensors", (b, v) => b.add(v, b.input("y", [4]))],
    ["select", (b, v) => b.select(v, 1, 0)],
    ["slice", (b, v) => b.slice(v, 2, 1, 3)],
    ["mean", (b, v) => b.mean(v, -1)],
  ];
  const graphs = cases.map(([op, f]) =>
    [op, graph(op, (b) => f(b, b.input("x", [1, 2, 4])))] as const
  );
  const inputsOf = (g: Graph): Record<string, TensorData> =>
    g.inputs().some((n) => n.attrs.name === "y") ? { x, y } : { x };
  const wants = await Promise.all(graphs.map(([, g]) => runReference(g, inputsOf(g))));
  for (const backend of ["js", "wasm"] as const) {
    await t.step(backend, async () => {
      for (const [i, [op, g]] of graphs.entries()) {
        const warnings: string[] = [];
        const model = await compile(g, { backend, onWarning: (m) => warnings.push(m) });
        try {
          const { output } = await model.run(inputsOf(g));
          assert.deepEqual(warnings, [], `${op} on ${backend}: warnings`);
          assert.deepEqual(model.fallbacks, [], `${op} on ${backend}: fallbacks`);
          assert.equal(model.backend, backend, `${op} on ${backend}`);
          assert.deepEqual(output.shape, wants[i].shape, `${op} on ${backend}: shape`);
          const err = scaledError(output.data, wants[i].data);
          assert.ok(err <= REFERENCE_TOLERANCE, `${op} on ${backend}: error ${err} vs reference`);
        } finally {
          model.dispose();
        }
      }
    });
  }
});

Deno.test("summary, diagram and explain show the new ops", async () => {
  const g = graph("enc", (b) => {
    const x = b.input("x", ["B", 5, 8]);
    const h = b.layerNorm(x, { name: "n" });
    const s = b.softmax(b.mul(b.matmul(h, b.transpose(h, -1, -2)), 0.5), -1);
    return b.mean(b.slice(b.gelu(b.matmul(s, h), { approximate: "tanh" }), 1, 1), 1);
  });
  const summary = g.summary();
  for (const row of ["layer_norm", "eps=0.00001", "init=ones", "scalar=0.5", "approximate=tanh"]) {
    assert.ok(summary.includes(row), row);
  }
  assert.match(graphToDot(g), /softmax \[B, 5, 5\]/);
  const model = await compile(g, { backend: "reference" });
  await model.run({ x: td([1, 5, 8], Array.from({ length: 40 }, (_, i) => Math.cos(i))) });
  assert.match(model.explain(), /layer_norm -> \[1, 5, 8\]/);
});
