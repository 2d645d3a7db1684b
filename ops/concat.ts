/**
 * `concat`: joins tensors along one axis, exactly `torch.cat`. All other dims must agree.
 * The class-token prepend is `concat([expand(cls), x], 1)`.
 * @module
 */

import type {
  DimsAgree,
  DimStr,
  DynamicRank,
  NormAxis,
  ShapeErrorType,
  ShapeStr,
  TDim,
  TShape,
} from "../graph/shape_types.ts";
import { type Dim, normalizeAxis, type Shape, ShapeError } from "../graph/shape.ts";
import { numel } from "../graph/tensor_data.ts";
import type { OpDef } from "./op.ts";
import type { AddDims } from "../graph/dim_expr_types.ts";
import { addDims } from "../graph/dim_expr.ts";

/**
 * The IR attributes of a concat node.
 *
 * @example
 * ```ts
 * import type { ConcatAttrs } from "./concat.ts";
 * const a: ConcatAttrs = { axis: 1 };
 * ```
 */
export interface ConcatAttrs {
  /** The axis to join along (normalized, non-negative). */
  readonly axis: number;
}

/**

 * Symbolic sizes add as the runtime writes them (`"N+1"`, `"N+M"`).

 * @ignore

 */
type SumDims<X, Y> = AddDims<X & TDim, Y & TDim>;

/**
 * Output shape of `concat([A, B], axis)`.
 *
 * @example
 * ```ts
 * import type { ConcatShape } from "./concat.ts";
 * type Y = ConcatShape<["B", 1, 768], ["B", 196, 768], 1>; // ["B", 197, 768]
 * ```
 */
export type ConcatShape<A extends TShape, B extends TShape, Axis extends number> =
  DynamicRank<A> extends true ? TShape
    : NormAxis<Axis, A["length"]> extends infer N extends number
      ? { [I in keyof A]: I extends `${N}` ? SumDims<A[I], B[I & keyof B]> : A[I] }
    : TShape;

/** @ignore */
type FirstMismatch<A extends TShape, B extends TShape, N extends number, I extends unknown[] = []> =
  I["length"] extends A["length"] ? false
    : I["length"] extends N ? FirstMismatch<A, B, N, [...I, unknown]>
    : DimsAgree<A[I["length"]], B[I["length"]]> extends true
      ? FirstMismatch<A, B, N, [...I, unknown]>
    : I["length"];

/**
 * The compile-time check of `concat([A, B], axis)`: same rank, and every dim but `axis` agrees.
 *
 * @example
 * ```ts
 * import type { ConcatCheck } from "./concat.ts";
 * type E = ConcatCheck<[1, 1, 512], [1, 196, 768], 1>;
 * // "concat: dim 2 differs: 512 in [1, 1, 512] vs 768 in [1, 196, 768]"
 * ```
 */
export type ConcatCheck<A extends TShape, B extends TShape, Axis extends number> =
  DynamicRank<A> extends true ? unknown
    : DynamicRank<B> extends true ? unknown
    : A["length"] extends B["length"]
      ? (NormAxis<Axis, A["length"]> extends infer N extends number
        ? (FirstMismatch<A, B, N> extends infer I extends number ? ShapeErrorType<
            `concat: dim ${I} differs: ${DimStr<A[I]>} in ${ShapeStr<A>} vs ${DimStr<
              B[I]
            >} in ${ShapeStr<B>}`
          >
          : unknown)
        : ShapeErrorType<`concat: axis ${Axis} is out of range for ${ShapeStr<A>}`>)
    : ShapeErrorType<`concat: ranks differ: ${ShapeStr<A>} vs ${ShapeStr<B>}`>;

/**
 * The part of {@linkcode ConcatCheck} that is the axis argument's fault: out of range.
 *
 * @example
 * ```ts
 * import type { ConcatAxisCheck } from "./concat.ts";
 * type E = ConcatAxisCheck<[1, 196, 768], 3>; // "concat: axis 3 is out of range for [1, 196, 768]"
 * ```
 */
export type ConcatAxisCheck<A extends TShape, Axis extends number> = DynamicRank<A> extends true
  ? unknown
  : NormAxis<Axis, A["length"]> extends number ? unknown
  : ShapeErrorType<`concat: axis ${Axis} is out of range for ${ShapeStr<A>}`>;

/**
 * The part of {@linkcode ConcatCheck} that is the second tensor's fault (its rank or a dim off
 * the axis), so the error sits on that argument; `unknown` when the axis itself is at fault.
 *
 * @example
 * ```ts
 * import type { ConcatOperandCheck } from "./concat.ts";
 * type E = ConcatOperandCheck<[1, 1, 512], [1, 196, 768], 1>;
 * // "concat: dim 2 differs: 512 in [1, 1, 512] vs 768 in [1, 196, 768]"
 * ```
 */
export type ConcatOperandCheck<A extends TShape, B extends TShape, Axis extends number> =
  unknown extends ConcatAxisCheck<A, Axis> ? ConcatCheck<A, B, Axis> : unknown;

/**
 * The runtime rule and reference semantics of `concat`.
 *
 * @example
 * ```ts
 * import { concatOp } from "./concat.ts";
 * concatOp.inferShape([["B", 1, 768], ["B", 196, 768]], { axis: 1 }, "cat"); // ["B", 197, 768]
 * ```
 */
export const concatOp: OpDef<ConcatAttrs> = {
  kind: "concat",
  inferShape(inputs: readonly Shape[], attrs: ConcatAttrs, node: string): Dim[] {
    const fail = (why: string): never => {
      throw new ShapeError("concat", node, inputs, why);
    };
    if (inputs.length === 0) fail("needs at least one input");
    const first = inputs[0];
    const axis = normalizeAxis(attrs.axis, first.length);
    if (axis === undefined) fail(`axis ${attrs.axis} is out of range for rank ${first.length}`);
    const a = axis as number;
    for (const other of inputs) {
      if (other.length !== first.length) fail("ranks differ");
      for (let i = 0; i < first.length; i++) {
        if (i !== a && other[i] !== first[i]) {
          fail(`dim ${i} differs: ${first[i]} vs ${other[i]}`);
        }
      }
    }
    const joined: Dim[] = inputs.map((s) => s[a]);
    const total = joined.reduce((s: Dim, d) => addDims(s, d), 0);
    return first.map((d, i) => (i === a ? total : d));
  },
  evaluate(inputs, attrs, outShape): Float32Array {
    const axis = attrs.axis;
    // Each input contributes a contiguous run of `inner` elements per outer index.
    const outer = numel(outShape.slice(0, axis));
    const innerOf = (s: readonly number[]): number => numel(s.slice(axis));
    const out = new Float32Array(numel(outShape));
    let dst = 0;
    for (let o = 0; o < outer; o++) {
      for (const t of inputs) {
        const inner = innerOf(t.shape);
        out.set(t.data.subarray(o * inner, (o + 1) * inner), dst);
        dst += inner;
      }
    }
    return out;
  },
};
