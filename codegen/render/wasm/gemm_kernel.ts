/**
 * The WASM SIMD matrix-multiply micro-kernel behind the `wasm` backend's contractions:
 * `C[rows, n] = A[rows, K] * B[K, n]` with `MR x NR` outputs held in `v128` registers while the
 * reduction streams through them (register blocking), and B pre-packed in `NR`-column panels so
 * each step loads it with aligned vector loads. A is read where it lies: row `r` starts at
 * `xBase + rowTable[r]`, and the reduction is runs of `runLength` elements `runStride` apart,
 * each run starting `kTable[t]` bytes into the row (a conv's patch rows, or one run for a
 * Linear). The kernel is specialized to these sizes, so every stride inside a run is a constant
 * offset folded into the load instructions.
 * @module
 */

import type { GemmTile } from "../../passes/contraction.ts";
import { Code, encodeModule, I32, V128, type ValueType, type WasmFunction } from "./encoder.ts";

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
  /** Columns of B and C, a multiple of the tile's `nr` (callers pad). */
  readonly n: number;
  /** Runs per row (entries of the k table). */
  readonly runs: number;
  /** Elements per run; the reduction length is `runs * runLength`. */
  readonly runLength: number;
  /** Element stride within a run. */
  readonly runStride: number;
  /** Whether to use `f32x4.relaxed_madd` (fused multiply-add) instead of `mul` + `add`. */
  readonly fma: boolean;
  /** Register tile; `GEMM_TILE` by default. */
  readonly tile?: GemmTile;
}

/** Runs up to this long are unrolled completely; longer ones loop, 4 steps per iteration. */
const FULL_UNROLL = 32;
const K_UNROLL = 4;

/**
 * Emits `gemm(xBase, rowTable, kTable, b, c, rows)` (all byte addresses; `rows` a multiple of
 * `mr`): `b` packed as `n / nr` panels of `K x nr`, `c` row-major `rows x n`. It returns 1 when
 * some output is ±Inf or NaN, else 0: f32 sums overflow where the exact ones need not (with
 * fused multiply-adds `3e38 * 4 + 3e38 * -4` gives +Inf, not 0), so the caller recomputes those
 * outputs. The test costs two vector operations per accumulator per register tile.
 *
 * @example
 * ```ts
 * import { gemmFunction } from "./gemm_kernel.ts";
 * gemmFunction({ n: 8, runs: 1, runLength: 16, runStride: 1, fma: false }).name; // "gemm"
 * ```
 */
