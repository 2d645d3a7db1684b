/**
 * The part of the GPU-style emitters that does not depend on the target language: one thread
 * computes one output element, reductions become accumulator loops (short ones unrolled), and a
 * select decided at the top becomes a branch. Every op is spelled from the target's `OpSpelling`
 * table, as tinygrad's renderers use `code_for_op`; `gpujs.ts` and `wgsl/loop_nest.ts` supply
 * the syntax and the tables.
 * @module
 */

import {
  type Atom,
  type BinaryOp,
  type Cond,
  exprKey,
  type Lin,
  lin,
  printLin,
  type Ranges,
  type ReduceOp,
  simplify,
  substitute,
  type UnaryOp,
  variable,
  type VExpr,
} from "../ir/expr.ts";
import type { Kernel } from "../ir/program.ts";
import { UNROLL } from "../ir/program.ts";
import { ERF_SERIES, ERF_TAIL } from "../../ops/gelu.ts";

export { UNROLL };

/**
 * How a target spells every op of the IR. A missing entry is a compile error.
 *
 * @example
 * ```ts
 * import type { OpSpelling } from "./common.ts";
 * function exp(t: OpSpelling): string {
 *   return t.unary.exp("x");
 * }
 * ```
 */
export interface OpSpelling {
  /** Unary ops; an op in `REPEATS_ARGUMENT` gets a bound name as its argument. */
  readonly unary: { readonly [O in UnaryOp]: (a: string) => string };
  /** Binary ops; comparisons give 1.0 or 0.0. */
  readonly binary: { readonly [O in BinaryOp]: (a: string, b: string) => string };
  /** `c != 0 ? a : b` for a float `c`. */
  where(c: string, a: string, b: string): string;
  /** The start of a max reduction (-Infinity, or the lowest float where infinities are not literals). */
  readonly lowest: string;
}

/**
 * The binary ops every target spells the same, as parenthesized infix, and the comparisons from
 * the target's way of turning a condition into 1.0 or 0.0.
 *
 * @example
 * ```ts
 * import { infixOps } from "./common.ts";
 * infixOps((c) => `(${c} ? 1 : 0)`, "===").lt("a", "b"); // "(a < b ? 1 : 0)"
 * ```
 */
export function infixOps(
  oneOrZero: (condition: string) => string,
  equals: string,
): Omit<OpSpelling["binary"], "max" | "min"> {
  return {
    add: (a, b) => `(${a} + ${b})`,
    sub: (a, b) => `(${a} - ${b})`,
    mul: (a, b) => `(${a} * ${b})`,
    div: (a, b) => `(${a} / ${b})`,
    lt: (a, b) => oneOrZero(`${a} < ${b}`),
    le: (a, b) => oneOrZero(`${a} <= ${b}`),
    eq: (a, b) => oneOrZero(`${a} ${equals} ${b}`),
  };
}

/**
 * How a target spells reductions from its op table: the start value, a short reduction's terms
 * combined, and one accumulation step.
 *
 * @example
 * ```ts
 * import { reductionSpelling } from "./common.ts";
 * import { WGSL_OPS } from "./wgsl/loop_nest.ts";
 * reductionSpelling(WGSL_OPS, "0.0").accumulate("max", "acc", "x"); // "acc = max(acc, x);"
 * ```
 */
export function reductionSpelling(ops: OpSpelling, zero: string): {
  init(op: ReduceOp): string;
  combine(op: ReduceOp, terms: readonly string[]): string;
  accumulate(op: ReduceOp, acc: string, x: string): string;
} {
  return {
    init: (op) => (op === "sum" ? zero : ops.lowest),
    combine: (op, terms) =>
      op === "sum" ? `(${terms.join(" + ")})` : terms.reduce((a, b) => ops.binary.max(a, b)),
    accumulate: (op, acc, x) =>
      op === "sum" ? `${acc} += ${x};` : `${acc} = ${ops.binary.max(acc, x)};`,
  };
}

