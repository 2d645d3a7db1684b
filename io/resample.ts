/**
 * Two exact antialiased bicubic resamplers, each replicating one reference bit for bit:
 *
 * - {@linkcode resampleBicubicAA}: PyTorch's `F.interpolate(x, size, mode="bicubic",
 *   antialias=True, align_corners=False)` on a float32 CHW tensor (the CPU kernel
 *   `_upsample_bicubic2d_aa`, `aten/src/ATen/native/cpu/UpSampleKernel.cpp`). timm uses it to
 *   resample a ViT's positional-embedding grid (`resample_abs_pos_embed`).
 * - {@linkcode resizeBicubicPIL}: Pillow 9.4's `Image.resize(size, Image.BICUBIC)` on an 8-bit
 *   image (`ImagingResample` in `src/libImaging/Resample.c`), the resize of torchvision's
 *   `Resize` on a PIL image.
 *
 * Both use the same filter — Keys' cubic with a = -0.5, its support widened by the scale when
 * shrinking, weights normalized per output — and the same PIL box rule for which inputs an
 * output reads; they differ in number formats: torch keeps float32 weights and float32 sums,
 * PIL rounds float64 weights to 22-bit fixed point and stores the intermediate as 8-bit.
 *
 * @module
 */

const f32 = Math.fround;

/** Which torch release's float arithmetic {@linkcode resampleBicubicAA} reproduces. */
export type TorchAAVersion = "1.13" | "2";

/**
 * Options for {@linkcode resampleBicubicAA}.
 *
 * @example
 * ```ts
 * import type { ResampleBicubicAAOptions } from "./resample.ts";
 * const opts: ResampleBicubicAAOptions = { torch: "2" };
 * ```
 */
export interface ResampleBicubicAAOptions {
  /**
   * `"1.13"` (default; torch 1.11-1.13, the fixtures' version) evaluates the cubic's inner
   * branch in float64 (`#define a -0.5` is a double literal) and rounds once; `"2"` (torch 2.x,
   * `cubic_convolution1<float>`) evaluates it in float32 step by step. Weights may differ in the
   * last bit between the two; everything else is the same.
   */
  torch?: TorchAAVersion;
}

/**
 * The taps of one resampled axis: output `i` reads `size[i]` inputs from `start[i]` on, with
 * weights `weights[i * stride + j]` (zero past `size[i]`).
 *
 * @example
 * ```ts
 * import type { AxisTaps } from "./resample.ts";
 * const taps: AxisTaps = {
 *   start: new Int32Array([0]),
 *   size: new Int32Array([1]),
 *   stride: 1,
 *   weights: new Float32Array([1]),
 * };
 * ```
 */
export interface AxisTaps {
  /** First input index of each output. */
  start: Int32Array;
  /** Number of inputs each output reads. */
  size: Int32Array;
  /** Row length of `weights`: the most taps any output may have, `2 * ceil(support) + 1`. */
  stride: number;
  /** Normalized weights, `outSize * stride`, float32 for torch, float64 for PIL. */
  weights: Float32Array | Float64Array;
}

function checkSize(what: string, n: number): void {
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new RangeError(`${what} must be a positive integer, got ${n}`);
  }
}

/** torch 1.13's `aa_filter<float>`: `a` is the double literal -0.5, `x` a float. */
function cubicTorch113(xIn: number): number {
  const x = xIn < 0 ? -xIn : xIn;
  // (a + 2.0) * x ... promotes x to double: one rounding to float at the return.
  if (x < 1) return f32((1.5 * x - 2.5) * x * x + 1);
  if (x < 2) {
    // x - 5 is float - int: float arithmetic until the final `* a` (exact: a power of two).
    let t = f32(x - 5);
    t = f32(t * x);
    t = f32(t + 8);
    t = f32(t * x);
    t = f32(t - 4);
    return t * -0.5;
  }
  return 0;
}

/** torch 2.x's `aa_filter<float>`: `cubic_convolution1/2` with a float `A = -0.5`. */
function cubicTorch2(xIn: number): number {
  const x = Math.abs(xIn);
  if (x < 1) {
    let t = f32(1.5 * x); // (A + 2) * x
    t = f32(t - 2.5); // - (A + 3)
    t = f32(t * x);
    t = f32(t * x);
    return f32(t + 1);
  }
  if (x < 2) {
    // ((A * x - 5 * A) * x + 8 * A) * x - 4 * A, each step in float
    let t = f32(-0.5 * x);
    t = f32(t + 2.5);
    t = f32(t * x);
    t = f32(t - 4);
    t = f32(t * x);
    return f32(t + 2); // - 4 * A
  }
  return 0;
}

