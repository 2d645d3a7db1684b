/**
 * The `wgsl` backend's matrix multiply for a `Contraction`: a workgroup-tiled SGEMM shader. By
 * default each 16 x 16 workgroup computes a 128 x 128 block of the product, staging 8-deep slices
 * of A and B in workgroup memory so every value fetched from storage is used 128 times, and each
 * thread keeps an 8 x 8 block of outputs in registers. A is read where it lies through the contraction's row and
 * run offset tables (an implicit im2col for a conv); B is the weights re-laid once in panels of
 * `bn` columns, so a workgroup's slice of B is contiguous. The rest of the fused kernel runs as a second shader, the contraction's
 * epilogue, reading the product.
 * @module
 */

import type { Contraction } from "../../passes/contraction.ts";

/** Block and register tile sizes of the shader. */
export interface GpuGemmTile {
  /** Product rows per workgroup. */
  readonly bm: number;
  /** Product columns per workgroup (the contraction's column padding). */
  readonly bn: number;
  /** Reduction slice staged per step. */
  readonly bk: number;
  /** Rows per thread. */
  readonly tm: number;
  /** Columns per thread. */
  readonly tn: number;
}

/**
 * 128 x 128 blocks, 8-deep slices, 8 x 8 outputs a thread: 256 threads, 8 KiB of workgroup memory.
 * The fastest of the tiles swept on an H100 (`bench/gpu.ts --gemm-tiles`, see `bench/README.md`).
 *
 * @example
 * ```ts
 * import { GPU_GEMM_TILE } from "./gemm.ts";
 * GPU_GEMM_TILE.bn; // 128
 * ```
 */
export const GPU_GEMM_TILE: GpuGemmTile = { bm: 128, bn: 128, bk: 8, tm: 8, tn: 8 };

/**
 * Why `tile` cannot be rendered, or null when it can: each thread owns a whole `tm x tn` block,
 * and the 256-ish threads split the A and B slices evenly.
 *
 * @example
 * ```ts
 * import { gemmTileProblem, GPU_GEMM_TILE } from "./gemm.ts";
 * gemmTileProblem(GPU_GEMM_TILE); // null
 * gemmTileProblem({ bm: 64, bn: 64, bk: 16, tm: 3, tn: 4 }); // "bm 64 is not a multiple of tm 3"
 * ```
 */
export function gemmTileProblem(tile: GpuGemmTile): string | null {
  const { bm, bn, bk, tm, tn } = tile;
  if (![bm, bn, bk, tm, tn].every((d) => Number.isInteger(d) && d > 0)) {
    return "sizes must be positive integers";
  }
  if (bm % tm !== 0) return `bm ${bm} is not a multiple of tm ${tm}`;
  if (bn % tn !== 0) return `bn ${bn} is not a multiple of tn ${tn}`;
  const threads = (bm / tm) * (bn / tn);
  if (threads > 256) return `${threads} threads a workgroup; WebGPU guarantees 256`;
  if (threads % bk !== 0 || (bm * bk) % threads !== 0) {
    return `a ${bm}x${bk} slice of A does not split evenly over ${threads} threads`;
  }
  if (threads % bn !== 0 || (bk * bn) % threads !== 0) {
    return `a ${bk}x${bn} slice of B does not split evenly over ${threads} threads`;
  }
  return null;
}

/**
 * WGSL functions for a product shader of `c` (bindings `x`, `rows`, `runs`, `w`): `rescue(row,
 * col, value)` returns `value` when it is finite, else recomputes `C[row, col]` with each factor
 * divided by its largest magnitude over the reduction and multiplies back. An f32 sum of
 * `3e38 * 4` and `3e38 * -4` is `Inf - Inf = NaN`; the exact value, 0, is what the reference
 * gives. The scales are run-time values: compilers may fold a constant scale `(a * s) * (b * s)`
 * into `(a * b) * s²`, which overflows again (llvmpipe does). A factor that is already ±Inf keeps
 * `value`, which IEEE arithmetic got right.
 *
 * @example
 * ```ts
 * import { renderWgslRescue } from "./gemm.ts";
 * typeof renderWgslRescue; // "function"
 * ```
 */
