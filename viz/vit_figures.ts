/**
 * Figures of a whole Vision Transformer run: the class token's attention over the patches for
 * every head of a block, overlaid on the image the model saw (the well-known ViT attention map);
 * attention rollout across all blocks (Abnar & Zuidema 2020, "Quantifying Attention Flow in
 * Transformers"); and the top-k classes as a bar chart.
 *
 * The numeric parts ({@linkcode classAttention}, {@linkcode attentionRollout},
 * {@linkcode upsampleBilinear}, {@linkcode attentionOverlay}) are plain functions of the tensors;
 * the figures are SVG documents drawn by Vega (`plot.ts`), which `svgToPng` rasterizes. Attention
 * tensors are `[B, heads, N, N]` softmax probabilities with N = 1 + gh * gw: row 0 is the class
 * token's query, and patch p = r * gw + c sits at row r (y, from the top), column c (x).
 * @module
 */

import * as vega from "npm:vega@6.4.0";
import type { TensorData } from "../graph/tensor_data.ts";
import { formatShape } from "../graph/shape.ts";
import type { PixelImage } from "./figures.ts";

export type { PixelImage } from "./figures.ts";
import {
  gridLinesMark,
  PLOT_CONFIG,
  rasterImageMark,
  renderVega,
  renderVegaLite,
  type VegaLiteSpec,
  type VegaSpec,
} from "./plot.ts";

type Mark = NonNullable<VegaSpec["marks"]>[number];

/**
 * An 8-bit RGB image, row-major, 3 interleaved bytes per pixel: the preprocessed input the
 * model saw (timm's center crop, `timmEvalCrop` in io/timm_transform.ts), for overlays.
 *
 * @example
 * ```ts
 * import type { OverlayImage } from "./vit_figures.ts";
 * const img: OverlayImage = { width: 2, height: 1, data: new Uint8Array(6) };
 * ```
 */
export interface OverlayImage {
  /** Width in pixels. */
  readonly width: number;
  /** Height in pixels. */
  readonly height: number;
  /** `height * width * 3` bytes, RGB, top row first. */
  readonly data: Uint8Array;
  /** 3 if given (RGB). */
  readonly channels?: 3;
}

/**
 * One class of a top-k list: its name and probability.
 *
 * @example
 * ```ts
 * import type { TopClass } from "./vit_figures.ts";
 * const c: TopClass = { name: "tabby cat", p: 0.42 };
 * ```
 */
export interface TopClass {
  /** Class name. */
  readonly name: string;
  /** Probability in [0, 1]. */
  readonly p: number;
}

/**
 * The colour maps an overlay can use: Vega's schemes, so the colour bar shows exactly the
 * colours of the pixels.
 *
 * @example
 * ```ts
 * import type { ColourMap } from "./vit_figures.ts";
 * const c: ColourMap = "inferno";
 * ```
 */
export type ColourMap = "inferno" | "magma" | "plasma" | "viridis" | "turbo";

/**
 * Options shared by the attention figures.
 *
 * @example
 * ```ts
 * import type { AttentionFigureOptions } from "./vit_figures.ts";
 * const o: AttentionFigureOptions = { grid: [14, 14], alpha: 0.6 };
 * ```
 */
export interface AttentionFigureOptions {
  /** The patch grid `[gh, gw]` (rows, columns); N must be 1 + gh * gw. */
  readonly grid: readonly [number, number];
  /** The batch item (default 0). */
  readonly item?: number;
  /** The colour map's opacity over the image, 0..1 (default 0.5). */
  readonly alpha?: number;
  /** Colour map (default "inferno"). */
  readonly colourMap?: ColourMap;
  /**
   * Each panel's side in CSS pixels (default: 210 up to 5 columns, 170 for 6; the rollout's
   * two panels 300).
   */
  readonly panel?: number;
  /** Replaces the default title. */
  readonly title?: string;
}

/**
 * Options of {@linkcode attentionMapsFigure}.
 *
 * @example
 * ```ts
 * import type { AttentionMapsOptions } from "./vit_figures.ts";
 * const o: AttentionMapsOptions = { grid: [14, 14], block: 11 };
 * ```
 */
export interface AttentionMapsOptions extends AttentionFigureOptions {
  /** The block the attention comes from, for the titles. */
  readonly block: number;
}

