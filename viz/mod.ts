/**
 * Tessera's pictures, in one import: the seed tokenizer's figures (exact-pixel images and their
 * plotted versions), the figures of a whole ViT run (attention maps, attention rollout, top-k),
 * the graph diagram, and the two reports (`saveReport` for the seed pipeline, `saveVitReport`
 * for a ViT). Kept out of the root `mod.ts` on purpose: it loads Vega, Graphviz and resvg,
 * which a program that only runs models never needs. Import it as `@tessera/tessera/viz` from
 * JSR, or as `viz/mod.ts` next to the root `mod.ts` by URL.
 *
 * @example
 * ```ts
 * import { topKFigure } from "./mod.ts";
 * const svg = await topKFigure([{ name: "tabby cat", p: 0.8 }, { name: "lynx", p: 0.1 }]);
 * ```
 * @module
 */

// The types the pictures take (TensorData, Graph and what they refer to), so that this entry
// point documents them too; types only, so none of the root's code is loaded.
export type * from "../mod.ts";
export * from "./figures.ts";
export * from "./plots.ts";
export * from "./vit_figures.ts";
export * from "./vit_report.ts";
export * from "./report.ts";
export {
  type DiagramOptions,
  graphToDot,
  NoFontError,
  rasterizeSvg,
  renderGraphPng,
  renderGraphSvg,
} from "./graph_diagram.ts";
export { renderVega, renderVegaLite, svgToPng, type VegaLiteSpec, type VegaSpec } from "./plot.ts";
