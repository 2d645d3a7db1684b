/**
 * Emitters of the elementwise ops: `add`, `sub`, `mul`, `div` (broadcasting, or with a number)
 * and `concat` (a select on the axis).
 * @module
 */

import type { Node } from "../../../graph/ir.ts";
import { type Lin, lin, v, type VExpr } from "../../ir/expr.ts";
import { broadcastIndexOf, type EmitContext } from "./context.ts";

/**
 * add, sub, mul and div: each operand at its broadcast index, or the tensor with the number
 * (rounded to f32, as the reference does).
 *
 * @example
 * ```ts
 * import { emitBinary } from "./elementwise.ts";
 * typeof emitBinary; // "function"
 * ```
 */
export function emitBinary(
  node: Node<"add" | "sub" | "mul" | "div">,
  index: readonly Lin[],
  ctx: EmitContext,
): VExpr {
  const [a, b] = node.inputs;
  const left = ctx.value(a, broadcastIndexOf(index, ctx.shape(a)));
  const scalar = node.attrs.scalar;
  const right = scalar !== undefined
    ? v.const(Math.fround(scalar))
    : ctx.value(b, broadcastIndexOf(index, ctx.shape(b)));
  switch (node.op) {
    case "add":
      return v.add(left, right);
    case "sub":
      return v.sub(left, right);
    case "mul":
      return v.mul(left, right);
    case "div":
      return v.div(left, right);
  }
}

/**
 * concat: `index[axis] < size0 ? in0 : in1[index[axis] - size0] ...`. With the class token as
 * input 0 this is `t < 1 ? cls : tokens[t - 1]`, which the simplifier splits per branch.
 *
 * @example
 * ```ts
 * import { emitConcat } from "./elementwise.ts";
 * typeof emitConcat; // "function"
 * ```
 */
export function emitConcat(node: Node<"concat">, index: readonly Lin[], ctx: EmitContext): VExpr {
  const axis = node.attrs.axis;
  const pieces = node.inputs.map((id) => ({ id, size: ctx.shape(id)[axis] }));
  const build = (i: number, start: number): VExpr => {
    const { id, size } = pieces[i];
    const local = index.map((x, j) => (j === axis ? lin.offset(x, -start) : x));
    const here = ctx.value(id, local);
    if (i === pieces.length - 1) return here;
    return v.select({ k: "lt", x: index[axis], c: start + size }, here, build(i + 1, start + size));
  };
  return build(0, 0);
}
