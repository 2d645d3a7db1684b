/**
 * `resize`: bilinear resize of `[N, C, h, w]` to `[N, C, H, W]`, exactly torchvision's
 * `TF.resize(x, [H, W], interpolation=BILINEAR, antialias=...)` on float tensors, which is
 * `torch.nn.functional.interpolate(mode="bilinear", align_corners=False, antialias=...)`.
 *
 * Both modes are separable: each output is a small weighted sum along the width, then along the
 * height (the order of PyTorch's CPU kernels, so float32 rounding matches too). The weights come
 * from {@linkcode resizeTaps}, which backends share with this reference.
 * @module
 */

import type { Lt } from "../graph/shape_math.ts";
import type {
  DimStr,
  DynamicRank,
  IsDynamic,
  ShapeErrorType,
  ShapeStr,
  TDim,
  TShape,
} from "../graph/shape_types.ts";
import { type Dim, isConcrete, type Shape, ShapeError } from "../graph/shape.ts";
import type { OpDef } from "./op.ts";

/**
 * The IR attributes of a resize node. `antialias` has no default on purpose: torchvision 0.14
 * resizes tensors without it and torchvision >= 0.17 with it, so the graph must say which.
 *
 * @example
 * ```ts
 * import type { ResizeAttrs } from "./resize.ts";
 * const a: ResizeAttrs = { height: 224, width: 224, antialias: false };
 * ```
 */
export interface ResizeAttrs {
  /** Output height. */
  readonly height: number;
  /** Output width. */
  readonly width: number;
  /** PyTorch's `antialias` flag: a wider triangle filter when downsampling. */
  readonly antialias: boolean;
}

/**
 * `true` for a positive integer literal or the dynamic `number` (checked at run time).
 * @ignore
 */
type IsSize<D> = D extends number ? (IsDynamic<D> extends true ? true : Lt<0, D> extends true ? true
  : false)
  : true;

/**
 * Output shape of `resize` to `H x W`: `[N, C, h, w] -> [N, C, H, W]`, or a readable error for
 * a rank other than 4 or a size that is not a positive integer.
 *
 * @example
 * ```ts
 * import type { ResizeShape } from "./resize.ts";
 * type Y = ResizeShape<["B", 3, 200, 300], 224, 224>; // ["B", 3, 224, 224]
 * ```
 */
export type ResizeShape<S extends TShape, H extends number, W extends number> =
  DynamicRank<S> extends true ? TShape
    : S extends readonly [infer N, infer C, infer IH extends TDim, infer IW extends TDim]
      ? (IsSize<H> extends false
        ? ShapeErrorType<`resize: height ${DimStr<H>} must be a positive integer`>
        : IsSize<W> extends false
          ? ShapeErrorType<`resize: width ${DimStr<W>} must be a positive integer`>
        : IsSize<IH> extends false
          ? ShapeErrorType<`resize: input ${ShapeStr<S>} has an empty height`>
        : IsSize<IW> extends false
          ? ShapeErrorType<`resize: input ${ShapeStr<S>} has an empty width`>
        : [N, C, H, W])
    : ShapeErrorType<`resize: input ${ShapeStr<S>} must be 4-D [N, C, H, W]`>;

/**
 * One axis of a resize as fixed-size weighted sums:
 * `out[i] = Σ_{k < taps} weights[i * taps + k] * in[start[i] + k]`, every index in range.
 *
 * @example
 * ```ts
 * import { type ResizeTaps, resizeTaps } from "./resize.ts";
 * const t: ResizeTaps = resizeTaps(4, 2, false); // windows of 2 starting at [0, 2]
 * ```
 */
export interface ResizeTaps {
  /** Per output index, the first source index of its window. */
  readonly start: Int32Array;
  /** `outSize * taps` float32 weights, row per output; zero where the window is shorter. */
  readonly weights: Float32Array;
  /** The window length, the same for every output. */
  readonly taps: number;
}

const f32 = Math.fround;

/** PyTorch's `area_pixel_compute_scale` (align_corners=False, no scale given): float `in/out`. */
function pixelScale(inSize: number, outSize: number): number {
  return f32(inSize / outSize);
}

/** PyTorch's `aa_filter` for bilinear: the triangle `max(0, 1 - |x|)` in float32. */
function triangle(x: number): number {
  const a = Math.abs(x);
  return a < 1 ? f32(1 - a) : 0;
}

