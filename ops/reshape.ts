/**
 * `reshape`: a row-major reinterpretation with the same element count, exactly
 * `torch.reshape` on a contiguous tensor. The buffer is copied as is; only the shape changes.
 * This is what the seed's `PatchTokenizer` does (not a transpose).
 * @module
 */

import type {
  CountStr,
  SameCount,
  ShapeErrorType,
  ShapeStr,
  TShape,
} from "../graph/shape_types.ts";
import {
  type Dim,
  dimEquals,
  dimProduct,
  formatShape,
  isValidSize,
  type Shape,
  ShapeError,
} from "../graph/shape.ts";
import type { OpDef } from "./op.ts";

/**
 * The IR attributes of a reshape node.
 *
 * @example
 * ```ts
 * import type { ReshapeAttrs } from "./reshape.ts";
 * const a: ReshapeAttrs = { shape: ["B", 196, 3] };
 * ```
 */
export interface ReshapeAttrs {
  /** The target shape; symbolic dims are bound when the graph runs. */
  readonly shape: Shape;
}

/**
 * The compile-time check of `reshape(S -> T)`: `unknown` when element counts agree.
 *
 * @example
 * ```ts
 * import type { ReshapeCheck } from "./reshape.ts";
 * type E = ReshapeCheck<["B", 3, 196], ["B", 196, 4]>;
 * // "reshape: [B, 3, 196] has B*588 elements but [B, 196, 4] has B*784"
 * ```
 */
export type ReshapeCheck<S extends TShape, T extends TShape> = SameCount<S, T> extends true
  ? unknown
  : ShapeErrorType<
    `reshape: ${ShapeStr<S>} has ${CountStr<S>} elements but ${ShapeStr<T>} has ${CountStr<T>}`
  >;

/**
 * The runtime rule and reference semantics of `reshape`.
 *
 * @example
 * ```ts
 * import { reshapeOp } from "./reshape.ts";
 * reshapeOp.inferShape([["B", 3, 196]], { shape: ["B", 196, 3] }, "tokens"); // ["B", 196, 3]
 * ```
 */
export const reshapeOp: OpDef<ReshapeAttrs> = {
  kind: "reshape",
  inferShape(inputs: readonly Shape[], attrs: ReshapeAttrs, node: string): Dim[] {
    const [x] = inputs;
    for (const d of attrs.shape) {
      if (typeof d === "number" && !isValidSize(d)) {
        throw new ShapeError("reshape", node, inputs, `target dim ${d} is not a size`);
      }
    }
    const from = dimProduct(x);
    const to = dimProduct(attrs.shape);
    if (!dimEquals(from, to)) {
      throw new ShapeError(
        "reshape",
        node,
        inputs,
        `${formatShape(x)} has ${from} elements but ${formatShape(attrs.shape)} has ${to}`,
      );
    }
    return [...attrs.shape];
  },
  evaluate(inputs): Float32Array {
    return inputs[0].data.slice();
  },
};
