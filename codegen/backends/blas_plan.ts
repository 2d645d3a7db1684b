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
  unpackPanels,
} from "../render/js/blas_contraction.ts";
import { GEMM_TILE } from "../render/wasm/gemm_kernel.ts";
import type { BlasRuntime } from "./js_threads.ts";
import { BackendRejection } from "./backend.ts";
import { loadBlas } from "./native_blas.ts";

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
  /** Threads the library runs. */
  readonly threads: number;
}

/**
 * Loads the BLAS and lays out every contraction for it. A contraction whose rows all fall
 * outside its activation gets no state and stays a loop nest.
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
  threads: number,
): BlasPlan {
  const blas = loadBlas(threads);
  if (typeof blas === "string") throw new BackendRejection("native", blas, true);
  const nr = GEMM_TILE.nr;
  const chunkRows = (c: Contraction): number =>
    Math.min(c.m, Math.max(1, Math.floor(BLAS_CHUNK_ROWS / c.inner)) * c.inner);
  const layouts = contractions.map((c) => {
    const activation = c && program.buffers.get(c.operand.buffer);
    if (!c || !activation) return undefined;
    const tables = operandTables(c, numel(activation.shape), c.outer, 1);
    if (!tables) return undefined;
    const rows = Int32Array.from(tables.rowOffsets.subarray(0, c.m), (b) => b / 4);
    const kOffsets = Int32Array.from(tables.kOffsets, (b) => b / 4);
    const { runLength, runStride } = c.operand;
    let dense = kOffsets.length === 1 && kOffsets[0] === 0 && runStride === 1 &&
      runLength === c.k;
    for (let r = 1; dense && r < c.m; r++) dense = rows[r] === rows[0] + r * c.k;
    return { c, rows, kOffsets, dense };
  });
  const gather = Math.max(0, ...layouts.map((l) => (l && !l.dense ? chunkRows(l.c) * l.c.k : 0)));
  const a = new Float32Array(gather);
  const states = layouts.map((l): BlasKernelState | undefined => {
    if (!l) return undefined;
    const { c } = l;
    const packed = new Float32Array(c.k * c.nPadded);
    if (!c.runtimeWeights) packWeights(c, program, packed, 0);
    const b = c.runtimeWeights
      ? new Float32Array(c.k * c.nPadded)
      : unpackPanels(packed, c.k, c.nPadded, nr);
    return {
      rows: l.rows,
      kOffsets: l.kOffsets,
      dense: l.dense,
      b,
      packed: c.runtimeWeights ? packed : new Float32Array(0),
      a,
    };
  });
  return { sgemm: blas.sgemm, states, library: blas.library, threads: blas.threads };
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
  return `matrix multiply ${c.m}x${c.k} by ${c.k}x${c.n} on ${plan.library} sgemm ` +
    `(${plan.threads} BLAS threads${batched})`;
}
