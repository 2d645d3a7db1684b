/**
 * The WASM SIMD matrix-multiply micro-kernel behind the `wasm` backend's contractions:
 * `C[rows, n] = A[rows, K] * B[K, n]` with `MR x NR` outputs held in `v128` registers while the
 * reduction streams through them (register blocking), B pre-packed in `NR`-column panels so each
 * step loads it with two aligned vector loads, and every stride folded into the instructions'
 * constant offsets. It is specialized to `K` and `n`, so nothing is looked up at run time.
 * @module
 */

import { Code, encodeModule, I32, V128, type ValueType, type WasmFunction } from "./encoder.ts";

/** The micro-kernel's register tile: rows of A, and columns of B (a multiple of 4). */
export interface GemmTile {
  /** Rows of A per register tile. */
  readonly mr: number;
  /** Columns of B per register tile (4 lanes per vector). */
  readonly nr: number;
}

/**
 * 5 x 8: 10 accumulators, 2 B vectors and an A splat fit x64's 16 vector registers. Measured on
 * the dev box (standard tokenizer, B=32, `bench/tokenizer.ts`): 4 x 8 gave 387-394 img/s,
 * 5 x 8 428-448, 6 x 8 426-436.
 *
 * @example
 * ```ts
 * import { GEMM_TILE } from "./gemm_kernel.ts";
 * GEMM_TILE.nr; // 8
 * ```
 */
export const GEMM_TILE: GemmTile = { mr: 5, nr: 8 };

/** The shape a micro-kernel is specialized to. */
export interface GemmShape {
  /** Reduction length. */
  readonly k: number;
  /** Columns of B and C, a multiple of the tile's `nr` (callers pad). */
  readonly n: number;
  /** Whether to use `f32x4.relaxed_madd` (fused multiply-add) instead of `mul` + `add`. */
  readonly fma: boolean;
  /** Register tile; `GEMM_TILE` by default. */
  readonly tile?: GemmTile;
}

/** Reduction steps per loop iteration when `k` allows it. */
const K_UNROLL = 4;

/**
 * Emits `gemm(a, b, c, rows)`: `a` row-major `rows x k` (rows a multiple of `mr`), `b` packed
 * as `n / nr` panels of `k x nr`, `c` row-major `rows x n`; all byte addresses.
 *
 * @example
 * ```ts
 * import { gemmFunction } from "./gemm_kernel.ts";
 * gemmFunction({ k: 16, n: 8, fma: false }).name; // "gemm"
 * ```
 */
export function gemmFunction(shape: GemmShape, name = "gemm"): WasmFunction {
  const { k, n, fma } = shape;
  const { mr, nr } = shape.tile ?? GEMM_TILE;
  if (n % nr !== 0 || nr % 4 !== 0) throw new Error(`gemm: n ${n} must be a multiple of nr ${nr}`);
  const lanes = nr / 4;
  const unroll = k % K_UNROLL === 0 ? K_UNROLL : 1;
  const params: ValueType[] = [I32, I32, I32, I32];
  const c = new Code(params);
  const [A, B, C, ROWS] = [0, 1, 2, 3];
  const aEnd = c.local(I32);
  const cRowEnd = c.local(I32);
  const cp = c.local(I32);
  const bp = c.local(I32);
  const ap = c.local(I32);
  const kEnd = c.local(I32);
  const bk = c.local(I32);
  const acc = Array.from({ length: mr }, () => Array.from({ length: lanes }, () => c.local(V128)));
  const bv = Array.from({ length: lanes }, () => c.local(V128));
  const av = c.local(V128);

  // aEnd = a + rows * k * 4
  c.localGet(A).localGet(ROWS).i32Const(k * 4).op(Code.I32_MUL).op(Code.I32_ADD).localSet(aEnd);
  c.loop((rowLoop) => {
    rowLoop.localGet(C).localSet(cp);
    rowLoop.localGet(C).i32Const(n * 4).op(Code.I32_ADD).localSet(cRowEnd);
    rowLoop.localGet(B).localSet(bp);
    rowLoop.loop((panelLoop) => {
      for (const row of acc) for (const x of row) panelLoop.v128Zero().localSet(x);
      panelLoop.localGet(A).localSet(ap);
      panelLoop.localGet(A).i32Const(k * 4).op(Code.I32_ADD).localSet(kEnd);
      panelLoop.localGet(bp).localSet(bk);
      panelLoop.loop((kLoop) => {
        for (let u = 0; u < unroll; u++) {
          bv.forEach((x, l) => kLoop.localGet(bk).v128Load((u * nr + 4 * l) * 4).localSet(x));
          for (let r = 0; r < mr; r++) {
            kLoop.localGet(ap).f32Load((r * k + u) * 4).f32x4Splat().localSet(av);
            for (let l = 0; l < lanes; l++) {
              if (fma) {
                kLoop.localGet(av).localGet(bv[l]).localGet(acc[r][l]).f32x4RelaxedMadd();
              } else {
                kLoop.localGet(av).localGet(bv[l]).f32x4Mul().localGet(acc[r][l]).f32x4Add();
              }
              kLoop.localSet(acc[r][l]);
            }
          }
        }
        kLoop.localGet(ap).i32Const(unroll * 4).op(Code.I32_ADD).localSet(ap);
        kLoop.localGet(bk).i32Const(unroll * nr * 4).op(Code.I32_ADD).localSet(bk);
        kLoop.localGet(ap).localGet(kEnd).op(Code.I32_NE).brIf(0);
      });
      for (let r = 0; r < mr; r++) {
        for (let l = 0; l < lanes; l++) {
          panelLoop.localGet(cp).localGet(acc[r][l]).v128Store((r * n + 4 * l) * 4);
        }
      }
      panelLoop.localGet(cp).i32Const(nr * 4).op(Code.I32_ADD).localSet(cp);
      panelLoop.localGet(bp).i32Const(k * nr * 4).op(Code.I32_ADD).localSet(bp);
      panelLoop.localGet(cp).localGet(cRowEnd).op(Code.I32_NE).brIf(0);
    });
    rowLoop.localGet(A).i32Const(mr * k * 4).op(Code.I32_ADD).localSet(A);
    rowLoop.localGet(C).i32Const(mr * n * 4).op(Code.I32_ADD).localSet(C);
    rowLoop.localGet(A).localGet(aEnd).op(Code.I32_LT_U).brIf(0);
  });
  return { name, params, code: c };
}

/**
 * A module exporting one micro-kernel per entry of `kernels` (`gemm0`, `gemm1`, ... unless
 * named) over an imported shared memory of `pages` 64 KiB pages.
 *
 * @example
 * ```ts
 * import { gemmModule } from "./gemm_kernel.ts";
 * WebAssembly.validate(gemmModule([{ k: 16, n: 8, fma: false }], 1)); // true
 * ```
 */
export function gemmModule(kernels: readonly GemmShape[], pages: number): Uint8Array<ArrayBuffer> {
  return encodeModule(kernels.map((shape, i) => gemmFunction(shape, `gemm${i}`)), pages);
}
