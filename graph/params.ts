/**
 * Parameter values: PyTorch-default initialization from a seeded generator, and validation of
 * loaded weights against the graph, so that a bad file is rejected before anything runs.
 * @module
 */

import type { Graph } from "./ir.ts";
import { type Dim, formatShape } from "./shape.ts";
import { hostFloats, numel, type TensorData } from "./tensor_data.ts";
import { kaimingUniformBound, TorchGenerator } from "./random.ts";
import { WeightsError } from "../io/safetensors.ts";

/**
 * Named parameter values, keyed by PyTorch `state_dict` names.
 *
 * @example
 * ```ts
 * import type { Weights } from "./params.ts";
 * const w: Weights = new Map([["cls_token", { shape: [1, 1, 4], data: new Float32Array(4) }]]);
 * ```
 */
export type Weights = ReadonlyMap<string, TensorData>;

/**
 * Initializes every parameter the way PyTorch does after `torch.manual_seed(seed)`, in the
 * graph's declaration order (conv/linear: kaiming-uniform weight then uniform bias; tokens:
 * randn). For the seed and timm builders this reproduces PyTorch's values bit for bit.
 *
 * @example
 * ```ts
 * import { graph } from "./builder.ts";
 * import { initParams } from "./params.ts";
 * const g = graph("t", (b) => b.classToken(b.input("x", [1, 4, 8]), { name: "cls" }));
 * const weights = initParams(g, 0);
 * weights.get("cls")?.shape; // [1, 1, 8]
 * ```
 */
export function initParams(graph: Graph, seed = 0): Map<string, TensorData> {
  const gen = new TorchGenerator(seed);
  const out = new Map<string, TensorData>();
  for (const p of graph.params()) {
    const shape = p.shape as number[];
    const n = numel(shape);
    const init = p.attrs.init;
    let data: Float32Array;
    switch (init.kind) {
      case "kaiming_uniform": {
        const bound = kaimingUniformBound(concreteFanIn(p.attrs.name, init.fanIn));
        data = gen.uniform(n, -bound, bound);
        break;
      }
      case "bias_uniform": {
        const bound = 1 / Math.sqrt(concreteFanIn(p.attrs.name, init.fanIn));
        data = gen.uniform(n, -bound, bound);
        break;
      }
      case "randn":
        data = gen.randn(n);
        break;
      case "zeros":
        data = hostFloats(n);
        break;
      case "ones": // LayerNorm's weight; like zeros, it draws nothing from the generator
        data = hostFloats(n).fill(1);
        break;
    }
    // Every case allocates with hostFloats: shared memory where there is one, so compiled
    // models can use the weights in place.
    out.set(p.attrs.name, { shape, data });
  }
  return out;
}

/**
 * Checks that `weights` holds every parameter of `graph` with the graph's shape and finite
 * values. Throws `WeightsError` naming the parameter, both shapes and the fix.
 *
 * @example
 * ```ts
 * import { graph } from "./builder.ts";
 * import { initParams, validateWeights } from "./params.ts";
 * const g = graph("t", (b) => b.classToken(b.input("x", [1, 4, 8]), { name: "cls" }));
 * validateWeights(g, initParams(g)); // passes
 * ```
 */
export function validateWeights(graph: Graph, weights: Weights, source?: string): void {
  const file = source === undefined ? {} : { file: source };
  for (const p of graph.params()) {
    const name = p.attrs.name;
    const w = weights.get(name);
    if (!w) {
      const have = [...weights.keys()].slice(0, 8).join(", ");
      throw new WeightsError(
        `parameter "${name}" ${formatShape(p.shape)} is missing (have: ${have || "none"}); ` +
          `save it under its PyTorch state_dict name`,
        { ...file, tensor: name },
      );
    }
    const same = w.shape.length === p.shape.length && w.shape.every((d, i) => d === p.shape[i]);
    if (!same) {
      throw new WeightsError(
        `parameter "${name}" has shape ${formatShape(w.shape)} but the graph needs ` +
          `${formatShape(p.shape)}; rebuild the graph with matching sizes or fix the file`,
        { ...file, tensor: name },
      );
    }
    if (w.data.length !== numel(w.shape)) {
      throw new WeightsError(
        `parameter "${name}" holds ${w.data.length} values but ${formatShape(w.shape)} needs ` +
          `${numel(w.shape)}`,
        { ...file, tensor: name },
      );
    }
    const bad = firstNonFinite(w.data);
    if (bad >= 0) {
      throw new WeightsError(
        `parameter "${name}" has ${w.data[bad]} at flat index ${bad}; weights must be finite`,
        { ...file, tensor: name },
      );
    }
  }
}

/**
 * Index of the first NaN or infinity in `data`, or -1.
 *
 * @example
 * ```ts
 * import { firstNonFinite } from "./params.ts";
 * firstNonFinite(new Float32Array([1, NaN])); // 1
 * ```
 */
export function firstNonFinite(data: Float32Array): number {
  if (allFinite(data)) return -1;
  for (let i = 0; i < data.length; i++) {
    // x - x is 0 for finite x and NaN for NaN and ±Infinity.
    if (data[i] - data[i] !== 0) return i;
  }
  return -1;
}

/**
 * Whether every value is finite. NaN and ±Infinity turn `x * 0` into NaN, so four running sums
 * of `x * 0` stay 0 exactly when all values are finite: one fast pass, no branch per element.
 *
 * @example
 * ```ts
 * import { allFinite } from "./params.ts";
 * allFinite(new Float32Array([1, 2, 3])); // true
 * allFinite(new Float32Array([1, Infinity])); // false
 * ```
 */
export function allFinite(data: Float32Array): boolean {
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  const n = data.length - (data.length % 4);
  for (let i = 0; i < n; i += 4) {
    s0 += data[i] * 0;
    s1 += data[i + 1] * 0;
    s2 += data[i + 2] * 0;
    s3 += data[i + 3] * 0;
  }
  for (let i = n; i < data.length; i++) s0 += data[i] * 0;
  return s0 + s1 + s2 + s3 === 0;
}

// A symbolic fan-in only exists inside a block's sub-graph, which is inlined before it runs.
function concreteFanIn(param: string, fanIn: Dim): number {
  if (typeof fanIn !== "number") {
    throw new WeightsError(`param ${param}: fan-in ${fanIn} must be a concrete size to initialize`);
  }
  return fanIn;
}