/**
 * torch's antialiased bicubic taps for one axis, in float32 exactly as
 * `HelperInterpBase::_compute_indices_min_size_weights_aa<float>` (`_compute_weights_aa` in
 * 1.13) computes them: `scale = float(in) / out`, `support = 2 * max(scale, 1)`,
 * `center = float(scale * (i + 0.5))`, `xmin = max(int(center - support + 0.5), 0)`,
 * `xmax = min(int(center + support + 0.5), in)`, `w_j = cubic((j + xmin - center + 0.5) /
 * max(scale, 1))`, each divided by their float sum.
 *
 * @param inSize Input length.
 * @param outSize Output length.
 * @param torch Which torch release's cubic arithmetic (default `"1.13"`).
 * @returns The taps, with float32 weights.
 *
 * @example
 * ```ts
 * import { torchAATaps } from "./resample.ts";
 * const taps = torchAATaps(24, 14);
 * console.log(taps.stride, taps.start[0], taps.size[0]); // 9 0 4
 * ```
 */
export function torchAATaps(
  inSize: number,
  outSize: number,
  torch: TorchAAVersion = "1.13",
): AxisTaps {
  checkSize("input size", inSize);
  checkSize("output size", outSize);
  const filter = torch === "2" ? cubicTorch2 : cubicTorch113;
  // area_pixel_compute_scale<float>: float(input_size) / output_size, a float division.
  const scale = f32(inSize / outSize);
  // (interp_size * 0.5) * scale in double, stored as float: exact (a doubling).
  const support = scale >= 1 ? f32(2 * scale) : 2;
  const stride = Math.ceil(support) * 2 + 1;
  const invscale = scale >= 1 ? f32(1 / scale) : 1;
  const start = new Int32Array(outSize);
  const size = new Int32Array(outSize);
  const weights = new Float32Array(outSize * stride);
  for (let i = 0; i < outSize; i++) {
    const center = f32(scale * (i + 0.5));
    // center - support is float - float; + 0.5 promotes to double; the cast truncates.
    const xmin = Math.max(Math.trunc(f32(center - support) + 0.5), 0);
    const xmax = Math.min(Math.trunc(f32(center + support) + 0.5), inSize);
    // torch 2.x clamps this (float rounding can add one); 1.13 would overrun the row.
    const xsize = Math.min(Math.max(xmax - xmin, 0), stride);
    const row = i * stride;
    let total = 0;
    for (let j = 0; j < xsize; j++) {
      // (j + xmin) - center in float, + 0.5 and * invscale in double, then the float argument.
      const w = filter(f32((f32(j + xmin - center) + 0.5) * invscale));
      weights[row + j] = w;
      total = f32(total + w);
    }
    if (total !== 0) {
      for (let j = 0; j < xsize; j++) weights[row + j] = f32(weights[row + j] / total);
    }
    start[i] = xmin;
    size[i] = xsize;
  }
  return { start, size, stride, weights };
}

/**
 * Resample a float32 CHW tensor with antialiased bicubic interpolation, exactly as torch's
 * `F.interpolate(x, size=(outH, outW), mode="bicubic", antialias=True, align_corners=False)`
 * on float32 CPU tensors (`separable_upsample_generic_Nd_kernel_impl`): the width pass first,
 * then the height pass, each skipped when that size is unchanged (an unchanged shape returns a
 * copy), each output the float32 sum `t0 * w0 + t1 * w1 + ...` in tap order with the float32
 * weights of {@linkcode torchAATaps}.
 *
 * torch's AVX2/AVX512 builds may contract `out += t * w` into fused multiply-adds; this is the
 * unfused arithmetic of its default build, so such a build can differ by float32 rounding.
 *
 * @param data Row-major `C * H * W` values.
 * @param shape `[C, H, W]`.
 * @param outH Output height.
 * @param outW Output width.
 * @param options Which torch release's weight arithmetic (see {@linkcode ResampleBicubicAAOptions}).
 * @returns Row-major `C * outH * outW` values.
 * @throws {RangeError} When a size is not a positive integer or `data` does not match `shape`.
 *
 * @example
 * ```ts
 * import { resampleBicubicAA } from "./resample.ts";
 * // A (2, 14, 14) grid, e.g. positional embeddings as channels, to (2, 16, 20).
 * const grid = new Float32Array(2 * 14 * 14).map((_, i) => Math.sin(i));
 * const out = resampleBicubicAA(grid, [2, 14, 14], 16, 20);
 * console.log(out.length); // 640
 * ```
 */
