// The WebAssembly loop nests (codegen/render/wasm/loop_nest.ts), at the IR level: every op,
// select, index form, reduction and split range computes what evalExpr (or the JavaScript
// renderer) computes, up to float32 rounding. Each kernel runs in a module of its own over a
// fresh memory, with its buffers at chosen byte offsets (unaligned ones too, and one at byte 0
// so that a load the JavaScript kernel would not do, at a negative index, traps), and the output
// outside the split range must keep its sentinel. Then every kernel of lowered encoder blocks and
// a small ViT against the JavaScript renderer, two instances sharing one memory, and a speed
// print.
import { jsErf, kernelOf, runEval } from "./ir_helpers.ts";
import assert from "node:assert/strict";
import {
  BINARY_OPS,
  type BinaryOp,
  children as childrenOf,
  type Cond,
  constant,
  type Lin,
  lin,
  linKey,
  type ReduceOp,
  UNARY_OPS,
  type UnaryOp,
  v,
  variable,
  type VExpr,
} from "../codegen/ir/expr.ts";
import type { Kernel, Program } from "../codegen/ir/program.ts";
import { UNROLL } from "../codegen/render/common.ts";
import { chooseSplitAxis, renderJsKernel } from "../codegen/render/js/loop_nest.ts";
import { renderWasmKernel } from "../codegen/render/wasm/loop_nest.ts";
import { encodeModule } from "../codegen/render/wasm/encoder.ts";
import { GEMM_TILE } from "../codegen/render/wasm/gemm_kernel.ts";
import { withMemory } from "../codegen/backends/wasm_plan.ts";
import { findContraction } from "../codegen/passes/contraction.ts";
import { lowerProgram } from "../codegen/passes/pipeline.ts";
import { encoderBlock } from "../models/vit_encoder.ts";
import { vit } from "../models/vit.ts";
import { graph } from "../graph/builder.ts";
import { initParams } from "../graph/params.ts";
import { specialize } from "../graph/specialize.ts";

// ---------------------------------------------------------------------------------------------
// Helpers.

const [i0, i1, i2] = [variable("i0"), variable("i1"), variable("i2")];
/** The index `c + Σ coeff * x`. */
const linOf = (c: number, ...parts: [number, Lin][]): Lin =>
  parts.reduce((acc, [k, x]) => lin.add(acc, lin.scale(x, k)), constant(c));

/** Written to the output first: elements outside the split range must keep it. */
const SENTINEL = -12345.5;

interface RunOptions {
  /** The split axis (default 0) and the range of it to run (default all of it). */
  readonly split?: number;
  readonly lo?: number;
  readonly hi?: number;
  /** Bytes past a 64-byte boundary at which each buffer starts (default 4). */
  readonly misalign?: number;
  /** A buffer placed at byte 0, so that reading below its element 0 traps. */
  readonly atZero?: string;
}

/** Runs `kernel` as WebAssembly over `buffers`; also returns whether it was vectorized. */
function runWasm(
  kernel: Kernel,
  buffers: Readonly<Record<string, Float32Array>>,
  o: RunOptions = {},
): { out: Float32Array; vectorized: boolean } {
  const split = o.split ?? 0;
  const w = renderWasmKernel(kernel, split, "kernel");
  assert.ok(w, "renderWasmKernel supports the kernel");
  const misalign = o.misalign ?? 4;
  const first = o.atZero ? 4 * buffers[o.atZero].length : 0;
  let at = Math.ceil((first + 1) / 64) * 64 + misalign;
  const place = (n: number): number => {
    const p = at;
    at = Math.ceil((at + 4 * n + 1) / 64) * 64 + misalign;
    return p;
  };
  const offsets = new Map<string, number>();
  if (o.atZero) offsets.set(o.atZero, 0);
  const outAt = place(kernel.size);
  for (const a of w.args) if (!offsets.has(a)) offsets.set(a, place(buffers[a].length));
  const pages = Math.ceil(at / 65536) + 1;
  const bytes = withMemory(encodeModule([w.fn], pages), false);
  assert.ok(WebAssembly.validate(bytes), "the module validates");
  const memory = new WebAssembly.Memory({ initial: pages, maximum: pages });
  const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } });
  const heap = new Uint8Array(memory.buffer);
  const put = (data: Float32Array, byte: number): void =>
    heap.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), byte);
  put(new Float32Array(kernel.size).fill(SENTINEL), outAt);
  for (const a of w.args) put(buffers[a], offsets.get(a) as number);
  const f = instance.exports.kernel as (...args: number[]) => void;
  const extent = kernel.shape[w.splitAxis] ?? 1;
  f(outAt, o.lo ?? 0, o.hi ?? extent, ...w.args.map((a) => offsets.get(a) as number));
  const out = new Float32Array(kernel.size);
  new Uint8Array(out.buffer).set(heap.subarray(outAt, outAt + 4 * kernel.size));
  return { out, vectorized: w.vectorized };
}

