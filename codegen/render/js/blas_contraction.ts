/**
 * Matrix-multiply kernels for the `native` backend: the same `Contraction` the `wasm` backend
 * runs on its micro-kernel, as two steps: the product by a system BLAS (`sgemm`), its rows split
 * among the pool's threads (the library itself runs one), then the epilogue, split the same
 * way. Rows of A are read in place when they are evenly spaced in the activation (a Linear, a
 * head's q), else gathered once per chunk (a conv's patches); B is row-major (`k x nPadded`),
 * unpacked once from the panel layout the contraction pass builds, read in place when it is an
 * activation lying as a strided matrix (attention's k and v), else packed per batch index. The
 * epilogue (bias, GELU, residual, ...) is the contraction's generated JavaScript.
 * @module
 */

import { BATCH_VAR, type Contraction, PRODUCT_BUFFER, TILE_VAR } from "../../passes/contraction.ts";
import { renderJsKernel } from "./loop_nest.ts";
import { type Lin, linSource, type VExpr } from "../../ir/expr.ts";
import { contractionArgs } from "./contraction.ts";
import { allFinite } from "../../../graph/params.ts";

/** Rows of A per `sgemm` call (bounds the gather and product scratch). */
export const BLAS_CHUNK_ROWS = 1024;

/**
 * What a BLAS kernel reads on its thread (`rt.blas.states[i]`), set up by the backend.
 *
 * @example
 * ```ts
 * import type { BlasKernelState } from "./blas_contraction.ts";
 * function rows(s: BlasKernelState): number {
 *   return s.rows.length;
 * }
 * ```
 */
export interface BlasKernelState {
  /** Element offset of each row of A in the activation (rows outside it borrow a neighbour's). */
  readonly rows: Int32Array;
  /** Element offset of each reduction run within a row. */
  readonly kOffsets: Int32Array;
  /** Whether the rows are `lda` apart, each `k` consecutive elements: A is read in place. */
  readonly dense: boolean;
  /** Row stride of A in place (`k` when it is gathered). */
  readonly lda: number;
  /** Where a runtime B lies in its activation, read in place; else it is packed per batch. */
  readonly view?: BlasStrideView;
  /** B, row-major `k x nPadded` (for a runtime B, refilled per batch index). */
  readonly b: Float32Array;
  /** Panel-packed scratch for a runtime B (unused for weights). */
  readonly packed: Float32Array;
  /** Gather scratch for A (`BLAS_CHUNK_ROWS x k` at least). */
  readonly a: Float32Array;
}

/**
 * A runtime B read in place by `sgemm`: batch `b`'s matrix starts at `bases[b]` in `buffer`,
 * row-major with row stride `ldb`, or transposed (`B = Mᵀ`, M row-major with stride `ldb`).
 *
 * @example
 * ```ts
 * import type { BlasStrideView } from "./blas_contraction.ts";
 * const kT: BlasStrideView = { buffer: "t_qkv", bases: Int32Array.of(192), ldb: 576, trans: true };
 * ```
 */
export interface BlasStrideView {
  /** The activation B is read from. */
  readonly buffer: string;
  /** Element offset of each batch index's B. */
  readonly bases: Int32Array;
  /** Row stride of B (or of M when transposed). */
  readonly ldb: number;
  /** Whether B is the transpose of a row-major M. */
  readonly trans: boolean;
}

/**
 * An epilogue `sgemm` does itself: the output is the product scaled by `alpha`, plus `bias`
 * per column when set, laid out as the product is (one output row per product row). Then the
 * product is written straight into the output (`C = alpha A B + C`, C first filled with the
 * bias rows), and there is no epilogue pass. Attention's `scale * q·kᵀ`, its `p·v` and a
 * Linear's bias add are of this form.
 *
 * @example
 * ```ts
 * import type { DirectEpilogue } from "./blas_contraction.ts";
 * const qk: DirectEpilogue = { alpha: 0.125 };
 * ```
 */
export interface DirectEpilogue {
  /** The product's factor. */
  readonly alpha: number;
  /** The bias buffer, indexed by the column alone. */
  readonly bias?: string;
}

/**
 * Whether `c`'s epilogue is a {@linkcode DirectEpilogue}, and which. The product's index is
 * checked for every row to be `row * nPadded + col` (the IR leaves it as sums of divisions
 * that only the ranges make equal); the bias's must be exactly `col`.
 *
 * @example
 * ```ts
 * import { directEpilogue } from "./blas_contraction.ts";
 * typeof directEpilogue; // "function"
 * ```
 */
