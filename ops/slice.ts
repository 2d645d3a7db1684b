/**
 * `slice`: `x[..., start:end]` on one axis (step 1), with Python's clamping as in torch: negative
 * bounds count from the end, bounds past the ends clamp, and `start >= end` gives an empty axis.
 * @module
 */

import type {
  DynamicRank,
  IsDynamic,
  NonInteger,
  NormAxis,
  SetAxis,
  ShapeErrorType,
  ShapeStr,
  TShape,
} from "../graph/shape_types.ts";
import type { IsLiteral, Lt, Lte, Sub } from "../graph/shape_math.ts";
import { type Dim, normalizeAxis, type Shape, ShapeError } from "../graph/shape.ts";
import { aroundAxis } from "./softmax.ts";
import type { OpDef } from "./op.ts";

/**
 * The IR attributes of a slice node.
 *
 * @example
 * ```ts
 * import type { SliceAttrs } from "./slice.ts";
 * const patches: SliceAttrs = { axis: 1, start: 1 };
 * ```
 */
export interface SliceAttrs {
  /** The axis sliced (normalized, non-negative). */
  readonly axis: number;
  /** First position, as given. */
  readonly start: number;
  /** One past the last position, as given; absent means the end of the axis. */
  readonly end?: number;
}

/**
 * A Python slice bound resolved against a dim of `D`: negatives count from the end, then the
 * bound clamps to `0..D`.
 *
 * @example
 * ```ts
 * import { clampBound } from "./slice.ts";
 * clampBound(-1, 197); // 196
 * clampBound(500, 197); // 197
 * ```
 */
export function clampBound(bound: number, d: number): number {
  const b = bound < 0 ? bound + d : bound;
  return Math.min(Math.max(b, 0), d);
}

/** @ignore */
type ClampBound<I extends number, D extends number> = `${I}` extends `-${infer P extends number}`
  ? (Lte<P, D> extends true ? Sub<D, P> : 0)
  : Lte<I, D> extends true ? I
  : D;

/** @ignore */
type SliceLength<D extends number, S extends number, E extends number> =
  [IsLiteral<D>, IsLiteral<S>, IsLiteral<E>] extends [true, true, true]
    ? (ClampBound<S, D> extends infer A extends number
      ? (ClampBound<E, D> extends infer B extends number ? (Lt<A, B> extends true ? Sub<B, A> : 0)
        : number)
      : number)
    : number;

/**
 * Output shape of `slice(x, axis, start, end)`, or a readable error for a bad axis or a
 * symbolic one (its length is unknown until the graph is specialized).
 *
 * @example
 * ```ts
 * import type { SliceShape } from "./slice.ts";
 * type Y = SliceShape<["B", 197, 768], 1, 1, 197>; // ["B", 196, 768]
 * ```
 */
export type SliceShape<
  S extends TShape,
  A extends number,
  St extends number,
  E extends number | undefined,
> = DynamicRank<S> extends true ? TShape
  : number extends A ? TShape
  : NormAxis<A, S["length"]> extends infer N extends number ? (
      // The runtime's order: axis, then integer bounds, then a concrete axis.
      true extends NonInteger<St> | (E extends number ? NonInteger<E> : false) ? ShapeErrorType<
          `slice: start ${St} and end ${E extends number ? E : "undefined"} must be integers`
        >
        : S[N] extends infer D extends string ? ShapeErrorType<
            `slice: axis ${N} of ${ShapeStr<S>} has symbolic size ${D}; slice a concrete axis`
          >
        : S[N] extends infer D extends number ? SetAxis<
            S,
            N,
            IsDynamic<D> extends true ? number : SliceLength<D, St, E extends number ? E : D>
          >
        : TShape
    )
  : ShapeErrorType<`slice: axis ${A} is out of range for ${ShapeStr<S>}`>;

/**
 * The runtime rule and reference semantics of `slice`.
 *
 * @example
 * ```ts
 * import { sliceOp } from "./slice.ts";
 * sliceOp.inferShape([["B", 197, 768]], { axis: 1, start: 1 }, "patches"); // ["B", 196, 768]
 * ```
 */
export const sliceOp: OpDef<SliceAttrs> = {
  kind: "slice",
  inferShape(inputs: readonly Shape[], attrs: SliceAttrs, node: string): Dim[] {
    const [x] = inputs;
    const fail = (why: string): never => {
      throw new ShapeError("slice", node, inputs, why);
    };
    const axis = normalizeAxis(attrs.axis, x.length);
    if (axis === undefined) return fail(`axis ${attrs.axis} is out of range`);
    const { start, end } = attrs;
    if (!Number.isInteger(start) || (end !== undefined && !Number.isInteger(end))) {
      fail(`start ${start} and end ${end} must be integers`);
    }
    const d = x[axis];
    if (typeof d !== "number") return fail(`axis ${axis} has symbolic size ${d}`);
    const lo = clampBound(start, d);
    const hi = clampBound(end ?? d, d);
    return x.map((dim, i) => (i === axis ? Math.max(0, hi - lo) : dim));
  },
  evaluate(inputs, attrs, outShape): Float32Array {
    const x = inputs[0];
    const axis = normalizeAxis(attrs.axis, x.shape.length) as number;
    const [outer, n, inner] = aroundAxis(x.shape, axis);
    const lo = clampBound(attrs.start, n);
    const len = outShape[axis];
    const out = new Float32Array(outer * len * inner);
    for (let o = 0; o < outer; o++) {
      for (let k = 0; k < len; k++) {
        for (let j = 0; j < inner; j++) {
          out[(o * len + k) * inner + j] = x.data[(o * n + lo + k) * inner + j];
        }
      }
    }
    return out;
  },
};
