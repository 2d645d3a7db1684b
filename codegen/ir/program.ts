/**
 * The lowered program every pass transforms and every renderer reads: named buffers and the
 * kernels over them, each kernel one value expression per output element.
 * @module
 */

import type { Ranges, VExpr } from "./expr.ts";

/**
 * A buffer a program reads or writes.
 *
 * @example
 * ```ts
 * import type { BufferInfo } from "./program.ts";
 * const b: BufferInfo = { name: "in_image", kind: "input", shape: [1, 3, 224, 224], source: "image" };
 * ```
 */
export interface BufferInfo {
  /** Identifier used in kernel sources. */
  readonly name: string;
  /** Graph inputs are uploaded per run; params and folded constants once at compile time. */
  readonly kind: "input" | "param" | "const" | "intermediate";
  /** Concrete shape. */
  readonly shape: readonly number[];
  /** The input or parameter name in the graph, for inputs and params. */
  readonly source?: string;
  /** Values of params and folded constants. */
  readonly data?: Float32Array;
}

/**
 * One fused kernel: computes every element of `out` from one expression.
 *
 * @example
 * ```ts
 * import type { Kernel } from "./program.ts";
 * function launch(k: Kernel): number {
 *   return k.size;
 * }
 * ```
 */
export interface Kernel {
  /** Position in the program. */
  readonly index: number;
  /** Output buffer name. */
  readonly out: string;
  /** Output shape. */
  readonly shape: readonly number[];
  /** Number of output elements (the launch size). */
  readonly size: number;
  /** The graph nodes fused into this kernel, producer first. */
  readonly ops: readonly string[];
  /** The value of output element `[i0, i1, ...]`. */
  readonly expr: VExpr;
  /** Variable ranges (output index and reduction variables). */
  readonly ranges: Ranges;
  /** Buffers the kernel reads. */
  readonly reads: readonly string[];
  /**
   * Set on a reduction that fusion pulled out of an op's value (a softmax's max or sum, a layer
   * norm's mean or variance): one output per row, which GPUs reduce with a workgroup per row.
   */
  readonly perRow?: boolean;
}

/**
 * The lowered program: buffers, kernels in execution order, and which buffers are results.
 *
 * @example
 * ```ts
 * import type { Program } from "./program.ts";
 * function kernelCount(p: Program): number {
 *   return p.kernels.length;
 * }
 * ```
 */
export interface Program {
  /** Every buffer by name. */
  readonly buffers: ReadonlyMap<string, BufferInfo>;
  /** Kernels in execution order. */
  readonly kernels: readonly Kernel[];
  /** Buffer holding each requested node id, in request order. */
  readonly results: readonly string[];
  /** Intermediate buffers mapped to shared memory slots (see `planBuffers`). */
  readonly slots: ReadonlyMap<string, number>;
}

/**
 * The index variable of output axis `axis` in every kernel: `i0`, `i1`, ...
 *
 * @example
 * ```ts
 * import { outputVar } from "./program.ts";
 * outputVar(2); // "i2"
 * ```
 */
export function outputVar(axis: number): string {
  return `i${axis}`;
}

/**
 * Reductions this short are unrolled by every renderer (straight-line code, not a loop).
 *
 * @example
 * ```ts
 * import { UNROLL } from "./program.ts";
 * UNROLL; // 4
 * ```
 */
export const UNROLL = 4;
