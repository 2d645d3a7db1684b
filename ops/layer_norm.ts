/**
 * `layer_norm`: `torch.nn.LayerNorm(D)` over the last dim. Per row, with the biased variance,
 * `y = (x - mean) / sqrt(var + eps) * weight + bias`. Inputs: `x [..., D]`, `weight [D]`,
 * `bias [D]`. Output: the shape of `x`.
 * @module
 */

import type {
  DimStr,
  LastDim,
  ParamDimOk,
  ShapeErrorType,
  ShapeStr,
  TShape,
} from "../graph/shape_types.ts";
import { type Dim, formatShape, type Shape, ShapeError } from "../graph/shape.ts";
import type { OpDef } from "./op.ts";

/**
 * Options a user passes to `g.layerNorm`.
 *
 * @example
 * ```ts
 * import type { LayerNormOptions } from "./layer_norm.ts";
 * const o: LayerNormOptions = { name: "blocks.0.norm1", eps: 1e-6 };
 * ```
 */
export interface LayerNormOptions {
  /** Parameter prefix: creates `<name>.weight` (ones) and `<name>.bias` (zeros), both `[D]`. */
  readonly name: string;
  /** Added to the variance; defaults to `1e-5` as in PyTorch. */
  readonly eps?: number;
}

/**
 * The IR attributes of a layer norm node.
 *
 * @example
 * ```ts
 * import type { LayerNormAttrs } from "./layer_norm.ts";
 * const a: LayerNormAttrs = { eps: 1e-5 };
 * ```
 */
export interface LayerNormAttrs {
  /** Added to the variance before the square root. */
  readonly eps: number;
}

/**
 * The compile-time check of `layerNorm`: at least one dim, and a concrete last dim (the
 * parameters are `[D]`).
 *
 * @example
 * ```ts
 * import type { LayerNormCheck } from "./layer_norm.ts";
 * type E = LayerNormCheck<["B", "D"], { name: "ln" }>;
 * // "layerNorm ln: last dim D of [B, D] must be a concrete size"
 * ```
 */
export type LayerNormCheck<
  S extends TShape,
  O extends LayerNormOptions,
  Sym extends string = never,
> = S extends readonly []
  ? ShapeErrorType<`layerNorm ${O["name"]}: input must have at least one dim`>
  : ParamDimOk<LastDim<S>, Sym> extends false ? ShapeErrorType<
      `layerNorm ${O["name"]}: last dim ${DimStr<LastDim<S>>} of ${ShapeStr<
        S
      >} must be a concrete size`
    >
  : O["eps"] extends number ? (`${O["eps"]}` extends `-${string}` ? ShapeErrorType<
        `layerNorm ${O["name"]}: eps must be a finite number >= 0, got ${O["eps"]}`
      >
      : unknown)
  : unknown;

/**
 * The runtime rule and reference semantics of `layer_norm`.
 *
 * @example
 * ```ts
 * import { layerNormOp } from "./layer_norm.ts";
 * layerNormOp.inferShape([["B", 197, 768], [768], [768]], { eps: 1e-6 }, "ln"); // ["B", 197, 768]
 * ```
 */
export const layerNormOp: OpDef<LayerNormAttrs> = {
  kind: "layer_norm",
  inferShape(inputs: readonly Shape[], attrs: LayerNormAttrs, node: string): Dim[] {
    const [x, w, b] = inputs;
    const fail = (why: string): never => {
      throw new ShapeError("layerNorm", node, inputs, why);
    };
    if (inputs.length !== 3) fail(`takes x, weight and bias, got ${inputs.length} inputs`);
    if (x.length < 1) fail("input must have at least one dim");
    // A symbolic last dim is fine here (a block's sub-graph); the builder demands sizes for
    // parameters outside blocks.
    const d = x[x.length - 1];
    for (const [what, p] of [["weight", w], ["bias", b]] as const) {
      if (p.length !== 1 || p[0] !== d) {
        fail(`${what} must be [${d}], got ${formatShape(p)}`);
      }
    }
    if (!Number.isFinite(attrs.eps) || attrs.eps < 0) {
      fail(`eps must be a finite number >= 0, got ${attrs.eps}`);
    }
    return [...x];
  },
  evaluate(inputs, attrs): Float32Array {
    const [x, w, b] = inputs;
    const d = w.shape[0];
    const rows = d === 0 ? 0 : x.data.length / d;
    const out = new Float32Array(x.data.length);
    for (let r = 0; r < rows; r++) {
      const at = r * d;
      let sum = 0;
      for (let i = 0; i < d; i++) sum += x.data[at + i];
      const mean = sum / d;
      let sq = 0;
      for (let i = 0; i < d; i++) sq += (x.data[at + i] - mean) ** 2;
      const inv = 1 / Math.sqrt(sq / d + Math.fround(attrs.eps)); // biased variance, as torch
      for (let i = 0; i < d; i++) {
        out[at + i] = (x.data[at + i] - mean) * inv * w.data[i] + b.data[i];
      }
    }
    return out;
  },
};
