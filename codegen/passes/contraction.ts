/**
 * Finds the matrix multiply inside a fused kernel and splits the kernel around it: a
 * micro-kernel computes `C = A x B`, reading the activation operand `A[row, k]` straight from its
 * buffer through a table of row offsets and a table of reduction offsets (an implicit im2col for
 * a conv: no packed copy), with the weights `B[k, col]` re-laid once at compile time; an
 * **epilogue** kernel applies the rest of the fused expression (bias, class token, positional
 * embedding) reading `C`. Both are derived from the kernel's expression, so the contraction
 * computes exactly what the reference interpreter does.
 *
 * A kernel qualifies when its expression holds one reduction `Σ_k x[f(rows, k)] * w[g(k, col)]`
 * where `w` is a parameter or folded constant that varies along exactly one output axis (the
 * **column** axis: a Linear's last axis, a conv's channel axis) and `x` does not vary along it.
 * Rows are the other output axes. `x`'s index must split into a part that depends only on the
 * row and a part that depends only on the reduction, with the innermost reduction axis at a fixed
 * stride. Tiles hold whole runs of the axes after the column axis, so the epilogue still writes
 * the output in order.
 * @module
 */

import {
  children,
  constant,
  evalLin,
  exprKey,
  foldExpr,
  isBinary,
  isSum,
  type Lin,
  lin,
  linVars,
  loadsOf,
  mapChildren,
  type Ranges,
  replaceWhere,
  simplify,
  substitute,
  v,
  variable,
  type VExpr,
} from "../ir/expr.ts";
import { type Kernel, outputVar, type Program } from "../ir/program.ts";

/** Reductions shorter than this stay in the loop-nest emitter (the seed's 3-wide Linear). */
const MIN_K = 16;

/**
 * A micro-kernel's register tile: rows of A, and columns of B (a multiple of 4). The product's
 * columns are padded to `nr`, the panel width the weights are packed in.
 *
 * @example
 * ```ts
 * import type { GemmTile } from "./contraction.ts";
 * const tile: GemmTile = { mr: 5, nr: 8 };
 * ```
 */
export interface GemmTile {
  /** Rows of A per register tile. */
  readonly mr: number;
  /** Columns of B per register tile (4 lanes per vector). */
  readonly nr: number;
}

/** The buffer name the epilogue reads the product from. */
export const PRODUCT_BUFFER = "__product";

/** The scalar naming the first outer index of the tile an epilogue call works on. */
export const TILE_VAR = "tile";

/** The scalar naming the batch index a run-time packing of `B` works on. */
export const BATCH_VAR = "batch";

/** How the micro-kernel reads `A[row, k]` from the activation buffer. */
export interface Operand {
  /** The activation buffer. */
  readonly buffer: string;
  /** Element offset of `A[row, 0]`, over `i0` (flattened outer index) and `i1...` (inner axes). */
  readonly rowIndex: Lin;
  /** Element offset of each run of the innermost reduction axis, in reduction order. */
  readonly kOffsets: readonly number[];
  /** Extent of the innermost reduction axis. */
  readonly runLength: number;
  /** Element stride along the innermost reduction axis. */
  readonly runStride: number;
}

/** A kernel split into multiply and epilogue. */
export interface Contraction {
  /** The kernel it replaces. */
  readonly kernel: Kernel;
  /** The column axis: the one output axis the weights vary along. */
  readonly axis: number;
  /** Product of the output axes before `axis`: the unit tiles and threads split. */
  readonly outer: number;
  /** Product of the output axes after `axis`: rows per outer index. */
  readonly inner: number;
  /** Rows of the product: `outer * inner`. */
  readonly m: number;
  /** Reduction length. */
  readonly k: number;
  /** Columns: the extent of `axis`. */
  readonly n: number;
  /** Row stride of the product: `n` rounded up to `columnAlign`. */
  readonly nPadded: number;
  /** `A`: rows in output order (outer, then inner axes), `k` in reduction order. */
  readonly operand: Operand;
  /**
   * `B` packed as `[nPadded / columnAlign, ...reduction, columnAlign]`: panels of `columnAlign`
   * columns, each `K` rows deep, zero past column `n`, straight into the layout the micro-kernel
   * or shader streams. Evaluated once at compile time when `B` is a weight; when `B` is an
   * activation (attention's `k` and `v`) it is packed at run time, once per batch index, which
   * the kernel reads as the scalar `BATCH_VAR`.
   */
  readonly weights: Kernel;
  /** Whether `B` is an activation, packed at run time (else compile-time data). */
  readonly runtimeWeights: boolean;
  /**
   * Batch count: the product of the leading output axes both operands vary along (batch and
   * heads of attention); 1 for weights. Each batch index has its own `B`; its rows are
   * `m / batches` consecutive outer indices.
   */
  readonly batches: number;
  /**
   * The kernel's value for outer indices `[tile, tile + t)`: the output's shape with the outer
   * axes flattened, reading `PRODUCT_BUFFER[row * nPadded + col]` (row counted from the tile).
   */
  readonly epilogue: Kernel;
}