export function renderWgslRescue(c: Contraction): string[] {
  const panel = c.weights.shape[c.weights.shape.length - 1];
  const { runLength, runStride } = c.operand;
  const a = `x[base + runs[k / ${runLength}] + (k % ${runLength}) * ${runStride}]`;
  const b = `w[wcol + k * ${panel}]`;
  // With B packed per batch index, each batch's panels follow the previous batch's.
  const perBatch = c.m / c.batches;
  return [
    // Exponent bits all set: ±Inf or NaN (a float comparison may be folded away).
    "fn nonfinite(v: f32) -> bool { return (bitcast<u32>(v) & 0x7f800000u) == 0x7f800000u; }",
    "fn rescue(row: i32, col: i32, value: f32) -> f32 {",
    "  if (!nonfinite(value)) { return value; }",
    `  let base = rows[min(row, ${c.m - 1})];`,
    `  let wcol = (row / ${perBatch}) * ${c.k * c.nPadded} + (col / ${panel}) * ${
      c.k * panel
    } + col % ${panel};`,
    "  var ma: f32 = 0.0;",
    "  var mb: f32 = 0.0;",
    `  for (var k: i32 = 0; k < ${c.k}; k++) {`,
    `    ma = max(ma, abs(${a}));`,
    `    mb = max(mb, abs(${b}));`,
    "  }",
    "  if (nonfinite(ma) || nonfinite(mb)) { return value; }",
    "  var s: f32 = 0.0;",
    `  for (var k: i32 = 0; k < ${c.k}; k++) {`,
    `    s += (${a} / ma) * (${b} / mb);`,
    "  }",
    // The smaller scale first: the first product overflows only if the result does.
    "  return (s * min(ma, mb)) * max(ma, mb);",
    "}",
  ];
}

/** A rendered GEMM shader and its dispatch. */
export interface WgslGemm {
  /** WGSL with entry point `main`; bindings: x, row table, run table, weights, product. */
  readonly source: string;
  /** Workgroups along columns (x), rows of one batch (y) and batch indices (z). */
  readonly groups: [number, number, number];
}

/**
 * Renders the product `C[m, nPadded]` of `c` as a WGSL compute shader.
 *
 * @example
 * ```ts
 * import { renderWgslGemm } from "./gemm.ts";
 * typeof renderWgslGemm; // "function"
 * ```
 */
