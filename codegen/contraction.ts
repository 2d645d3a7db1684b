/**
 * Finds the matrix multiply inside a fused kernel and splits the kernel around it, the way
 * BLAS-backed frameworks run a conv or a Linear: a **pack** kernel gathers the activation
 * operand `A[m, k]` tile by tile (im2col for a conv), a micro-kernel computes
 * `C = A x B` with the weights `B[k, n]` re-laid once at compile time, and an **epilogue**
 * kernel applies the rest of the fused expression (bias, class token, positional embedding)
 * reading `C`. All three are derived from the kernel's expression, so the contraction computes
 * exactly what the reference interpreter does.
 *
 * A kernel qualifies when its expression holds one reduction `Σ_k x[f(rows, k)] * w[g(k, n)]`
 * where `n` is the last output axis, `w` is a parameter or folded constant, `x` does not depend
 * on `n`, and `w` depends on no other output axis.
 * @module
 */

import {
  constant,
  type Lin,
  lin,
  type Ranges,
  simplify,
  substitute,
  v,
  variable,
  type VExpr,
} from "./expr.ts";
import { freeVars, loadsOf } from "./expr.ts";
import { type Kernel, outputVar, type Program } from "./lower.ts";

/** Reductions shorter than this stay in the loop-nest emitter (the seed's 3-wide Linear). */
const MIN_K = 16;

/** The buffer name the epilogue reads the product from. */
export const PRODUCT_BUFFER = "__product";

/** The scalar naming the first row of the tile a pack or epilogue call works on. */
export const TILE_VAR = "tile";

/** A kernel split into pack, multiply and epilogue. */
export interface Contraction {
  /** The kernel it replaces. */
  readonly kernel: Kernel;
  /** Rows: the product of every output axis but the last. */
  readonly m: number;
  /** Reduction length. */
  readonly k: number;
  /** Columns: the last output axis. */
  readonly n: number;
  /** Row stride of the product: `n` rounded up to `columnAlign`. */
  readonly nPadded: number;
  /**
   * `A` for the rows `[tile, tile + rows)`: output `[r, k1, k2, ...]` is `A[tile + r, k]` with the
   * reduction axes row-major. Render with `TILE_VAR` bound; its shape's first axis is `m`.
   */
  readonly pack: Kernel;
  /** `B` as `[n, k1, k2, ...]`: the weights in `n`-major order, evaluated once at compile time. */
  readonly weights: Kernel;
  /** The kernel's value for rows `[tile, tile + r)`, reading `PRODUCT_BUFFER[r * nPadded + col]`. */
  readonly epilogue: Kernel;
}

interface SumChain {
  readonly vars: readonly { readonly name: string; readonly extent: number }[];
  readonly x: VExpr & { k: "load" };
  readonly w: VExpr & { k: "load" };
}

function linVars(x: Lin): Set<string> {
  return freeVars(v.load("_", x));
}

// Σ_{v1} Σ_{v2} ... x * w, with x and w each a plain load.
function sumChain(e: VExpr, isWeight: (buf: string) => boolean, rowVars: Set<string>, col: string) {
  const vars: { name: string; extent: number }[] = [];
  let body = e;
  while (body.k === "sum") {
    vars.push({ name: body.v, extent: body.extent });
    body = body.body;
  }
  if (vars.length === 0 || body.k !== "mul" || body.a.k !== "load" || body.b.k !== "load") {
    return undefined;
  }
  const fits = (x: VExpr & { k: "load" }, w: VExpr & { k: "load" }): SumChain | undefined => {
    const xv = linVars(x.index);
    const wv = linVars(w.index);
    if (!isWeight(w.buf) || xv.has(col) || [...wv].some((name) => rowVars.has(name))) {
      return undefined;
    }
    return { vars, x, w };
  };
  return fits(body.a, body.b) ?? fits(body.b, body.a);
}

/**
 * Splits `kernel` around its matrix multiply, or returns undefined when it has none worth it.
 *
 * @example
 * ```ts
 * import { findContraction } from "./contraction.ts";
 * import type { Kernel, Program } from "./lower.ts";
 * function gemmShape(k: Kernel, p: Program): string {
 *   const c = findContraction(k, p, 8);
 *   return c ? `${c.m}x${c.k}x${c.n}` : "none";
 * }
 * ```
 */
