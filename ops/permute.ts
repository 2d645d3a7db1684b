/**
 * `permute(perm)` and its special case `transpose(a, b)`: reorders dims, exactly
 * `torch.permute` followed by `.contiguous()`. `out[i0..] = x[i_perm^-1 ..]`.
 * @module
 */

import type {
  DynamicRank,
  NormAxis,
  ShapeErrorType,
  ShapeStr,
  TDim,
  TShape,
} from "../graph/shape_types.ts";
import { type Dim, normalizeAxis, type Shape, ShapeError } from "../graph/shape.ts";
import { stridesOf } from "../graph/tensor_data.ts";
import type { OpDef } from "./op.ts";

/**
 * The IR attributes of a permute node: `out.shape[i] = x.shape[perm[i]]`.
 *
 * @example
 * ```ts
 * import type { PermuteAttrs } from "./permute.ts";
 * const a: PermuteAttrs = { perm: [0, 2, 1] };
 * ```
 */
export interface PermuteAttrs {
  /** A permutation of `0..rank-1`. */
  readonly perm: readonly number[];
}

/**
 * Output shape of `transpose(a, b)`, or a readable error for a bad axis.
 *
 * @example
 * ```ts
 * import type { TransposeShape } from "./permute.ts";
 * type Y = TransposeShape<["B", 768, 196], 1, 2>; // ["B", 196, 768]
 * ```
 */
export type TransposeShape<S extends TShape, A extends number, B extends number> =
  DynamicRank<S> extends true ? TShape
    : NormAxis<A, S["length"]> extends infer NA extends number
      ? NormAxis<B, S["length"]> extends infer NB extends number ? {
          [I in keyof S]: I extends `${NA}` ? S[NB] : I extends `${NB}` ? S[NA] : S[I];
        }
      : ShapeErrorType<`transpose: axis ${B} is out of range for ${ShapeStr<S>}`>
    : ShapeErrorType<`transpose: axis ${A} is out of range for ${ShapeStr<S>}`>;

/** @ignore */
type IsPermutation<P extends readonly number[], R extends number, Seen extends number = never> =
  P extends readonly [infer H extends number, ...infer T extends readonly number[]]
    ? (NormAxis<H, R> extends infer A extends number
      ? ([A] extends [Seen] ? false : IsPermutation<T, R, Seen | A>)
      : false)
    : true;

/**
 * Output shape of `permute(P)`, or a readable error when `P` is not a permutation.
 *
 * @example
 * ```ts
 * import type { PermuteShape } from "./permute.ts";
 * type Y = PermuteShape<[1, 3, 224, 224], [0, 2, 3, 1]>; // [1, 224, 224, 3]
 * ```
 */
export type PermuteShape<S extends TShape, P extends readonly number[]> = DynamicRank<S> extends
  true ? TShape
  : P["length"] extends S["length"]
    ? (IsPermutation<P, S["length"]> extends true ? { [I in keyof P]: PickDim<S, P[I]> }
      : PermuteError<S, P>)
  : PermuteError<S, P>;

/** @ignore */
type PickDim<S extends TShape, A> = A extends number
  ? (NormAxis<A, S["length"]> extends infer N extends number ? S[N] : TDim)
  : TDim;

/** @ignore */
type PermuteError<S extends TShape, P extends readonly number[]> = ShapeErrorType<
  `permute: [${P extends readonly number[] ? JoinNums<P>
    : ""}] is not a permutation of the axes of ${ShapeStr<
    S
  >}`
>;

/** @ignore */
type JoinNums<P extends readonly number[], Acc extends string = ""> = P extends
  readonly [infer H extends number, ...infer T extends readonly number[]]
  ? JoinNums<T, Acc extends "" ? `${H}` : `${Acc}, ${H}`>
  : Acc;

/**
 * Validates and normalizes a permutation (negative axes allowed), or returns `undefined`.
 *
 * @example
 * ```ts
 * import { normalizePerm } from "./permute.ts";
 * normalizePerm([0, -1, 1], 3); // [0, 2, 1]
 * ```
 */
export function normalizePerm(perm: readonly number[], rank: number): number[] | undefined {
  if (perm.length !== rank) return undefined;
  const out = perm.map((a) => normalizeAxis(a, rank));
  if (out.some((a) => a === undefined)) return undefined;
  return new Set(out).size === rank ? out as number[] : undefined;
}

/**
 * The runtime rule and reference semantics of `permute`.
 *
 * @example
 * ```ts
 * import { permuteOp } from "./permute.ts";
 * permuteOp.inferShape([["B", 768, 196]], { perm: [0, 2, 1] }, "t"); // ["B", 196, 768]
 * ```
 */
export const permuteOp: OpDef<PermuteAttrs> = {
  kind: "permute",
  inferShape(inputs: readonly Shape[], attrs: PermuteAttrs, node: string): Dim[] {
    const [x] = inputs;
    const perm = normalizePerm(attrs.perm, x.length);
    if (!perm) {
      throw new ShapeError(
        "permute",
        node,
        inputs,
        `[${attrs.perm.join(", ")}] is not a permutation of ${x.length} axes`,
      );
    }
    return perm.map((a) => x[a]);
  },
  evaluate(inputs, attrs, outShape): Float32Array {
    const x = inputs[0];
    const perm = normalizePerm(attrs.perm, x.shape.length) as number[];
    const inStrides = stridesOf(x.shape);
    const rank = outShape.length;
    const out = new Float32Array(x.data.length);
    const index = new Array<number>(rank).fill(0);
    for (let flat = 0; flat < out.length; flat++) {
      let src = 0;
      for (let i = 0; i < rank; i++) src += index[i] * inStrides[perm[i]];
      out[flat] = x.data[src];
      // Odometer increment over the output index, last axis fastest.
      for (let i = rank - 1; i >= 0; i--) {
        if (++index[i] < outShape[i]) break;
        index[i] = 0;
      }
    }
    return out;
  },
};