/** Runs the JavaScript loop nest of `kernel` over the same range. */
function runJs(
  kernel: Kernel,
  buffers: Readonly<Record<string, Float32Array>>,
  o: RunOptions = {},
): Float32Array {
  const r = renderJsKernel(kernel, o.split ?? 0);
  const f = new Function("out", "lo", "hi", ...r.args.map((_, j) => `buf${j}`), r.body);
  const out = new Float32Array(kernel.size).fill(SENTINEL);
  f(out, o.lo ?? 0, o.hi ?? kernel.shape[r.splitAxis] ?? 1, ...r.args.map((a) => buffers[a]));
  return out;
}

interface Tolerance {
  readonly rel?: number;
  readonly abs?: number;
}

/** NaN matches NaN, infinities match exactly, else within `abs + rel * |want|`. */
function close(got: number, want: number, t: Tolerance): boolean {
  if (Number.isNaN(want) || Number.isNaN(got)) return Number.isNaN(want) && Number.isNaN(got);
  if (!Number.isFinite(want) || !Number.isFinite(got)) return got === want;
  return Math.abs(got - want) <= (t.abs ?? 0) + (t.rel ?? 0) * Math.abs(want);
}

function same(got: Float32Array, want: Float32Array, what: string, t: Tolerance = {}): void {
  assert.equal(got.length, want.length, what);
  want.forEach((w, at) => assert.ok(close(got[at], w, t), `${what} [${at}]: ${got[at]} vs ${w}`));
}

/** WebAssembly against evalExpr, at each of several buffer alignments. */
function check(
  kernel: Kernel,
  buffers: Readonly<Record<string, Float32Array>>,
  what: string,
  t: Tolerance = {},
  o: RunOptions = {},
): boolean {
  const want = runEval(kernel, buffers);
  let vectorized = false;
  for (const misalign of [0, 4, 1, 7]) {
    const run = runWasm(kernel, buffers, { ...o, misalign });
    same(run.out, want, `${what} (buffers ${misalign} bytes past 64)`, t);
    vectorized = run.vectorized;
  }
  return vectorized;
}

/** A deterministic input in [lo, hi). */
function data(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return lo + (hi - lo) * (s / 2 ** 32);
  });
}

/** Distance in float32 steps between two finite floats of the same sign. */
function ulps(a: number, b: number): number {
  const bits = new Int32Array(new Float32Array([a, b]).buffer);
  return Math.abs(bits[0] - bits[1]);
}

/** `op(x)` of every element of `xs`, through a one-axis kernel. */
function mapped(op: UnaryOp, xs: Float32Array): Float32Array {
  return runWasm(kernelOf([xs.length], v.unary(op, v.load("x", i0))), { x: xs }).out;
}

// ---------------------------------------------------------------------------------------------
// Ops.

const UNARY_SAMPLES = [
  -1e4,
  -104,
  -87,
  -50,
  -3.7,
  -1,
  -0.7,
  -0.5,
  -0.49,
  -1e-9,
  -1e-40,
  -0,
  0,
  1e-40,
  1e-30,
  1e-9,
  0.25,
  0.3,
  0.49,
  0.5,
  0.51,
  1,
  2,
  2.5,
  5.9,
  10,
  88,
  88.7,
  89,
  100,
  1e4,
  3e38,
  Infinity,
  -Infinity,
  NaN,
];

/**
 * Per op, against evalExpr's float64: the float32 ops that round once are exact; exp is within
 * 2 ulp and log about 1; rsqrt rounds twice; erf uses float32 coefficients (the JavaScript
 * spelling float64 ones) and tanh `1 - 2 / (e^{2x} + 1)`, which loses the relative accuracy near
 * 0 (absolute error of a float32 step of 1).
 */
const UNARY_TOLERANCE: Readonly<Record<UnaryOp, Tolerance>> = {
  neg: {},
  abs: {},
  sqrt: {},
  recip: {},
  rsqrt: { rel: 1.2e-7 },
  exp: { rel: 2.4e-7 },
  log: { rel: 1.2e-7 },
  erf: { abs: 2.5e-7 },
  tanh: { abs: 2.5e-7, rel: 2.5e-7 },
};

Deno.test("wasm loop nest: every unary op, special values included, computes what evalExpr does", () => {
  const xs = Float32Array.from(UNARY_SAMPLES);
  for (const op of UNARY_OPS) {
    const kernel = kernelOf([xs.length], v.unary(op, v.load("x", i0)));
    const vectorized = check(kernel, { x: xs }, op, UNARY_TOLERANCE[op]);
    assert.ok(vectorized, op);
  }
});