interface SumChain {
  readonly vars: readonly { readonly name: string; readonly extent: number }[];
  readonly x: VExpr & { k: "load" };
  readonly w: VExpr & { k: "load" };
  readonly axis: number;
  /** Leading output axes both operands vary along (only when `w` is an activation). */
  readonly batchAxes: number;
}

// Σ_{v1} Σ_{v2} ... x * w, with x and w each a plain load and w varying along one output axis x
// does not vary along (the column axis). A weight varies along nothing else; an activation may
// also vary along leading batch axes that x varies along too, with the column axis last.
function sumChain(
  e: VExpr,
  isWeight: (buf: string) => boolean,
  shape: readonly number[],
) {
  const rank = shape.length;
  const vars: { name: string; extent: number }[] = [];
  let body = e;
  while (isSum(body)) {
    vars.push({ name: body.v, extent: body.extent });
    body = body.body;
  }
  if (vars.length === 0 || !isBinary(body, "mul") || body.a.k !== "load" || body.b.k !== "load") {
    return undefined;
  }
  const outputs = Array.from({ length: rank }, (_, a) => outputVar(a));
  const axesOf = (x: VExpr & { k: "load" }): number[] => {
    const vars = linVars(x.index);
    return outputs.flatMap((name, a) => (vars.has(name) ? [a] : []));
  };
  const fits = (x: VExpr & { k: "load" }, w: VExpr & { k: "load" }): SumChain | undefined => {
    const xAxes = axesOf(x);
    const wAxes = axesOf(w);
    const columns = wAxes.filter((a) => !xAxes.includes(a));
    if (columns.length !== 1) return undefined;
    const shared = wAxes.filter((a) => xAxes.includes(a));
    if (isWeight(w.buf)) {
      return shared.length === 0 ? { vars, x, w, axis: columns[0], batchAxes: 0 } : undefined;
    }
    // Batch axes: a prefix of the output axes, those of extent 1 (batch 1) counting as shared.
    const batchAxes = shared.length === 0 ? 0 : Math.max(...shared) + 1;
    for (let a = 0; a < batchAxes; a++) {
      if (!shared.includes(a) && shape[a] !== 1) return undefined;
    }
    if (columns[0] !== shape.length - 1) return undefined;
    return { vars, x, w, axis: columns[0], batchAxes };
  };
  return fits(body.a, body.b) ?? fits(body.b, body.a);
}

const product = (dims: readonly number[]): number => dims.reduce((p, d) => p * d, 1);

/**
 * Splits `kernel` around its matrix multiply, or returns undefined when it has none worth it.
 * `columnAlign` pads the product's columns (the micro-kernel's panel width).
 *
 * @example
 * ```ts
 * import { findContraction } from "./contraction.ts";
 * import type { Kernel, Program } from "../ir/program.ts";
 * function gemmShape(k: Kernel, p: Program): string {
 *   const c = findContraction(k, p, 8);
 *   return c ? `${c.m}x${c.k}x${c.n}` : "none";
 * }
 * ```
 */
