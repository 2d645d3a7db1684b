/**
 * The HTML of Tessera's reports: a self-contained page (every image a data: URI, no scripts,
 * nothing fetched), the figures with captions and a link to each figure's file, a provenance
 * block saying what produced the run, and the graph summary.
 * @module
 */

import { Buffer } from "node:buffer";

/**
 * What produced a run, shown at the top of a report: the weights, the backend, the
 * preprocessing, the original image size and the Tessera version.
 *
 * @example
 * ```ts
 * import type { ReportProvenance } from "./report_html.ts";
 * const p: ReportProvenance = {
 *   weights: "vit_tiny_patch16_224.safetensors",
 *   backend: "wasm",
 *   preprocessing: "timm eval: resize 248 bicubic, center crop 224, mean 0.5, std 0.5",
 *   originalSize: { width: 300, height: 200 },
 *   version: "0.1.0",
 * };
 * ```
 */
export interface ReportProvenance {
  /** The weights file's path, or "random init" (with the seed, if any). */
  readonly weights: string;
  /** The backend that ran (`model.backend`), with its reason if wanted. */
  readonly backend: string;
  /** How the image became the input tensor. */
  readonly preprocessing: string;
  /** The image's size before preprocessing. */
  readonly originalSize: { readonly width: number; readonly height: number };
  /** Tessera's version (deno.json's `version`). */
  readonly version: string;
}

/**
 * One figure of a page: its file (a `.png` or `.svg` inside the report folder), the bytes to
 * embed, its caption, the display magnification and an optional second file to link (the
 * vector version of a PNG).
 *
 * @example
 * ```ts
 * import type { PageFigure } from "./report_html.ts";
 * const f: PageFigure = { file: "a.svg", bytes: new Uint8Array(), caption: "A" };
 * ```
 */
export interface PageFigure {
  /** File name inside the report folder, linked from the caption. */
  readonly file: string;
  /** The file's bytes, embedded as a data: URI. */
  readonly bytes: Uint8Array;
  /** What the figure shows. */
  readonly caption: string;
  /** Display magnification (0.5 for a figure rasterized at 2x); PNGs only. */
  readonly scale?: number;
  /** Another file of the same figure to link (e.g. its `.svg`). */
  readonly alternate?: string;
}

/**
 * What {@linkcode pageHtml} puts in the page, top to bottom.
 *
 * @example
 * ```ts
 * import type { PageParts } from "./report_html.ts";
 * const p: PageParts = { title: "t", figures: [], summary: "graph g" };
 * ```
 */
export interface PageParts {
  /** Page title and heading. */
  readonly title: string;
  /** Shown right under the heading, when given. */
  readonly provenance?: ReportProvenance;
  /** The figures, numbered in order. */
  readonly figures: readonly PageFigure[];
  /** `graph.summary()`, shown preformatted at the end. */
  readonly summary: string;
  /** Put the summary in a closed `<details>` (for long summaries) instead of in the open. */
  readonly foldSummary?: boolean;
}

/**
 * The report page as HTML. Each figure is an `<img>` with a data: URI and a caption linking its
 * file (and its alternate); the provenance is a definition list; nothing is loaded from
 * elsewhere.
 *
 * @example
 * ```ts
 * import { pageHtml } from "./report_html.ts";
 * const html = pageHtml({ title: "Empty", figures: [], summary: "graph g" });
 * html.includes("<pre>graph g</pre>"); // true
 * ```
 */