/**
 * Plain bilinear (`upsample_bilinear2d`): two taps `i0, i0 + 1` at the source coordinate
 * `max(scale * (i + 0.5) - 0.5, 0)`, computed like PyTorch 1.13's CPU kernel in float32.
 */
function bilinearTaps(inSize: number, outSize: number): ResizeTaps {
  const taps = Math.min(2, inSize);
  const start = new Int32Array(outSize);
  const weights = new Float32Array(outSize * taps);
  const scale = pixelScale(inSize, outSize);
  for (let i = 0; i < outSize; i++) {
    // The source coordinate stays in double (only the scale and the lambdas are float32):
    // rounding it to float32 misses the fixture by up to 1.4e-5; this matches it bit for bit.
    const src = Math.max(scale * (i + 0.5) - 0.5, 0);
    const i0 = Math.trunc(src);
    const l1 = f32(src - i0);
    const l0 = f32(1 - l1);
    if (i0 + 1 < inSize) {
      start[i] = i0;
      weights[i * taps] = l0;
      weights[i * taps + 1] = l1;
    } else {
      // Past the last pixel PyTorch reads x[last] twice (l0 * x + l1 * x); one tap with the
      // summed weight keeps every index in range, at a cost of at most an ulp.
      start[i] = inSize - taps;
      weights[i * taps + taps - 1] = f32(l0 + l1);
    }
  }
  return { start, weights, taps };
}

/**
 * Antialiased bilinear (`_upsample_bilinear2d_aa`, PIL's scheme): a triangle of half-width
 * `max(scale, 1)` around the source centre `scale * (i + 0.5)`, normalized to sum 1, with
 * PyTorch 1.13's float32 arithmetic (`_compute_weights_aa`).
 */
function antialiasTaps(inSize: number, outSize: number): ResizeTaps {
  const scale = pixelScale(inSize, outSize);
  const support = scale >= 1 ? scale : 1;
  const invscale = scale >= 1 ? f32(1 / scale) : 1;
  const windows: { xmin: number; w: number[] }[] = [];
  let taps = 1;
  for (let i = 0; i < outSize; i++) {
    const center = f32(scale * (i + 0.5));
    const xmin = Math.max(Math.trunc(f32(center - support) + 0.5), 0);
    const xsize = Math.min(Math.trunc(f32(center + support) + 0.5), inSize) - xmin;
    const w: number[] = [];
    let total = 0;
    for (let j = 0; j < xsize; j++) {
      // (j + xmin - center) is float32, + 0.5 and * invscale are double, the filter takes float.
      const wj = triangle(f32((f32(j + xmin - center) + 0.5) * invscale));
      w.push(wj);
      total = f32(total + wj);
    }
    if (total !== 0) { for (let j = 0; j < xsize; j++) w[j] = f32(w[j] / total); }
    windows.push({ xmin, w });
    taps = Math.max(taps, xsize);
  }
  const start = new Int32Array(outSize);
  const weights = new Float32Array(outSize * taps);
  windows.forEach(({ xmin, w }, i) => {
    // Shift windows that would run past the end left, padding zeros in front: 0 * x adds
    // nothing, so the float32 sum is unchanged.
    const s = Math.min(xmin, inSize - taps);
    start[i] = s;
    w.forEach((wj, j) => (weights[i * taps + xmin - s + j] = wj));
  });
  return { start, weights, taps };
}

/**
 * The source window and weights of one resized axis, shared by the reference and the codegen:
 * `out[i] = Σ_{k < taps} weights[i * taps + k] * in[start[i] + k]`, with `start[i] + k` always
 * a valid source index (unused taps have weight 0). Equal sizes give the identity (one tap of
 * weight 1), as PyTorch copies then. Weights are PyTorch 1.13's float32 values.
 *
 * @param inSize Source length (positive integer).
 * @param outSize Output length (positive integer).
 * @param antialias Use the antialiasing triangle filter (matters when downsampling).
 * @throws {RangeError} When a size is not a positive integer.
 *
 * @example
 * ```ts
 * import { resizeTaps } from "./resize.ts";
 * const t = resizeTaps(4, 2, false);
 * // taps 2; out[0] = 0.5 * in[0] + 0.5 * in[1]; out[1] = 0.5 * in[2] + 0.5 * in[3]
 * [t.taps, [...t.start], [...t.weights]]; // [2, [0, 2], [0.5, 0.5, 0.5, 0.5]]
 * ```
 */
