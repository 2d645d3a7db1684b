/**
 * The report of a whole ViT run: a folder with the figures of `vit_figures.ts` as PNG files, the
 * graph diagram as SVG, and one self-contained `report.html` (data: URIs, no scripts) that says
 * what produced the run (weights, backend, preprocessing, original image size, Tessera version),
 * shows each figure once and ends with the model summary. Written all together or not at all.
 * @module
 */

import type { Graph } from "../graph/ir.ts";
import { formatShape } from "../graph/shape.ts";
import type { TensorData } from "../graph/tensor_data.ts";
import { writeDirAtomic } from "../io/files.ts";
import { renderGraphSvg } from "./graph_diagram.ts";
import { svgToPng } from "./plot.ts";
import { type PageFigure, pageHtml, type ReportProvenance } from "./report_html.ts";
import {
  attentionMapsFigure,
  attentionRolloutFigure,
  inputImageFigure,
  type OverlayImage,
  type TopClass,
  topKFigure,
} from "./vit_figures.ts";

/**
 * What {@linkcode saveVitReport} draws and says.
 *
 * @example
 * ```ts
 * import type { VitReportInputs } from "./vit_report.ts";
 * type Needed = Omit<VitReportInputs, "title" | "blocks" | "summary">;
 * ```
 */
export interface VitReportInputs {
  /** Page title and heading (default `ViT report: <graph name>`). */
  readonly title?: string;
  /** The preprocessed input the model saw, RGB (timm's center crop, `timmEvalCrop`). */
  readonly image: OverlayImage;
  /** Every block's attention probabilities `[B, heads, N, N]` (stages `blocks.{i}.attn`), in
   * block order; batch item 0 is drawn. */
  readonly attention: readonly TensorData[];
  /** The patch grid `[gh, gw]`; N = 1 + gh * gw. */
  readonly grid: readonly [number, number];
  /** The blocks whose per-head attention maps are drawn, one figure each (default: the last). */
  readonly blocks?: readonly number[];
  /** The top classes with their probabilities. */
  readonly top: readonly TopClass[];
  /** The model's graph, for the diagram (repeated blocks collapsed) and the summary. */
  readonly graph: Graph;
  /** The model summary (default `graph.summary()`). */
  readonly summary?: string;
  /** What produced the run. */
  readonly provenance: ReportProvenance;
}

/**
 * Options of {@linkcode saveVitReport}.
 *
 * @example
 * ```ts
 * import type { SaveVitReportOptions } from "./vit_report.ts";
 * const o: SaveVitReportOptions = {};
 * ```
 */
export interface SaveVitReportOptions {
  /**
   * Where each file's bytes go, inside the temporary folder (default `Deno.writeFile`); a test
   * can pass one that fails, as a full disk would.
   */
  readonly writeFile?: (path: string, bytes: Uint8Array) => Promise<void>;
}

/**
 * The names {@linkcode saveVitReport} writes for a model of `depth` blocks and the attention
 * maps of `blocks` (default: the last block), sorted: `01_input.png`, `02_top_k.png`,
 * `03_attention_block_NN.png` per block (NN two digits), `04_attention_rollout.png`,
 * `05_graph.svg`, `report.html`. A caller can check that none of them is a file it must keep.
 *
 * @example
 * ```ts
 * import { vitReportFiles } from "./vit_report.ts";
 * vitReportFiles(12); // [..., "03_attention_block_11.png", ...]
 * ```
 */
export function vitReportFiles(depth: number, blocks?: readonly number[]): string[] {
  return [
    "01_input.png",
    "02_top_k.png",
    ...checkBlocks(depth, blocks).map(attentionFile),
    "04_attention_rollout.png",
    "05_graph.svg",
    "report.html",
  ].sort();
}

/**
 * Writes the ViT report into `dir` (created if missing) all together or not at all, as
 * `saveReport` does (everything goes into a temporary folder inside `dir` first and is moved into
 * place once complete; see `writeDirAtomic` in io/files.ts): the input with its patch grid, the
 * top-k bar chart, the class-token attention maps of each chosen block, the attention rollout, the
 * graph diagram (blocks 1..L-1 collapsed into one box; SVG, shown once) and `report.html` with the
 * provenance and the model summary. On failure nothing is left but what was there before, and
 * the error is rethrown.
 *
 * @returns The names of the files written, sorted ({@linkcode vitReportFiles}).
 *
 * @example
 * ```ts
 * import { compile, vit } from "../mod.ts";
 * import { saveVitReport } from "./vit_report.ts";
 * const graph = vit({ image: 32, patch: 8, dim: 16, depth: 2, heads: 2, classes: 10 });
 * const model = await compile(graph, { backend: "reference" });
 * const image = { shape: [1, 3, 32, 32], data: new Float32Array(3 * 32 * 32) };
 * const stages = ["blocks.0.attn", "blocks.1.attn"];
 * const run = await model.run({ image }, { stages });
 * const files = await saveVitReport("out/vit_report", {
 *   image: { width: 32, height: 32, data: new Uint8Array(32 * 32 * 3).fill(128) },
 *   attention: stages.map((s) => run.stages[s]),
 *   grid: [4, 4],
 *   top: [{ name: "class 3", p: 0.4 }, { name: "class 7", p: 0.2 }],
 *   graph,
 *   provenance: {
 *     weights: "random init", backend: model.backend, preprocessing: "none (a grey square)",
 *     originalSize: { width: 32, height: 32 }, version: "0.1.0",
 *   },
 * });
 * ```
 */
