// The encoder ops at run time: every op against the PyTorch fixtures in tests/fixtures/ops/
// (copied from ../shared/fixtures/ops/) on the `reference` backend, small hand-checked cases for
// the rest, the erf approximation's error over the float32 range, runtime shape errors, a
// property test that each shape rule agrees with its evaluation, and the fallback of the codegen
// backends, which have no kernels for these ops yet.
import assert from "node:assert/strict";
import fc from "npm:fast-check@4.3.0";
import {
  compile,
  graph,
  type GraphBuilder,
  initParams,
  loadSafetensors,
  OPS,
  type Shape,
  ShapeError,
  specialize,
  type Tensor,
  type TensorData,
  type TShape,
} from "../mod.ts";
import { erf, ERF_SERIES, ERF_TAIL } from "../ops/gelu.ts";
import type { OpDef } from "../ops/op.ts";
import { graphToDot } from "../viz/graph_diagram.ts";
import { maxError } from "./helpers.ts";

const FIXTURES = new URL("./fixtures/ops/", import.meta.url);
const TOLERANCE = 1e-5;

async function fixture(name: string): Promise<Map<string, TensorData>> {
  return (await loadSafetensors(new URL(`${name}.safetensors`, FIXTURES))).tensors;
}

function tensor(file: Map<string, TensorData>, name: string): TensorData {
  const t = file.get(name);
  assert.ok(t, `fixture tensor ${name} is missing`);
  return t;
}

/** Runs a graph on `reference` and returns its output. */
async function runReference(
  g: ReturnType<typeof graph>,
  inputs: Record<string, TensorData>,
  weights?: Map<string, TensorData>,
): Promise<TensorData> {
  const model = await compile(g, { backend: "reference", weights });
  return (await model.run(inputs)).output;
}

function assertClose(got: TensorData, want: TensorData, what: string): void {
  assert.deepEqual(got.shape, want.shape, `${what}: shape`);
  const err = maxError(got.data, want.data);
  assert.ok(err <= TOLERANCE, `${what}: max error ${err} > ${TOLERANCE}`);
}

const td = (shape: number[], values: number[]): TensorData => ({
  shape,
  data: new Float32Array(values),
});

Deno.test("layerNorm matches F.layer_norm with weight, bias and eps 1e-6", async () => {
  const f = await fixture("layer_norm");
  const g = graph(
    "ln",
    (b) => b.layerNorm(b.input("x", ["B", 5, 48]), { name: "norm", eps: 1e-6 }),
  );
  const weights = new Map([["norm.weight", tensor(f, "weight")], ["norm.bias", tensor(f, "bias")]]);
  const got = await runReference(g, { x: tensor(f, "x") }, weights);
  assertClose(got, tensor(f, "layer_norm"), "layer_norm");
});

Deno.test("layerNorm without loaded weights is PyTorch's init (ones, zeros) and eps 1e-5", async () => {
  const f = await fixture("layer_norm");
  const g = graph("ln", (b) => {
    const x = b.input("x", [2, 5, 48]);
    return b.layerNorm(b.linear(x, { in: 48, out: 48, name: "fc" }), { name: "norm" });
  });
  // The LayerNorm params come after fc's in declaration order and draw nothing from the RNG.
  const params = initParams(g, 0);
  assert.deepEqual([...params.keys()], ["fc.weight", "fc.bias", "norm.weight", "norm.bias"]);
  assert.ok(tensor(params, "norm.weight").data.every((v) => v === 1));
  assert.ok(tensor(params, "norm.bias").data.every((v) => v === 0));
  const plain = graph("ln", (b) => b.layerNorm(b.input("x", [2, 5, 48]), { name: "norm" }));
  assert.equal(plain.nodes.find((n) => n.op === "layer_norm")?.attrs.eps, 1e-5);
  const got = await runReference(plain, { x: tensor(f, "x") });
  assertClose(got, tensor(f, "layer_norm_eps1e-5_noaffine"), "layer_norm_eps1e-5_noaffine");
});

