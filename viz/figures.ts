/**
 * Figures of the ViT tokenizer's stages as plain pixel images (the seed tutorial's plots,
 * without a drawing library): every function maps tensors to an RGB image whose pixels are
 * written directly, so tests can check exact pixels and the report can embed them as PNG.
 * @module
 */

import type { TensorData } from "../graph/tensor_data.ts";

/**
 * An 8-bit image, row-major, `channels` interleaved bytes per pixel.
 *
 * @example
 * ```ts
 * import type { PixelImage } from "./figures.ts";
 * const black: PixelImage = { width: 2, height: 1, channels: 3, data: new Uint8Array(6) };
 * ```
 */
export interface PixelImage {
  /** Width in pixels. */
  readonly width: number;
  /** Height in pixels. */
  readonly height: number;
  /** 3 for RGB, 4 for RGBA. */
  readonly channels: 3 | 4;
  /** `width * height * channels` bytes, top row first. */
  readonly data: Uint8Array;
}

// matplotlib's viridis sampled at 256 points (the colormap data is CC0), as 6-hex-digit colours.
const VIRIDIS_HEX =
  "44015444025645045745055946075a46085c460a5d460b5e470d60470e61471063471164471365481467" +
  "48166848176948186a481a6c481b6d481c6e481d6f481f70482071482173482374482475482576482677" +
  "482878482979472a7a472c7a472d7b472e7c472f7d46307e46327e46337f463480453581453781453882" +
  "443983443a83443b84433d84433e85423f854240864241864142874144874045884046883f47883f4889" +
  "3e49893e4a893e4c8a3d4d8a3d4e8a3c4f8a3c508b3b518b3b528b3a538b3a548c39558c39568c38588c" +
  "38598c375a8c375b8d365c8d365d8d355e8d355f8d34608d34618d33628d33638d32648e32658e31668e" +
  "31678e31688e30698e306a8e2f6b8e2f6c8e2e6d8e2e6e8e2e6f8e2d708e2d718e2c718e2c728e2c738e" +
  "2b748e2b758e2a768e2a778e2a788e29798e297a8e297b8e287c8e287d8e277e8e277f8e27808e26818e" +
  "26828e26828e25838e25848e25858e24868e24878e23888e23898e238a8d228b8d228c8d228d8d218e8d" +
  "218f8d21908d21918c20928c20928c20938c1f948c1f958b1f968b1f978b1f988b1f998a1f9a8a1e9b8a" +
  "1e9c891e9d891f9e891f9f881fa0881fa1881fa1871fa28720a38620a48621a58521a68522a78522a884" +
  "23a98324aa8325ab8225ac8226ad8127ad8128ae8029af7f2ab07f2cb17e2db27d2eb37c2fb47c31b57b" +
  "32b67a34b67935b77937b87838b9773aba763bbb753dbc743fbc7340bd7242be7144bf7046c06f48c16e" +
  "4ac16d4cc26c4ec36b50c46a52c56954c56856c66758c7655ac8645cc8635ec96260ca6063cb5f65cb5e" +
  "67cc5c69cd5b6ccd5a6ece5870cf5773d05675d05477d1537ad1517cd2507fd34e81d34d84d44b86d549" +
  "89d5488bd6468ed64590d74393d74195d84098d83e9bd93c9dd93ba0da39a2da37a5db36a8db34aadc32" +
  "addc30b0dd2fb2dd2db5de2bb8de29bade28bddf26c0df25c2df23c5e021c8e020cae11fcde11dd0e11c" +
  "d2e21bd5e21ad8e219dae319dde318dfe318e2e418e5e419e7e419eae51aece51befe51cf1e51df4e61e" +
  "f6e620f8e621fbe723fde725";

const VIRIDIS: Uint8Array = Uint8Array.from(
  { length: VIRIDIS_HEX.length / 2 },
  (_, i) => parseInt(VIRIDIS_HEX.slice(2 * i, 2 * i + 2), 16),
);

const WHITE = 255;