export async function saveVitReport(
  dir: string,
  inputs: VitReportInputs,
  options: SaveVitReportOptions = {},
): Promise<string[]> {
  const write = options.writeFile ?? ((path: string, bytes: Uint8Array) => {
    return Deno.writeFile(path, bytes);
  });
  const { image, attention, grid, top, graph, provenance } = inputs;
  const blocks = checkBlocks(attention.length, inputs.blocks);
  const [gh, gw] = grid;
  const heads = attention[0].shape[1];
  const { width: ow, height: oh } = provenance.originalSize;
  const k = top.length;
  const best = [...top].sort((a, b) => b.p - a.p)[0];

  // Everything is drawn before anything is written: a figure that cannot be drawn leaves no
  // temporary behind, and the atomic write below is quick.
  const figures: PageFigure[] = [];
  const png = async (
    file: string,
    svg: Promise<string>,
    caption: string,
  ): Promise<void> => {
    figures.push({ file, bytes: await svgToPng(await svg, 2), caption, scale: 0.5 });
  };
  await png(
    "01_input.png",
    inputImageFigure(image, {
      grid,
      title: "Input",
      subtitle: `${image.width}×${image.height} as the model saw it (from ${ow}×${oh}); ` +
        `${gh}×${gw} patches`,
    }),
    `Input: the ${image.width}x${image.height} image the model saw, preprocessed from the ` +
      `${ow}x${oh} original (${provenance.preprocessing}), with its ${gh}x${gw} patch grid`,
  );
  await png(
    "02_top_k.png",
    topKFigure(top, { subtitle: `weights: ${provenance.weights}` }),
    `Top-${k} classes: ${best ? `${best.name} at ${(best.p * 100).toFixed(1)}%` : "none"}; ` +
      `softmax probabilities of the ${formatShape(graph.outShape)} logits`,
  );
  for (const b of blocks) {
    await png(
      attentionFile(b),
      attentionMapsFigure(attention[b], image, { grid, block: b }),
      `Class-token attention of block ${b} (stage blocks.${b}.attn, ` +
        `${formatShape(attention[b].shape)}): for each of the ${heads} heads, the attention ` +
        `from the class token to the ${gh * gw} patches, upsampled bilinearly to the input and ` +
        `blended over it; one colour scale for all heads`,
    );
  }
  await png(
    "04_attention_rollout.png",
    attentionRolloutFigure(attention, image, { grid }),
    `Attention rollout over all ${attention.length} blocks (Abnar & Zuidema 2020): per block ` +
      `the heads' mean plus the identity, rows renormalized, multiplied in block order; the ` +
      `class token's row over the patches, overlaid on the input`,
  );
  const svg = await renderGraphSvg(graph, { collapseBlocks: true });
  const params = graph.params().length;
  figures.push({
    file: "05_graph.svg",
    bytes: new TextEncoder().encode(svg),
    caption: `Graph ${graph.name}: ${graph.nodes.length} nodes (${params} parameter tensors), ` +
      `output ${formatShape(graph.outShape)}; blocks.1 onwards drawn as one box (each block ` +
      `is built like blocks.0); edges labelled with the producer's shape; laid out by Graphviz`,
  });
  const html = pageHtml({
    title: inputs.title ?? `ViT report: ${graph.name}`,
    provenance,
    figures,
    summary: inputs.summary ?? graph.summary(),
    foldSummary: true,
  });
  return await writeDirAtomic(dir, async (tmp) => {
    for (const f of figures) await write(`${tmp}/${f.file}`, f.bytes);
    await write(`${tmp}/report.html`, new TextEncoder().encode(html));
  });
}

function attentionFile(block: number): string {
  return `03_attention_block_${String(block).padStart(2, "0")}.png`;
}

function checkBlocks(depth: number, blocks: readonly number[] | undefined): number[] {
  if (!Number.isInteger(depth) || depth < 1) {
    throw new RangeError(`ViT report: needs the attention of at least one block, got ${depth}`);
  }
  const chosen = [...new Set(blocks ?? [depth - 1])].sort((a, b) => a - b);
  for (const b of chosen) {
    if (!Number.isInteger(b) || b < 0 || b >= depth) {
      throw new RangeError(`ViT report: block ${b} is out of range 0..${depth - 1}`);
    }
  }
  return chosen;
}
