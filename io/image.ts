/**
 * Decoding PNG and JPEG files into 8-bit pixels the way PIL's `Image.open(f).convert("RGB")`
 * does (the seed's torchvision pipeline), and encoding 8-bit PNGs. PNG decoding is this module's
 * own (chunks, CRC, bounded inflate through fflate (`io/zlib.ts`), unfiltering, Adam7); JPEG entropy decoding and
 * IDCT come from `jpeg-js`, chroma upsampling and YCbCr -> RGB are this module's, after libjpeg;
 * PNG encoding is `fast-png`.
 *
 * PIL conventions followed (Pillow 9.4 `PngImagePlugin` modes + `Convert.c`):
 * - alpha is dropped, never composited (`rgba2rgb` copies R, G, B);
 * - grayscale (L, LA) is replicated to R = G = B;
 * - palette images are looked up through PLTE (tRNS alpha dropped); an index past the end of
 *   PLTE reads as (i, i, i), because Pillow's palette starts as a grayscale ramp;
 * - 1/2/4-bit grayscale is scaled to 0..255 (`1` -> 0/255, `L;2` -> x85, `L;4` -> x17);
 * - 16-bit RGB, RGBA and gray+alpha keep the high byte (`RGB;16B`, `RGBA;16B`, `LA;16B`);
 * - 16-bit grayscale opens as mode `I` and `convert("RGB")`/`convert("L")` CLIP it to 0..255
 *   (`i2rgb`/`i2l`), so values >= 255 become 255. This is PIL's behaviour, kept on purpose;
 * - RGB -> L (`channels: 1`) uses `L24`: `(R*19595 + G*38470 + B*7471 + 0x8000) >> 16`, the
 *   rounded 16.16 fixed-point form of ITU-R 601-2 `R*299/1000 + G*587/1000 + B*114/1000`;
 * - no EXIF orientation, gamma or ICC handling (`convert` does none).
 *
 * JPEG follows libjpeg's default decode, which PIL uses: "fancy" (triangle-filter) upsampling of
 * 2x1, 1x2 and 2x2 subsampled chroma, libjpeg's fixed-point YCbCr -> RGB, and its JFIF / Adobe /
 * component-id rules for whether three components are YCbCr or RGB. The IDCT is still jpeg-js's
 * (poppler's), not libjpeg's `islow`, so samples can differ from PIL's by up to 3 levels. Against
 * libjpeg-turbo 2.1.5 (PIL 9.4's library on Debian bookworm) with PIL's settings, on the 300x200
 * test image saved as a 4:2:0 quality-90 JPEG: max 3, mean 0.14, 89% of samples exact (jpeg-js's
 * own replicating upsampler and float colour conversion: max 121, mean 3.1). 4:4:4, 4:2:2 and
 * progressive files, and a 720x477 photo, measure the same (max 3, mean <= 0.17).
 *
 * Limits, as PIL's: an image over {@linkcode MAX_IMAGE_PIXELS} pixels (`maxPixels`) decodes
 * with a warning, one over twice that is refused before anything is allocated or inflated;
 * {@linkcode loadImage} reads only regular files of at most {@linkcode MAX_IMAGE_FILE_BYTES}.
 *
 * Sources: {@linkcode loadImage} reads a path (Deno, or Node through `node:fs`), a `URL`
 * (fetched) or a `Response`; {@linkcode imageFromRgba} takes RGBA pixels already decoded (a
 * canvas's `ImageData`), and `io/pixels.ts` takes a page's canvases, bitmaps and images.
 *
 * @module
 */

import { fileErrorReason, openRegularFile, type RegularFile, writeFileAtomic } from "./files.ts";
import {
  isResponse,
  looksLikeUrl,
  openBody,
  type ProgressCallback,
  readBody,
} from "./fetch_bytes.ts";
import { encode as encodePngCodec } from "npm:fast-png@8.0.0";
import { crc32, inflateBounded, InflateOverflow } from "./zlib.ts";
import { decode as decodeJpegCodec } from "npm:jpeg-js@0.4.4";

/**
 * Default {@linkcode DecodeImageOptions.maxPixels}: PIL's `Image.MAX_IMAGE_PIXELS`,
 * `int(1024 * 1024 * 1024 // 4 // 3)` = 89,478,485 (about 89.5 megapixels).
 *
 * @example
 * ```ts
 * import { MAX_IMAGE_PIXELS } from "./image.ts";
 * console.log(MAX_IMAGE_PIXELS); // 89478485: warn above this, refuse above twice this
 * ```
 */
export const MAX_IMAGE_PIXELS = 89_478_485;

/**
 * Default {@linkcode LoadImageOptions.maxFileBytes}: 256 MiB, several times the size of a
 * {@linkcode MAX_IMAGE_PIXELS} JPEG or of a typical PNG that size.
 *
 * @example
 * ```ts
 * import { MAX_IMAGE_FILE_BYTES } from "./image.ts";
 * console.log(MAX_IMAGE_FILE_BYTES); // 268435456
 * ```
 */
export const MAX_IMAGE_FILE_BYTES = 256 * 1024 * 1024;

/** jpeg-js needs about this many bytes per pixel while decoding (coefficients + output). */
const JPEG_BYTES_PER_PIXEL = 24;

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

// Re-exported so this module's public signatures reference a public type.
export type { ProgressCallback } from "./fetch_bytes.ts";

/**
 * An 8-bit image in HWC layout (row-major, channels interleaved).
 *
 * @example
 * ```ts
 * import type { DecodedImage } from "./image.ts";
 * const img: DecodedImage = { width: 2, height: 1, channels: 3, data: new Uint8Array(6) };
 * ```
 */
export interface DecodedImage {
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
  /** 3 for RGB, 1 for grayscale. */
  channels: 1 | 3;
  /** `height * width * channels` bytes, HWC, row-major. */
  data: Uint8Array;
  /** Where the image came from (path or display name), for later error messages. */
  source?: string;
}

/**
 * Options for {@linkcode decodeImage} and {@linkcode loadImage}.
 *
 * @example
 * ```ts
 * import type { DecodeImageOptions } from "./image.ts";
 * const opts: DecodeImageOptions = { channels: 1, maxPixels: 4096 * 4096, onWarning: () => {} };
 * ```
 */
export interface DecodeImageOptions {
  /** 3 (default) for PIL `convert("RGB")`, 1 for `convert("L")` (gray sources stay gray). */
  channels?: 1 | 3;
  /** File name used in error messages and copied to {@linkcode DecodedImage.source}. */
  source?: string;
  /**
   * PIL's `Image.MAX_IMAGE_PIXELS` (default {@linkcode MAX_IMAGE_PIXELS}, 89,478,485): an image
   * with more pixels decodes with a warning (PIL's `DecompressionBombWarning`), one with more
   * than twice this is refused from its header, before anything is allocated or inflated
   * (`DecompressionBombError`). `Infinity` turns the check off.
   */
  maxPixels?: number;
  /** Receives the one-line warning for an image over `maxPixels` (default `console.warn`). */
  onWarning?: (message: string) => void;
}