export function directEpilogue(c: Contraction): DirectEpilogue | undefined {
  if (c.inner !== 1 || c.epilogue.shape.length !== 2) return undefined;
  let e = c.epilogue.expr;
  let alpha = 1;
  let bias: string | undefined;
  const isLoad = (x: VExpr, buf?: string): x is VExpr & { k: "load" } =>
    x.k === "load" && (buf === undefined || x.buf === buf);
  if (e.k === "binary" && e.op === "mul") {
    const [k, x] = e.a.k === "const" ? [e.a, e.b] : [e.b, e.a];
    if (k.k !== "const") return undefined;
    alpha = k.v;
    e = x;
  } else if (e.k === "binary" && e.op === "add") {
    const [p, b] = isLoad(e.a, PRODUCT_BUFFER) ? [e.a, e.b] : [e.b, e.a];
    const column = b.k === "load" && b.index.c === 0 && b.index.terms.length === 1 &&
      b.index.terms[0].atom.k === "var" && b.index.terms[0].atom.name === "i1" &&
      b.index.terms[0].coeff === 1;
    if (!column || b.k !== "load") return undefined;
    bias = b.buf;
    e = p;
  }
  if (!isLoad(e, PRODUCT_BUFFER)) return undefined;
  // Compiled once: the check below evaluates it twice per row (18912 rows for ViT-B's attention
  // at B=8, where the interpreted form took 0.6 s of the compile).
  const at = new Function("i0", TILE_VAR, "i1", `return ${linSource(e.index)};`) as (
    i0: number,
    tile: number,
    i1: number,
  ) => number;
  if (at(0, 0, 1) !== 1) return undefined;
  for (let row = 0; row < c.outer; row++) {
    if (at(row, 0, 0) !== row * c.nPadded || at(0, row, 0) !== 0) return undefined;
  }
  // Every division or modulus must see i0 and the tile only as their sum, so the two checks
  // above (all of the row in i0, or all of it in the tile) cover every split of it.
  const sumOnly = (x: Lin): boolean =>
    x.terms.every((t) => {
      if (t.atom.k === "var") return true;
      const inner = t.atom.x;
      const coeff = (name: string): number =>
        inner.terms.find((u) => u.atom.k === "var" && u.atom.name === name)?.coeff ?? 0;
      return coeff("i0") === coeff(TILE_VAR) && sumOnly(inner);
    });
  return sumOnly(e.index) ? { alpha, bias } : undefined;
}

/**
 * Unpacks B from the contraction's panel layout (`[nPadded / nr, k, nr]`) to row-major
 * `k x nPadded`.
 *
 * @example
 * ```ts
 * import { unpackPanels } from "./blas_contraction.ts";
 * const panels = Float32Array.of(1, 2, 3, 4); // k = 2, one panel of nr = 2 columns
 * unpackPanels(panels, 2, 2, 2); // [1, 2, 3, 4]
 * ```
 */
export function unpackPanels(
  packed: Float32Array,
  k: number,
  nPadded: number,
  nr: number,
  into: Float32Array = new Float32Array(k * nPadded),
): Float32Array {
  // Plain loops: for a B packed at run time this runs once per batch index.
  for (let p = 0; p < nPadded / nr; p++) {
    for (let kk = 0; kk < k; kk++) {
      const from = p * k * nr + kk * nr;
      const to = kk * nPadded + p * nr;
      for (let j = 0; j < nr; j++) into[to + j] = packed[from + j];
    }
  }
  return into;
}

/**
 * The product step of contraction `c` (kernel `index` of the program), run on the calling
 * thread: `(product, lo, hi, ...buffers)` fills `product` rows `[lo, hi) * inner` (row stride
 * `nPadded`) by `sgemm`, chunk by chunk, with B packed per batch index when it is an activation.
 *
 * @example
 * ```ts
 * import { renderBlasGemm } from "./blas_contraction.ts";
 * typeof renderBlasGemm; // "function"
 * ```
 */