/**
 * The class token's attention over the patches for one head: row 0 of `attn[item, head]`
 * without its first entry (the class token attending to itself), `gh * gw` values, patch
 * p = r * gw + c at index p.
 *
 * @example
 * ```ts
 * import { classAttention } from "./vit_figures.ts";
 * // 1 batch item, 1 head, N = 3 (class token + 2 patches)
 * const attn = { shape: [1, 1, 3, 3], data: Float32Array.of(0.2, 0.5, 0.3, 1, 0, 0, 1, 0, 0) };
 * classAttention(attn, 0); // Float32Array [0.5, 0.3]
 * ```
 */
export function classAttention(attn: TensorData, head: number, item = 0): Float32Array {
  const { batch, heads, n } = attentionDims(attn, "classAttention");
  checkIndex(item, batch, "classAttention: item");
  checkIndex(head, heads, "classAttention: head");
  const row = ((item * heads + head) * n) * n;
  return attn.data.slice(row + 1, row + n);
}

/**
 * Attention rollout (Abnar & Zuidema 2020) of batch item `item`: for each block, the heads'
 * mean A, then (A + I) with every row renormalized to sum 1, and the blocks' matrices
 * multiplied in order, R = Â_L · … · Â_2 · Â_1 (block 1 first applied). Returns R, N x N,
 * row-major, in float64. `R[0, 1..N-1]` is the class token's rollout over the patches.
 *
 * @example
 * ```ts
 * import { attentionRollout } from "./vit_figures.ts";
 * const eye = { shape: [1, 1, 2, 2], data: Float32Array.of(1, 0, 0, 1) };
 * attentionRollout([eye, eye]); // Float64Array [1, 0, 0, 1]
 * ```
 */
export function attentionRollout(attns: readonly TensorData[], item = 0): Float64Array {
  if (attns.length === 0) throw new RangeError("attentionRollout: no attention tensors given");
  const first = attentionDims(attns[0], "attentionRollout");
  const { n } = first;
  checkIndex(item, first.batch, "attentionRollout: item");
  let rollout = identity(n);
  for (const [b, attn] of attns.entries()) {
    const { batch, heads } = attentionDims(attn, `attentionRollout: block ${b}`);
    if (attn.shape[2] !== n || batch !== first.batch) {
      throw new RangeError(
        `attentionRollout: block ${b} has shape ${formatShape(attn.shape)}, block 0 ` +
          formatShape(attns[0].shape),
      );
    }
    // Â = rownorm(mean_h(A) + I)
    const a = new Float64Array(n * n);
    const base = item * heads * n * n;
    for (let h = 0; h < heads; h++) {
      const off = base + h * n * n;
      for (let i = 0; i < n * n; i++) a[i] += attn.data[off + i] / heads;
    }
    for (let i = 0; i < n; i++) {
      a[i * n + i] += 1;
      let s = 0;
      for (let j = 0; j < n; j++) s += a[i * n + j];
      if (s > 0) { for (let j = 0; j < n; j++) a[i * n + j] /= s; }
    }
    rollout = matmul(a, rollout, n);
  }
  return rollout;
}

/**
 * The class token's row of {@linkcode attentionRollout} over the patches, `R[0, 1..N-1]`,
 * computed as a row vector times each block's matrix from the last block down (O(L · N²)
 * rather than the full product's O(L · N³), so a 24-block ViT-L at 384 px stays quick).
 *
 * @example
 * ```ts
 * import { classTokenRollout } from "./vit_figures.ts";
 * const attn = { shape: [1, 1, 2, 2], data: Float32Array.of(0.5, 0.5, 0, 1) };
 * classTokenRollout([attn]); // Float64Array [0.25]: rownorm(A + I) = [[.75, .25], [0, 1]]
 * ```
 */