/**
 * Options for {@linkcode loadImage}: those of {@linkcode decodeImage}, plus a file-size limit.
 *
 * @example
 * ```ts
 * import type { LoadImageOptions } from "./image.ts";
 * const opts: LoadImageOptions = { maxFileBytes: 1024 * 1024 * 1024, maxPixels: 200_000_000 };
 * ```
 */
export interface LoadImageOptions extends DecodeImageOptions {
  /**
   * Refuse files larger than this many bytes, before reading them (default
   * {@linkcode MAX_IMAGE_FILE_BYTES}, 256 MiB). A download is refused from its
   * `Content-Length`, or without one at the first byte over the limit.
   */
  maxFileBytes?: number;
  /**
   * Called as bytes arrive (for a file, as they are read), with the total when known (the
   * `Content-Length`, or the file's size); see {@linkcode ProgressCallback}.
   */
  onProgress?: ProgressCallback;
  /** Aborts a download (ignored for files); the abort reason is rethrown as it is. */
  signal?: AbortSignal;
}

/**
 * Where {@linkcode loadImage} reads from: a file path (Deno, or Node through
 * `node:fs/promises`), a `URL` (`file:` URLs are paths, others are fetched with `fetch`), or a
 * `Response` (from your own `fetch`).
 *
 * @example
 * ```ts
 * import type { ImageSource } from "./image.ts";
 * const sources: ImageSource[] = ["cat.png", new URL("https://example.com/cat.jpg")];
 * ```
 */
export type ImageSource = string | URL | Response;

/**
 * 8-bit RGBA pixels, row-major, 4 bytes a pixel: the shape of a canvas's `ImageData` (whose
 * `data` is a `Uint8ClampedArray`); a `Uint8Array` is taken too.
 *
 * @example
 * ```ts
 * import type { RgbaPixels } from "./image.ts";
 * const red: RgbaPixels = { width: 1, height: 1, data: new Uint8ClampedArray([255, 0, 0, 255]) };
 * ```
 */
export interface RgbaPixels {
  /** Width in pixels. */
  readonly width: number;
  /** Height in pixels. */
  readonly height: number;
  /** `width * height * 4` bytes: R, G, B, A for each pixel. */
  readonly data: Uint8ClampedArray | Uint8Array;
}

/**
 * Options for {@linkcode imageFromRgba}: the output channels and a name for errors.
 *
 * @example
 * ```ts
 * import type { RgbaImageOptions } from "./image.ts";
 * const opts: RgbaImageOptions = { channels: 1, source: "canvas" };
 * ```
 */
export type RgbaImageOptions = Pick<DecodeImageOptions, "channels" | "source">;

/**
 * An 8-bit image to encode: HWC bytes with 1 (gray), 3 (RGB) or 4 (RGBA) channels.
 *
 * @example
 * ```ts
 * import type { RawImage } from "./image.ts";
 * const img: RawImage = { width: 1, height: 1, channels: 4, data: new Uint8Array(4) };
 * ```
 */
export interface RawImage {
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
  /** Samples per pixel. */
  channels: 1 | 3 | 4;
  /** `height * width * channels` bytes, HWC, row-major. */
  data: Uint8Array;
}

/**
 * An image as float32 tensor data: shape `[1, H, W, C]`, values 0..255 (not normalised).
 *
 * @example
 * ```ts
 * import type { ImageTensorData } from "./image.ts";
 * const t: ImageTensorData = { shape: [1, 1, 1, 3], data: new Float32Array(3) };
 * ```
 */
export interface ImageTensorData {
  /** `[1, height, width, channels]`. */
  shape: [1, number, number, number];
  /** Row-major HWC values 0..255. */
  data: Float32Array;
}

/** Where an {@linkcode ImageError} happened. */
export interface ImageErrorOptions {
  /** The file (path or display name) involved. */
  file?: string;
  /** The underlying error, if any. */
  cause?: unknown;
}

/**
 * A problem reading, decoding or writing an image. The message is one line:
 * `<file>: <what is wrong> (<how to fix it>)`.
 *
 * @example
 * ```ts
 * import { decodeImage, ImageError } from "./image.ts";
 * try {
 *   decodeImage(new Uint8Array([1, 2, 3]), { source: "cat.gif" });
 * } catch (e) {
 *   if (e instanceof ImageError) console.error(e.message, e.file);
 * }
 * ```
 */
export class ImageError extends Error {
  /** The file involved, when known. */
  file?: string;
  /** Always `"ImageError"`. */
  override name = "ImageError";

  /**
   * Build the one-line message `<file>: <detail>` (or just `<detail>` when the file is unknown).
   *
   * @param detail What is wrong and how to fix it; the file name is prefixed automatically.
   * @param options The file involved and the underlying cause.
   */
  constructor(detail: string, options: ImageErrorOptions = {}) {
    const line = oneLine(detail);
    super(options.file !== undefined ? `${options.file}: ${line}` : line, {
      cause: options.cause,
    });
    this.file = options.file;
  }
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, " ").trim();
}

/** The codec's message, with its `cause` chain, on one line. */
function codecMessage(err: unknown): string {
  const parts: string[] = [];
  let e: unknown = err;
  for (let depth = 0; e !== undefined && e !== null && depth < 4; depth++) {
    const msg = e instanceof Error ? e.message : String(e);
    if (msg.trim() !== "") parts.push(msg.trim().replace(/:$/, ""));
    e = e instanceof Error ? e.cause : undefined;
  }
  return oneLine(parts.join(": ")) || "unknown decoder error";
}

function displayPath(path: string | URL): string {
  return path instanceof URL ? decodeURIComponent(path.pathname) : path;
}

function endsWith(bytes: Uint8Array, tail: readonly number[]): boolean {
  if (bytes.length < tail.length) return false;
  const start = bytes.length - tail.length;
  return tail.every((b, i) => bytes[start + i] === b);
}

function startsWith(bytes: Uint8Array, magic: readonly number[]): boolean {
  if (bytes.length < magic.length) return false;
  return magic.every((b, i) => bytes[i] === b);
}

/** A name for common non-supported formats, to make the error actionable. */
function guessFormat(bytes: Uint8Array): string | undefined {
  const ascii = String.fromCharCode(...bytes.subarray(0, 12));
  if (ascii.startsWith("GIF8")) return "GIF";
  if (ascii.startsWith("BM")) return "BMP";
  if (ascii.startsWith("RIFF") && ascii.slice(8, 12) === "WEBP") return "WebP";
  if (ascii.startsWith("II*\0") || ascii.startsWith("MM\0*")) return "TIFF";
  if (ascii.slice(4, 8) === "ftyp") return "HEIF/AVIF";
  if (ascii.startsWith("<")) return "text/HTML";
  return undefined;
}