export function gemmFunction(shape: GemmShape, name = "gemm"): WasmFunction {
  const { n, runs, runLength, runStride, fma } = shape;
  const { mr, nr } = shape.tile ?? GEMM_TILE;
  if (n % nr !== 0 || nr % 4 !== 0) throw new Error(`gemm: n ${n} must be a multiple of nr ${nr}`);
  const k = runs * runLength;
  const lanes = nr / 4;
  const params: ValueType[] = [I32, I32, I32, I32, I32, I32];
  const c = new Code(params);
  const [X, ROWS_AT, K_TABLE, B, C, ROWS] = [0, 1, 2, 3, 4, 5];
  const rowEnd = c.local(I32);
  const rowsAt = c.local(I32);
  const cRowEnd = c.local(I32);
  const cp = c.local(I32);
  const bp = c.local(I32);
  const bk = c.local(I32);
  const kt = c.local(I32);
  const off = c.local(I32);
  const left = c.local(I32);
  const rowBase = Array.from({ length: mr }, () => c.local(I32));
  const rowAt = Array.from({ length: mr }, () => c.local(I32));
  const acc = Array.from({ length: mr }, () => Array.from({ length: lanes }, () => c.local(V128)));
  const bv = Array.from({ length: lanes }, () => c.local(V128));
  const av = c.local(V128);
  // OR of `acc - acc` over every stored accumulator: zero bits unless some lane was not finite.
  const bad = c.local(V128);

  // One reduction step `u` of the current run: 2 B vector loads, mr splats, mr * lanes madds.
  const step = (code: Code, u: number): void => {
    bv.forEach((x, l) => code.localGet(bk).v128Load((u * nr + 4 * l) * 4).localSet(x));
    for (let r = 0; r < mr; r++) {
      code.localGet(rowAt[r]).f32Load(u * runStride * 4).f32x4Splat().localSet(av);
      for (let l = 0; l < lanes; l++) {
        if (fma) code.localGet(av).localGet(bv[l]).localGet(acc[r][l]).f32x4RelaxedMadd();
        else code.localGet(av).localGet(bv[l]).f32x4Mul().localGet(acc[r][l]).f32x4Add();
        code.localSet(acc[r][l]);
      }
    }
  };
  const advance = (code: Code, local: number, bytes: number): void => {
    code.localGet(local).i32Const(bytes).op(Code.I32_ADD).localSet(local);
  };

  // Panels outer, row blocks inner: one B panel (K x nr) stays in L1 while the tile's rows of A
  // stream from L2.
  c.localGet(ROWS_AT).localGet(ROWS).i32Const(4).op(Code.I32_MUL).op(Code.I32_ADD).localSet(rowEnd);
  c.localGet(C).i32Const(n * 4).op(Code.I32_ADD).localSet(cRowEnd);
  c.localGet(B).localSet(bp);
  c.loop((panelLoop) => {
    panelLoop.localGet(ROWS_AT).localSet(rowsAt);
    panelLoop.localGet(C).localSet(cp);
    panelLoop.loop((rowLoop) => {
      rowBase.forEach((base, r) => {
        rowLoop.localGet(X).localGet(rowsAt).i32Load(r * 4).op(Code.I32_ADD).localSet(base);
      });
      for (const row of acc) for (const x of row) rowLoop.v128Zero().localSet(x);
      rowLoop.localGet(bp).localSet(bk);
      rowLoop.localGet(K_TABLE).localSet(kt);
      rowLoop.loop((runLoop) => {
        runLoop.localGet(kt).i32Load(0).localSet(off);
        rowAt.forEach((at, r) => {
          runLoop.localGet(rowBase[r]).localGet(off).op(Code.I32_ADD).localSet(at);
        });
        if (runLength <= FULL_UNROLL) {
          for (let u = 0; u < runLength; u++) step(runLoop, u);
          advance(runLoop, bk, runLength * nr * 4);
        } else {
          const unroll = runLength % K_UNROLL === 0 ? K_UNROLL : 1;
          runLoop.i32Const(runLength / unroll).localSet(left);
          runLoop.loop((kLoop) => {
            for (let u = 0; u < unroll; u++) step(kLoop, u);
            for (const at of rowAt) advance(kLoop, at, unroll * runStride * 4);
            advance(kLoop, bk, unroll * nr * 4);
            kLoop.localGet(left).i32Const(1).op(Code.I32_SUB).localSet(left);
            kLoop.localGet(left).i32Const(0).op(Code.I32_NE).brIf(0);
          });
        }
        advance(runLoop, kt, 4);
        runLoop.localGet(kt).localGet(K_TABLE).i32Const(runs * 4).op(Code.I32_ADD)
          .op(Code.I32_NE).brIf(0);
      });
      for (let r = 0; r < mr; r++) {
        for (let l = 0; l < lanes; l++) {
          rowLoop.localGet(cp).localGet(acc[r][l]).v128Store((r * n + 4 * l) * 4);
          rowLoop.localGet(bad).localGet(acc[r][l]).localGet(acc[r][l]).f32x4Sub().v128Or()
            .localSet(bad);
        }
      }
      advance(rowLoop, rowsAt, mr * 4);
      advance(rowLoop, cp, mr * n * 4);
      rowLoop.localGet(rowsAt).localGet(rowEnd).op(Code.I32_LT_U).brIf(0);
    });
    advance(panelLoop, bp, k * nr * 4);
    advance(panelLoop, C, nr * 4);
    panelLoop.localGet(C).localGet(cRowEnd).op(Code.I32_NE).brIf(0);
  });
  c.localGet(bad).v128AnyTrue();
  return { name, params, results: [I32], code: c };
}

/**
 * A module exporting one micro-kernel per entry of `kernels` (`gemm0`, `gemm1`, ...) over an
 * imported shared memory of `pages` 64 KiB pages.
 *
 * @example
 * ```ts
 * import { gemmModule } from "./gemm_kernel.ts";
 * const shape = { n: 8, runs: 1, runLength: 16, runStride: 1, fma: false };
 * WebAssembly.validate(gemmModule([shape], 1)); // true
 * ```
 */
export function gemmModule(kernels: readonly GemmShape[], pages: number): Uint8Array<ArrayBuffer> {
  return encodeModule(kernels.map((shape, i) => gemmFunction(shape, `gemm${i}`)), pages);
}
