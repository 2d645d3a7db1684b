/**
 * The WGSL emitter behind the `wgsl` backend: one compute shader per lowered kernel, one thread
 * per output element, with integer index math in `i32` (exact at any size, unlike gpu.js's f32
 * division) and every shape baked in as a literal.
 * @module
 */

import type { Kernel } from "../../ir/program.ts";
import {
  erfSpelling,
  floatLiteral,
  hasLongSum,
  infixOps,
  type OpSpelling,
  renderJammedStatements,
  renderStatements,
  type Syntax,
  tanhSpelling,
} from "../common.ts";

/** The largest finite float32: WGSL has no infinity literal. */
const F32_MAX = 3.4028234663852886e38;

const wgslSelect = (c: string, a: string, b: string): string => `select(${b}, ${a}, ${c})`;
const wgslExp = (a: string): string => `exp(${a})`;
const wgslAbs = (a: string): string => `abs(${a})`;

/**
 * How WGSL spells every op of the IR.
 *
 * @example
 * ```ts
 * import { WGSL_OPS } from "./loop_nest.ts";
 * WGSL_OPS.unary.rsqrt("x"); // "inverseSqrt(x)"
 * ```
 */
export const WGSL_OPS: OpSpelling = {
  unary: {
    neg: (a) => `(-${a})`,
    exp: wgslExp,
    log: (a) => `log(${a})`,
    sqrt: (a) => `sqrt(${a})`,
    rsqrt: (a) => `inverseSqrt(${a})`,
    erf: (a) =>
      erfSpelling(a, { float: floatLiteral, abs: wgslAbs, exp: wgslExp, select: wgslSelect }),
    tanh: (a) => tanhSpelling(a, floatLiteral, wgslExp),
    abs: wgslAbs,
    recip: (a) => `(1.0 / ${a})`,
  },
  binary: {
    ...infixOps((c) => `select(0.0, 1.0, ${c})`, "=="),
    max: (a, b) => `max(${a}, ${b})`,
    min: (a, b) => `min(${a}, ${b})`,
  },
  where: (c, a, b) => wgslSelect(`${c} != 0.0`, a, b),
  lowest: floatLiteral(-F32_MAX),
};

/**
 * A rendered shader: its source, the buffers it binds (in binding order, the output last) and
 * the workgroup size.
 *
 * @example
 * ```ts
 * import type { WgslKernel } from "./loop_nest.ts";
 * function bindings(k: WgslKernel): number {
 *   return k.reads.length + 1;
 * }
 * ```
 */
export interface WgslKernel {
  /** WGSL source with entry point `main`. */
  readonly source: string;
  /** Buffers bound read-only at bindings 0..n-1. */
  readonly reads: readonly string[];
  /** Threads per workgroup (x only). */
  readonly workgroupSize: number;
  /** Threads to launch (outputs divided by the outputs each thread computes). */
  readonly threads: number;
}

/** Outputs per thread in reduction kernels. */
const LANES = 4;

/**
 * Threads per workgroup: a multiple of every vendor's SIMD width (32 or 64).
 *
 * @example
 * ```ts
 * import { WORKGROUP_SIZE } from "./loop_nest.ts";
 * WORKGROUP_SIZE; // 256
 * ```
 */
export const WORKGROUP_SIZE = 256;

/**
 * The WGSL syntax of the loop-nest and row-reduction shaders: buffers bound as `buf0, buf1, ...`
 * in the order of `reads`, the output `out` at the flat index `flat`, i32 index math.
 *
 * @example
 * ```ts
 * import { wgslSyntax } from "./loop_nest.ts";
 * wgslSyntax(["p_w"]).load("p_w", "i0"); // "buf0[i0]"
 * ```
 */
export function wgslSyntax(reads: readonly string[]): Syntax {
  // Buffers are `buf<i>`; reduction variables (c0, ky1, b1, ...) never start with "buf".
  const binding = new Map(reads.map((r, i) => [r, `buf${i}`]));
  return {
    variable: (name) => name,
    div: (x, d) => `(${x} / ${d})`,
    mod: (x, d) => `(${x} % ${d})`,
    load: (buf, index) => `${binding.get(buf)}[${index}]`,
    float: floatLiteral,
    // Both sides are evaluated; out-of-range loads are clamped by WebGPU's robust access.
    select: wgslSelect,
    accumulator: (name, init) => `var ${name}: f32 = ${init};`,
    bind: (name, value) => `let ${name}: f32 = ${value};`,
    ops: WGSL_OPS,
    loop: (v, extent) => `for (var ${v}: i32 = 0; ${v} < ${extent}; ${v}++) {`,
    store: (value, lane) => `out[u32(flat + ${lane})] = ${value};`,
    // No overflow rescue: llvmpipe compiled a conv loop nest with it 45x slower (30 s, not
    // 0.7 s), so wgsl loop nests keep f32 sums (README: limits).
    elseBranch: true,
  };
}