interface Limits {
  maxPixels: number;
  onWarning: (message: string) => void;
}

/** PIL's `_decompression_bomb_check`, run on the header's size before any allocation. */
function checkSize(width: number, height: number, limits: Limits, file?: string): void {
  if (width <= 0 || height <= 0) {
    throw new ImageError(
      `image header says ${width}x${height} pixels (the file is corrupt; re-export or replace it)`,
      { file },
    );
  }
  const pixels = width * height;
  const { maxPixels } = limits;
  const refused = 2 * maxPixels;
  const size = `${width}x${height} = ${pixels} pixels`;
  const fix = "raise the maxPixels option (examples/vit.ts: --max-image-pixels)";
  if (pixels > refused) {
    throw new ImageError(
      `image is ${size}, over the limit of ${refused} (twice maxPixels ${maxPixels}, ` +
        `PIL's decompression-bomb limit); downscale it, or if you trust the file, ${fix}`,
      { file },
    );
  }
  if (pixels > maxPixels) {
    const where = file !== undefined ? `${file}: ` : "";
    limits.onWarning(
      `${where}image is ${size}, over maxPixels ${maxPixels} (PIL's DecompressionBombWarning); ` +
        `decoding it, but over ${refused} it would be refused (if you trust the file, ${fix})`,
    );
  }
}

/** PIL's RGB -> L (`L24` in Convert.c): rounded fixed-point ITU-R 601-2 luma. */
function luma(r: number, g: number, b: number): number {
  return (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16;
}

/**
 * RGB bytes -> the requested channel count (3: as is; 1: PIL luma). With `stride` 4 the source
 * is RGBA, whose alpha is dropped, never composited: PIL's `rgba2rgb`, and its `rgb2l` (luma
 * of R, G, B) that `Convert.c` also applies to RGBA.
 */
function fromRgb(
  rgb: Uint8Array | Uint8ClampedArray,
  pixels: number,
  channels: 1 | 3,
  stride: 3 | 4 = 3,
): Uint8Array {
  if (channels === 3 && stride === 3 && rgb instanceof Uint8Array) return rgb;
  const out = new Uint8Array(pixels * channels);
  if (channels === 3) {
    for (let p = 0, i = 0, o = 0; p < pixels; p++, i += stride, o += 3) {
      out[o] = rgb[i];
      out[o + 1] = rgb[i + 1];
      out[o + 2] = rgb[i + 2];
    }
    return out;
  }
  for (let p = 0, i = 0; p < pixels; p++, i += stride) {
    out[p] = luma(rgb[i], rgb[i + 1], rgb[i + 2]);
  }
  return out;
}

/** Gray bytes -> the requested channel count (1: as is; 3: replicated). */
function fromGray(gray: Uint8Array, pixels: number, channels: 1 | 3): Uint8Array {
  if (channels === 1) return gray;
  const out = new Uint8Array(pixels * 3);
  for (let p = 0, i = 0; p < pixels; p++, i += 3) out[i] = out[i + 1] = out[i + 2] = gray[p];
  return out;
}

interface Pixels {
  width: number;
  height: number;
  data: Uint8Array;
}

// --- PNG ---

interface PngHeader {
  width: number;
  height: number;
  depth: number;
  colorType: number;
  interlace: number;
}

/** Samples per pixel and allowed bit depths of each PNG colour type. */
const PNG_TYPES: Readonly<Record<number, { channels: number; depths: readonly number[] }>> = {
  0: { channels: 1, depths: [1, 2, 4, 8, 16] },
  2: { channels: 3, depths: [8, 16] },
  3: { channels: 1, depths: [1, 2, 4, 8] },
  4: { channels: 2, depths: [8, 16] },
  6: { channels: 4, depths: [8, 16] },
};

/** Adam7 passes: first column, first row, column step, row step. */
const ADAM7: readonly (readonly [number, number, number, number])[] = [
  [0, 0, 8, 8],
  [4, 0, 8, 8],
  [0, 4, 4, 8],
  [2, 0, 4, 4],
  [0, 2, 2, 4],
  [1, 0, 2, 2],
  [0, 1, 1, 2],
];

function readPngHeader(bytes: Uint8Array, file?: string): PngHeader {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const type = String.fromCharCode(...bytes.subarray(12, 16));
  if (bytes.length < 33 || view.getUint32(8) !== 13 || type !== "IHDR") {
    throw new ImageError(
      "corrupt PNG: missing or truncated IHDR header (the file is damaged; re-export or replace it)",
      { file },
    );
  }
  const header = {
    width: view.getUint32(16),
    height: view.getUint32(20),
    depth: bytes[24],
    colorType: bytes[25],
    interlace: bytes[28],
  };
  const kind = PNG_TYPES[header.colorType];
  if (
    kind === undefined || !kind.depths.includes(header.depth) || bytes[26] !== 0 ||
    bytes[27] !== 0 || header.interlace > 1
  ) {
    throw new ImageError(
      `corrupt PNG: invalid IHDR (colour type ${header.colorType}, bit depth ${header.depth}, ` +
        `compression ${bytes[26]}, filter ${bytes[27]}, interlace ${header.interlace}) ` +
        "(re-export or replace the file)",
      { file },
    );
  }
  return header;
}

/** The sub-images the inflated stream holds: one, or Adam7's seven (empty ones left out). */
function pngPasses(
  header: PngHeader,
): { x0: number; y0: number; dx: number; dy: number; w: number; h: number }[] {
  const { width, height } = header;
  const grid = header.interlace === 1 ? ADAM7 : [[0, 0, 1, 1] as const];
  return grid.map(([x0, y0, dx, dy]) => ({
    x0,
    y0,
    dx,
    dy,
    w: Math.max(0, Math.ceil((width - x0) / dx)),
    h: Math.max(0, Math.ceil((height - y0) / dy)),
  })).filter((p) => p.w > 0 && p.h > 0);
}

/** Undo the per-row filters of one sub-image in place (`raw` starts at its first filter byte). */
function unfilter(
  raw: Uint8Array,
  start: number,
  rows: number,
  rowBytes: number,
  bpp: number,
): boolean {
  const stride = rowBytes + 1;
  for (let r = 0; r < rows; r++) {
    const at = start + r * stride + 1;
    const up = at - stride; // previous row's first byte (unused on the first row)
    const filter = raw[at - 1];
    const first = r === 0;
    switch (filter) {
      case 0:
        break;
      case 1:
        for (let i = bpp; i < rowBytes; i++) raw[at + i] += raw[at + i - bpp];
        break;
      case 2:
        if (!first) { for (let i = 0; i < rowBytes; i++) raw[at + i] += raw[up + i]; }
        break;
      case 3:
        for (let i = 0; i < rowBytes; i++) {
          const left = i >= bpp ? raw[at + i - bpp] : 0;
          raw[at + i] += (left + (first ? 0 : raw[up + i])) >> 1;
        }
        break;
      case 4:
        for (let i = 0; i < rowBytes; i++) {
          const a = i >= bpp ? raw[at + i - bpp] : 0;
          const b = first ? 0 : raw[up + i];
          const c = i >= bpp && !first ? raw[up + i - bpp] : 0;
          const pa = Math.abs(b - c), pb = Math.abs(a - c), pc = Math.abs(a + b - 2 * c);
          raw[at + i] += pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
        }
        break;
      default:
        return false;
    }
  }
  return true;
}

/** IDAT payloads (CRC-checked) and PLTE of a PNG; throws on truncation or a bad CRC. */
function readPngChunks(
  bytes: Uint8Array,
  fail: (what: string) => ImageError,
  file?: string,
): { idat: Uint8Array[]; plte?: Uint8Array } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const idat: Uint8Array[] = [];
  let plte: Uint8Array | undefined;
  for (let at = 8; at + 12 <= bytes.length;) {
    const length = view.getUint32(at);
    const end = at + 12 + length;
    if (end > bytes.length) break;
    const type = String.fromCharCode(...bytes.subarray(at + 4, at + 8));
    if (crc32(bytes.subarray(at + 4, end - 4)) !== view.getUint32(end - 4)) {
      throw fail(`CRC mismatch in the ${type} chunk`);
    }
    const data = bytes.subarray(at + 8, end - 4);
    if (type === "IEND") return { idat, plte };
    if (type === "IDAT") idat.push(data);
    if (type === "PLTE" && idat.length === 0) plte = data;
    at = end;
  }
  throw new ImageError(
    "truncated PNG (no IEND chunk): the file is damaged or was cut off (re-export or replace it)",
    { file },
  );
}

