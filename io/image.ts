/**
 * Decoding PNG and JPEG files into 8-bit pixels the way PIL's `Image.open(f).convert("RGB")`
 * does (the seed's torchvision pipeline), and encoding 8-bit PNGs. Codecs: `fast-png` and
 * `jpeg-js`; this module only sniffs headers, enforces limits and converts pixel layouts.
 *
 * PIL conventions followed (Pillow 9.4 `PngImagePlugin` modes + `Convert.c`):
 * - alpha is dropped, never composited (`rgba2rgb` copies R, G, B);
 * - grayscale (L, LA) is replicated to R = G = B;
 * - palette images are looked up through PLTE (tRNS alpha dropped; indices past the end of
 *   PLTE read as black, as in Pillow's zero-initialised palette);
 * - 1/2/4-bit grayscale is scaled to 0..255 (`1` -> 0/255, `L;2` -> x85, `L;4` -> x17);
 * - 16-bit RGB, RGBA and gray+alpha keep the high byte (`RGB;16B`, `RGBA;16B`, `LA;16B`);
 * - 16-bit grayscale opens as mode `I` and `convert("RGB")`/`convert("L")` CLIP it to 0..255
 *   (`i2rgb`/`i2l`), so values >= 255 become 255. This is PIL's behaviour, kept on purpose;
 * - RGB -> L (`channels: 1`) uses `L24`: `(R*19595 + G*38470 + B*7471 + 0x8000) >> 16`, the
 *   rounded 16.16 fixed-point form of ITU-R 601-2 `R*299/1000 + G*587/1000 + B*114/1000`;
 * - no EXIF orientation, gamma or ICC handling (`convert` does none).
 *
 * JPEG pixels come from jpeg-js, whose IDCT and chroma upsampling differ from libjpeg's, so
 * JPEG values can differ from PIL's by a few levels (PNG decoding is exact).
 *
 * @module
 */

import { fileErrorReason, writeFileAtomic } from "./files.ts";
import { decode as decodePngCodec, encode as encodePngCodec } from "npm:fast-png@8.0.0";
import { decode as decodeJpegCodec } from "npm:jpeg-js@0.4.4";

/** Default {@linkcode DecodeImageOptions.maxPixels}: 100 megapixels. */
const DEFAULT_MAX_PIXELS = 100_000_000;

