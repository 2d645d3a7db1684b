/**
 * `matmul`: `torch.matmul(a, b)`. Both 1-D: a dot product (a 0-d result). `a` 1-D: a row vector
 * `[1, k]`, its dim dropped after. `b` 1-D: a column `[k, 1]`, likewise. Otherwise
 * `[...batchA, n, k] @ [...batchB, k, m] = [...broadcast(batchA, batchB), n, m]`.
 * Either operand may be an activation or a parameter.
 * @module
 */

import type {
  DimsAgree,
  DimStr,
  DynamicRank,
  InitDims,
  LastDim,
  ShapeErrorType,
  ShapeStr,
  TDim,
  TShape,
} from "../graph/shape_types.ts";
import { type Dim, type Shape, ShapeError } from "../graph/shape.ts";
import { broadcastIndex, type BroadcastShape, broadcastShapes } from "./broadcast.ts";
import type { OpDef } from "./op.ts";

/** @ignore */
type InnerError<A extends TShape, B extends TShape, KA, KB> = ShapeErrorType<
  `matmul: inner dims differ: ${DimStr<KA>} in ${ShapeStr<A>} vs ${DimStr<KB>} in ${ShapeStr<B>}`
>;

/** @ignore */
type MatmulNd<A extends TShape, B extends TShape> = InitDims<A> extends
  readonly [...infer BA extends TShape, infer N] ? (
    InitDims<B> extends readonly [...infer BB extends TShape, infer KB]
      ? (DimsAgree<LastDim<A>, KB> extends true
        ? (BroadcastShape<BA, BB> extends infer R extends TShape ? [...R, N, LastDim<B>]
          : ShapeErrorType<
            `matmul: batch dims ${ShapeStr<BA>} of ${ShapeStr<A>} and ${ShapeStr<
              BB
            >} of ${ShapeStr<B>} do not broadcast`
          >)
        : InnerError<A, B, LastDim<A>, KB>)
      : TShape
  )
  : TShape;

/**
 * Output shape of `matmul(A, B)`, or a readable error naming the dims that do not fit.
 *
 * @example
 * ```ts
 * import type { MatmulShape } from "./matmul.ts";
 * type Y = MatmulShape<["B", 12, 197, 64], ["B", 12, 64, 197]>; // ["B", 12, 197, 197]
 * ```
 */
export type MatmulShape<A extends TShape, B extends TShape> = DynamicRank<A> extends true ? TShape
  : DynamicRank<B> extends true ? TShape
  : A extends readonly [] ? ShapeErrorType<`matmul: operands must have at least one dim, got []`>
  : B extends readonly [] ? ShapeErrorType<`matmul: operands must have at least one dim, got []`>
  : A extends readonly [infer KA extends TDim] ? (
      B extends readonly [infer KB extends TDim]
        ? (DimsAgree<KA, KB> extends true ? [] : InnerError<A, B, KA, KB>)
        : MatmulNd<[1, KA], B> extends infer R extends TShape ? DropSecondLast<R>
        : InnerError<A, B, KA, InitDims<B> extends readonly [...TShape, infer K] ? K : number>
    )
  : B extends readonly [infer KB extends TDim]
    ? (MatmulNd<A, [KB, 1]> extends infer R extends TShape ? InitDims<R>
      : InnerError<A, B, LastDim<A>, KB>)
  : MatmulNd<A, B>;

/** @ignore */
type DropSecondLast<R extends TShape> = R extends
  readonly [...infer I extends TShape, unknown, infer L] ? [...I, L]
  : R;

/**
 * `unknown` when `matmul(A, B)` is well-shaped, else its error.
 *
 * @example
 * ```ts
 * import type { MatmulCheck } from "./matmul.ts";
 * type E = MatmulCheck<[2, 5, 8], [7, 6]>;
 * // "matmul: inner dims differ: 8 in [2, 5, 8] vs 7 in [7, 6]"
 * ```
 */
export type MatmulCheck<A extends TShape, B extends TShape> = MatmulShape<A, B> extends infer R
  ? (R extends TShape ? unknown : R)
  : unknown;

/**
 * The runtime rule and reference semantics of `matmul`.
 *
 * @example
 * ```ts
 * import { matmulOp } from "./matmul.ts";
 * matmulOp.inferShape([["B", 197, 64], [64, 197]], {}, "qk"); // ["B", 197, 197]
 * ```
 */
export const matmulOp: OpDef<Record<string, never>> = {
  kind: "matmul",
  inferShape(inputs: readonly Shape[], _attrs, node: string): Dim[] {
    const [a, b] = inputs;
    const fail = (why: string): never => {
      throw new ShapeError("matmul", node, inputs, why);
    };
    if (inputs.length !== 2) fail(`takes 2 operands, got ${inputs.length}`);
    if (a.length === 0 || b.length === 0) fail("operands must have at least one dim");
    const a2 = a.length === 1 ? [1, a[0]] : a;
    const b2 = b.length === 1 ? [b[0], 1] : b;
    const k = a2[a2.length - 1];
    const kb = b2[b2.length - 2];
    if (k !== kb) fail(`inner dims differ: ${k} vs ${kb}`);
    const batch = broadcastShapes(a2.slice(0, -2), b2.slice(0, -2));
    if (typeof batch === "string") fail(`batch dims do not broadcast: ${batch}`);
    const out = [...batch as Dim[]];
    if (a.length > 1) out.push(a2[a2.length - 2]);
    if (b.length > 1) out.push(b2[b2.length - 1]);
    return out;
  },
  evaluate(inputs): Float32Array {
    const [a, b] = inputs;
    const a2 = a.shape.length === 1 ? [1, a.shape[0]] : a.shape;
    const b2 = b.shape.length === 1 ? [b.shape[0], 1] : b.shape;
    const [n, k] = a2.slice(-2);
    const m = b2[b2.length - 1];
    const aBatch = a2.slice(0, -2);
    const bBatch = b2.slice(0, -2);
    const outBatch = broadcastShapes(aBatch, bBatch) as number[];
    // Matrix number (not element offset) of each operand for every output batch index.
    const ia = broadcastIndex(aBatch, outBatch);
    const ib = broadcastIndex(bBatch, outBatch);
    const out = new Float32Array(ia.length * n * m);
    for (let q = 0; q < ia.length; q++) {
      const aAt = ia[q] * n * k;
      const bAt = ib[q] * k * m;
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < m; j++) {
          let acc = 0;
          for (let p = 0; p < k; p++) acc += a.data[aAt + i * k + p] * b.data[bAt + p * m + j];
          out[(q * n + i) * m + j] = acc;
        }
      }
    }
    return out;
  },
};
