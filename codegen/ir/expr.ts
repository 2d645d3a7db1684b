/**
 * The kernel expression language the lowering produces and the emitters render.
 *
 * Index arithmetic is kept in a canonical linear form (`Lin`: integer coefficients times atoms,
 * plus a constant) whose atoms are loop variables and floor-div/mod of other linear forms. Every
 * variable has a known range, which lets the simplifier fold the index maps of flatten, reshape
 * and transpose back into plain strides (e.g. `(x / 196 | 0) * 196 + x % 196` becomes `x`).
 * Values are float expressions over loads, op-table unary and binary ops, reductions and selects.
 * @module
 */

import { erf } from "../../ops/gelu.ts";

/**
 * An index atom: a variable, or floor division / modulo of a linear form by a positive constant.
 *
 * @example
 * ```ts
 * import type { Atom } from "./expr.ts";
 * const t: Atom = { k: "var", name: "t" };
 * ```
 */
export type Atom =
  | { readonly k: "var"; readonly name: string }
  | { readonly k: "div"; readonly x: Lin; readonly d: number }
  | { readonly k: "mod"; readonly x: Lin; readonly d: number };

/**
 * A linear integer form `c + Σ coeff·atom`, with atoms kept in a canonical order.
 *
 * @example
 * ```ts
 * import { lin, variable } from "./expr.ts";
 * const index = lin.add(lin.scale(variable("t"), 768), variable("d")); // t*768 + d
 * ```
 */
export interface Lin {
  /** The constant term. */
  readonly c: number;
  /** Non-zero terms, sorted by atom key. */
  readonly terms: readonly { readonly coeff: number; readonly atom: Atom; readonly key: string }[];
}

/**
 * Inclusive integer ranges of the variables in scope.
 *
 * @example
 * ```ts
 * import type { Ranges } from "./expr.ts";
 * const r: Ranges = new Map([["t", [0, 196]]]);
 * ```
 */
export type Ranges = ReadonlyMap<string, readonly [number, number]>;

/**
 * A boolean condition on indices.
 *
 * @example
 * ```ts
 * import type { Cond } from "./expr.ts";
 * import { variable } from "./expr.ts";
 * const firstToken: Cond = { k: "lt", x: variable("t"), c: 1 };
 * ```
 */
export type Cond =
  | { readonly k: "lt"; readonly x: Lin; readonly c: number }
  | { readonly k: "ge"; readonly x: Lin; readonly c: number }
  | { readonly k: "and"; readonly a: Cond; readonly b: Cond }
  | { readonly k: "bool"; readonly v: boolean };

/**
 * Unary float ops. Each renderer spells every one from its own table (`Record<UnaryOp, ...>`), so a
 * new op is a compile error in every renderer until it is spelled there.
 *
 * @example
 * ```ts
 * import type { UnaryOp } from "./expr.ts";
 * const op: UnaryOp = "rsqrt";
 * ```
 */
export type UnaryOp = "neg" | "exp" | "log" | "sqrt" | "rsqrt" | "erf" | "tanh" | "abs" | "recip";

/**
 * Binary float ops; the comparisons (`lt`, `le`, `eq`) give 1 or 0.
 *
 * @example
 * ```ts
 * import type { BinaryOp } from "./expr.ts";
 * const op: BinaryOp = "max";
 * ```
 */
export type BinaryOp = "add" | "sub" | "mul" | "div" | "max" | "min" | "lt" | "le" | "eq";

/**
 * Reductions over one variable: `sum` starts at 0, `max` at -Infinity.
 *
 * @example
 * ```ts
 * import type { ReduceOp } from "./expr.ts";
 * const op: ReduceOp = "max";
 * ```
 */
export type ReduceOp = "sum" | "max";

/**
 * Every unary op, in table order (for tests and tables).
 *
 * @example
 * ```ts
 * import { UNARY_OPS } from "./expr.ts";
 * UNARY_OPS.includes("erf"); // true
 * ```
 */
export const UNARY_OPS: readonly UnaryOp[] = [
  "neg",
  "exp",
  "log",
  "sqrt",
  "rsqrt",
  "erf",
  "tanh",
  "abs",
  "recip",
];

/**
 * Every binary op, in table order.
 *
 * @example
 * ```ts
 * import { BINARY_OPS } from "./expr.ts";
 * BINARY_OPS.includes("max"); // true
 * ```
 */
export const BINARY_OPS: readonly BinaryOp[] = [
  "add",
  "sub",
  "mul",
  "div",
  "max",
  "min",
  "lt",
  "le",
  "eq",
];

/**
 * A float value expression: loads at affine indices, unary and binary ops from the tables, a
 * value-dependent `where` (`c != 0 ? a : b`), reductions over a static extent, and `select` on an
 * index condition (which the simplifier decides from variable ranges).
 *
 * @example
 * ```ts
 * import type { VExpr } from "./expr.ts";
 * import { variable } from "./expr.ts";
 * const load: VExpr = { k: "load", buf: "pos_embed", index: variable("d") };
 * ```
 */
