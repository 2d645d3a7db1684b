/**
 * The backend contract: a backend turns a specialized graph plus its weights into an
 * executable once, and the executable runs many times.
 * @module
 */

import type { Graph } from "../../graph/ir.ts";
import type { Weights } from "../../graph/params.ts";
import { formatShape } from "../../graph/shape.ts";
import { numel, type TensorData } from "../../graph/tensor_data.ts";
import type { Kernel, Program } from "../ir/program.ts";
import { BackendRejection } from "../ir/rejection.ts";

/**
 * A prepared graph on one backend.
 *
 * @example
 * ```ts
 * import type { Executable } from "./backend.ts";
 * const noop: Executable = {
 *   run: () => Promise.resolve([]),
 *   explain: () => "nothing",
 *   dispose: () => {},
 * };
 * ```
 */
export interface Executable {
  /**
   * Runs once; returns the values of the `want` node ids, in that order, in host memory. When
   * `into[i]` is given, result `i` is written there (the caller reuses its buffers). Returned
   * arrays are the caller's: never an input, a weight or a buffer the executable reuses. Calls
   * must not overlap (executables keep their buffers between runs); `compile()` queues them.
   */
  run(
    inputs: Readonly<Record<string, TensorData>>,
    into?: readonly (Float32Array | undefined)[],
  ): Promise<TensorData[]>;
  /**
   * True when `run()` itself rejects non-finite input values, by throwing `NonFiniteInput`
   * before it writes any result (so the caller need not scan the inputs first).
   */
  readonly checksFinite?: boolean;
  /** Device-resident runs, on backends that keep tensors on a device (`wgsl`). */
  readonly resident?: ResidentRuns;
  /** Kernels, fused ops, launch sizes and sources, for people. */
  explain(options?: { source?: boolean }): string;
  /** Releases device memory and workers. */
  dispose(): void;
}

/**
 * Thrown by an executable that `checksFinite` when an input holds NaN or an infinity; `compile()`
 * turns it into an `InputError` naming the input and the first bad index.
 *
 * @example
 * ```ts
 * import { NonFiniteInput } from "./backend.ts";
 * new NonFiniteInput().name; // "NonFiniteInput"
 * ```
 */
export class NonFiniteInput extends Error {
  /** An error with a fixed message: the caller finds and names the value. */
  constructor() {
    super("an input holds NaN or an infinity");
    this.name = "NonFiniteInput";
  }
}

/**
 * A backend: its name, whether it can run here, and how it prepares a graph.
 *
 * @example
 * ```ts
 * import type { Backend } from "./backend.ts";
 * function describe(b: Backend): string {
 *   return b.name;
 * }
 * ```
 */
export interface Backend {
  /** The name users pass as `backend`. */
  readonly name: string;
  /** `null` when usable here; otherwise why not, with the fix if there is one. */
  unavailable(): Promise<string | null>;
  /**
   * How it would run here, when that depends on the runtime (the CPU backends: how many threads
   * and why, e.g. "1 thread: no SharedArrayBuffer (page not cross-origin isolated)"); `compile()`
   * adds it to the model's `reason`.
   */
  describe?(): string;
  /** Compiles `graph` (all shapes concrete) for the node ids in `want`. */
  prepare(graph: Graph, weights: Weights, want: readonly number[]): Promise<Executable>;
}

/**
 * Runs that keep inputs and results on the device: upload once, queue many runs, read back only
 * when asked. This is how a graph feeds the next one without a host round trip.
 *
 * @example
 * ```ts
 * import type { ResidentRuns } from "./backend.ts";
 * async function throughput(r: ResidentRuns, n: number): Promise<void> {
 *   for (let i = 0; i < n; i++) r.run();
 *   await r.finish();
 * }
 * ```
 */
export interface ResidentRuns {
  /** Copies host inputs (by input name) into the device's input buffers. */
  upload(inputs: Readonly<Record<string, TensorData>>): void;
  /** Queues one run on the device; results stay in device memory. */
  run(): void;
  /** Resolves when every queued run has finished on the device. */
  finish(): Promise<void>;
  /** Reads the results of the last run back to the host. */
  read(into?: readonly (Float32Array | undefined)[]): Promise<TensorData[]>;
}

export { BackendRejection };

/**
 * Refuses a program with a buffer over `limit` bytes (a device's largest storage binding, or a
 * user's cap); the rejection is size-bound, so a smaller batch may fit, when the buffer grows
 * with the batch.
 *
 * @example
 * ```ts
 * import { checkBufferLimit } from "./backend.ts";
 * checkBufferLimit("webgpu", { buffers: new Map(), kernels: [], results: [], slots: new Map() }, 1);
 * ```
 */
export function checkBufferLimit(backend: string, program: Program, limit: number): void {
  for (const b of program.buffers.values()) {
    const bytes = numel(b.shape) * 4;
    if (bytes > limit) {
      throw new BackendRejection(
        backend,
        `buffer ${b.name} ${formatShape(b.shape)} needs ${bytes} bytes but the limit is ` +
          `${limit} (maxStorageBufferBindingSize, or maxBufferBytes); use a smaller batch`,
        b.kind === "input" || b.kind === "intermediate",
      );
    }
  }
}

/**
 * The `explain()` text every generated-code backend prints: a header, one line per kernel
 * (fused ops, output, how it runs, what it reads), the buffer plan, notes, and the sources.
 *
 * @example
 * ```ts
 * import { formatExplain } from "./backend.ts";
 * formatExplain({
 *   graph: "g",
 *   backend: "js",
 *   program: { buffers: new Map(), kernels: [], results: [], slots: new Map() },
 *   how: () => "",
 * }); // "graph g on js"
 * ```
 */
export function formatExplain(parts: {
  readonly graph: string;
  readonly backend: string;
  readonly program: Program;
  /** How kernel `i` runs, e.g. `launch 544 outputs; backend js; split axis 1 over 2 threads`. */
  readonly how: (kernel: Kernel, i: number) => string;
  /** Whether to print the buffer plan (gpu.js places intermediates itself). */
  readonly plan?: boolean;
  readonly notes?: readonly string[];
  readonly sources?: readonly string[];
}): string {
  const { program } = parts;
  const lines = program.kernels.map((k, i) =>
    `kernel ${i}: ${k.ops.join(" + ")} -> ${k.out} ${formatShape(k.shape)}; ${
      parts.how(k, i)
    }; reads ${k.reads.join(", ")}`
  );
  const plan = parts.plan !== false && program.slots.size
    ? [`buffer plan: ${[...program.slots].map(([b, s]) => `${b}->slot${s}`).join(", ")}`]
    : [];
  return [
    `graph ${parts.graph} on ${parts.backend}`,
    ...lines,
    ...plan,
    ...(parts.notes ?? []),
    ...(parts.sources ?? []),
  ].join("\n");
}
