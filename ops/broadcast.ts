/**
 * NumPy/PyTorch broadcasting, shared by `add` and `expand`: shapes align from the right, and a
 * dim of 1 stretches to match.
 * @module
 */

import type {
  DimsAgree,
  DimStr,
  DynamicRank,
  IsDynamic,
  ShapeErrorType,
  ShapeStr,
  TDim,
  TShape,
} from "../graph/shape_types.ts";
import type { Dim, Shape } from "../graph/shape.ts";

/** @ignore */
type BroadcastDim<X, Y> = X extends 1 ? Y
  : Y extends 1 ? X
  : IsDynamic<X> extends true ? Y
  : DimsAgree<X, Y> extends true ? X
  : false;

/** @ignore */
type Reverse<S extends TShape, Acc extends TDim[] = []> = S extends
  readonly [infer H extends TDim, ...infer R extends TShape] ? Reverse<R, [H, ...Acc]>
  : Acc;

// Walks both shapes from the right, building the result from the left end.
/** @ignore */
type BroadcastRev<
  A extends TShape,
  B extends TShape,
  Full extends [TShape, TShape],
  Acc extends TDim[] = [],
> = A extends readonly [infer X, ...infer AR extends TShape]
  ? (B extends readonly [infer Y, ...infer BR extends TShape]
    ? (BroadcastDim<X, Y> extends infer D extends TDim ? BroadcastRev<AR, BR, Full, [D, ...Acc]>
      : ShapeErrorType<
        `broadcast: dims ${DimStr<X>} and ${DimStr<Y>} do not match in ${ShapeStr<
          Full[0]
        >} and ${ShapeStr<Full[1]>}`
      >)
    : BroadcastRev<AR, [], Full, [X & TDim, ...Acc]>)
  : B extends readonly [infer Y extends TDim, ...infer BR extends TShape]
    ? BroadcastRev<[], BR, Full, [Y, ...Acc]>
  : Acc;

/**
 * The broadcast shape of `A` and `B`, or a readable error naming the clashing dims.
 *
 * @example
 * ```ts
 * import type { BroadcastShape } from "./broadcast.ts";
 * type Y = BroadcastShape<["B", 197, 768], [1, 197, 768]>; // ["B", 197, 768]
 * ```
 */
export type BroadcastShape<A extends TShape, B extends TShape> = DynamicRank<A> extends true
  ? TShape
  : DynamicRank<B> extends true ? TShape
  : BroadcastRev<
    Reverse<A>,
    Reverse<B>,
    [A, B]
  >;

/**
 * `unknown` when `A` and `B` broadcast, else the error.
 *
 * @example
 * ```ts
 * import type { BroadcastCheck } from "./broadcast.ts";
 * type E = BroadcastCheck<[1, 196, 768], [1, 197, 768]>; // error text
 * ```
 */
export type BroadcastCheck<A extends TShape, B extends TShape, Op extends string = "broadcast"> =
  BroadcastShape<A, B> extends infer R ? (
      R extends TShape ? unknown
        : R extends ShapeErrorType<`broadcast: ${infer Rest}`> ? ShapeErrorType<`${Op}: ${Rest}`>
        : R
    )
    : unknown;

/**
 * Runtime broadcast of two shapes; returns the result or a reason string when they clash.
 *
 * @example
 * ```ts
 * import { broadcastShapes } from "./broadcast.ts";
 * broadcastShapes(["B", 197, 768], [1, 197, 768]); // ["B", 197, 768]
 * ```
 */
export function broadcastShapes(a: Shape, b: Shape): Dim[] | string {
  const rank = Math.max(a.length, b.length);
  const out: Dim[] = new Array(rank);
  for (let i = 1; i <= rank; i++) {
    const x = i <= a.length ? a[a.length - i] : 1;
    const y = i <= b.length ? b[b.length - i] : 1;
    if (x === 1) out[rank - i] = y;
    else if (y === 1 || x === y) out[rank - i] = x;
    else return `dims ${x} and ${y} at axis -${i} do not match`;
  }
  return out;
}

/**
 * For each output index, the flat offset into a tensor of shape `src` broadcast to `out`.
 * Precomputed once per call, so the per-element work is a table read.
 *
 * @example
 * ```ts
 * import { broadcastIndex } from "./broadcast.ts";
 * broadcastIndex([1, 3], [2, 3]); // Int32Array [0, 1, 2, 0, 1, 2]
 * ```
 */
export function broadcastIndex(src: readonly number[], out: readonly number[]): Int32Array {
  const rank = out.length;
  const offset = rank - src.length;
  const strides = new Array<number>(rank).fill(0);
  let s = 1;
  for (let i = src.length - 1; i >= 0; i--) {
    strides[i + offset] = src[i] === 1 ? 0 : s;
    s *= src[i];
  }
  let total = 1;
  for (const d of out) total *= d;
  const table = new Int32Array(total);
  const index = new Array<number>(rank).fill(0);
  for (let flat = 0; flat < total; flat++) {
    let at = 0;
    for (let i = 0; i < rank; i++) at += index[i] * strides[i];
    table[flat] = at;
    for (let i = rank - 1; i >= 0; i--) {
      if (++index[i] < out[i]) break;
      index[i] = 0;
    }
  }
  return table;
}