Deno.test("softmax matches torch on the last axis (with a row that overflows exp) and axis 1", async () => {
  const f = await fixture("softmax");
  const x = tensor(f, "x");
  for (const [axis, name] of [[-1, "softmax_last"], [1, "softmax_axis1"]] as const) {
    const g = graph("sm", (b) => b.softmax(b.input("x", ["B", 3, 7, 7]), axis));
    const got = await runReference(g, { x });
    assert.ok(got.data.every(Number.isFinite), `${name}: non-finite values`);
    assertClose(got, tensor(f, name), name);
  }
  // The fixture's shifted row really overflows float32 exp without the max subtraction.
  assert.ok(x.data.slice(0, 7).some((v) => Math.fround(Math.exp(v)) === Infinity));
});

Deno.test("gelu matches torch: exact (erf) and approximate='tanh'", async () => {
  const f = await fixture("gelu");
  const x = tensor(f, "x");
  const exact = graph("gelu", (b) => b.gelu(b.input("x", [1, 321])));
  assertClose(await runReference(exact, { x }), tensor(f, "gelu"), "gelu");
  const none = graph("gelu", (b) => b.gelu(b.input("x", [1, 321]), { approximate: "none" }));
  assertClose(await runReference(none, { x }), tensor(f, "gelu"), "gelu none");
  const tanh = graph("gelu", (b) => b.gelu(b.input("x", [1, 321]), { approximate: "tanh" }));
  assertClose(await runReference(tanh, { x }), tensor(f, "gelu_tanh"), "gelu_tanh");
});

Deno.test("matmul matches torch: batched, broadcast against a parameter, k-transposed", async () => {
  const f = await fixture("matmul");
  const x = tensor(f, "x");
  const y = tensor(f, "y");
  const batched = graph(
    "mm",
    (b) => b.matmul(b.input("x", ["B", 3, 5, 8]), b.input("y", ["B", 3, 8, 6])),
  );
  assertClose(await runReference(batched, { x, y }), tensor(f, "matmul"), "matmul");
  const withParam = graph(
    "mm",
    (b) => b.matmul(b.input("x", ["B", 3, 5, 8]), b.param("weight", [8, 4])),
  );
  const weights = new Map([["weight", tensor(f, "weight")]]);
  assertClose(
    await runReference(withParam, { x }, weights),
    tensor(f, "matmul_bcast"),
    "matmul_bcast",
  );
  // The parameter on the left: weightᵀ [4, 8] @ xᵀ [.., 8, 5] is matmul_bcastᵀ.
  const paramLeft = graph("mm", (b) => {
    const w = b.transpose(b.param("weight", [8, 4]), 0, 1);
    return b.transpose(b.matmul(w, b.transpose(b.input("x", ["B", 3, 5, 8]), -1, -2)), -1, -2);
  });
  assertClose(
    await runReference(paramLeft, { x }, weights),
    tensor(f, "matmul_bcast"),
    "weightᵀ @ xᵀ",
  );
  const kt = graph("mm", (b) => {
    const input = b.input("x", ["B", 3, 5, 8]);
    return b.mul(b.matmul(input, b.transpose(input, -2, -1)), 8 ** -0.5);
  });
  assertClose(await runReference(kt, { x }), tensor(f, "matmul_kt"), "matmul_kt");
});

Deno.test("matmul 1-D cases follow torch.matmul", async () => {
  const v = td([3], [1, 2, 3]);
  const m = td([2, 3, 2], [1, 0, 0, 1, 1, 1, 2, 0, 0, 2, 2, 2]);
  const dot = graph("dot", (b) => b.matmul(b.input("a", [3]), b.input("b", [3])));
  const got = await runReference(dot, { a: v, b: v });
  assert.deepEqual(got.shape, []);
  assert.deepEqual([...got.data], [14]);
  const vm = graph("vm", (b) => b.matmul(b.input("a", [3]), b.input("b", [2, 3, 2])));
  const vmOut = await runReference(vm, { a: v, b: m });
  assert.deepEqual(vmOut.shape, [2, 2]);
  assert.deepEqual([...vmOut.data], [4, 5, 8, 10]); // [1,2,3] @ m[i]
  const mv = graph("mv", (b) => b.matmul(b.input("b", [2, 3, 2]), b.input("a", [2])));
  const mvOut = await runReference(mv, { a: td([2], [1, -1]), b: m });
  assert.deepEqual(mvOut.shape, [2, 3]);
  assert.deepEqual([...mvOut.data], [1, -1, 0, 2, -2, 0]);
});

