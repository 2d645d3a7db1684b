/**
 * `flatten(start, end)`: merges dims `start..end` (inclusive, negative axes allowed) into one,
 * exactly `torch.flatten`. A view: the row-major buffer is unchanged.
 * @module
 */

import type {
  Drop,
  DynamicRank,
  NormAxis,
  ShapeErrorType,
  ShapeStr,
  Take,
  TShape,
} from "../graph/shape_types.ts";
import type { Add, Lt } from "../graph/shape_math.ts";
import { type Dim, normalizeAxis, type Shape, ShapeError } from "../graph/shape.ts";
import type { OpDef } from "./op.ts";
import type { ProductOf } from "../graph/dim_expr_types.ts";
import { productOf } from "../graph/dim_expr.ts";

/**
 * The IR attributes of a flatten node (axes already normalized).
 *
 * @example
 * ```ts
 * import type { FlattenAttrs } from "./flatten.ts";
 * const a: FlattenAttrs = { start: 2, end: 3 };
 * ```
 */
export interface FlattenAttrs {
  /** First merged axis. */
  readonly start: number;
  /** Last merged axis, inclusive. */
  readonly end: number;
}

/** @ignore */
type FlattenResolved<S extends TShape, A extends number, B extends number> = [
  ...Take<S, A>,
  ProductOf<Drop<Take<S, Add<B, 1>>, A>>,
  ...Drop<S, Add<B, 1>>,
];

/**
 * Output shape of `flatten(start, end)`, or a readable error for a bad axis.
 *
 * @example
 * ```ts
 * import type { FlattenShape } from "./flatten.ts";
 * type Y = FlattenShape<["B", 3, 14, 14], 2, 3>; // ["B", 3, 196]
 * ```
 */
export type FlattenShape<S extends TShape, A extends number, B extends number> =
  DynamicRank<S> extends true ? TShape
    : NormAxis<A, S["length"]> extends infer NA extends number
      ? NormAxis<B, S["length"]> extends infer NB extends number
        ? (Lt<NB, NA> extends true ? FlattenError<S, A, B> : FlattenResolved<S, NA, NB>)
      : FlattenError<S, A, B>
    : FlattenError<S, A, B>;

/** @ignore */
type FlattenError<S extends TShape, A extends number, B extends number> = ShapeErrorType<
  `flatten: axes ${A}..${B} are not a valid range for ${ShapeStr<S>}`
>;

/**
 * The runtime rule and reference semantics of `flatten`.
 *
 * @example
 * ```ts
 * import { flattenOp } from "./flatten.ts";
 * flattenOp.inferShape([["B", 3, 14, 14]], { start: 2, end: 3 }, "flat"); // ["B", 3, 196]
 * ```
 */
export const flattenOp: OpDef<FlattenAttrs> = {
  kind: "flatten",
  inferShape(inputs: readonly Shape[], attrs: FlattenAttrs, node: string): Dim[] {
    const [x] = inputs;
    const start = normalizeAxis(attrs.start, x.length);
    const end = normalizeAxis(attrs.end, x.length);
    if (start === undefined || end === undefined || end < start) {
      throw new ShapeError(
        "flatten",
        node,
        inputs,
        `axes ${attrs.start}..${attrs.end} are not a valid range for rank ${x.length}`,
      );
    }
    return [...x.slice(0, start), productOf(x.slice(start, end + 1)), ...x.slice(end + 1)];
  },
  evaluate(inputs): Float32Array {
    return inputs[0].data.slice();
  },
};