Deno.test("wasm loop nest: exp within 2 ulp, log within 1, erf as the renderers' spelling, tanh", () => {
  const n = 8192;
  const grid = (lo: number, hi: number): Float32Array =>
    Float32Array.from({ length: n }, (_, i) => lo + ((hi - lo) * i) / n);
  let worst = 0;
  const xs = grid(-87, 88.7);
  mapped("exp", xs).forEach((got, i) => {
    worst = Math.max(worst, ulps(got, Math.fround(Math.exp(xs[i]))));
  });
  assert.ok(worst <= 2, `exp: ${worst} ulp`);
  // Positive floats of every exponent, subnormals included, and a fine grid around 1.
  const bits = new Uint32Array(n).map((_, i) => (i * 0x7f7fffff / n) >>> 0 | 1);
  const logs = [new Float32Array(bits.buffer), grid(0.5, 2)];
  worst = 0;
  for (const ys of logs) {
    mapped("log", ys).forEach((got, i) => {
      worst = Math.max(worst, ulps(got, Math.fround(Math.log(ys[i]))));
    });
  }
  assert.ok(worst <= 1, `log: ${worst} ulp`);
  const es = grid(-6, 6);
  mapped("erf", es).forEach((got, i) => {
    const want = jsErf(es[i]);
    assert.ok(Math.abs(got - want) <= 2.5e-7, `erf(${es[i]}) = ${got}, want ${want}`);
  });
  const ts = grid(-10, 10);
  mapped("tanh", ts).forEach((got, i) => {
    const want = Math.tanh(ts[i]);
    assert.ok(Math.abs(got - want) <= 2.5e-7, `tanh(${ts[i]}) = ${got}, want ${want}`);
  });
});

const BINARY_SAMPLES = [-3, -0.5, -0, 0, 0.5, 2, 7, 1e30, Infinity, -Infinity, NaN];
const PAIRS: readonly [number, number][] = BINARY_SAMPLES.flatMap((a) =>
  BINARY_SAMPLES.map((b) => [a, b] as [number, number])
);

Deno.test("wasm loop nest: every binary op and where, over all pairs of special values", () => {
  const a = Float32Array.from(PAIRS.map((p) => p[0]));
  const b = Float32Array.from(PAIRS.map((p) => p[1]));
  const load = (name: string): VExpr => v.load(name, i0);
  for (const op of BINARY_OPS) {
    const kernel = kernelOf([PAIRS.length], { k: "binary", op, a: load("a"), b: load("b") });
    assert.ok(check(kernel, { a, b }, op), op);
  }
  // A constant operand on either side too.
  for (const op of ["sub", "div", "lt", "max"] as BinaryOp[]) {
    const left = kernelOf([PAIRS.length], { k: "binary", op, a: v.const(0.5), b: load("b") });
    const right = kernelOf([PAIRS.length], { k: "binary", op, a: load("a"), b: v.const(-0.5) });
    check(left, { b }, `0.5 ${op} b`);
    check(right, { a }, `a ${op} -0.5`);
  }
  const where = kernelOf([PAIRS.length], { k: "where", c: load("a"), a: load("b"), b: v.const(7) });
  check(where, { a, b }, "where");
  // A comparison as the condition, as masked fills lower.
  const masked = kernelOf([PAIRS.length], {
    k: "where",
    c: v.binary("lt", load("a"), load("b")),
    a: load("a"),
    b: v.neg(load("b")),
  });
  check(masked, { a, b }, "where(a < b)");
});

// ---------------------------------------------------------------------------------------------
// Selects and index forms.

const lt = (x: Lin, c: number): Cond => ({ k: "lt", x, c });
const ge = (x: Lin, c: number): Cond => ({ k: "ge", x, c });
const and = (a: Cond, b: Cond): Cond => ({ k: "and", a, b });

Deno.test("wasm loop nest: a select on an outer axis is a branch; loads stay inside it", () => {
  // Rows 0-1 from a, rows 2-4 from b: b's index is negative in rows 0-1, and b sits at byte 0.
  const a = data(2 * 9, 1);
  const b = data(3 * 9, 2);
  const e = v.select(
    lt(i0, 2),
    v.load("a", linOf(0, [9, i0], [1, i1])),
    v.mul(v.load("b", linOf(-18, [9, i0], [1, i1])), v.const(3)),
  );
  const kernel = kernelOf([5, 9], e);
  assert.ok(check(kernel, { a, b }, "rows", {}, { atZero: "b" }));
  check(kernel, { a, b }, "rows, split 1", {}, { atZero: "b", split: 1 });
  // The same with loads that do not move along the innermost axis (hoisted, but not above the
  // branch: b[i0 - 2] is below b's element 0 in rows 0-1).
  const hoisted = kernelOf(
    [5, 9],
    v.select(
      lt(i0, 2),
      v.mul(v.load("a", i0), v.load("a", i1)),
      v.exp(v.load("b", linOf(-2, [1, i0]))),
    ),
  );
  check(hoisted, { a, b }, "hoisted rows", { rel: 2.4e-7 }, { atZero: "b" });
  // A select inside the value (not at the top: v.add would move the add into its arms),
  // decided by the outer axis.
  const inner = kernelOf(
    [5, 9],
    v.mul(v.load("a", i1), v.select(lt(i0, 2), v.load("a", i0), v.load("b", linOf(-2, [1, i0])))),
  );
  check(inner, { a, b }, "inner select", {}, { atZero: "b" });
  // A condition on the first two axes of three, decided before the innermost loop.
  const three = kernelOf(
    [3, 4, 6],
    v.select(
      lt(linOf(0, [1, i0], [1, i1]), 3),
      v.load("x", linOf(0, [24, i0], [6, i1], [1, i2])),
      v.const(-1),
    ),
  );
  check(three, { x: data(72, 3) }, "i0 + i1 < 3");
});

