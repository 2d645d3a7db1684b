/**
 * The `reference` backend: the interpreter behind the backend contract.
 * @module
 */

import type { Backend, Executable } from "./backend.ts";
import { interpret } from "./interpreter.ts";
import { formatShape } from "../../graph/shape.ts";

/**
 * Runs graphs with the reference interpreter: slow, clear, and the oracle for the others.
 *
 * @example
 * ```ts
 * import { referenceBackend } from "./reference.ts";
 * referenceBackend.name; // "reference"
 * ```
 */
export const referenceBackend: Backend = {
  name: "reference",
  unavailable: () => Promise.resolve(null),
  prepare(graph, weights, want): Promise<Executable> {
    return Promise.resolve({
      run(inputs, into) {
        const values = interpret(graph, inputs, weights);
        // The interpreter hands back inputs and weights themselves (and views share them); a
        // result must never be one, or a caller writing into it would change later runs.
        const leaves = new Set(
          graph.nodes.filter((n) => n.op === "input" || n.op === "param")
            .map((n) => values[n.id].data.buffer),
        );
        return Promise.resolve(want.map((id, i) => {
          const target = into?.[i];
          if (!target) {
            const { shape, data } = values[id];
            return { shape, data: leaves.has(data.buffer) ? data.slice() : data };
          }
          target.set(values[id].data);
          return { shape: values[id].shape, data: target };
        }));
      },
      explain() {
        return graph.nodes
          .filter((n) => n.op !== "input" && n.op !== "param")
          .map((n, i) =>
            `kernel ${i}: ${n.op} -> ${formatShape(n.shape)} [reference interpreter, no fusion]`
          )
          .join("\n");
      },
      dispose() {},
    });
  },
};