export type VExpr =
  | { readonly k: "const"; readonly v: number }
  | { readonly k: "load"; readonly buf: string; readonly index: Lin }
  | { readonly k: "unary"; readonly op: UnaryOp; readonly a: VExpr }
  | { readonly k: "binary"; readonly op: BinaryOp; readonly a: VExpr; readonly b: VExpr }
  | { readonly k: "where"; readonly c: VExpr; readonly a: VExpr; readonly b: VExpr }
  | {
    readonly k: "reduce";
    readonly op: ReduceOp;
    readonly v: string;
    readonly extent: number;
    readonly body: VExpr;
  }
  | { readonly k: "select"; readonly cond: Cond; readonly a: VExpr; readonly b: VExpr };

/**
 * A binary node of a given op (narrowing helper).
 *
 * @example
 * ```ts
 * import { isBinary, v } from "./expr.ts";
 * isBinary(v.add(v.const(1), v.const(2)), "add"); // false: constants fold
 * ```
 */
export function isBinary<O extends BinaryOp>(
  e: VExpr,
  op: O,
): e is VExpr & { k: "binary"; op: O } {
  return e.k === "binary" && e.op === op;
}

/**
 * A sum reduction (narrowing helper).
 *
 * @example
 * ```ts
 * import { isSum, v, variable } from "./expr.ts";
 * isSum(v.sum("k", 4, v.load("w", variable("k")))); // true
 * ```
 */
export function isSum(e: VExpr): e is VExpr & { k: "reduce"; op: "sum" } {
  return e.k === "reduce" && e.op === "sum";
}

/**
 * The direct sub-expressions of `e`, in order.
 *
 * @example
 * ```ts
 * import { children, v } from "./expr.ts";
 * children(v.neg(v.load("x", { c: 0, terms: [] }))).length; // 1
 * ```
 */
export function children(e: VExpr): readonly VExpr[] {
  switch (e.k) {
    case "const":
    case "load":
      return [];
    case "unary":
      return [e.a];
    case "binary":
    case "select":
      return [e.a, e.b];
    case "where":
      return [e.c, e.a, e.b];
    case "reduce":
      return [e.body];
  }
}

/**
 * `e` with each direct sub-expression replaced by `f(child)`; the node itself is rebuilt
 * without simplification (leaves are returned as they are).
 *
 * @example
 * ```ts
 * import { mapChildren, v } from "./expr.ts";
 * mapChildren(v.neg(v.const(1)), () => v.const(2)); // neg(2)
 * ```
 */
export function mapChildren(e: VExpr, f: (child: VExpr) => VExpr): VExpr {
  switch (e.k) {
    case "const":
    case "load":
      return e;
    case "unary":
      return { ...e, a: f(e.a) };
    case "binary":
    case "select":
      return { ...e, a: f(e.a), b: f(e.b) };
    case "where":
      return { ...e, c: f(e.c), a: f(e.a), b: f(e.b) };
    case "reduce":
      return { ...e, body: f(e.body) };
  }
}

/**
 * `e` with every node that `match` accepts replaced by `by` (top-down: a replaced node's
 * children are not visited).
 *
 * @example
 * ```ts
 * import { replaceWhere, v, variable } from "./expr.ts";
 * const e = v.exp(v.load("x", variable("i")));
 * replaceWhere(e, (n) => n.k === "load", v.const(0)); // exp(0), unsimplified
 * ```
 */
export function replaceWhere(e: VExpr, match: (node: VExpr) => boolean, by: VExpr): VExpr {
  return match(e) ? by : mapChildren(e, (c) => replaceWhere(c, match, by));
}

/**
 * Folds over every node of `e`, parents before children.
 *
 * @example
 * ```ts
 * import { foldExpr, v, variable } from "./expr.ts";
 * foldExpr(v.add(v.load("a", variable("i")), v.load("b", variable("i"))), 0, (n) => n + 1); // 3
 * ```
 */
export function foldExpr<T>(e: VExpr, init: T, f: (acc: T, node: VExpr) => T): T {
  let acc = f(init, e);
  for (const c of children(e)) acc = foldExpr(c, acc, f);
  return acc;
}

/**
 * Whether any node of `e` satisfies `test`.
 *
 * @example
 * ```ts
 * import { someNode, v, variable } from "./expr.ts";
 * someNode(v.exp(v.load("x", variable("i"))), (n) => n.k === "unary"); // true
 * ```
 */
export function someNode(e: VExpr, test: (node: VExpr) => boolean): boolean {
  return test(e) || children(e).some((c) => someNode(c, test));
}