Deno.test("wasm loop nest: selects on the innermost axis, lane by lane, read only where they hold", () => {
  // A concat along the last axis with the boundary inside a vector (columns 0-4 from a, 5-12 from
  // b): b at byte 0, so a lane reading b at column < 5 would trap.
  const a = data(3 * 5, 4);
  const b = data(3 * 8, 5);
  const concat = kernelOf(
    [3, 13],
    v.select(
      lt(i1, 5),
      v.load("a", linOf(0, [5, i0], [1, i1])),
      v.load("b", linOf(-5, [8, i0], [1, i1])),
    ),
  );
  for (const atZero of ["a", "b"]) {
    assert.ok(check(concat, { a, b }, `concat (${atZero} at 0)`, {}, { atZero }));
    check(concat, { a, b }, `concat split 1 (${atZero} at 0)`, {}, { atZero, split: 1 });
  }
  // A window in the middle (an `and`), and nested selects.
  const window = kernelOf(
    [3, 13],
    v.select(
      and(ge(i1, 2), lt(i1, 9)),
      v.exp(v.load("b", linOf(-2, [8, i0], [1, i1]))),
      v.const(0),
    ),
  );
  check(window, { b }, "window", { rel: 2.4e-7 }, { atZero: "b" });
  const nested = kernelOf(
    [3, 13],
    v.select(
      lt(i1, 9),
      v.select(
        ge(i1, 5),
        v.load("b", linOf(-5, [8, i0], [1, i1])),
        v.load("a", linOf(0, [5, i0], [1, i1])),
      ),
      v.const(2),
    ),
  );
  check(nested, { a, b }, "nested", {}, { atZero: "b" });
  check(nested, { a, b }, "nested", {}, { atZero: "a" });
  // A reduction under a lane-dependent select: its loads are masked too (a at byte 0, read at a
  // negative index in the lanes where the select does not hold).
  const k = variable("k");
  for (const extent of [3, 9]) {
    const under = kernelOf(
      [2, 11],
      v.select(
        ge(i1, 3),
        v.sum("k", extent, v.load("a", linOf(-3 * extent, [extent, i1], [1, k]))),
        v.const(-1),
      ),
    );
    const rows = data(8 * extent, 40 + extent);
    check(under, { a: rows }, `masked sum ${extent}`, { rel: 1e-6, abs: 1e-6 }, { atZero: "a" });
  }
  // A condition on an outer and the innermost axis together (a triangle).
  const triangle = kernelOf(
    [9, 10],
    v.select(
      lt(linOf(0, [1, i0], [1, i1]), 8),
      v.load("x", linOf(0, [10, i0], [1, i1])),
      v.const(0),
    ),
  );
  check(triangle, { x: data(90, 6) }, "triangle");
});

Deno.test("wasm loop nest: a padded convolution's select on the reduction variable", () => {
  // out[r, c] = Σ_k w[k] x[r, c + k - p] where 0 <= c + k - p < W: x at byte 0 traps below it.
  const W = 11;
  for (const [extent, pad] of [[3, 1], [5, 2], [UNROLL + 3, 3]]) {
    const k = variable("k");
    const at = linOf(-pad, [1, i1], [1, k]);
    const body = v.select(
      and(ge(at, 0), lt(at, W)),
      v.mul(v.load("x", lin.add(lin.scale(i0, W), at)), v.load("w", k)),
      v.const(0),
    );
    const kernel = kernelOf([4, W], v.sum("k", extent, body));
    const buffers = { x: data(4 * W, 7), w: data(extent, 8) };
    assert.ok(check(kernel, buffers, `conv ${extent}`, { rel: 1e-6, abs: 1e-6 }, { atZero: "x" }));
  }
});

/** An index atom built as it is, unsimplified (floor division or modulo of `x` by `d`). */
function atom(k: "div" | "mod", x: Lin, d: number): Lin {
  return { c: 0, terms: [{ coeff: 1, atom: { k, x, d }, key: `${k}(${linKey(x)}, ${d})` }] };
}

