/**
 * The part of the GPU-style emitters that does not depend on the target language: one thread
 * computes one output element, reductions become accumulator loops (short ones unrolled), and a
 * select decided at the top becomes a branch. `gpujs.ts` and `wgsl/loop_nest.ts` supply the
 * syntax.
 * @module
 */

import {
  type Atom,
  type Cond,
  type Lin,
  lin,
  simplify,
  substitute,
  variable,
  type VExpr,
} from "../ir/expr.ts";
import type { Kernel } from "../ir/program.ts";
import { UNROLL } from "../ir/program.ts";

export { UNROLL };

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
  /** Declares a float accumulator set to zero. */
  accumulator(name: string): string;
  /** Opens `for v in 0..extent`. */
  loop(v: string, extent: number): string;
  /** Stores (or returns) the kernel's value; `lane` is the output's offset within a jammed group. */
  store(value: string, lane: number): string;
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
  // `nested`: inside a reduction's body, where an overflow reaches the enclosing sum.
  const jam = (
    es: readonly VExpr[],
    lines: string[],
    at: string,
    nested = false,
  ): string[] | undefined => {
    const first = es[0];
    if (!es.every((e) => e.k === first.k)) return undefined;
    switch (first.k) {
      case "const":
      case "load":
        return es.map((e) => r.valueText(e, lines, at));
      case "add":
      case "mul": {
        const pairs = es as readonly (VExpr & { a: VExpr; b: VExpr })[];
        const a = jam(pairs.map((e) => e.a), lines, at, nested);
        const b = a && jam(pairs.map((e) => e.b), lines, at, nested);
        return b && a?.map((x, j) => `(${x} ${first.k === "add" ? "+" : "*"} ${b[j]})`);
      }
      case "divc": {
        const a = jam(es.map((e) => (e as typeof first).a), lines, at, nested);
        return a?.map((x) => `(${x} / ${syntax.float(first.c)})`);
      }
      case "select": {
        const selects = es as readonly (typeof first)[];
        const cond = r.condText(first.cond);
        if (!selects.every((e) => r.condText(e.cond) === cond)) return undefined;
        const a = jam(selects.map((e) => e.a), lines, at, nested);
        const b = a && jam(selects.map((e) => e.b), lines, at, nested);
        return b && a?.map((x, j) => syntax.select(cond, x, b[j]));
      }
      case "sum": {
        const sums = es as readonly (typeof first)[];
        if (!sums.every((e) => e.v === first.v && e.extent === first.extent)) return undefined;
        let values: string[];
        if (first.extent <= UNROLL) {
          const terms: string[][] = [];
          for (let k = 0; k < first.extent; k++) {
            const pinned = new Map(ranges).set(first.v, [k, k] as const);
            const t = jam(sums.map((e) => simplify(e.body, pinned)), lines, at, true);
            if (!t) return undefined;
            terms.push(t);
          }
          values = es.map((_, j) => `(${terms.map((t) => t[j]).join(" + ")})`);
        } else {
          const accs = es.map(() => r.freshAccumulator());
          lines.push(...accs.map((a) => `${at}${syntax.accumulator(a)}`));
          lines.push(`${at}${syntax.loop(first.v, first.extent)}`);
          const bodies = jam(sums.map((e) => e.body), lines, at + "  ", true);
          if (!bodies) return undefined;
          lines.push(...bodies.map((x, j) => `${at}  ${accs[j]} += ${x};`), `${at}}`);
          r.sawLoop(first.extent);
          values = accs;
        }
        return nested ? values : values.map((x, j) => r.rescued(sums[j], x, lines, at));
      }
    }
  };
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

