/**
 * `to_tensor`: torchvision `ToTensor()` on a batch of 8-bit images, exactly
 * `img.permute(0, 3, 1, 2).float().div(255)`. Input `[B, H, W, C]` holds the decoder's raw
 * 0..255 values (HWC bytes, stored as float32); output `[B, C, H, W]` holds `x / 255`.
 * @module
 */

import type { DynamicRank, ShapeErrorType, ShapeStr, TShape } from "../graph/shape_types.ts";
import type { Dim, Shape } from "../graph/shape.ts";
import { ShapeError } from "../graph/shape.ts";
import type { OpDef } from "./op.ts";

/**
 * The IR attributes of a to_tensor node: none.
 *
 * @example
 * ```ts
 * import type { ToTensorAttrs } from "./to_tensor.ts";
 * const a: ToTensorAttrs = {};
 * ```
 */
export type ToTensorAttrs = Record<string, never>;

/**
 * Output shape of `to_tensor`: `[B, H, W, C] -> [B, C, H, W]`, or a readable error when the
 * input is not 4-D.
 *
 * @example
 * ```ts
 * import type { ToTensorShape } from "./to_tensor.ts";
 * type Y = ToTensorShape<["B", 200, 300, 3]>; // ["B", 3, 200, 300]
 * ```
 */
export type ToTensorShape<S extends TShape> = DynamicRank<S> extends true ? TShape
  : S extends readonly [infer B, infer H, infer W, infer C] ? [B, C, H, W]
  : ShapeErrorType<`to_tensor: input ${ShapeStr<S>} must be 4-D [B, H, W, C] (HWC images)`>;

/**
 * The runtime rule and reference semantics of `to_tensor`.
 *
 * @example
 * ```ts
 * import { toTensorOp } from "./to_tensor.ts";
 * toTensorOp.inferShape([["B", 200, 300, 3]], {}, "to_tensor_1"); // ["B", 3, 200, 300]
 * const y = toTensorOp.evaluate(
 *   [{ shape: [1, 1, 2, 1], data: new Float32Array([0, 255]) }],
 *   {},
 *   [1, 1, 1, 2],
 * ); // Float32Array [0, 1]
 * ```
 */
export const toTensorOp: OpDef<ToTensorAttrs> = {
  kind: "to_tensor",
  inferShape(inputs: readonly Shape[], _attrs: ToTensorAttrs, node: string): Dim[] {
    const [x] = inputs;
    if (inputs.length !== 1) {
      throw new ShapeError("to_tensor", node, inputs, `takes 1 input, got ${inputs.length}`);
    }
    if (x.length !== 4) {
      throw new ShapeError(
        "to_tensor",
        node,
        inputs,
        `input must be 4-D [B, H, W, C] (HWC images), got rank ${x.length}`,
      );
    }
    const [b, h, w, c] = x;
    return [b, c, h, w];
  },
  evaluate(inputs, _attrs, outShape): Float32Array {
    const x = inputs[0];
    const [n, c, h, w] = outShape;
    const out = new Float32Array(n * c * h * w);
    for (let bi = 0; bi < n; bi++) {
      for (let y = 0; y < h; y++) {
        for (let xi = 0; xi < w; xi++) {
          const src = ((bi * h + y) * w + xi) * c;
          for (let ch = 0; ch < c; ch++) {
            // float32 `div(255)`: the double quotient rounded once is the correctly rounded
            // float32 quotient, which is what PyTorch computes.
            out[((bi * c + ch) * h + y) * w + xi] = Math.fround(x.data[src + ch] / 255);
          }
        }
      }
    }
    return out;
  },
};
