// Unit tests of the kernel IR (codegen/ir/expr.ts): the visitors cover every node kind, the
// simplifying constructors fold constants through the op tables and drop identities, `simplify`
// settles selects and reduction bodies from ranges, `evalExpr` follows the table semantics,
// `freeVars` and `substitute` respect reduction binding. Then the renderers' op tables: every
// op's JavaScript, gpu.js and WGSL spelling computes what UNARY_EVAL / BINARY_EVAL say, alone, in
// composition with other ops, and inside a rendered JavaScript loop nest. The op lists are
// iterated (and the expectation tables are `Record`s over the op types), so a new op is covered
// automatically or is a compile error here.
import { kernelOf, runEval } from "./ir_helpers.ts";
import assert from "node:assert/strict";
import {
  BINARY_EVAL,
  BINARY_OPS,
  type BinaryOp,
  children,
  type Cond,
  constant,
  evalExpr,
  exprKey,
  foldExpr,
  freeVars,
  type Lin,
  lin,
  linKey,
  loadsOf,
  mapChildren,
  type Ranges,
  rebuild,
  REDUCE_INIT,
  simplify,
  someNode,
  substitute,
  UNARY_EVAL,
  UNARY_OPS,
  type UnaryOp,
  v,
  variable,
  type VExpr,
} from "../codegen/ir/expr.ts";
import type { Kernel } from "../codegen/ir/program.ts";
import {
  floatLiteral,
  type OpSpelling,
  REPEATS_ARGUMENT,
  tanhSpelling,
  UNROLL,
} from "../codegen/render/common.ts";
import { JS_OPS, renderJsKernel } from "../codegen/render/js/loop_nest.ts";
import { WGSL_OPS } from "../codegen/render/wgsl/loop_nest.ts";
import { GPUJS_OPS } from "../codegen/render/gpujs.ts";

// ---------------------------------------------------------------------------------------------
// Helpers.

const i = variable("i");
const k = variable("k");
const x = v.load("x", i);
const y = v.load("y", lin.offset(i, 1));

/** Ranges from `[name, lo, hi]` triples. */
function ranges(...entries: [string, number, number][]): Ranges {
  return new Map(entries.map(([name, lo, hi]) => [name, [lo, hi] as const]));
}

/** One node of every kind, built without the simplifying constructors. */
const ONE_OF_EACH: Readonly<Record<VExpr["k"], VExpr>> = {
  const: { k: "const", v: 2 },
  load: x,
  unary: { k: "unary", op: "exp", a: x },
  binary: { k: "binary", op: "add", a: x, b: y },
  where: { k: "where", c: x, a: y, b: { k: "const", v: 3 } },
  reduce: { k: "reduce", op: "sum", v: "k", extent: 4, body: v.load("x", lin.add(i, k)) },
  select: { k: "select", cond: { k: "lt", x: i, c: 1 }, a: x, b: y },
};

const ARITY: Readonly<Record<VExpr["k"], number>> = {
  const: 0,
  load: 0,
  unary: 1,
  binary: 2,
  where: 3,
  reduce: 1,
  select: 2,
};

/** Whether `got` is within `tol` of `want` (relative above 1); NaN matches NaN, ±Inf exactly. */
function close(got: number, want: number, tol: number): boolean {
  if (Number.isNaN(want) || Number.isNaN(got)) return Number.isNaN(want) && Number.isNaN(got);
  if (!Number.isFinite(want) || !Number.isFinite(got)) return got === want;
  return Math.abs(got - want) <= tol * Math.max(1, Math.abs(want));
}

/**
 * erf to about 1e-15: `2/√π e^{-x²} Σ (2x²)^n x / (1·3···(2n+1))` (every term positive, so no
 * cancellation), and 1 beyond |x| = 6 (erfc(6) is 2e-17).
 */
function preciseErf(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const a = Math.abs(x);
  if (a > 6) return Math.sign(x);
  let term = a;
  let sum = a;
  for (let n = 1; n < 500 && term > 1e-17 * sum; n++) {
    term *= (2 * a * a) / (2 * n + 1);
    sum += term;
  }
  return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * Math.exp(-a * a) * sum;
}

/** WGSL's builtins as JavaScript functions, so WGSL spellings can be evaluated (in float64). */
const WGSL_PRELUDE: Readonly<Record<string, (...args: number[]) => number>> = {
  exp: Math.exp,
  log: Math.log,
  sqrt: Math.sqrt,
  inverseSqrt: (a) => 1 / Math.sqrt(a),
  abs: Math.abs,
  max: BINARY_EVAL.max,
  min: BINARY_EVAL.min,
  // WGSL's select(f, t, cond) is `cond ? t : f`; JavaScript passes booleans through as such.
  select: (f, t, c) => (c as unknown as boolean) ? t : f,
};

/** The renderer tables, each with how to evaluate its text as JavaScript. */
const TABLES: readonly { name: string; ops: OpSpelling; prelude: Record<string, unknown> }[] = [
  { name: "js", ops: JS_OPS, prelude: {} },
  { name: "gpujs", ops: GPUJS_OPS, prelude: {} },
  { name: "wgsl", ops: WGSL_OPS, prelude: WGSL_PRELUDE },
];

/** Evaluates a spelled expression over the named arguments. */
function compileText(
  text: string,
  args: readonly string[],
  prelude: Record<string, unknown>,
): (...values: number[]) => number {
  const names = Object.keys(prelude);
  const f = new Function(...names, ...args, `return ${text};`);
  const bound = names.map((n) => prelude[n]);
  return (...values) => f(...bound, ...values);
}

/** Tolerance of a spelled op against the table (the f32-rounded erf coefficients, WGSL's tanh). */
function tolerance(table: string, op: UnaryOp | BinaryOp): number {
  if (op === "erf") return table === "js" ? 1e-12 : 1e-6;
  if (op === "tanh" && table === "wgsl") return 1e-7;
  return 1e-12;
}

