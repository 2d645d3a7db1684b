/**
 * timm 1.0's evaluation transform on a decoded image, bit for bit:
 * `create_transform(input_size=224, crop_pct=0.9, interpolation="bicubic", mean, std)`, which
 * timm prints as
 *
 * ```text
 * Compose(
 *   Resize(size=248, interpolation=bicubic)   # floor(224 / 0.9), shorter side, PIL bicubic
 *   CenterCrop(size=(224, 224))
 *   MaybeToTensor()                            # x / 255 as float32, CHW
 *   Normalize(mean, std)                       # (x - mean) / std in float32
 * )
 * ```
 *
 * applied to `Image.open(path).convert("RGB")`. The resize is Pillow 9.4's integer bicubic
 * ({@linkcode resizeBicubicPIL}), the size rules torchvision 0.14's (`_compute_resized_output_size`,
 * `center_crop`).
 *
 * @module
 */

import { resizeBicubicPIL } from "./resample.ts";

const f32 = Math.fround;

/**
 * An 8-bit interleaved image, as `DecodedImage` (1 or 3 channels) or `RawImage` (1, 3 or 4)
 * from `./image.ts` give it: 1 = L, 2 = LA, 3 = RGB, 4 = RGBA.
 *
 * @example
 * ```ts
 * import type { TransformImage } from "./timm_transform.ts";
 * const img: TransformImage = { width: 1, height: 1, channels: 4, data: new Uint8Array(4) };
 * ```
 */
export interface TransformImage {
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
  /** Samples per pixel. */
  channels: 1 | 2 | 3 | 4;
  /** `height * width * channels` bytes, HWC, row-major. */
  data: Uint8Array;
  /** Where the image came from, for error messages. */
  source?: string;
}

/**
 * ImageNet's channel means, timm's `IMAGENET_DEFAULT_MEAN`.
 *
 * @example
 * ```ts
 * import { IMAGENET_MEAN, IMAGENET_STD, timmEvalTransform } from "./timm_transform.ts";
 * const img = { width: 8, height: 8, channels: 3 as const, data: new Uint8Array(192) };
 * const t = timmEvalTransform(img, { size: 4, mean: IMAGENET_MEAN, std: IMAGENET_STD });
 * console.log(t.shape); // [1, 3, 4, 4]
 * ```
 */
export const IMAGENET_MEAN: readonly [number, number, number] = [0.485, 0.456, 0.406];

/**
 * ImageNet's channel standard deviations, timm's `IMAGENET_DEFAULT_STD`.
 *
 * @example
 * ```ts
 * import { IMAGENET_STD } from "./timm_transform.ts";
 * console.log(IMAGENET_STD[0]); // 0.229
 * ```
 */
export const IMAGENET_STD: readonly [number, number, number] = [0.229, 0.224, 0.225];

/**
 * Options for {@linkcode timmEvalTransform} and {@linkcode timmEvalCrop}.
 *
 * @example
 * ```ts
 * import type { TimmEvalOptions } from "./timm_transform.ts";
 * const opts: TimmEvalOptions = { size: 384, cropPct: 1, mean: [0.5, 0.5, 0.5] };
 * ```
 */
export interface TimmEvalOptions {
  /** Output side, timm's `input_size` (default 224). */
  size?: number;
  /** timm's `crop_pct` (default 0.9): the shorter side is resized to `floor(size / cropPct)`. */
  cropPct?: number;
  /** Per-channel mean (default 0.5 each, timm's ViT default). */
  mean?: readonly [number, number, number];
  /** Per-channel standard deviation (default 0.5 each). */
  std?: readonly [number, number, number];
}

/**
 * The transform's output: one normalized CHW image as a batch of 1.
 *
 * @example
 * ```ts
 * import type { TimmTensor } from "./timm_transform.ts";
 * const t: TimmTensor = { shape: [1, 3, 1, 1], data: new Float32Array(3) };
 * ```
 */