// The expression printers shared by the plain and jammed statement renderers.
function renderer(kernel: Kernel, syntax: Syntax) {
  let maxLoop = 1;
  let accumulators = 0;
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
    const parts = x.terms.map((t) => t.coeff === 1 ? atom(t.atom) : `${atom(t.atom)} * ${t.coeff}`);
    if (x.c !== 0 || parts.length === 0) parts.push(String(x.c));
    return parts.length === 1 ? parts[0] : `(${parts.join(" + ").replaceAll("+ -", "- ")})`;
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
  // Expression text; the loops of sums are appended to `lines` first. `nested`: inside a
  // reduction's body, where an overflow reaches the enclosing sum (which gets the rescue).
  const valueText = (e: VExpr, lines: string[], at: string, nested = false): string => {
    switch (e.k) {
      case "const":
        return syntax.float(e.v);
      case "load":
        return syntax.load(e.buf, linText(e.index));
      case "add":
        return `(${valueText(e.a, lines, at, nested)} + ${valueText(e.b, lines, at, nested)})`;
      case "mul":
        return `(${valueText(e.a, lines, at, nested)} * ${valueText(e.b, lines, at, nested)})`;
      case "divc":
        return `(${valueText(e.a, lines, at, nested)} / ${syntax.float(e.c)})`;
      case "select":
        return syntax.select(
          condText(e.cond),
          valueText(e.a, lines, at, nested),
          valueText(e.b, lines, at, nested),
        );
      case "sum": {
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
          value = `(${terms.join(" + ")})`;
        } else {
          maxLoop = Math.max(maxLoop, e.extent);
          const acc = `acc${accumulators++}`;
          lines.push(`${at}${syntax.accumulator(acc)}`, `${at}${syntax.loop(e.v, e.extent)}`);
          const body = valueText(e.body, lines, at + "  ", true);
          lines.push(`${at}  ${acc} += ${body};`, `${at}}`);
          value = acc;
        }
        return nested ? value : rescued(e, value, lines, at);
      }
    }
  };
  // The value of reduction `e`, first computed as `value`, recomputed with run-time scales when
  // it overflowed (see `OverflowRescue`); `value` itself where the target needs no rescue.
  const rescued = (
    e: VExpr & { k: "sum" },
    value: string,
    lines: string[],
    at: string,
  ): string => {
    const rescue = syntax.rescue;
    const plan = rescue && productsOf(e);
    if (!rescue || !plan) return value;
    let acc = value;
    if (!/^acc\d+$/.test(value)) {
      acc = `acc${accumulators++}`;
      lines.push(`${at}${syntax.accumulator(acc)}`, `${at}${acc} += ${value};`);
    }
    const [ma, mb, scaled] = [0, 1, 2].map(() => `acc${accumulators++}`);
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
    lines.push(
      `${at}if (${rescue.overflowed(acc)}) {`,
      `${inner}${syntax.accumulator(ma)}`,
      `${inner}${syntax.accumulator(mb)}`,
      ...nest((to) => [
        `${to}${ma} = ${rescue.max(ma, rescue.abs(a))};`,
        `${to}${mb} = ${rescue.max(mb, rescue.abs(b))};`,
      ]),
      `${inner}${syntax.accumulator(scaled)}`,
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
    freshAccumulator: (): string => `acc${accumulators++}`,
    sawLoop: (extent: number): void => {
      maxLoop = Math.max(maxLoop, extent);
    },
    maxLoop: (): number => maxLoop,
  };
}

// A reduction nest `Σ_v1 Σ_v2 ... a * b` as its loops and factors; undefined when a factor holds a
// further reduction. A body that is no product is `body * 1`; a select of products splits into a
// select of each factor (`c ? x * y : 0` is `(c ? x : 0) * (c ? y : 0)`).
function productsOf(
  e: VExpr & { k: "sum" },
): { loops: { v: string; extent: number }[]; a: VExpr; b: VExpr } | undefined {
  const loops: { v: string; extent: number }[] = [];
  let body: VExpr = e;
  while (body.k === "sum") {
    loops.push({ v: body.v, extent: body.extent });
    body = body.body;
  }
  const factors = split(body);
  return factors && { loops, ...factors };
}

function split(e: VExpr): { a: VExpr; b: VExpr } | undefined {
  if (hasSum(e)) return undefined;
  if (e.k === "mul") return { a: e.a, b: e.b };
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

function hasSum(e: VExpr): boolean {
  switch (e.k) {
    case "sum":
      return true;
    case "const":
    case "load":
      return false;
    case "divc":
      return hasSum(e.a);
    default:
      return hasSum(e.a) || hasSum(e.b);
  }
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
  switch (e.k) {
    case "sum":
      return e.extent > UNROLL || hasLongSum(e.body);
    case "const":
    case "load":
      return false;
    case "divc":
      return hasLongSum(e.a);
    default:
      return hasLongSum(e.a) || hasLongSum(e.b);
  }
}
