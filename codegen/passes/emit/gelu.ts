/**
 * Emitter of `gelu`: exact `x/2 · (1 + erf(x/√2))`, or torch's tanh approximation.
 * @module
 */

import type { Node } from "../../../graph/ir.ts";
import { type Lin, v, type VExpr } from "../../ir/expr.ts";
import type { EmitContext } from "./context.ts";

/**
 * gelu at one index, in the reference's operation order.
 *
 * @example
 * ```ts
 * import { emitGelu } from "./gelu.ts";
 * typeof emitGelu; // "function"
 * ```
 */
export function emitGelu(node: Node<"gelu">, index: readonly Lin[], ctx: EmitContext): VExpr {
  const x = ctx.value(node.inputs[0], index);
  const half = v.mul(v.const(0.5), x);
  if (node.attrs.approximate === "tanh") {
    const cube = v.mul(v.mul(v.mul(v.const(0.044715), x), x), x);
    const inner = v.mul(v.const(Math.sqrt(2 / Math.PI)), v.add(x, cube));
    return v.mul(half, v.add(v.const(1), v.unary("tanh", inner)));
  }
  return v.mul(half, v.add(v.const(1), v.unary("erf", v.mul(x, v.const(Math.SQRT1_2)))));
}