/**
 * matplotlib's viridis colormap: `t` in [0, 1] (clamped; NaN maps to 0) to an RGB triple.
 *
 * @example
 * ```ts
 * import { viridis } from "./figures.ts";
 * viridis(0); // [68, 1, 84]
 * viridis(1); // [253, 231, 37]
 * ```
 */
export function viridis(t: number): [number, number, number] {
  const i = Number.isNaN(t) ? 0 : Math.round(Math.min(1, Math.max(0, t)) * 255);
  return [VIRIDIS[3 * i], VIRIDIS[3 * i + 1], VIRIDIS[3 * i + 2]];
}

/**
 * The input image as RGB: `[1, 3, H, W]` (or `[1, 1, H, W]`, shown as grey) with values in
 * 0..1, clamped.
 *
 * @example
 * ```ts
 * import { resizedImageFigure } from "./figures.ts";
 * const img = resizedImageFigure({ shape: [1, 3, 4, 4], data: new Float32Array(48).fill(0.5) });
 * img.width; // 4
 * ```
 */
export function resizedImageFigure(image: TensorData): PixelImage {
  const { channels, height, width } = imageDims(image, "resizedImageFigure");
  const out = blank(width, height, 0);
  const plane = height * width;
  for (let p = 0; p < plane; p++) {
    for (let k = 0; k < 3; k++) {
      // Grey images repeat their one channel.
      out.data[3 * p + k] = toByte(image.data[(channels === 3 ? k : 0) * plane + p]);
    }
  }
  return out;
}

/**
 * The image cut into `patch` x `patch` tiles with `gap`-pixel white gaps, like the seed's
 * `visualize_img_to_patch` subplot grid. Tile (r, c) starts at row `r * (patch + gap)` and
 * column `c * (patch + gap)`; its pixels equal the source pixels.
 *
 * @example
 * ```ts
 * import { patchGridFigure } from "./figures.ts";
 * const g = patchGridFigure({ shape: [1, 3, 8, 8], data: new Float32Array(192) }, 4, 2);
 * g.width; // 10
 * ```
 */
export function patchGridFigure(image: TensorData, patch: number, gap = 2): PixelImage {
  const { height, width } = imageDims(image, "patchGridFigure");
  checkPatch(height, width, patch, "patchGridFigure");
  if (!Number.isInteger(gap) || gap < 0) {
    throw new RangeError(`patchGridFigure: gap must be a non-negative integer, got ${gap}`);
  }
  const rows = height / patch;
  const cols = width / patch;
  const source = resizedImageFigure(image);
  const out = blank(cols * patch + (cols - 1) * gap, rows * patch + (rows - 1) * gap, WHITE);
  for (let y = 0; y < height; y++) {
    const oy = y + Math.floor(y / patch) * gap;
    for (let x = 0; x < width; x++) {
      const ox = x + Math.floor(x / patch) * gap;
      out.data.set(
        source.data.subarray(3 * (y * width + x), 3 * (y * width + x) + 3),
        3 * (oy * out.width + ox),
      );
    }
  }
  return out;
}

/**
 * The patch extractor's output `[1, C, h, w]` beside the input image, like the seed's
 * `visualize_patch_extraction`: min-max normalized over all values, C = 3 shown as RGB, other
 * C as viridis of the channel mean, upscaled by nearest neighbour to the input's size (so each
 * cell covers the patch it summarizes). Both panels are magnified `scale` times; 8 white
 * pixels separate them.
 *
 * @example
 * ```ts
 * import { patchExtractionFigure } from "./figures.ts";
 * const image = { shape: [1, 3, 8, 8], data: new Float32Array(192) };
 * const patches = { shape: [1, 3, 2, 2], data: Float32Array.from({ length: 12 }, (_, i) => i) };
 * patchExtractionFigure(image, patches, 2).width; // 2 * (2 * 8) + 8 = 40
 * ```
 */
