/**
 * The `wgsl` backend's matrix multiply for a `Contraction` with few columns and a long reduction
 * (the seed's patch conv: 3 channels, 768 taps). A tiled GEMM would waste its blocks on 3
 * columns, and one thread per output leaves too few threads (one per patch and channel), each
 * walking 768 loads in sequence. Here a group of `threadsPerRow` threads splits one row's
 * reduction, so consecutive threads read consecutive taps (coalesced runs of the image), every
 * thread keeps all `n` column sums so each activation value is loaded once, and the group adds
 * its partial sums in workgroup memory.
 * @module
 */

import type { Contraction } from "./contraction.ts";
import { WORKGROUP_SIZE } from "./render_wgsl.ts";

/** Threads that split one row's reduction. */
export const NARROW_THREADS_PER_ROW = 64;

/**
 * Most columns the shader takes: the group keeps `WORKGROUP_SIZE * n` partial sums in the 16 KiB
 * of workgroup memory WebGPU guarantees.
 */
export const NARROW_MAX_COLUMNS = 16;

/** A rendered narrow-product shader and its dispatch. */
export interface WgslNarrow {
  /** WGSL with entry point `main`; bindings: x, row table, run table, weights, product. */
  readonly source: string;
  /** Workgroups: x, and y when there are more than 65535. */
  readonly groups: [number, number];
}

const MAX_GROUPS_PER_DIM = 65535;

/**
 * Renders the product `C[m, nPadded]` of `c` (weights packed as one `[k, nPadded]` panel, so
 * `c.nPadded` must not exceed `NARROW_MAX_COLUMNS`).
 *
 * @example
 * ```ts
 * import { renderWgslNarrow } from "./render_wgsl_narrow.ts";
 * typeof renderWgslNarrow; // "function"
 * ```
 */
export function renderWgslNarrow(c: Contraction): WgslNarrow {
  if (c.nPadded > NARROW_MAX_COLUMNS) {
    throw new Error(`wgsl narrow product: ${c.nPadded} columns, at most ${NARROW_MAX_COLUMNS}`);
  }
  const lanes = NARROW_THREADS_PER_ROW;
  const rowsPerGroup = WORKGROUP_SIZE / lanes;
  const { n, nPadded } = c;
  const { runLength, runStride } = c.operand;
  const workgroups = Math.ceil(c.m / rowsPerGroup);
  const rowsOfGroups = Math.ceil(workgroups / MAX_GROUPS_PER_DIM);
  const cols = Array.from({ length: n }, (_, j) => j);
  const halvings: number[] = [];
  for (let s = lanes / 2; s >= 1; s /= 2) halvings.push(s);
  const lines = [
    "@group(0) @binding(0) var<storage, read> x: array<f32>;",
    "@group(0) @binding(1) var<storage, read> rows: array<i32>;",
    "@group(0) @binding(2) var<storage, read> runs: array<i32>;",
    "@group(0) @binding(3) var<storage, read> w: array<f32>;",
    "@group(0) @binding(4) var<storage, read_write> out: array<f32>;",
    `var<workgroup> partial: array<f32, ${WORKGROUP_SIZE * n}>;`,
    `@compute @workgroup_size(${WORKGROUP_SIZE})`,
    "fn main(",
    "  @builtin(workgroup_id) wg: vec3<u32>,",
    "  @builtin(num_workgroups) groups: vec3<u32>,",
    "  @builtin(local_invocation_index) li: u32,",
    ") {",
    "  let t = i32(li);",
    `  let lane = t % ${lanes};`,
    `  let row = i32(wg.x + wg.y * groups.x) * ${rowsPerGroup} + t / ${lanes};`,
    // Rows past the end still take part in the barriers; they read the last row and store nothing.
    `  let base = rows[min(row, ${c.m - 1})];`,
    ...cols.map((j) => `  var acc${j}: f32 = 0.0;`),
    `  for (var k: i32 = lane; k < ${c.k}; k += ${lanes}) {`,
    `    let a = x[base + runs[k / ${runLength}] + (k % ${runLength}) * ${runStride}];`,
    ...cols.map((j) => `    acc${j} = fma(a, w[k * ${nPadded} + ${j}], acc${j});`),
    "  }",
    ...cols.map((j) => `  partial[t * ${n} + ${j}] = acc${j};`),
    "  workgroupBarrier();",
    ...halvings.flatMap((s) => [
      `  if (lane < ${s}) {`,
      ...cols.map((j) => `    partial[t * ${n} + ${j}] += partial[(t + ${s}) * ${n} + ${j}];`),
      "  }",
      "  workgroupBarrier();",
    ]),
    `  if (lane == 0 && row < ${c.m}) {`,
    ...cols.map((j) => `    out[row * ${nPadded} + ${j}] = partial[t * ${n} + ${j}];`),
    "  }",
    "}",
  ];
  return {
    source: lines.join("\n"),
    groups: [Math.ceil(workgroups / rowsOfGroups), rowsOfGroups],
  };
}
