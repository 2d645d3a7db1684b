/**
 * Images that a page already holds as pixels: `ImageData`, a canvas (`HTMLCanvasElement`,
 * `OffscreenCanvas`), an `ImageBitmap`, an `<img>` element, or any `{ width, height, data }` of
 * RGBA bytes, turned into the {@linkcode DecodedImage} that `decodeImage` returns.
 *
 * Nothing here assumes the DOM exists: sources are described by the few members used, and
 * `OffscreenCanvas` and `document` are looked up at run time. So the module type-checks without
 * the DOM lib, loads in Deno and Node, and needs a canvas only for sources that must be drawn
 * (a bitmap or an image element).
 *
 * The pixels are what the browser decoded, which can differ from `decodeImage` on the file's
 * bytes: a browser applies the file's colour profile and gamma (PIL ignores them), and a canvas
 * stores colour premultiplied by alpha, so a translucent pixel read back from a canvas can lose
 * precision. Opaque sRGB images with no colour chunks (what `encodePng` writes) match exactly.
 * For PIL's exact pixels, fetch the bytes and use `loadImage` with the URL.
 *
 * @module
 */

import {
  type DecodedImage,
  ImageError,
  imageFromRgba,
  type RgbaImageOptions,
  type RgbaPixels,
} from "./image.ts";

/**
 * A canvas, described by what is used of it: `HTMLCanvasElement` and `OffscreenCanvas` fit.
 *
 * @example
 * ```ts
 * import type { CanvasLike } from "./pixels.ts";
 * const unused: CanvasLike = { width: 1, height: 1, getContext: () => null };
 * ```
 */
export interface CanvasLike {
  /** Width in pixels. */
  readonly width: number;
  /** Height in pixels. */
  readonly height: number;
  /** The 2D context (checked by shape before use), or null when the canvas has another kind. */
  getContext(contextId: "2d", options?: { willReadFrequently?: boolean }): unknown;
}

/**
 * Something a canvas can draw at its own size: an `ImageBitmap`, a `VideoFrame`, an
 * `HTMLImageElement` (drawn at its natural size once loaded), an `SVGImageElement`.
 *
 * @example
 * ```ts
 * import type { DrawableImage } from "./pixels.ts";
 * const bitmapLike: DrawableImage = { width: 2, height: 2 };
 * ```
 */
export interface DrawableImage {
  /** Width in pixels (for an `<img>`, its natural width is used). */
  readonly width: number;
  /** Height in pixels. */
  readonly height: number;
}

/**
 * What {@linkcode imageFromPixels} accepts: RGBA pixels (`ImageData`), a canvas, or an image a
 * canvas can draw.
 *
 * @example
 * ```ts
 * import type { PixelSource } from "./pixels.ts";
 * const source: PixelSource = { width: 1, height: 1, data: new Uint8ClampedArray(4) };
 * ```
 */
export type PixelSource = RgbaPixels | CanvasLike | DrawableImage;

/** The members of a 2D context used here. */
interface Context2D {
  drawImage(image: unknown, dx: number, dy: number): void;
  getImageData(sx: number, sy: number, sw: number, sh: number, settings?: unknown): unknown;
}

/** An `<img>` element's loading state. */
interface ImageElementLike {
  readonly naturalWidth: number;
  readonly naturalHeight: number;
  readonly complete: boolean;
  decode(): Promise<void>;
}

type OffscreenCanvasConstructor = new (width: number, height: number) => CanvasLike;

interface DocumentLike {
  createElement(tag: "canvas"): CanvasLike & { width: number; height: number };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null;
}

function isRgba(value: unknown): value is RgbaPixels {
  return isRecord(value) && "data" in value && typeof value.width === "number" &&
    typeof value.height === "number";
}

function isCanvas(value: unknown): value is CanvasLike {
  return isRecord(value) && typeof value.getContext === "function";
}

function isImageElement(value: unknown): value is ImageElementLike & DrawableImage {
  return isRecord(value) && typeof value.naturalWidth === "number" &&
    typeof value.decode === "function";
}

function isContext2D(value: unknown): value is Context2D {
  return isRecord(value) && typeof value.getImageData === "function" &&
    typeof value.drawImage === "function";
}

function oneLine(err: unknown): string {
  const msg = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  return msg.replace(/\s+/g, " ").trim();
}

/** The source's kind, for messages. */
function kindOf(source: object): string {
  const name = (source as { constructor?: { name?: unknown } }).constructor?.name;
  return typeof name === "string" && name !== "Object" ? name : "image";
}

/** Reads a whole 2D context's pixels as sRGB RGBA. */
function readContext(
  ctx: Context2D,
  width: number,
  height: number,
  file: string | undefined,
): RgbaPixels {
  let data: unknown;
  try {
    // sRGB, whatever the canvas's own colour space (a display-p3 canvas would give p3 values).
    data = ctx.getImageData(0, 0, width, height, { colorSpace: "srgb" });
  } catch (err) {
    const tainted = isRecord(err) && err.name === "SecurityError";
    throw new ImageError(
      tainted
        ? "imageFromPixels: the canvas holds a cross-origin image, so the browser will not let " +
          'its pixels be read (serve the image with CORS and set crossOrigin = "anonymous", or ' +
          "pass its URL to loadImage)"
        : `imageFromPixels: cannot read the canvas's pixels: ${oneLine(err)}`,
      { file, cause: err },
    );
  }
  if (!isRgba(data)) {
    throw new ImageError("imageFromPixels: getImageData returned no pixel data", { file });
  }
  return data;
}

