/**
 * `add`: elementwise sum with broadcasting, exactly `torch.add` (how the positional
 * embedding `[1, N+1, D]` is added to `[B, N+1, D]`).
 * @module
 */

import { type Dim, type Shape, ShapeError } from "../graph/shape.ts";
import { broadcastIndex, broadcastShapes } from "./broadcast.ts";
import type { OpDef } from "./op.ts";

export type { BroadcastCheck, BroadcastShape } from "./broadcast.ts";

/**
 * The runtime rule and reference semantics of `add`.
 *
 * @example
 * ```ts
 * import { addOp } from "./add.ts";
 * addOp.inferShape([["B", 197, 768], [1, 197, 768]], {}, "pos"); // ["B", 197, 768]
 * ```
 */
export const addOp: OpDef<Record<string, never>> = {
  kind: "add",
  inferShape(inputs: readonly Shape[], _attrs, node: string): Dim[] {
    const result = broadcastShapes(inputs[0], inputs[1]);
    if (typeof result === "string") throw new ShapeError("add", node, inputs, result);
    return result;
  },
  evaluate(inputs, _attrs, outShape): Float32Array {
    const [a, b] = inputs;
    const ia = broadcastIndex(a.shape, outShape);
    const ib = broadcastIndex(b.shape, outShape);
    const out = new Float32Array(ia.length);
    for (let i = 0; i < out.length; i++) out[i] = a.data[ia[i]] + b.data[ib[i]];
    return out;
  },
};