export function classTokenRollout(attns: readonly TensorData[], item = 0): Float64Array {
  if (attns.length === 0) throw new RangeError("classTokenRollout: no attention tensors given");
  const first = attentionDims(attns[0], "classTokenRollout");
  const { n } = first;
  checkIndex(item, first.batch, "classTokenRollout: item");
  for (const [b, attn] of attns.entries()) {
    const { batch } = attentionDims(attn, `classTokenRollout: block ${b}`);
    if (attn.shape[2] !== n || batch !== first.batch) {
      throw new RangeError(
        `classTokenRollout: block ${b} has shape ${formatShape(attn.shape)}, block 0 ` +
          formatShape(attns[0].shape),
      );
    }
  }
  // v = e_0ᵀ Â_L ⋯ Â_1, with Â = rownorm(mean_h(A) + I).
  let v = new Float64Array(n);
  v[0] = 1;
  for (let b = attns.length - 1; b >= 0; b--) {
    const attn = attns[b];
    const heads = attn.shape[1];
    const mean = new Float64Array(n * n);
    const base = item * heads * n * n;
    for (let h = 0; h < heads; h++) {
      const off = base + h * n * n;
      for (let i = 0; i < n * n; i++) mean[i] += attn.data[off + i] / heads;
    }
    const next = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      if (v[i] === 0) continue;
      let s = 1;
      for (let j = 0; j < n; j++) s += mean[i * n + j];
      const w = v[i] / s;
      for (let j = 0; j < n; j++) next[j] += w * mean[i * n + j];
      next[i] += w;
    }
    v = next;
  }
  return v.slice(1);
}

/**
 * A `gh` x `gw` map (row-major) resized to `height` x `width` by bilinear interpolation with
 * half-pixel centres, as torch's `F.interpolate(mode="bilinear", align_corners=False)`: output
 * pixel (x, y) samples the map at ((x + 0.5) * gw / width - 0.5, (y + 0.5) * gh / height - 0.5),
 * clamped to the edges.
 *
 * @example
 * ```ts
 * import { upsampleBilinear } from "./vit_figures.ts";
 * upsampleBilinear([0, 1], 1, 2, 1, 4); // Float32Array [0, 0.25, 0.75, 1]
 * ```
 */
export function upsampleBilinear(
  map: ArrayLike<number>,
  gh: number,
  gw: number,
  height: number,
  width: number,
): Float32Array {
  checkGrid(gh, gw, "upsampleBilinear");
  checkGrid(height, width, "upsampleBilinear: output");
  if (map.length !== gh * gw) {
    throw new RangeError(
      `upsampleBilinear: map has ${map.length} values, ${gh}x${gw} needs ${gh * gw}`,
    );
  }
  const out = new Float32Array(height * width);
  const sample = (d: number, size: number, g: number): [number, number, number] => {
    const s = Math.min(g - 1, Math.max(0, ((d + 0.5) * g) / size - 0.5));
    const i0 = Math.floor(s);
    return [i0, Math.min(g - 1, i0 + 1), s - i0];
  };
  const xs = Array.from({ length: width }, (_, x) => sample(x, width, gw));
  for (let y = 0; y < height; y++) {
    const [y0, y1, fy] = sample(y, height, gh);
    for (let x = 0; x < width; x++) {
      const [x0, x1, fx] = xs[x];
      const top = map[y0 * gw + x0] * (1 - fx) + map[y0 * gw + x1] * fx;
      const bottom = map[y1 * gw + x0] * (1 - fx) + map[y1 * gw + x1] * fx;
      out[y * width + x] = top * (1 - fy) + bottom * fy;
    }
  }
  return out;
}

/**
 * Options of {@linkcode attentionOverlay}.
 *
 * @example
 * ```ts
 * import type { OverlayOptions } from "./vit_figures.ts";
 * const o: OverlayOptions = { max: 0.05, alpha: 0.5, colourMap: "inferno" };
 * ```
 */
export interface OverlayOptions {
  /** The value shown as the colour map's top (default: the map's maximum); 0 is its bottom. */
  readonly max?: number;
  /** Opacity of the colour map over the image (default 0.5). */
  readonly alpha?: number;
  /** Colour map (default "inferno"). */
  readonly colourMap?: ColourMap;
}

/**
 * A `gh` x `gw` patch map (row-major: patch row r, column c at r * gw + c) bilinearly upsampled
 * to the image's size, coloured over [0, max] and alpha-blended over the image:
 * `out = (1 - alpha) * image + alpha * colour(value / max)`, per channel, rounded.
 *
 * @example
 * ```ts
 * import { attentionOverlay } from "./vit_figures.ts";
 * const image = { width: 4, height: 4, data: new Uint8Array(48).fill(200) };
 * const img = attentionOverlay(image, [0, 0, 0, 1], [2, 2]); // bright at the bottom right
 * img.width; // 4
 * ```
 */
