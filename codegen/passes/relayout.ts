/**
 * Weight re-layout, done once at compile time: a constant buffer read as `B[s·u + r]`, where `u`
 * is the variable that should walk memory with unit stride (the GPU thread's output axis, or the
 * CPU's innermost loop), is transposed to `Bᵀ[r·(N/s) + u]`. On the GPU neighbouring threads then
 * read neighbouring weights (coalesced); on the CPU the inner loop streams through memory.
 * @module
 */

import {
  bounds,
  constant,
  type Lin,
  lin,
  loadsOf,
  mapChildren,
  type Ranges,
  type VExpr,
} from "../ir/expr.ts";
import type { BufferInfo, Kernel, Program } from "../ir/program.ts";

/**
 * Options of the pass.
 *
 * @example
 * ```ts
 * import type { RelayoutOptions } from "./relayout.ts";
 * const gpu: RelayoutOptions = { insideLoops: true };
 * ```
 */
export interface RelayoutOptions {
  /**
   * Whether to rewrite loads inside reductions longer than `unrolled` too. A GPU wants that
   * (the thread axis matters everywhere); a CPU loop nest does not (its innermost loop is the
   * reduction, which already walks the weights with unit stride).
   */
  readonly insideLoops: boolean;
  /** Reductions this short are unrolled by the emitter, so they count as straight-line code. */
  readonly unrolled?: number;
}

/**
 * Splits `index` into `s·row + rest` with `rest` in `[0, s)` and `row` in `[0, rows)`, or
 * returns undefined when it does not have that form.
 */
function splitRow(
  index: Lin,
  s: number,
  rows: number,
  ranges: Ranges,
): { row: Lin; rest: Lin } | undefined {
  let row = constant(Math.floor(index.c / s));
  let rest = constant(index.c - Math.floor(index.c / s) * s);
  for (const t of index.terms) {
    const single: Lin = { c: 0, terms: [t] };
    if (t.coeff % s === 0) {
      row = lin.add(row, lin.scale({ c: 0, terms: [{ ...t, coeff: 1 }] }, t.coeff / s));
    } else rest = lin.add(rest, single);
  }
  const [rlo, rhi] = bounds(rest, ranges);
  const [wlo, whi] = bounds(row, ranges);
  if (rlo < 0 || rhi >= s || wlo < 0 || whi >= rows) return undefined;
  return { row, rest };
}

/**
 * Rewrites the kernels of `program` so constant buffers are read with unit stride along the
 * last output axis, adding the transposed buffers. Returns a new program.
 *
 * @example
 * ```ts
 * import { relayoutWeights } from "./relayout.ts";
 * typeof relayoutWeights; // "function"
 * ```
 */
export function relayoutWeights(program: Program, options: RelayoutOptions): Program {
  const buffers = new Map(program.buffers);
  const transposed = new Map<string, string>();
  const kernels = program.kernels.map((kernel): Kernel => {
    const unit = `i${kernel.shape.length - 1}`;
    const rewrite = (e: VExpr, inLoop: boolean): VExpr => {
      switch (e.k) {
        case "const":
          return e;
        case "load": {
          if (inLoop && !options.insideLoops) return e;
          const source = buffers.get(e.buf);
          if (!source?.data || (source.kind !== "param" && source.kind !== "const")) return e;
          const s = e.index.terms.find((t) => t.atom.k === "var" && t.atom.name === unit)?.coeff;
          if (s === undefined || s <= 1) return e;
          const n = source.data.length;
          if (n % s !== 0) return e;
          const rows = n / s;
          const split = splitRow(e.index, s, rows, kernel.ranges);
          if (!split) return e;
          const name = transposedBuffer(buffers, transposed, source, s, rows);
          return { k: "load", buf: name, index: lin.add(lin.scale(split.rest, rows), split.row) };
        }
        case "reduce":
          return {
            ...e,
            body: rewrite(e.body, inLoop || e.extent > (options.unrolled ?? 0)),
          };
        default:
          return mapChildren(e, (c) => rewrite(c, inLoop));
      }
    };
    const expr = rewrite(kernel.expr, false);
    return { ...kernel, expr, reads: [...loadsOf(expr)] };
  });
  return { ...program, buffers, kernels };
}

function transposedBuffer(
  buffers: Map<string, BufferInfo>,
  done: Map<string, string>,
  source: BufferInfo,
  s: number,
  rows: number,
): string {
  const key = `${source.name}/${s}`;
  const known = done.get(key);
  if (known) return known;
  const data = new Float32Array(rows * s);
  const from = source.data as Float32Array;
  for (let row = 0; row < rows; row++) {
    for (let r = 0; r < s; r++) data[r * rows + row] = from[row * s + r];
  }
  const name = `${source.name}_T${s}`;
  buffers.set(name, { name, kind: "const", shape: [s, rows], data });
  done.set(key, name);
  return name;
}
