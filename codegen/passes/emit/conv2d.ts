/**
 * Emitter of `conv2d`: `bias[o] + Σ_{c,ky,kx} x[n, c, y·s - p + ky, x·s - p + kx] · W[o, c, ky, kx]`,
 * with zero padding as a bounds select. With kernel = stride this is the patchify GEMM.
 * @module
 */

import type { Node } from "../../../graph/ir.ts";
import { type Cond, type Lin, lin, v, type VExpr } from "../../ir/expr.ts";
import type { EmitContext } from "./context.ts";

/**
 * conv2d as a reduction over input channels and the kernel window.
 *
 * @example
 * ```ts
 * import { emitConv2d } from "./conv2d.ts";
 * typeof emitConv2d; // "function"
 * ```
 */
export function emitConv2d(node: Node<"conv2d">, index: readonly Lin[], ctx: EmitContext): VExpr {
  const [x, weight, bias] = node.inputs;
  const [, channels, height, width] = ctx.shape(x);
  const [, , kh, kw] = ctx.shape(weight);
  const { stride, padding } = node.attrs;
  const [n, o, oy, ox] = index;
  const c = ctx.fresh("c", channels);
  const ky = ctx.fresh("ky", kh);
  const kx = ctx.fresh("kx", kw);
  const iy = lin.add(lin.offset(lin.scale(oy, stride), -padding), ky);
  const ix = lin.add(lin.offset(lin.scale(ox, stride), -padding), kx);
  const inside: Cond = {
    k: "and",
    a: { k: "and", a: { k: "ge", x: iy, c: 0 }, b: { k: "lt", x: iy, c: height } },
    b: { k: "and", a: { k: "ge", x: ix, c: 0 }, b: { k: "lt", x: ix, c: width } },
  };
  const tap = v.mul(ctx.value(x, [n, c, iy, ix]), ctx.value(weight, [o, c, ky, kx]));
  const body = padding === 0 ? tap : v.select(inside, tap, v.const(0));
  const sum = v.sum(c.name, channels, v.sum(ky.name, kh, v.sum(kx.name, kw, body)));
  return bias === undefined ? sum : v.add(ctx.value(bias, [o]), sum);
}
