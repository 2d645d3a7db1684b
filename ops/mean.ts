/**
 * `mean`: `torch.mean(x, axis, keepdim)`: the average along one axis, which is dropped unless
 * `keepdim`, then kept as size 1.
 * @module
 */

import type {
  DropAxis,
  DynamicRank,
  NormAxis,
  SetAxis,
  ShapeErrorType,
  ShapeStr,
  TShape,
} from "../graph/shape_types.ts";
import { type Dim, normalizeAxis, type Shape, ShapeError } from "../graph/shape.ts";
import { aroundAxis } from "./softmax.ts";
import type { OpDef } from "./op.ts";

/**
 * Options a user passes to `g.mean`.
 *
 * @example
 * ```ts
 * import type { MeanOptions } from "./mean.ts";
 * const o: MeanOptions = { keepdim: true };
 * ```
 */
export interface MeanOptions {
  /** Keep the reduced axis as size 1; defaults to false. */
  readonly keepdim?: boolean;
}

/**
 * The IR attributes of a mean node.
 *
 * @example
 * ```ts
 * import type { MeanAttrs } from "./mean.ts";
 * const a: MeanAttrs = { axis: 1, keepdim: false };
 * ```
 */
export interface MeanAttrs {
  /** The axis averaged over (normalized, non-negative). */
  readonly axis: number;
  /** Whether the axis stays, as size 1. */
  readonly keepdim: boolean;
}

/**
 * Output shape of `mean(x, axis, { keepdim: K })`, or a readable error for a bad axis.
 *
 * @example
 * ```ts
 * import type { MeanShape } from "./mean.ts";
 * type Y = MeanShape<["B", 196, 768], 1, false>; // ["B", 768]
 * type Z = MeanShape<["B", 196, 768], -1, true>; // ["B", 196, 1]
 * ```
 */
export type MeanShape<S extends TShape, A extends number, K> = DynamicRank<S> extends true ? TShape
  : number extends A ? TShape
  : NormAxis<A, S["length"]> extends infer N extends number
    ? ([K] extends [true] ? SetAxis<S, N, 1> : [K] extends [false | undefined] ? DropAxis<S, N>
    : TShape)
  : ShapeErrorType<`mean: axis ${A} is out of range for ${ShapeStr<S>}`>;

/**
 * The runtime rule and reference semantics of `mean`.
 *
 * @example
 * ```ts
 * import { meanOp } from "./mean.ts";
 * meanOp.inferShape([["B", 196, 768]], { axis: 1, keepdim: false }, "pool"); // ["B", 768]
 * ```
 */
export const meanOp: OpDef<MeanAttrs> = {
  kind: "mean",
  inferShape(inputs: readonly Shape[], attrs: MeanAttrs, node: string): Dim[] {
    const [x] = inputs;
    const axis = normalizeAxis(attrs.axis, x.length);
    if (axis === undefined) {
      throw new ShapeError("mean", node, inputs, `axis ${attrs.axis} is out of range`);
    }
    return attrs.keepdim ? x.map((d, i) => (i === axis ? 1 : d)) : x.filter((_, i) => i !== axis);
  },
  evaluate(inputs, attrs): Float32Array {
    const x = inputs[0];
    const axis = normalizeAxis(attrs.axis, x.shape.length) as number;
    const [outer, n, inner] = aroundAxis(x.shape, axis);
    const out = new Float32Array(outer * inner);
    for (let o = 0; o < outer; o++) {
      for (let j = 0; j < inner; j++) {
        let sum = 0;
        for (let k = 0; k < n; k++) sum += x.data[(o * n + k) * inner + j];
        out[o * inner + j] = sum / n; // an empty axis gives NaN, as torch
      }
    }
    return out;
  },
};
