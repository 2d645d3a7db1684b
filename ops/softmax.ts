/**
 * `softmax`: `torch.softmax(x, axis)`, numerically stable: the max along the axis is subtracted
 * before `exp`, so a row of large values does not overflow.
 * @module
 */

import type { NormAxis, ShapeErrorType, ShapeStr, TShape } from "../graph/shape_types.ts";
import { type Dim, normalizeAxis, type Shape, ShapeError } from "../graph/shape.ts";
import type { OpDef } from "./op.ts";

/**
 * The IR attributes of a softmax node.
 *
 * @example
 * ```ts
 * import type { SoftmaxAttrs } from "./softmax.ts";
 * const a: SoftmaxAttrs = { axis: 3 };
 * ```
 */
export interface SoftmaxAttrs {
  /** The axis the probabilities sum to one along (normalized, non-negative). */
  readonly axis: number;
}

/**
 * The compile-time check of `softmax(x, axis)`: the axis must exist (negative counts from the end).
 *
 * @example
 * ```ts
 * import type { SoftmaxCheck } from "./softmax.ts";
 * type E = SoftmaxCheck<["B", 12, 197, 197], 4>;
 * // "softmax: axis 4 is out of range for [B, 12, 197, 197]"
 * ```
 */
export type SoftmaxCheck<S extends TShape, A extends number> = number extends S["length"] ? unknown
  : number extends A ? unknown
  : A extends number ? (NormAxis<A, S["length"]> extends number ? unknown
      : ShapeErrorType<`softmax: axis ${A} is out of range for ${ShapeStr<S>}`>)
  : unknown;

/**
 * Splits a shape around `axis` into `[outer, extent, inner]` element counts, the loop bounds of
 * every op that works along one axis.
 *
 * @example
 * ```ts
 * import { aroundAxis } from "./softmax.ts";
 * aroundAxis([2, 3, 4], 1); // [2, 3, 4]
 * ```
 */
export function aroundAxis(shape: readonly number[], axis: number): [number, number, number] {
  let outer = 1;
  let inner = 1;
  for (let i = 0; i < axis; i++) outer *= shape[i];
  for (let i = axis + 1; i < shape.length; i++) inner *= shape[i];
  return [outer, shape[axis], inner];
}

/**
 * The runtime rule and reference semantics of `softmax`.
 *
 * @example
 * ```ts
 * import { softmaxOp } from "./softmax.ts";
 * softmaxOp.inferShape([["B", 12, 197, 197]], { axis: 3 }, "attn"); // ["B", 12, 197, 197]
 * ```
 */
export const softmaxOp: OpDef<SoftmaxAttrs> = {
  kind: "softmax",
  inferShape(inputs: readonly Shape[], attrs: SoftmaxAttrs, node: string): Dim[] {
    const [x] = inputs;
    if (normalizeAxis(attrs.axis, x.length) === undefined) {
      throw new ShapeError("softmax", node, inputs, `axis ${attrs.axis} is out of range`);
    }
    return [...x];
  },
  evaluate(inputs, attrs): Float32Array {
    const x = inputs[0];
    const axis = normalizeAxis(attrs.axis, x.shape.length) as number;
    const [outer, n, inner] = aroundAxis(x.shape, axis);
    const out = new Float32Array(x.data.length);
    for (let o = 0; o < outer; o++) {
      for (let j = 0; j < inner; j++) {
        const at = (k: number): number => (o * n + k) * inner + j;
        let max = -Infinity;
        for (let k = 0; k < n; k++) max = Math.max(max, x.data[at(k)]);
        let sum = 0;
        for (let k = 0; k < n; k++) sum += Math.exp(x.data[at(k)] - max);
        for (let k = 0; k < n; k++) out[at(k)] = Math.exp(x.data[at(k)] - max) / sum;
      }
    }
    return out;
  },
};
