/**
 * The part of the GPU-style emitters that does not depend on the target language: one thread
 * computes one output element, reductions become accumulator loops (short ones unrolled), and a
 * select decided at the top becomes a branch. `render_gpujs.ts` and `render_wgsl.ts` supply the
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
} from "./expr.ts";
import type { Kernel } from "./lower.ts";
import { UNROLL } from "./render_js.ts";

/**
 * How a target language spells the pieces of a kernel body.
 *
 * @example
 * ```ts
 * import type { Syntax } from "./render_common.ts";
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
}

/**
 * Renders a kernel's expression as statement lines (indented by `indent`), and reports the
 * longest loop it emitted.
 *
 * @example
 * ```ts
 * import { renderStatements } from "./render_common.ts";
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
 * import { renderJammedStatements } from "./render_common.ts";
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
  const jam = (es: readonly VExpr[], lines: string[], at: string): string[] | undefined => {
    const first = es[0];
    if (!es.every((e) => e.k === first.k)) return undefined;
    switch (first.k) {
      case "const":
      case "load":
        return es.map((e) => r.valueText(e, lines, at));
      case "add":
      case "mul": {
        const pairs = es as readonly (VExpr & { a: VExpr; b: VExpr })[];
        const a = jam(pairs.map((e) => e.a), lines, at);
        const b = a && jam(pairs.map((e) => e.b), lines, at);
        return b && a?.map((x, j) => `(${x} ${first.k === "add" ? "+" : "*"} ${b[j]})`);
      }
      case "divc": {
        const a = jam(es.map((e) => (e as typeof first).a), lines, at);
        return a?.map((x) => `(${x} / ${syntax.float(first.c)})`);
      }
      case "select": {
        const selects = es as readonly (typeof first)[];
        const cond = r.condText(first.cond);
        if (!selects.every((e) => r.condText(e.cond) === cond)) return undefined;
        const a = jam(selects.map((e) => e.a), lines, at);
        const b = a && jam(selects.map((e) => e.b), lines, at);
        return b && a?.map((x, j) => syntax.select(cond, x, b[j]));
      }
      case "sum": {
        const sums = es as readonly (typeof first)[];
        if (!sums.every((e) => e.v === first.v && e.extent === first.extent)) return undefined;
        if (first.extent <= UNROLL) {
          const terms: string[][] = [];
          for (let k = 0; k < first.extent; k++) {
            const pinned = new Map(ranges).set(first.v, [k, k] as const);
            const t = jam(sums.map((e) => simplify(e.body, pinned)), lines, at);
            if (!t) return undefined;
            terms.push(t);
          }
          return es.map((_, j) => `(${terms.map((t) => t[j]).join(" + ")})`);
        }
        const accs = es.map(() => r.freshAccumulator());
        lines.push(...accs.map((a) => `${at}${syntax.accumulator(a)}`));
        lines.push(`${at}${syntax.loop(first.v, first.extent)}`);
        const bodies = jam(sums.map((e) => e.body), lines, at + "  ");
        if (!bodies) return undefined;
        lines.push(...bodies.map((x, j) => `${at}  ${accs[j]} += ${x};`), `${at}}`);
        r.sawLoop(first.extent);
        return accs;
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
  // Expression text; the loops of sums are appended to `lines` first.
  const valueText = (e: VExpr, lines: string[], at: string): string => {
    switch (e.k) {
      case "const":
        return syntax.float(e.v);
      case "load":
        return syntax.load(e.buf, linText(e.index));
      case "add":
        return `(${valueText(e.a, lines, at)} + ${valueText(e.b, lines, at)})`;
      case "mul":
        return `(${valueText(e.a, lines, at)} * ${valueText(e.b, lines, at)})`;
      case "divc":
        return `(${valueText(e.a, lines, at)} / ${syntax.float(e.c)})`;
      case "select":
        return syntax.select(
          condText(e.cond),
          valueText(e.a, lines, at),
          valueText(e.b, lines, at),
        );
      case "sum": {
        if (e.extent <= UNROLL) {
          const terms = Array.from(
            { length: e.extent },
            (_, k) =>
              valueText(simplify(e.body, new Map(kernel.ranges).set(e.v, [k, k])), lines, at),
          );
          return `(${terms.join(" + ")})`;
        }
        maxLoop = Math.max(maxLoop, e.extent);
        const acc = `acc${accumulators++}`;
        lines.push(`${at}${syntax.accumulator(acc)}`, `${at}${syntax.loop(e.v, e.extent)}`);
        const body = valueText(e.body, lines, at + "  ");
        lines.push(`${at}  ${acc} += ${body};`, `${at}}`);
        return acc;
      }
    }
  };
  return {
    valueText,
    condText,
    freshAccumulator: (): string => `acc${accumulators++}`,
    sawLoop: (extent: number): void => {
      maxLoop = Math.max(maxLoop, extent);
    },
    maxLoop: (): number => maxLoop,
  };
}

/**
 * A float literal both JavaScript and WGSL read as f32: integers get `.0`, negatives parentheses.
 *
 * @example
 * ```ts
 * import { floatLiteral } from "./render_common.ts";
 * floatLiteral(255); // "255.0"
 * ```
 */
export function floatLiteral(value: number): string {
  const f = Math.fround(value);
  const text = Number.isInteger(f) ? `${f}.0` : String(f);
  return f < 0 ? `(${text})` : text;
}
