/**
 * Plotting plumbing shared by the plotted figures: Vega specs rendered to SVG headless (no DOM,
 * no canvas), Vega-Lite specs compiled to Vega first, raster images embedded as PNG data: URIs,
 * colour ranges that match the pixel figures' viridis, and SVG rasterized to PNG by the resvg of
 * `graph_diagram.ts` (same font setup, so the text renders).
 *
 * Vega measures text to lay out axes, legends and titles. Without a canvas it guesses
 * 0.8 em per character, which is far too wide for most text; here it measures with Arial's
 * advance widths instead (Liberation Sans, the font the PNGs are drawn with, has Arial's
 * metrics), widened 5% so DejaVu Sans, the fallback font, still fits.
 * @module
 */

import { Buffer } from "node:buffer";
import * as vega from "npm:vega@6.4.0";
import { compile as compileVegaLite, type TopLevelSpec } from "npm:vega-lite@6.5.0";
import { encodePng } from "../io/image.ts";
import { type PixelImage, viridis } from "./figures.ts";
import { rasterizeSvg } from "./graph_diagram.ts";

/** A Vega specification (vega-typings' `Spec`). */
export type VegaSpec = vega.Spec;

/** A Vega-Lite specification (vega-lite's `TopLevelSpec`). */
export type VegaLiteSpec = TopLevelSpec;

// Arial / Helvetica advance widths in 1/1000 em of the printable ASCII characters 32..126
// (space to "~"), 16 a line.
const ARIAL_WIDTHS: readonly number[] = (
  "278 278 355 556 556 889 667 191 333 333 389 584 278 333 278 278 " +
  "556 556 556 556 556 556 556 556 556 556 278 278 584 584 584 556 " +
  "1015 667 667 722 722 667 611 778 722 278 500 667 556 833 722 778 " +
  "667 778 722 667 611 722 667 944 667 667 611 278 278 278 469 556 " +
  "333 556 556 500 556 556 278 556 556 222 222 500 222 833 556 556 " +
  "556 556 333 500 278 556 500 722 500 500 500 334 260 334 584"
).split(" ").map(Number);

/** Width of a character outside printable ASCII (×, …, accented letters): a generous guess. */
const OTHER_WIDTH = 700;

/**
 * The width in pixels of `text` in Arial at `fontSize` px (bold 10% wider), plus 5% so that
 * DejaVu Sans fits too. This is what Vega is told to use for layout.
 *
 * @example
 * ```ts
 * import { textWidth } from "./plot.ts";
 * textWidth("head 0", 10); // about 30
 * ```
 */
export function textWidth(text: string, fontSize: number, bold = false): number {
  let units = 0;
  for (const ch of text) {
    const code = ch.codePointAt(0) ?? 0;
    units += code >= 32 && code <= 126 ? ARIAL_WIDTHS[code - 32] : OTHER_WIDTH;
  }
  return (units / 1000) * fontSize * (bold ? 1.1 : 1) * 1.05;
}

/** The item Vega passes to its text measurer. */
interface TextItem {
  readonly fontSize?: number | string;
  readonly fontWeight?: number | string;
}

/** Vega's text measurer (`vega-scenegraph`'s `textMetrics`), which a caller may replace. */
interface TextMetrics {
  width: (item: TextItem, text: string) => number;
}

let measuring = false;

function measureTextLikeArial(): void {
  if (measuring) return;
  const metrics = (vega as unknown as { textMetrics?: TextMetrics }).textMetrics;
  if (!metrics) return; // an older Vega: keep its estimate
  metrics.width = (item, text) => {
    const size = item.fontSize == null ? 11 : Number(item.fontSize) || 0;
    const weight = item.fontWeight;
    const bold = weight === "bold" || (typeof weight === "number" && weight >= 600);
    return textWidth(String(text ?? ""), size, bold);
  };
  measuring = true;
}

/**
 * Renders a Vega spec to an SVG document, headless: no DOM, no canvas, nothing fetched (images
 * must be data: URIs).
 *
 * @example
 * ```ts
 * import { renderVega } from "./plot.ts";
 * const svg = await renderVega({
 *   width: 100, height: 20,
 *   marks: [{ type: "rect", encode: { enter: { width: { value: 50 }, height: { value: 20 } } } }],
 * }); // "<svg ...>...</svg>"
 * ```
 */