/**
 * A structural key of an expression: equal keys mean equal values (used to share a reduction that
 * appears twice).
 *
 * @example
 * ```ts
 * import { exprKey, v, variable } from "./expr.ts";
 * exprKey(v.load("x", variable("i"))); // "x[i]"
 * ```
 */
export function exprKey(e: VExpr): string {
  switch (e.k) {
    case "const":
      return String(e.v);
    case "load":
      return `${e.buf}[${linKey(e.index)}]`;
    case "unary":
      return `${e.op}(${exprKey(e.a)})`;
    case "binary":
      return `${e.op}(${exprKey(e.a)},${exprKey(e.b)})`;
    case "where":
      return `where(${exprKey(e.c)},${exprKey(e.a)},${exprKey(e.b)})`;
    case "reduce":
      return `${e.op}_${e.v}<${e.extent}(${exprKey(e.body)})`;
    case "select":
      return `sel(${condKey(e.cond)},${exprKey(e.a)},${exprKey(e.b)})`;
  }
}

function condKey(c: Cond): string {
  switch (c.k) {
    case "bool":
      return String(c.v);
    case "lt":
      return `${linKey(c.x)}<${c.c}`;
    case "ge":
      return `${linKey(c.x)}>=${c.c}`;
    case "and":
      return `(${condKey(c.a)}&${condKey(c.b)})`;
  }
}

/**
 * The float64 meaning of each unary op: the table constant folding and `evalExpr` use, and the
 * semantics every renderer's table must agree with.
 *
 * @example
 * ```ts
 * import { UNARY_EVAL } from "./expr.ts";
 * UNARY_EVAL.rsqrt(4); // 0.5
 * ```
 */
export const UNARY_EVAL: Readonly<Record<UnaryOp, (x: number) => number>> = {
  neg: (x) => -x,
  exp: Math.exp,
  log: Math.log,
  sqrt: Math.sqrt,
  rsqrt: (x) => 1 / Math.sqrt(x),
  erf,
  tanh: Math.tanh,
  abs: Math.abs,
  recip: (x) => 1 / x,
};

/**
 * The float64 meaning of each binary op.
 *
 * @example
 * ```ts
 * import { BINARY_EVAL } from "./expr.ts";
 * BINARY_EVAL.lt(1, 2); // 1
 * ```
 */
export const BINARY_EVAL: Readonly<Record<BinaryOp, (a: number, b: number) => number>> = {
  add: (a, b) => a + b,
  sub: (a, b) => a - b,
  mul: (a, b) => a * b,
  div: (a, b) => a / b,
  max: (a, b) => (Number.isNaN(a) || Number.isNaN(b) ? NaN : Math.max(a, b)),
  min: (a, b) => (Number.isNaN(a) || Number.isNaN(b) ? NaN : Math.min(a, b)),
  lt: (a, b) => (a < b ? 1 : 0),
  le: (a, b) => (a <= b ? 1 : 0),
  eq: (a, b) => (a === b ? 1 : 0),
};

/**
 * The start value of each reduction.
 *
 * @example
 * ```ts
 * import { REDUCE_INIT } from "./expr.ts";
 * REDUCE_INIT.max; // -Infinity
 * ```
 */
export const REDUCE_INIT: Readonly<Record<ReduceOp, number>> = { sum: 0, max: -Infinity };

function atomKey(a: Atom): string {
  switch (a.k) {
    case "var":
      return a.name;
    case "div":
      return `(${linKey(a.x)})/${a.d}`;
    case "mod":
      return `(${linKey(a.x)})%${a.d}`;
  }
}

/**
 * A canonical text form of a linear expression, used as a key and in `explain()`.
 *
 * @example
 * ```ts
 * import { linKey, variable } from "./expr.ts";
 * linKey(variable("t")); // "t"
 * ```
 */
export function linKey(x: Lin): string {
  const parts = x.terms.map((t) => (t.coeff === 1 ? t.key : `${t.coeff}*${t.key}`));
  if (x.c !== 0 || parts.length === 0) parts.push(String(x.c));
  return parts.join(" + ");
}

function make(c: number, terms: Map<string, { coeff: number; atom: Atom }>): Lin {
  const sorted = [...terms.entries()]
    .filter(([, t]) => t.coeff !== 0)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([key, t]) => ({ coeff: t.coeff, atom: t.atom, key }));
  return { c, terms: sorted };
}

/**
 * A constant index.
 *
 * @example
 * ```ts
 * import { constant } from "./expr.ts";
 * constant(0).c; // 0
 * ```
 */
export function constant(c: number): Lin {
  return { c, terms: [] };
}

/**
 * A variable index.
 *
 * @example
 * ```ts
 * import { variable } from "./expr.ts";
 * variable("d").terms.length; // 1
 * ```
 */