export function findContraction(
  kernel: Kernel,
  program: Program,
  columnAlign = 1,
): Contraction | undefined {
  const rank = kernel.shape.length;
  if (rank < 2) return undefined;
  const col = outputVar(rank - 1);
  const rowVars = new Set(Array.from({ length: rank - 1 }, (_, a) => outputVar(a)));
  const isWeight = (buf: string): boolean => program.buffers.get(buf)?.data !== undefined;
  let found: { node: VExpr; chain: SumChain } | undefined;
  let count = 0;
  const visit = (e: VExpr): void => {
    if (e.k === "sum") {
      count++;
      const chain = sumChain(e, isWeight, rowVars, col);
      if (chain) found = { node: e, chain };
      return;
    }
    if (e.k === "add" || e.k === "mul" || e.k === "select") {
      visit(e.a);
      visit(e.b);
    } else if (e.k === "divc") visit(e.a);
  };
  visit(kernel.expr);
  if (!found || count !== 1) return undefined;
  const { node, chain } = found;
  const k = chain.vars.reduce((p, s) => p * s.extent, 1);
  if (k < MIN_K) return undefined;
  const n = kernel.shape[rank - 1];
  const m = kernel.shape.slice(0, -1).reduce((p, d) => p * d, 1);
  const nPadded = Math.ceil(n / columnAlign) * columnAlign;

  // Original axes and reduction variables are renamed first, so the new kernels' i0, i1, ...
  // never collide with them.
  const rowOf = (a: number): string => `row_${a}`;
  const sumOf = (j: number): string => `red_${j}`;
  const renamedRanges: [string, readonly [number, number]][] = [
    ...kernel.shape.map((d, a) => [rowOf(a), [0, d - 1]] as [string, [number, number]]),
    ...chain.vars.map((s, j) => [sumOf(j), [0, s.extent - 1]] as [string, [number, number]]),
  ];
  const renameScope: Ranges = new Map([...kernel.ranges, ...renamedRanges]);
  const renamed = (e: VExpr): VExpr => {
    let out = e;
    for (let a = 0; a < rank; a++) {
      out = substitute(out, outputVar(a), variable(rowOf(a)), renameScope);
    }
    chain.vars.forEach((s, j) => (out = substitute(out, s.name, variable(sumOf(j)), renameScope)));
    return out;
  };
  // Row `tile + i0` of the flattened rows, as the original row axes.
  const tileRanges = (extra: [string, number][]): Ranges =>
    new Map<string, readonly [number, number]>([
      ...renamedRanges,
      [TILE_VAR, [0, m - 1]],
      ...extra.map(([name, extent]) => [name, [0, extent - 1]] as [string, [number, number]]),
    ]);
  const toTileRows = (e: VExpr, ranges: Ranges): VExpr => {
    const flat = lin.add(variable("i0"), variable(TILE_VAR));
    let stride = 1;
    let out = e;
    for (let a = rank - 2; a >= 0; a--) {
      const d = kernel.shape[a];
      const axis = lin.mod(lin.div(flat, stride, ranges), d, ranges);
      out = substitute(out, rowOf(a), axis, ranges);
      stride *= d;
    }
    return out;
  };
  const extents = chain.vars.map((s) => s.extent);
  const reductionAxes = (ranges: Ranges, e: VExpr): VExpr => {
    let out = e;
    chain.vars.forEach((_, j) => (out = substitute(out, sumOf(j), variable(`i${j + 1}`), ranges)));
    return out;
  };
  const kernelOf = (
    name: string,
    shape: number[],
    expr: VExpr,
    ranges: Ranges,
  ): Kernel => {
    const simple = simplify(expr, ranges);
    return {
      index: kernel.index,
      out: `${kernel.out}_${name}`,
      shape,
      size: shape.reduce((p, d) => p * d, 1),
      ops: kernel.ops,
      expr: simple,
      ranges,
      reads: [...loadsOf(simple)].sort(),
    };
  };

  const packRanges = tileRanges([
    ["i0", m],
    ...extents.map((e, j) => [`i${j + 1}`, e] as [string, number]),
  ]);
  const pack = kernelOf(
    "pack",
    [m, ...extents],
    reductionAxes(packRanges, toTileRows(renamed(chain.x), packRanges)),
    packRanges,
  );

  const weightRanges: Ranges = new Map([
    ...renamedRanges,
    ["i0", [0, n - 1]],
    ...extents.map((e, j) => [`i${j + 1}`, [0, e - 1]] as [string, [number, number]]),
  ]);
  const weights = kernelOf(
    "weights",
    [n, ...extents],
    reductionAxes(
      weightRanges,
      substitute(renamed(chain.w), rowOf(rank - 1), variable("i0"), weightRanges),
    ),
    weightRanges,
  );

  // The product, row r = (flattened row) - tile, column n.
  let flatRow: Lin = constant(0);
  for (let a = 0; a < rank - 1; a++) {
    flatRow = lin.add(lin.scale(flatRow, kernel.shape[a]), variable(rowOf(a)));
  }
  const productIndex = lin.add(
    lin.scale(lin.add(flatRow, lin.scale(variable(TILE_VAR), -1)), nPadded),
    variable(rowOf(rank - 1)),
  );
  const replaced = replaceNode(kernel.expr, node, v.load(PRODUCT_BUFFER, productIndex));
  const epilogueRanges = tileRanges([["i0", m], ["i1", n]]);
  const epilogue = kernelOf(
    "epilogue",
    [m, n],
    substitute(
      toTileRows(renamed(replaced), epilogueRanges),
      rowOf(rank - 1),
      variable("i1"),
      epilogueRanges,
    ),
    epilogueRanges,
  );
  return { kernel, m, k, n, nPadded, pack, weights, epilogue };
}

function replaceNode(e: VExpr, target: VExpr, by: VExpr): VExpr {
  if (e === target) return by;
  switch (e.k) {
    case "add":
    case "mul":
    case "select":
      return { ...e, a: replaceNode(e.a, target, by), b: replaceNode(e.b, target, by) };
    case "divc":
      return { ...e, a: replaceNode(e.a, target, by) };
    default:
      return e;
  }
}