export function attentionOverlay(
  image: OverlayImage,
  map: ArrayLike<number>,
  grid: readonly [number, number],
  options: OverlayOptions = {},
): PixelImage {
  checkImage(image, "attentionOverlay");
  const [gh, gw] = grid;
  const up = upsampleBilinear(map, gh, gw, image.height, image.width);
  let max = options.max;
  if (max === undefined) {
    max = 0;
    for (let i = 0; i < map.length; i++) max = Math.max(max, map[i]);
  }
  const alpha = options.alpha ?? 0.5;
  if (!(alpha >= 0 && alpha <= 1)) {
    throw new RangeError(`attentionOverlay: alpha must be in [0, 1], got ${alpha}`);
  }
  const lut = colourTable(options.colourMap ?? "inferno");
  const out = new Uint8Array(image.width * image.height * 3);
  for (let p = 0; p < up.length; p++) {
    const t = max > 0 ? Math.min(1, Math.max(0, up[p] / max)) : 0;
    const k = 3 * Math.round(t * 255);
    for (let c = 0; c < 3; c++) {
      out[3 * p + c] = Math.round((1 - alpha) * image.data[3 * p + c] + alpha * lut[k + c]);
    }
  }
  return { width: image.width, height: image.height, channels: 3, data: out };
}

/**
 * The class token's attention over the patches for every head of one block, overlaid on the
 * image: the input first, then one panel per head titled "block i, head h" (a grid of small
 * multiples: one row up to 4 heads, else 4 to 6 columns), each map bilinearly
 * upsampled to the image's size and alpha-blended with the colour map, one shared colour scale
 * [0, the largest value of any head] and its colour bar.
 *
 * @example
 * ```ts
 * import { attentionMapsFigure } from "./vit_figures.ts";
 * const n = 1 + 2 * 2;
 * const attn = { shape: [1, 2, n, n], data: new Float32Array(2 * n * n).fill(1 / n) };
 * const image = { width: 32, height: 32, data: new Uint8Array(32 * 32 * 3).fill(128) };
 * const svg = await attentionMapsFigure(attn, image, { grid: [2, 2], block: 0 });
 * svg.includes("block 0, head 1"); // true
 * ```
 */
export async function attentionMapsFigure(
  attn: TensorData,
  image: OverlayImage,
  options: AttentionMapsOptions,
): Promise<string> {
  const { heads, n } = attentionDims(attn, "attentionMapsFigure");
  checkImage(image, "attentionMapsFigure");
  const [gh, gw] = checkTokens(options.grid, n, "attentionMapsFigure");
  const item = options.item ?? 0;
  const maps = Array.from({ length: heads }, (_, h) => classAttention(attn, h, item));
  const max = maps.reduce((m, a) => a.reduce((x, v) => Math.max(x, v), m), 0);
  const colourMap = options.colourMap ?? "inferno";
  const cols = panelColumns(heads + 1);
  const side = options.panel ?? (cols <= 5 ? 210 : 170);
  const overlay = { max, alpha: options.alpha, colourMap };
  const panels: Mark[] = [
    imagePanel("input", image, side),
    ...maps.map((m, h) =>
      imagePanel(
        `block ${options.block}, head ${h}`,
        attentionOverlay(image, m, [gh, gw], overlay),
        side,
      )
    ),
  ];
  return await renderVega({
    ...frame(
      options.title ?? `Class-token attention, block ${options.block}`,
      [
        `attention of the class token to each of the ${gh * gw} patches (${gh}×${gw}), per head;`,
        `bilinear to ${image.width}×${image.height}, blended at ${
          Math.round(100 * (options.alpha ?? 0.5))
        }%; one colour scale for all heads`,
      ],
    ),
    layout: { columns: cols, padding: { row: 12, column: 10 }, bounds: "full", align: "all" },
    scales: [colourScale(max, colourMap)],
    legends: [colourBar("attention", side)],
    marks: panels,
  });
}

/**
 * Attention rollout across all blocks ({@linkcode classTokenRollout}, the class token's row of
 * {@linkcode attentionRollout}; `attns` in block order),
 * the class token's row over the patches overlaid on the image beside the input, with a colour
 * bar over [0, its maximum].
 *
 * @example
 * ```ts
 * import { attentionRolloutFigure } from "./vit_figures.ts";
 * const n = 1 + 2 * 2;
 * const attn = { shape: [1, 2, n, n], data: new Float32Array(2 * n * n).fill(1 / n) };
 * const image = { width: 32, height: 32, data: new Uint8Array(32 * 32 * 3).fill(128) };
 * const svg = await attentionRolloutFigure([attn, attn], image, { grid: [2, 2] });
 * ```
 */