export function pageHtml(parts: PageParts): string {
  const figures = parts.figures.map((fig, i) => figureHtml(fig, i + 1));
  const summary = parts.foldSummary
    ? `<details>\n<summary>Graph summary (<code>graph.summary()</code>)</summary>\n` +
      `<pre>${escapeHtml(parts.summary)}</pre>\n</details>`
    : `<h2>Graph summary</h2>\n<pre>${escapeHtml(parts.summary)}</pre>`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${escapeHtml(parts.title)}</title>
<link rel="icon" href="data:,">
<style>
  body { font-family: sans-serif; margin: 2em auto; max-width: 1100px; padding: 0 1em; }
  figure { margin: 2em 0; }
  figure img { max-width: 100%; height: auto; display: block; }
  img.pixels { image-rendering: pixelated; }
  figcaption { margin-top: 0.5em; color: #333; }
  figcaption a { color: #555; font-size: 0.9em; }
  dl.provenance { display: grid; grid-template-columns: max-content auto; gap: 0.25em 1em; }
  dl.provenance dt { font-weight: bold; }
  dl.provenance dd { margin: 0; overflow-wrap: anywhere; }
  pre { background: #f6f6f6; padding: 1em; overflow-x: auto; }
</style>
</head>
<body>
<h1>${escapeHtml(parts.title)}</h1>
${parts.provenance ? provenanceHtml(parts.provenance) + "\n" : ""}${figures.join("\n")}
${summary}
</body>
</html>
`;
}

/**
 * The provenance block: weights, backend, preprocessing, original image size and version as a
 * `<dl class="provenance">`.
 *
 * @example
 * ```ts
 * import { provenanceHtml } from "./report_html.ts";
 * provenanceHtml({
 *   weights: "random init", backend: "js", preprocessing: "ToTensor",
 *   originalSize: { width: 3, height: 2 }, version: "0.1.0",
 * }).includes("<dd>3×2 pixels</dd>"); // true
 * ```
 */
export function provenanceHtml(p: ReportProvenance): string {
  const rows: [string, string][] = [
    ["Weights", p.weights],
    ["Backend", p.backend],
    ["Preprocessing", p.preprocessing],
    ["Original image", `${p.originalSize.width}×${p.originalSize.height} pixels`],
    ["Tessera", p.version],
  ];
  const items = rows.map(([k, v]) => `  <dt>${escapeHtml(k)}</dt><dd>${escapeHtml(v)}</dd>`);
  return `<dl class="provenance">\n${items.join("\n")}\n</dl>`;
}

/**
 * One `<figure>`: the image (PNG or SVG as a data: URI; PNGs sized by `scale`, small pixel
 * images enlarged by a whole factor with crisp pixels) and the caption with its file links.
 *
 * @example
 * ```ts
 * import { figureHtml } from "./report_html.ts";
 * const svg = new TextEncoder().encode('<svg xmlns="http://www.w3.org/2000/svg"/>');
 * figureHtml({ file: "a.svg", bytes: svg, caption: "A" }, 1).includes("Figure 1. A"); // true
 * ```
 */
export function figureHtml(fig: PageFigure, number: number): string {
  const caption = `Figure ${number}. ${fig.caption}`;
  const alt = escapeHtml(caption);
  let img: string;
  if (fig.file.endsWith(".svg")) {
    img = `<img src="${dataUri("image/svg+xml", fig.bytes)}" alt="${alt}">`;
  } else if (fig.file.endsWith(".png")) {
    const [w, h] = pngSize(fig.bytes, fig.file);
    // Pixel figures are often tiny (a 32x32 input): enlarge by a whole factor so pixels stay
    // square.
    const scale = fig.scale ?? Math.min(8, Math.max(1, Math.ceil(320 / w)));
    const cls = scale > 1 ? ` class="pixels"` : "";
    img = `<img${cls} src="${dataUri("image/png", fig.bytes)}" width="${Math.round(w * scale)}" ` +
      `height="${Math.round(h * scale)}" alt="${alt}">`;
  } else {
    throw new Error(`report: ${fig.file} is not a .png or .svg`);
  }
  const links = [fig.file, ...(fig.alternate ? [fig.alternate] : [])]
    .map((f) => `<a href="${escapeHtml(f)}">${escapeHtml(f)}</a>`)
    .join(", ");
  return [
    `<figure>`,
    `  ${img}`,
    `  <figcaption>${escapeHtml(caption)} (${links})</figcaption>`,
    `</figure>`,
  ].join("\n");
}

/**
 * A PNG's width and height from its IHDR chunk; throws when `bytes` is not a PNG.
 *
 * @example
 * ```ts
 * import { pngSize } from "./report_html.ts";
 * import { encodePng } from "../io/image.ts";
 * pngSize(encodePng({ width: 3, height: 2, channels: 3, data: new Uint8Array(18) }), "x.png");
 * // [3, 2]
 * ```
 */
export function pngSize(bytes: Uint8Array, file: string): [number, number] {
  const signature = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  if (bytes.length < 24 || signature.some((b, i) => bytes[i] !== b)) {
    throw new Error(`writeReport: ${file} is not a PNG file`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return [view.getUint32(16), view.getUint32(20)];
}

/**
 * Bytes as a base64 data: URI.
 *
 * @example
 * ```ts
 * import { dataUri } from "./report_html.ts";
 * dataUri("text/plain", new TextEncoder().encode("hi")); // "data:text/plain;base64,aGk="
 * ```
 */
export function dataUri(mime: string, bytes: Uint8Array): string {
  return `data:${mime};base64,${Buffer.from(bytes).toString("base64")}`;
}

/**
 * `s` with `&`, `<`, `>` and `"` escaped for HTML text and attribute values.
 *
 * @example
 * ```ts
 * import { escapeHtml } from "./report_html.ts";
 * escapeHtml('<a href="x">'); // "&lt;a href=&quot;x&quot;&gt;"
 * ```
 */
export function escapeHtml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(
    /"/g,
    "&quot;",
  );
}
