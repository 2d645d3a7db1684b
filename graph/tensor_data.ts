/**
 * Host-side tensor values: a row-major float32 buffer and its concrete shape.
 * @module
 */

/**
 * A concrete tensor in host memory: `data` is row-major (C order) float32.
 *
 * @example
 * ```ts
 * import type { TensorData } from "./tensor_data.ts";
 * const t: TensorData = { shape: [2, 3], data: new Float32Array(6) };
 * ```
 */
export interface TensorData {
  /** Concrete dims, outermost first. */
  readonly shape: readonly number[];
  /** Row-major values; its length is the product of `shape`. */
  readonly data: Float32Array;
}

/**
 * Number of elements of a concrete shape.
 *
 * @example
 * ```ts
 * import { numel } from "./tensor_data.ts";
 * numel([1, 3, 224, 224]); // 150528
 * ```
 */
export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/**
 * Row-major strides of a concrete shape, in elements.
 *
 * @example
 * ```ts
 * import { stridesOf } from "./tensor_data.ts";
 * stridesOf([2, 3, 4]); // [12, 4, 1]
 * ```
 */
export function stridesOf(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = s;
    s *= shape[i];
  }
  return strides;
}

/**
 * A zeroed float32 array for tensor data that Tessera allocates (weights drawn or loaded): in a
 * `SharedArrayBuffer` where the runtime has one, so that the CPU backends' worker threads read
 * it in place instead of copying it (a ViT-B's weights are 344 MB), else in an `ArrayBuffer`.
 *
 * @example
 * ```ts
 * import { hostFloats } from "./tensor_data.ts";
 * hostFloats(4).length; // 4
 * ```
 */
export function hostFloats(n: number): Float32Array {
  const Shared = (globalThis as { SharedArrayBuffer?: SharedArrayBufferConstructor })
    .SharedArrayBuffer;
  return new Float32Array(Shared ? new Shared(4 * n) : new ArrayBuffer(4 * n));
}