Deno.test("mul, sub, div and add take a broadcast tensor or a number", async () => {
  const x = td([2, 3], [1, 2, 3, 4, 5, 6]);
  const y = td([3], [2, 4, 8]);
  const cases = [
    ["mul", [2, 8, 24, 8, 20, 48], [0.5, 1, 1.5, 2, 2.5, 3]],
    ["sub", [-1, -2, -5, 2, 1, -2], [0.5, 1.5, 2.5, 3.5, 4.5, 5.5]],
    ["div", [0.5, 0.5, 0.375, 2, 1.25, 0.75], [2, 4, 6, 8, 10, 12]],
    ["add", [3, 6, 11, 6, 9, 14], [1.5, 2.5, 3.5, 4.5, 5.5, 6.5]],
  ] as const;
  for (const [op, withTensor, withNumber] of cases) {
    const gt = graph(op, (b) => b[op](b.input("x", ["B", 3]), b.input("y", [3])));
    assert.deepEqual([...(await runReference(gt, { x, y })).data], withTensor, `${op} tensor`);
    const gn = graph(op, (b) => b[op](b.input("x", ["B", 3]), 0.5));
    assert.deepEqual([...(await runReference(gn, { x })).data], withNumber, `${op} number`);
  }
  // A number is rounded to float32 first, as torch does for a float32 tensor.
  const tenth = graph("mul", (b) => b.mul(b.input("x", [1]), 0.1));
  assert.equal(
    (await runReference(tenth, { x: td([1], [3]) })).data[0],
    Math.fround(3 * Math.fround(0.1)),
  );
});