/**
 * `let i0 = ...; let i1 = ...;`: the output index variables of `shape` from the flat index
 * `flat`.
 *
 * @example
 * ```ts
 * import { outputIndexLines } from "./loop_nest.ts";
 * outputIndexLines([2, 3]); // ["  let i0 = (flat / 3);", "  let i1 = flat % 3;"]
 * ```
 */
export function outputIndexLines(shape: readonly number[]): string[] {
  const lines: string[] = [];
  let inner = 1;
  for (let axis = shape.length - 1; axis >= 0; axis--) {
    const q = inner === 1 ? "flat" : `(flat / ${inner})`;
    lines.unshift(axis === 0 ? `  let i0 = ${q};` : `  let i${axis} = ${q} % ${shape[axis]};`);
    inner *= shape[axis];
  }
  return lines;
}

/**
 * Renders one kernel as a WGSL compute shader. Large launches use a 2-D dispatch, whose rows
 * the shader reads from `num_workgroups`; `threads` says how many to launch.
 *
 * @example
 * ```ts
 * import { renderWgslKernel } from "./loop_nest.ts";
 * typeof renderWgslKernel; // "function"
 * ```
 */
export function renderWgslKernel(kernel: Kernel): WgslKernel {
  const reads = [...kernel.reads].sort();
  const syntax = wgslSyntax(reads);
  // Reductions compute LANES outputs per thread, sharing the loads that do not move along the
  // last axis (the patch pixels of the standard tokenizer's GEMM).
  const jammed = hasLongSum(kernel.expr)
    ? renderJammedStatements(kernel, syntax, "  ", LANES)
    : undefined;
  const lanes = jammed ? LANES : 1;
  const body = (jammed ?? renderStatements(kernel, syntax, "  ")).lines;
  const threads = kernel.size / lanes;

  const decompose = outputIndexLines(kernel.shape);
  const source = [
    ...reads.map((_, i) => `@group(0) @binding(${i}) var<storage, read> buf${i}: array<f32>;`),
    `@group(0) @binding(${reads.length}) var<storage, read_write> out: array<f32>;`,
    `@compute @workgroup_size(${WORKGROUP_SIZE})`,
    "fn main(",
    "  @builtin(global_invocation_id) gid: vec3<u32>,",
    "  @builtin(num_workgroups) groups: vec3<u32>,",
    ") {",
    `  let idx = gid.x + gid.y * groups.x * ${WORKGROUP_SIZE}u;`,
    `  if (idx >= ${threads}u) { return; }`,
    `  let flat = i32(idx) * ${lanes};`,
    ...decompose,
    ...body,
    "}",
  ].join("\n");
  return { source, reads, workgroupSize: WORKGROUP_SIZE, threads };
}

/** Workgroups of the finite check: enough to fill a GPU, each thread striding over the input. */
const FINITE_CHECK_GROUPS = 1024;

/**
 * A shader that sets `flag[0]` to 1 when any of the `length` values bound at 0 is NaN or an
 * infinity, so a run can refuse bad input without a scan on the host. It tests the exponent bits:
 * WGSL lets compilers assume floats are finite, so `x != x` may be folded away.
 *
 * @example
 * ```ts
 * import { renderWgslFiniteCheck } from "./loop_nest.ts";
 * renderWgslFiniteCheck(10).groups; // 1024
 * ```
 */
export function renderWgslFiniteCheck(length: number): { source: string; groups: number } {
  const stride = FINITE_CHECK_GROUPS * WORKGROUP_SIZE;
  const source = [
    "@group(0) @binding(0) var<storage, read> x: array<u32>;",
    "@group(0) @binding(1) var<storage, read_write> flag: array<u32>;",
    `@compute @workgroup_size(${WORKGROUP_SIZE})`,
    "fn main(@builtin(global_invocation_id) gid: vec3<u32>) {",
    "  var bad = false;",
    `  for (var i = gid.x; i < ${length}u; i += ${stride}u) {`,
    "    bad = bad || (x[i] & 0x7f800000u) == 0x7f800000u;",
    "  }",
    "  if (bad) { flag[0] = 1u; }",
    "}",
  ].join("\n");
  return { source, groups: FINITE_CHECK_GROUPS };
}