Deno.test("wasm loop nest: div and mod indices (a transpose, a reshape, floor of negatives)", () => {
  // A transpose: out[i0, i1] = x[i1, i0] (stride 6 along the lanes: gathered).
  const x = data(60, 9);
  const transpose = kernelOf([6, 10], v.load("x", linOf(0, [6, i1], [1, i0])));
  assert.ok(check(transpose, { x }, "transpose"));
  // A reshape across the innermost axis: out[i0, 5a + b] = y[a, i0, b] for y [3, 4, 5].
  const ranges = new Map([["i0", [0, 3] as const], ["i1", [0, 14] as const]]);
  const y = data(60, 10);
  const reshape = kernelOf(
    [4, 15],
    v.load(
      "y",
      lin.add(
        lin.add(lin.scale(lin.div(i1, 5, ranges), 20), lin.scale(i0, 5)),
        lin.mod(i1, 5, ranges),
      ),
    ),
  );
  assert.ok(check(reshape, { y }, "reshape"));
  // Floor semantics where the divided index is negative: 4 floor((i1 - 5) / 4) + ((i1 - 5) mod 4)
  // is i1 - 5 for every i1, so the load reads z[16 i0 + i1 + 3].
  const shifted = lin.offset(i1, -5);
  const index = lin.add(
    lin.add(lin.scale(atom("div", shifted, 4), 4), atom("mod", shifted, 4)),
    linOf(8, [16, i0]),
  );
  const z = data(3 * 16, 11);
  const floors = kernelOf([3, 13], v.load("z", index));
  assert.ok(check(floors, { z }, "floor div/mod"));
  const direct = kernelOf([3, 13], v.load("z", linOf(3, [16, i0], [1, i1])));
  same(runWasm(floors, { z }).out, runWasm(direct, { z }).out, "floor div/mod = direct");
  // Each alone, by 3: floor((i1 - 5) / 3) is in [-2, 2], (i1 - 5) mod 3 in [0, 2].
  const apart = kernelOf(
    [3, 13],
    v.sub(
      v.load("z", lin.add(atom("div", shifted, 3), linOf(2, [16, i0]))),
      v.load("z", lin.add(atom("mod", shifted, 3), linOf(5, [16, i0]))),
    ),
  );
  check(apart, { z }, "floor div, mod by 3", {}, { atZero: "z" });
  // A flip (stride -1, gathered) with the buffer at byte 0: no lane's address may go below it
  // before its constant offset is added.
  const flip = kernelOf([3, 13], v.load("z", linOf(12, [16, i0], [-1, i1])));
  assert.ok(check(flip, { z }, "flip", {}, { atZero: "z" }));
  // Div and mod of an outer axis (hoisted out of the vector loop) with a contiguous innermost.
  const outer = kernelOf(
    [6, 8],
    v.load("z", lin.add(lin.add(lin.scale(atom("div", i0, 2), 16), atom("mod", i0, 2)), i1)),
  );
  check(outer, { z }, "outer div/mod");
});

Deno.test("wasm loop nest: broadcasts along either axis and constant indices", () => {
  const a = data(9, 12);
  const b = data(5, 13);
  const c = data(4, 14);
  const e = v.add(
    v.mul(v.load("a", i1), v.load("b", i0)),
    v.mul(v.load("c", constant(3)), v.const(0.25)),
  );
  // JavaScript rounds a * b + c once, float32 after each op.
  assert.ok(check(kernelOf([5, 9], e), { a, b, c }, "broadcast", { rel: 1.2e-7, abs: 1e-7 }));
  // Nothing moves along the innermost axis: every lane the same splat.
  const rows = kernelOf([5, 9], v.exp(v.load("b", i0)));
  check(rows, { b }, "row broadcast", { rel: 2.4e-7 });
  check(kernelOf([6], v.load("c", constant(2))), { c }, "constant index");
  // A kernel of rank 0 writes its one element.
  check(kernelOf([], v.add(v.load("c", constant(0)), v.const(1))), { c }, "rank 0");
});

Deno.test("wasm loop nest: innermost extents 1, 3, 4, 5, 7 and 197 (tails and no vector loop)", () => {
  for (const n of [1, 3, 4, 5, 7, 197]) {
    const a = data(3 * n, 15 + n);
    const b = data(n, 16 + n);
    const e = v.sub(
      v.mul(v.load("a", linOf(0, [n, i0], [1, i1])), v.load("b", i1)),
      v.load("a", linOf(0, [n, i0], [1, i1])),
    );
    const kernel = kernelOf([3, n], e);
    const vectorized = check(kernel, { a, b }, `extent ${n}`, { rel: 1.2e-7, abs: 1e-7 });
    assert.equal(vectorized, n >= 4, `extent ${n}`);
    const flat = kernelOf([3 * n], v.mul(v.load("a", i0), v.load("a", i0)));
    assert.equal(check(flat, { a }, `flat ${3 * n}`), 3 * n >= 4);
  }
});

Deno.test("wasm loop nest: split axis 0, 1 and innermost over sub-ranges write only their part", () => {
  const x = data(5 * 7 * 6, 17);
  const y = data(6, 18);
  const at = linOf(0, [42, i0], [6, i1], [1, i2]);
  const e = v.add(v.mul(v.load("x", at), v.load("y", i2)), v.const(1));
  const kernel = kernelOf([5, 7, 6], e);
  const cases: [number, number, number][] = [
    [0, 1, 3],
    [0, 0, 5],
    [0, 4, 4],
    [1, 2, 5],
    [1, 6, 7],
    [2, 1, 6],
    [2, 0, 3],
    [2, 2, 2],
  ];
  for (const [split, lo, hi] of cases) {
    const o = { split, lo, hi };
    const want = runJs(kernel, { x, y }, o);
    const wasm = runWasm(kernel, { x, y }, o).out;
    const what = `split ${split} [${lo}, ${hi})`;
    want.forEach((w, i) => {
      if (w === SENTINEL) assert.equal(wasm[i], SENTINEL, `${what} [${i}] written`);
    });
    // x * y + 1 rounds twice in float32, once in JavaScript.
    same(wasm, want, what, { rel: 2.4e-7 });
  }
  // One axis split, the vector loop starting anywhere and ending with a tail, or not running.
  const flat = kernelOf([37], v.exp(v.load("x", i0)));
  for (const [lo, hi] of [[5, 30], [0, 37], [10, 10], [3, 6], [36, 37]]) {
    const o = { lo, hi };
    same(runWasm(flat, { x }, o).out, runJs(flat, { x }, o), `[${lo}, ${hi})`, { rel: 2.4e-7 });
  }
});

