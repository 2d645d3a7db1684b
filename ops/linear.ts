/**
 * `linear`: `y = x Wᵀ + b` over the last dim, exactly `torch.nn.Linear`.
 * Inputs: `x [..., in]`, `weight [out, in]`, optional `bias [out]`. Output: `[..., out]`.
 * @module
 */

import type {
  DimsAgree,
  DimStr,
  DynamicRank,
  InitDims,
  LastDim,
  ParamDimOk,
  ShapeErrorType,
  ShapeStr,
  TDim,
  TShape,
} from "../graph/shape_types.ts";
import { type Dim, formatShape, type Shape, ShapeError } from "../graph/shape.ts";
import type { OpDef } from "./op.ts";

/**
 * Options a user passes to `g.linear`.
 *
 * @example
 * ```ts
 * import type { LinearOptions } from "./linear.ts";
 * const o: LinearOptions = { in: 3, out: 768, name: "token_embedding.embedding" };
 * ```
 */
export interface LinearOptions {
  /** In-features: must equal the input's last dim. A size, or inside a block a product of its dims. */
  readonly in: TDim;
  /** Out-features: a size, or inside a block a product of its dims (`"H*Dh*3"`). */
  readonly out: TDim;
  /** Parameter prefix: creates `<name>.weight` and `<name>.bias`. */
  readonly name: string;
  /** Whether to add a bias; defaults to true. */
  readonly bias?: boolean;
}

/**
 * Output shape of `linear` on input `S`.
 *
 * @example
 * ```ts
 * import type { LinearShape } from "./linear.ts";
 * type Y = LinearShape<["B", 196, 3], { in: 3; out: 768; name: "e" }>; // ["B", 196, 768]
 * ```
 */
export type LinearShape<S extends TShape, O extends LinearOptions> = DynamicRank<S> extends true
  // Rank unknown statically: only the last dim is known.
  ? [...TDim[], O["out"]]
  : [...InitDims<S>, O["out"]];

/**
 * The compile-time check of `linear`: the input's last dim must equal `in`.
 *
 * @example
 * ```ts
 * import type { LinearCheck } from "./linear.ts";
 * type E = LinearCheck<[1, 196, 1], { in: 3; out: 12; name: "e" }>;
 * // "linear e: input [1, 196, 1] has last dim 1 but in_features is 3"
 * ```
 */
export type LinearCheck<S extends TShape, O extends LinearOptions, Sym extends string = never> =
  S extends readonly [] ? ShapeErrorType<`linear ${O["name"]}: input must have at least one dim`>
    : ParamDimOk<O["in"], Sym> extends false ? LinearSizeError<O, "in">
    : ParamDimOk<O["out"], Sym> extends false ? LinearSizeError<O, "out">
    : DimsAgree<LastDim<S>, O["in"]> extends true ? unknown
    : ShapeErrorType<
      `linear ${O["name"]}: input ${ShapeStr<S>} has last dim ${DimStr<
        LastDim<S>
      >} but in_features is ${DimStr<O["in"]>}`
    >;

/** @ignore */
type LinearSizeError<O extends LinearOptions, K extends "in" | "out"> = ShapeErrorType<
  `linear ${O["name"]}: ${K} ${DimStr<
    O[K]
  >} must be a concrete size (or a dim of the block it is in)`
>;

/**
 * The runtime rule and reference semantics of `linear`.
 *
 * @example
 * ```ts
 * import { linearOp } from "./linear.ts";
 * linearOp.inferShape([["B", 196, 3], [768, 3], [768]], {}, "emb"); // ["B", 196, 768]
 * ```
 */
export const linearOp: OpDef<Record<string, never>> = {
  kind: "linear",
  inferShape(inputs: readonly Shape[], _attrs, node: string): Dim[] {
    const [x, w, b] = inputs;
    const fail = (why: string): never => {
      throw new ShapeError("linear", node, inputs, why);
    };
    if (x.length < 1) fail("input must have at least one dim");
    if (w.length !== 2) fail(`weight must be 2-D [out, in], got ${formatShape(w)}`);
    const last = x[x.length - 1];
    if (last !== w[1]) {
      fail(`input has last dim ${last} but in_features is ${w[1]}`);
    }
    if (b && (b.length !== 1 || b[0] !== w[0])) {
      fail(`bias must be [${w[0]}], got ${formatShape(b)}`);
    }
    return [...x.slice(0, -1), w[0]];
  },
  evaluate(inputs): Float32Array {
    const [x, w, b] = inputs;
    const [outF, inF] = w.shape;
    const rows = x.data.length / inF;
    const out = new Float32Array(rows * outF);
    for (let r = 0; r < rows; r++) {
      for (let o = 0; o < outF; o++) {
        let acc = b ? b.data[o] : 0;
        for (let i = 0; i < inF; i++) acc += x.data[r * inF + i] * w.data[o * inF + i];
        out[r * outF + o] = acc;
      }
    }
    return out;
  },
};