/** Inflate the IDAT stream into exactly `expected` bytes; more output is refused, not made. */
function inflatePng(
  idat: Uint8Array[],
  expected: number,
  fail: (what: string) => ImageError,
): Uint8Array {
  let compressed: Uint8Array;
  if (idat.length === 1) {
    compressed = idat[0];
  } else {
    compressed = new Uint8Array(idat.reduce((n, d) => n + d.length, 0));
    let o = 0;
    for (const d of idat) {
      compressed.set(d, o);
      o += d.length;
    }
  }
  if (compressed.length === 0) throw fail("no image data (IDAT)");
  let raw: Uint8Array;
  try {
    raw = inflateBounded(compressed, expected);
  } catch (err) {
    if (err instanceof InflateOverflow) {
      throw fail(
        `image data inflates past the ${expected} bytes its header's size needs ` +
          "(a lying header or a decompression bomb)",
      );
    }
    throw fail(`zlib: ${codecMessage(err)}`);
  }
  if (raw.length < expected) {
    throw fail(`pixel data is short (${raw.length} of ${expected} bytes)`);
  }
  return raw;
}

/** Multipliers taking 1/2/4/8-bit gray to 0..255. */
const GRAY_SCALE: Readonly<Record<number, number>> = { 1: 255, 2: 85, 4: 17, 8: 1 };

function decodePng(bytes: Uint8Array, channels: 1 | 3, limits: Limits, file?: string): Pixels {
  const header = readPngHeader(bytes, file);
  const { width, height, depth, colorType } = header;
  checkSize(width, height, limits, file);
  const fail = (what: string): ImageError =>
    new ImageError(`corrupt PNG: ${what} (re-export or replace the file)`, { file });
  const { idat, plte } = readPngChunks(bytes, fail, file);
  if (colorType === 3 && (plte === undefined || plte.length < 3)) {
    throw fail("palette image without PLTE");
  }

  const samples = PNG_TYPES[colorType].channels;
  const bitsPerPixel = samples * depth;
  const bpp = Math.max(1, bitsPerPixel >> 3);
  const passes = pngPasses(header);
  const rowBytes = (w: number): number => Math.ceil((w * bitsPerPixel) / 8);
  const expected = passes.reduce((n, p) => n + p.h * (rowBytes(p.w) + 1), 0);
  const raw = inflatePng(idat, expected, fail);

  const pixels = width * height;
  const rgbSource = colorType === 2 || colorType === 3 || colorType === 6;
  const out = new Uint8Array(rgbSource ? pixels * 3 : pixels);
  // Palette: Pillow's starts as a grayscale ramp, and PLTE overwrites its first entries.
  const lut = new Uint8Array(768);
  if (colorType === 3 && plte !== undefined) {
    for (let i = 0; i < 256; i++) lut[3 * i] = lut[3 * i + 1] = lut[3 * i + 2] = i;
    lut.set(plte.subarray(0, Math.min(768, plte.length - (plte.length % 3))));
  }
  const mask = (1 << depth) - 1;
  const grayScale = GRAY_SCALE[depth] ?? 1;

  let start = 0;
  for (const pass of passes) {
    const rb = rowBytes(pass.w);
    if (!unfilter(raw, start, pass.h, rb, bpp)) throw fail("unknown row filter type");
    for (let r = 0; r < pass.h; r++) {
      const at = start + r * (rb + 1) + 1;
      const y = pass.y0 + r * pass.dy;
      for (let c = 0; c < pass.w; c++) {
        const p = y * width + pass.x0 + c * pass.dx;
        if (depth < 8) {
          const bit = c * depth;
          const v = (raw[at + (bit >> 3)] >> (8 - depth - (bit & 7))) & mask;
          if (colorType === 3) {
            out[3 * p] = lut[3 * v];
            out[3 * p + 1] = lut[3 * v + 1];
            out[3 * p + 2] = lut[3 * v + 2];
          } else {
            out[p] = v * grayScale;
          }
        } else if (depth === 8) {
          const i = at + c * samples;
          if (colorType === 3) {
            const v = raw[i];
            out[3 * p] = lut[3 * v];
            out[3 * p + 1] = lut[3 * v + 1];
            out[3 * p + 2] = lut[3 * v + 2];
          } else if (rgbSource) {
            out[3 * p] = raw[i];
            out[3 * p + 1] = raw[i + 1];
            out[3 * p + 2] = raw[i + 2];
          } else {
            out[p] = raw[i];
          }
        } else {
          const i = at + 2 * c * samples;
          if (rgbSource) {
            out[3 * p] = raw[i];
            out[3 * p + 1] = raw[i + 2];
            out[3 * p + 2] = raw[i + 4];
          } else if (colorType === 0) {
            // Mode "I", clipped by convert(); gray+alpha is "LA;16B" (high byte).
            out[p] = raw[i] !== 0 ? 255 : raw[i + 1];
          } else {
            out[p] = raw[i];
          }
        }
      }
    }
    start += pass.h * (rb + 1);
  }
  return {
    width,
    height,
    data: rgbSource ? fromRgb(out, pixels, channels) : fromGray(out, pixels, channels),
  };
}