export function resizeTaps(inSize: number, outSize: number, antialias: boolean): ResizeTaps {
  for (const [name, n] of [["inSize", inSize], ["outSize", outSize]] as const) {
    if (!Number.isSafeInteger(n) || n < 1) {
      throw new RangeError(`resizeTaps: ${name} must be a positive integer, got ${n}`);
    }
  }
  if (inSize === outSize) {
    return {
      start: Int32Array.from({ length: outSize }, (_, i) => i),
      weights: new Float32Array(outSize).fill(1),
      taps: 1,
    };
  }
  return antialias ? antialiasTaps(inSize, outSize) : bilinearTaps(inSize, outSize);
}

/**
 * Resizes one axis of a row-major buffer viewed as `[outer, len, inner]` in float32, summing
 * the taps as PyTorch's compiled CPU kernels do: a chain of fused multiply-adds
 * `acc = fma(w, x, acc)`, first tap first for the antialiased kernel (`out = t0*w0; out += tj*wj`)
 * and last tap first for the plain one (`t0*w0 + t1*w1` compiles to `fma(t0, w0, t1*w1)`).
 * For float32 operands `w * x` is exact in double, so `f32(w * x + acc)` is the fused result.
 * The order only moves the last bit; backends may sum in any order.
 */
function resizeAxis(
  src: Float32Array,
  outer: number,
  len: number,
  inner: number,
  t: ResizeTaps,
  lastTapFirst: boolean,
): Float32Array {
  const outLen = t.start.length;
  const out = new Float32Array(outer * outLen * inner);
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < outLen; i++) {
      const base = (o * len + t.start[i]) * inner;
      for (let r = 0; r < inner; r++) {
        let acc = 0;
        for (let step = 0; step < t.taps; step++) {
          const k = lastTapFirst ? t.taps - 1 - step : step;
          acc = f32(t.weights[i * t.taps + k] * src[base + k * inner + r] + acc);
        }
        out[(o * outLen + i) * inner + r] = acc;
      }
    }
  }
  return out;
}

function checkSize(
  n: unknown,
  what: string,
  inputs: readonly Shape[],
  node: string,
): void {
  if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 1) {
    throw new ShapeError("resize", node, inputs, `${what} ${n} must be a positive integer`);
  }
}

/**
 * The runtime rule and reference semantics of `resize`.
 *
 * @example
 * ```ts
 * import { resizeOp } from "./resize.ts";
 * resizeOp.inferShape([["B", 3, 200, 300]], { height: 224, width: 224, antialias: false }, "r");
 * // ["B", 3, 224, 224]
 * ```
 */
export const resizeOp: OpDef<ResizeAttrs> = {
  kind: "resize",
  inferShape(inputs: readonly Shape[], attrs: ResizeAttrs, node: string): Dim[] {
    const [x] = inputs;
    if (inputs.length !== 1) {
      throw new ShapeError("resize", node, inputs, `takes 1 input, got ${inputs.length}`);
    }
    if (x.length !== 4) {
      throw new ShapeError(
        "resize",
        node,
        inputs,
        `input must be 4-D [N, C, H, W], got rank ${x.length}`,
      );
    }
    checkSize(attrs.height, "height", inputs, node);
    checkSize(attrs.width, "width", inputs, node);
    if (typeof attrs.antialias !== "boolean") {
      throw new ShapeError(
        "resize",
        node,
        inputs,
        "antialias must be true or false (torchvision's default differs across versions)",
      );
    }
    const [n, c, h, w] = x;
    if ((isConcrete(h) && h < 1) || (isConcrete(w) && w < 1)) {
      throw new ShapeError("resize", node, inputs, `cannot resize an empty ${h}x${w} image`);
    }
    return [n, c, attrs.height, attrs.width];
  },
  evaluate(inputs, attrs, outShape): Float32Array {
    const x = inputs[0];
    const [n, c, h, w] = x.shape;
    const [, , oh, ow] = outShape;
    // Width first, then height: PyTorch's order for both kernels (the plain kernel nests the
    // width sum inside the height sum; the antialiased one runs a horizontal pass first).
    const aa = attrs.antialias;
    const rows = resizeAxis(x.data, n * c * h, w, 1, resizeTaps(w, ow, aa), !aa);
    return resizeAxis(rows, n * c, h, ow, resizeTaps(h, oh, aa), !aa);
  },
};