export function findContraction(
  original: Kernel,
  program: Program,
  columnAlign = 1,
): Contraction | undefined {
  const kernel = normalizeProducts(original);
  const rank = kernel.shape.length;
  const isWeight = (buf: string): boolean => program.buffers.get(buf)?.data !== undefined;
  let found: { node: VExpr; chain: SumChain } | undefined;
  const distinct = new Set<string>();
  const visit = (e: VExpr): void => {
    if (e.k === "reduce") {
      distinct.add(exprKey(e));
      const chain = isSum(e) ? sumChain(e, isWeight, kernel.shape) : undefined;
      if (chain) found = { node: e, chain };
      return;
    }
    children(e).forEach(visit);
  };
  visit(kernel.expr);
  if (!found || distinct.size !== 1) return undefined;
  const { node, chain } = found;
  const k = product(chain.vars.map((s) => s.extent));
  if (k < MIN_K) return undefined;
  const axis = chain.axis;
  const n = kernel.shape[axis];
  const outerShape = kernel.shape.slice(0, axis);
  const innerShape = kernel.shape.slice(axis + 1);
  const outer = product(outerShape);
  const inner = product(innerShape);
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
  // A new kernel's variables: `i0` the outer index within the tile, then `axes` in order.
  const scope = (axes: readonly number[]): Ranges =>
    new Map<string, readonly [number, number]>([
      ...renamedRanges,
      [TILE_VAR, [0, outer - 1]],
      ["i0", [0, outer - 1]],
      ...axes.map((d, j) => [`i${j + 1}`, [0, d - 1]] as [string, [number, number]]),
    ]);
  // Outer axes from `i0 + tile`; `moves` maps other renamed variables to new ones.
  const rebind = (
    e: VExpr,
    ranges: Ranges,
    moves: readonly [string, string][],
    tile: Lin = variable(TILE_VAR),
  ): VExpr => {
    const flat = lin.add(variable("i0"), tile);
    let stride = 1;
    let out = e;
    for (let a = axis - 1; a >= 0; a--) {
      const d = kernel.shape[a];
      out = substitute(out, rowOf(a), lin.mod(lin.div(flat, stride, ranges), d, ranges), ranges);
      stride *= d;
    }
    for (const [from, to] of moves) out = substitute(out, from, variable(to), ranges);
    return simplify(out, ranges);
  };
  const kernelOf = (name: string, shape: number[], expr: VExpr, ranges: Ranges): Kernel => ({
    index: kernel.index,
    out: `${kernel.out}_${name}`,
    shape,
    size: product(shape),
    ops: kernel.ops,
    expr,
    ranges,
    reads: [...loadsOf(expr)].sort(),
  });
  const innerAxes = innerShape.map((_, j) => axis + 1 + j);
  const innerMoves = innerAxes.map((a, j) => [rowOf(a), `i${j + 1}`] as [string, string]);
  const extents = chain.vars.map((s) => s.extent);

  const operand = splitOperand(
    chain.x.buf,
    rebind(renamed(chain.x), scope([...innerShape]), innerMoves, constant(0)),
    chain.vars.map((_, j) => sumOf(j)),
    extents,
  );
  if (!operand) return undefined;

  // Weights in panels of `columnAlign` columns, column `i0 * columnAlign + lane`, zero past `n`.
  const panels = nPadded / columnAlign;
  const lane = `i${extents.length + 1}`;
  const weightRanges: Ranges = new Map([
    ...renamedRanges,
    ["i0", [0, panels - 1]],
    ...extents.map((e, j) => [`i${j + 1}`, [0, e - 1]] as [string, [number, number]]),
    [lane, [0, columnAlign - 1]],
  ]);
  const batches = product(kernel.shape.slice(0, chain.batchAxes));
  if (chain.batchAxes > 0 || !isWeight(chain.w.buf)) {
    (weightRanges as Map<string, readonly [number, number]>).set(BATCH_VAR, [0, batches - 1]);
  }
  const column = lin.add(lin.scale(variable("i0"), columnAlign), variable(lane));
  let weightExpr = substitute(renamed(chain.w), rowOf(axis), column, weightRanges);
  // Batch axes from the batch index, row-major.
  let batchStride = 1;
  for (let a = chain.batchAxes - 1; a >= 0; a--) {
    const d = kernel.shape[a];
    const at = lin.mod(lin.div(variable(BATCH_VAR), batchStride, weightRanges), d, weightRanges);
    weightExpr = substitute(weightExpr, rowOf(a), at, weightRanges);
    batchStride *= d;
  }
  extents.forEach((_, j) => {
    weightExpr = substitute(weightExpr, sumOf(j), variable(`i${j + 1}`), weightRanges);
  });
  const weights = kernelOf(
    "weights",
    [panels, ...extents, columnAlign],
    simplify(v.select({ k: "lt", x: column, c: n }, weightExpr, v.const(0)), weightRanges),
    weightRanges,
  );

  // Product row = (outer index - tile) * inner + inner index.
  let row: Lin = constant(0);
  for (let a = 0; a < axis; a++) row = lin.add(lin.scale(row, kernel.shape[a]), variable(rowOf(a)));
  row = lin.add(row, lin.scale(variable(TILE_VAR), -1));
  for (const a of innerAxes) row = lin.add(lin.scale(row, kernel.shape[a]), variable(rowOf(a)));
  const productIndex = lin.add(lin.scale(row, nPadded), variable(rowOf(axis)));
  // Every occurrence of the product (GELU reads it twice).
  const key = exprKey(node);
  const replaced = replaceWhere(
    kernel.expr,
    (n) => n.k === "reduce" && exprKey(n) === key,
    v.load(PRODUCT_BUFFER, productIndex),
  );
  const epilogueRanges = scope([n, ...innerShape]);
  const epilogue = kernelOf(
    "epilogue",
    [outer, n, ...innerShape],
    rebind(renamed(replaced), epilogueRanges, [
      [rowOf(axis), "i1"],
      ...innerAxes.map((a, j) => [rowOf(a), `i${j + 2}`] as [string, string]),
    ]),
    epilogueRanges,
  );
  return {
    kernel,
    axis,
    outer,
    inner,
    m: outer * inner,
    k,
    n,
    nPadded,
    operand,
    weights,
    runtimeWeights: !isWeight(chain.w.buf),
    batches,
    epilogue,
  };
}

