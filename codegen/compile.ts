/**
 * `compile()`: binds a graph to weights and a backend, and returns a model whose `run()` can
 * be called many times. Specialization to real input shapes happens once per distinct shape.
 * @module
 */

import type { Graph } from "../graph/ir.ts";
import { firstNonFinite, initParams, validateWeights, type Weights } from "../graph/params.ts";
import { formatShape } from "../graph/shape.ts";
import { specialize } from "../graph/specialize.ts";
import type { TShape } from "../graph/shape_types.ts";
import { numel, type TensorData } from "../graph/tensor_data.ts";
import type { Backend, Executable } from "./backend.ts";
import { referenceBackend } from "./reference_backend.ts";

/**
 * Bad input values: wrong type, wrong length, or NaN/infinity. Names the input and the fix.
 *
 * @example
 * ```ts
 * import { InputError } from "./compile.ts";
 * new InputError("image", "has NaN at flat index 7; clean the data first").message;
 * // 'input "image" has NaN at flat index 7; clean the data first'
 * ```
 */
export class InputError extends Error {
  /** The input's name. */
  readonly input: string;
  /** Builds the message from the input name and what is wrong. */
  constructor(input: string, what: string) {
    super(`input "${input}" ${what}`);
    this.name = "InputError";
    this.input = input;
  }
}

/**
 * The backends a user may name. `auto` picks the best one available here.
 *
 * @example
 * ```ts
 * import type { BackendName } from "./compile.ts";
 * const b: BackendName = "reference";
 * ```
 */
export type BackendName = "auto" | "reference";

/**
 * Options of `compile()`.
 *
 * @example
 * ```ts
 * import type { CompileOptions } from "./compile.ts";
 * const o: CompileOptions = { backend: "reference", seed: 0 };
 * ```
 */
export interface CompileOptions {
  /** Which backend runs the graph; defaults to `auto`. */
  readonly backend?: BackendName;
  /** Parameter values by PyTorch name; when absent they are initialized from `seed`. */
  readonly weights?: Weights;
  /** Seed for PyTorch-default initialization when `weights` is absent; defaults to 0. */
  readonly seed?: number;
  /** Where the weights came from, for error messages. */
  readonly weightsSource?: string;
}

/**
 * What `run()` returns: the output and any requested stage values, in host memory.
 *
 * @example
 * ```ts
 * import type { RunResult } from "./compile.ts";
 * function width(r: RunResult): number {
 *   return r.output.shape[2];
 * }
 * ```
 */
export interface RunResult {
  /** The graph's output. */
  readonly output: TensorData;
  /** Values of the requested stage labels. */
  readonly stages: Readonly<Record<string, TensorData>>;
}

/**
 * Options of one `run()`.
 *
 * @example
 * ```ts
 * import type { RunOptions } from "./compile.ts";
 * const o: RunOptions = { stages: ["patches", "tokens"] };
 * ```
 */
export interface RunOptions {
  /** Stage labels (or node names) whose values to return too, or `"all"` for every label. */
  readonly stages?: readonly string[] | "all";
}

/**
 * A graph compiled for one backend.
 *
 * @example
 * ```ts
 * import { graph } from "../graph/builder.ts";
 * import { compile } from "./compile.ts";
 * const g = graph("t", (b) => b.classToken(b.input("x", ["B", 2, 4]), { name: "cls" }));
 * const model = await compile(g, { backend: "reference" });
 * const { output } = await model.run({ x: { shape: [1, 2, 4], data: new Float32Array(8) } });
 * output.shape; // [1, 3, 4]
 * ```
 */
export interface CompiledGraph<Out extends TShape = TShape> {
  /** The graph as built. */
  readonly graph: Graph<Out>;
  /** The backend that runs. */
  readonly backend: string;
  /** Why this backend was chosen, including every fallback. */
  readonly reason: string;
  /** Runs the graph on `inputs` (by input name). */
  run(inputs: Readonly<Record<string, TensorData>>, options?: RunOptions): Promise<RunResult>;
  /** What runs: one line per kernel, and the sources with `{ source: true }`. */
  explain(options?: { source?: boolean }): string;
  /** Releases backend resources. */
  dispose(): void;
}

