/**
 * Emitters of the view ops: flatten, reshape, permute and expand only remap the index, so the
 * consumer reads the producer's buffer directly and no copy kernel exists.
 * @module
 */

import type { AttrsOf, Node } from "../../../graph/ir.ts";
import type { VExpr } from "../../ir/expr.ts";
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