/**
 * Unary ops whose spelling uses the argument more than once: renderers bind it to a name first.
 *
 * @example
 * ```ts
 * import { REPEATS_ARGUMENT } from "./common.ts";
 * REPEATS_ARGUMENT.has("erf"); // true
 * ```
 */
export const REPEATS_ARGUMENT: ReadonlySet<UnaryOp> = new Set(["erf", "tanh"]);

/**
 * The float32 error function of `ops/gelu.ts` spelled in a target's syntax: the odd series for
 * `|x| < 0.5`, Abramowitz-Stegun 7.1.26 beyond. `x` must be a name (it is used several times).
 *
 * @example
 * ```ts
 * import { erfSpelling } from "./common.ts";
 * const js = erfSpelling("x", {
 *   float: String,
 *   abs: (a) => `Math.abs(${a})`,
 *   exp: (a) => `Math.exp(${a})`,
 *   select: (c, a, b) => `(${c} ? ${a} : ${b})`,
 * });
 * new Function("x", `return ${js};`)(0.5); // 0.5204998...
 * ```
 */
export function erfSpelling(
  x: string,
  t: {
    float(value: number): string;
    abs(a: string): string;
    exp(a: string): string;
    select(cond: string, a: string, b: string): string;
  },
): string {
  const horner = (coeffs: readonly number[], z: string): string =>
    coeffs.slice(0, -1).reduceRight(
      (acc, c) => `(${t.float(c)} + ${z} * ${acc})`,
      t.float(coeffs[coeffs.length - 1]),
    );
  const series = `(${x} * ${horner(ERF_SERIES, `(${x} * ${x})`)})`;
  const [p, ...a] = ERF_TAIL;
  const u = `(${t.float(1)} / (${t.float(1)} + ${t.float(p)} * ${t.abs(x)}))`;
  const tail = `(${t.float(1)} - ${u} * ${horner(a, u)} * ${t.exp(`(-(${x} * ${x}))`)})`;
  const signed = `(${tail} * ${t.select(`${x} < ${t.float(0)}`, t.float(-1), t.float(1))})`;
  return t.select(`${t.abs(x)} < ${t.float(0.5)}`, series, signed);
}

/**
 * `tanh` from `exp`, finite for every input: `1 - 2 / (e^{2x} + 1)` (WGSL's and some GPUs'
 * `tanh` return NaN for large arguments). `x` must be a name.
 *
 * @example
 * ```ts
 * import { tanhSpelling } from "./common.ts";
 * tanhSpelling("x", String, (a) => `Math.exp(${a})`); // "(1 - 2 / (Math.exp((2 * x)) + 1))"
 * ```
 */
export function tanhSpelling(
  x: string,
  float: (value: number) => string,
  exp: (a: string) => string,
): string {
  return `(${float(1)} - ${float(2)} / (${exp(`(${float(2)} * ${x})`)} + ${float(1)}))`;
}

/**
 * How a target language spells the pieces of a kernel body.
 *
 * @example
 * ```ts
 * import type { Syntax } from "./common.ts";
 * function usesEarlyReturn(s: Syntax): boolean {
 *   return !s.elseBranch;
 * }
 * ```
 */
export interface Syntax {
  /** An index variable (output axis or loop counter). */
  variable(name: string): string;
  /** Floor division and modulo of a non-negative index by a positive constant. */
  div(x: string, d: number): string;
  /** `x mod d`. */
  mod(x: string, d: number): string;
  /** A read of buffer `buf` at `index`. */
  load(buf: string, index: string): string;
  /** A float literal. */
  float(value: number): string;
  /** `cond ? a : b` as an expression. */
  select(cond: string, a: string, b: string): string;
  /** Declares a mutable float accumulator holding `init`. */
  accumulator(name: string, init: string): string;
  /** Declares an immutable float named `name` holding `value`. */
  bind(name: string, value: string): string;
  /** Opens `for v in 0..extent`. */
  loop(v: string, extent: number): string;
  /** Stores (or returns) the kernel's value; `lane` is the output's offset within a jammed group. */
  store(value: string, lane: number): string;
  /** The op tables. */
  readonly ops: OpSpelling;
  /** Whether a top-level branch needs an explicit `else` (no early return). */
  readonly elseBranch: boolean;
  /**
   * For targets whose accumulators are f32: recompute a reduction that overflowed (see
   * `OverflowRescue`). Absent where accumulators cannot overflow (float64 JavaScript).
   */
  readonly rescue?: OverflowRescue;
}