/**
 * Rewrites the sums of `kernel` into the form the micro-kernel takes: constant factors move out
 * of a sum (`Σ (q·c)·k` is `c·Σ q·k`, attention's scale), and a reduction variable that an index
 * divides (`k / 64`, `k % 64`: a Linear over heads merged back into the width) is split into
 * two nested reductions, so each index is affine in the reduction variables.
 *
 * @example
 * ```ts
 * import { normalizeProducts } from "./contraction.ts";
 * typeof normalizeProducts; // "function"
 * ```
 */
export function normalizeProducts(kernel: Kernel): Kernel {
  const ranges = new Map(kernel.ranges);
  let renamed = 0;
  const constantOf = (e: VExpr): { c: number; rest: VExpr } | undefined => {
    if (!isBinary(e, "mul")) return undefined;
    if (e.a.k === "const") return { c: e.a.v, rest: e.b };
    if (e.b.k === "const") return { c: e.b.v, rest: e.a };
    const a = constantOf(e.a);
    if (a) return { c: a.c, rest: v.mul(a.rest, e.b) };
    const b = constantOf(e.b);
    return b && { c: b.c, rest: v.mul(e.a, b.rest) };
  };
  const divisorOf = (e: VExpr, name: string, extent: number): number | undefined => {
    let found: number | undefined;
    const visitLin = (x: Lin): void => {
      for (const t of x.terms) {
        if (t.atom.k === "var") continue;
        const inner = t.atom.x;
        const only = inner.terms.length === 1 && inner.terms[0].atom.k === "var" &&
          inner.terms[0].atom.name === name && inner.terms[0].coeff === 1 && inner.c === 0;
        if (only && extent % t.atom.d === 0 && t.atom.d < extent) found ??= t.atom.d;
        visitLin(inner);
      }
    };
    foldExpr(e, 0, (_, n) => {
      if (n.k === "load") visitLin(n.index);
      return 0;
    });
    return found;
  };
  const walk = (e: VExpr): VExpr => {
    if (e.k !== "reduce" || e.op !== "sum") return mapChildren(e, walk);
    const d = divisorOf(e.body, e.v, e.extent);
    if (d !== undefined) {
      const hi = `${e.v}_q${renamed}`;
      const lo = `${e.v}_r${renamed++}`;
      ranges.set(hi, [0, e.extent / d - 1]).set(lo, [0, d - 1]);
      const split = lin.add(lin.scale(variable(hi), d), variable(lo));
      const body = simplify(substitute(e.body, e.v, split, ranges), ranges);
      return walk(v.sum(hi, e.extent / d, v.sum(lo, d, body)));
    }
    const body = walk(e.body);
    const factor = constantOf(body);
    if (factor) return v.mul(v.const(factor.c), v.sum(e.v, e.extent, factor.rest));
    return v.sum(e.v, e.extent, body);
  };
  const expr = walk(kernel.expr);
  return { ...kernel, expr, ranges, reads: [...loadsOf(expr)].sort() };
}