const UNARY_SAMPLES = [
  -1e4,
  -50,
  -3.7,
  -1,
  -0.7,
  -0.5,
  -0.49,
  -1e-9,
  -0,
  0,
  1e-9,
  0.3,
  0.49,
  0.5,
  0.51,
  1,
  2.5,
  5.9,
  10,
  88,
  1e4,
  Infinity,
  -Infinity,
  NaN,
];

const BINARY_SAMPLES = [-3, -0.5, -0, 0, 0.5, 2, 7, 1e30, Infinity, -Infinity, NaN];

/** Every pair of binary samples. */
const PAIRS: readonly [number, number][] = BINARY_SAMPLES.flatMap((a) =>
  BINARY_SAMPLES.map((b) => [a, b] as [number, number])
);

/** Known values of each op (a new op needs its own here: the Record makes it a compile error). */
const UNARY_KNOWN: Readonly<Record<UnaryOp, readonly [number, number][]>> = {
  neg: [[2, -2], [-0.5, 0.5]],
  exp: [[0, 1], [1, Math.E], [-Infinity, 0]],
  log: [[1, 0], [Math.E, 1], [0, -Infinity], [-1, NaN]],
  sqrt: [[4, 2], [0, 0], [-1, NaN]],
  rsqrt: [[4, 0.5], [0.25, 2], [0, Infinity]],
  erf: [[0, 0], [0.5, 0.5204998778], [1, 0.8427007929], [-2, -0.995322265], [Infinity, 1]],
  tanh: [[0, 0], [1, 0.7615941559557649], [-Infinity, -1]],
  abs: [[-3, 3], [2, 2]],
  recip: [[4, 0.25], [-0.5, -2], [0, Infinity]],
};

/** erf is a float32-accurate approximation (Abramowitz-Stegun 7.1.26: error below 1.5e-7). */
function knownTolerance(op: UnaryOp): number {
  return op === "erf" ? 1.5e-7 : 1e-9;
}

const BINARY_KNOWN: Readonly<Record<BinaryOp, readonly [number, number, number][]>> = {
  add: [[2, 3, 5], [Infinity, -Infinity, NaN]],
  sub: [[2, 3, -1], [Infinity, Infinity, NaN]],
  mul: [[2, 3, 6], [0, Infinity, NaN]],
  div: [[3, 2, 1.5], [1, 0, Infinity], [0, 0, NaN]],
  max: [[2, 3, 3], [-Infinity, -5, -5], [NaN, 1, NaN], [1, NaN, NaN]],
  min: [[2, 3, 2], [Infinity, 5, 5], [NaN, 1, NaN], [1, NaN, NaN]],
  lt: [[1, 2, 1], [2, 2, 0], [3, 2, 0], [NaN, 1, 0]],
  le: [[1, 2, 1], [2, 2, 1], [3, 2, 0], [NaN, NaN, 0]],
  eq: [[2, 2, 1], [2, 3, 0], [NaN, NaN, 0], [-0, 0, 1]],
};

/** Renders `kernel` as a JavaScript loop nest and runs it over `buffers`. */
function runJs(kernel: Kernel, buffers: Readonly<Record<string, Float32Array>>): Float32Array {
  const r = renderJsKernel(kernel);
  const f = new Function("out", "lo", "hi", ...r.args.map((_, j) => `buf${j}`), r.body);
  const out = new Float32Array(kernel.size);
  f(out, 0, kernel.shape[r.splitAxis], ...r.args.map((a) => buffers[a]));
  return out;
}

// ---------------------------------------------------------------------------------------------
// Visitors.

Deno.test("children and mapChildren: every node kind, with its arity and only its children", () => {
  for (const [kind, e] of Object.entries(ONE_OF_EACH) as [VExpr["k"], VExpr][]) {
    assert.equal(e.k, kind);
    const cs = children(e);
    assert.equal(cs.length, ARITY[kind], kind);
    const seen: VExpr[] = [];
    const markers = cs.map((_, j) => v.const(100 + j));
    const mapped = mapChildren(e, (c) => {
      seen.push(c);
      return markers[seen.length - 1];
    });
    // f is called once per child, in order, with the children themselves.
    assert.equal(seen.length, cs.length, kind);
    seen.forEach((c, j) => assert.equal(c, cs[j], `${kind} child ${j}`));
    if (cs.length === 0) {
      assert.equal(mapped, e, `${kind}: a leaf is returned as it is`);
      continue;
    }
    assert.notEqual(mapped, e, `${kind}: a new node`);
    assert.deepEqual(children(mapped), markers, kind);
    // Putting the old children back gives the original node: nothing else changed.
    const restored = mapChildren(mapped, (c) => cs[(c as { v: number }).v - 100]);
    assert.deepEqual(restored, e, kind);
    // The original is not mutated, and the rebuilt node keeps its kind (no simplification).
    assert.deepEqual(children(e), cs, kind);
    assert.equal(mapped.k, kind);
  }
  // A select's condition is not a child: mapChildren leaves it (and a reduce's variable) alone.
  const sel = mapChildren(ONE_OF_EACH.select, () => v.const(0)) as VExpr & { k: "select" };
  assert.deepEqual(sel.cond, { k: "lt", x: i, c: 1 });
  const red = mapChildren(ONE_OF_EACH.reduce, () => v.const(0)) as VExpr & { k: "reduce" };
  assert.deepEqual([red.op, red.v, red.extent], ["sum", "k", 4]);
});