export function resampleBicubicAA(
  data: Float32Array,
  shape: readonly [number, number, number],
  outH: number,
  outW: number,
  options: ResampleBicubicAAOptions = {},
): Float32Array {
  const [c, h, w] = shape;
  checkSize("channel count", c);
  checkSize("input height", h);
  checkSize("input width", w);
  checkSize("output height", outH);
  checkSize("output width", outW);
  if (data.length !== c * h * w) {
    throw new RangeError(
      `data has ${data.length} values, shape [${c}, ${h}, ${w}] needs ${c * h * w}`,
    );
  }
  const torch = options.torch ?? "1.13";
  let cur = data;
  if (outW !== w) {
    // Horizontal pass: (C, H, W) -> (C, H, outW), taps along the contiguous axis.
    const taps = torchAATaps(w, outW, torch);
    const next = new Float32Array(c * h * outW);
    const rows = c * h;
    for (let r = 0; r < rows; r++) {
      const src = r * w;
      const dst = r * outW;
      for (let x = 0; x < outW; x++) {
        const base = src + taps.start[x];
        const k = x * taps.stride;
        const n = taps.size[x];
        let acc = f32(cur[base] * taps.weights[k]);
        for (let j = 1; j < n; j++) acc = f32(acc + f32(cur[base + j] * taps.weights[k + j]));
        next[dst + x] = acc;
      }
    }
    cur = next;
  }
  if (outH !== h) {
    // Vertical pass: (C, H, outW) -> (C, outH, outW), taps one row apart.
    const taps = torchAATaps(h, outH, torch);
    const next = new Float32Array(c * outH * outW);
    for (let ch = 0; ch < c; ch++) {
      const plane = ch * h * outW;
      for (let y = 0; y < outH; y++) {
        const k = y * taps.stride;
        const n = taps.size[y];
        const first = plane + taps.start[y] * outW;
        const dst = (ch * outH + y) * outW;
        for (let x = 0; x < outW; x++) {
          let acc = f32(cur[first + x] * taps.weights[k]);
          for (let j = 1; j < n; j++) {
            acc = f32(acc + f32(cur[first + j * outW + x] * taps.weights[k + j]));
          }
          next[dst + x] = acc;
        }
      }
    }
    cur = next;
  }
  // torch copies an unchanged input; never hand back the caller's own array.
  return cur === data ? data.slice() : cur;
}

/** Pillow's `bicubic_filter` (a = -0.5), all in double. */
function cubicPIL(xIn: number): number {
  const x = xIn < 0 ? -xIn : xIn;
  if (x < 1) return (1.5 * x - 2.5) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * -0.5;
  return 0;
}

/**
 * Pillow's bicubic taps for one axis, as `precompute_coeffs` computes them (float64):
 * `scale = in / out`, `support = 2 * max(scale, 1)`, `center = (i + 0.5) * scale`,
 * `xmin = max(int(center - support + 0.5), 0)`, `xmax = min(int(center + support + 0.5), in)`,
 * `w_j = cubic((j + xmin - center + 0.5) / max(scale, 1))`, each divided by their sum.
 *
 * @param inSize Input length.
 * @param outSize Output length.
 * @returns The taps, with float64 weights (before fixed-point rounding).
 *
 * @example
 * ```ts
 * import { pilBicubicTaps } from "./resample.ts";
 * const taps = pilBicubicTaps(200, 248);
 * console.log(taps.stride, taps.start[0], taps.size[0]); // 5 0 2
 * ```
 */
export function pilBicubicTaps(inSize: number, outSize: number): AxisTaps {
  checkSize("input size", inSize);
  checkSize("output size", outSize);
  // box = (0, inSize): in1 - in0 is an exact float, divided in double.
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1);
  const support = 2 * filterscale;
  const stride = Math.ceil(support) * 2 + 1;
  const ss = 1 / filterscale;
  const start = new Int32Array(outSize);
  const size = new Int32Array(outSize);
  const weights = new Float64Array(outSize * stride);
  for (let i = 0; i < outSize; i++) {
    const center = (i + 0.5) * scale;
    // (int) truncates toward zero, then the clamps: PIL's "round the value".
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    const row = i * stride;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      const wgt = cubicPIL((x + xmin - center + 0.5) * ss);
      weights[row + x] = wgt;
      ww += wgt;
    }
    if (ww !== 0) { for (let x = 0; x < xmax; x++) weights[row + x] /= ww; }
    start[i] = xmin;
    size[i] = Math.max(xmax, 0);
  }
  return { start, size, stride, weights };
}

/** Pillow's `PRECISION_BITS`: 32 bits - 8 for the result - 2 for overflow. */
const PRECISION_BITS = 32 - 8 - 2;
const ROUND_BIAS = 1 << (PRECISION_BITS - 1);