export function patchExtractionFigure(
  image: TensorData,
  patches: TensorData,
  scale = 1,
): PixelImage {
  const { height, width } = imageDims(image, "patchExtractionFigure");
  if (patches.shape.length !== 4 || patches.shape[0] !== 1) {
    throw new RangeError(
      `patchExtractionFigure: patches must be [1, C, h, w], got [${patches.shape.join(", ")}]`,
    );
  }
  if (!Number.isInteger(scale) || scale < 1) {
    throw new RangeError(`patchExtractionFigure: scale must be a positive integer, got ${scale}`);
  }
  const [, c, h, w] = patches.shape;
  const colours = cellColours(patches.data, c, h * w, (i, k) => k * h * w + i);
  const input = resizedImageFigure(image);
  const gap = 8;
  const out = blank(2 * width * scale + gap, height * scale, WHITE);
  for (let y = 0; y < out.height; y++) {
    const sy = Math.floor(y / scale);
    for (let x = 0; x < width * scale; x++) {
      const sx = Math.floor(x / scale);
      const o = 3 * (y * out.width + x);
      out.data.set(input.data.subarray(3 * (sy * width + sx), 3 * (sy * width + sx) + 3), o);
      // Nearest neighbour from the h x w grid to the H x W input.
      const cell = Math.floor((sy * h) / height) * w + Math.floor((sx * w) / width);
      out.data.set(colours.subarray(3 * cell, 3 * cell + 3), o + 3 * (width * scale + gap));
    }
  }
  return out;
}

/**
 * The tokens `[1, N, C]` in a row, like the seed's `visualize_patch_tokenized`: one
 * `cell` x `cell` square per token, coloured by its C values (min-max normalized over all
 * values; C = 3 as RGB, else viridis of the mean), with 1-pixel white gaps: exactly N cells.
 *
 * @example
 * ```ts
 * import { tokenStripFigure } from "./figures.ts";
 * const tokens = { shape: [1, 4, 3], data: Float32Array.from({ length: 12 }, (_, i) => i) };
 * tokenStripFigure(tokens, 8).width; // 4 * 8 + 3 = 35
 * ```
 */
export function tokenStripFigure(tokens: TensorData, cell = 8): PixelImage {
  const [n, c] = sequenceDims(tokens, "tokenStripFigure");
  if (!Number.isInteger(cell) || cell < 1) {
    throw new RangeError(`tokenStripFigure: cell must be a positive integer, got ${cell}`);
  }
  const colours = cellColours(tokens.data, c, n, (i, k) => i * c + k);
  const out = blank(n * (cell + 1) - 1, cell, WHITE);
  for (let t = 0; t < n; t++) {
    for (let y = 0; y < cell; y++) {
      for (let x = 0; x < cell; x++) {
        out.data.set(colours.subarray(3 * t, 3 * t + 3), 3 * (y * out.width + t * (cell + 1) + x));
      }
    }
  }
  return out;
}

/**
 * The patch extractor's output `[1, C, h, w]` as a `w` x `h` image, one pixel per patch, in the
 * colours of {@linkcode patchExtractionFigure}'s right panel (min-max normalized over all
 * values; C = 3 as RGB, else viridis of the channel mean). Pixel (c, r) is patch row r, column c.
 *
 * @example
 * ```ts
 * import { patchCellsFigure } from "./figures.ts";
 * const patches = { shape: [1, 3, 2, 4], data: Float32Array.from({ length: 24 }, (_, i) => i) };
 * patchCellsFigure(patches).width; // 4
 * ```
 */
export function patchCellsFigure(patches: TensorData): PixelImage {
  if (patches.shape.length !== 4 || patches.shape[0] !== 1) {
    throw new RangeError(
      `patchCellsFigure: patches must be [1, C, h, w], got [${patches.shape.join(", ")}]`,
    );
  }
  const [, c, h, w] = patches.shape;
  return {
    width: w,
    height: h,
    channels: 3,
    data: cellColours(patches.data, c, h * w, (i, k) => k * h * w + i),
  };
}