Deno.test("foldExpr counts nodes in pre-order; someNode and loadsOf see every node", () => {
  const count = (e: VExpr): number => foldExpr(e, 0, (n) => n + 1);
  for (const [kind, e] of Object.entries(ONE_OF_EACH) as [VExpr["k"], VExpr][]) {
    // Each child of these is a leaf, except the where's const (also a leaf).
    assert.equal(count(e), 1 + ARITY[kind], kind);
  }
  // Nested: where(x, select(.., exp(x), y + 3), Σ_k x[i + k]) has 1 + 1 + (1 + 2 + 3) + 2 nodes.
  const nested: VExpr = {
    k: "where",
    c: x,
    a: { k: "select", cond: { k: "lt", x: i, c: 1 }, a: ONE_OF_EACH.unary, b: ONE_OF_EACH.binary },
    b: ONE_OF_EACH.reduce,
  };
  assert.equal(count(nested), 10);
  const order = foldExpr(nested, [] as string[], (acc, n) => [...acc, n.k]);
  assert.deepEqual(order, [
    "where",
    "load",
    "select",
    "unary",
    "load",
    "binary",
    "load",
    "load",
    "reduce",
    "load",
  ]);
  assert.ok(someNode(nested, (n) => n.k === "reduce"));
  assert.ok(someNode(nested, (n) => n.k === "unary" && n.op === "exp"));
  assert.ok(!someNode(nested, (n) => n.k === "unary" && n.op === "log"));
  assert.deepEqual([...loadsOf(nested)].sort(), ["x", "y"]);
});

Deno.test("exprKey: equal for equal trees, different for a different op, buffer, index or variable", () => {
  const tree = (o: {
    unary?: UnaryOp;
    binary?: BinaryOp;
    reduce?: "sum" | "max";
    buf?: string;
    index?: Lin;
    rv?: string;
    extent?: number;
    value?: number;
    cond?: Cond;
  } = {}): VExpr => {
    const rv = o.rv ?? "k";
    const body: VExpr = {
      k: "binary",
      op: o.binary ?? "mul",
      a: { k: "load", buf: o.buf ?? "x", index: lin.add(lin.scale(i, 4), variable(rv)) },
      b: { k: "unary", op: o.unary ?? "exp", a: { k: "load", buf: "w", index: o.index ?? i } },
    };
    const red: VExpr = { k: "reduce", op: o.reduce ?? "sum", v: rv, extent: o.extent ?? 4, body };
    const cond = o.cond ?? { k: "lt", x: i, c: 1 };
    return { k: "select", cond, a: red, b: { k: "const", v: o.value ?? 0 } };
  };
  const base = exprKey(tree());
  assert.equal(exprKey(tree()), base, "a tree built again has the same key");
  assert.equal(exprKey(structuredClone(tree())), base, "a deep copy has the same key");
  const variants: Record<string, VExpr> = {
    "unary op": tree({ unary: "log" }),
    "binary op": tree({ binary: "add" }),
    "reduce op": tree({ reduce: "max" }),
    "buffer": tree({ buf: "z" }),
    "index offset": tree({ index: lin.offset(i, 1) }),
    "index coefficient": tree({ index: lin.scale(i, 2) }),
    "index variable": tree({ index: variable("j") }),
    "reduction variable": tree({ rv: "k2" }),
    "extent": tree({ extent: 5 }),
    "constant": tree({ value: 1 }),
    "condition op": tree({ cond: { k: "ge", x: i, c: 1 } }),
    "condition bound": tree({ cond: { k: "lt", x: i, c: 2 } }),
  };
  const keys = new Map<string, string>();
  for (const [what, e] of Object.entries(variants)) {
    const key = exprKey(e);
    assert.notEqual(key, base, what);
    for (const [other, k2] of keys) assert.notEqual(key, k2, `${what} vs ${other}`);
    keys.set(what, key);
  }
  // where and select of the same operands differ; so do a load and a constant of the same text.
  const w: VExpr = { k: "where", c: x, a: y, b: x };
  const s: VExpr = { k: "select", cond: { k: "bool", v: true }, a: y, b: x };
  assert.notEqual(exprKey(w), exprKey(s));
  assert.equal(exprKey(v.load("x", i)), "x[i]");
});

// ---------------------------------------------------------------------------------------------
// Simplifier.

Deno.test("constants fold through every unary op to UNARY_EVAL's value", () => {
  assert.deepEqual([...UNARY_OPS].sort(), Object.keys(UNARY_EVAL).sort(), "UNARY_OPS is complete");
  assert.equal(new Set(UNARY_OPS).size, UNARY_OPS.length);
  for (const op of UNARY_OPS) {
    for (const s of UNARY_SAMPLES) {
      const want = UNARY_EVAL[op](s);
      const built = v.unary(op, v.const(s));
      const rebuilt = rebuild({ k: "unary", op, a: v.const(s) });
      const simplified = simplify({ k: "unary", op, a: v.const(s) }, new Map());
      for (const [how, e] of [["v.unary", built], ["rebuild", rebuilt], ["simplify", simplified]]) {
        const c = e as VExpr;
        assert.equal(c.k, "const", `${how} ${op}(${s})`);
        assert.ok(Object.is((c as { v: number }).v, want), `${how} ${op}(${s})`);
      }
    }
    for (const [arg, want] of UNARY_KNOWN[op]) {
      const got = (v.unary(op, v.const(arg)) as { v: number }).v;
      assert.ok(close(got, want, knownTolerance(op)), `${op}(${arg}) = ${got}, want ${want}`);
    }
  }
});

