/**
 * The `native` backend's plan for its matrix multiplies: per contraction, where A's rows start
 * (and whether they can be read in place), B unpacked to row-major once, and the gather and
 * product scratch every BLAS kernel shares (they run one after another on the calling thread).
 * @module
 */

import type { Program } from "../ir/program.ts";
import type { Contraction } from "../passes/contraction.ts";
import { numel } from "../../graph/tensor_data.ts";
import { operandTables, packWeights } from "../render/js/contraction.ts";
import {
  BLAS_CHUNK_ROWS,
  type BlasKernelState,
  type BlasStrideView,
  unpackPanels,
} from "../render/js/blas_contraction.ts";
import { evalLin, linVars } from "../ir/expr.ts";
import { BATCH_VAR } from "../passes/contraction.ts";
import { GEMM_TILE } from "../render/wasm/gemm_kernel.ts";
import type { BlasRuntime, BlasShare } from "./js_threads.ts";
import { floats } from "./runtime_features.ts";
import { BackendRejection } from "./backend.ts";
import { CBLAS, loadBlas, SGEMM_SYMBOL } from "./native_blas.ts";

/**
 * A program's BLAS side: the library and each kernel's state.
 *
 * @example
 * ```ts
 * import type { BlasPlan } from "./blas_plan.ts";
 * function products(p: BlasPlan): number {
 *   return p.states.filter((s) => s).length;
 * }
 * ```
 */
export interface BlasPlan extends BlasRuntime {
  /** The library file. */
  readonly library: string;
  /** Threads the library runs (1: the kernel pool's threads split the products instead). */
  readonly threads: number;
  /** The states as the pool's workers get them. */
  readonly share: BlasShare;
}

/**
 * Loads the BLAS and lays out every contraction for it. A contraction whose rows all fall
 * outside its activation gets no state and stays a loop nest. The library runs one thread: the
 * kernel pool splits each product's rows among its own threads, each calling `sgemm` on its
 * part (OpenBLAS's own threads scale poorly on these sizes and spin on the cores the pool's
 * kernels need). Constant B lives in shared memory when `shared`, for the workers.
 *
 * @example
 * ```ts
 * import { planBlas } from "./blas_plan.ts";
 * typeof planBlas; // "function"
 * ```
 */
export function planBlas(
  program: Program,
  contractions: readonly (Contraction | undefined)[],
  shared = false,
): BlasPlan {
  const blas = loadBlas(1);
  if (typeof blas === "string") throw new BackendRejection("native", blas, true);
  const nr = GEMM_TILE.nr;
  const chunkRows = (c: Contraction): number =>
    Math.min(c.m, Math.max(1, Math.floor(BLAS_CHUNK_ROWS / c.inner)) * c.inner);
  const layouts = contractions.map((c) => {
    const activation = c && program.buffers.get(c.operand.buffer);
    if (!c || !activation) return undefined;
    // Only the row offsets are used; one outer index a tile keeps the staging regions linear.
    const tables = operandTables(c, numel(activation.shape), 1, 1);
    if (!tables) return undefined;
    const rows = Int32Array.from(tables.rowOffsets.subarray(0, c.m), (b) => b / 4);
    const kOffsets = Int32Array.from(tables.kOffsets, (b) => b / 4);
    const { runLength, runStride } = c.operand;
    // A in place: each row one run of k, the rows evenly spaced (a Linear's, a head's q).
    const lda = c.m > 1 ? rows[1] - rows[0] : c.k;
    let dense = kOffsets.length === 1 && kOffsets[0] === 0 && runStride === 1 &&
      runLength === c.k && lda >= c.k;
    for (let r = 1; dense && r < c.m; r++) dense = rows[r] === rows[0] + r * lda;
    return { c, rows, kOffsets, dense, lda: dense ? lda : c.k };
  });
  const gather = Math.max(0, ...layouts.map((l) => (l && !l.dense ? chunkRows(l.c) * l.c.k : 0)));
  const a = new Float32Array(gather);
  const states = layouts.map((l): BlasKernelState | undefined => {
    if (!l) return undefined;
    const { c } = l;
    // B in place: attention's k and v in their activation, a Linear's weight as it is given
    // (transposed: [out, in]), so it is neither packed nor unpacked nor held twice.
    const view = strideView(c, nr);
    if (view) {
      const none = new Float32Array(0);
      return {
        rows: l.rows,
        kOffsets: l.kOffsets,
        dense: l.dense,
        lda: l.lda,
        b: none,
        packed: none,
        a,
        view,
      };
    }
    const packed = new Float32Array(c.k * c.nPadded);
    if (!c.runtimeWeights) packWeights(c, program, packed, 0);
    const b = c.runtimeWeights
      ? new Float32Array(c.k * c.nPadded)
      : unpackPanels(packed, c.k, c.nPadded, nr, floats(c.k * c.nPadded, shared));
    return {
      rows: l.rows,
      kOffsets: l.kOffsets,
      dense: l.dense,
      lda: l.lda,
      b,
      packed: c.runtimeWeights ? packed : new Float32Array(0),
      a,
    };
  });
  const share: BlasShare = {
    library: blas.library,
    sgemm: { symbol: SGEMM_SYMBOL, cblas: CBLAS },
    states: states.map((st, i) =>
      st && {
        rows: st.rows,
        kOffsets: st.kOffsets,
        dense: st.dense,
        lda: st.lda,
        view: st.view,
        b: contractions[i]?.runtimeWeights ? undefined : st.b,
        bSize: st.b.length,
        aSize: st.a.length,
        packedSize: st.packed.length,
      }
    ),
  };
  return { sgemm: blas.sgemm, states, library: blas.library, threads: blas.threads, share };
}

