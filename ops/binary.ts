/**
 * The shared rule of the elementwise binary ops (`add`, `sub`, `mul`, `div`): `x op y` with
 * PyTorch broadcasting, where `y` is a tensor or a number. A number is stored in the attrs (the
 * node then has one input) and rounded to float32 first, as PyTorch does for a float32 tensor.
 * @module
 */

import type { TShape } from "../graph/shape_types.ts";
import { type Dim, type Shape, ShapeError } from "../graph/shape.ts";
import type { Tensor } from "../graph/builder.ts";
import {
  type BroadcastCheck,
  broadcastIndex,
  type BroadcastShape,
  broadcastShapes,
} from "./broadcast.ts";
import type { OpDef } from "./op.ts";

/**
 * The IR attributes of a binary elementwise node: `scalar` is set when `y` is a number.
 *
 * @example
 * ```ts
 * import type { BinaryAttrs } from "./binary.ts";
 * const half: BinaryAttrs = { scalar: 0.5 };
 * ```
 */
export interface BinaryAttrs {
  /** The right operand when it is a number (the node then has one input). */
  readonly scalar?: number;
}

/**
 * The output shape of `x op y`: the broadcast shape for a tensor `y`, `x`'s shape for a number.
 *
 * @example
 * ```ts
 * import type { Tensor } from "../graph/builder.ts";
 * import type { BinaryShape } from "./binary.ts";
 * type Y = BinaryShape<["B", 197, 768], Tensor<[768]>>; // ["B", 197, 768]
 * type Z = BinaryShape<["B", 197, 768], number>; // ["B", 197, 768]
 * ```
 */
export type BinaryShape<A extends TShape, Y> = Y extends Tensor<infer B extends TShape>
  ? (BroadcastShape<A, B> extends infer R extends TShape ? R : TShape)
  : A;

/**
 * The compile-time check of `x op y`: `unknown` when they broadcast (or `y` is a number), else
 * the broadcast error naming the clashing dims.
 *
 * @example
 * ```ts
 * import type { Tensor } from "../graph/builder.ts";
 * import type { BinaryCheck } from "./binary.ts";
 * type E = BinaryCheck<[2, 3], Tensor<[4, 3]>>;
 * // "broadcast: dims 3 and 4 do not match in [2, 3] and [4, 3]"
 * ```
 */
export type BinaryCheck<A extends TShape, Y, Op extends string = "broadcast"> = Y extends
  Tensor<infer B extends TShape> ? BroadcastCheck<A, B, Op>
  : unknown;

/**
 * Builds the runtime rule and reference semantics of one binary elementwise op.
 *
 * @example
 * ```ts
 * import { binaryOp } from "./binary.ts";
 * const maxOp = binaryOp("max", (a, b) => Math.max(a, b));
 * maxOp.inferShape([[2, 3], [3]], {}, "m"); // [2, 3]
 * ```
 */
export function binaryOp(kind: string, f: (a: number, b: number) => number): OpDef<BinaryAttrs> {
  return {
    kind,
    inferShape(inputs: readonly Shape[], attrs: BinaryAttrs, node: string): Dim[] {
      const fail = (why: string): never => {
        throw new ShapeError(kind, node, inputs, why);
      };
      if (attrs.scalar !== undefined) {
        if (typeof attrs.scalar !== "number") fail(`scalar must be a number`);
        if (inputs.length !== 1) fail(`takes 1 tensor with a number, got ${inputs.length}`);
        return [...inputs[0]];
      }
      if (inputs.length !== 2) fail(`takes 2 tensors, got ${inputs.length}`);
      const result = broadcastShapes(inputs[0], inputs[1]);
      return typeof result === "string" ? fail(result) : result;
    },
    evaluate(inputs, attrs, outShape): Float32Array {
      const a = inputs[0];
      if (attrs.scalar !== undefined) {
        const s = Math.fround(attrs.scalar);
        const out = new Float32Array(a.data.length);
        for (let i = 0; i < out.length; i++) out[i] = f(a.data[i], s);
        return out;
      }
      const b = inputs[1];
      const ia = broadcastIndex(a.shape, outShape);
      const ib = broadcastIndex(b.shape, outShape);
      const out = new Float32Array(ia.length);
      // Each result is computed in float64 and rounded once: the correctly rounded float32 op.
      for (let i = 0; i < out.length; i++) out[i] = f(a.data[ia[i]], b.data[ib[i]]);
      return out;
    },
  };
}
