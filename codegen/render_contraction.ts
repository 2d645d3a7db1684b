/**
 * Renders a `Contraction` for the `wasm` backend: a kernel factory (see `KernelPool`) whose
 * kernel walks its outer indices in tiles small enough to stay in a core's L2 cache where it can,
 * and per tile runs
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
  /** Outer indices per tile (`tileOuterFor`). */
  readonly tileOuter: number;
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
 * Outer indices per tile (see `Contraction.outer`): as many rows as fit the cache budget, at
 * least one outer index, and a multiple of `mr` rows when each outer index is one row.
 *
 * @example
 * ```ts
 * import { tileOuterFor } from "./render_contraction.ts";
 * tileOuterFor({ k: 768, nPadded: 768, inner: 1 }, 5); // 30
 * tileOuterFor({ k: 768, nPadded: 8, inner: 196 }, 5); // 1
 * ```
 */
export function tileOuterFor(
  c: Pick<Contraction, "k" | "nPadded" | "inner">,
  mr: number,
): number {
  const rows = Math.floor(TILE_BYTES / 4 / (c.k + c.nPadded));
  if (c.inner === 1) return Math.max(mr, Math.min(256, Math.floor(rows / mr) * mr));
  return Math.max(1, Math.floor(rows / c.inner));
}

/**
 * Scratch bytes one thread needs for a contraction's tiles (rows padded to `mr`).
 *
 * @example
 * ```ts
 * import { scratchBytesFor } from "./render_contraction.ts";
 * scratchBytesFor({ k: 768, nPadded: 768, inner: 1 }, 30, 5); // 184320
 * ```
 */
export function scratchBytesFor(
  c: Pick<Contraction, "k" | "nPadded" | "inner">,
  tileOuter: number,
  mr: number,
): number {
  return Math.ceil((tileOuter * c.inner) / mr) * mr * (c.k + c.nPadded) * 4;
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
  const mr = layout.tile.mr;
  const scratchRows = Math.ceil((layout.tileOuter * c.inner) / mr) * mr;
  const aBytes = scratchRows * c.k * 4;
  const outPerOuter = c.n * c.inner;
  const source = [
    `const heap = rt.heap;`,
    `const gemm = rt.exports.${layout.gemm};`,
    `const a = ${layout.scratch} + rt.thread * ${layout.scratchStride};`,
    `const p = a + ${aBytes};`,
    `const aTile = heap.subarray(a / 4, a / 4 + ${scratchRows * c.k});`,
    `const product = heap.subarray(p / 4, p / 4 + ${scratchRows * c.nPadded});`,
    fn("pack", pack),
    fn("epilogue", epilogue),
    `return function (out, lo, hi, ${args.map((a) => param.get(a)).join(", ")}) {`,
    `  for (let ${TILE_VAR} = lo; ${TILE_VAR} < hi; ${TILE_VAR} += ${layout.tileOuter}) {`,
    `    const t = Math.min(${layout.tileOuter}, hi - ${TILE_VAR});`,
    `    pack(aTile, 0, t, ${call(pack)}, ${TILE_VAR});`,
    `    gemm(a, ${layout.weights}, p, Math.ceil((t * ${c.inner}) / ${mr}) * ${mr});`,
    `    epilogue(out.subarray(${TILE_VAR} * ${outPerOuter}, (${TILE_VAR} + t) * ${outPerOuter}), 0, t, ${
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