export function variable(name: string): Lin {
  const atom: Atom = { k: "var", name };
  return { c: 0, terms: [{ coeff: 1, atom, key: name }] };
}

/**
 * Inclusive bounds of a linear form under `ranges`.
 *
 * @example
 * ```ts
 * import { bounds, variable } from "./expr.ts";
 * bounds(variable("t"), new Map([["t", [0, 196]]])); // [0, 196]
 * ```
 */
export function bounds(x: Lin, ranges: Ranges): [number, number] {
  let lo = x.c;
  let hi = x.c;
  for (const t of x.terms) {
    const [alo, ahi] = atomBounds(t.atom, ranges);
    if (t.coeff >= 0) {
      lo += t.coeff * alo;
      hi += t.coeff * ahi;
    } else {
      lo += t.coeff * ahi;
      hi += t.coeff * alo;
    }
  }
  return [lo, hi];
}

function atomBounds(a: Atom, ranges: Ranges): [number, number] {
  switch (a.k) {
    case "var": {
      const r = ranges.get(a.name);
      if (!r) throw new Error(`codegen: variable ${a.name} has no range`);
      return [r[0], r[1]];
    }
    case "div": {
      const [lo, hi] = bounds(a.x, ranges);
      return [Math.floor(lo / a.d), Math.floor(hi / a.d)];
    }
    case "mod": {
      const [lo, hi] = bounds(a.x, ranges);
      if (lo >= 0 && hi < a.d) return [lo, hi];
      return [0, a.d - 1];
    }
  }
}

/** Linear-form arithmetic with simplification under known variable ranges. */
export const lin = {
  /** `a + b`. */
  add(a: Lin, b: Lin): Lin {
    const terms = new Map<string, { coeff: number; atom: Atom }>();
    for (const t of [...a.terms, ...b.terms]) {
      const prev = terms.get(t.key);
      terms.set(t.key, { coeff: (prev?.coeff ?? 0) + t.coeff, atom: t.atom });
    }
    return make(a.c + b.c, terms);
  },
  /** `a * k` for an integer constant `k`. */
  scale(a: Lin, k: number): Lin {
    const terms = new Map<string, { coeff: number; atom: Atom }>();
    for (const t of a.terms) terms.set(t.key, { coeff: t.coeff * k, atom: t.atom });
    return make(a.c * k, terms);
  },
  /** `a + k`. */
  offset(a: Lin, k: number): Lin {
    return { c: a.c + k, terms: a.terms };
  },
  /** `floor(x / d)`, simplified: multiples of `d` come out, a remainder in `[0, d)` vanishes. */
  div(x: Lin, d: number, ranges: Ranges): Lin {
    if (d === 1) return x;
    const [xlo, xhi] = bounds(x, ranges);
    if (Math.floor(xlo / d) === Math.floor(xhi / d)) return constant(Math.floor(xlo / d));
    const { quotient, rest } = splitMultiples(x, d);
    const [lo, hi] = bounds(rest, ranges);
    const restDiv = lo >= 0 && hi < d
      ? constant(0)
      : rest.terms.length === 0
      ? constant(Math.floor(rest.c / d))
      : nestedDiv(rest, d);
    return recombine(lin.add(quotient, restDiv), ranges);
  },
  /** `x mod d` (non-negative `x`), simplified the same way. */
  mod(x: Lin, d: number, ranges: Ranges): Lin {
    if (d === 1) return constant(0);
    const [xlo, xhi] = bounds(x, ranges);
    const q = Math.floor(xlo / d);
    if (q === Math.floor(xhi / d)) return lin.offset(x, -q * d);
    const { rest } = splitMultiples(x, d);
    const [lo, hi] = bounds(rest, ranges);
    if (lo >= 0 && hi < d) return rest;
    if (rest.terms.length === 0) return constant(((rest.c % d) + d) % d);
    const inner = rest.terms.length === 1 && rest.c === 0 && rest.terms[0].coeff === 1
      ? rest.terms[0].atom
      : undefined;
    // (y mod a) mod d with d | a is y mod d.
    if (inner?.k === "mod" && inner.d % d === 0) return lin.mod(inner.x, d, ranges);
    return atomLin({ k: "mod", x: rest, d });
  },
  /** Replaces variables with a single-value range by that value. */
  pin(x: Lin, ranges: Ranges): Lin {
    let out = constant(x.c);
    for (const t of x.terms) {
      const [lo, hi] = atomBounds(t.atom, ranges);
      out = lin.add(out, lo === hi ? constant(t.coeff * lo) : repin(t, ranges));
    }
    return recombine(out, ranges);
  },
};

function repin(t: Lin["terms"][number], ranges: Ranges): Lin {
  const a = t.atom;
  if (a.k === "var") return lin.scale(atomLin(a), t.coeff);
  const x = lin.pin(a.x, ranges);
  const inner = a.k === "div" ? lin.div(x, a.d, ranges) : lin.mod(x, a.d, ranges);
  return lin.scale(inner, t.coeff);
}