export interface TimmTensor {
  /** `[1, 3, size, size]`. */
  shape: [1, 3, number, number];
  /** Row-major float32 values. */
  data: Float32Array;
}

/**
 * An 8-bit RGB image, HWC.
 *
 * @example
 * ```ts
 * import type { RgbImage } from "./timm_transform.ts";
 * const img: RgbImage = { width: 1, height: 1, channels: 3, data: new Uint8Array(3) };
 * ```
 */
export interface RgbImage {
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
  /** Always 3. */
  channels: 3;
  /** `height * width * 3` bytes. */
  data: Uint8Array;
}

/**
 * A crop rectangle in the source image's pixel coordinates. `left`/`top` are negative (and the
 * box may reach past the right/bottom edge) when the image is smaller than the crop: those
 * pixels are torchvision's zero padding.
 *
 * @example
 * ```ts
 * import type { CropBox } from "./timm_transform.ts";
 * const box: CropBox = { left: 38, top: 12, width: 224, height: 224 };
 * ```
 */
export interface CropBox {
  /** First column. */
  left: number;
  /** First row. */
  top: number;
  /** Crop width. */
  width: number;
  /** Crop height. */
  height: number;
}

function checkPositiveInt(what: string, n: number): void {
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new RangeError(`${what} must be a positive integer, got ${n}`);
  }
}

/**
 * The size torchvision's `Resize(shorter)` gives a `width x height` image
 * (`_compute_resized_output_size`): the shorter side becomes `shorter`, the longer
 * `int(shorter * long / short)` — truncated, not rounded. A square image stays square.
 *
 * @param width Image width.
 * @param height Image height.
 * @param shorter Target length of the shorter side.
 * @returns `[newWidth, newHeight]`.
 *
 * @example
 * ```ts
 * import { resizedSize } from "./timm_transform.ts";
 * console.log(resizedSize(300, 200, 248)); // [372, 248]
 * console.log(resizedSize(199, 301, 248)); // [248, 375]  (375.1 truncated)
 * ```
 */
export function resizedSize(width: number, height: number, shorter: number): [number, number] {
  checkPositiveInt("width", width);
  checkPositiveInt("height", height);
  checkPositiveInt("shorter side", shorter);
  // `w <= h` picks the width as the short side for squares too, as torchvision does.
  const [short, long] = width <= height ? [width, height] : [height, width];
  // Python's int(a * b / c): an exact integer product, a float64 division, truncation.
  const newLong = Math.trunc((shorter * long) / short);
  return width <= height ? [shorter, newLong] : [newLong, shorter];
}

/** Python 3's `round()` of a half-integer or integer: ties go to the even neighbour. */
function roundHalfEven(v: number): number {
  const fl = Math.floor(v);
  const diff = v - fl;
  if (diff < 0.5) return fl;
  if (diff > 0.5) return fl + 1;
  return fl % 2 === 0 ? fl : fl + 1;
}

/**
 * torchvision's `center_crop` box for a `width x height` image: when the crop is larger, the
 * image is first zero-padded by `(crop - size) // 2` before and `(crop - size + 1) // 2` after;
 * then `top = int(round((H - cropHeight) / 2))` and `left` likewise, with Python's round half to
 * even (an odd surplus of 77 gives 38, not 39).
 *
 * @param width Image width.
 * @param height Image height.
 * @param cropWidth Crop width.
 * @param cropHeight Crop height (default `cropWidth`).
 * @returns The box in the unpadded image's coordinates.
 *
 * @example
 * ```ts
 * import { centerCropBox } from "./timm_transform.ts";
 * console.log(centerCropBox(372, 248, 224)); // { left: 74, top: 12, width: 224, height: 224 }
 * console.log(centerCropBox(301, 226, 224)); // { left: 38, top: 1, width: 224, height: 224 }
 * ```
 */