export function renderBlasGemm(
  c: Contraction,
  index: number,
  nr: number,
  view?: BlasStrideView,
  direct?: DirectEpilogue,
): { source: string; args: string[]; extent: number } {
  const byColumns = splitsByColumns(c);
  const args = contractionArgs(c, [
    ...(direct?.bias ? [direct.bias] : []),
    ...(view ? [view.buffer] : []),
  ]);
  const param = new Map(args.map((a, i) => [a, `buf${i}`]));
  const x = param.get(c.operand.buffer) as string;
  const perBatch = c.outer / c.batches;
  const chunkOuter = Math.max(1, Math.floor(BLAS_CHUNK_ROWS / c.inner));
  const pack = c.runtimeWeights && !view ? renderJsKernel(c.weights, 0, [BATCH_VAR]) : undefined;
  const packArgs = pack?.args.map((a) => param.get(a) as string) ?? [];
  const { k, nPadded } = c;
  const { runLength, runStride } = c.operand;
  const runs = c.operand.kOffsets.length;
  const batched = c.runtimeWeights;
  // B in place: batch b's matrix at bases[b] of its activation; else st.b, row-major.
  const src = view ? (param.get(view.buffer) as string) : "st.b";
  const bAt = (l: string, col: string): string =>
    !view
      ? `st.b[${l} * ${nPadded} + ${col}]`
      : view.trans
      ? `${src}[bOff + ${col} * ${view.ldb} + ${l}]`
      : `${src}[bOff + ${l} * ${view.ldb} + ${col}]`;
  // With a direct epilogue `product` is the kernel's output: rows of n, the bias added by sgemm.
  const ldc = direct ? c.n : nPadded;
  const cols = direct ? c.n : nPadded;
  const alpha = direct?.alpha ?? 1;
  const bias = direct?.bias ? (param.get(direct.bias) as string) : undefined;
  const beta = bias ? 1 : 0;
  const bSpelled = view
    ? `${view.trans ? "transposed, " : ""}in place in ${view.buffer} (ldb ${view.ldb})`
    : `from ${c.weights.reads.join(", ")} per batch index`;
  const source = [
    `// sgemm (system BLAS): C[rows, ${nPadded}] = A[rows, ${k}] x B[${k}, ${nPadded}], A read as ` +
    `${runs} runs of ${runLength} (stride ${runStride}) from ${c.operand.buffer}` +
    (batched || view ? `, B ${bSpelled}` : ""),
    `const blas = rt.blas;`,
    // Every thread of a native pool has the library (workers open it again).
    `if (!blas) return function () { throw new Error("native: this thread has no BLAS"); };`,
    `const st = blas.states[${index}];`,
    `const sgemm = blas.sgemm;`,
    `const allFinite = ${allFinite.toString()};`,
    `const nonfinite = rt.kernels?.nonfinite;`,
    ...(pack
      ? [
        `const pack = function (${
          ["out", "lo", "hi", ...pack.args.map((_, i) => `buf${i}`), BATCH_VAR].join(", ")
        }) {\n${indent(pack.body)}\n};`,
        `const unpack = ${unpackPanels.toString()};`,
      ]
      : []),
    `return function (product, lo, hi, ${args.map((a) => param.get(a)).join(", ")}) {`,
    `  let packedBatch = -1;`,
    // By columns: every row, columns [c0, c1) of the range's blocks; by rows: all columns.
    ...(byColumns
      ? [
        `  const c0 = lo * ${COLUMN_BLOCK};`,
        `  const c1 = Math.min(hi * ${COLUMN_BLOCK}, ${c.n});`,
        `  for (let ${TILE_VAR} = 0; ${TILE_VAR} < ${c.outer};) {`,
      ]
      : [
        `  const c0 = 0;`,
        `  const c1 = ${view ? c.n : cols};`,
        `  for (let ${TILE_VAR} = lo; ${TILE_VAR} < hi;) {`,
      ]),
    ...(batched
      ? [
        `    const ${BATCH_VAR} = Math.floor(${TILE_VAR} / ${perBatch});`,
        `    const t = Math.min(${chunkOuter}, hi - ${TILE_VAR}, (${BATCH_VAR} + 1) * ${perBatch} - ${TILE_VAR});`,
      ]
      : [
        `    const t = Math.min(${chunkOuter}, ${byColumns ? c.outer : "hi"} - ${TILE_VAR});`,
      ]),
    ...(pack
      ? [
        `    if (${BATCH_VAR} !== packedBatch) {`,
        `      pack(st.packed, 0, ${c.weights.shape[0]}, ${[...packArgs, BATCH_VAR].join(", ")});`,
        `      unpack(st.packed, ${k}, ${nPadded}, ${nr}, st.b);`,
        `      packedBatch = ${BATCH_VAR};`,
        `    }`,
      ]
      : []),
    ...(view ? [`    const bOff = st.view.bases[${batched ? BATCH_VAR : 0}];`] : []),
    `    const r0 = ${TILE_VAR} * ${c.inner};`,
    `    const rows = t * ${c.inner};`,
    `    let a;`,
    `    let lda = ${k};`,
    `    if (st.dense) {`,
    `      lda = st.lda;`,
    `      a = ${x}.subarray(st.rows[r0], st.rows[r0] + (rows - 1) * lda + ${k});`,
    `    } else {`,
    `      a = st.a;`,
    `      for (let r = 0; r < rows; r++) {`,
    `        const row = st.rows[r0 + r];`,
    `        for (let j = 0; j < ${runs}; j++) {`,
    `          const from = row + st.kOffsets[j];`,
    `          const to = r * ${k} + j * ${runLength};`,
    runStride === 1
      ? `          a.set(${x}.subarray(from, from + ${runLength}), to);`
      : `          for (let l = 0; l < ${runLength}; l++) a[to + l] = ${x}[from + l * ${runStride}];`,
    `        }`,
    `      }`,
    `    }`,
    // C from column c0 of the chunk's first row (to the end of its last row's columns).
    `    const c = product.subarray(r0 * ${ldc} + c0, (r0 + rows - 1) * ${ldc} + c1);`,
    ...(bias
      ? [`    for (let r = 0; r < rows; r++) c.set(${bias}.subarray(c0, c1), r * ${ldc});`]
      : []),
    view
      // Only the n real columns: past them the activation holds other data, not zeros.
      ? `    sgemm(rows, c1 - c0, ${k}, a, lda, ${src}.subarray(bOff + c0 * ${
        view.trans ? view.ldb : 1
      }), ${view.ldb}, c, ${ldc}, ${view.trans}, ${alpha}, ${beta});`
      : `    sgemm(rows, c1 - c0, ${k}, a, lda, st.b.subarray(c0), ${nPadded}, c, ${ldc}, false, ${alpha}, ${beta});`,
    // Float32 sums can overflow where the exact sum does not (`3e38 * 4 + 3e38 * -4` is 0):
    // such products are summed again in float64, as the other CPU backends do.
    // One branch-free pass finds whether any value needs it.
    // Only this thread's columns (WebAssembly where the buffers are its memory).
    `    const width = Math.min(c1, ${c.n}) - c0;`,
    `    if (width > 0 && (nonfinite ? nonfinite(c.byteOffset, rows, width, ${ldc}) !== 0 : !allFinite(c))) {`,
    `      for (let r = 0; r < rows; r++) {`,
    `        for (let col = c0; col < Math.min(c1, ${c.n}); col++) {`,
    `          const v = c[r * ${ldc} + col - c0];`,
    `          if (v - v === 0) continue;`,
    `          let acc = 0;`,
    `          for (let l = 0; l < ${k}; l++) acc += a[r * lda + l] * ${bAt("l", "col")};`,
    `          c[r * ${ldc} + col - c0] = ${alpha} * acc${bias ? ` + ${bias}[col]` : ""};`,
    `        }`,
    `      }`,
    `    }`,
    `    ${TILE_VAR} += t;`,
    `  }`,
    `};`,
  ].join("\n");
  return { source, args, extent: byColumns ? Math.ceil(c.n / COLUMN_BLOCK) : c.outer };
}