function atomLin(atom: Atom): Lin {
  return { c: 0, terms: [{ coeff: 1, atom, key: atomKey(atom) }] };
}

function nestedDiv(x: Lin, d: number): Lin {
  // floor(floor(y / a) / d) is floor(y / (a*d)).
  if (x.c === 0 && x.terms.length === 1 && x.terms[0].coeff === 1) {
    const a = x.terms[0].atom;
    if (a.k === "div") return atomLin({ k: "div", x: a.x, d: a.d * d });
  }
  return atomLin({ k: "div", x, d });
}

function splitMultiples(x: Lin, d: number): { quotient: Lin; rest: Lin } {
  let quotient = constant(0);
  let rest = constant(x.c);
  for (const t of x.terms) {
    const single: Lin = { c: 0, terms: [t] };
    if (t.coeff % d === 0) quotient = lin.add(quotient, lin.scale(atomLin(t.atom), t.coeff / d));
    else rest = lin.add(rest, single);
  }
  if (rest.c >= d || rest.c < 0) {
    const q = Math.floor(rest.c / d);
    quotient = lin.offset(quotient, q);
    rest = lin.offset(rest, -q * d);
  }
  return { quotient, rest };
}

// k*d*floor(y/d) + k*(y mod d) is k*y: the identity that undoes a flatten/reshape split.
function recombine(x: Lin, ranges: Ranges): Lin {
  for (const t of x.terms) {
    if (t.atom.k !== "mod") continue;
    const y = t.atom.x;
    const d = t.atom.d;
    const divKey = atomKey({ k: "div", x: y, d });
    const partner = x.terms.find((u) => u.key === divKey && u.coeff === t.coeff * d);
    if (!partner) continue;
    const without = x.terms.filter((u) => u !== t && u !== partner);
    const rest: Lin = { c: x.c, terms: without };
    return recombine(lin.add(rest, lin.scale(y, t.coeff)), ranges);
  }
  return x;
}

/**
 * Simplifies a condition under `ranges`, folding it to a constant where the ranges decide it.
 *
 * @example
 * ```ts
 * import { simplifyCond, variable } from "./expr.ts";
 * simplifyCond({ k: "lt", x: variable("t"), c: 1 }, new Map([["t", [0, 0]]])); // { k: "bool", v: true }
 * ```
 */
export function simplifyCond(c: Cond, ranges: Ranges): Cond {
  switch (c.k) {
    case "bool":
      return c;
    case "lt":
    case "ge": {
      const x = lin.pin(c.x, ranges);
      const [lo, hi] = bounds(x, ranges);
      const lt = hi < c.c ? true : lo >= c.c ? false : undefined;
      if (lt === undefined) return { ...c, x };
      return { k: "bool", v: c.k === "lt" ? lt : !lt };
    }
    case "and": {
      const a = simplifyCond(c.a, ranges);
      const b = simplifyCond(c.b, ranges);
      if (a.k === "bool") return a.v ? b : a;
      if (b.k === "bool") return b.v ? a : b;
      return { k: "and", a, b };
    }
  }
}

/**
 * The ranges implied inside the `then` (`holds = true`) or `else` branch of a condition on a
 * single variable, such as `t < 1` narrowing `t` to `[0, 0]`.
 *
 * @example
 * ```ts
 * import { narrow, variable } from "./expr.ts";
 * narrow({ k: "lt", x: variable("t"), c: 1 }, true, new Map([["t", [0, 196]]])).get("t"); // [0, 0]
 * ```
 */
export function narrow(c: Cond, holds: boolean, ranges: Ranges): Ranges {
  if (c.k === "and") return holds ? narrow(c.b, true, narrow(c.a, true, ranges)) : ranges;
  if (c.k === "bool") return ranges;
  const single = c.x.terms.length === 1 && c.x.terms[0].coeff === 1 &&
    c.x.terms[0].atom.k === "var";
  if (!single) return ranges;
  const name = (c.x.terms[0].atom as { name: string }).name;
  const [lo, hi] = ranges.get(name) as readonly [number, number];
  const limit = c.c - c.x.c; // condition is var < limit (lt) or var >= limit (ge)
  const below = (c.k === "lt") === holds;
  const next: [number, number] = below ? [lo, Math.min(hi, limit - 1)] : [Math.max(lo, limit), hi];
  return new Map(ranges).set(name, next);
}

