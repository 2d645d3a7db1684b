/**
 * The seed tutorial's tokenizer figures as plots people read: titles, labelled axes and colour
 * bars, drawn as SVG by Vega (headless, see `plot.ts`). The pixels inside each plot are the
 * exact-pixel images of `figures.ts`, embedded as PNG, so the two never disagree; small grids
 * (patches, tokens) are drawn as vector squares in the same colours.
 *
 * Every function returns an SVG document; `svgToPng` in `plot.ts` rasterizes one. Images are
 * row-major: x is the column (width), y the row (height), the first row at the top.
 * @module
 */

import type { TensorData } from "../graph/tensor_data.ts";
import { formatShape } from "../graph/shape.ts";
import {
  embeddingHeatmapFigure,
  patchCellsFigure,
  type PixelImage,
  positionalSimilarityFigure,
  resizedImageFigure,
  tokenGridFigure,
} from "./figures.ts";
import {
  gridLinesMark,
  hex,
  PLOT_CONFIG,
  rasterImageMark,
  renderVega,
  type VegaSpec,
  viridisRange,
} from "./plot.ts";

type Mark = NonNullable<VegaSpec["marks"]>[number];
type Axis = NonNullable<VegaSpec["axes"]>[number];
type Scale = NonNullable<VegaSpec["scales"]>[number];

/** Display size of an image panel's longer side, in CSS pixels. */
const PANEL = 360;

/**
 * Options of the plotted figures.
 *
 * @example
 * ```ts
 * import type { PlotOptions } from "./plots.ts";
 * const o: PlotOptions = { title: "Resized input" };
 * ```
 */
export interface PlotOptions {
  /** Replaces the figure's default title. */
  readonly title?: string;
}

/**
 * The input image `[1, 3, H, W]` (values 0..1) with pixel axes and a title.
 *
 * @example
 * ```ts
 * import { resizedImagePlot } from "./plots.ts";
 * const svg = await resizedImagePlot({ shape: [1, 3, 8, 8], data: new Float32Array(192) });
 * svg.includes("Resized input"); // true
 * ```
 */
export async function resizedImagePlot(
  image: TensorData,
  options: PlotOptions = {},
): Promise<string> {
  const pixels = resizedImageFigure(image);
  const { width, height } = displaySize(pixels.width, pixels.height, PANEL);
  return await renderVega({
    ...frame(
      options.title ?? "Resized input",
      `${formatShape(image.shape)}: ${pixels.width}×${pixels.height} pixels, RGB`,
    ),
    width,
    height,
    scales: pixelScales(pixels.width, pixels.height, width, height),
    axes: [
      { orient: "bottom", scale: "x", title: "x (pixel column)", labelOverlap: true },
      { orient: "left", scale: "y", title: "y (pixel row)", labelOverlap: true },
    ],
    marks: [rasterImageMark(pixels, width, height, false)],
  });
}

/**
 * The input image cut into `patch` x `patch` patches: white lines on the patch borders, axes
 * numbering the patch columns and rows, and the patch count in the subtitle.
 *
 * @example
 * ```ts
 * import { patchGridPlot } from "./plots.ts";
 * const svg = await patchGridPlot({ shape: [1, 3, 8, 8], data: new Float32Array(192) }, 4);
 * ```
 */
export async function patchGridPlot(
  image: TensorData,
  patch: number,
  options: PlotOptions = {},
): Promise<string> {
  const pixels = resizedImageFigure(image);
  const { width: w, height: h } = pixels;
  if (!Number.isInteger(patch) || patch < 1 || w % patch !== 0 || h % patch !== 0) {
    throw new RangeError(`patchGridPlot: patch ${patch} must divide the image size ${h}x${w}`);
  }
  const cols = w / patch;
  const rows = h / patch;
  const { width, height } = displaySize(w, h, PANEL);
  const lines: { x: number; y: number; x2: number; y2: number }[] = [];
  for (let c = 1; c < cols; c++) lines.push({ x: c * patch, y: 0, x2: c * patch, y2: h });
  for (let r = 1; r < rows; r++) lines.push({ x: 0, y: r * patch, x2: w, y2: r * patch });
  return await renderVega({
    ...frame(
      options.title ?? "Patch grid",
      `${cols * rows} patches of ${patch}×${patch} pixels: ${cols} per row, ${rows} per column`,
    ),
    width,
    height,
    data: [{ name: "lines", values: lines }],
    scales: pixelScales(w, h, width, height),
    axes: [
      patchAxis("bottom", "x", cols, patch, "patch column"),
      patchAxis("left", "y", rows, patch, "patch row"),
    ],
    marks: [
      rasterImageMark(pixels, width, height, false),
      gridLinesMark("lines", 1.5),
    ],
  });
}