Deno.test("constants fold through every binary op to BINARY_EVAL's value", () => {
  assert.deepEqual([...BINARY_OPS].sort(), Object.keys(BINARY_EVAL).sort());
  assert.equal(new Set(BINARY_OPS).size, BINARY_OPS.length);
  for (const op of BINARY_OPS) {
    for (const [a, b] of PAIRS) {
      const want = BINARY_EVAL[op](a, b);
      const folded = v.binary(op, v.const(a), v.const(b));
      assert.equal(folded.k, "const", `${op}(${a}, ${b})`);
      assert.ok(Object.is((folded as { v: number }).v, want), `${op}(${a}, ${b})`);
      // rebuild and simplify go through the identity rules first: `0 + c` is `c`, so only the
      // sign of a zero may differ from IEEE (0 + -0 is +0, the rule gives -0).
      const node: VExpr = { k: "binary", op, a: v.const(a), b: v.const(b) };
      for (const e of [rebuild(node), simplify(node, ranges())]) {
        assert.equal(e.k, "const", `${op}(${a}, ${b})`);
        const got = (e as { v: number }).v;
        assert.ok(Object.is(got, want) || (got === 0 && want === 0), `${op}(${a}, ${b}): ${got}`);
      }
    }
    for (const [a, b, want] of BINARY_KNOWN[op]) {
      const got = (v.binary(op, v.const(a), v.const(b)) as { v: number }).v;
      assert.ok(close(got, want, 0), `${op}(${a}, ${b}) = ${got}, want ${want}`);
    }
  }
  // where with a constant condition picks its branch; a value condition stays.
  assert.equal(v.where(v.const(1), x, y), x);
  assert.equal(v.where(v.const(0), x, y), y);
  assert.equal(v.where(x, x, y).k, "where");
});

Deno.test("identities vanish (x + 0, 0 + x, x * 1, 1 * x, x / 1, x - 0); the others stay", () => {
  const zero = v.const(0);
  const one = v.const(1);
  assert.equal(v.add(x, zero), x);
  assert.equal(v.add(zero, x), x);
  assert.equal(v.mul(x, one), x);
  assert.equal(v.mul(one, x), x);
  assert.equal(v.div(x, one), x);
  assert.equal(v.divc(x, 1), x);
  assert.equal(v.sub(x, zero), x);
  // Not identities: 0 - x, 1 / x, and x * 0 (NaN and ±Inf times 0 are NaN).
  for (const e of [v.sub(zero, x), v.div(one, x), v.mul(x, zero), v.add(x, one)]) {
    assert.equal(e.k, "binary", exprKey(e));
  }
  // Through rebuild and simplify too, also once a child has simplified to the identity.
  const r = ranges(["i", 0, 7], ["t", 0, 0]);
  for (const op of ["add", "sub", "mul", "div"] as const) {
    const unit = op === "mul" || op === "div" ? one : zero;
    assert.equal(rebuild({ k: "binary", op, a: x, b: unit }), x, op);
    const decided: VExpr = {
      k: "select",
      cond: { k: "lt", x: variable("t"), c: 1 },
      a: unit,
      b: y,
    };
    assert.deepEqual(simplify({ k: "binary", op, a: x, b: decided }, r), x, op);
  }
});

Deno.test("simplify: a select decided by ranges disappears; each branch pins its loads", () => {
  const t = variable("t");
  const d = variable("d");
  const firstToken: Cond = { k: "lt", x: t, c: 1 };
  // pos[t*4 + d] under t < 1 reads pos[d]; tok[(t-1)*4 + d] under t >= 1 stays.
  const e = v.select(
    firstToken,
    v.load("pos", lin.add(lin.scale(t, 4), d)),
    v.load("tok", lin.add(lin.scale(lin.offset(t, -1), 4), d)),
  );
  const wide = ranges(["t", 0, 196], ["d", 0, 3]);
  const s = simplify(e, wide) as VExpr & { k: "select" };
  assert.equal(s.k, "select");
  assert.equal(exprKey(s.a), "pos[d]");
  assert.equal(exprKey(s.b), exprKey(e.k === "select" ? e.b : e));
  // Ranges that decide the condition remove the select.
  assert.equal(exprKey(simplify(e, ranges(["t", 0, 0], ["d", 0, 3]))), "pos[d]");
  assert.equal(exprKey(simplify(e, ranges(["t", 3, 9], ["d", 0, 3]))), "tok[d + 4*t + -4]");
  // A nested select on the same variable is decided by the narrowed range of its branch.
  const nested = v.select(firstToken, v.select({ k: "ge", x: t, c: 1 }, x, y), x);
  assert.equal(
    exprKey(simplify(nested, ranges(["t", 0, 196], ["i", 0, 7]))),
    exprKey(
      v.select(firstToken, y, x),
    ),
  );
  // An `and` narrows both bounds: floor(t / 4) is 0 for t in [1, 2].
  const quarter = lin.div(t, 4, wide);
  assert.equal(linKey(quarter), "(t)/4");
  const both: Cond = { k: "and", a: { k: "ge", x: t, c: 1 }, b: { k: "lt", x: t, c: 3 } };
  const sa = simplify(v.select(both, v.load("a", quarter), v.load("b", quarter)), wide);
  assert.equal(sa.k, "select");
  assert.equal(exprKey((sa as VExpr & { k: "select" }).a), "a[0]");
  assert.equal(exprKey((sa as VExpr & { k: "select" }).b), "b[(t)/4]");
  // A constant condition goes at once, without ranges.
  assert.equal(v.select({ k: "bool", v: false }, x, y), y);
});