/** A fresh 2D canvas of the given size: an `OffscreenCanvas`, else a `<canvas>` element. */
function scratchContext(width: number, height: number, file: string | undefined): Context2D {
  const g = globalThis as { OffscreenCanvas?: OffscreenCanvasConstructor; document?: unknown };
  let canvas: CanvasLike | undefined;
  if (typeof g.OffscreenCanvas === "function") {
    canvas = new g.OffscreenCanvas(width, height);
  } else if (isRecord(g.document) && typeof g.document.createElement === "function") {
    const element = (g.document as unknown as DocumentLike).createElement("canvas");
    element.width = width;
    element.height = height;
    canvas = element;
  }
  const ctx = canvas?.getContext("2d", { willReadFrequently: true });
  if (!isContext2D(ctx)) {
    throw new ImageError(
      "imageFromPixels: drawing this image needs a 2D canvas (OffscreenCanvas or a document), " +
        "and this runtime has none (pass ImageData, or the image's URL to loadImage)",
      { file },
    );
  }
  return ctx;
}

function checkSize(width: number, height: number, what: string, file: string | undefined): void {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new ImageError(
      `imageFromPixels: the ${what} is ${width}x${height} pixels (draw or load it first, so it ` +
        "has a size)",
      { file },
    );
  }
}

/** The RGBA pixels of any supported source. */
async function rgbaOf(source: PixelSource, file: string | undefined): Promise<RgbaPixels> {
  if (isRgba(source)) return source;
  if (!isRecord(source)) {
    throw new ImageError(
      `imageFromPixels: expected ImageData, a canvas, an ImageBitmap or an image element, got ` +
        `${source === null ? "null" : typeof source}`,
      { file },
    );
  }
  const what = kindOf(source);
  if (isCanvas(source)) {
    const { width, height } = source;
    checkSize(width, height, what, file);
    const own = source.getContext("2d");
    // A WebGL or bitmaprenderer canvas has no 2D context: draw it onto one that has.
    if (isContext2D(own)) return readContext(own, width, height, file);
    const ctx = scratchContext(width, height, file);
    ctx.drawImage(source, 0, 0);
    return readContext(ctx, width, height, file);
  }
  let width = source.width;
  let height = source.height;
  if (isImageElement(source)) {
    if (!source.complete || source.naturalWidth === 0) {
      try {
        await source.decode();
      } catch (err) {
        throw new ImageError(
          `imageFromPixels: the image element did not load: ${oneLine(err)} (check its src, ` +
            "or pass the URL to loadImage)",
          { file, cause: err },
        );
      }
    }
    // drawImage(img, 0, 0) draws at the natural size, whatever the element's layout size.
    width = source.naturalWidth;
    height = source.naturalHeight;
  }
  checkSize(width, height, what, file);
  const ctx = scratchContext(width, height, file);
  ctx.drawImage(source, 0, 0);
  return readContext(ctx, width, height, file);
}

/**
 * The pixels of an image a page holds, as the 8-bit RGB (or gray) image that `decodeImage`
 * returns: alpha is dropped by PIL's `convert("RGB")` rule, as `decodeImage` does for RGBA PNGs
 * (see {@linkcode imageFromRgba}). Accepts `ImageData` or any `{ width, height, data }` of RGBA
 * bytes (read as they are), an `HTMLCanvasElement` or `OffscreenCanvas` (its 2D pixels; a WebGL
 * canvas is drawn onto a 2D one first), and an `ImageBitmap`, an `<img>` (awaited until it has
 * loaded; its natural size) or anything else a canvas draws, drawn onto a fresh canvas
 * (`OffscreenCanvas` when there is one, else a `<canvas>`). See the module docs for when the
 * browser's pixels differ from the file's.
 *
 * @param source The pixels, canvas or image.
 * @param options Output channels (default 3; 1 for PIL's `convert("L")`) and a name for errors
 *   and `source`.
 * @returns 8-bit HWC pixels, a copy.
 * @throws {ImageError} For an unsupported source or one with no size yet, an image element that
 *   failed to load, a canvas tainted by a cross-origin image, or a runtime without a canvas for a
 *   source that must be drawn.
 *
 * @example
 * ```ts
 * import { imageFromPixels } from "./pixels.ts";
 * // In a page: await imageFromPixels(canvas), await imageFromPixels(await createImageBitmap(blob))
 * const img = await imageFromPixels({
 *   width: 2,
 *   height: 1,
 *   data: new Uint8ClampedArray([255, 0, 0, 255, 0, 0, 255, 128]),
 * });
 * console.log(img.channels, img.data); // 3 Uint8Array [255, 0, 0, 0, 0, 255]
 * ```
 */
export async function imageFromPixels(
  source: PixelSource,
  options: RgbaImageOptions = {},
): Promise<DecodedImage> {
  const rgba = await rgbaOf(source, options.source);
  return imageFromRgba(rgba, options);
}
