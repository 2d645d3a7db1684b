/**
 * The kernel expression language the lowering produces and the emitters render.
 *
 * Index arithmetic is kept in a canonical linear form (`Lin`: integer coefficients times atoms,
 * plus a constant) whose atoms are loop variables and floor-div/mod of other linear forms. Every
 * variable has a known range, which lets the simplifier fold the index maps of flatten, reshape
 * and transpose back into plain strides (e.g. `(x / 196 | 0) * 196 + x % 196` becomes `x`).
 * Values are float expressions over loads, sums and selects.
 * @module
 */

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
 * A float value expression.
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
  | { readonly k: "add"; readonly a: VExpr; readonly b: VExpr }
  | { readonly k: "mul"; readonly a: VExpr; readonly b: VExpr }
  | { readonly k: "divc"; readonly a: VExpr; readonly c: number }
  | {
    readonly k: "sum";
    readonly v: string;
    readonly extent: number;
    readonly body: VExpr;
  }
  | { readonly k: "select"; readonly cond: Cond; readonly a: VExpr; readonly b: VExpr };

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

/** Value-expression constructors that keep trees small. */
export const v = {
  /** A float constant. */
  const(value: number): VExpr {
    return { k: "const", v: value };
  },
  /** A load from a named buffer at a linear index. */
  load(buf: string, index: Lin): VExpr {
    return { k: "load", buf, index };
  },
  /** `a + b`; adding to a select adds inside both branches, so each branch can fold alone. */
  add(a: VExpr, b: VExpr): VExpr {
    if (a.k === "const" && a.v === 0) return b;
    if (b.k === "const" && b.v === 0) return a;
    if (a.k === "select") return { ...a, a: v.add(a.a, b), b: v.add(a.b, b) };
    if (b.k === "select") return { ...b, a: v.add(a, b.a), b: v.add(a, b.b) };
    return { k: "add", a, b };
  },
  /** `a * b`. */
  mul(a: VExpr, b: VExpr): VExpr {
    return { k: "mul", a, b };
  },
  /** `a / c` for a constant `c` (a true division: `x / 255` is not `x * (1 / 255)` in f32). */
  divc(a: VExpr, c: number): VExpr {
    return { k: "divc", a, c };
  },
  /** `Σ_{name < extent} body`. */
  sum(name: string, extent: number, body: VExpr): VExpr {
    return { k: "sum", v: name, extent, body };
  },
  /** `cond ? a : b`. */
  select(cond: Cond, a: VExpr, b: VExpr): VExpr {
    if (cond.k === "bool") return cond.v ? a : b;
    return { k: "select", cond, a, b };
  },
};

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
    case "add":
      return v.add(simplify(e.a, ranges), simplify(e.b, ranges));
    case "mul":
      return v.mul(simplify(e.a, ranges), simplify(e.b, ranges));
    case "divc":
      return v.divc(simplify(e.a, ranges), e.c);
    case "sum": {
      const inner = new Map(ranges).set(e.v, [0, e.extent - 1] as const);
      return v.sum(e.v, e.extent, simplify(e.body, inner));
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
  const atom = (a: Atom): string =>
    a.k === "var"
      ? a.name
      : a.k === "div"
      ? `Math.floor((${linSource(a.x)}) / ${a.d})`
      : `((((${linSource(a.x)}) % ${a.d}) + ${a.d}) % ${a.d})`;
  const parts = x.terms.map((t) => (t.coeff === 1 ? atom(t.atom) : `${t.coeff} * ${atom(t.atom)}`));
  if (x.c !== 0 || parts.length === 0) parts.push(String(x.c));
  return parts.join(" + ");
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
    case "add":
      return evalExpr(e.a, env, buffer) + evalExpr(e.b, env, buffer);
    case "mul":
      return evalExpr(e.a, env, buffer) * evalExpr(e.b, env, buffer);
    case "divc":
      return evalExpr(e.a, env, buffer) / e.c;
    case "sum": {
      let acc = 0;
      for (let i = 0; i < e.extent; i++) {
        env.set(e.v, i);
        acc += evalExpr(e.body, env, buffer);
      }
      env.delete(e.v);
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
  switch (e.k) {
    case "const":
      break;
    case "load":
      into.add(e.buf);
      break;
    case "sum":
      loadsOf(e.body, into);
      break;
    case "divc":
      loadsOf(e.a, into);
      break;
    case "select":
    case "add":
    case "mul":
      loadsOf(e.a, into);
      loadsOf(e.b, into);
      break;
  }
  return into;
}

/**
 * The free index variables of an expression (sum variables excluded).
 *
 * @example
 * ```ts
 * import { freeVars, v, variable } from "./expr.ts";
 * freeVars(v.load("w", variable("d"))); // Set {"d"}
 * ```
 */
export function freeVars(e: VExpr): Set<string> {
  const out = new Set<string>();
  const walkLin = (x: Lin, bound: ReadonlySet<string>): void => {
    for (const t of x.terms) {
      if (t.atom.k === "var") {
        if (!bound.has(t.atom.name)) out.add(t.atom.name);
      } else walkLin(t.atom.x, bound);
    }
  };
  const walkCond = (c: Cond, bound: ReadonlySet<string>): void => {
    if (c.k === "lt" || c.k === "ge") walkLin(c.x, bound);
    else if (c.k === "and") {
      walkCond(c.a, bound);
      walkCond(c.b, bound);
    }
  };
  const walk = (x: VExpr, bound: ReadonlySet<string>): void => {
    switch (x.k) {
      case "const":
        return;
      case "load":
        return walkLin(x.index, bound);
      case "sum":
        return walk(x.body, new Set(bound).add(x.v));
      case "divc":
        return walk(x.a, bound);
      case "select":
        walkCond(x.cond, bound);
        walk(x.a, bound);
        return walk(x.b, bound);
      case "add":
      case "mul":
        walk(x.a, bound);
        return walk(x.b, bound);
    }
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
      case "const":
        return x;
      case "load":
        return { ...x, index: subLin(x.index) };
      case "add":
      case "mul":
        return { ...x, a: walk(x.a), b: walk(x.b) };
      case "divc":
        return { ...x, a: walk(x.a) };
      case "sum":
        return x.v === name ? x : { ...x, body: walk(x.body) };
      case "select":
        return { ...x, cond: subCond(x.cond), a: walk(x.a), b: walk(x.b) };
    }
  };
  return walk(e);
}