export async function attentionRolloutFigure(
  attns: readonly TensorData[],
  image: OverlayImage,
  options: AttentionFigureOptions,
): Promise<string> {
  checkImage(image, "attentionRolloutFigure");
  const row = classTokenRollout(attns, options.item ?? 0);
  const [gh, gw] = checkTokens(options.grid, row.length + 1, "attentionRolloutFigure");
  const max = row.reduce((m, v) => Math.max(m, v), 0);
  const colourMap = options.colourMap ?? "inferno";
  const side = options.panel ?? 300;
  const blend = attentionOverlay(image, row, [gh, gw], {
    max,
    alpha: options.alpha,
    colourMap,
  });
  return await renderVega({
    ...frame(
      options.title ?? `Attention rollout over ${attns.length} blocks`,
      [
        "Abnar & Zuidema 2020: heads averaged, identity added, rows renormalized,",
        `blocks multiplied in order; the class token's row over the ${gh * gw} patches ` +
        `(${gh}×${gw})`,
      ],
    ),
    layout: { columns: 2, padding: 12, bounds: "full", align: "all" },
    scales: [colourScale(max, colourMap)],
    legends: [colourBar("rollout", side)],
    marks: [imagePanel("input", image, side), imagePanel("attention rollout", blend, side)],
  });
}

/**
 * Options of {@linkcode topKFigure}.
 *
 * @example
 * ```ts
 * import type { TopKOptions } from "./vit_figures.ts";
 * const o: TopKOptions = { title: "Top-5 classes" };
 * ```
 */
export interface TopKOptions {
  /** Replaces the default title (`Top-k classes`). */
  readonly title?: string;
  /** A subtitle (e.g. the weights), none by default. */
  readonly subtitle?: string;
}

/**
 * The top classes as a horizontal bar chart: one bar per class, the most probable at the top
 * (sorted by probability, ties in the given order), each labelled with its probability as a
 * percentage, the x axis in percent from 0.
 *
 * @example
 * ```ts
 * import { topKFigure } from "./vit_figures.ts";
 * const svg = await topKFigure([{ name: "cat", p: 0.2 }, { name: "dog", p: 0.7 }]);
 * svg.includes("70.0%"); // true
 * ```
 */
export async function topKFigure(
  top: readonly TopClass[],
  options: TopKOptions = {},
): Promise<string> {
  if (top.length === 0) throw new RangeError("topKFigure: no classes given");
  for (const { name, p } of top) {
    if (!(p >= 0 && p <= 1)) {
      throw new RangeError(`topKFigure: probability of "${name}" must be in [0, 1], got ${p}`);
    }
  }
  const sorted = top.map((c, i) => ({ ...c, i })).sort((a, b) => b.p - a.p || a.i - b.i);
  const values = sorted.map((c, rank) => ({ rank, name: c.name, p: c.p, label: percent(c.p) }));
  const names = JSON.stringify(sorted.map((c) => c.name));
  const max = sorted[0].p > 0 ? sorted[0].p : 1;
  const spec: VegaLiteSpec = {
    title: {
      text: options.title ?? `Top-${top.length} classes`,
      ...(options.subtitle ? { subtitle: options.subtitle } : {}),
      anchor: "start",
    },
    width: 420,
    height: { step: 28 },
    background: PLOT_CONFIG.background,
    padding: 10,
    data: { values },
    encoding: {
      y: {
        field: "rank",
        type: "ordinal",
        sort: "ascending",
        axis: { title: null, labelExpr: `${names}[datum.value]`, labelLimit: 400, ticks: false },
      },
      x: {
        field: "p",
        type: "quantitative",
        scale: { domain: [0, max * 1.18], nice: false },
        axis: { title: "probability", format: "~%", tickCount: 5, grid: true },
      },
    },
    layer: [
      { mark: { type: "bar", color: "#4c78a8" } },
      {
        mark: { type: "text", align: "left", baseline: "middle", dx: 4, fontSize: 13 },
        encoding: { text: { field: "label" } },
      },
    ],
    config: {
      font: "sans-serif",
      axis: { labelFontSize: 13, titleFontSize: 13, titleFontWeight: "normal" },
      title: { fontSize: 16, subtitleFontSize: 12, subtitleColor: "#444" },
      view: { stroke: null },
    },
  };
  return await renderVegaLite(spec);
}