/**
 * The tokens `[1, N, C]` wrapped into rows of `perRow`, one pixel per token in the colours of
 * {@linkcode tokenStripFigure}: token t is pixel (t % perRow, floor(t / perRow)); the cells
 * after the last token are white. The image is `perRow` x `ceil(N / perRow)` pixels.
 *
 * @example
 * ```ts
 * import { tokenGridFigure } from "./figures.ts";
 * const tokens = { shape: [1, 10, 3], data: Float32Array.from({ length: 30 }, (_, i) => i) };
 * tokenGridFigure(tokens, 4).height; // 3
 * ```
 */
export function tokenGridFigure(tokens: TensorData, perRow: number): PixelImage {
  const [n, c] = sequenceDims(tokens, "tokenGridFigure");
  if (!Number.isInteger(perRow) || perRow < 1) {
    throw new RangeError(`tokenGridFigure: perRow must be a positive integer, got ${perRow}`);
  }
  const colours = cellColours(tokens.data, c, n, (i, k) => i * c + k);
  const out = blank(perRow, Math.max(1, Math.ceil(n / perRow)), WHITE);
  out.data.set(colours);
  return out;
}

/**
 * The token embeddings `[1, N, D]` as a heatmap, like the seed's `visualize_tokens_embedding`:
 * column t holds the first `values` values of token t (top to bottom), in viridis, min-max
 * normalized over the values shown (one scale for all tokens, so columns compare). The image is
 * N x min(values, D) pixels; scale it up when displaying.
 *
 * @example
 * ```ts
 * import { embeddingHeatmapFigure } from "./figures.ts";
 * const emb = { shape: [1, 196, 768], data: new Float32Array(196 * 768) };
 * embeddingHeatmapFigure(emb).height; // 100
 * ```
 */
export function embeddingHeatmapFigure(embeddings: TensorData, values = 100): PixelImage {
  const [n, d] = sequenceDims(embeddings, "embeddingHeatmapFigure");
  if (!Number.isInteger(values) || values < 1) {
    throw new RangeError(
      `embeddingHeatmapFigure: values must be a positive integer, got ${values}`,
    );
  }
  const rows = Math.min(values, d);
  let lo = Infinity;
  let hi = -Infinity;
  for (let t = 0; t < n; t++) {
    for (let v = 0; v < rows; v++) {
      const x = embeddings.data[t * d + v];
      lo = Math.min(lo, x);
      hi = Math.max(hi, x);
    }
  }
  const out = blank(n, rows, 0);
  for (let t = 0; t < n; t++) {
    for (let v = 0; v < rows; v++) {
      out.data.set(viridis(normalize(embeddings.data[t * d + v], lo, hi)), 3 * (v * n + t));
    }
  }
  return out;
}

/**
 * The positional embeddings' similarity, like Fig. 7 (centre) of the ViT paper: for each patch
 * position (the class token, row 0, is skipped) a `gridH` x `gridW` map of the cosine similarity
 * of its embedding to every patch's embedding, each value a `cell` x `cell` square coloured by
 * viridis over [-1, 1]. The maps sit in a `gridH` x `gridW` grid with 2-pixel white gaps.
 *
 * @example
 * ```ts
 * import { positionalSimilarityFigure } from "./figures.ts";
 * const pos = { shape: [1, 5, 8], data: Float32Array.from({ length: 40 }, Math.random) };
 * positionalSimilarityFigure(pos, 2, 2, 4).width; // 2 * (2 * 4) + 2 = 18
 * ```
 */
