/**
 * Emitters of the preprocessing ops: `to_tensor` (an HWC -> CHW gather and a division by 255)
 * and `resize` (bilinear, with or without antialias) as a small 2-D weighted window per output.
 * @module
 */

import type { Node } from "../../../graph/ir.ts";
import { resizeTaps } from "../../../ops/resize.ts";
import { type Cond, type Lin, lin, v, type VExpr } from "../../ir/expr.ts";
import type { EmitContext } from "./context.ts";

/**
 * to_tensor: `out[b, c, h, w] = x[b, h, w, c] / 255`.
 *
 * @example
 * ```ts
 * import { emitToTensor } from "./preprocess.ts";
 * typeof emitToTensor; // "function"
 * ```
 */
export function emitToTensor(
  node: Node<"to_tensor">,
  index: readonly Lin[],
  ctx: EmitContext,
): VExpr {
  const [b, c, h, w] = index;
  return v.divc(ctx.value(node.inputs[0], [b, h, w, c]), 255);
}

/**
 * One axis of a resize as a window that starts at a linear index: the taps from
 * `resizeTaps` re-expressed relative to `floor(i * in / out) - margin`, so the start needs no
 * lookup table; taps outside the true window get weight 0.
 */
interface Window {
  readonly start: Lin;
  readonly taps: number;
  readonly weights: Float32Array;
}

function windowOf(
  i: Lin,
  inSize: number,
  outSize: number,
  antialias: boolean,
  ranges: EmitContext["ranges"],
): Window {
  const t = resizeTaps(inSize, outSize, antialias);
  const margin = Math.ceil(t.taps / 2) + 1;
  const linearStart = (k: number): number => Math.floor((k * inSize) / outSize) - margin;
  let taps = 1;
  for (let k = 0; k < outSize; k++) {
    if (t.start[k] < linearStart(k)) throw new Error("codegen: resize window starts too early");
    taps = Math.max(taps, t.start[k] + t.taps - linearStart(k));
  }
  const weights = new Float32Array(outSize * taps);
  for (let k = 0; k < outSize; k++) {
    const shift = t.start[k] - linearStart(k);
    for (let a = 0; a < t.taps; a++) weights[k * taps + shift + a] = t.weights[k * t.taps + a];
  }
  const start = lin.offset(lin.div(lin.scale(i, inSize), outSize, ranges), -margin);
  return { start, taps, weights };
}

/**
 * resize: `Σ_a Σ_b wh[i, a] · ww[j, b] · x[n, c, sh(i) + a, sw(j) + b]`, reading 0 outside the
 * image (those taps have weight 0).
 *
 * @example
 * ```ts
 * import { emitResize } from "./preprocess.ts";
 * typeof emitResize; // "function"
 * ```
 */
export function emitResize(node: Node<"resize">, index: readonly Lin[], ctx: EmitContext): VExpr {
  const input = node.inputs[0];
  const [, , inH, inW] = ctx.shape(input);
  const { height, width, antialias } = node.attrs;
  const [n, c, i, j] = index;
  const rows = windowOf(i, inH, height, antialias, ctx.ranges);
  const cols = windowOf(j, inW, width, antialias, ctx.ranges);
  const wh = ctx.addConstant("resize_h", [height, rows.taps], rows.weights);
  const ww = ctx.addConstant("resize_w", [width, cols.taps], cols.weights);
  const a = ctx.fresh("a", rows.taps);
  const b = ctx.fresh("b", cols.taps);
  const y = lin.add(rows.start, a);
  const x = lin.add(cols.start, b);
  const inside: Cond = {
    k: "and",
    a: { k: "and", a: { k: "ge", x: y, c: 0 }, b: { k: "lt", x: y, c: inH } },
    b: { k: "and", a: { k: "ge", x, c: 0 }, b: { k: "lt", x, c: inW } },
  };
  const weight = v.mul(
    v.load(wh, lin.add(lin.scale(i, rows.taps), a)),
    v.load(ww, lin.add(lin.scale(j, cols.taps), b)),
  );
  const tap = v.select(inside, v.mul(weight, ctx.value(input, [n, c, y, x])), v.const(0));
  return v.sum(a.name, rows.taps, v.sum(b.name, cols.taps, tap));
}