/** `normalize_coeffs_8bpc`: round half away from zero onto 22-bit fixed point. */
function fixedPointCoeffs(weights: Float64Array): Int32Array {
  const out = new Int32Array(weights.length);
  const one = 1 << PRECISION_BITS;
  for (let i = 0; i < weights.length; i++) {
    const v = weights[i];
    out[i] = v < 0 ? Math.trunc(-0.5 + v * one) : Math.trunc(0.5 + v * one);
  }
  return out;
}

/** `clip8`: the accumulator's integer part (an arithmetic shift), clamped to 0..255. */
function clip8(acc: number): number {
  const v = acc >> PRECISION_BITS;
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/**
 * Resize an 8-bit interleaved image with Pillow 9.4's `Image.resize((outW, outH),
 * Image.BICUBIC)` (no `box`, `reducing_gap=None`), bit for bit: `ImagingResampleInner`'s
 * horizontal pass then vertical pass, each skipped when that dimension is unchanged (both
 * unchanged: a copy), float64 coefficients from {@linkcode pilBicubicTaps} rounded to 22-bit
 * fixed point, integer sums started at `1 << 21`, and the intermediate image stored as 8-bit
 * through `clip8`.
 *
 * Channels are resampled independently, as Pillow does for L, RGB, RGBX and CMYK. Pillow
 * premultiplies LA and RGBA by alpha around the resize (`La`/`RGBa`); this function does not,
 * so convert those to L or RGB first (as `convert("RGB")` does).
 *
 * @param rgb `height * width * channels` bytes, row-major, channels interleaved.
 * @param width Input width.
 * @param height Input height.
 * @param channels Samples per pixel (1 to 4).
 * @param outW Output width.
 * @param outH Output height.
 * @returns `outH * outW * channels` bytes.
 * @throws {RangeError} When a size is not a positive integer or `rgb` does not match it.
 *
 * @example
 * ```ts
 * import { resizeBicubicPIL } from "./resample.ts";
 * const img = new Uint8Array(4 * 2 * 3).fill(200); // 4x2 RGB
 * const out = resizeBicubicPIL(img, 4, 2, 3, 3, 3);
 * console.log(out.length, out[0]); // 27 200
 * ```
 */
export function resizeBicubicPIL(
  rgb: Uint8Array,
  width: number,
  height: number,
  channels: number,
  outW: number,
  outH: number,
): Uint8Array {
  checkSize("input width", width);
  checkSize("input height", height);
  checkSize("output width", outW);
  checkSize("output height", outH);
  if (!Number.isInteger(channels) || channels < 1 || channels > 4) {
    throw new RangeError(`channels must be 1, 2, 3 or 4, got ${channels}`);
  }
  if (rgb.length !== width * height * channels) {
    throw new RangeError(
      `image has ${rgb.length} bytes, ${width}x${height}x${channels} needs ${
        width * height * channels
      }`,
    );
  }
  // Image.resize returns self.copy() for an unchanged size.
  if (outW === width && outH === height) return rgb.slice();
  const vert = pilBicubicTaps(height, outH);
  // Rows the vertical pass reads: the horizontal pass only computes those.
  const yFirst = vert.start[0];
  const yLast = vert.start[outH - 1] + vert.size[outH - 1];
  let cur = rgb;
  let curW = width;
  let rowOffset = 0;
  if (outW !== width) {
    const horiz = pilBicubicTaps(width, outW);
    const k = fixedPointCoeffs(horiz.weights as Float64Array);
    const rows = yLast - yFirst;
    const next = new Uint8Array(rows * outW * channels);
    for (let y = 0; y < rows; y++) {
      const src = (y + yFirst) * width * channels;
      const dst = y * outW * channels;
      for (let x = 0; x < outW; x++) {
        const xmin = horiz.start[x];
        const n = horiz.size[x];
        const kr = x * horiz.stride;
        for (let c = 0; c < channels; c++) {
          let acc = ROUND_BIAS;
          for (let j = 0; j < n; j++) acc += cur[src + (xmin + j) * channels + c] * k[kr + j];
          next[dst + x * channels + c] = clip8(acc);
        }
      }
    }
    cur = next;
    curW = outW;
    rowOffset = yFirst; // bounds_vert shifted by ybox_first
  }
  if (outH !== height) {
    const k = fixedPointCoeffs(vert.weights as Float64Array);
    const rowLen = curW * channels;
    const next = new Uint8Array(outH * rowLen);
    for (let y = 0; y < outH; y++) {
      const ymin = vert.start[y] - rowOffset;
      const n = vert.size[y];
      const kr = y * vert.stride;
      const dst = y * rowLen;
      for (let i = 0; i < rowLen; i++) {
        let acc = ROUND_BIAS;
        for (let j = 0; j < n; j++) acc += cur[(ymin + j) * rowLen + i] * k[kr + j];
        next[dst + i] = clip8(acc);
      }
    }
    cur = next;
  }
  return cur;
}
