/**
 * The `wgsl` backend's matrix multiply for a `Contraction` with few columns and a long reduction
 * (the seed's patch conv: 3 channels, 768 taps). A tiled GEMM would waste its blocks on 3
 * columns, and one thread per output leaves too few threads (one per patch and channel), each
 * walking 768 loads in sequence. Here a group of `threadsPerRow` threads splits one row's
 * reduction, so consecutive threads read consecutive taps (coalesced runs of the image), every
 * thread keeps all `n` column sums so each activation value is loaded once, and the group adds
 * its partial sums in workgroup memory, four columns at a time.
 * @module
 */

import type { Contraction } from "../../passes/contraction.ts";
import { WORKGROUP_SIZE } from "./loop_nest.ts";
import { renderWgslRescue } from "./gemm.ts";

/** Threads that split one row's reduction. */
export const NARROW_THREADS_PER_ROW = 64;

/** Most columns the shader takes: every thread keeps `n` running sums in registers. */
export const NARROW_MAX_COLUMNS = 16;

/** A rendered narrow-product shader and its dispatch. */
export interface WgslNarrow {
  /** WGSL with entry point `main`; bindings: x, row table, run table, weights, product. */
  readonly source: string;
  /** Workgroups: x, and y when there are more than 65535. */
  readonly groups: [number, number];
}

const MAX_GROUPS_PER_DIM = 65535;
const COMPONENTS = ["x", "y", "z", "w"];

/**
 * Renders the product `C[m, nPadded]` of `c` (`c.nPadded` at most `NARROW_MAX_COLUMNS`). The
 * weights are read in the layout `c.weights` packs them in, `[nPadded / panel, k, panel]`: panels
 * of `panel` columns, each `k` rows deep.
 *
 * @example
 * ```ts
 * import { renderWgslNarrow } from "./narrow.ts";
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
  const panel = c.weights.shape[c.weights.shape.length - 1];
  if (nPadded % panel !== 0) {
    throw new Error(`wgsl narrow product: ${nPadded} columns are not whole panels of ${panel}`);
  }
  // Column j is in panel j / panel, at k * panel + j % panel within it.
  const weightAt = (j: number): string => {
    const start = Math.floor(j / panel) * c.k * panel + (j % panel);
    return `w[k * ${panel}${start ? ` + ${start}` : ""}]`;
  };
  const workgroups = Math.ceil(c.m / rowsPerGroup);
  const rowsOfGroups = Math.ceil(workgroups / MAX_GROUPS_PER_DIM);
  const cols = Array.from({ length: n }, (_, j) => j);
  const half = lanes / 2;
  // The sums go through one vec4 a thread, four columns at a time, and the upper half of a row's
  // lanes hands its sums to the lower half before the tree: a workgroup array of
  // `WORKGROUP_SIZE * n` floats took llvmpipe minutes to compile (its zero-fill grows worse than
  // linearly), and a smaller one also leaves more room for other workgroups.
  const slot = `(t / ${lanes}) * ${half} + lane % ${half}`;
  const groupsOf4 = Array.from({ length: Math.ceil(n / 4) }, (_, q) => q);
  const reduce = groupsOf4.flatMap((q) => {
    const own = COMPONENTS.map((_, i) => (4 * q + i < n ? `acc${4 * q + i}` : "0.0"));
    return [
      `  let own${q} = vec4<f32>(${own.join(", ")});`,
      `  if (lane >= ${half}) { partial[u] = own${q}; }`,
      "  workgroupBarrier();",
      `  if (lane < ${half}) { partial[u] += own${q}; }`,
      "  workgroupBarrier();",
      // A loop, not unrolled steps: llvmpipe compiles the shader in half the time.
      `  for (var s: i32 = ${half / 2}; s >= 1; s /= 2) {`,
      "    if (lane < s) { partial[u] += partial[u + s]; }",
      "    workgroupBarrier();",
      "  }",
      `  if (lane == 0 && row < ${c.m}) {`,
      "    let sum = partial[u];",
      ...COMPONENTS.flatMap((name, i) =>
        4 * q + i < n
          ? [`    out[row * ${nPadded} + ${4 * q + i}] = rescue(row, ${4 * q + i}, sum.${name});`]
          : []
      ),
      "  }",
      // Lane 0 reads its slot after the last barrier; the next group's writes must wait for it.
      ...(q + 1 < groupsOf4.length ? ["  workgroupBarrier();"] : []),
    ];
  });
  const lines = [
    "@group(0) @binding(0) var<storage, read> x: array<f32>;",
    "@group(0) @binding(1) var<storage, read> rows: array<i32>;",
    "@group(0) @binding(2) var<storage, read> runs: array<i32>;",
    "@group(0) @binding(3) var<storage, read> w: array<f32>;",
    "@group(0) @binding(4) var<storage, read_write> out: array<f32>;",
    `var<workgroup> partial: array<vec4<f32>, ${rowsPerGroup * half}>;`,
    ...renderWgslRescue(c),
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
    `  let u = ${slot};`,
    ...cols.map((j) => `  var acc${j}: f32 = 0.0;`),
    `  for (var k: i32 = lane; k < ${c.k}; k += ${lanes}) {`,
    `    let a = x[base + runs[k / ${runLength}] + (k % ${runLength}) * ${runStride}];`,
    ...cols.map((j) => `    acc${j} = fma(a, ${weightAt(j)}, acc${j});`),
    "  }",
    ...reduce,
    "}",
  ];
  return {
    source: lines.join("\n"),
    groups: [Math.ceil(workgroups / rowsOfGroups), rowsOfGroups],
  };
}