// --- JPEG ---

const SOF_MARKERS: ReadonlySet<number> = new Set([
  0xc0,
  0xc1,
  0xc2,
  0xc3,
  0xc5,
  0xc6,
  0xc7,
  0xc9,
  0xca,
  0xcb,
  0xcd,
  0xce,
  0xcf,
]);

interface JpegHeader {
  width: number;
  height: number;
  /** Component ids and sampling factors, in frame order. */
  components: { id: number; h: number; v: number }[];
  /** Saw an APP0 JFIF marker. */
  jfif: boolean;
  /** The last APP14 Adobe marker's transform code (libjpeg keeps the last one). */
  adobeTransform?: number;
  /** Where each Adobe marker's transform byte is in the file. */
  adobeOffsets: number[];
}

/** The markers before the first scan (libjpeg's `jpeg_read_header`), or undefined if no SOF. */
function readJpegHeader(bytes: Uint8Array): JpegHeader | undefined {
  let frame: Pick<JpegHeader, "width" | "height" | "components"> | undefined;
  let jfif = false;
  let adobeTransform: number | undefined;
  const adobeOffsets: number[] = [];
  const ascii = (at: number, n: number): string =>
    String.fromCharCode(...bytes.subarray(at, Math.min(at + n, bytes.length)));
  let i = 2;
  while (i + 4 <= bytes.length) {
    if (bytes[i] !== 0xff) break;
    const marker = bytes[i + 1];
    if (marker === 0xff) {
      i++; // fill byte
      continue;
    }
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd8)) {
      i += 2; // markers without a length
      continue;
    }
    if (marker === 0xda || marker === 0xd9) break;
    const length = (bytes[i + 2] << 8) | bytes[i + 3];
    const data = i + 4;
    // libjpeg's tests: at least 14 bytes of "JFIF\0..." / 12 of "Adobe...".
    if (marker === 0xe0 && length >= 16 && ascii(data, 5) === "JFIF\0") jfif = true;
    if (marker === 0xee && length >= 14 && ascii(data, 5) === "Adobe") {
      adobeTransform = bytes[data + 11];
      adobeOffsets.push(data + 11);
    }
    if (SOF_MARKERS.has(marker) && frame === undefined && data + 6 <= bytes.length) {
      const count = bytes[data + 5];
      const components = [];
      for (let c = 0; c < count && data + 8 + 3 * c < bytes.length; c++) {
        const at = data + 6 + 3 * c;
        components.push({ id: bytes[at], h: bytes[at + 1] >> 4, v: bytes[at + 1] & 15 });
      }
      frame = {
        height: (bytes[data + 1] << 8) | bytes[data + 2],
        width: (bytes[data + 3] << 8) | bytes[data + 4],
        components,
      };
    }
    i += 2 + length;
  }
  return frame === undefined ? undefined : { ...frame, jfif, adobeTransform, adobeOffsets };
}

/** libjpeg's guess (`default_decompress_parms`) of whether 3 components are YCbCr or RGB. */
function jpegIsYcc(header: JpegHeader): boolean {
  if (header.jfif) return true;
  if (header.adobeTransform !== undefined) return header.adobeTransform !== 0;
  const [a, b, c] = header.components.map((k) => k.id);
  return !(a === 0x52 && b === 0x47 && c === 0x42); // "RGB" component ids
}

interface YccTables {
  cr2r: Int32Array;
  cb2b: Int32Array;
  cr2g: Int32Array;
  cb2g: Int32Array;
}

let yccTables: YccTables | undefined;

/** libjpeg's `build_ycc_rgb_table`: 16.16 fixed point, rounded. */
function getYccTables(): YccTables {
  if (yccTables !== undefined) return yccTables;
  const fix = (x: number): number => Math.floor(x * 65536 + 0.5);
  const half = 1 << 15;
  const t = {
    cr2r: new Int32Array(256),
    cb2b: new Int32Array(256),
    cr2g: new Int32Array(256),
    cb2g: new Int32Array(256),
  };
  for (let i = 0; i < 256; i++) {
    const x = i - 128;
    t.cr2r[i] = (fix(1.402) * x + half) >> 16;
    t.cb2b[i] = (fix(1.772) * x + half) >> 16;
    t.cr2g[i] = -fix(0.71414) * x;
    t.cb2g[i] = -fix(0.34414) * x + half;
  }
  return (yccTables = t);
}

/**
 * One full-resolution row of a subsampled component, computed from its downsampled plane the
 * way libjpeg's fancy upsamplers do (`h2v1`, `h1v2`, `h2v2`): each output sample weighs the
 * nearer input sample 3/4 and the farther 1/4 along each doubled axis, with libjpeg's
 * alternating rounding biases. Edges repeat the outermost sample.
 */
type RowUpsampler = (y: number, out: Uint8Array) => void;

function fancyUpsampler(
  plane: Uint8Array,
  dw: number,
  dh: number,
  h2: boolean,
  v2: boolean,
): RowUpsampler {
  const sums = new Int32Array(dw);
  return (y, out) => {
    const j = v2 ? y >> 1 : y;
    const near = j * dw;
    const far = v2 ? ((y & 1) === 0 ? Math.max(j - 1, 0) : Math.min(j + 1, dh - 1)) * dw : near;
    if (!h2) {
      const bias = (y & 1) === 0 ? 1 : 2;
      for (let i = 0; i < dw; i++) out[i] = (3 * plane[near + i] + plane[far + i] + bias) >> 2;
      return;
    }
    // h2v1 works on 4x samples so that both share h2v2's ">> 4" code: (3a + b + 1) >> 2 and
    // (3a + b + 2) >> 2 equal (12a + 4b + 4) >> 4 and (12a + 4b + 8) >> 4.
    for (let i = 0; i < dw; i++) {
      sums[i] = v2 ? 3 * plane[near + i] + plane[far + i] : 4 * plane[near + i];
    }
    const lo = v2 ? 8 : 4, hi = v2 ? 7 : 8;
    out[0] = v2 ? (4 * sums[0] + 8) >> 4 : plane[near];
    out[1] = (3 * sums[0] + sums[1] + hi) >> 4;
    for (let i = 1; i < dw - 1; i++) {
      const s = 3 * sums[i];
      out[2 * i] = (s + sums[i - 1] + lo) >> 4;
      out[2 * i + 1] = (s + sums[i + 1] + hi) >> 4;
    }
    out[2 * dw - 2] = (3 * sums[dw - 1] + sums[dw - 2] + lo) >> 4;
    out[2 * dw - 1] = v2 ? (4 * sums[dw - 1] + 7) >> 4 : plane[near + dw - 1];
  };
}

/**
 * Turn jpeg-js's raw component samples (`data`: 3 interleaved, each component upsampled by
 * replication) into RGB in place, upsampling 2x1, 1x2 and 2x2 subsampled components with
 * libjpeg's fancy upsamplers (other factors replicate, as libjpeg's `int_upsample` does) and
 * converting YCbCr with libjpeg's tables.
 */