// Splits x's index into row part + reduction part; undefined when a term mixes them or the
// innermost reduction variable sits inside a division.
function splitOperand(
  buffer: string,
  x: VExpr,
  reduction: readonly string[],
  extents: readonly number[],
): Operand | undefined {
  if (x.k !== "load") return undefined;
  const isReduction = new Set(reduction);
  const rowTerms: Lin["terms"][number][] = [];
  const kTerms: Lin["terms"][number][] = [];
  for (const t of x.index.terms) {
    const vars = [...linVars({ c: 0, terms: [t] })];
    if (vars.every((name) => isReduction.has(name))) kTerms.push(t);
    else if (vars.some((name) => isReduction.has(name))) return undefined;
    else rowTerms.push(t);
  }
  const run = reduction[reduction.length - 1];
  let runStride = 0;
  const outerK: Lin["terms"][number][] = [];
  for (const t of kTerms) {
    if (t.atom.k === "var" && t.atom.name === run) runStride = t.coeff;
    else if (linVars({ c: 0, terms: [t] }).has(run)) return undefined;
    else outerK.push(t);
  }
  // Micro-kernel offsets are unsigned immediates.
  if (runStride < 0) return undefined;
  const outerLin: Lin = { c: 0, terms: outerK };
  const kOffsets: number[] = [];
  const env = new Map<string, number>();
  const walk = (j: number): void => {
    if (j === reduction.length - 1) {
      kOffsets.push(evalLin(outerLin, env));
      return;
    }
    for (let i = 0; i < extents[j]; i++) {
      env.set(reduction[j], i);
      walk(j + 1);
    }
  };
  walk(0);
  return {
    buffer,
    rowIndex: { c: x.index.c, terms: rowTerms },
    kOffsets,
    runLength: extents[extents.length - 1],
    runStride,
  };
}

/**
 * `c.weights` for every batch index in one launch: shape `[batches, ...weights.shape]`, with the
 * batch index as axis 0 (for backends that pack `B` on the device, `wgsl`).
 *
 * @example
 * ```ts
 * import { batchedWeights, type Contraction } from "./contraction.ts";
 * function packLaunch(c: Contraction): number {
 *   return batchedWeights(c).size;
 * }
 * ```
 */
export function batchedWeights(c: Contraction): Kernel {
  const w = c.weights;
  const rank = w.shape.length;
  const ranges = new Map(w.ranges);
  // Shift i_j to i_{j+1} from the last axis down, then the batch scalar becomes i0.
  let expr = w.expr;
  for (let j = rank - 1; j >= 0; j--) {
    ranges.set(`i${j + 1}`, [0, w.shape[j] - 1]);
    expr = substitute(expr, `i${j}`, variable(`i${j + 1}`), ranges);
  }
  ranges.set("i0", [0, c.batches - 1]);
  expr = simplify(substitute(expr, BATCH_VAR, variable("i0"), ranges), ranges);
  const shape = [c.batches, ...w.shape];
  return { ...w, shape, size: product(shape), expr, ranges, reads: [...loadsOf(expr)].sort() };
}

/**
 * The epilogue over every row in one launch (tile 0), for backends that hold the whole product
 * in memory (`wgsl`). Its shape is the output's with the outer axes flattened.
 *
 * @example
 * ```ts
 * import { type Contraction, wholeEpilogue } from "./contraction.ts";
 * function launches(c: Contraction): number {
 *   return wholeEpilogue(c).size;
 * }
 * ```
 */
export function wholeEpilogue(c: Contraction): Kernel {
  const e = c.epilogue;
  const expr = simplify(substitute(e.expr, TILE_VAR, constant(0), e.ranges), e.ranges);
  return { ...e, expr, reads: [...loadsOf(expr)].sort() };
}