/**
 * How a target spells the recomputation of an overflowed reduction. An f32 sum of products
 * turns `3e38 * 4 + 3e38 * -2` into `Inf + -Inf = NaN` and `3e38 * 4 + 3e38 * -4` into NaN,
 * where the exact values are 6e38 (so +Inf) and 0, what the reference's float64 sums give.
 * When the sum is not finite, the emitters sum again with both factors divided by their largest
 * magnitude over the reduction (every product then lies in [-1, 1]) and multiply back. The
 * scales are run-time values: a compiler that assumes finite floats may fold a constant scale
 * `(a * s) * (b * s)` into `(a * b) * s²`, which overflows again (llvmpipe does).
 *
 * @example
 * ```ts
 * import type { OverflowRescue } from "./common.ts";
 * const js: OverflowRescue = {
 *   overflowed: (x) => `!(Math.abs(${x}) < 1e38)`,
 *   finite: (x) => `${x} <= 3.4028234663852886e38`,
 *   abs: (x) => `Math.abs(${x})`,
 *   max: (a, b) => `Math.max(${a}, ${b})`,
 *   min: (a, b) => `Math.min(${a}, ${b})`,
 * };
 * ```
 */
export interface OverflowRescue {
  /**
   * A condition true when `x` is ±Inf or NaN; it may also hold for large finite values (the
   * recomputation then returns the same value), never for ordinary ones.
   */
  overflowed(x: string): string;
  /**
   * A condition true when the magnitude `x` is finite. A factor that is already ±Inf (an
   * overflowed intermediate) keeps the first sum, which IEEE arithmetic got right.
   */
  finite(x: string): string;
  /** `|x|`. */
  abs(x: string): string;
  /** The larger of two floats. */
  max(a: string, b: string): string;
  /** The smaller of two floats. */
  min(a: string, b: string): string;
}

/**
 * Renders a kernel's expression as statement lines (indented by `indent`), and reports the
 * longest loop it emitted.
 *
 * @example
 * ```ts
 * import { renderStatements } from "./common.ts";
 * typeof renderStatements; // "function"
 * ```
 */
export function renderStatements(
  kernel: Kernel,
  syntax: Syntax,
  indent: string,
): { lines: string[]; maxLoop: number } {
  const r = renderer(kernel, syntax);
  const statements = (e: VExpr, at: string): string[] => {
    if (e.k === "select") {
      const then = [`${at}if (${r.condText(e.cond)}) {`, ...statements(e.a, at + "  ")];
      return syntax.elseBranch
        ? [...then, `${at}} else {`, ...statements(e.b, at + "  "), `${at}}`]
        : [...then, `${at}}`, ...statements(e.b, at)];
    }
    const lines: string[] = [];
    const value = r.valueText(e, lines, at);
    return [...lines, `${at}${syntax.store(value, 0)}`];
  };
  return { lines: statements(kernel.expr, indent), maxLoop: r.maxLoop() };
}

/**
 * Renders one value expression of `kernel` (for example a reduction's body) as the statements it
 * needs, indented by `indent`, and the text of its value.
 *
 * @example
 * ```ts
 * import { renderExpression } from "./common.ts";
 * typeof renderExpression; // "function"
 * ```
 */
export function renderExpression(
  kernel: Kernel,
  syntax: Syntax,
  e: VExpr,
  indent: string,
): { lines: string[]; value: string } {
  const lines: string[] = [];
  const value = renderer(kernel, syntax).valueText(e, lines, indent, true);
  return { lines, value };
}