function jpegToRgb(
  data: Uint8Array,
  width: number,
  height: number,
  header: JpegHeader,
  ycc: boolean,
): void {
  const comps = header.components;
  const maxH = Math.max(...comps.map((c) => c.h));
  const maxV = Math.max(...comps.map((c) => c.v));
  const upsamplers: (RowUpsampler | undefined)[] = comps.map((comp, k) => {
    const rh = maxH / comp.h, rv = maxV / comp.v;
    const dw = Math.ceil((width * comp.h) / maxH), dh = Math.ceil((height * comp.v) / maxV);
    // libjpeg: h2v1/h2v2 fancy only when the component is more than 2 samples wide.
    const fancy = (rh === 2 && (rv === 1 || rv === 2) && dw > 2) || (rh === 1 && rv === 2);
    if (!fancy) return undefined;
    const plane = new Uint8Array(dw * dh);
    for (let j = 0; j < dh; j++) {
      for (let i = 0; i < dw; i++) plane[j * dw + i] = data[3 * (j * rv * width + i * rh) + k];
    }
    return fancyUpsampler(plane, dw, dh, rh === 2, rv === 2);
  });
  const rows = upsamplers.map((u) => (u !== undefined ? new Uint8Array(2 * width + 2) : data));
  const offs = [0, 0, 0], steps = [0, 0, 0];
  const t = ycc ? getYccTables() : undefined;
  for (let y = 0; y < height; y++) {
    const base = 3 * y * width;
    for (let k = 0; k < 3; k++) {
      const u = upsamplers[k];
      // A replicated component is read in place from `data`, a fancy one from its row buffer.
      if (u !== undefined) u(y, rows[k]);
      offs[k] = u !== undefined ? 0 : base + k;
      steps[k] = u !== undefined ? 1 : 3;
    }
    const [r0, r1, r2] = rows, [s0, s1, s2] = steps;
    let [o0, o1, o2] = offs;
    for (let x = 0, o = base; x < width; x++, o += 3, o0 += s0, o1 += s1, o2 += s2) {
      const a = r0[o0], b = r1[o1], c = r2[o2];
      if (t === undefined) {
        data[o] = a;
        data[o + 1] = b;
        data[o + 2] = c;
      } else {
        data[o] = clamp255(a + t.cr2r[c]);
        data[o + 1] = clamp255(a + ((t.cb2g[b] + t.cr2g[c]) >> 16));
        data[o + 2] = clamp255(a + t.cb2b[b]);
      }
    }
  }
}