/** Value-expression constructors that keep trees small (constants fold, identities vanish). */
export const v = {
  /** A float constant. */
  const(value: number): VExpr {
    return { k: "const", v: value };
  },
  /** A load from a named buffer at a linear index. */
  load(buf: string, index: Lin): VExpr {
    return { k: "load", buf, index };
  },
  /** A unary op; constants fold. */
  unary(op: UnaryOp, a: VExpr): VExpr {
    if (a.k === "const") return v.const(UNARY_EVAL[op](a.v));
    return { k: "unary", op, a };
  },
  /** A binary op; constants fold. */
  binary(op: BinaryOp, a: VExpr, b: VExpr): VExpr {
    if (a.k === "const" && b.k === "const") return v.const(BINARY_EVAL[op](a.v, b.v));
    return { k: "binary", op, a, b };
  },
  /** `a + b`; adding to a select adds inside both branches, so each branch can fold alone. */
  add(a: VExpr, b: VExpr): VExpr {
    if (a.k === "const" && a.v === 0) return b;
    if (b.k === "const" && b.v === 0) return a;
    if (a.k === "select") return { ...a, a: v.add(a.a, b), b: v.add(a.b, b) };
    if (b.k === "select") return { ...b, a: v.add(a, b.a), b: v.add(a, b.b) };
    return v.binary("add", a, b);
  },
  /** `a - b`. */
  sub(a: VExpr, b: VExpr): VExpr {
    if (b.k === "const" && b.v === 0) return a;
    return v.binary("sub", a, b);
  },
  /** `a * b`. */
  mul(a: VExpr, b: VExpr): VExpr {
    if (a.k === "const" && a.v === 1) return b;
    if (b.k === "const" && b.v === 1) return a;
    return v.binary("mul", a, b);
  },
  /** `a / b` (a true division: `x / 255` is not `x * (1 / 255)` in f32). */
  div(a: VExpr, b: VExpr): VExpr {
    if (b.k === "const" && b.v === 1) return a;
    return v.binary("div", a, b);
  },
  /** `a / c` for a constant `c`. */
  divc(a: VExpr, c: number): VExpr {
    return v.div(a, v.const(c));
  },
  /** The larger of `a` and `b` (NaN if either is). */
  max(a: VExpr, b: VExpr): VExpr {
    return v.binary("max", a, b);
  },
  /** `-a`. */
  neg(a: VExpr): VExpr {
    return v.unary("neg", a);
  },
  /** `e^a`. */
  exp(a: VExpr): VExpr {
    return v.unary("exp", a);
  },
  /** `c != 0 ? a : b` for a value `c` (a comparison's 1 or 0). */
  where(c: VExpr, a: VExpr, b: VExpr): VExpr {
    if (c.k === "const") return c.v !== 0 ? a : b;
    return { k: "where", c, a, b };
  },
  /** A reduction `op_{name < extent} body`. */
  reduce(op: ReduceOp, name: string, extent: number, body: VExpr): VExpr {
    return { k: "reduce", op, v: name, extent, body };
  },
  /** `Σ_{name < extent} body`. */
  sum(name: string, extent: number, body: VExpr): VExpr {
    return v.reduce("sum", name, extent, body);
  },
  /** `cond ? a : b`. */
  select(cond: Cond, a: VExpr, b: VExpr): VExpr {
    if (cond.k === "bool") return cond.v ? a : b;
    return { k: "select", cond, a, b };
  },
};

/**
 * Rebuilds one node through the simplifying constructors (after its children changed).
 *
 * @example
 * ```ts
 * import { rebuild, v } from "./expr.ts";
 * rebuild({ k: "binary", op: "add", a: v.const(1), b: v.const(2) }); // const 3
 * ```
 */
export function rebuild(e: VExpr): VExpr {
  switch (e.k) {
    case "const":
    case "load":
      return e;
    case "unary":
      return v.unary(e.op, e.a);
    case "binary":
      switch (e.op) {
        case "add":
          return v.add(e.a, e.b);
        case "sub":
          return v.sub(e.a, e.b);
        case "mul":
          return v.mul(e.a, e.b);
        case "div":
          return v.div(e.a, e.b);
        default:
          return v.binary(e.op, e.a, e.b);
      }
    case "where":
      return v.where(e.c, e.a, e.b);
    case "reduce":
      return v.reduce(e.op, e.v, e.extent, e.body);
    case "select":
      return v.select(e.cond, e.a, e.b);
  }
}

/**
 * Simplifies a value expression top-down: conditions decided by ranges disappear, and inside each
 * branch of a select the narrowed ranges pin variables (so `pos[t*D + d]` under `t < 1` reads
 * `pos[d]`).
 *
 * @example
 * ```ts
 * import { simplify, v, variable } from "./expr.ts";
 * const e = v.select({ k: "lt", x: variable("t"), c: 1 }, v.load("a", variable("t")), v.const(0));
 * simplify(e, new Map([["t", [0, 196]]]));
 * ```
 */