/**
 * What a renderer supplies to `jamLanes`: how it prints a leaf, spells an op, and emits the loop
 * of a reduction shared by all lanes. `S` is the renderer's scope (a statement list, a block).
 *
 * @example
 * ```ts
 * import type { JamTarget } from "./common.ts";
 * type Lines = JamTarget<string[]>;
 * ```
 */
export interface JamTarget<S> {
  /** Variable ranges of the kernel (the jammed axis narrowed to the first lane's values). */
  readonly ranges: Ranges;
  /** The text of a constant or a load. */
  leaf(e: VExpr, scope: S): string;
  /** A unary, binary or where node from its operands' texts. */
  spell(
    e: VExpr & { k: "unary" | "binary" | "where" },
    operands: readonly string[],
    scope: S,
  ): string;
  /** The lanes of a select with one condition, or undefined where selects do not jam. */
  select(cond: Cond, a: readonly string[], b: readonly string[]): string[] | undefined;
  /** A short reduction's terms combined into its value. */
  combine(op: ReduceOp, terms: readonly string[]): string;
  /**
   * Emits one loop for the reduction `first` with an accumulator per lane, its body rendered by
   * `body` in the loop's scope; returns the accumulators (undefined when the body does not jam).
   */
  loop(
    first: VExpr & { k: "reduce" },
    lanes: number,
    scope: S,
    body: (inner: S) => string[] | undefined,
  ): string[] | undefined;
  /** The lanes' values of a top-level reduction, after it is computed (the overflow rescue). */
  finish?(reductions: readonly (VExpr & { k: "reduce" })[], values: string[], scope: S): string[];
}

/**
 * Unroll-and-jam, shared by the renderers: the expressions of several lanes (outputs next to each
 * other along the last axis), rendered together when they have one structure, so they share
 * their reductions' loops and the loads that do not move between lanes. Undefined when the lanes
 * differ in structure.
 *
 * @example
 * ```ts
 * import { jamLanes } from "./common.ts";
 * typeof jamLanes; // "function"
 * ```
 */
export function jamLanes<S>(
  lanes: readonly VExpr[],
  scope: S,
  target: JamTarget<S>,
  nested = false,
  // Top-level reductions already rendered (GELU reads its input twice), by the lanes' keys.
  done: Map<string, string[]> = new Map(),
): string[] | undefined {
  const first = lanes[0];
  if (!lanes.every((e) => sameNode(e, first))) return undefined;
  const again = (es: readonly VExpr[], inner: S, deeper: boolean): string[] | undefined =>
    jamLanes(es, inner, target, deeper, done);
  switch (first.k) {
    case "const":
    case "load":
      return lanes.map((e) => target.leaf(e, scope));
    case "select": {
      const selects = lanes as readonly (typeof first)[];
      const key = JSON.stringify(first.cond);
      if (!selects.every((e) => JSON.stringify(e.cond) === key)) return undefined;
      const a = again(selects.map((e) => e.a), scope, nested);
      const b = a && again(selects.map((e) => e.b), scope, nested);
      return b && a && target.select(first.cond, a, b);
    }
    case "reduce": {
      const reductions = lanes as readonly (typeof first)[];
      const key = nested ? undefined : reductions.map(exprKey).join("|");
      const known = key === undefined ? undefined : done.get(key);
      if (known) return known;
      let values: string[] | undefined;
      if (first.extent <= UNROLL) {
        const terms: string[][] = [];
        for (let k = 0; k < first.extent; k++) {
          const pinned = new Map(target.ranges).set(first.v, [k, k] as const);
          const t = again(reductions.map((e) => simplify(e.body, pinned)), scope, true);
          if (!t) return undefined;
          terms.push(t);
        }
        values = lanes.map((_, j) => target.combine(first.op, terms.map((t) => t[j])));
      } else {
        values = target.loop(
          first,
          lanes.length,
          scope,
          (inner) => again(reductions.map((e) => e.body), inner, true),
        );
      }
      if (!values) return undefined;
      if (key === undefined) return values;
      const result = target.finish ? target.finish(reductions, values, scope) : values;
      done.set(key, result);
      return result;
    }
    case "unary":
    case "binary":
    case "where": {
      const operands: string[][] = [];
      for (let c = 0; c < childrenOf(first).length; c++) {
        const texts = again(lanes.map((e) => childrenOf(e)[c]), scope, nested);
        if (!texts) return undefined;
        operands.push(texts);
      }
      const ops = lanes as readonly (typeof first)[];
      return ops.map((e, j) => target.spell(e, operands.map((o) => o[j]), scope));
    }
  }
}

