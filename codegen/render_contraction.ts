/**
 * Renders a `Contraction` for the `wasm` backend: a kernel factory (see `KernelPool`) whose
 * kernel walks its rows in tiles small enough to stay in a core's L2 cache, and per tile runs
 * the pack loop nest (JavaScript, into the thread's scratch in WebAssembly memory), the WASM
 * SIMD micro-kernel, and the epilogue loop nest (back into the output). Also packs the weights
 * into the micro-kernel's panel layout once, at compile time.
 * @module
 */

import { type Contraction, PRODUCT_BUFFER, TILE_VAR } from "./contraction.ts";
import { renderJsKernel } from "./render_js.ts";
import type { Program } from "./lower.ts";
import type { GemmTile } from "./wasm/gemm_kernel.ts";

/** Where a contraction's data lives in WebAssembly memory (byte addresses). */
export interface ContractionLayout {
  /** The packed weights. */
  readonly weights: number;
  /** Thread 0's scratch (A tile, then product tile); thread t's is `t * scratchStride` later. */
  readonly scratch: number;
  /** Bytes between consecutive threads' scratch. */
  readonly scratchStride: number;
  /** Rows per tile (a multiple of the register tile's `mr`). */
  readonly tileRows: number;
  /** The micro-kernel's export name. */
  readonly gemm: string;
  /** The register tile the micro-kernel was generated for. */
  readonly tile: GemmTile;
}

/**
 * Cache budget for one tile's A rows and product rows, which every weight panel reuses. 96, 192
 * and 384 KiB measured within noise of each other (standard, B=32); 192 KiB sits inside L2.
 */
const TILE_BYTES = 192 * 1024;

/**
 * Rows per tile for a `k`-long reduction and `nPadded` columns.
 *
 * @example
 * ```ts
 * import { tileRowsFor } from "./render_contraction.ts";
 * tileRowsFor(768, 768, 5); // 30
 * ```
 */
export function tileRowsFor(k: number, nPadded: number, mr: number): number {
  const rows = Math.floor(TILE_BYTES / 4 / (k + nPadded) / mr) * mr;
  return Math.max(mr, Math.min(256, rows));
}

/**
 * Scratch bytes one thread needs for a contraction's tiles.
 *
 * @example
 * ```ts
 * import { scratchBytesFor } from "./render_contraction.ts";
 * scratchBytesFor(768, 768, 32); // 196608
 * ```
 */
export function scratchBytesFor(k: number, nPadded: number, tileRows: number): number {
  return tileRows * (k + nPadded) * 4;
}

/**
 * The factory source (for `KernelPool`) that runs `c` over rows `[lo, hi)`, and the buffers its
 * kernel takes after `out`.
 *
 * @example
 * ```ts
 * import { renderContraction } from "./render_contraction.ts";
 * typeof renderContraction; // "function"
 * ```
 */
export function renderContraction(
  c: Contraction,
  layout: ContractionLayout,
): { source: string; args: string[] } {
  const args = [...c.kernel.reads].sort();
  const param = new Map(args.map((a, i) => [a, `buf${i}`]));
  param.set(PRODUCT_BUFFER, "product");
  const pack = renderJsKernel(c.pack, 0, [TILE_VAR]);
  const epilogue = renderJsKernel(c.epilogue, 0, [TILE_VAR]);
  const fn = (name: string, r: { args: readonly string[]; body: string }): string =>
    `const ${name} = function (${
      ["out", "lo", "hi", ...r.args.map((_, i) => `buf${i}`), TILE_VAR].join(", ")
    }) {\n${indent(r.body)}\n};`;
  const call = (r: { args: readonly string[] }): string =>
    r.args.map((a) => param.get(a) as string).join(", ");
  const aBytes = layout.tileRows * c.k * 4;
  const mr = layout.tile.mr;
  const source = [
    `const heap = rt.heap;`,
    `const gemm = rt.exports.${layout.gemm};`,
    `const a = ${layout.scratch} + rt.thread * ${layout.scratchStride};`,
    `const p = a + ${aBytes};`,
    `const aTile = heap.subarray(a / 4, a / 4 + ${layout.tileRows * c.k});`,
    `const product = heap.subarray(p / 4, p / 4 + ${layout.tileRows * c.nPadded});`,
    fn("pack", pack),
    fn("epilogue", epilogue),
    `return function (out, lo, hi, ${args.map((a) => param.get(a)).join(", ")}) {`,
    `  for (let ${TILE_VAR} = lo; ${TILE_VAR} < hi; ${TILE_VAR} += ${layout.tileRows}) {`,
    `    const rows = Math.min(${layout.tileRows}, hi - ${TILE_VAR});`,
    `    pack(aTile, 0, rows, ${call(pack)}, ${TILE_VAR});`,
    `    gemm(a, ${layout.weights}, p, Math.ceil(rows / ${mr}) * ${mr});`,
    `    epilogue(out.subarray(${TILE_VAR} * ${c.n}, (${TILE_VAR} + rows) * ${c.n}), 0, rows, ${
      call(epilogue)
    }, ${TILE_VAR});`,
    `  }`,
    `};`,
  ].join("\n");
  return { source, args };
}

function indent(body: string): string {
  return body.split("\n").map((l) => "  " + l).join("\n");
}

/**
 * Writes `c`'s weights into `heap` at byte `at` as `nPadded / nr` panels of `k x nr` floats,
 * zero-padded past column `n`: the order the micro-kernel streams them in.
 *
 * @example
 * ```ts
 * import { packWeights } from "./render_contraction.ts";
 * typeof packWeights; // "function"
 * ```
 */
export function packWeights(
  c: Contraction,
  program: Program,
  heap: Float32Array,
  at: number,
  nr: number,
): void {
  const r = renderJsKernel(c.weights);
  const bufs = r.args.map((name) => program.buffers.get(name)?.data as Float32Array);
  const byColumn = new Float32Array(c.n * c.k);
  new Function("out", "lo", "hi", ...bufs.map((_, i) => `buf${i}`), r.body)(
    byColumn,
    0,
    c.n,
    ...bufs,
  );
  const base = at / 4;
  for (let col = 0; col < c.nPadded; col++) {
    const panel = base + Math.floor(col / nr) * c.k * nr + (col % nr);
    for (let k = 0; k < c.k; k++) {
      heap[panel + k * nr] = col < c.n ? byColumn[col * c.k + k] : 0;
    }
  }
}
