/**
 * Emitter of `linear`: `bias[o] + Σ_k x[..., k] · W[o, k]`.
 * @module
 */

import type { Node } from "../../../graph/ir.ts";
import { type Lin, v, type VExpr } from "../../ir/expr.ts";
import type { EmitContext } from "./context.ts";

/**
 * linear as a reduction over in-features.
 *
 * @example
 * ```ts
 * import { emitLinear } from "./linear.ts";
 * typeof emitLinear; // "function"
 * ```
 */
export function emitLinear(node: Node<"linear">, index: readonly Lin[], ctx: EmitContext): VExpr {
  const [x, weight, bias] = node.inputs;
  const inFeatures = ctx.shape(weight)[1];
  const o = index[index.length - 1];
  const k = ctx.fresh("k", inFeatures);
  const product = v.mul(
    ctx.value(x, [...index.slice(0, -1), k]),
    ctx.value(weight, [o, k]),
  );
  const sum = v.sum(k.name, inFeatures, product);
  return bias === undefined ? sum : v.add(ctx.value(bias, [o]), sum);
}