/**
 * Like `renderStatements`, but each thread computes `lanes` consecutive outputs along the last
 * axis in one loop nest (unroll-and-jam): the lanes share their reductions' loops and loads of
 * what does not move along that axis. Undefined when the lanes do not share one structure.
 *
 * @example
 * ```ts
 * import { renderJammedStatements } from "./common.ts";
 * typeof renderJammedStatements; // "function"
 * ```
 */
export function renderJammedStatements(
  kernel: Kernel,
  syntax: Syntax,
  indent: string,
  lanes: number,
): { lines: string[]; maxLoop: number } | undefined {
  const last = kernel.shape.length - 1;
  const extent = kernel.shape[last];
  if (lanes < 2 || extent % lanes !== 0) return undefined;
  const v = `i${last}`;
  const ranges = new Map(kernel.ranges).set(v, [0, extent - lanes] as const);
  const r = renderer({ ...kernel, ranges }, syntax);
  // Scope: the statement list and its indentation.
  type Scope = { lines: string[]; at: string };
  const target: JamTarget<Scope> = {
    ranges,
    leaf: (e, { lines, at }) => r.valueText(e, lines, at),
    spell: (e, operands, { lines, at }) => r.spell(e, operands, lines, at),
    select: (cond, a, b) => {
      const c = r.condText(cond);
      return a.map((x, j) => syntax.select(c, x, b[j]));
    },
    combine: (op, terms) => r.combine(op, terms),
    loop: (first, count, { lines, at }, body) => {
      const accs = Array.from({ length: count }, () => r.freshName("acc"));
      lines.push(...accs.map((a) => `${at}${syntax.accumulator(a, r.init(first.op))}`));
      lines.push(`${at}${syntax.loop(first.v, first.extent)}`);
      const inner: string[] = [];
      const bodies = body({ lines: inner, at: at + "  " });
      if (!bodies) return undefined;
      lines.push(...inner, ...bodies.map((x, j) => `${at}  ${r.accumulate(first.op, accs[j], x)}`));
      lines.push(`${at}}`);
      r.sawLoop(first.extent);
      return accs;
    },
    finish: (reductions, values, { lines, at }) =>
      values.map((x, j) => r.rescued(reductions[j], x, lines, at)),
  };
  const jam = (es: readonly VExpr[], lines: string[], at: string): string[] | undefined =>
    jamLanes(es, { lines, at }, target);
  const statements = (es: readonly VExpr[], at: string): string[] | undefined => {
    const first = es[0];
    if (first.k === "select") {
      const selects = es as readonly (typeof first)[];
      const cond = r.condText(first.cond);
      if (selects.every((e) => e.k === "select" && r.condText(e.cond) === cond)) {
        const a = statements(selects.map((e) => e.a), at + "  ");
        const b = statements(selects.map((e) => e.b), at + "  ");
        if (!a || !b) return undefined;
        return syntax.elseBranch
          ? [`${at}if (${cond}) {`, ...a, `${at}} else {`, ...b, `${at}}`]
          : undefined;
      }
    }
    const lines: string[] = [];
    const values = jam(es, lines, at);
    return values && [...lines, ...values.map((x, j) => `${at}${syntax.store(x, j)}`)];
  };
  const lanesExprs = Array.from(
    { length: lanes },
    (_, j) => substitute(kernel.expr, v, lin.offset(variable(v), j), ranges),
  );
  const lines = statements(lanesExprs, indent);
  return lines && { lines, maxLoop: r.maxLoop() };
}