Deno.test("simplify: a reduce body is simplified with its own variable's range", () => {
  // Outside, k is wide (an unrelated outer k); inside Σ_{k<4}, k is [0, 3].
  const outer = ranges(["i", 0, 7], ["k", 0, 100]);
  const kMod8 = lin.mod(k, 8, outer);
  const kDiv4 = lin.div(k, 4, outer);
  assert.equal(linKey(kMod8), "(k)%8");
  const body: VExpr = {
    k: "select",
    cond: { k: "lt", x: k, c: 4 },
    a: v.mul(v.load("x", lin.add(lin.scale(i, 4), kMod8)), v.load("w", kDiv4)),
    b: v.const(0),
  };
  const e: VExpr = { k: "reduce", op: "sum", v: "k", extent: 4, body };
  const want = v.sum(
    "k",
    4,
    v.mul(v.load("x", lin.add(lin.scale(i, 4), k)), v.load("w", constant(0))),
  );
  assert.equal(exprKey(simplify(e, outer)), exprKey(want));
  // The caller's ranges are left as they were; outside the reduce the same body is undecided.
  assert.deepEqual(outer.get("k"), [0, 100]);
  assert.equal(simplify(body, outer).k, "select");
  // A max reduction too, and a reduce nested in another sees both variables.
  const m = variable("m");
  const inner: VExpr = {
    k: "reduce",
    op: "max",
    v: "m",
    extent: 2,
    body: { k: "select", cond: { k: "lt", x: lin.add(m, k), c: 5 }, a: v.load("x", m), b: y },
  };
  const outerSum: VExpr = { k: "reduce", op: "sum", v: "k", extent: 4, body: inner };
  // m + k <= 1 + 3 < 5: the select is decided inside both loops.
  assert.equal(
    exprKey(simplify(outerSum, outer)),
    exprKey(v.sum("k", 4, v.reduce("max", "m", 2, v.load("x", m)))),
  );
});

// ---------------------------------------------------------------------------------------------
// evalExpr.

Deno.test("evalExpr: every unary and binary op, where, and max and sum reductions", () => {
  const xs = Float32Array.from(UNARY_SAMPLES);
  const env = new Map<string, number>();
  for (const op of UNARY_OPS) {
    const e: VExpr = { k: "unary", op, a: v.load("x", i) };
    xs.forEach((value, at) => {
      env.set("i", at);
      const got = evalExpr(e, env, () => xs);
      assert.ok(Object.is(got, UNARY_EVAL[op](value)), `${op}(${value})`);
    });
    for (const [arg, want] of UNARY_KNOWN[op]) {
      // A constant operand: a float32 buffer would round e (and log(e) would miss 1).
      const got = evalExpr({ k: "unary", op, a: { k: "const", v: arg } }, env, () => xs);
      assert.ok(close(got, want, knownTolerance(op)), `${op}(${arg}) = ${got}, want ${want}`);
    }
  }
  const as = Float32Array.from(PAIRS.map((p) => p[0]));
  const bs = Float32Array.from(PAIRS.map((p) => p[1]));
  const pick = (name: string): Float32Array => (name === "a" ? as : bs);
  for (const op of BINARY_OPS) {
    const e: VExpr = { k: "binary", op, a: v.load("a", i), b: v.load("b", i) };
    PAIRS.forEach((_, at) => {
      env.set("i", at);
      const want = BINARY_EVAL[op](as[at], bs[at]);
      assert.ok(Object.is(evalExpr(e, env, pick), want), `${op}(${as[at]}, ${bs[at]})`);
    });
    for (const [a, b, want] of BINARY_KNOWN[op]) {
      const got = evalExpr(
        { k: "binary", op, a: v.load("a", constant(0)), b: v.load("b", constant(0)) },
        env,
        (name) => new Float32Array([name === "a" ? a : b]),
      );
      assert.ok(close(got, want, 0), `${op}(${a}, ${b})`);
    }
  }
  // where: a non-zero condition (NaN included) takes `a`; 0 and -0 take `b`.
  const conds = new Float32Array([1, -2, NaN, Infinity, 0, -0]);
  const where: VExpr = { k: "where", c: v.load("c", i), a: v.const(10), b: v.const(20) };
  const picked = [...conds].map((_, at) => evalExpr(where, new Map([["i", at]]), () => conds));
  assert.deepEqual(picked, [10, 10, 10, 10, 20, 20]);
  // Reductions over the rows of a [5, 4] buffer.
  const rows = new Float32Array([
    ...[1, 5, 3, 2],
    ...[-Infinity, -Infinity, -Infinity, -Infinity],
    ...[-Infinity, -3, -Infinity, -Infinity],
    ...[1, NaN, 7, 2],
    ...[NaN, 2, 3, 4],
  ]);
  const row = (op: "sum" | "max"): VExpr =>
    v.reduce(op, "k", 4, v.load("r", lin.add(lin.scale(variable("i0"), 4), k)));
  const evalRows = (e: VExpr): number[] =>
    [0, 1, 2, 3, 4].map((r) => evalExpr(e, new Map([["i0", r]]), () => rows));
  assert.deepEqual(evalRows(row("max")), [5, -Infinity, -3, NaN, NaN]);
  assert.deepEqual(evalRows(row("sum")), [11, -Infinity, -Infinity, NaN, NaN]);
  // The reduction's variable is unbound afterwards; an empty reduction is its start value.
  const env2 = new Map([["i0", 0]]);
  evalExpr(row("max"), env2, () => rows);
  assert.deepEqual([...env2.keys()], ["i0"]);
  for (const op of ["sum", "max"] as const) {
    assert.equal(evalExpr(v.reduce(op, "k", 0, x), new Map(), () => rows), REDUCE_INIT[op]);
  }
  // Nested: Σ_j max_k r[j*4 + k] over the first three rows is 5 - Inf - 3.
  const nested = v.sum(
    "j",
    3,
    v.reduce("max", "k", 4, v.load("r", lin.add(lin.scale(variable("j"), 4), k))),
  );
  assert.equal(evalExpr(nested, new Map(), () => rows), -Infinity);
  // A select on an index condition.
  const sel = v.select({ k: "lt", x: i, c: 2 }, v.const(1), v.const(2));
  assert.deepEqual([0, 1, 2, 3].map((at) => evalExpr(sel, new Map([["i", at]]), () => rows)), [
    1,
    1,
    2,
    2,
  ]);
});

