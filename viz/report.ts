/**
 * The tokenizer's figures as PNG files and one self-contained HTML report (every image a
 * data: URI, no scripts, nothing fetched), so a run can be inspected in any browser.
 * @module
 */

import { Buffer } from "node:buffer";
import type { Graph } from "../graph/ir.ts";
import { formatShape } from "../graph/shape.ts";
import type { TensorData } from "../graph/tensor_data.ts";
import { encodePng } from "../io/image.ts";
import { writeDirAtomic, writeFileAtomic } from "../io/files.ts";
import {
  embeddingHeatmapFigure,
  patchExtractionFigure,
  patchGridFigure,
  type PixelImage,
  positionalSimilarityFigure,
  resizedImageFigure,
  tokenStripFigure,
} from "./figures.ts";
import { renderGraphPng, renderGraphSvg } from "./graph_diagram.ts";

/**
 * One figure of a report: an image file (`.png` or `.svg`, relative to the report's folder)
 * and its caption. `scale` is the display magnification; by default small pixel figures are
 * enlarged (with crisp pixels) to at least 320 px wide.
 *
 * @example
 * ```ts
 * import type { ReportFigure } from "./report.ts";
 * const f: ReportFigure = { file: "01_resized.png", caption: "Resized input [1, 3, 224, 224]" };
 * ```
 */
export interface ReportFigure {
  /** File name inside the report folder. */
  readonly file: string;
  /** What the figure shows, with shapes and counts. */
  readonly caption: string;
  /** Display magnification (e.g. 0.5 for an image rendered at 2x). */
  readonly scale?: number;
}

/**
 * What `writeReport` puts in the page.
 *
 * @example
 * ```ts
 * import type { ReportParts } from "./report.ts";
 * const parts: ReportParts = { title: "ViT tokenizer", summary: "graph ...", figures: [] };
 * ```
 */
export interface ReportParts {
  /** The figures, in order. */
  readonly figures: readonly ReportFigure[];
  /** The printed graph summary (`graph.summary()`), shown preformatted. */
  readonly summary: string;
  /** Page title and heading. */
  readonly title: string;
}

/**
 * The values `writeFigures` draws: the input image `[1, 3, H, W]`, the conv output
 * `[1, C, H/P, W/P]`, the tokens `[1, N, C]`, the token embeddings `[1, N, D]`, the positional
 * embedding weight `[1, N + 1, D]`, the patch size P and the graph.
 *
 * @example
 * ```ts
 * import type { FigureInputs } from "./report.ts";
 * type Stages = Omit<FigureInputs, "patch" | "graph">;
 * ```
 */
export interface FigureInputs {
  /** The resized input image `[1, 3, H, W]`, values in 0..1. */
  readonly image: TensorData;
  /** The patch extractor's output `[1, C, H/P, W/P]`. */
  readonly patches: TensorData;
  /** The tokens `[1, N, C]`. */
  readonly tokens: TensorData;
  /** The token embeddings `[1, N, D]`. */
  readonly embeddings: TensorData;
  /** The positional embedding `[1, N + 1, D]`. */
  readonly pos: TensorData;
  /** The patch size P. */
  readonly patch: number;
  /** The graph that computed them. */
  readonly graph: Graph;
}

/**
 * Writes the seven figures into `dir` (created if missing) as PNG files — 01_resized.png,
 * 02_patch_grid.png, 03_patch_extraction.png, 04_token_strip.png, 05_embedding_heatmap.png,
 * 06_positional_similarity.png, 07_graph.png, plus 07_graph.svg — and returns their captions.
 *
 * @example
 * ```ts
 * import { compile, initParams, seedTokenizer } from "../mod.ts";
 * import { writeFigures, writeReport } from "./report.ts";
 * const graph = seedTokenizer({ height: 32, width: 32, patch: 8, embedding: 16 });
 * const model = await compile(graph, { backend: "reference" });
 * const image = { shape: [1, 3, 32, 32], data: new Float32Array(3 * 32 * 32).fill(0.5) };
 * const { stages } = await model.run({ image }, { stages: "all" });
 * const pos = initParams(graph).get("positional_embedding.positional_embedding")!;
 * const figures = await writeFigures("out/report", {
 *   image, patches: stages.patches, tokens: stages.tokens, embeddings: stages.embeddings,
 *   pos, patch: 8, graph,
 * });
 * await writeReport("out/report", { title: "ViT tokenizer", summary: graph.summary(), figures });
 * ```
 */
export async function writeFigures(dir: string, inputs: FigureInputs): Promise<ReportFigure[]> {
  await Deno.mkdir(dir, { recursive: true });
  return await figuresInto(dir, inputs, writeFileAtomic);
}

/** How a file's bytes reach the disk: atomically, or plainly inside a temporary folder. */
type Writer = (path: string, bytes: Uint8Array) => Promise<void>;