Deno.test("wasm loop nest: two instances over one shared memory split a kernel between them", () => {
  // No state outside locals: threads each instantiate the module over the shared memory and run
  // their own [lo, hi). As encodeModule writes it (shared import), no withMemory.
  const x = data(6 * 37, 27);
  const e = v.exp(v.load("x", linOf(0, [37, i0], [1, i1])));
  const kernel = kernelOf([6, 37], e);
  const w = renderWasmKernel(kernel, 0, "kernel");
  assert.ok(w);
  const memory = new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
  const module = new WebAssembly.Module(encodeModule([w.fn], 1));
  const [a, b] = [0, 1].map(() =>
    new WebAssembly.Instance(module, { env: { memory } }).exports.kernel as (
      ...args: number[]
    ) => void
  );
  const heap = new Float32Array(memory.buffer);
  heap.set(x, 1000);
  a(4, 0, 2, 4000);
  b(4, 2, 6, 4000);
  same(heap.slice(1, 1 + kernel.size), runEval(kernel, { x }), "halves", { rel: 2.4e-7 });
});

// ---------------------------------------------------------------------------------------------
// Reductions.

const ROWS = new Float32Array([
  ...[1, 5, 3, 2, 0, 9, -1],
  ...[-Infinity, -Infinity, -Infinity, -Infinity, -Infinity, -Infinity, -Infinity],
  ...[-Infinity, -3, -Infinity, -Infinity, -Infinity, -Infinity, -4],
  ...[1, NaN, 7, 2, 0, 1, 1],
  ...[NaN, 2, 3, 4, 5, 6, 7],
  ...[0.5, 0.25, -0.125, 8, 1e30, -1e30, 3],
]);

Deno.test("wasm loop nest: sum and max, unrolled and looped, over rows with -Inf and NaN", () => {
  for (const extent of [UNROLL - 1, UNROLL, 7]) {
    for (const op of ["sum", "max"] as ReduceOp[]) {
      const j = `r${extent}`;
      const body = v.load("r", lin.add(lin.scale(i0, 7), variable(j)));
      const kernel = kernelOf([6], v.reduce(op, j, extent, body));
      assert.ok(check(kernel, { r: ROWS }, `${op} over ${extent}`), `${op} ${extent}`);
    }
  }
  // Long maxima keep four accumulators and a tail: NaN in any of them or in the tail, all -Inf,
  // and zeros of both signs (+0 is the larger, as Math.max has it).
  const n = 23;
  const long = data(7 * n, 26, -5, 5);
  long.fill(-Infinity, n, 2 * n);
  long[2 * n + 22] = NaN;
  long[3 * n + 5] = NaN;
  long[4 * n + 2] = -Infinity;
  long.fill(-0, 5 * n, 6 * n);
  long[5 * n + 9] = 0;
  long.fill(-0, 6 * n, 7 * n);
  const j = variable("j");
  const longMax = kernelOf([7], v.reduce("max", "j", n, v.load("r", linOf(0, [n, i0], [1, j]))));
  const maxima = runWasm(longMax, { r: long }).out;
  same(maxima, runEval(longMax, { r: long }), "long max");
  assert.ok(Object.is(maxima[5], 0) && Object.is(maxima[6], -0), `signed zeros: ${maxima}`);
  // Columns: each lane sums its own column, contiguous across lanes, over 50 rows.
  const cols = data(50 * 13, 19);
  const colSum = kernelOf(
    [13],
    v.sum("k", 50, v.load("c", linOf(0, [1, i0], [13, variable("k")]))),
  );
  assert.ok(check(colSum, { c: cols }, "column sums", { rel: 2e-6, abs: 2e-6 }));
  // Nested: Σ_a max_b t[i0, a, b], and a max of sums, over a row holding -Inf.
  const t = data(6 * 5 * 9, 20);
  t[3] = -Infinity;
  const a = variable("a");
  const b = variable("b");
  const cell = v.load("t", linOf(0, [45, i0], [9, a], [1, b]));
  const sumOfMax = kernelOf([6], v.sum("a", 5, v.reduce("max", "b", 9, cell)));
  check(sumOfMax, { t }, "sum of max", { rel: 1e-6, abs: 1e-6 });
  const maxOfSum = kernelOf([6], v.reduce("max", "a", 5, v.sum("b", 9, cell)));
  check(maxOfSum, { t }, "max of sum", { rel: 1e-6, abs: 1e-6 });
  // Both short: unrolled inside unrolled.
  const short = kernelOf([6, 5], v.sum("a", 2, v.reduce("max", "b", 3, cell)));
  check(short, { t }, "short nested", { rel: 1e-6, abs: 1e-6 });
});

