/**
 * Emitters of the reductions `mean` and `matmul`.
 * @module
 */

import type { Node } from "../../../graph/ir.ts";
import { normalizeAxis } from "../../../graph/shape.ts";
import { constant, type Lin, v, type VExpr } from "../../ir/expr.ts";
import { broadcastIndexOf, type EmitContext } from "./context.ts";

/**
 * mean along `axis` (kept as size 1 or dropped): `Σ x / n`.
 *
 * @example
 * ```ts
 * import { emitMean } from "./reduce.ts";
 * typeof emitMean; // "function"
 * ```
 */
export function emitMean(node: Node<"mean">, index: readonly Lin[], ctx: EmitContext): VExpr {
  const x = node.inputs[0];
  const shape = ctx.shape(x);
  const axis = normalizeAxis(node.attrs.axis, shape.length) as number;
  const n = shape[axis];
  const k = ctx.fresh("k", n);
  const rest = node.attrs.keepdim ? index.filter((_, a) => a !== axis) : index;
  const source = [...rest.slice(0, axis), k, ...rest.slice(axis)];
  return v.divc(v.sum(k.name, n, ctx.value(x, source)), n);
}

/**
 * matmul (torch semantics): `Σ_k a[..., i, k] · b[..., k, j]` with broadcast batch dims; a 1-D
 * operand is a row (`a`) or a column (`b`) whose dim is dropped from the output.
 *
 * @example
 * ```ts
 * import { emitMatmul } from "./reduce.ts";
 * typeof emitMatmul; // "function"
 * ```
 */
export function emitMatmul(node: Node<"matmul">, index: readonly Lin[], ctx: EmitContext): VExpr {
  const [a, b] = node.inputs;
  const sa = ctx.shape(a);
  const sb = ctx.shape(b);
  // The output index with the dropped dims of 1-D operands put back as 0.
  let full = [...index];
  if (sa.length === 1) {
    full = [
      ...full.slice(0, full.length - (sb.length === 1 ? 0 : 1)),
      constant(0),
      ...full.slice(full.length - (sb.length === 1 ? 0 : 1)),
    ];
  }
  if (sb.length === 1) full = [...full, constant(0)];
  const batch = full.slice(0, -2);
  const [i, j] = full.slice(-2);
  const kDim = sa[sa.length - 1];
  const k = ctx.fresh("k", kDim);
  const aIndex = sa.length === 1 ? [k] : [...broadcastIndexOf(batch, sa.slice(0, -2)), i, k];
  const bIndex = sb.length === 1 ? [k] : [...broadcastIndexOf(batch, sb.slice(0, -2)), k, j];
  return v.sum(k.name, kDim, v.mul(ctx.value(a, aIndex), ctx.value(b, bIndex)));
}
