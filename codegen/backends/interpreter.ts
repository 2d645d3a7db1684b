/**
 * The reference interpreter: runs a specialized graph node by node with each op's reference
 * semantics. Written for clarity, it is the oracle every compiled backend is tested against.
 * @module
 */

import type { Graph } from "../../graph/ir.ts";
import type { Weights } from "../../graph/params.ts";
import type { TensorData } from "../../graph/tensor_data.ts";
import { OPS } from "../../ops/registry.ts";
import type { OpDef } from "../../ops/op.ts";

/**
 * Evaluates every node of a specialized graph (all shapes concrete) and returns the values
 * indexed by node id. Inputs and weights must already be validated.
 *
 * @example
 * ```ts
 * import { graph } from "../../graph/builder.ts";
 * import { specialize } from "../../graph/specialize.ts";
 * import { interpret } from "./interpreter.ts";
 * const g = graph("t", (b) => b.flatten(b.input("x", [2, 2]), 0, 1));
 * const values = interpret(specialize(g, { x: [2, 2] }).graph, {
 *   x: { shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) },
 * }, new Map());
 * values[g.output].shape; // [4]
 * ```
 */
export function interpret(
  graph: Graph,
  inputs: Readonly<Record<string, TensorData>>,
  weights: Weights,
): TensorData[] {
  const values: TensorData[] = [];
  for (const node of graph.nodes) {
    const shape = node.shape as number[];
    switch (node.op) {
      case "input":
        values.push({ shape, data: inputs[node.attrs.name].data });
        break;
      case "param":
        values.push({ shape, data: (weights.get(node.attrs.name) as TensorData).data });
        break;
      default: {
        const rule = OPS[node.op] as OpDef<typeof node.attrs>;
        const args = node.inputs.map((i) => values[i]);
        values.push({ shape, data: rule.evaluate(args, node.attrs, shape) });
      }
    }
  }
  return values;
}