/** jpeg-js needs about this many bytes per pixel while decoding (coefficients + output). */
const JPEG_BYTES_PER_PIXEL = 24;

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

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
 * const opts: DecodeImageOptions = { channels: 1, maxPixels: 4096 * 4096 };
 * ```
 */
export interface DecodeImageOptions {
  /** 3 (default) for PIL `convert("RGB")`, 1 for `convert("L")` (gray sources stay gray). */
  channels?: 1 | 3;
  /** File name used in error messages and copied to {@linkcode DecodedImage.source}. */
  source?: string;
  /** Refuse images with more than this many pixels, before allocating (default 100M). */
  maxPixels?: number;
}

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

/** The IEND chunk: length 0, type, CRC. */
const PNG_IEND = [0, 0, 0, 0, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82];

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

function checkSize(width: number, height: number, maxPixels: number, file?: string): void {
  if (width <= 0 || height <= 0) {
    throw new ImageError(
      `image header says ${width}x${height} pixels (the file is corrupt; re-export or replace it)`,
      { file },
    );
  }
  const pixels = width * height;
  if (pixels > maxPixels) {
    throw new ImageError(
      `image is ${width}x${height} = ${pixels} pixels, over the limit of ${maxPixels} ` +
        "(downscale it, or raise maxPixels if you trust the file)",
      { file },
    );
  }
}

/** PIL's RGB -> L (`L24` in Convert.c): rounded fixed-point ITU-R 601-2 luma. */
function luma(r: number, g: number, b: number): number {
  return (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16;
}

/** RGB bytes -> the requested channel count (3: as is; 1: PIL luma). */
function fromRgb(rgb: Uint8Array, pixels: number, channels: 1 | 3): Uint8Array {
  if (channels === 3) return rgb;
  const out = new Uint8Array(pixels);
  for (let p = 0, i = 0; p < pixels; p++, i += 3) out[p] = luma(rgb[i], rgb[i + 1], rgb[i + 2]);
  return out;
}

/** Gray bytes -> the requested channel count (1: as is; 3: replicated). */
function fromGray(gray: Uint8Array, pixels: number, channels: 1 | 3): Uint8Array {
  if (channels === 1) return gray;
  const out = new Uint8Array(pixels * 3);
  for (let p = 0, i = 0; p < pixels; p++, i += 3) out[i] = out[i + 1] = out[i + 2] = gray[p];
  return out;
}

/** Unpack 1/2/4/8-bit samples (rows padded to whole bytes) to one sample per byte. */
function unpackSamples(
  packed: ArrayLike<number>,
  width: number,
  height: number,
  depth: number,
): Uint8Array {
  const out = new Uint8Array(width * height);
  if (depth === 8) {
    for (let i = 0; i < out.length; i++) out[i] = packed[i];
    return out;
  }
  const rowBytes = Math.ceil((width * depth) / 8);
  const mask = (1 << depth) - 1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const bit = x * depth;
      const byte = packed[y * rowBytes + (bit >> 3)];
      out[y * width + x] = (byte >> (8 - depth - (bit & 7))) & mask;
    }
  }
  return out;
}

interface PngHeader {
  width: number;
  height: number;
  depth: number;
  colorType: number;
  interlace: number;
}

function readPngHeader(bytes: Uint8Array, file?: string): PngHeader {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const type = String.fromCharCode(...bytes.subarray(12, 16));
  if (bytes.length < 33 || view.getUint32(8) !== 13 || type !== "IHDR") {
    throw new ImageError(
      "corrupt PNG: missing or truncated IHDR header (the file is damaged; re-export or replace it)",
      { file },
    );
  }
  return {
    width: view.getUint32(16),
    height: view.getUint32(20),
    depth: bytes[24],
    colorType: bytes[25],
    interlace: bytes[28],
  };
}

interface Pixels {
  width: number;
  height: number;
  data: Uint8Array;
}

function decodePng(
  bytes: Uint8Array,
  channels: 1 | 3,
  maxPixels: number,
  file?: string,
): Pixels {
  const header = readPngHeader(bytes, file);
  const { width, height } = header;
  checkSize(width, height, maxPixels, file);
  if (header.interlace === 1 && header.depth < 8) {
    // fast-png 8.0.0 treats each sub-byte sample as a whole byte in Adam7 passes.
    throw new ImageError(
      `interlaced ${header.depth}-bit PNGs are not supported ` +
        "(re-save the image without interlacing or at 8 bits per sample)",
      { file },
    );
  }
  let png;
  try {
    png = decodePngCodec(bytes, { checkCrc: true });
  } catch (err) {
    const what = endsWith(bytes, PNG_IEND) ? "corrupt PNG" : "truncated PNG (no IEND chunk)";
    throw new ImageError(
      `${what}: ${codecMessage(err)} (the file is damaged; re-export or replace it)`,
      { file, cause: err },
    );
  }
  const pixels = width * height;
  const { depth, data } = png;
  const fail = (what: string): ImageError =>
    new ImageError(`corrupt PNG: ${what} (re-export or replace the file)`, { file });
  const expected = depth < 8 ? Math.ceil((width * depth) / 8) * height : pixels * png.channels;
  if (data.length < expected) {
    throw fail(`pixel data is short (${data.length} of ${expected} samples)`);
  }

  if (header.colorType === 3) {
    const palette = png.palette;
    if (palette === undefined || palette.length === 0) throw fail("palette image without PLTE");
    const index = unpackSamples(data, width, height, depth);
    const rgb = new Uint8Array(pixels * 3);
    for (let p = 0; p < pixels; p++) {
      const color = palette[index[p]];
      if (color === undefined) continue; // past the end of PLTE: black
      rgb[3 * p] = color[0];
      rgb[3 * p + 1] = color[1];
      rgb[3 * p + 2] = color[2];
    }
    return { width, height, data: fromRgb(rgb, pixels, channels) };
  }

  if (png.channels === 1 || png.channels === 2) {
    const stride = png.channels;
    let gray: Uint8Array;
    if (depth === 16) {
      gray = new Uint8Array(pixels);
      // Gray-only is mode "I" in PIL (clipped); gray+alpha is "LA;16B" (high byte).
      for (let p = 0; p < pixels; p++) {
        const v = data[p * stride];
        gray[p] = stride === 1 ? Math.min(v, 255) : v >> 8;
      }
    } else if (depth === 8) {
      gray = new Uint8Array(pixels);
      for (let p = 0; p < pixels; p++) gray[p] = data[p * stride];
    } else {
      gray = unpackSamples(data, width, height, depth);
      const scale = 255 / ((1 << depth) - 1);
      for (let p = 0; p < pixels; p++) gray[p] = gray[p] * scale;
    }
    return { width, height, data: fromGray(gray, pixels, channels) };
  }

  if (png.channels === 3 || png.channels === 4) {
    const stride = png.channels;
    const shift = depth === 16 ? 8 : 0;
    const rgb = new Uint8Array(pixels * 3);
    for (let p = 0, i = 0, o = 0; p < pixels; p++, i += stride, o += 3) {
      rgb[o] = data[i] >> shift;
      rgb[o + 1] = data[i + 1] >> shift;
      rgb[o + 2] = data[i + 2] >> shift;
    }
    return { width, height, data: fromRgb(rgb, pixels, channels) };
  }
  throw fail(`unsupported PNG color type ${header.colorType}`);
}

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

/** Width, height and component count from the first SOF segment, if one precedes the scan. */
function readJpegFrame(
  bytes: Uint8Array,
): { width: number; height: number; components: number } | undefined {
  let i = 2;
  while (i + 4 <= bytes.length) {
    if (bytes[i] !== 0xff) return undefined;
    const marker = bytes[i + 1];
    if (marker === 0xff) {
      i++; // fill byte
      continue;
    }
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd8)) {
      i += 2; // markers without a length
      continue;
    }
    if (marker === 0xda || marker === 0xd9) return undefined;
    const length = (bytes[i + 2] << 8) | bytes[i + 3];
    if (SOF_MARKERS.has(marker)) {
      if (i + 10 > bytes.length) return undefined;
      return {
        height: (bytes[i + 5] << 8) | bytes[i + 6],
        width: (bytes[i + 7] << 8) | bytes[i + 8],
        components: bytes[i + 9],
      };
    }
    i += 2 + length;
  }
  return undefined;
}

function decodeJpeg(
  bytes: Uint8Array,
  channels: 1 | 3,
  maxPixels: number,
  file?: string,
): Pixels {
  const frame = readJpegFrame(bytes);
  if (frame !== undefined && frame.height !== 0) {
    checkSize(frame.width, frame.height, maxPixels, file);
  }
  let decoded;
  try {
    decoded = decodeJpegCodec(bytes, {
      useTArray: true,
      formatAsRGBA: false,
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
  checkSize(width, height, maxPixels, file);
  const pixels = width * height;
  if (data.length !== pixels * 3) {
    throw new ImageError(
      `corrupt JPEG: decoder returned ${data.length} bytes for ${width}x${height} ` +
        "(re-export or replace the file)",
      { file },
    );
  }
  // jpeg-js replicates 1-component (gray) JPEGs to RGB; PIL keeps those as mode "L".
  if (channels === 1 && frame?.components === 1) {
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
  const maxPixels = options.maxPixels ?? DEFAULT_MAX_PIXELS;
  if (channels !== 1 && channels !== 3) {
    throw new ImageError(`channels must be 1 or 3, got ${String(channels)}`, { file });
  }
  if (!(maxPixels > 0)) {
    throw new ImageError(`maxPixels must be a positive number, got ${maxPixels}`, { file });
  }
  if (bytes.length === 0) {
    throw new ImageError("the file is empty (re-export or replace it)", { file });
  }
  let width: number, height: number, data: Uint8Array;
  if (startsWith(bytes, PNG_SIGNATURE)) {
    ({ width, height, data } = decodePng(bytes, channels, maxPixels, file));
  } else if (startsWith(bytes, [0xff, 0xd8])) {
    ({ width, height, data } = decodeJpeg(bytes, channels, maxPixels, file));
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
 * Read and decode a PNG or JPEG file (see {@linkcode decodeImage}).
 *
 * @param path File path or `file:` URL.
 * @param options As for {@linkcode decodeImage}; `source` defaults to the path.
 * @returns 8-bit HWC pixels with `source` set.
 * @throws {ImageError} When the file is missing, unreadable (needs `--allow-read`) or invalid.
 *
 * @example
 * ```ts ignore
 * import { loadImage } from "./image.ts";
 * const img = await loadImage("cat.png");
 * console.log(img.width, img.height, img.channels);
 * ```
 */
export async function loadImage(
  path: string | URL,
  options: DecodeImageOptions = {},
): Promise<DecodedImage> {
  const file = options.source ?? displayPath(path);
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (err) {
    throw ioError(err, file, "read");
  }
  return decodeImage(bytes, { ...options, source: file });
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