export function simplify(e: VExpr, ranges: Ranges): VExpr {
  switch (e.k) {
    case "const":
      return e;
    case "load":
      return v.load(e.buf, lin.pin(e.index, ranges));
    case "reduce": {
      const inner = new Map(ranges).set(e.v, [0, e.extent - 1] as const);
      return v.reduce(e.op, e.v, e.extent, simplify(e.body, inner));
    }
    case "select": {
      const cond = simplifyCond(e.cond, ranges);
      if (cond.k === "bool") return simplify(cond.v ? e.a : e.b, ranges);
      return v.select(
        cond,
        simplify(e.a, narrow(cond, true, ranges)),
        simplify(e.b, narrow(cond, false, ranges)),
      );
    }
    default:
      return rebuild(mapChildren(e, (c) => simplify(c, ranges)));
  }
}

/**
 * Evaluates an index under concrete variable values.
 *
 * @example
 * ```ts
 * import { evalLin, variable } from "./expr.ts";
 * evalLin(variable("t"), new Map([["t", 3]])); // 3
 * ```
 */
export function evalLin(x: Lin, env: ReadonlyMap<string, number>): number {
  let s = x.c;
  for (const t of x.terms) s += t.coeff * evalAtom(t.atom, env);
  return s;
}

function evalAtom(a: Atom, env: ReadonlyMap<string, number>): number {
  switch (a.k) {
    case "var": {
      const value = env.get(a.name);
      if (value === undefined) throw new Error(`codegen: unbound variable ${a.name}`);
      return value;
    }
    case "div":
      return Math.floor(evalLin(a.x, env) / a.d);
    case "mod": {
      const x = evalLin(a.x, env);
      return ((x % a.d) + a.d) % a.d;
    }
  }
}

/**
 * A JavaScript expression computing `x` from variables of the same names (floor division, and
 * modulo that is non-negative for the non-negative indices lowering produces).
 *
 * @example
 * ```ts
 * import { lin, linSource, variable } from "./expr.ts";
 * linSource(lin.offset(lin.scale(variable("t"), 768), 3)); // "768 * t + 3"
 * ```
 */
export function linSource(x: Lin): string {
  return printLin(
    x,
    (a) =>
      a.k === "var"
        ? a.name
        : a.k === "div"
        ? `Math.floor((${linSource(a.x)}) / ${a.d})`
        : `((((${linSource(a.x)}) % ${a.d}) + ${a.d}) % ${a.d})`,
  );
}

/**
 * The one printer of linear forms every renderer uses: `coeff * atom` terms and the constant,
 * joined with `+` (`+ -` as `-`), each atom spelled by `atom`.
 *
 * @example
 * ```ts
 * import { lin, printLin, variable } from "./expr.ts";
 * printLin(lin.offset(lin.scale(variable("t"), 768), -3), (a) => a.k === "var" ? a.name : "?");
 * // "768 * t - 3"
 * ```
 */
export function printLin(x: Lin, atom: (a: Atom) => string): string {
  const parts = x.terms.map((t) => (t.coeff === 1 ? atom(t.atom) : `${t.coeff} * ${atom(t.atom)}`));
  if (x.c !== 0 || parts.length === 0) parts.push(String(x.c));
  return parts.join(" + ").replaceAll("+ -", "- ");
}

/**
 * Evaluates a condition under concrete variable values.
 *
 * @example
 * ```ts
 * import { evalCond, variable } from "./expr.ts";
 * evalCond({ k: "lt", x: variable("t"), c: 1 }, new Map([["t", 0]])); // true
 * ```
 */
export function evalCond(c: Cond, env: ReadonlyMap<string, number>): boolean {
  switch (c.k) {
    case "bool":
      return c.v;
    case "lt":
      return evalLin(c.x, env) < c.c;
    case "ge":
      return evalLin(c.x, env) >= c.c;
    case "and":
      return evalCond(c.a, env) && evalCond(c.b, env);
  }
}

/**
 * Evaluates a value expression (float64) with buffers looked up by name: the expression
 * interpreter used for constant folding and as a check on the lowering.
 *
 * @example
 * ```ts
 * import { evalExpr, v, variable } from "./expr.ts";
 * const e = v.add(v.load("a", variable("i")), v.const(1));
 * evalExpr(e, new Map([["i", 1]]), (name) => new Float32Array([5, 6])); // 7
 * ```
 */