/**
 * Options of {@linkcode inputImageFigure}.
 *
 * @example
 * ```ts
 * import type { InputImageOptions } from "./vit_figures.ts";
 * const o: InputImageOptions = { grid: [14, 14], title: "Input" };
 * ```
 */
export interface InputImageOptions {
  /** The patch grid `[gh, gw]` to draw over the image (none by default). */
  readonly grid?: readonly [number, number];
  /** Title (default "Input"). */
  readonly title?: string;
  /** Subtitle (default: the image's size). */
  readonly subtitle?: string;
}

/**
 * An RGB image with a patch grid drawn over it (thin translucent lines), pixel axes and a title:
 * the input as the model saw it.
 *
 * @example
 * ```ts
 * import { inputImageFigure } from "./vit_figures.ts";
 * const image = { width: 32, height: 32, data: new Uint8Array(32 * 32 * 3).fill(128) };
 * const svg = await inputImageFigure(image, { grid: [2, 2], subtitle: "center crop" });
 * ```
 */
export async function inputImageFigure(
  image: OverlayImage,
  options: InputImageOptions = {},
): Promise<string> {
  checkImage(image, "inputImageFigure");
  const side = 360;
  const s = side / Math.max(image.width, image.height);
  const width = Math.round(image.width * s);
  const height = Math.round(image.height * s);
  const lines: { x: number; y: number; x2: number; y2: number }[] = [];
  if (options.grid) {
    const [gh, gw] = options.grid;
    checkGrid(gh, gw, "inputImageFigure: grid");
    for (let c = 1; c < gw; c++) {
      const x = (c * image.width) / gw;
      lines.push({ x, y: 0, x2: x, y2: image.height });
    }
    for (let r = 1; r < gh; r++) {
      const y = (r * image.height) / gh;
      lines.push({ x: 0, y, x2: image.width, y2: y });
    }
  }
  return await renderVega({
    ...frame(
      options.title ?? "Input",
      options.subtitle ?? `${image.width}×${image.height} pixels`,
    ),
    width,
    height,
    data: [{ name: "lines", values: lines }],
    scales: [
      {
        name: "x",
        type: "linear",
        domain: [0, image.width],
        range: [0, width],
        nice: false,
        zero: false,
      },
      {
        name: "y",
        type: "linear",
        domain: [0, image.height],
        range: [0, height],
        nice: false,
        zero: false,
      },
    ],
    axes: [
      { orient: "bottom", scale: "x", title: "x (pixel column)", labelOverlap: true },
      { orient: "left", scale: "y", title: "y (pixel row)", labelOverlap: true },
    ],
    marks: [
      rasterImageMark(rgbPixels(image), width, height, true),
      gridLinesMark("lines", 0.75, 0.45),
    ],
  });
}

/**
 * Columns for `panels` small multiples: all in one row up to 5, else the 4, 5 or 6 columns
 * that leave the fewest empty cells in the last row (fewer columns on a tie).
 */
function panelColumns(panels: number): number {
  if (panels <= 5) return panels;
  let best = 4;
  for (const c of [5, 6]) {
    const empty = (n: number): number => (n - (panels % n)) % n;
    if (empty(c) < empty(best)) best = c;
  }
  return best;
}

/** A probability as a percentage with 3 significant digits (at most 1 decimal from 10%). */
function percent(p: number): string {
  const v = p * 100;
  if (v >= 10) return `${v.toFixed(1)}%`;
  if (v >= 0.1) return `${v.toFixed(2)}%`;
  if (v === 0) return "0%";
  return `${v.toPrecision(2)}%`;
}

function frame(title: string, subtitle: string | string[]): VegaSpec {
  return {
    padding: 10,
    autosize: "pad",
    background: PLOT_CONFIG.background,
    config: PLOT_CONFIG,
    title: { text: title, subtitle, anchor: "start", frame: "group" },
  };
}

/** One titled square panel holding `img` (aspect kept inside a `side` x `side` box). */
function imagePanel(title: string, img: OverlayImage | PixelImage, side: number): Mark {
  const s = side / Math.max(img.width, img.height);
  const width = Math.round(img.width * s);
  const height = Math.round(img.height * s);
  return {
    type: "group",
    title: { text: title, fontSize: 14, fontWeight: "normal", offset: 4, frame: "group" },
    encode: {
      enter: {
        width: { value: width },
        height: { value: height },
        stroke: { value: "#999" },
        strokeWidth: { value: 0.5 },
      },
    },
    marks: [rasterImageMark(rgbPixels(img), width, height, true)],
  };
}