export function positionalSimilarityFigure(
  pos: TensorData,
  gridH: number,
  gridW: number,
  cell = 4,
): PixelImage {
  const [tokens, d] = sequenceDims(pos, "positionalSimilarityFigure");
  const n = gridH * gridW;
  if (!Number.isInteger(gridH) || !Number.isInteger(gridW) || gridH < 1 || gridW < 1) {
    throw new RangeError(`positionalSimilarityFigure: bad grid ${gridH}x${gridW}`);
  }
  if (tokens !== n + 1) {
    throw new RangeError(
      `positionalSimilarityFigure: pos has ${tokens} rows but a ${gridH}x${gridW} grid needs ` +
        `${n + 1} (class token + patches)`,
    );
  }
  if (!Number.isInteger(cell) || cell < 1) {
    throw new RangeError(
      `positionalSimilarityFigure: cell must be a positive integer, got ${cell}`,
    );
  }
  // Row 0 is the class token; patch i's embedding starts at (i + 1) * d.
  const norms = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let k = 0; k < d; k++) s += pos.data[(i + 1) * d + k] ** 2;
    norms[i] = Math.sqrt(s);
  }
  const gap = 2;
  const mapW = gridW * cell;
  const mapH = gridH * cell;
  const out = blank(gridW * mapW + (gridW - 1) * gap, gridH * mapH + (gridH - 1) * gap, WHITE);
  for (let i = 0; i < n; i++) {
    const ox = (i % gridW) * (mapW + gap);
    const oy = Math.floor(i / gridW) * (mapH + gap);
    for (let j = 0; j < n; j++) {
      let dot = 0;
      for (let k = 0; k < d; k++) dot += pos.data[(i + 1) * d + k] * pos.data[(j + 1) * d + k];
      const denom = norms[i] * norms[j];
      const cos = denom > 0 ? dot / denom : 0;
      const colour = viridis((cos + 1) / 2);
      const cx = ox + (j % gridW) * cell;
      const cy = oy + Math.floor(j / gridW) * cell;
      for (let y = 0; y < cell; y++) {
        for (let x = 0; x < cell; x++) out.data.set(colour, 3 * ((cy + y) * out.width + cx + x));
      }
    }
  }
  return out;
}

function imageDims(
  image: TensorData,
  op: string,
): { channels: number; height: number; width: number } {
  const [b, channels, height, width] = image.shape;
  if (image.shape.length !== 4 || b !== 1 || (channels !== 3 && channels !== 1)) {
    throw new RangeError(`${op}: image must be [1, 3, H, W], got [${image.shape.join(", ")}]`);
  }
  return { channels, height, width };
}

function sequenceDims(t: TensorData, op: string): [number, number] {
  if (t.shape.length !== 3 || t.shape[0] !== 1) {
    throw new RangeError(`${op}: expected [1, N, C], got [${t.shape.join(", ")}]`);
  }
  return [t.shape[1], t.shape[2]];
}

function checkPatch(height: number, width: number, patch: number, op: string): void {
  if (!Number.isInteger(patch) || patch < 1 || height % patch !== 0 || width % patch !== 0) {
    throw new RangeError(`${op}: patch ${patch} must divide the image size ${height}x${width}`);
  }
}

/**
 * One RGB colour per cell from `count` cells of `c` values each (value k of cell i at
 * `data[at(i, k)]`), min-max normalized over every value like the seed: C = 3 as RGB, else
 * viridis of the mean.
 */
function cellColours(
  data: Float32Array,
  c: number,
  count: number,
  at: (i: number, k: number) => number,
): Uint8Array {
  const [lo, hi] = minMax(data);
  const out = new Uint8Array(3 * count);
  for (let i = 0; i < count; i++) {
    if (c === 3) {
      for (let k = 0; k < 3; k++) out[3 * i + k] = toByte(normalize(data[at(i, k)], lo, hi));
    } else {
      let s = 0;
      for (let k = 0; k < c; k++) s += normalize(data[at(i, k)], lo, hi);
      out.set(viridis(c > 0 ? s / c : 0), 3 * i);
    }
  }
  return out;
}

function minMax(data: Float32Array): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const x of data) {
    if (x < lo) lo = x;
    if (x > hi) hi = x;
  }
  return [lo, hi];
}

// A constant tensor has no range: show it at 0 rather than dividing by zero.
function normalize(x: number, lo: number, hi: number): number {
  return hi > lo ? (x - lo) / (hi - lo) : 0;
}

function toByte(v: number): number {
  return Math.round(Math.min(1, Math.max(0, Number.isNaN(v) ? 0 : v)) * 255);
}

function blank(width: number, height: number, fill: number): PixelImage & { channels: 3 } {
  return { width, height, channels: 3, data: new Uint8Array(width * height * 3).fill(fill) };
}