export function centerCropBox(
  width: number,
  height: number,
  cropWidth: number,
  cropHeight: number = cropWidth,
): CropBox {
  checkPositiveInt("width", width);
  checkPositiveInt("height", height);
  checkPositiveInt("crop width", cropWidth);
  checkPositiveInt("crop height", cropHeight);
  const padLeft = cropWidth > width ? Math.floor((cropWidth - width) / 2) : 0;
  const padTop = cropHeight > height ? Math.floor((cropHeight - height) / 2) : 0;
  const padRight = cropWidth > width ? Math.floor((cropWidth - width + 1) / 2) : 0;
  const padBottom = cropHeight > height ? Math.floor((cropHeight - height + 1) / 2) : 0;
  const w = width + padLeft + padRight;
  const h = height + padTop + padBottom;
  // After padding to exactly the crop, torchvision returns the padded image as it is.
  const top = w === cropWidth && h === cropHeight ? 0 : roundHalfEven((h - cropHeight) / 2);
  const left = w === cropWidth && h === cropHeight ? 0 : roundHalfEven((w - cropWidth) / 2);
  return { left: left - padLeft, top: top - padTop, width: cropWidth, height: cropHeight };
}

/**
 * PIL's `convert("RGB")` of an 8-bit image: L and LA replicate the gray value, RGBA and LA drop
 * alpha (copied away, never composited), RGB is copied.
 *
 * @param image An 8-bit image with 1 to 4 channels.
 * @returns The RGB image.
 * @throws {RangeError} When the data length or channel count is wrong.
 *
 * @example
 * ```ts
 * import { toRgb } from "./timm_transform.ts";
 * const rgb = toRgb({ width: 1, height: 1, channels: 2, data: new Uint8Array([7, 99]) });
 * console.log([...rgb.data]); // [7, 7, 7]
 * ```
 */
export function toRgb(image: TransformImage): RgbImage {
  const { width, height, channels, data } = image;
  checkPositiveInt("width", width);
  checkPositiveInt("height", height);
  if (channels !== 1 && channels !== 2 && channels !== 3 && channels !== 4) {
    throw new RangeError(`channels must be 1, 2, 3 or 4, got ${channels}`);
  }
  const n = width * height;
  if (data.length !== n * channels) {
    const from = image.source ? `${image.source}: ` : "";
    throw new RangeError(
      `${from}image data has ${data.length} bytes, expected ${height}x${width}x${channels} = ${
        n * channels
      }`,
    );
  }
  if (channels === 3) return { width, height, channels: 3, data: data.slice() };
  const out = new Uint8Array(n * 3);
  for (let p = 0; p < n; p++) {
    const s = p * channels;
    if (channels <= 2) {
      const v = data[s];
      out[p * 3] = v;
      out[p * 3 + 1] = v;
      out[p * 3 + 2] = v;
    } else {
      out[p * 3] = data[s];
      out[p * 3 + 1] = data[s + 1];
      out[p * 3 + 2] = data[s + 2];
    }
  }
  return { width, height, channels: 3, data: out };
}

function resolve(options: TimmEvalOptions): Required<TimmEvalOptions> {
  const size = options.size ?? 224;
  const cropPct = options.cropPct ?? 0.9;
  checkPositiveInt("size", size);
  if (!(cropPct > 0) || !Number.isFinite(cropPct)) {
    throw new RangeError(`cropPct must be a positive number, got ${cropPct}`);
  }
  return {
    size,
    cropPct,
    mean: options.mean ?? [0.5, 0.5, 0.5],
    std: options.std ?? [0.5, 0.5, 0.5],
  };
}

