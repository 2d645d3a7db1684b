/**
 * The part of the GPU-style emitters that does not depend on the target language: one thread
 * computes one output element, reductions become accumulator loops (short ones unrolled), and a
 * select decided at the top becomes a branch. `render_gpujs.ts` and `render_wgsl.ts` supply the
 * syntax.
 * @module
 */

import { type Atom, type Cond, type Lin, simplify, type VExpr } from "./expr.ts";
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
  /** Stores (or returns) the kernel's value. */
  store(value: string): string;
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
  const statements = (e: VExpr, at: string): string[] => {
    if (e.k === "select") {
      const then = [`${at}if (${condText(e.cond)}) {`, ...statements(e.a, at + "  ")];
      return syntax.elseBranch
        ? [...then, `${at}} else {`, ...statements(e.b, at + "  "), `${at}}`]
        : [...then, `${at}}`, ...statements(e.b, at)];
    }
    const lines: string[] = [];
    const value = valueText(e, lines, at);
    return [...lines, `${at}${syntax.store(value)}`];
  };
  return { lines: statements(kernel.expr, indent), maxLoop };
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