/**
 * The patch extractor's output `[1, C, h, w]` beside the input image: one square per patch,
 * min-max normalized over all values, as RGB when C = 3, else viridis of the channel mean with a
 * colour bar.
 *
 * @example
 * ```ts
 * import { patchExtractionPlot } from "./plots.ts";
 * const image = { shape: [1, 3, 8, 8], data: new Float32Array(192) };
 * const patches = { shape: [1, 3, 2, 2], data: Float32Array.from({ length: 12 }, (_, i) => i) };
 * const svg = await patchExtractionPlot(image, patches);
 * ```
 */
export async function patchExtractionPlot(
  image: TensorData,
  patches: TensorData,
  options: PlotOptions = {},
): Promise<string> {
  const pixels = resizedImageFigure(image);
  const cells = patchCellsFigure(patches);
  const [, c, h, w] = patches.shape;
  const { width, height } = displaySize(pixels.width, pixels.height, 300);
  const rgb = c === 3;
  const panels: Mark[] = [
    {
      type: "group",
      title: { text: `input ${formatShape(image.shape)}`, fontSize: 14, frame: "group" },
      encode: { enter: { width: { value: width }, height: { value: height } } },
      scales: pixelScales(pixels.width, pixels.height, width, height),
      axes: [
        { orient: "bottom", scale: "x", title: "x (pixel)", labelOverlap: true },
        { orient: "left", scale: "y", title: "y (pixel)", labelOverlap: true },
      ],
      marks: [rasterImageMark(pixels, width, height, false)],
    },
    {
      type: "group",
      title: { text: `conv output ${formatShape(patches.shape)}`, fontSize: 14, frame: "group" },
      encode: { enter: { width: { value: width }, height: { value: height } } },
      data: [{ name: "cells", values: cellData(cells) }],
      scales: bandScales(w, h, width, height),
      axes: [
        { orient: "bottom", scale: "col", title: "patch column", labelOverlap: true },
        { orient: "left", scale: "row", title: "patch row", labelOverlap: true },
      ],
      marks: [cellMark("cells")],
    },
  ];
  return await renderVega({
    ...frame(
      options.title ?? "Patch extraction",
      `${h * w} patches, ${c} channels, min-max normalized` +
        (rgb ? ", shown as RGB" : ", colour: the channel mean"),
    ),
    layout: { columns: 2, padding: 30, bounds: "full", align: "each" },
    marks: panels,
    ...(rgb ? {} : {
      scales: [{ name: "colour", type: "linear", domain: [0, 1], range: viridisRange() }],
      legends: [colourBar("colour", "channel mean (normalized)", height)],
    }),
  });
}

/**
 * Options of {@linkcode tokenStripPlot}.
 *
 * @example
 * ```ts
 * import type { TokenStripOptions } from "./plots.ts";
 * const o: TokenStripOptions = { perRow: 14 };
 * ```
 */
export interface TokenStripOptions extends PlotOptions {
  /** Tokens per row (default: all of them up to 32, then 32). */
  readonly perRow?: number;
  /** Side of one token's square in CSS pixels (default 18). */
  readonly cell?: number;
}

/**
 * The tokens `[1, N, C]` as a sequence of square cells wrapped into rows (read left to right,
 * top to bottom), coloured by their values (min-max normalized; C = 3 as RGB, else viridis of
 * the mean, with a colour bar). The x axis numbers the position within a row, the y axis labels
 * each row with the tokens it holds.
 *
 * @example
 * ```ts
 * import { tokenStripPlot } from "./plots.ts";
 * const tokens = { shape: [1, 40, 3], data: Float32Array.from({ length: 120 }, (_, i) => i) };
 * const svg = await tokenStripPlot(tokens, { perRow: 16 }); // 3 rows of 16, 16, 8
 * ```
 */