// Same node kind and op (and reduction variable), so lanes can share one structure.
function sameNode(a: VExpr, b: VExpr): boolean {
  if (a.k !== b.k) return false;
  if ((a.k === "unary" || a.k === "binary") && a.op !== (b as typeof a).op) return false;
  if (a.k === "reduce") {
    const r = b as typeof a;
    return a.op === r.op && a.v === r.v && a.extent === r.extent;
  }
  return true;
}

function childrenOf(e: VExpr): readonly VExpr[] {
  switch (e.k) {
    case "unary":
      return [e.a];
    case "binary":
      return [e.a, e.b];
    case "where":
      return [e.c, e.a, e.b];
    default:
      return [];
  }
}

// The expression printers shared by the plain and jammed statement renderers.
function renderer(kernel: Kernel, syntax: Syntax) {
  let maxLoop = 1;
  let names = 0;
  const ops = syntax.ops;
  const freshName = (prefix: string): string => `${prefix}${names++}`;
  // Top-level reductions already computed, per statement list.
  const shared = new WeakMap<string[], Map<string, string>>();
  const atom = (a: Atom): string => {
    switch (a.k) {
      case "var":
        return syntax.variable(a.name);
      case "div":
        return syntax.div(linText(a.x), a.d);
      case "mod":
        return syntax.mod(linText(a.x), a.d);
    }
  };
  const linText = (x: Lin): string => {
    const text = printLin(x, atom);
    return x.terms.length + (x.c !== 0 ? 1 : 0) > 1 ? `(${text})` : text;
  };
  const condText = (c: Cond): string => {
    switch (c.k) {
      case "bool":
        return String(c.v);
      case "lt":
        return `(${linText(c.x)} < ${c.c})`;
      case "ge":
        return `(${linText(c.x)} >= ${c.c})`;
      case "and":
        return `(${condText(c.a)} && ${condText(c.b)})`;
    }
  };
  const { init, combine, accumulate } = reductionSpelling(ops, syntax.float(0));
  // The text of a unary, binary or where node from its operands' texts.
  const spell = (
    e: VExpr & { k: "unary" | "binary" | "where" },
    operands: readonly string[],
    lines: string[],
    at: string,
  ): string => {
    switch (e.k) {
      case "unary": {
        if (!REPEATS_ARGUMENT.has(e.op)) return ops.unary[e.op](operands[0]);
        const name = freshName("t");
        lines.push(`${at}${syntax.bind(name, operands[0])}`);
        return ops.unary[e.op](name);
      }
      case "binary":
        return ops.binary[e.op](operands[0], operands[1]);
      case "where":
        return ops.where(operands[0], operands[1], operands[2]);
    }
  };
  // Expression text; the loops of reductions are appended to `lines` first. `nested`: inside a
  // reduction's body, where an overflow reaches the enclosing sum (which gets the rescue).
  const valueText = (e: VExpr, lines: string[], at: string, nested = false): string => {
    switch (e.k) {
      case "const":
        return syntax.float(e.v);
      case "load":
        return syntax.load(e.buf, linText(e.index));
      case "select":
        return syntax.select(
          condText(e.cond),
          valueText(e.a, lines, at, nested),
          valueText(e.b, lines, at, nested),
        );
      case "reduce": {
        // The same top-level reduction twice (GELU reads its input twice) is computed once.
        const key = nested ? undefined : exprKey(e);
        const memo = key === undefined ? undefined : shared.get(lines)?.get(key);
        if (memo) return memo;
        let value: string;
        if (e.extent <= UNROLL) {
          const terms = Array.from(
            { length: e.extent },
            (_, k) =>
              valueText(
                simplify(e.body, new Map(kernel.ranges).set(e.v, [k, k])),
                lines,
                at,
                true,
              ),
          );
          value = combine(e.op, terms);
        } else {
          maxLoop = Math.max(maxLoop, e.extent);
          const acc = freshName("acc");
          lines.push(
            `${at}${syntax.accumulator(acc, init(e.op))}`,
            `${at}${syntax.loop(e.v, e.extent)}`,
          );
          const body = valueText(e.body, lines, at + "  ", true);
          lines.push(`${at}  ${accumulate(e.op, acc, body)}`, `${at}}`);
          value = acc;
        }
        if (nested || key === undefined) return value;
        const result = rescued(e, value, lines, at);
        if (!shared.has(lines)) shared.set(lines, new Map());
        shared.get(lines)?.set(key, result);
        return result;
      }
      case "unary":
      case "binary":
      case "where":
        return spell(e, childrenOf(e).map((c) => valueText(c, lines, at, nested)), lines, at);
    }
  };
  // The value of reduction `e`, first computed as `value`, recomputed with run-time scales when
  // it overflowed (see `OverflowRescue`); `value` itself where the target needs no rescue.
  const rescued = (
    e: VExpr & { k: "reduce" },
    value: string,
    lines: string[],
    at: string,
  ): string => {
    const rescue = syntax.rescue;
    const plan = rescue && e.op === "sum" ? productsOf(e) : undefined;
    if (!rescue || !plan) return value;
    let acc = value;
    if (!/^acc\d+$/.test(value)) {
      acc = freshName("acc");
      lines.push(`${at}${syntax.accumulator(acc, value)}`);
    }
    const [ma, mb, scaled] = [0, 1, 2].map(() => freshName("acc"));
    const inner = at + "  ";
    const nest = (statements: (at: string) => string[]): string[] => {
      const open = plan.loops.map((l, d) =>
        `${inner}${"  ".repeat(d)}${syntax.loop(l.v, l.extent)}`
      );
      const close = plan.loops.map((_, d) => `${inner}${"  ".repeat(plan.loops.length - 1 - d)}}`);
      return [...open, ...statements(inner + "  ".repeat(plan.loops.length)), ...close];
    };
    for (const l of plan.loops) maxLoop = Math.max(maxLoop, l.extent);
    const a = valueText(plan.a, lines, at, true);
    const b = valueText(plan.b, lines, at, true);
    const zero = syntax.float(0);
    lines.push(
      `${at}if (${rescue.overflowed(acc)}) {`,
      `${inner}${syntax.accumulator(ma, zero)}`,
      `${inner}${syntax.accumulator(mb, zero)}`,
      ...nest((to) => [
        `${to}${ma} = ${rescue.max(ma, rescue.abs(a))};`,
        `${to}${mb} = ${rescue.max(mb, rescue.abs(b))};`,
      ]),
      `${inner}${syntax.accumulator(scaled, zero)}`,
      ...nest((to) => [`${to}${scaled} += (${a} / ${ma}) * (${b} / ${mb});`]),
      // The smaller scale first: the first product overflows only if the result does.
      `${inner}if (${rescue.finite(ma)} && ${rescue.finite(mb)}) {`,
      `${inner}  ${acc} = (${scaled} * ${rescue.min(ma, mb)}) * ${rescue.max(ma, mb)};`,
      `${inner}}`,
      `${at}}`,
    );
    return acc;
  };
  return {
    rescued,
    valueText,
    condText,
    spell,
    init,
    combine,
    accumulate,
    freshName,
    sawLoop: (extent: number): void => {
      maxLoop = Math.max(maxLoop, extent);
    },
    maxLoop: (): number => maxLoop,
  };
}

