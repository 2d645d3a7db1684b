/**
 * The one pass pipeline every backend calls: lowering (dead nodes, fusion, emitters, simplify,
 * constant folding, buffer plan), then the weight re-layout for the target.
 * @module
 */

import type { Graph } from "../../graph/ir.ts";
import type { Weights } from "../../graph/params.ts";
import { type Program, UNROLL } from "../ir/program.ts";
import { lowerGraph } from "./lower.ts";
import { relayoutWeights } from "./relayout.ts";

/**
 * What the pipeline needs to know about the target.
 *
 * @example
 * ```ts
 * import type { PipelineTarget } from "./pipeline.ts";
 * const gpu: PipelineTarget = { gpu: true };
 * ```
 */
export interface PipelineTarget {
  /**
   * One thread per output (a GPU): weights are re-laid inside reduction loops too, so threads
   * next to each other read next to each other. A CPU loop nest walks its reductions innermost
   * and keeps their layout.
   */
  readonly gpu: boolean;
}

/**
 * Lowers `graph` for the node ids `want` and re-lays its weights for `target`.
 *
 * @example
 * ```ts
 * import { patchEmbedding } from "../../models/vit_tokenizer.ts";
 * import { specialize } from "../../graph/specialize.ts";
 * import { initParams } from "../../graph/params.ts";
 * import { lowerProgram } from "./pipeline.ts";
 * const g0 = patchEmbedding({ height: 32, width: 32, patch: 8, embedding: 16 });
 * const g = specialize(g0, { image: [1, 3, 32, 32] }).graph;
 * lowerProgram(g, initParams(g0), [g.output], { gpu: false }).kernels.length; // 1
 * ```
 */
export function lowerProgram(
  graph: Graph,
  weights: Weights,
  want: readonly number[],
  target: PipelineTarget,
): Program {
  const program = lowerGraph(graph, weights, want);
  return relayoutWeights(
    program,
    target.gpu ? { insideLoops: true } : { insideLoops: false, unrolled: UNROLL },
  );
}