export async function tokenStripPlot(
  tokens: TensorData,
  options: TokenStripOptions = {},
): Promise<string> {
  if (tokens.shape.length !== 3 || tokens.shape[0] !== 1) {
    throw new RangeError(`tokenStripPlot: expected [1, N, C], got ${formatShape(tokens.shape)}`);
  }
  const [, n, c] = tokens.shape;
  const perRow = options.perRow ?? Math.max(1, Math.min(n, 32));
  const cellSize = options.cell ?? 18;
  const grid = tokenGridFigure(tokens, perRow);
  const rows = grid.height;
  const values = cellData(grid).filter((d) => d.row * perRow + d.col < n);
  const rgb = c === 3;
  const width = perRow * cellSize;
  const height = rows * cellSize;
  const rowLabel = `datum.value * ${perRow} + '–' + min(${n - 1}, datum.value * ${perRow} + ${
    perRow - 1
  })`;
  return await renderVega({
    ...frame(
      options.title ?? "Token sequence",
      `${n} tokens of ${c} values ${formatShape(tokens.shape)}, in order, ${perRow} per row; ` +
        `min-max normalized, ${rgb ? "as RGB" : "colour: the mean"}`,
    ),
    width,
    height,
    data: [{ name: "cells", values }],
    scales: [
      ...bandScales(perRow, rows, width, height),
      ...(rgb ? [] : [
        { name: "colour", type: "linear", domain: [0, 1], range: viridisRange() } as Scale,
      ]),
    ],
    axes: [
      { orient: "bottom", scale: "col", title: "position in the row", labelOverlap: true },
      {
        orient: "left",
        scale: "row",
        title: "tokens",
        encode: { labels: { update: { text: { signal: rowLabel } } } },
      },
    ],
    ...(rgb ? {} : { legends: [colourBar("colour", "mean (normalized)", Math.max(height, 60))] }),
    marks: [cellMark("cells")],
  });
}

/**
 * The token embeddings `[1, N, D]` as a heatmap: the first `values` values (default 100) of each
 * token, tokens along x and embedding dimensions down y, viridis over the values shown, with a
 * colour bar in the embeddings' own units.
 *
 * @example
 * ```ts
 * import { embeddingHeatmapPlot } from "./plots.ts";
 * const emb = { shape: [1, 16, 32], data: Float32Array.from({ length: 512 }, Math.sin) };
 * const svg = await embeddingHeatmapPlot(emb);
 * ```
 */
export async function embeddingHeatmapPlot(
  embeddings: TensorData,
  values = 100,
  options: PlotOptions = {},
): Promise<string> {
  const pixels = embeddingHeatmapFigure(embeddings, values);
  const [, n, d] = embeddings.shape;
  const shown = pixels.height;
  let lo = Infinity;
  let hi = -Infinity;
  for (let t = 0; t < n; t++) {
    for (let v = 0; v < shown; v++) {
      const x = embeddings.data[t * d + v];
      lo = Math.min(lo, x);
      hi = Math.max(hi, x);
    }
  }
  if (!(hi > lo)) hi = lo + 1; // constant: the colour bar still needs a range
  const width = Math.min(640, Math.max(320, n * 3));
  const height = Math.min(300, Math.max(160, shown * 2.5));
  return await renderVega({
    ...frame(
      options.title ?? "Token embeddings",
      `the first ${shown} of ${d} values of each of ${n} tokens ${formatShape(embeddings.shape)}`,
    ),
    width,
    height,
    scales: [
      { name: "x", type: "linear", domain: [0, n], range: [0, width], zero: false, nice: false },
      {
        name: "y",
        type: "linear",
        domain: [0, shown],
        range: [0, height],
        zero: false,
        nice: false,
      },
      { name: "colour", type: "linear", domain: [lo, hi], range: viridisRange(), nice: false },
    ],
    axes: [
      { orient: "bottom", scale: "x", title: "token", labelOverlap: true },
      { orient: "left", scale: "y", title: "embedding dimension", labelOverlap: true },
    ],
    legends: [colourBar("colour", "value", height)],
    marks: [rasterImageMark(pixels, width, height, false)],
  });
}

/**
 * The positional embeddings' similarity, as in Fig. 7 (centre) of the ViT paper: for each patch
 * position (row r, column c of the `gridH` x `gridW` grid) a small map of the cosine similarity
 * of its embedding to every other position's, laid out at (r, c); colour bar over [-1, 1].
 *
 * @example
 * ```ts
 * import { positionalSimilarityPlot } from "./plots.ts";
 * const pos = { shape: [1, 5, 8], data: Float32Array.from({ length: 40 }, Math.cos) };
 * const svg = await positionalSimilarityPlot(pos, 2, 2);
 * ```
 */