const BACKENDS: Readonly<Record<Exclude<BackendName, "auto">, Backend>> = {
  reference: referenceBackend,
};

/**
 * Validates the weights against the graph and picks the backend. Compilation for concrete
 * shapes happens at the first `run()` with those shapes and is cached.
 *
 * @example
 * ```ts
 * import { graph } from "../graph/builder.ts";
 * import { compile } from "./compile.ts";
 * const g = graph("t", (b) => b.flatten(b.input("x", ["B", 2, 2]), 1, 2));
 * const model = await compile(g);
 * model.backend; // "reference"
 * ```
 */
export async function compile<Out extends TShape>(
  graph: Graph<Out>,
  options: CompileOptions = {},
): Promise<CompiledGraph<Out>> {
  const weights = options.weights ?? initParams(graph, options.seed ?? 0);
  validateWeights(graph, weights, options.weightsSource);
  const requested = options.backend ?? "auto";
  const backend = requested === "auto" ? BACKENDS.reference : BACKENDS[requested];
  if (!backend) {
    throw new Error(
      `compile: unknown backend "${requested}"; use one of auto, ${
        Object.keys(BACKENDS).join(", ")
      }`,
    );
  }
  const why = await backend.unavailable();
  if (why) throw new Error(`compile: backend "${backend.name}" is unavailable: ${why}`);
  const reason = requested === "auto"
    ? "auto: reference is the only backend in this build"
    : `requested ${requested}`;
  const cache = new Map<string, { exe: Executable; want: Map<string, number> }>();
  let last: Executable | undefined;

  const prepared = async (inputs: Readonly<Record<string, TensorData>>, stages: string[]) => {
    const shapes = Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, v.shape]));
    const key = JSON.stringify([shapes, stages]);
    let entry = cache.get(key);
    if (!entry) {
      const concrete = specialize(graph, shapes).graph;
      const want = new Map<string, number>([["output", concrete.output]]);
      for (const s of stages) {
        const node = concrete.find(s);
        if (!node) {
          throw new Error(
            `run: no stage "${s}" in graph ${graph.name} (stages: ${graph.labels().join(", ")})`,
          );
        }
        want.set(s, node.id);
      }
      entry = { exe: await backend.prepare(concrete, weights, [...want.values()]), want };
      cache.set(key, entry);
    }
    last = entry.exe;
    return entry;
  };

  return {
    graph,
    backend: backend.name,
    reason,
    async run(inputs, runOptions = {}) {
      checkInputs(graph, inputs);
      const stages = runOptions.stages === "all" ? graph.labels() : [...(runOptions.stages ?? [])];
      const { exe, want } = await prepared(inputs, stages);
      const values = await exe.run(inputs);
      const names = [...want.keys()];
      const result: Record<string, TensorData> = {};
      names.forEach((n, i) => (result[n] = values[i]));
      const { output, ...rest } = result;
      return { output, stages: rest };
    },
    explain(explainOptions) {
      if (!last) return `${graph.name}: not compiled yet (shapes are bound at the first run)`;
      return last.explain(explainOptions);
    },
    dispose() {
      for (const { exe } of cache.values()) exe.dispose();
      cache.clear();
    },
  };
}

function checkInputs(graph: Graph, inputs: Readonly<Record<string, TensorData>>): void {
  for (const node of graph.inputs()) {
    const name = node.attrs.name;
    const value = inputs[name];
    if (!value) {
      throw new InputError(name, `is missing; pass { ${name}: { shape, data } } to run()`);
    }
    if (!(value.data instanceof Float32Array)) {
      throw new InputError(name, "must hold a Float32Array (convert with Float32Array.from)");
    }
    if (value.data.length !== numel(value.shape)) {
      throw new InputError(
        name,
        `holds ${value.data.length} values but its shape ${formatShape(value.shape)} needs ${
          numel(value.shape)
        }`,
      );
    }
    const bad = firstNonFinite(value.data);
    if (bad >= 0) {
      throw new InputError(
        name,
        `has ${value.data[bad]} at flat index ${bad}; inputs must be finite`,
      );
    }
  }
}
