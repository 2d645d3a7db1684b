/**
 * Specialization: binds the symbolic dims of a graph (such as `"B"`) to the sizes of real
 * inputs and re-runs every runtime shape rule, giving a graph whose shapes are all concrete.
 * Backends compile specialized graphs only.
 * @module
 */

import { type AnyNode, Graph } from "./ir.ts";
import { bindShape, formatShape, ShapeError } from "./shape.ts";
import { OPS } from "../ops/registry.ts";
import type { OpDef } from "../ops/op.ts";

/**
 * Binds each input's symbolic dims to `inputShapes` and returns the concrete graph and the
 * bindings. A literal dim that disagrees, or a symbol bound to two sizes, throws `ShapeError`.
 *
 * @example
 * ```ts
 * import { graph } from "./builder.ts";
 * import { specialize } from "./specialize.ts";
 * const g = graph("t", (b) => b.flatten(b.input("x", ["B", 3, 4]), 1, 2));
 * specialize(g, { x: [5, 3, 4] }).graph.outShape; // [5, 12]
 * ```
 */
export function specialize(
  graph: Graph,
  inputShapes: Readonly<Record<string, readonly number[]>>,
): { graph: Graph; bindings: Record<string, number> } {
  const bindings: Record<string, number> = {};
  for (const input of graph.inputs()) {
    const name = input.attrs.name;
    const actual = inputShapes[name];
    if (!actual) {
      const known = Object.keys(inputShapes).join(", ") || "none";
      throw new ShapeError(
        "input",
        name,
        [input.shape],
        `no value given for input "${name}" (given: ${known})`,
      );
    }
    const fail = (why: string): never => {
      throw new ShapeError(
        "input",
        name,
        [input.shape],
        `got ${formatShape(actual)}: ${why}`,
      );
    };
    if (actual.length !== input.shape.length) {
      fail(`rank ${actual.length} != ${input.shape.length}`);
    }
    input.shape.forEach((d, i) => {
      const size = actual[i];
      if (!Number.isSafeInteger(size) || size < 0) fail(`dim ${i} is not a size`);
      if (typeof d === "number") {
        if (d !== size) fail(`dim ${i} must be ${d}`);
      } else if (Object.hasOwn(bindings, d) && bindings[d] !== size) {
        fail(`${d} is already bound to ${bindings[d]}, not ${size}`);
      } else {
        bindings[d] = size;
      }
    });
  }
  const nodes: AnyNode[] = [];
  for (const node of graph.nodes) {
    if (node.op === "input" || node.op === "param") {
      nodes.push({ ...node, shape: bindShape(node.shape, bindings) } as AnyNode);
      continue;
    }
    const attrs = "shape" in node.attrs
      ? { ...node.attrs, shape: bindShape(node.attrs.shape, bindings) }
      : node.attrs;
    const rule = OPS[node.op] as OpDef<typeof attrs>;
    const shape = rule.inferShape(node.inputs.map((i) => nodes[i].shape), attrs, node.name);
    nodes.push({ ...node, attrs, shape } as AnyNode);
  }
  return { graph: new Graph(graph.name, nodes, graph.output), bindings };
}
