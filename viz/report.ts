/**
 * The tokenizer's figures as PNG files and one self-contained HTML report (every image a
 * data: URI, no scripts, nothing fetched), so a run can be inspected in any browser.
 * @module
 */

import type { Graph } from "../graph/ir.ts";
import { formatShape } from "../graph/shape.ts";
import type { TensorData } from "../graph/tensor_data.ts";
import { writeDirAtomic, writeFileAtomic } from "../io/files.ts";
import { encodePng } from "../io/image.ts";
import {
  embeddingHeatmapFigure,
  patchExtractionFigure,
  patchGridFigure,
  type PixelImage,
  positionalSimilarityFigure,
  resizedImageFigure,
  tokenStripFigure,
} from "./figures.ts";
import { NoFontError, renderGraphPng, renderGraphSvg } from "./graph_diagram.ts";
import { svgToPng } from "./plot.ts";
import {
  embeddingHeatmapPlot,
  patchExtractionPlot,
  patchGridPlot,
  positionalSimilarityPlot,
  resizedImagePlot,
  tokenStripPlot,
} from "./plots.ts";
import { type PageFigure, pageHtml, type ReportProvenance } from "./report_html.ts";

export type { ReportProvenance } from "./report_html.ts";

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
  /** What produced the run (weights, backend, preprocessing, image size, version), if known. */
  readonly provenance?: ReportProvenance;
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

  // Each figure is plotted (title, axes, colour bar) by Vega and rasterized at 2x; shown at
  // half size, so its text is sharp.
  // Without a font to draw text with, each falls back to its exact-pixel image.
  const plots: [string, () => Promise<string>, () => PixelImage, string][] = [
    [
      "01_resized.png",
      () => resizedImagePlot(image),
      () => resizedImageFigure(image),
      `Resized input: ${formatShape(image.shape)} (${height}x${width} pixels, ${channels} ` +
      `channels)`,
    ],
    [
      "02_patch_grid.png",
      () => patchGridPlot(image, patch),
      () => patchGridFigure(image, patch),
      `Patch grid: ${n} patches of ${patch}x${patch} (${cols} per row, ${rows} per column)`,
    ],
    [
      "03_patch_extraction.png",
      () => patchExtractionPlot(image, patches),
      // Enlarge small inputs so the two panels stay readable.
      () => patchExtractionFigure(image, patches, Math.max(1, Math.floor(224 / width))),
      `Patch extraction: conv output ${formatShape(patches.shape)} (${
        patches.shape[2] * patches.shape[3]
      } patches, ${patches.shape[1]} channels, min-max normalized, ` +
      `${patches.shape[1] === 3 ? "as RGB" : "viridis of the channel mean"}) beside the input ` +
      formatShape(image.shape),
    ],
    [
      "04_token_strip.png",
      () => tokenStripPlot(tokens),
      () => tokenStripFigure(tokens),
      `Token sequence: ${tokenCount} tokens of ${tokenWidth} values each ${
        formatShape(tokens.shape)
      }, in order, wrapped into rows; min-max normalized, ${
        tokenWidth === 3 ? "as RGB" : "viridis of the mean"
      }`,
    ],
    [
      "05_embedding_heatmap.png",
      () => embeddingHeatmapPlot(embeddings, 100),
      () => embeddingHeatmapFigure(embeddings, 100),
      `Token embeddings: the first ${shown} of ${d} values of each of ${embCount} tokens ` +
      `${
        formatShape(embeddings.shape)
      }; tokens along x, values along y, viridis, min-max normalized`,
    ],
    [
      "06_positional_similarity.png",
      () => positionalSimilarityPlot(pos, rows, cols),
      () => positionalSimilarityFigure(pos, rows, cols, 4),
      `Positional embedding similarity: cosine similarity of each of the ${n} patch positions' ` +
      `embeddings (D = ${pos.shape[2]}) to every other, as a ${rows}x${cols} grid of ` +
      `${rows}x${cols} maps (class token skipped; viridis over [-1, 1]); pos ${
        formatShape(pos.shape)
      }`,
    ],
  ];
  const figures: ReportFigure[] = [];
  let font = true;
  for (const [file, plot, pixels, caption] of plots) {
    let png: Uint8Array | undefined;
    if (font) {
      try {
        png = await svgToPng(await plot(), 2);
      } catch (e) {
        if (!(e instanceof NoFontError)) throw e;
        font = false;
      }
    }
    if (png) {
      await write(`${dir}/${file}`, png);
      figures.push({ file, caption, scale: 0.5 });
    } else {
      await write(`${dir}/${file}`, encodePng(pixels()));
      figures.push({ file, caption: `${caption} (plain pixels: no font to draw text with)` });
    }
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
 * Writes `dir/report.html` (creating `dir`): the title, the provenance (if given), every figure
 * embedded once as a data: URI with its caption and a link to its file (a PNG's `.svg` sibling,
 * if any, is linked too, not shown again), and the graph summary in a `<pre>`. The page loads
 * nothing else.
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
  const figures: PageFigure[] = [];
  for (const fig of parts.figures) {
    const bytes = await Deno.readFile(`${dir}/${fig.file}`);
    // A PNG's .svg sibling (the graph's vector version) is linked, not shown a second time.
    const svg = fig.file.endsWith(".png") ? `${fig.file.slice(0, -4)}.svg` : undefined;
    const alternate = svg !== undefined && (await exists(`${dir}/${svg}`)) ? svg : undefined;
    figures.push({ file: fig.file, bytes, caption: fig.caption, scale: fig.scale, alternate });
  }
  const html = pageHtml({
    title: parts.title,
    provenance: parts.provenance,
    figures,
    summary: parts.summary,
  });
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
  /** What produced the run, shown under the title (weights, backend, preprocessing, ...). */
  readonly provenance?: ReportProvenance;
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
    const { title, provenance } = options;
    await reportInto(tmp, { title, summary, figures, provenance }, write);
  });
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}