Deno.test("wasm loop nest: softmax, layer norm and the exact GELU, inline", () => {
  // exp(x - max) / Σ exp(x - max) with both reductions in the kernel: per-element transcendental
  // error (2 ulp) plus float32 sums of up to 197 terms.
  for (const n of [7, 197]) {
    const rows = 4;
    const x = data(rows * n, 21 + n, -8, 8);
    const row = (name: string): VExpr => v.load("x", linOf(0, [n, i0], [1, variable(name)]));
    const max = v.reduce("max", "m", n, row("m"));
    const softmax = v.div(
      v.exp(v.sub(row("i1"), max)),
      v.sum("s", n, v.exp(v.sub(row("s"), max))),
    );
    const kernel = kernelOf([rows, n], softmax);
    if (n < 10) assert.ok(check(kernel, { x }, `softmax ${n}`, { rel: 2e-6 }));
    else {
      // evalExpr recomputes the max inside every term of the sum (n³ per row): JavaScript it is.
      const wasm = runWasm(kernel, { x });
      assert.ok(wasm.vectorized);
      same(wasm.out, runJs(kernel, { x }), `softmax ${n}`, { rel: 2e-6 });
    }
  }
  // (x - mean) rsqrt(var + eps) w + b over rows of 37: float32 sums and the rsqrt, relative to
  // the output's scale.
  const n = 37;
  const x = data(5 * n, 22, -2, 3);
  const w = data(n, 23);
  const bias = data(n, 24);
  const row = (name: string): VExpr => v.load("x", linOf(0, [n, i0], [1, variable(name)]));
  const mean = v.divc(v.sum("s", n, row("s")), n);
  const centered = (name: string): VExpr => v.sub(row(name), mean);
  const variance = v.divc(v.sum("q", n, v.mul(centered("q"), centered("q"))), n);
  const norm = v.add(
    v.mul(
      v.mul(centered("i1"), v.unary("rsqrt", v.add(variance, v.const(1e-6)))),
      v.load("w", i1),
    ),
    v.load("b", i1),
  );
  check(kernelOf([5, n], norm), { x, w, b: bias }, "layer norm", { rel: 2e-6, abs: 2e-6 });
  // 0.5 x (1 + erf(x * 0.70710677)) as ops/gelu.ts lowers it, against the JavaScript kernel: the
  // float32 erf is within 2.5e-7 of its spelling.
  const g = data(7 * 45, 25, -7, 7);
  const at = v.load("g", linOf(0, [45, i0], [1, i1]));
  const gelu = v.mul(
    v.mul(v.const(0.5), at),
    v.add(v.const(1), v.unary("erf", v.mul(at, v.const(Math.fround(Math.SQRT1_2))))),
  );
  const kernel = kernelOf([7, 45], gelu);
  const js = runJs(kernel, { g });
  const wasm = runWasm(kernel, { g });
  assert.ok(wasm.vectorized);
  js.forEach((want, i) => {
    const tol = 4e-7 * (1 + Math.abs(g[i]));
    assert.ok(Math.abs(wasm.out[i] - want) <= tol, `gelu(${g[i]}) = ${wasm.out[i]}, want ${want}`);
  });
});

Deno.test("renderWasmKernel: undefined for scalars, shadowing reductions and unlisted buffers", () => {
  const load = v.load("x", lin.add(i0, variable("s")));
  assert.equal(renderWasmKernel(kernelOf([4], load), 0, "k"), undefined);
  const shadow = v.sum("i0", 3, v.load("x", i0));
  assert.equal(renderWasmKernel(kernelOf([4], shadow), 0, "k"), undefined);
  const unlisted = { ...kernelOf([4], v.load("x", i0)), reads: [] };
  assert.equal(renderWasmKernel(unlisted, 0, "k"), undefined);
  assert.equal(renderWasmKernel(kernelOf([4, 5], v.load("x", i0)), 2, "k"), undefined);
  const fine = renderWasmKernel(kernelOf([4, 5], v.load("x", i0)), 1, "k");
  assert.deepEqual([fine?.args, fine?.splitAxis, fine?.vectorized], [["x"], 1, true]);
});

// ---------------------------------------------------------------------------------------------
// A lowered ViT encoder block.

/** The most terms any reduction of `e` adds up (nested extents multiplied). */
function reductionTerms(e: VExpr): number {
  const inner = (x: VExpr): number =>
    x.k === "reduce" ? x.extent * inner(x.body) : Math.max(1, ...childrenOf(x).map(inner));
  return inner(e);
}

function lowerBlock(batch: number, tokens: number, dim: number, heads: number): Program {
  const block = graph("block", (b) => {
    const x = b.input("x", ["B", tokens, dim]);
    return encoderBlock(b, x, { heads, name: "blocks.0" });
  });
  const g = specialize(block, { x: [batch, tokens, dim] }).graph;
  return lowerProgram(g, initParams(block, 1), [g.output], { gpu: false });
}

/** A whole small ViT: patch embedding, class token and position embedding, a block, the head. */
function lowerVit(): Program {
  const g0 = vit({ image: 32, patch: 8, dim: 32, depth: 1, heads: 2, classes: 10 });
  const g = specialize(g0, { image: [2, 3, 32, 32] }).graph;
  return lowerProgram(g, initParams(g0, 1), [g.output], { gpu: false });
}