export async function positionalSimilarityPlot(
  pos: TensorData,
  gridH: number,
  gridW: number,
  options: PlotOptions = {},
): Promise<string> {
  const cell = Math.max(1, Math.min(8, Math.floor(64 / Math.max(gridH, gridW))));
  const pixels = positionalSimilarityFigure(pos, gridH, gridW, cell);
  const gap = 2;
  // One raster pixel per device pixel at the report's 2x, when that is a sensible size.
  const longest = Math.max(pixels.width, pixels.height);
  const { width, height } = displaySize(
    pixels.width,
    pixels.height,
    longest >= 600 && longest <= 1040 ? longest / 2 : 440,
  );
  const mapW = gridW * cell;
  const mapH = gridH * cell;
  const centres = (count: number, size: number): number[] =>
    Array.from({ length: count }, (_, i) => i * (size + gap) + size / 2);
  const index = (size: number): string => `round((datum.value - ${size / 2}) / ${size + gap})`;
  return await renderVega({
    ...frame(
      options.title ?? "Positional embedding similarity",
      `cosine similarity of each patch position's embedding (D = ${pos.shape[2]}) to all ` +
        `${gridH * gridW}; class token skipped`,
    ),
    width,
    height,
    scales: [
      ...pixelScales(pixels.width, pixels.height, width, height),
      { name: "colour", type: "linear", domain: [-1, 1], range: viridisRange() },
    ],
    axes: [
      {
        orient: "bottom",
        scale: "x",
        title: "input patch column",
        values: centres(gridW, mapW),
        labelOverlap: true,
        encode: { labels: { update: { text: { signal: index(mapW) } } } },
      },
      {
        orient: "left",
        scale: "y",
        title: "input patch row",
        values: centres(gridH, mapH),
        labelOverlap: true,
        encode: { labels: { update: { text: { signal: index(mapH) } } } },
      },
    ],
    legends: [colourBar("colour", "cosine similarity", height)],
    marks: [rasterImageMark(pixels, width, height, false)],
  });
}

/** The title block and shared settings of a figure. */
function frame(title: string, subtitle: string): VegaSpec {
  return {
    padding: 10,
    autosize: "pad",
    background: PLOT_CONFIG.background,
    config: PLOT_CONFIG,
    title: { text: title, subtitle, anchor: "start", frame: "group" },
  };
}

/** Display size with the longer side `longest` CSS pixels, aspect kept. */
function displaySize(w: number, h: number, longest: number): { width: number; height: number } {
  const s = longest / Math.max(w, h);
  return { width: Math.round(w * s), height: Math.round(h * s) };
}

/**
 * `x` and `y` from pixel coordinates of a `w` x `h` image to a `width` x `height` plot area,
 * y downwards (row 0 at the top).
 */
function pixelScales(w: number, h: number, width: number, height: number): Scale[] {
  return [
    { name: "x", type: "linear", domain: [0, w], range: [0, width], zero: false, nice: false },
    { name: "y", type: "linear", domain: [0, h], range: [0, height], zero: false, nice: false },
  ];
}

/** `col` and `row` band scales over `cols` x `rows` cells, row 0 at the top. */
function bandScales(cols: number, rows: number, width: number, height: number): Scale[] {
  const ids = (n: number): number[] => Array.from({ length: n }, (_, i) => i);
  return [
    {
      name: "col",
      type: "band",
      domain: ids(cols),
      range: [0, width],
      paddingInner: 0.1,
      paddingOuter: 0.05,
    },
    {
      name: "row",
      type: "band",
      domain: ids(rows),
      range: [0, height],
      paddingInner: 0.1,
      paddingOuter: 0.05,
    },
  ];
}

/** An axis numbering the `count` patches (ticks at patch centres) of a pixel scale. */
function patchAxis(
  orient: "bottom" | "left",
  scale: string,
  count: number,
  patch: number,
  title: string,
): Axis {
  return {
    orient,
    scale,
    title,
    values: Array.from({ length: count }, (_, i) => (i + 0.5) * patch),
    labelOverlap: true,
    encode: { labels: { update: { text: { signal: `floor(datum.value / ${patch})` } } } },
  };
}

/** One datum per pixel of `img`: its column, row and colour. */
function cellData(img: PixelImage): { col: number; row: number; fill: string }[] {
  const out: { col: number; row: number; fill: string }[] = [];
  for (let row = 0; row < img.height; row++) {
    for (let col = 0; col < img.width; col++) {
      const o = (row * img.width + col) * img.channels;
      out.push({ col, row, fill: hex([...img.data.subarray(o, o + 3)]) });
    }
  }
  return out;
}

/** Squares at (`col`, `row`) of the band scales, filled with each datum's colour. */
function cellMark(data: string): Mark {
  return {
    type: "rect",
    from: { data },
    encode: {
      enter: {
        x: { scale: "col", field: "col" },
        width: { scale: "col", band: 1 },
        y: { scale: "row", field: "row" },
        height: { scale: "row", band: 1 },
        fill: { field: "fill" },
      },
    },
  };
}

/** A vertical colour bar for the scale `scale`, its title included as high as a `length` plot. */
function colourBar(
  scale: string,
  title: string,
  length: number,
): NonNullable<VegaSpec["legends"]>[number] {
  return {
    fill: scale,
    type: "gradient",
    title,
    gradientLength: Math.max(60, length - 22),
    orient: "right",
  };
}