/**
 * Where B already lies as a strided matrix (attention's k or v in their activation, a Linear's
 * weight), so `sgemm` reads it in place instead of it being packed and unpacked: B[kk, col] is
 * `buffer[bases[batch] + kk * sk + col * sn]` with sn = 1 (row-major, `ldb` = sk) or sk = 1
 * (transposed, `ldb` = sn). Undefined unless the packing kernel is exactly such a load (one
 * reduction axis, no other arithmetic), which is decided from its index, not by sampling.
 *
 * @example
 * ```ts
 * import { strideView } from "./blas_plan.ts";
 * typeof strideView; // "function"
 * ```
 */
export function strideView(c: Contraction, nr: number): BlasStrideView | undefined {
  const w = c.weights;
  if (w.shape.length !== 3) return undefined; // [panels, k, nr]: one reduction axis
  let e = w.expr;
  // The padding columns' select (col < n, else 0) is the only one allowed.
  if (e.k === "select") {
    const { cond } = e;
    const col = cond.k === "lt" && cond.c === c.n && cond.x.c === 0 && cond.x.terms.length === 2 &&
      cond.x.terms.every((t) =>
        t.atom.k === "var" &&
        ((t.atom.name === "i0" && t.coeff === nr) || (t.atom.name === "i2" && t.coeff === 1))
      );
    if (!col || e.b.k !== "const" || e.b.v !== 0) return undefined;
    e = e.a;
  }
  if (e.k !== "load") return undefined;
  const coeff = new Map<string, number>();
  for (const t of e.index.terms) {
    const vars = linVars({ c: 0, terms: [t] });
    if (t.atom.k === "var" && t.atom.name !== BATCH_VAR) coeff.set(t.atom.name, t.coeff);
    else if (vars.size !== 1 || !vars.has(BATCH_VAR)) return undefined;
  }
  const sk = coeff.get("i1") ?? 0;
  const sn = coeff.get("i2") ?? 0;
  // col = i0 * nr + lane: the panel and the lane enter only as the column.
  if ((coeff.get("i0") ?? 0) !== sn * nr || coeff.size > 3) return undefined;
  const trans = sk === 1 && sn >= c.k;
  if (!(sn === 1 && sk >= c.n) && !trans) return undefined;
  const bases = Int32Array.from(
    { length: c.batches },
    (_, batch) => evalLin(e.index, new Map([["i0", 0], ["i1", 0], ["i2", 0], [BATCH_VAR, batch]])),
  );
  return { buffer: e.buf, bases, ldb: trans ? sn : sk, trans };
}

/**
 * The `explain()` words for a contraction on the BLAS.
 *
 * @example
 * ```ts
 * import { blasNote } from "./blas_plan.ts";
 * typeof blasNote; // "function"
 * ```
 */
export function blasNote(c: Contraction, plan: BlasPlan): string {
  const batched = c.runtimeWeights
    ? `, ${c.batches} batch${c.batches === 1 ? "" : "es"} of B from ${c.weights.reads.join(", ")}`
    : "";
  const state = plan.states[c.kernel.index];
  const inPlace = state?.view ? `, B read in place${state.view.trans ? " transposed" : ""}` : "";
  return `matrix multiply ${c.m}x${c.k} by ${c.k}x${c.n} on ${plan.library} sgemm ` +
    `(${plan.threads} BLAS threads${batched}${inPlace})`;
}