/**
 * The transform up to the crop, in 8-bit: `convert("RGB")`, `Resize(floor(size / cropPct))`
 * with Pillow's bicubic, `CenterCrop(size)`.
 *
 * @param image The decoded image.
 * @param options Only `size` and `cropPct` are used.
 * @returns The `size x size` RGB crop.
 *
 * @example
 * ```ts
 * import { timmEvalCrop } from "./timm_transform.ts";
 * const img = { width: 3, height: 2, channels: 1 as const, data: new Uint8Array(6).fill(9) };
 * const crop = timmEvalCrop(img, { size: 4, cropPct: 1 });
 * console.log(crop.width, crop.height, crop.data[0]); // 4 4 9
 * ```
 */
export function timmEvalCrop(image: TransformImage, options: TimmEvalOptions = {}): RgbImage {
  const { size, cropPct } = resolve(options);
  const rgb = toRgb(image);
  // timm: scale_size = math.floor(img_size / crop_pct), the same float64 division.
  const scaleSize = Math.floor(size / cropPct);
  checkPositiveInt("resize target floor(size / cropPct)", scaleSize);
  const [rw, rh] = resizedSize(rgb.width, rgb.height, scaleSize);
  const resized = resizeBicubicPIL(rgb.data, rgb.width, rgb.height, 3, rw, rh);
  const box = centerCropBox(rw, rh, size);
  const out = new Uint8Array(size * size * 3); // zeros: torchvision's pad fill
  for (let y = 0; y < size; y++) {
    const sy = y + box.top;
    if (sy < 0 || sy >= rh) continue;
    for (let x = 0; x < size; x++) {
      const sx = x + box.left;
      if (sx < 0 || sx >= rw) continue;
      const s = (sy * rw + sx) * 3;
      const d = (y * size + x) * 3;
      out[d] = resized[s];
      out[d + 1] = resized[s + 1];
      out[d + 2] = resized[s + 2];
    }
  }
  return { width: size, height: size, channels: 3, data: out };
}

/**
 * timm 1.0's eval transform (`create_transform(input_size=size, crop_pct=cropPct,
 * interpolation="bicubic", mean, std)`) on a decoded image: {@linkcode timmEvalCrop}, then
 * `ToTensor` (`float32(x) / 255`, CHW) and `Normalize` (`(x - mean) / std` with float32 mean
 * and std, each step rounded to float32 as torch's `sub_`/`div_` do).
 *
 * Takes 8-bit images only; `decodeImage` already maps 16-bit PNGs by PIL's rules (RGB/RGBA/LA
 * keep the high byte, 16-bit gray is clipped to 255).
 *
 * @param image The decoded image (1 to 4 channels, see {@linkcode TransformImage}).
 * @param options Size, crop fraction, mean and std (defaults 224, 0.9, 0.5, 0.5).
 * @returns `{ shape: [1, 3, size, size], data }`.
 * @throws {RangeError} On a bad image, size, `cropPct`, or a `std` that is 0 in float32.
 *
 * @example
 * ```ts
 * import { timmEvalTransform } from "./timm_transform.ts";
 * const img = { width: 300, height: 200, channels: 3 as const, data: new Uint8Array(180000) };
 * const t = timmEvalTransform(img); // 224x224, crop_pct 0.9, mean = std = 0.5
 * console.log(t.shape, t.data[0]); // [1, 3, 224, 224] -1
 * ```
 */
export function timmEvalTransform(
  image: TransformImage,
  options: TimmEvalOptions = {},
): TimmTensor {
  const { size, mean, std } = resolve(options);
  const m = mean.map(f32);
  const s = std.map(f32);
  if (s.some((v) => v === 0)) {
    throw new RangeError(`std ${JSON.stringify(std)} is zero in float32 (division by zero)`);
  }
  const crop = timmEvalCrop(image, options);
  const plane = size * size;
  const data = new Float32Array(3 * plane);
  for (let c = 0; c < 3; c++) {
    for (let p = 0; p < plane; p++) {
      const x = f32(crop.data[p * 3 + c] / 255);
      data[c * plane + p] = f32(f32(x - m[c]) / s[c]);
    }
  }
  return { shape: [1, 3, size, size], data };
}