// ---------------------------------------------------------------------------------------------
// Binding.

Deno.test("freeVars: reduction variables are bound inside their reduce only", () => {
  const r = ranges(["t", 0, 100]);
  const inRow = v.sum("k", 4, v.load("x", lin.add(lin.scale(i, 4), k)));
  assert.deepEqual([...freeVars(inRow)], ["i"]);
  // The same name outside the reduce is free.
  assert.deepEqual([...freeVars(v.add(v.load("x", k), v.sum("k", 4, v.load("y", k))))], ["k"]);
  // Select conditions count; a condition on the reduction's own variable does not.
  const sel = v.select(
    { k: "lt", x: variable("t"), c: 1 },
    v.const(0),
    v.sum("k", 4, v.select({ k: "lt", x: k, c: 2 }, v.load("x", k), v.const(0))),
  );
  assert.deepEqual([...freeVars(sel)], ["t"]);
  // Nested reductions, and variables inside divisions and modulos.
  const nested = v.sum(
    "j",
    2,
    v.sum("k", 4, v.load("x", lin.add(lin.add(lin.scale(variable("j"), 4), k), i))),
  );
  assert.deepEqual([...freeVars(nested)], ["i"]);
  assert.deepEqual([...freeVars(v.load("x", lin.div(variable("t"), 4, r)))], ["t"]);
  assert.deepEqual([...freeVars(v.const(1))], []);
});

Deno.test("substitute: replaces free occurrences only, never a reduce's own variable", () => {
  const r = ranges(["i", 0, 7], ["k", 0, 3], ["u", 0, 5], ["z", 0, 9]);
  const inRow = v.sum("k", 4, v.load("x", lin.add(lin.scale(i, 4), k)));
  // The reduce binds k: nothing to replace.
  assert.equal(exprKey(substitute(inRow, "k", variable("z"), r)), exprKey(inRow));
  // A free k outside the reduce is replaced; the bound one inside is not.
  const mixed = v.add(v.load("x", k), v.sum("k", 4, v.load("y", k)));
  assert.equal(
    exprKey(substitute(mixed, "k", variable("z"), r)),
    exprKey(v.add(v.load("x", variable("z")), v.sum("k", 4, v.load("y", k)))),
  );
  // A free variable inside the body is replaced: i -> i + 1 moves the row by 4.
  assert.equal(
    exprKey(substitute(inRow, "i", lin.offset(i, 1), r)),
    exprKey(v.sum("k", 4, v.load("x", lin.offset(lin.add(lin.scale(i, 4), k), 4)))),
  );
  // Divisions and modulos re-simplify under the ranges: (4u + 1) mod 4 is 1, its quotient u.
  const t = variable("t");
  const wide = ranges(["t", 0, 23]);
  const split = v.add(v.load("a", lin.mod(t, 4, wide)), v.load("b", lin.div(t, 4, wide)));
  assert.equal(
    exprKey(substitute(split, "t", lin.offset(lin.scale(variable("u"), 4), 1), r)),
    exprKey(v.add(v.load("a", constant(1)), v.load("b", variable("u")))),
  );
  // Conditions are substituted too.
  const sel = v.select({ k: "lt", x: t, c: 1 }, x, y);
  const moved = substitute(sel, "t", lin.offset(variable("u"), 1), r);
  assert.equal(
    exprKey(moved),
    exprKey(v.select({ k: "lt", x: lin.offset(variable("u"), 1), c: 1 }, x, y)),
  );
  assert.equal(exprKey(simplify(moved, r)), exprKey(y), "u + 1 < 1 never holds");
});

// ---------------------------------------------------------------------------------------------
// The renderers' op tables.

Deno.test("op tables: every unary op's spelling computes UNARY_EVAL (js, gpujs, wgsl)", () => {
  for (const { name, ops, prelude } of TABLES) {
    assert.deepEqual(Object.keys(ops.unary).sort(), [...UNARY_OPS].sort(), name);
    for (const op of UNARY_OPS) {
      const text = ops.unary[op]("x");
      assert.ok(typeof text === "string" && text.includes("x"), `${name} ${op}`);
      const f = compileText(text, ["x"], prelude);
      for (const s of UNARY_SAMPLES) {
        const got = f(s);
        const want = UNARY_EVAL[op](s);
        assert.ok(
          close(got, want, tolerance(name, op)),
          `${name} ${op}(${s}) = ${got}, want ${want}`,
        );
      }
    }
  }
});

Deno.test("op tables: erf is within 1e-6 of the true erf in every table and in UNARY_EVAL", () => {
  const points: number[] = [];
  for (let s = -700; s <= 700; s++) points.push(s / 100);
  points.push(-0.5000001, -0.4999999, 0.4999999, 0.5000001, 1e-9, -1e-9, 8, -8, 30);
  const candidates: [string, (x: number) => number][] = [
    ["UNARY_EVAL", UNARY_EVAL.erf],
    ...TABLES.map((t) =>
      [t.name, compileText(t.ops.unary.erf("x"), ["x"], t.prelude)] as [
        string,
        (x: number) => number,
      ]
    ),
  ];
  for (const [name, f] of candidates) {
    let worst = 0;
    let at = 0;
    for (const p of points) {
      const err = Math.abs(f(p) - preciseErf(p));
      if (err > worst) [worst, at] = [err, p];
    }
    assert.ok(worst <= 1e-6, `${name}: erf error ${worst} at ${at}`);
  }
  // The reference itself is right (values from a 50-digit erf).
  for (
    const [p, want] of [[0.3, 0.32862675945912742], [1, 0.84270079294971487], [
      3,
      0.99997790950300141,
    ]]
  ) {
    assert.ok(Math.abs(preciseErf(p) - want) < 1e-14, `erf(${p})`);
  }
});