export async function renderVega(spec: VegaSpec): Promise<string> {
  measureTextLikeArial();
  const view = new vega.View(vega.parse(spec), { renderer: "none" });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/**
 * Compiles a Vega-Lite spec to Vega and renders it with {@linkcode renderVega}.
 *
 * @example
 * ```ts
 * import { renderVegaLite } from "./plot.ts";
 * const svg = await renderVegaLite({
 *   data: { values: [{ a: "x", b: 1 }] },
 *   mark: "bar",
 *   encoding: { y: { field: "a", type: "nominal" }, x: { field: "b", type: "quantitative" } },
 * });
 * ```
 */
export async function renderVegaLite(spec: VegaLiteSpec): Promise<string> {
  return await renderVega(compileVegaLite(spec).spec);
}

/**
 * An SVG figure as PNG bytes: {@linkcode rasterizeSvg} at `scale` (2 by default, for sharp text
 * when shown at half size), with images Vega marks crisp (`smooth: false`) drawn with nearest
 * neighbour, as browsers draw them.
 *
 * @example
 * ```ts
 * import { svgToPng } from "./plot.ts";
 * const png = await svgToPng('<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"/>');
 * ```
 */
export async function svgToPng(svg: string, scale = 2): Promise<Uint8Array> {
  // Vega marks a crisp image `image-rendering: optimizeSpeed; image-rendering: pixelated`.
  // resvg knows only the first and takes the unknown second as "smooth": drop it, so pixel
  // figures stay pixels (and render four times faster).
  const crisp = svg.replace(
    /(image-rendering:\s*optimizeSpeed);\s*image-rendering:\s*pixelated/g,
    "$1",
  );
  return await rasterizeSvg(crisp, scale);
}

/**
 * A pixel image as a `data:image/png;base64,...` URI, for an image mark.
 *
 * @example
 * ```ts
 * import { pngDataUri } from "./plot.ts";
 * pngDataUri({ width: 1, height: 1, channels: 3, data: new Uint8Array(3) }).slice(0, 22);
 * // "data:image/png;base64,"
 * ```
 */
export function pngDataUri(image: PixelImage): string {
  return `data:image/png;base64,${Buffer.from(encodePng(image)).toString("base64")}`;
}

/**
 * `stops` colours of the pixel figures' viridis (matplotlib's) from 0 to 1 as `#rrggbb`, for a
 * Vega colour scale's `range`: a colour bar then shows exactly the colours of the pixels.
 *
 * @example
 * ```ts
 * import { viridisRange } from "./plot.ts";
 * viridisRange(2); // ["#440154", "#fde725"]
 * ```
 */
export function viridisRange(stops = 32): string[] {
  return Array.from({ length: stops }, (_, i) => hex(viridis(i / (stops - 1))));
}

/**
 * An RGB triple as `#rrggbb`.
 *
 * @example
 * ```ts
 * import { hex } from "./plot.ts";
 * hex([255, 0, 16]); // "#ff0010"
 * ```
 */
export function hex(rgb: readonly number[]): string {
  return `#${rgb.slice(0, 3).map((v) => v.toString(16).padStart(2, "0")).join("")}`;
}

/**
 * The Vega `config` every figure shares: white background, sans-serif text larger than Vega's
 * defaults (the report shows figures at their CSS size, beside 16 px body text).
 *
 * @example
 * ```ts
 * import { PLOT_CONFIG } from "./plot.ts";
 * PLOT_CONFIG.background; // "white"
 * ```
 */
export const PLOT_CONFIG: Readonly<vega.Config> & { readonly background: string } = {
  background: "white",
  text: { font: "sans-serif" },
  title: {
    font: "sans-serif",
    fontSize: 16,
    subtitleFontSize: 12,
    subtitleColor: "#444",
    offset: 8,
  },
  axis: {
    labelFont: "sans-serif",
    titleFont: "sans-serif",
    labelFontSize: 12,
    titleFontSize: 13,
    titleFontWeight: "normal",
    labelColor: "#222",
  },
  legend: {
    labelFont: "sans-serif",
    titleFont: "sans-serif",
    labelFontSize: 12,
    titleFontSize: 13,
    titleFontWeight: "normal",
  },
};

/**
 * A Vega image mark drawing `pixels` over a `width` x `height` plot area from the origin:
 * `smooth: false` keeps crisp pixels (exact-pixel figures), `true` lets the renderer interpolate
 * (photos shown beside overlays).
 *
 * @example
 * ```ts
 * import { rasterImageMark } from "./plot.ts";
 * const pixel = { width: 1, height: 1, channels: 4 as const, data: new Uint8Array(4) };
 * const mark = rasterImageMark(pixel, 100, 100, false);
 * ```
 */
export function rasterImageMark(
  pixels: PixelImage,
  width: number,
  height: number,
  smooth: boolean,
): NonNullable<VegaSpec["marks"]>[number] {
  return {
    type: "image",
    encode: {
      enter: {
        url: { value: pngDataUri(pixels) },
        x: { value: 0 },
        y: { value: 0 },
        width: { value: width },
        height: { value: height },
        aspect: { value: false },
        smooth: { value: smooth },
      },
    },
  };
}

/**
 * White rule marks from a data set of segments (`x`, `y`, `x2`, `y2` in the `x` and `y` scales):
 * patch-grid lines drawn over an image.
 *
 * @example
 * ```ts
 * import { gridLinesMark } from "./plot.ts";
 * const mark = gridLinesMark("lines", 1.5);
 * ```
 */
export function gridLinesMark(
  data: string,
  width: number,
  opacity = 1,
): NonNullable<VegaSpec["marks"]>[number] {
  return {
    type: "rule",
    from: { data },
    encode: {
      enter: {
        x: { scale: "x", field: "x" },
        y: { scale: "y", field: "y" },
        x2: { scale: "x", field: "x2" },
        y2: { scale: "y", field: "y2" },
        stroke: { value: "white" },
        ...(opacity === 1 ? {} : { strokeOpacity: { value: opacity } }),
        strokeWidth: { value: width },
      },
    },
  };
}
