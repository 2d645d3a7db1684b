/**
 * `expand`: broadcasts a tensor to a larger shape, like `torch.Tensor.expand` followed by
 * `.contiguous()`. Only dims of size 1 may grow; new leading dims may be added, but the target
 * rank may not be below the input's.
 * @module
 */

import { type Dim, formatShape, isValidSize, type Shape, ShapeError } from "../graph/shape.ts";
import { broadcastIndex } from "./broadcast.ts";
import type { OpDef } from "./op.ts";

/**
 * The IR attributes of an expand node.
 *
 * @example
 * ```ts
 * import type { ExpandAttrs } from "./expand.ts";
 * const a: ExpandAttrs = { shape: ["B", 1, 768] };
 * ```
 */
export interface ExpandAttrs {
  /** The target shape. */
  readonly shape: Shape;
}

/**
 * The runtime rule and reference semantics of `expand`.
 *
 * @example
 * ```ts
 * import { expandOp } from "./expand.ts";
 * expandOp.inferShape([[1, 1, 768]], { shape: ["B", 1, 768] }, "cls"); // ["B", 1, 768]
 * ```
 */
export const expandOp: OpDef<ExpandAttrs> = {
  kind: "expand",
  inferShape(inputs: readonly Shape[], attrs: ExpandAttrs, node: string): Dim[] {
    const [x] = inputs;
    const target = attrs.shape;
    const bad = target.find((d) => typeof d === "string" ? d.length === 0 : !isValidSize(d));
    if (bad !== undefined) {
      throw new ShapeError("expand", node, inputs, `target dim ${String(bad)} is not a size`);
    }
    const offset = target.length - x.length;
    if (offset < 0) {
      throw new ShapeError(
        "expand",
        node,
        inputs,
        `cannot expand to ${formatShape(target)}: target rank ${target.length} is below ` +
          `the input's rank ${x.length}`,
      );
    }
    const ok = x.every((d, i) => d === 1 || d === target[i + offset]);
    if (!ok) {
      throw new ShapeError(
        "expand",
        node,
        inputs,
        `cannot expand to ${formatShape(target)}: only dims of size 1 may grow`,
      );
    }
    return [...target];
  },
  evaluate(inputs, _attrs, outShape): Float32Array {
    const x = inputs[0];
    const index = broadcastIndex(x.shape, outShape);
    const out = new Float32Array(index.length);
    for (let i = 0; i < out.length; i++) out[i] = x.data[index[i]];
    return out;
  },
};