// A reduction nest `Σ_v1 Σ_v2 ... a * b` as its loops and factors; undefined when a factor holds a
// further reduction or an op the rescue cannot scale. A body that is no product is `body * 1`; a
// select of products splits into a select of each factor (`c ? x * y : 0` is
// `(c ? x : 0) * (c ? y : 0)`).
function productsOf(
  e: VExpr & { k: "reduce" },
): { loops: { v: string; extent: number }[]; a: VExpr; b: VExpr } | undefined {
  const loops: { v: string; extent: number }[] = [];
  let body: VExpr = e;
  while (body.k === "reduce" && body.op === "sum") {
    loops.push({ v: body.v, extent: body.extent });
    body = body.body;
  }
  const factors = split(body);
  return factors && { loops, ...factors };
}

function split(e: VExpr): { a: VExpr; b: VExpr } | undefined {
  if (hasReduction(e)) return undefined;
  if (e.k === "binary" && e.op === "mul") return { a: e.a, b: e.b };
  if (e.k === "select") {
    const a = split(e.a);
    const b = split(e.b);
    return a && b && {
      a: { k: "select", cond: e.cond, a: a.a, b: b.a },
      b: { k: "select", cond: e.cond, a: a.b, b: b.b },
    };
  }
  return { a: e, b: { k: "const", v: 1 } };
}