async function figuresInto(
  dir: string,
  inputs: FigureInputs,
  write: Writer,
): Promise<ReportFigure[]> {
  const { image, patches, tokens, embeddings, pos, patch, graph } = inputs;
  const [, channels, height, width] = image.shape;
  const rows = height / patch;
  const cols = width / patch;
  const n = rows * cols;
  const [, tokenCount, tokenWidth] = tokens.shape;
  const [, embCount, d] = embeddings.shape;
  const shown = Math.min(100, d);

  const pixels: [string, PixelImage, string][] = [
    [
      "01_resized.png",
      resizedImageFigure(image),
      `Resized input: ${formatShape(image.shape)} (${height}x${width} pixels, ${channels} ` +
      `channels)`,
    ],
    [
      "02_patch_grid.png",
      patchGridFigure(image, patch),
      `Patch grid: ${n} patches of ${patch}x${patch} (${cols} per row, ${rows} per column)`,
    ],
    [
      "03_patch_extraction.png",
      // Enlarge small inputs so the two panels stay readable.
      patchExtractionFigure(image, patches, Math.max(1, Math.floor(224 / width))),
      `Patch extraction: conv output ${formatShape(patches.shape)} (${
        patches.shape[2] * patches.shape[3]
      } patches, ${patches.shape[1]} channels, min-max normalized, ` +
      `${patches.shape[1] === 3 ? "as RGB" : "viridis of the channel mean"}) beside the input ` +
      formatShape(image.shape),
    ],
    [
      "04_token_strip.png",
      tokenStripFigure(tokens),
      `Token strip: ${tokenCount} tokens of ${tokenWidth} values each ${
        formatShape(tokens.shape)
      }, min-max normalized, ${tokenWidth === 3 ? "as RGB" : "viridis of the mean"}`,
    ],
    [
      "05_embedding_heatmap.png",
      embeddingHeatmapFigure(embeddings, 100),
      `Token embeddings: the first ${shown} of ${d} values of each of ${embCount} tokens ` +
      `${
        formatShape(embeddings.shape)
      }; tokens along x, values along y, viridis, min-max normalized`,
    ],
    [
      "06_positional_similarity.png",
      positionalSimilarityFigure(pos, rows, cols, 4),
      `Positional embedding similarity: cosine similarity of each of the ${n} patch positions' ` +
      `embeddings (D = ${pos.shape[2]}) to every other, as a ${rows}x${cols} grid of ` +
      `${rows}x${cols} maps (class token skipped; viridis over [-1, 1]); pos ${
        formatShape(pos.shape)
      }`,
    ],
  ];
  const figures: ReportFigure[] = [];
  for (const [file, img, caption] of pixels) {
    await write(`${dir}/${file}`, encodePng(img));
    figures.push({ file, caption });
  }

  const svg = await renderGraphSvg(graph);
  await write(`${dir}/07_graph.svg`, new TextEncoder().encode(svg));
  const params = graph.params().length;
  const edges = graph.nodes.reduce((s, node) => s + node.inputs.length, 0);
  const graphCaption = `Graph ${graph.name}: ${graph.nodes.length} nodes (${params} ` +
    `parameters), ${edges} edges labelled with the producer's shape, output ` +
    `${formatShape(graph.outShape)}; laid out by Graphviz`;
  let png: Uint8Array;
  try {
    png = await renderGraphPng(graph, 2); // 2x for sharp text; shown at half size
  } catch (e) {
    // No font to rasterize with: the SVG alone still shows the graph (browsers draw it).
    const why = e instanceof Error ? e.message : String(e);
    figures.push({ file: "07_graph.svg", caption: `${graphCaption} (no PNG: ${why})` });
    return figures;
  }
  await write(`${dir}/07_graph.png`, png);
  figures.push({ file: "07_graph.png", caption: graphCaption, scale: 0.5 });
  return figures;
}

/**
 * Writes `dir/report.html` (creating `dir`): the title, every figure embedded as a data: URI
 * with its caption (a PNG's `.svg` sibling, if any, is embedded too), and the graph summary in
 * a `<pre>`. The page loads nothing else.
 *
 * @example
 * ```ts
 * import { writeReport } from "./report.ts";
 * await writeReport("out/report", { title: "Empty", summary: "graph g", figures: [] });
 * ```
 */
export async function writeReport(dir: string, parts: ReportParts): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  await reportInto(dir, parts, writeFileAtomic);
}

async function reportInto(dir: string, parts: ReportParts, write: Writer): Promise<void> {
  const body: string[] = [];
  for (const [i, fig] of parts.figures.entries()) {
    const bytes = await Deno.readFile(`${dir}/${fig.file}`);
    const caption = `Figure ${i + 1}. ${fig.caption}`;
    const lines = [`<figure>`, `  ${imgTag(fig, bytes, caption)}`];
    if (fig.file.endsWith(".png")) {
      const svg = await readIfExists(`${dir}/${fig.file.slice(0, -4)}.svg`);
      if (svg) {
        lines.push(
          `  <details open><summary>Vector version (SVG)</summary>`,
          `  <img src="${dataUri("image/svg+xml", svg)}" alt="${escapeHtml(caption)} (SVG)">`,
          `  </details>`,
        );
      }
    }
    lines.push(`  <figcaption>${escapeHtml(caption)}</figcaption>`, `</figure>`);
    body.push(lines.join("\n"));
  }
  const html = `<!doctype html>
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
  pre { background: #f6f6f6; padding: 1em; overflow-x: auto; }
</style>
</head>
<body>
<h1>${escapeHtml(parts.title)}</h1>
${body.join("\n")}
<h2>Graph summary</h2>
<pre>${escapeHtml(parts.summary)}</pre>
</body>
</html>
`;
  await write(`${dir}/report.html`, new TextEncoder().encode(html));
}

