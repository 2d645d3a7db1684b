/**
 * Emitters of the normalizations: `layer_norm` (mean and biased variance over the last axis) and
 * `softmax` (max subtracted). Each value is written with its reductions inline; the lowering
 * then materializes every reduction that is read inside another one or broadcast along its own
 * reduced axis, so the means, variances, maxima and sums become per-row kernels.
 * @module
 */

import type { Node } from "../../../graph/ir.ts";
import { normalizeAxis } from "../../../graph/shape.ts";
import { type Lin, v, type VExpr } from "../../ir/expr.ts";
import type { EmitContext } from "./context.ts";

/**
 * layer_norm: `(x - mean) * rsqrt(var + eps) * weight + bias`, `var` the biased variance
 * `Σ (x - mean)² / D` (two passes, as the reference).
 *
 * @example
 * ```ts
 * import { emitLayerNorm } from "./normalize.ts";
 * typeof emitLayerNorm; // "function"
 * ```
 */
export function emitLayerNorm(
  node: Node<"layer_norm">,
  index: readonly Lin[],
  ctx: EmitContext,
): VExpr {
  const [x, weight, bias] = node.inputs;
  const d = ctx.shape(x)[ctx.shape(x).length - 1];
  const rows = index.slice(0, -1);
  const at = (k: Lin): VExpr => ctx.value(x, [...rows, k]);
  const k = ctx.fresh("k", d);
  const mean = v.divc(v.sum(k.name, d, at(k)), d);
  const j = ctx.fresh("j", d);
  const centered = v.sub(at(j), mean);
  const variance = v.divc(v.sum(j.name, d, v.mul(centered, centered)), d);
  const inv = v.unary("rsqrt", v.add(variance, v.const(Math.fround(node.attrs.eps))));
  const last = index[index.length - 1];
  const normalized = v.mul(v.mul(v.sub(at(last), mean), inv), ctx.value(weight, [last]));
  return v.add(normalized, ctx.value(bias, [last]));
}

/**
 * softmax along `axis`: `exp(x - max) / Σ exp(x - max)`.
 *
 * @example
 * ```ts
 * import { emitSoftmax } from "./normalize.ts";
 * typeof emitSoftmax; // "function"
 * ```
 */
export function emitSoftmax(node: Node<"softmax">, index: readonly Lin[], ctx: EmitContext): VExpr {
  const x = node.inputs[0];
  const shape = ctx.shape(x);
  const axis = normalizeAxis(node.attrs.axis, shape.length) as number;
  const n = shape[axis];
  const along = (j: Lin): VExpr => ctx.value(x, index.map((i, a) => (a === axis ? j : i)));
  const m = ctx.fresh("m", n);
  const max = v.reduce("max", m.name, n, along(m));
  const s = ctx.fresh("s", n);
  const total = v.sum(s.name, n, v.exp(v.sub(along(s), max)));
  return v.div(v.exp(v.sub(along(index[axis]), max)), total);
}