Deno.test("select, slice and mean follow torch indexing, clamping and keepdim", async () => {
  const x = td([2, 3, 4], Array.from({ length: 24 }, (_, i) => i));
  const run = async (build: (b: GraphBuilder) => Tensor<TShape>): Promise<TensorData> =>
    await runReference(graph("t", build), { x });
  const input = (b: GraphBuilder) => b.input("x", ["B", 3, 4]);
  const sel = await run((b) => b.select(input(b), 1, -1)); // x[:, -1]
  assert.deepEqual(sel.shape, [2, 4]);
  assert.deepEqual([...sel.data], [8, 9, 10, 11, 20, 21, 22, 23]);
  const sel2 = await run((b) => b.select(input(b), -1, 0)); // x[..., 0]
  assert.deepEqual([...sel2.data], [0, 4, 8, 12, 16, 20]);
  const sl = await run((b) => b.slice(input(b), 2, 1, -1)); // x[..., 1:-1]
  assert.deepEqual(sl.shape, [2, 3, 2]);
  assert.deepEqual([...sl.data.slice(0, 4)], [1, 2, 5, 6]);
  const tail = await run((b) => b.slice(input(b), 1, 1)); // x[:, 1:]
  assert.deepEqual(tail.shape, [2, 2, 4]);
  assert.deepEqual([...tail.data.slice(0, 2)], [4, 5]);
  const clamped = await run((b) => b.slice(input(b), 1, -10, 100)); // x[:, -10:100]
  assert.deepEqual([...clamped.data], [...x.data]);
  const empty = await run((b) => b.slice(input(b), 1, 2, 1)); // x[:, 2:1]
  assert.deepEqual(empty.shape, [2, 0, 4]);
  const m = await run((b) => b.mean(input(b), 1)); // x.mean(1)
  assert.deepEqual(m.shape, [2, 4]);
  assert.deepEqual([...m.data], [4, 5, 6, 7, 16, 17, 18, 19]);
  const mk = await run((b) => b.mean(input(b), -1, { keepdim: true }));
  assert.deepEqual(mk.shape, [2, 3, 1]);
  assert.deepEqual([...mk.data], [1.5, 5.5, 9.5, 13.5, 17.5, 21.5]);
  const t = await run((b) => b.permute(b.transpose(input(b), -1, -3), [-1, 0, -2]));
  assert.deepEqual(t.shape, [2, 4, 3]); // x.transpose(-1, -3).permute(-1, 0, -2) == x.transpose(1, 2)
  assert.deepEqual([...t.data.slice(0, 3)], [0, 4, 8]);
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

Deno.test("codegen backends decline the new ops: wasm falls back to reference, naming the op", async () => {
  const g = graph("ln", (b) => b.layerNorm(b.input("x", ["B", 4]), { name: "ln" }));
  const warnings: string[] = [];
  const model = await compile(g, { backend: "wasm", onWarning: (m) => warnings.push(m) });
  const x = td([2, 4], [1, 2, 3, 4, 0, 0, 0, 1]);
  const { output } = await model.run({ x });
  assert.equal(model.backend, "reference");
  const want = [
    -1.3416355,
    -0.4472118,
    0.4472118,
    1.3416355,
    -0.5773349,
    -0.5773349,
    -0.5773349,
    1.7320046,
  ];
  assert.ok(maxError(output.data, new Float32Array(want)) < 1e-6);
  // No generated-code backend has the op, so compile() goes straight to the interpreter, with
  // one warning naming the op.
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], /^tessera: wasm -> reference: .*layerNorm has no kernel emitter yet/);
  assert.deepEqual(model.fallbacks, warnings);
  // A second run stays on reference without new warnings.
  await model.run({ x });
  assert.equal(warnings.length, model.fallbacks.length);
});

Deno.test("every new op makes the js backend fall back to reference, naming the op", async () => {
  const x = td([1, 2, 4], [1, -2, 3, 0.5, 2, 2, -1, 0]);
  const cases: [string, (b: GraphBuilder, t: Tensor<readonly [1, 2, 4]>) => Tensor<TShape>][] = [
    ["softmax", (b, t) => b.softmax(t, -1)],
    ["gelu", (b, t) => b.gelu(t)],
    ["matmul", (b, t) => b.matmul(t, b.transpose(t, -1, -2))],
    ["mul", (b, t) => b.mul(t, t)],
    ["sub", (b, t) => b.sub(t, 1)],
    ["div", (b, t) => b.div(t, 4)],
    ["add with a number", (b, t) => b.add(t, 1)],
    ["select", (b, t) => b.select(t, 1, 0)],
    ["slice", (b, t) => b.slice(t, 2, 1, 3)],
    ["mean", (b, t) => b.mean(t, -1)],
  ];
  for (const [op, f] of cases) {
    const g = graph(op, (b) => f(b, b.input("x", [1, 2, 4])));
    const warnings: string[] = [];
    const model = await compile(g, { backend: "js", onWarning: (m) => warnings.push(m) });
    const { output } = await model.run({ x });
    assert.equal(model.backend, "reference", op);
    const want = await runReference(g, { x });
    assert.deepEqual([...output.data], [...want.data], op);
    assert.ok(warnings.length >= 1, op);
    for (const w of warnings) assert.ok(w.includes(`${op} has no kernel emitter yet`), w);
  }
  // add of two tensors keeps its kernel.
  const sum = graph("add", (b) => b.add(b.input("x", [1, 2, 4]), b.input("y", [4])));
  const warnings: string[] = [];
  const model = await compile(sum, { backend: "js", onWarning: (m) => warnings.push(m) });
  await model.run({ x, y: td([4], [1, 2, 3, 4]) });
  assert.equal(model.backend, "js");
  assert.deepEqual(warnings, []);
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