/**
 * The names {@linkcode saveReport} writes into its folder (`07_graph.png` only where a font to
 * rasterize the diagram is found), so a caller can check that none of them is a file it must keep.
 *
 * @example
 * ```ts
 * import { REPORT_FILES } from "./report.ts";
 * REPORT_FILES.includes("report.html"); // true
 * ```
 */
export const REPORT_FILES: readonly string[] = [
  "01_resized.png",
  "02_patch_grid.png",
  "03_patch_extraction.png",
  "04_token_strip.png",
  "05_embedding_heatmap.png",
  "06_positional_similarity.png",
  "07_graph.png",
  "07_graph.svg",
  "report.html",
];

/**
 * Options of {@linkcode saveReport}.
 *
 * @example
 * ```ts
 * import type { SaveReportOptions } from "./report.ts";
 * const options: SaveReportOptions = { title: "ViT tokenizer: cat.png" };
 * ```
 */
export interface SaveReportOptions {
  /** Page title and heading. */
  readonly title: string;
  /**
   * Where each file's bytes go, inside the temporary folder (default `Deno.writeFile`); a test
   * can pass one that fails, as a full disk would.
   */
  readonly writeFile?: (path: string, bytes: Uint8Array) => Promise<void>;
}

/**
 * Writes the figures of {@linkcode writeFigures} and the page of {@linkcode writeReport} into
 * `dir` all together or not at all: everything is written into a temporary folder inside `dir`
 * first and moved into place only once it is all there (see `writeDirAtomic` in io/files.ts).
 * On failure (full disk, read-only folder, a file where `dir` should be) nothing is left but
 * what was there before, and the file-system error is rethrown.
 *
 * @returns The names of the files written, sorted (`01_resized.png` ... `report.html`).
 *
 * @example
 * ```ts
 * import { compile, initParams, seedTokenizer } from "../mod.ts";
 * import { saveReport } from "./report.ts";
 * const graph = seedTokenizer({ height: 32, width: 32, patch: 8, embedding: 16 });
 * const model = await compile(graph, { backend: "reference" });
 * const image = { shape: [1, 3, 32, 32], data: new Float32Array(3 * 32 * 32).fill(0.5) };
 * const { stages } = await model.run({ image }, { stages: "all" });
 * const pos = initParams(graph).get("positional_embedding.positional_embedding")!;
 * const files = await saveReport("out/report", {
 *   image, patches: stages.patches, tokens: stages.tokens, embeddings: stages.embeddings,
 *   pos, patch: 8, graph,
 * }, { title: "ViT tokenizer" });
 * ```
 */
export async function saveReport(
  dir: string,
  inputs: FigureInputs,
  options: SaveReportOptions,
): Promise<string[]> {
  const write: Writer = options.writeFile ?? ((path, bytes) => Deno.writeFile(path, bytes));
  return await writeDirAtomic(dir, async (tmp) => {
    const figures = await figuresInto(tmp, inputs, write);
    const summary = inputs.graph.summary();
    await reportInto(tmp, { title: options.title, summary, figures }, write);
  });
}

function imgTag(fig: ReportFigure, bytes: Uint8Array, caption: string): string {
  const alt = escapeHtml(caption);
  if (fig.file.endsWith(".svg")) {
    return `<img src="${dataUri("image/svg+xml", bytes)}" alt="${alt}">`;
  }
  if (!fig.file.endsWith(".png")) throw new Error(`writeReport: ${fig.file} is not a .png or .svg`);
  const [w, h] = pngSize(bytes, fig.file);
  // Pixel figures are often tiny (a 32x32 input): enlarge by a whole factor so pixels stay square.
  const scale = fig.scale ?? Math.min(8, Math.max(1, Math.ceil(320 / w)));
  const cls = scale >= 1 ? ` class="pixels"` : "";
  return `<img${cls} src="${dataUri("image/png", bytes)}" width="${Math.round(w * scale)}" ` +
    `height="${Math.round(h * scale)}" alt="${alt}">`;
}

// Width and height from the IHDR chunk, which a PNG must start with.
function pngSize(bytes: Uint8Array, file: string): [number, number] {
  const signature = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  if (bytes.length < 24 || signature.some((b, i) => bytes[i] !== b)) {
    throw new Error(`writeReport: ${file} is not a PNG file`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return [view.getUint32(16), view.getUint32(20)];
}

function dataUri(mime: string, bytes: Uint8Array): string {
  return `data:${mime};base64,${Buffer.from(bytes).toString("base64")}`;
}

function escapeHtml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(
    /"/g,
    "&quot;",
  );
}

async function readIfExists(path: string): Promise<Uint8Array | undefined> {
  try {
    return await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
}