Deno.test("wasm loop nest: every kernel of a lowered ViT and encoder blocks matches the JavaScript kernel", () => {
  const programs: [string, Program, number][] = [
    ["block 17x32", lowerBlock(2, 17, 32, 2), 6],
    ["block 197x64", lowerBlock(1, 197, 64, 2), 6],
    ["vit 32/8", lowerVit(), 8],
  ];
  for (const [name, program, matmuls] of programs) {
    let elementwise = 0;
    for (const [at, k] of program.kernels.entries()) {
      const what = `${name} kernel ${at} [${k.shape}]`;
      const contraction = findContraction(k, program, GEMM_TILE.nr) !== undefined;
      const split = chooseSplitAxis(k.shape, 2);
      const w = renderWasmKernel(k, split, `k${at}`);
      if (!contraction) {
        assert.ok(w, `${what} is supported`);
        assert.equal(w.vectorized, k.shape[k.shape.length - 1] >= 4, what);
        elementwise++;
      }
      if (!w) continue;
      const buffers = Object.fromEntries(
        w.args.map((a, j) => {
          const info = program.buffers.get(a);
          const n = (info?.shape ?? []).reduce((p, d) => p * d, 1);
          return [a, info?.data ?? data(n, 31 * at + j)];
        }),
      );
      // Float32 sums of n terms of magnitude up to about 1 (random inputs in [-1, 1]) against
      // float64 ones: the difference grows with n (measured up to 1.5e-5 for n = 197).
      const t = { rel: 2e-6, abs: 1e-6 + 2e-7 * reductionTerms(k.expr) };
      same(runWasm(k, buffers, { split }).out, runJs(k, buffers, { split }), what, t);
      const extent = k.shape[split];
      const o = { split, lo: Math.floor(extent / 3), hi: extent - 1 };
      same(runWasm(k, buffers, o).out, runJs(k, buffers, o), `${what} [${o.lo}, ${o.hi})`, t);
    }
    // Norms, softmax and their statistics: everything but the matrix multiplies.
    assert.equal(elementwise, program.kernels.length - matmuls, name);
  }
});

// ---------------------------------------------------------------------------------------------
// Speed.

Deno.test("wasm loop nest: speed of GELU and softmax terms against JavaScript (printed)", () => {
  const g = data(2 * 197 * 3072, 41, -6, 6);
  const gAt = v.load("g", linOf(0, [3072, i0], [1, i1]));
  const gelu = kernelOf(
    [2 * 197, 3072],
    v.mul(
      v.mul(v.const(0.5), gAt),
      v.add(v.const(1), v.unary("erf", v.mul(gAt, v.const(Math.fround(Math.SQRT1_2))))),
    ),
  );
  const s = data(26 * 197 * 197, 42, -8, 8);
  const m = data(26 * 197, 43, 0, 8);
  const terms = kernelOf(
    [26 * 197, 197],
    v.exp(v.sub(v.load("s", linOf(0, [197, i0], [1, i1])), v.load("m", i0))),
  );
  const cases: [string, Kernel, Record<string, Float32Array>][] = [
    ["gelu", gelu, { g }],
    ["softmax terms", terms, { s, m }],
  ];
  for (const [name, kernel, buffers] of cases) {
    const w = renderWasmKernel(kernel, 0, "kernel");
    assert.ok(w?.vectorized);
    const floats = kernel.size + w.args.reduce((p, a) => p + buffers[a].length, 0);
    const pages = Math.ceil((4 * floats) / 65536) + 1;
    const module = new WebAssembly.Module(withMemory(encodeModule([w.fn], pages), false));
    const memory = new WebAssembly.Memory({ initial: pages, maximum: pages });
    const exports = new WebAssembly.Instance(module, { env: { memory } }).exports;
    const f = exports.kernel as (...args: number[]) => void;
    const heap = new Float32Array(memory.buffer);
    let at = kernel.size;
    const offsets = w.args.map((a) => {
      heap.set(buffers[a], at);
      at += buffers[a].length;
      return 4 * (at - buffers[a].length);
    });
    const rows = kernel.shape[0];
    const js = renderJsKernel(kernel, 0);
    const jsKernel = new Function("out", "lo", "hi", ...js.args.map((_, j) => `buf${j}`), js.body);
    const out = new Float32Array(kernel.size);
    const jsArgs = js.args.map((a) => buffers[a]);
    // Best of several runs, the first ones warming up (V8 tiers both up while they run).
    const time = (run: () => void): number => {
      let best = Infinity;
      for (let r = 0; r < 8; r++) {
        const t0 = performance.now();
        run();
        best = Math.min(best, performance.now() - t0);
      }
      return (best * 1e6) / kernel.size;
    };
    const wasmNs = time(() => f(0, 0, rows, ...offsets));
    const jsNs = time(() => jsKernel(out, 0, rows, ...jsArgs));
    let worst = 0;
    out.forEach((want, i) => {
      worst = Math.max(worst, Math.abs(heap[i] - want) / (1 + Math.abs(want)));
    });
    assert.ok(worst < 1e-6, `${name}: ${worst}`);
    console.log(
      `${name}, ${kernel.size} elements: wasm ${wasmNs.toFixed(2)} ns/element, js ` +
        `${jsNs.toFixed(2)} ns/element (${(jsNs / wasmNs).toFixed(1)}x)`,
    );
  }
});