function hasReduction(e: VExpr): boolean {
  return e.k === "reduce" || childrenOf(e).some(hasReduction) ||
    (e.k === "select" && (hasReduction(e.a) || hasReduction(e.b)));
}

/**
 * A float literal both JavaScript and WGSL read as f32: integers get `.0`, negatives parentheses.
 *
 * @example
 * ```ts
 * import { floatLiteral } from "./common.ts";
 * floatLiteral(255); // "255.0"
 * ```
 */
export function floatLiteral(value: number): string {
  const f = Math.fround(value);
  // Large integers print with an exponent (`1e+38`), which both languages read as a float.
  const text = Number.isInteger(f) && !String(f).includes("e") ? `${f}.0` : String(f);
  return f < 0 ? `(${text})` : text;
}

/**
 * Whether an expression has a reduction long enough to stay a loop (not unrolled): the kernels
 * worth computing several outputs per thread or iteration.
 *
 * @example
 * ```ts
 * import { hasLongSum } from "./common.ts";
 * import { v, variable } from "../ir/expr.ts";
 * hasLongSum(v.sum("k", 768, v.load("w", variable("k")))); // true
 * ```
 */
export function hasLongSum(e: VExpr): boolean {
  if (e.k === "reduce") return e.extent > UNROLL || hasLongSum(e.body);
  if (e.k === "select") return hasLongSum(e.a) || hasLongSum(e.b);
  return childrenOf(e).some(hasLongSum);
}

/**
 * A kernel value that a SIMD map can finish in place: `exp(arg)`, or the exact GELU
 * `0.5 arg (1 + erf(arg / sqrt 2))` as ops/gelu.ts lowers it. The kernel then stores `arg`
 * and the map (`codegen/render/wasm/vector_math.ts`) turns it into the value.
 *
 * @example
 * ```ts
 * import { vectorMapRoot } from "./common.ts";
 * const x = { k: "load", buf: "x", index: { c: 0, terms: [] } } as const;
 * vectorMapRoot({ k: "unary", op: "exp", a: x })?.fn; // "exp"
 * ```
 */
export function vectorMapRoot(e: VExpr): { fn: "exp" | "gelu"; arg: VExpr } | undefined {
  if (e.k === "unary" && e.op === "exp") return { fn: "exp", arg: e.a };
  if (e.k !== "binary" || e.op !== "mul") return undefined;
  const isConst = (x: VExpr, v: number): boolean =>
    x.k === "const" && Math.abs(x.v - v) <= 1e-7 * Math.abs(v);
  // The other operand of a commutative `op` node one of whose operands is the constant `v`.
  const withConst = (x: VExpr, op: "mul" | "add", v: number): VExpr | undefined => {
    if (x.k !== "binary" || x.op !== op) return undefined;
    return isConst(x.a, v) ? x.b : isConst(x.b, v) ? x.a : undefined;
  };
  for (const [half, rest] of [[e.a, e.b], [e.b, e.a]]) {
    const arg = withConst(half, "mul", 0.5);
    const erfOf = withConst(rest, "add", 1);
    if (!arg || !erfOf || erfOf.k !== "unary" || erfOf.op !== "erf") continue;
    const scaled = withConst(erfOf.a, "mul", Math.SQRT1_2);
    if (scaled && exprKey(scaled) === exprKey(arg)) return { fn: "gelu", arg };
  }
  return undefined;
}