export function evalExpr(
  e: VExpr,
  env: Map<string, number>,
  buffer: (name: string) => Float32Array,
): number {
  switch (e.k) {
    case "const":
      return e.v;
    case "load":
      return buffer(e.buf)[evalLin(e.index, env)];
    case "unary":
      return UNARY_EVAL[e.op](evalExpr(e.a, env, buffer));
    case "binary":
      return BINARY_EVAL[e.op](evalExpr(e.a, env, buffer), evalExpr(e.b, env, buffer));
    case "where":
      return evalExpr(e.c, env, buffer) !== 0
        ? evalExpr(e.a, env, buffer)
        : evalExpr(e.b, env, buffer);
    case "reduce": {
      const step = e.op === "sum" ? BINARY_EVAL.add : BINARY_EVAL.max;
      let acc = REDUCE_INIT[e.op];
      const outer = env.get(e.v);
      for (let i = 0; i < e.extent; i++) {
        env.set(e.v, i);
        acc = step(acc, evalExpr(e.body, env, buffer));
      }
      if (outer === undefined) env.delete(e.v);
      else env.set(e.v, outer);
      return acc;
    }
    case "select":
      return evalCond(e.cond, env) ? evalExpr(e.a, env, buffer) : evalExpr(e.b, env, buffer);
  }
}

/**
 * The buffers an expression reads.
 *
 * @example
 * ```ts
 * import { loadsOf, v, variable } from "./expr.ts";
 * loadsOf(v.load("w", variable("d"))); // Set {"w"}
 * ```
 */
export function loadsOf(e: VExpr, into: Set<string> = new Set()): Set<string> {
  return foldExpr(e, into, (acc, n) => (n.k === "load" ? acc.add(n.buf) : acc));
}

/**
 * The variables a linear form mentions (inside divisions and modulos too).
 *
 * @example
 * ```ts
 * import { linVars, variable } from "./expr.ts";
 * linVars(variable("t")); // Set {"t"}
 * ```
 */
export function linVars(x: Lin, into: Set<string> = new Set()): Set<string> {
  for (const t of x.terms) {
    if (t.atom.k === "var") into.add(t.atom.name);
    else linVars(t.atom.x, into);
  }
  return into;
}

/**
 * The variables a condition mentions.
 *
 * @example
 * ```ts
 * import { condVars, variable } from "./expr.ts";
 * condVars({ k: "lt", x: variable("t"), c: 1 }); // Set {"t"}
 * ```
 */
export function condVars(c: Cond, into: Set<string> = new Set()): Set<string> {
  if (c.k === "lt" || c.k === "ge") linVars(c.x, into);
  else if (c.k === "and") {
    condVars(c.a, into);
    condVars(c.b, into);
  }
  return into;
}

/**
 * The free index variables of an expression (reduction variables excluded).
 *
 * @example
 * ```ts
 * import { freeVars, v, variable } from "./expr.ts";
 * freeVars(v.load("w", variable("d"))); // Set {"d"}
 * ```
 */
export function freeVars(e: VExpr): Set<string> {
  const out = new Set<string>();
  const walk = (x: VExpr, bound: ReadonlySet<string>): void => {
    const add = (vars: Set<string>): void => {
      for (const name of vars) if (!bound.has(name)) out.add(name);
    };
    if (x.k === "load") add(linVars(x.index));
    else if (x.k === "select") add(condVars(x.cond));
    const inner = x.k === "reduce" ? new Set(bound).add(x.v) : bound;
    for (const c of children(x)) walk(c, inner);
  };
  walk(e, new Set());
  return out;
}

/**
 * Replaces variable `name` by the index `by` everywhere in `e`, re-simplifying divisions and
 * modulos under `ranges` (used to unroll or jam a loop: lane `j` reads `i + j`).
 *
 * @example
 * ```ts
 * import { lin, substitute, v, variable } from "./expr.ts";
 * const e = v.load("w", variable("i"));
 * substitute(e, "i", lin.offset(variable("i"), 1), new Map([["i", [0, 6]]])); // w[i + 1]
 * ```
 */
export function substitute(e: VExpr, name: string, by: Lin, ranges: Ranges): VExpr {
  const subLin = (x: Lin): Lin => {
    let out = constant(x.c);
    for (const t of x.terms) {
      const a = t.atom;
      const replaced = a.k === "var"
        ? (a.name === name ? by : { c: 0, terms: [{ ...t, coeff: 1 }] })
        : a.k === "div"
        ? lin.div(subLin(a.x), a.d, ranges)
        : lin.mod(subLin(a.x), a.d, ranges);
      out = lin.add(out, lin.scale(replaced, t.coeff));
    }
    return out;
  };
  const subCond = (c: Cond): Cond =>
    c.k === "bool"
      ? c
      : c.k === "and"
      ? { k: "and", a: subCond(c.a), b: subCond(c.b) }
      : { ...c, x: subLin(c.x) };
  const walk = (x: VExpr): VExpr => {
    switch (x.k) {
      case "load":
        return { ...x, index: subLin(x.index) };
      case "reduce":
        return x.v === name ? x : { ...x, body: walk(x.body) };
      case "select":
        return { ...x, cond: subCond(x.cond), a: walk(x.a), b: walk(x.b) };
      default:
        return mapChildren(x, walk);
    }
  };
  return walk(e);
}