/** Columns a thread's share of a product is counted in, when the threads split the columns. */
export const COLUMN_BLOCK = 16;

/**
 * Whether the threads split `c`'s product by columns rather than by rows: a product of few rows
 * by constant weights (a ViT at batch 1 or 2). Each thread then streams only its part of B,
 * where by rows every thread would read all of it, and at these sizes reading B is the cost.
 *
 * @example
 * ```ts
 * import { splitsByColumns } from "./blas_contraction.ts";
 * typeof splitsByColumns; // "function"
 * ```
 */
export function splitsByColumns(c: Contraction): boolean {
  return !c.runtimeWeights && c.m <= BLAS_CHUNK_ROWS && c.n >= 4 * COLUMN_BLOCK;
}

/**
 * The epilogue step of contraction `c`: a kernel over outer indices `[lo, hi)` that any thread
 * runs, reading the product step's rows (the buffer named `product`, first argument) and the
 * epilogue's other buffers.
 *
 * @example
 * ```ts
 * import { renderBlasEpilogue } from "./blas_contraction.ts";
 * typeof renderBlasEpilogue; // "function"
 * ```
 */
export function renderBlasEpilogue(
  c: Contraction,
  product: string,
  options: { readonly vectorMath?: boolean } = {},
): { source: string; args: string[] } {
  const epilogue = renderJsKernel(c.epilogue, 0, [TILE_VAR], options);
  const others = epilogue.args.filter((a) => a !== PRODUCT_BUFFER);
  const args = [product, ...others];
  const param = new Map(args.map((a, i) => [a, `buf${i}`]));
  const rowFloats = c.inner * c.nPadded;
  const outPerOuter = c.n * c.inner;
  const call = epilogue.args.map((a) =>
    a === PRODUCT_BUFFER ? `buf0.subarray(lo * ${rowFloats}, hi * ${rowFloats})` : param.get(a)
  );
  const source = [
    `const epilogue = function (${
      ["out", "lo", "hi", ...epilogue.args.map((_, i) => `buf${i}`), TILE_VAR].join(", ")
    }) {\n${indent(epilogue.body)}\n};`,
    `return function (out, lo, hi, ${args.map((a) => param.get(a)).join(", ")}) {`,
    `  epilogue(out.subarray(lo * ${outPerOuter}, hi * ${outPerOuter}), 0, hi - lo, ${
      call.join(", ")
    }, lo);`,
    `};`,
  ].join("\n");
  return { source, args };
}

function indent(body: string): string {
  return body.split("\n").map((l) => "  " + l).join("\n");
}
