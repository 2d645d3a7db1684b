/**
 * Emitters of the view ops: flatten, reshape, permute, expand, select and slice only remap the
 * index, so the consumer reads the producer's buffer directly and no copy kernel exists.
 * @module
 */

import type { AttrsOf, Node } from "../../../graph/ir.ts";
import { normalizeAxis } from "../../../graph/shape.ts";
import { clampBound } from "../../../ops/slice.ts";
import { constant, lin, type VExpr } from "../../ir/expr.ts";
import { broadcastIndexOf, type EmitContext, flatIndex, unflatten } from "./context.ts";
import type { Lin } from "../../ir/expr.ts";

/**
 * flatten and reshape: the row-major buffer is unchanged, so go through the flat index.
 *
 * @example
 * ```ts
 * import { emitReshape } from "./views.ts";
 * typeof emitReshape; // "function"
 * ```
 */
export function emitReshape(
  node: Node<"reshape" | "flatten">,
  index: readonly Lin[],
  ctx: EmitContext,
): VExpr {
  const input = node.inputs[0];
  const flat = flatIndex(index, node.shape as number[]);
  return ctx.value(input, unflatten(flat, ctx.shape(input), ctx.ranges));
}

/**
 * permute: output axis `i` is input axis `perm[i]`.
 *
 * @example
 * ```ts
 * import { emitPermute } from "./views.ts";
 * typeof emitPermute; // "function"
 * ```
 */
export function emitPermute(
  node: Node<"permute">,
  index: readonly Lin[],
  ctx: EmitContext,
): VExpr {
  const perm = (node.attrs as AttrsOf["permute"]).perm;
  const rank = perm.length;
  const source: Lin[] = new Array(rank);
  perm.forEach((axis, i) => (source[axis < 0 ? axis + rank : axis] = index[i]));
  return ctx.value(node.inputs[0], source);
}

/**
 * expand: broadcast dims read index 0.
 *
 * @example
 * ```ts
 * import { emitExpand } from "./views.ts";
 * typeof emitExpand; // "function"
 * ```
 */
export function emitExpand(node: Node<"expand">, index: readonly Lin[], ctx: EmitContext): VExpr {
  const input = node.inputs[0];
  return ctx.value(input, broadcastIndexOf(index, ctx.shape(input)));
}

/**
 * select (torch.select): the dropped axis reads the fixed index.
 *
 * @example
 * ```ts
 * import { emitSelect } from "./views.ts";
 * typeof emitSelect; // "function"
 * ```
 */
export function emitSelect(node: Node<"select">, index: readonly Lin[], ctx: EmitContext): VExpr {
  const input = node.inputs[0];
  const shape = ctx.shape(input);
  const axis = normalizeAxis(node.attrs.axis, shape.length) as number;
  const at = normalizeAxis(node.attrs.index, shape[axis]) as number;
  return ctx.value(input, [...index.slice(0, axis), constant(at), ...index.slice(axis)]);
}

/**
 * slice: the axis reads from `start` on.
 *
 * @example
 * ```ts
 * import { emitSlice } from "./views.ts";
 * typeof emitSlice; // "function"
 * ```
 */
export function emitSlice(node: Node<"slice">, index: readonly Lin[], ctx: EmitContext): VExpr {
  const input = node.inputs[0];
  const shape = ctx.shape(input);
  const axis = normalizeAxis(node.attrs.axis, shape.length) as number;
  const start = clampBound(node.attrs.start, shape[axis]);
  return ctx.value(input, index.map((x, a) => (a === axis ? lin.offset(x, start) : x)));
}