export function renderWgslGemm(c: Contraction, tile: GpuGemmTile = GPU_GEMM_TILE): WgslGemm {
  const perBatch = c.m / c.batches;
  const { bm, bn, bk, tm, tn } = tile;
  const tx = bn / tn;
  const ty = bm / tm;
  const threads = tx * ty;
  if (c.nPadded % bn !== 0) throw new Error(`wgsl gemm: columns ${c.nPadded} not padded to ${bn}`);
  const problem = gemmTileProblem(tile);
  if (problem) throw new Error(`wgsl gemm: ${problem}`);
  const { runLength, runStride } = c.operand;
  const aPasses = (bm * bk) / threads;
  const aRowsPerPass = threads / bk;
  const bPasses = (bk * bn) / threads;
  const bRowsPerPass = threads / bn;
  const lines: string[] = [
    "@group(0) @binding(0) var<storage, read> x: array<f32>;",
    "@group(0) @binding(1) var<storage, read> rows: array<i32>;",
    "@group(0) @binding(2) var<storage, read> runs: array<i32>;",
    "@group(0) @binding(3) var<storage, read> w: array<f32>;",
    "@group(0) @binding(4) var<storage, read_write> out: array<f32>;",
    `var<workgroup> As: array<f32, ${bk * bm}>;`,
    `var<workgroup> Bs: array<f32, ${bk * bn}>;`,
    ...renderWgslRescue(c),
    `@compute @workgroup_size(${tx}, ${ty})`,
    "fn main(",
    "  @builtin(workgroup_id) wg: vec3<u32>,",
    "  @builtin(local_invocation_id) lid: vec3<u32>,",
    "  @builtin(local_invocation_index) li: u32,",
    ") {",
    // A batch's rows read its own packed B (one batch for weights).
    `  let batchEnd = (i32(wg.z) + 1) * ${perBatch};`,
    `  let row0 = i32(wg.z) * ${perBatch} + i32(wg.y) * ${bm};`,
    `  let wz = i32(wg.z) * ${c.k * c.nPadded};`,
    `  let col0 = i32(wg.x) * ${bn};`,
    "  let tx = i32(lid.x);",
    "  let ty = i32(lid.y);",
    "  let t = i32(li);",
    // A loads: thread t reads k = t % bk of rows t / bk + pass * aRowsPerPass.
    `  let ak = t % ${bk};`,
    `  let am = t / ${bk};`,
    ...Array.from(
      { length: aPasses },
      (_, p) => `  let base${p} = rows[min(row0 + am + ${p * aRowsPerPass}, batchEnd - 1)];`,
    ),
    `  let bn_ = t % ${bn};`,
    `  let bk_ = t / ${bn};`,
    ...Array.from({ length: tm * tn }, (_, i) => `  var acc${i}: f32 = 0.0;`),
    `  for (var k0: i32 = 0; k0 < ${c.k}; k0 += ${bk}) {`,
    "    let k = k0 + ak;",
    `    let inK = k < ${c.k};`,
    `    let kc = min(k, ${c.k - 1});`,
    `    let koff = runs[kc / ${runLength}] + (kc % ${runLength}) * ${runStride};`,
    ...Array.from(
      { length: aPasses },
      (_, p) =>
        `    As[ak * ${bm} + am + ${p * aRowsPerPass}] = select(0.0, x[base${p} + koff], inK);`,
    ),
    ...Array.from({ length: bPasses }, (_, p) => {
      const kk = `bk_ + ${p * bRowsPerPass}`;
      return `    Bs[(${kk}) * ${bn} + bn_] = select(0.0, w[wz + (i32(wg.x) * ${c.k} + min(k0 + ${kk}, ${
        c.k - 1
      })) * ${bn} + bn_], k0 + ${kk} < ${c.k});`;
    }),
    "    workgroupBarrier();",
    `    for (var kk: i32 = 0; kk < ${bk}; kk++) {`,
    ...Array.from({ length: tm }, (_, i) => `      let a${i} = As[kk * ${bm} + ty + ${i * ty}];`),
    ...Array.from({ length: tn }, (_, j) => `      let b${j} = Bs[kk * ${bn} + tx + ${j * tx}];`),
    ...Array.from({ length: tm * tn }, (_, q) => {
      const i = Math.floor(q / tn);
      const j = q % tn;
      return `      acc${q} = fma(a${i}, b${j}, acc${q});`;
    }),
    "    }",
    "    workgroupBarrier();",
    "  }",
    // The largest exponent field: all ones when some output is ±Inf or NaN.
    "  var bad = 0u;",
    ...Array.from(
      { length: tm * tn },
      (_, q) => `  bad = max(bad, bitcast<u32>(acc${q}) & 0x7f800000u);`,
    ),
    ...Array.from({ length: tm }, (_, i) => [
      `  if (row0 + ty + ${i * ty} < batchEnd) {`,
      ...Array.from(
        { length: tn },
        (_, j) =>
          `    out[(row0 + ty + ${i * ty}) * ${c.nPadded} + col0 + tx + ${j * tx}] = acc${
            i * tn + j
          };`,
      ),
      "  }",
    ]).flat(),
    // No barrier follows, so only the threads with an overflowed output take this branch.
    "  if (bad == 0x7f800000u) {",
    `    for (var i: i32 = 0; i < ${tm}; i++) {`,
    `      let row = row0 + ty + i * ${ty};`,
    `      if (row < batchEnd) {`,
    `        for (var j: i32 = 0; j < ${tn}; j++) {`,
    `          let col = col0 + tx + j * ${tx};`,
    `          out[row * ${c.nPadded} + col] = rescue(row, col, out[row * ${c.nPadded} + col]);`,
    "        }",
    "      }",
    "    }",
    "  }",
    "}",
  ];
  return {
    source: lines.join("\n"),
    groups: [c.nPadded / bn, Math.ceil(perBatch / bm), c.batches],
  };
}