function clamp255(v: number): number {
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

function decodeJpeg(bytes: Uint8Array, channels: 1 | 3, limits: Limits, file?: string): Pixels {
  const header = readJpegHeader(bytes);
  const fail = (what: string): ImageError =>
    new ImageError(
      `${what} (re-export it as a baseline or progressive 8-bit JPEG, or as PNG)`,
      { file },
    );
  if (header === undefined) throw fail("corrupt JPEG: no frame (SOF) header before the scan");
  if (header.height === 0) throw fail("unsupported JPEG: height given by a DNL marker");
  checkSize(header.width, header.height, limits, file);
  const count = header.components.length;
  if (count !== 1 && count !== 3 && count !== 4) {
    throw fail(`unsupported JPEG: ${count} colour components (1, 3 or 4 are supported)`);
  }
  const maxH = Math.max(...header.components.map((c) => c.h));
  const maxV = Math.max(...header.components.map((c) => c.v));
  if (header.components.some((c) => c.h < 1 || c.v < 1 || maxH % c.h !== 0 || maxV % c.v !== 0)) {
    // libjpeg refuses these too ("Fractional sampling not implemented yet").
    throw fail("unsupported JPEG: fractional chroma sampling factors");
  }
  let input = bytes;
  const ycc = count === 3 && jpegIsYcc(header);
  if (count === 3 && header.adobeOffsets.some((o) => bytes[o] !== 0)) {
    // jpeg-js lets a nonzero Adobe transform force its own colour conversion; we do that step.
    input = bytes.slice();
    for (const o of header.adobeOffsets) input[o] = 0;
  }
  let decoded;
  try {
    const maxPixels = 2 * limits.maxPixels;
    decoded = decodeJpegCodec(input, {
      useTArray: true,
      formatAsRGBA: false,
      colorTransform: count === 3 ? false : undefined,
      maxResolutionInMP: maxPixels / 1e6,
      maxMemoryUsageInMB: Math.max(512, Math.ceil((maxPixels * JPEG_BYTES_PER_PIXEL) / 2 ** 20)),
    });
  } catch (err) {
    const what = endsWith(bytes, [0xff, 0xd9])
      ? "corrupt or unsupported JPEG"
      : "truncated JPEG (no end-of-image marker)";
    throw new ImageError(
      `${what}: ${codecMessage(err)} (re-export it as a baseline or progressive 8-bit JPEG, ` +
        "or as PNG)",
      { file, cause: err },
    );
  }
  const { width, height, data } = decoded;
  const pixels = width * height;
  if (width !== header.width || height !== header.height || data.length !== pixels * 3) {
    throw new ImageError(
      `corrupt JPEG: decoder returned ${data.length} bytes for ${width}x${height} ` +
        "(re-export or replace the file)",
      { file },
    );
  }
  if (count === 3) jpegToRgb(data, width, height, header, ycc);
  // jpeg-js replicates 1-component (gray) JPEGs to RGB; PIL keeps those as mode "L".
  if (channels === 1 && count === 1) {
    const gray = new Uint8Array(pixels);
    for (let p = 0; p < pixels; p++) gray[p] = data[3 * p];
    return { width, height, data: gray };
  }
  return { width, height, data: fromRgb(data, pixels, channels) };
}

/**
 * Decode PNG or JPEG bytes like PIL's `Image.open(f).convert("RGB")` (or `convert("L")` with
 * `channels: 1`). The format is sniffed from the magic bytes; see the module docs for the exact
 * PIL conversions (alpha dropped, palettes expanded, 16-bit reduced, gray replicated).
 *
 * @param bytes The encoded file.
 * @param options Output channels, a file name for errors, and the pixel limit.
 * @returns 8-bit HWC pixels.
 * @throws {ImageError} For unsupported formats, corrupt data, or images over `maxPixels`.
 *
 * @example
 * ```ts
 * import { decodeImage, encodePng } from "./image.ts";
 * const png = encodePng({ width: 2, height: 1, channels: 4, data: new Uint8Array(8).fill(9) });
 * const img = decodeImage(png, { source: "tiny.png" });
 * console.log(img.width, img.height, img.channels, img.data); // 2 1 3 [9, 9, 9, 9, 9, 9]
 * ```
 */
export function decodeImage(bytes: Uint8Array, options: DecodeImageOptions = {}): DecodedImage {
  const file = options.source;
  const channels = options.channels ?? 3;
  const maxPixels = options.maxPixels ?? MAX_IMAGE_PIXELS;
  if (channels !== 1 && channels !== 3) {
    throw new ImageError(`channels must be 1 or 3, got ${String(channels)}`, { file });
  }
  if (!(maxPixels > 0)) {
    throw new ImageError(`maxPixels must be a positive number, got ${maxPixels}`, { file });
  }
  const limits: Limits = {
    maxPixels,
    onWarning: options.onWarning ?? ((message) => console.warn(message)),
  };
  if (bytes.length === 0) {
    throw new ImageError("the file is empty (re-export or replace it)", { file });
  }
  let width: number, height: number, data: Uint8Array;
  if (startsWith(bytes, PNG_SIGNATURE)) {
    ({ width, height, data } = decodePng(bytes, channels, limits, file));
  } else if (startsWith(bytes, [0xff, 0xd8])) {
    ({ width, height, data } = decodeJpeg(bytes, channels, limits, file));
  } else {
    const kind = guessFormat(bytes);
    throw new ImageError(
      "unsupported image format (PNG and JPEG are supported)" +
        (kind !== undefined
          ? `: this looks like ${kind}; convert it to PNG`
          : "; convert it to PNG"),
      { file },
    );
  }
  const image: DecodedImage = { width, height, channels, data };
  if (file !== undefined) image.source = file;
  return image;
}

function ioError(err: unknown, file: string, op: "read" | "write"): ImageError {
  const hints = { pathFlag: "image", kind: ".png or .jpg file" };
  const reason = fileErrorReason(err, op, hints);
  // Codec-specific wording for anything that is not a plain file-system error.
  const generic = reason.startsWith(`cannot ${op} the file:`);
  return new ImageError(generic ? `cannot ${op} the file: ${codecMessage(err)}` : reason, {
    file,
    cause: err,
  });
}

/**
 * Read at most `limit` bytes of an open regular file of `size` bytes; undefined if longer.
 * `onRead` receives the bytes read so far.
 */
async function readBounded(
  f: RegularFile,
  size: number,
  limit: number,
  onRead?: (loaded: number) => void,
): Promise<Uint8Array | undefined> {
  // One byte of room past the stat size (or the limit) shows a file that grew while read.
  let buf = new Uint8Array(Math.min(size, limit) + 1);
  let n = 0;
  for (;;) {
    if (n === buf.length) {
      if (n > limit) return undefined;
      const bigger = new Uint8Array(Math.min(2 * n, limit + 1));
      bigger.set(buf);
      buf = bigger;
    }
    const got = await f.read(buf.subarray(n), n);
    if (got === 0) return buf.subarray(0, n);
    n += got;
    onRead?.(n);
  }
}

/**
 * Read and decode a PNG or JPEG image (see {@linkcode decodeImage}) from a path, a URL or a
 * `Response`. At most `maxFileBytes` (default {@linkcode MAX_IMAGE_FILE_BYTES}, 256 MiB) are
 * read, whatever the source.
 *
 * - A path (or `file:` URL) is read in Deno or in Node (through `node:fs/promises`). Only
 *   regular files are read: the path is stat-ed first, so a FIFO cannot block and a device such
 *   as `/dev/zero` is refused unread; a file over `maxFileBytes` is refused before reading.
 * - A `URL` is fetched and its body streamed (into one buffer of the `Content-Length` when
 *   there is one); a `Response` is streamed as it is. A non-2xx status is one line, `loadImage:
 *   GET <url> answered 404 Not Found ...`.
 *
 * In a page, for an image already on screen (a canvas, an `ImageBitmap`, an `<img>`), use
 * `imageFromPixels` (io/pixels.ts) instead.
 *
 * @param source A path, a `URL` or a `Response`.
 * @param options As for {@linkcode decodeImage}, plus `maxFileBytes`, `onProgress` and `signal`;
 *   `source` defaults to the path or the URL.
 * @returns 8-bit HWC pixels with `source` set.
 * @throws {ImageError} When the file is missing, unreadable (needs `--allow-read`), not a regular
 *   file, too large, or invalid; when a fetch fails, answers a non-2xx status or is cut short.
 *
 * @example
 * ```ts ignore
 * import { loadImage } from "./image.ts";
 * const img = await loadImage("cat.png", { maxPixels: 200_000_000 });
 * const remote = await loadImage(new URL("https://example.com/cat.jpg"), {
 *   onProgress: (loaded, total) => console.log(loaded, total),
 * });
 * console.log(img.width, img.height, img.channels, remote.source);
 * ```
 */
export async function loadImage(
  source: ImageSource,
  options: LoadImageOptions = {},
): Promise<DecodedImage> {
  const fetched = isResponse(source) || (source instanceof URL && source.protocol !== "file:");
  const name = isResponse(source)
    ? source.url || "Response"
    : source instanceof URL && fetched
    ? source.href
    : displayPath(source);
  const file = options.source ?? name;
  const limit = options.maxFileBytes ?? MAX_IMAGE_FILE_BYTES;
  if (!(limit >= 0)) {
    throw new ImageError(`maxFileBytes must be a non-negative number, got ${limit}`, { file });
  }
  const tooBig = (size: string): ImageError =>
    new ImageError(
      `the file is ${size} bytes, over the limit of ${limit} (maxFileBytes); ` +
        "if it really is an image you trust, raise maxFileBytes",
      { file },
    );
  const bytes = fetched
    ? await downloadImage(source, limit, tooBig, options)
    : await readImageFile(source, file, limit, tooBig, options.onProgress);
  return decodeImage(bytes, { ...options, source: file });
}

async function readImageFile(
  path: string | URL,
  file: string,
  limit: number,
  tooBig: (size: string) => ImageError,
  onProgress: ProgressCallback | undefined,
): Promise<Uint8Array> {
  if (typeof path === "string" && looksLikeUrl(path)) {
    throw new ImageError(
      `a string is read as a file path; to download it, pass a URL: ` +
        `loadImage(new URL(${JSON.stringify(path)}))`,
      { file },
    );
  }
  const hints = { pathFlag: "the path", kind: ".png or .jpg file" };
  let bytes: Uint8Array | undefined;
  let size = 0;
  try {
    const refuse = (why: string) => new ImageError(why, { file });
    const f = await openRegularFile(path, hints, refuse);
    try {
      size = f.size;
      // Opening a regular file reads nothing: the size is checked before any byte is.
      if (size > limit) throw tooBig(String(size));
      onProgress?.(0, size);
      bytes = await readBounded(f, size, limit, onProgress && ((n) => onProgress(n, size)));
    } finally {
      f.close();
    }
  } catch (err) {
    if (err instanceof ImageError) throw err;
    throw ioError(err, file, "read");
  }
  if (bytes === undefined) throw tooBig(`more than ${limit}`);
  // The file changed size while read: the last call still ends at the total.
  if (bytes.length !== size) onProgress?.(bytes.length, bytes.length);
  return bytes;
}

async function downloadImage(
  source: URL | Response,
  limit: number,
  tooBig: (size: string) => ImageError,
  options: LoadImageOptions,
): Promise<Uint8Array> {
  const body = await openBody(source, {
    caller: "loadImage",
    error: (line, url, cause) => {
      const err = new ImageError(line, { cause });
      err.file = options.source ?? url;
      return err;
    },
    onProgress: options.onProgress,
    signal: options.signal,
  });
  return await readBody(body, limit, tooBig);
}

/**
 * Turn 8-bit RGBA pixels (a canvas's `ImageData`) into the image {@linkcode decodeImage} returns,
 * by PIL's rules for an RGBA image: `convert("RGB")` drops alpha, never composites it (a
 * transparent pixel keeps its colour), and `convert("L")` (`channels: 1`) is the luma of R, G, B.
 * The pixels are copied.
 *
 * @param pixels Width, height and `width * height * 4` bytes of RGBA.
 * @param options Output channels (default 3) and a name for errors and `source`.
 * @returns 8-bit HWC pixels.
 * @throws {ImageError} When the size is not positive integers or the data length does not match.
 *
 * @example
 * ```ts
 * import { imageFromRgba } from "./image.ts";
 * const img = imageFromRgba({ width: 1, height: 1, data: new Uint8ClampedArray([10, 20, 30, 0]) });
 * console.log(img.channels, img.data); // 3 Uint8Array [10, 20, 30]
 * ```
 */
export function imageFromRgba(pixels: RgbaPixels, options: RgbaImageOptions = {}): DecodedImage {
  const file = options.source;
  const channels = options.channels ?? 3;
  if (channels !== 1 && channels !== 3) {
    throw new ImageError(`channels must be 1 or 3, got ${String(channels)}`, { file });
  }
  const { width, height, data } = pixels;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new ImageError(
      `pixels are ${width}x${height}; width and height must be positive integers ` +
        "(draw the image before reading it)",
      { file },
    );
  }
  const isBytes = data instanceof Uint8ClampedArray || data instanceof Uint8Array;
  if (!isBytes || data.length !== width * height * 4) {
    const got = isBytes ? `${data.length} bytes` : `a ${describeValue(data)}`;
    throw new ImageError(
      `RGBA pixel data has ${got}, expected ${width}x${height}x4 = ${width * height * 4} ` +
        "(pass ImageData, or a Uint8ClampedArray of 4 bytes a pixel)",
      { file },
    );
  }
  const image: DecodedImage = {
    width,
    height,
    channels,
    data: fromRgb(data, width * height, channels, 4),
  };
  if (file !== undefined) image.source = file;
  return image;
}

