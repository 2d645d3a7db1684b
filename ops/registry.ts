/**
 * Every computing op, by IR kind. Leaves (`input`, `param`) have no rule: their values are given.
 * @module
 */

import { addOp } from "./add.ts";
import { concatOp } from "./concat.ts";
import { conv2dOp } from "./conv2d.ts";
import { expandOp } from "./expand.ts";
import { flattenOp } from "./flatten.ts";
import { linearOp } from "./linear.ts";
import type { OpDef } from "./op.ts";
import { permuteOp } from "./permute.ts";
import { reshapeOp } from "./reshape.ts";
import { resizeOp } from "./resize.ts";
import { toTensorOp } from "./to_tensor.ts";
import { layerNormOp } from "./layer_norm.ts";
import { softmaxOp } from "./softmax.ts";
import { geluOp } from "./gelu.ts";
import { matmulOp } from "./matmul.ts";
import { mulOp } from "./mul.ts";
import { subOp } from "./sub.ts";
import { divOp } from "./div.ts";
import { selectOp } from "./select.ts";
import { sliceOp } from "./slice.ts";
import { meanOp } from "./mean.ts";

/**
 * The runtime rule and reference semantics of every computing op.
 *
 * @example
 * ```ts
 * import { OPS } from "./registry.ts";
 * OPS.flatten.inferShape([[1, 3, 14, 14]], { start: 2, end: 3 }, "f"); // [1, 3, 196]
 * ```
 */
export const OPS = {
  conv2d: conv2dOp,
  flatten: flattenOp,
  reshape: reshapeOp,
  permute: permuteOp,
  linear: linearOp,
  concat: concatOp,
  expand: expandOp,
  add: addOp,
  to_tensor: toTensorOp,
  resize: resizeOp,
  layer_norm: layerNormOp,
  softmax: softmaxOp,
  gelu: geluOp,
  matmul: matmulOp,
  mul: mulOp,
  sub: subOp,
  div: divOp,
  select: selectOp,
  slice: sliceOp,
  mean: meanOp,
} as const;

/**
 * The kinds of computing op.
 *
 * @example
 * ```ts
 * import type { ComputeKind } from "./registry.ts";
 * const k: ComputeKind = "conv2d";
 * ```
 */
export type ComputeKind = keyof typeof OPS;

/**
 * The attribute type of a computing op, read off its definition.
 *
 * @example
 * ```ts
 * import type { AttrsOfOp } from "./registry.ts";
 * const a: AttrsOfOp<"flatten"> = { start: 2, end: 3 };
 * ```
 */
export type AttrsOfOp<K extends ComputeKind> = (typeof OPS)[K] extends OpDef<infer A> ? A
  : unknown;