function rgbPixels(img: OverlayImage | PixelImage): PixelImage {
  return { width: img.width, height: img.height, channels: 3, data: img.data };
}

function colourScale(max: number, map: ColourMap): NonNullable<VegaSpec["scales"]>[number] {
  return {
    name: "colour",
    type: "linear",
    domain: [0, max > 0 ? max : 1],
    range: { scheme: map },
    nice: false,
    zero: true,
  };
}

function colourBar(title: string, length: number): NonNullable<VegaSpec["legends"]>[number] {
  return {
    fill: "colour",
    type: "gradient",
    title,
    gradientLength: Math.max(60, length - 22),
    orient: "right",
    format: ".3~f",
  };
}

const tables = new Map<ColourMap, Uint8Array>();

/** 256 RGB entries of Vega's scheme `name` (what its colour bar draws). */
function colourTable(name: ColourMap): Uint8Array {
  let table = tables.get(name);
  if (table) return table;
  const scheme: unknown = vega.scheme(name);
  if (typeof scheme !== "function") throw new Error(`vega has no "${name}" colour scheme`);
  table = new Uint8Array(256 * 3);
  for (let i = 0; i < 256; i++) table.set(parseColour(String(scheme(i / 255))), 3 * i);
  tables.set(name, table);
  return table;
}

function parseColour(css: string): [number, number, number] {
  const rgb = /^rgb\((\d+),\s*(\d+),\s*(\d+)\)$/.exec(css);
  if (rgb) return [Number(rgb[1]), Number(rgb[2]), Number(rgb[3])];
  const h = /^#([0-9a-f]{6})$/i.exec(css);
  if (h) {
    const byte = (i: number): number => parseInt(h[1].slice(i, i + 2), 16);
    return [byte(0), byte(2), byte(4)];
  }
  throw new Error(`cannot parse the colour ${css}`);
}

function attentionDims(
  attn: TensorData,
  op: string,
): { batch: number; heads: number; n: number } {
  const [batch, heads, n, m] = attn.shape;
  if (attn.shape.length !== 4 || n !== m || n < 2 || batch < 1 || heads < 1) {
    throw new RangeError(
      `${op}: attention must be [B, heads, N, N] with N >= 2, got ${formatShape(attn.shape)}`,
    );
  }
  if (attn.data.length !== batch * heads * n * n) {
    throw new RangeError(
      `${op}: attention data has ${attn.data.length} values, shape ${formatShape(attn.shape)}`,
    );
  }
  return { batch, heads, n };
}

function checkTokens(grid: readonly [number, number], n: number, op: string): [number, number] {
  const [gh, gw] = grid;
  checkGrid(gh, gw, `${op}: grid`);
  if (1 + gh * gw !== n) {
    throw new RangeError(
      `${op}: a ${gh}x${gw} patch grid needs N = ${1 + gh * gw} tokens (class token + patches), ` +
        `the attention has N = ${n}`,
    );
  }
  return [gh, gw];
}

function checkGrid(h: number, w: number, op: string): void {
  if (!Number.isInteger(h) || !Number.isInteger(w) || h < 1 || w < 1) {
    throw new RangeError(`${op}: bad size ${h}x${w}`);
  }
}

function checkIndex(i: number, count: number, what: string): void {
  if (!Number.isInteger(i) || i < 0 || i >= count) {
    throw new RangeError(`${what} ${i} is out of range 0..${count - 1}`);
  }
}

function checkImage(image: OverlayImage, op: string): void {
  checkGrid(image.height, image.width, `${op}: image`);
  if (image.data.length !== image.width * image.height * 3) {
    throw new RangeError(
      `${op}: image data has ${image.data.length} bytes, ${image.width}x${image.height} RGB ` +
        `needs ${image.width * image.height * 3}`,
    );
  }
}

function identity(n: number): Float64Array {
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) out[i * n + i] = 1;
  return out;
}

/** `a @ b` for n x n row-major matrices. */
function matmul(a: Float64Array, b: Float64Array, n: number): Float64Array {
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < n; k++) {
      const aik = a[i * n + k];
      if (aik === 0) continue;
      const bo = k * n;
      const oo = i * n;
      for (let j = 0; j < n; j++) out[oo + j] += aik * b[bo + j];
    }
  }
  return out;
}