function describeValue(value: unknown): string {
  if (value === null) return "null";
  if (typeof value !== "object") return typeof value;
  return (value as { constructor?: { name?: string } }).constructor?.name ?? "object";
}

function checkRaw(image: RawImage, file?: string): void {
  const { width, height, channels, data } = image;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new ImageError(`cannot encode a ${width}x${height} image (use positive integers)`, {
      file,
    });
  }
  if (channels !== 1 && channels !== 3 && channels !== 4) {
    throw new ImageError(`cannot encode ${String(channels)} channels (use 1, 3 or 4)`, { file });
  }
  if (!(data instanceof Uint8Array) || data.length !== width * height * channels) {
    throw new ImageError(
      `pixel data has ${data?.length} bytes, expected ${width}x${height}x${channels} = ` +
        `${width * height * channels} (HWC uint8)`,
      { file },
    );
  }
}

/**
 * Encode 8-bit HWC pixels as a PNG (gray, RGB or RGBA by channel count).
 *
 * @param image Width, height, channels (1, 3 or 4) and `height * width * channels` bytes.
 * @returns The PNG file bytes.
 * @throws {ImageError} When the dimensions, channel count or data length are invalid.
 *
 * @example
 * ```ts
 * import { encodePng } from "./image.ts";
 * const png = encodePng({ width: 1, height: 1, channels: 3, data: new Uint8Array([255, 0, 0]) });
 * console.log(png.subarray(1, 4)); // "PNG" magic: [80, 78, 71]
 * ```
 */
export function encodePng(image: RawImage): Uint8Array {
  checkRaw(image);
  try {
    return encodePngCodec({
      width: image.width,
      height: image.height,
      channels: image.channels,
      depth: 8,
      data: image.data,
    });
  } catch (err) {
    throw new ImageError(`cannot encode PNG: ${codecMessage(err)}`, { cause: err });
  }
}

/**
 * Encode pixels as PNG and save them atomically: the bytes go to a temp file beside `path`,
 * which is then renamed over it, so a failed save never leaves a half-written file.
 *
 * @param path Destination file path or `file:` URL.
 * @param image The pixels, as for {@linkcode encodePng}.
 * @throws {ImageError} When the image is invalid (nothing is written) or the write fails
 *   (missing directory, or no `--allow-write`).
 *
 * @example
 * ```ts ignore
 * import { saveImage } from "./image.ts";
 * await saveImage("out.png", { width: 1, height: 1, channels: 1, data: new Uint8Array([128]) });
 * ```
 */
export async function saveImage(path: string | URL, image: RawImage): Promise<void> {
  const file = displayPath(path);
  let bytes: Uint8Array;
  try {
    bytes = encodePng(image);
  } catch (err) {
    if (err instanceof ImageError && err.file === undefined) {
      throw new ImageError(err.message, { file, cause: err });
    }
    throw err;
  }
  await writeFileAtomic(file, bytes).catch((err) => {
    throw ioError(err, file, "write");
  });
}

/**
 * The image's raw 0..255 values as float32 tensor data, HWC with a batch of 1. The graph's
 * `toTensor` op turns this into CHW / 255, like torchvision's `ToTensor`.
 *
 * @param img A decoded image.
 * @returns `{ shape: [1, H, W, C], data }`.
 *
 * @example
 * ```ts
 * import { imageToTensorData } from "./image.ts";
 * const t = imageToTensorData({ width: 1, height: 1, channels: 3, data: new Uint8Array([1, 2, 3]) });
 * console.log(t.shape, t.data); // [1, 1, 1, 3] Float32Array [1, 2, 3]
 * ```
 */
export function imageToTensorData(img: DecodedImage): ImageTensorData {
  const expected = img.width * img.height * img.channels;
  if (img.data.length !== expected) {
    throw new ImageError(
      `image data has ${img.data.length} bytes, expected ${img.height}x${img.width}x` +
        `${img.channels} = ${expected}`,
      { file: img.source },
    );
  }
  return { shape: [1, img.height, img.width, img.channels], data: Float32Array.from(img.data) };
}