Deno.test("op tables: every binary op and where computes BINARY_EVAL (js, gpujs, wgsl)", () => {
  for (const { name, ops, prelude } of TABLES) {
    assert.deepEqual(Object.keys(ops.binary).sort(), [...BINARY_OPS].sort(), name);
    for (const op of BINARY_OPS) {
      const f = compileText(ops.binary[op]("a", "b"), ["a", "b"], prelude);
      for (const [a, b] of PAIRS) {
        const got = f(a, b);
        const want = BINARY_EVAL[op](a, b);
        assert.ok(close(got, want, 1e-12), `${name} ${op}(${a}, ${b}) = ${got}, want ${want}`);
      }
    }
    const where = compileText(ops.where("c", "a", "b"), ["c", "a", "b"], prelude);
    for (const c of [1, -2, NaN, Infinity, 0, -0]) {
      assert.equal(where(c, 10, 20), c !== 0 ? 10 : 20, `${name} where(${c})`);
    }
    // A max reduction's start is at most every finite float.
    const lowest = compileText(ops.lowest, [], prelude)();
    assert.ok(lowest <= -3.4028234663852886e38, `${name} lowest ${lowest}`);
  }
  assert.equal(JS_OPS.lowest, "-Infinity");
});

Deno.test("op tables: WGSL spells every op in WGSL (no Math.*, no ?:, no tanh/erf builtins)", () => {
  for (const op of UNARY_OPS) {
    const text = WGSL_OPS.unary[op]("x");
    assert.ok(!/Math\.|\?|===|\btanh\(|\berf\(/.test(text), `${op}: ${text}`);
  }
  for (const op of BINARY_OPS) {
    const text = WGSL_OPS.binary[op]("a", "b");
    assert.ok(!/Math\.|\?|===/.test(text), `${op}: ${text}`);
  }
  assert.equal(WGSL_OPS.unary.rsqrt("x"), "inverseSqrt(x)");
  assert.equal(WGSL_OPS.unary.exp("x"), "exp(x)");
  assert.equal(WGSL_OPS.unary.recip("x"), "(1.0 / x)");
  assert.equal(WGSL_OPS.unary.tanh("x"), tanhSpelling("x", floatLiteral, (a) => `exp(${a})`));
  assert.equal(WGSL_OPS.binary.max("a", "b"), "max(a, b)");
  assert.equal(WGSL_OPS.binary.lt("a", "b"), "select(0.0, 1.0, a < b)");
  assert.equal(WGSL_OPS.binary.eq("a", "b"), "select(0.0, 1.0, a == b)");
  assert.equal(WGSL_OPS.where("c", "a", "b"), "select(b, a, c != 0.0)");
  assert.equal(WGSL_OPS.lowest, "(-3.4028234663852886e+38)");
  // The ops whose spelling repeats its argument are the ones renderers bind to a name first.
  for (const { name, ops } of TABLES) {
    for (const op of UNARY_OPS) {
      const uses = ops.unary[op]("ARG").split("ARG").length - 1;
      if (uses > 1) assert.ok(REPEATS_ARGUMENT.has(op), `${name} ${op} uses its argument ${uses}x`);
    }
  }
});

/**
 * Every op spelled around another op's spelling (in each operand position) against the composed
 * table semantics: a spelling must bind as tightly as a function call.
 */
function compositionErrors(table: (typeof TABLES)[number]): string[] {
  const { ops, prelude } = table;
  const values = [-2.5, -1, 0.5, 3];
  const inner: { text: string; f: (p: number, q: number) => number; label: string }[] = [];
  for (const op of BINARY_OPS) {
    inner.push({ text: ops.binary[op]("p", "q"), f: BINARY_EVAL[op], label: `${op}(p, q)` });
  }
  for (const op of UNARY_OPS) {
    if (REPEATS_ARGUMENT.has(op)) continue; // renderers bind its argument to a name
    inner.push({ text: ops.unary[op]("p"), f: (p) => UNARY_EVAL[op](p), label: `${op}(p)` });
  }
  const errors: string[] = [];
  const check = (
    text: string,
    want: (p: number, q: number, r: number) => number,
    label: string,
  ) => {
    const f = compileText(text, ["p", "q", "r"], prelude);
    for (const p of values) {
      for (const q of values) {
        for (const r of values) {
          const got = f(p, q, r);
          const w = want(p, q, r);
          if (!close(got, w, 1e-12)) {
            errors.push(`${label} at ${p}, ${q}, ${r}: ${text} = ${got}, want ${w}`);
          }
        }
      }
    }
  };
  for (const { text, f, label } of inner) {
    for (const op of BINARY_OPS) {
      const g = BINARY_EVAL[op];
      check(ops.binary[op](text, "r"), (p, q, r) => g(f(p, q), r), `${op}(${label}, r)`);
      check(ops.binary[op]("r", text), (p, q, r) => g(r, f(p, q)), `${op}(r, ${label})`);
    }
    for (const op of UNARY_OPS) {
      if (REPEATS_ARGUMENT.has(op)) continue;
      const g = UNARY_EVAL[op];
      check(ops.unary[op](text), (p, q) => g(f(p, q)), `${op}(${label})`);
    }
    check(ops.where(text, "r", "q"), (p, q, r) => (f(p, q) !== 0 ? r : q), `where(${label}, r, q)`);
    check(ops.where("r", text, "q"), (p, q, r) => (r !== 0 ? f(p, q) : q), `where(r, ${label}, q)`);
  }
  return errors;
}

Deno.test("op tables: gpu.js and WGSL spellings compose (each binds like a function call)", () => {
  for (const table of TABLES.filter((t) => t.name !== "js")) {
    const errors = compositionErrors(table);
    assert.deepEqual(errors.slice(0, 5), [], `${table.name}: ${errors.length} wrong compositions`);
  }
});

// Found with this test: `mul` was spelled `a * b`, so div(a, mul(b, c)) rendered `(a / b * c)`.
Deno.test("op tables: JavaScript spellings compose (each binds like a function call)", () => {
  const errors = compositionErrors(TABLES[0]);
  assert.deepEqual(errors.slice(0, 5), [], `js: ${errors.length} wrong compositions`);
});

Deno.test("tanhSpelling: finite, within 1e-7 of Math.tanh up to |x| = 1e4, exactly ±1 at ±Inf", () => {
  const spellings: [string, (x: number) => number][] = [
    ["js", compileText(tanhSpelling("x", String, (a) => `Math.exp(${a})`), ["x"], {})],
    ["wgsl", compileText(tanhSpelling("x", floatLiteral, (a) => `exp(${a})`), ["x"], WGSL_PRELUDE)],
  ];
  const points: number[] = [0, -0, 1e-12, 5e-324];
  for (let s = -20000; s <= 20000; s++) points.push(s / 1000); // [-20, 20] every 0.001
  for (let e = -10; e <= 4; e += 0.01) points.push(10 ** e, -(10 ** e)); // 1e-10 .. 1e4
  points.push(1e4, -1e4, 44.3, 88.7, 354.9, 355, 710);
  for (const [name, f] of spellings) {
    let worst = 0;
    for (const p of points) {
      const got = f(p);
      assert.ok(Number.isFinite(got), `${name} tanh(${p}) = ${got}`);
      worst = Math.max(worst, Math.abs(got - Math.tanh(p)));
    }
    assert.ok(worst <= 1e-7, `${name}: worst error ${worst}`);
    assert.equal(f(Infinity), 1, name);
    assert.equal(f(-Infinity), -1, name);
    assert.ok(Number.isNaN(f(NaN)), name);
  }
});

Deno.test("renderJsKernel: one-op kernels and reductions compute what evalExpr computes", () => {
  const n = UNARY_SAMPLES.length;
  const xs = Float32Array.from(UNARY_SAMPLES);
  const i0 = variable("i0");
  const same = (got: Float32Array, want: Float32Array, what: string, tol = 0): void => {
    want.forEach((w, at) =>
      assert.ok(close(got[at], w, tol), `${what} [${at}]: ${got[at]} vs ${w}`)
    );
  };
  for (const op of UNARY_OPS) {
    const kernel = kernelOf([n], { k: "unary", op, a: v.load("x", i0) });
    same(runJs(kernel, { x: xs }), runEval(kernel, { x: xs }), op);
  }
  const as = Float32Array.from(PAIRS.map((p) => p[0]));
  const bs = Float32Array.from(PAIRS.map((p) => p[1]));
  for (const op of BINARY_OPS) {
    const kernel = kernelOf([PAIRS.length], {
      k: "binary",
      op,
      a: v.load("a", i0),
      b: v.load("b", i0),
    });
    same(runJs(kernel, { a: as, b: bs }), runEval(kernel, { a: as, b: bs }), op);
  }
  const where = kernelOf([PAIRS.length], {
    k: "where",
    c: v.load("a", i0),
    a: v.load("b", i0),
    b: v.const(7),
  });
  same(runJs(where, { a: as, b: bs }), runEval(where, { a: as, b: bs }), "where");
  // Row reductions, unrolled (extent <= UNROLL) and looped, over rows with -Inf and NaN.
  const rows = new Float32Array([
    ...[1, 5, 3, 2, 0, 9, -1],
    ...[-Infinity, -Infinity, -Infinity, -Infinity, -Infinity, -Infinity, -Infinity],
    ...[-Infinity, -3, -Infinity, -Infinity, -Infinity, -Infinity, -4],
    ...[1, NaN, 7, 2, 0, 1, 1],
    ...[NaN, 2, 3, 4, 5, 6, 7],
    ...[0.5, 0.25, -0.125, 8, 1e30, -1e30, 3],
  ]);
  for (const extent of [UNROLL - 1, 7]) {
    for (const op of ["sum", "max"] as const) {
      const j = `r${extent}`;
      const body = v.load("r", lin.add(lin.scale(i0, 7), variable(j)));
      const kernel = kernelOf([6], v.reduce(op, j, extent, body));
      same(runJs(kernel, { r: rows }), runEval(kernel, { r: rows }), `${op} over ${extent}`);
    }
  }
  // A softmax-shaped row kernel: exp(x - max) / Σ exp(x - max), with the max and sum inline.
  const row = (name: string) => v.load("r", lin.add(lin.scale(variable("i0"), 7), variable(name)));
  const max = v.reduce("max", "m", 7, row("m"));
  const softmax = v.div(
    v.exp(v.sub(row("i1"), max)),
    v.sum("s", 7, v.exp(v.sub(row("s"), max))),
  );
  const sk = kernelOf([6, 7], softmax);
  const finite = rows.map((r) => (Number.isFinite(r) && Math.abs(r) < 100 ? r : 0));
  same(runJs(sk, { r: finite }), runEval(sk, { r: finite }), "softmax", 1e-6);
});

Deno.test({
  name: "renderJsKernel: x / (y * z) divides by the product",
  fn() {
    const i0 = variable("i0");
    const kernel = kernelOf([1], v.div(v.load("x", i0), v.mul(v.load("y", i0), v.load("z", i0))));
    const buffers = {
      x: new Float32Array([8]),
      y: new Float32Array([2]),
      z: new Float32Array([4]),
    };
    assert.deepEqual([...runEval(kernel, buffers)], [1]);
    assert.deepEqual([...runJs(kernel, buffers)], [1]);
  },
});
