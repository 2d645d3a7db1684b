/**
 * `select`: `torch.select(x, axis, index)`, i.e. `x[:, index]` on one axis: the axis is dropped.
 * Negative axes and indices count from the end.
 * @module
 */

import type {
  DimStr,
  DropAxis,
  DynamicRank,
  NonInteger,
  NormAxis,
  ShapeErrorType,
  ShapeStr,
  TShape,
} from "../graph/shape_types.ts";
import type { IsLiteral } from "../graph/shape_math.ts";
import { type Dim, normalizeAxis, type Shape, ShapeError } from "../graph/shape.ts";
import { aroundAxis } from "./softmax.ts";
import type { OpDef } from "./op.ts";

/**
 * The IR attributes of a select node.
 *
 * @example
 * ```ts
 * import type { SelectAttrs } from "./select.ts";
 * const clsToken: SelectAttrs = { axis: 1, index: 0 };
 * ```
 */
export interface SelectAttrs {
  /** The axis dropped (normalized, non-negative). */
  readonly axis: number;
  /** The position taken along it, as given (negative counts from the end). */
  readonly index: number;
}

/** @ignore */
type SelectIndex<S extends TShape, N extends number, I extends number> = S[N] extends
  infer D extends number
  ? (IsLiteral<D> extends true
    ? (IsLiteral<I> extends true ? (NormAxis<I, D> extends number ? DropAxis<S, N>
        : ShapeErrorType<
          `select: index ${I} is out of range for dim ${DimStr<D>} (axis ${N}) of ${ShapeStr<S>}`
        >)
      : DropAxis<S, N>)
    : DropAxis<S, N>)
  : DropAxis<S, N>;

/**
 * Output shape of `select(x, axis, index)`, or a readable error for a bad axis or index.
 *
 * @example
 * ```ts
 * import type { SelectShape } from "./select.ts";
 * type Y = SelectShape<["B", 197, 768], 1, 0>; // ["B", 768]
 * ```
 */
export type SelectShape<S extends TShape, A extends number, I extends number> =
  DynamicRank<S> extends true ? TShape
    : number extends A ? TShape
    : NormAxis<A, S["length"]> extends infer N extends number
      ? (NonInteger<I> extends true ? ShapeErrorType<`select: index ${I} is not an integer`>
        : SelectIndex<S, N, I>)
    : ShapeErrorType<`select: axis ${A} is out of range for ${ShapeStr<S>}`>;

/**
 * The runtime rule and reference semantics of `select`.
 *
 * @example
 * ```ts
 * import { selectOp } from "./select.ts";
 * selectOp.inferShape([["B", 197, 768]], { axis: 1, index: 0 }, "cls"); // ["B", 768]
 * ```
 */
export const selectOp: OpDef<SelectAttrs> = {
  kind: "select",
  inferShape(inputs: readonly Shape[], attrs: SelectAttrs, node: string): Dim[] {
    const [x] = inputs;
    const fail = (why: string): never => {
      throw new ShapeError("select", node, inputs, why);
    };
    const axis = normalizeAxis(attrs.axis, x.length);
    if (axis === undefined) return fail(`axis ${attrs.axis} is out of range`);
    if (!Number.isInteger(attrs.index)) fail(`index ${attrs.index} is not an integer`);
    const d = x[axis];
    // A symbolic dim is checked once it is bound (specialize runs this rule again).
    if (typeof d === "number" && normalizeAxis(attrs.index, d) === undefined) {
      fail(`index ${attrs.index} is out of range for dim ${d} (axis ${axis})`);
    }
    return x.filter((_, i) => i !== axis);
  },
  evaluate(inputs, attrs): Float32Array {
    const x = inputs[0];
    const axis = normalizeAxis(attrs.axis, x.shape.length) as number;
    const [outer, n, inner] = aroundAxis(x.shape, axis);
    const index = normalizeAxis(attrs.index, n) as number;
    const out = new Float32Array(outer * inner);
    for (let o = 0; o < outer; o++) {
      for (let j = 0; j < inner; j++) out[o * inner + j] = x.data[(o * n + index) * inner + j];
    }
    return out;
  },
};
