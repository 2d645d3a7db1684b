/**
 * `compile()`: binds a graph to weights and a backend, and returns a model whose `run()` can
 * be called many times. Specialization to real input shapes happens once per distinct shape.
 * @module
 */

import type { AnyNode, Graph } from "../graph/ir.ts";
import { firstNonFinite, initParams, validateWeights, type Weights } from "../graph/params.ts";
import { formatShape, ShapeError } from "../graph/shape.ts";
import { specialize } from "../graph/specialize.ts";
import type { TShape } from "../graph/shape_types.ts";
import { numel, type TensorData } from "../graph/tensor_data.ts";
import { type Backend, BackendRejection, type Executable, NonFiniteInput } from "./backend.ts";
import { referenceBackend } from "./reference_backend.ts";
import { cpuCodegenBackend, jsBackend, wasmBackend } from "./js_backend.ts";
import { wgslBackend } from "./wgsl_backend.ts";
import { gemmTileProblem, type GpuGemmTile } from "./render_wgsl_gemm.ts";
import { type AdapterProvider, gpuJsBackend, type GpuJsMode } from "./gpujs_backend.ts";

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
 * const b: BackendName = "webgpu";
 * ```
 */
export type BackendName =
  | "auto"
  | "webgpu"
  | "wgsl"
  | "wasm"
  | "js"
  | "webasm"
  | "cpu"
  | "reference"
  | "headlessgl"
  | "webgl";

/**
 * Every backend name `compile()` accepts.
 *
 * @example
 * ```ts
 * import { BACKEND_NAMES } from "./compile.ts";
 * BACKEND_NAMES.includes("webasm"); // true
 * ```
 */
export const BACKEND_NAMES: readonly BackendName[] = [
  "auto",
  "webgpu",
  "wgsl",
  "wasm",
  "js",
  "webasm",
  "cpu",
  "reference",
  "headlessgl",
  "webgl",
];

/**
 * Options of `compile()`.
 *
 * @example
 * ```ts
 * import type { CompileOptions } from "./compile.ts";
 * const o: CompileOptions = { backend: "cpu", seed: 0 };
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
  /** Cap on any one device buffer in bytes; larger batches are split to fit. */
  readonly maxBufferBytes?: number;
  /** Where webgpu gets its adapter; defaults to `navigator.gpu` (tests fake a missing one). */
  readonly adapter?: AdapterProvider;
  /** Called once per fallback with its reason; defaults to `console.warn`. */
  readonly onWarning?: (message: string) => void;
  /**
   * Block and thread tile of the `wgsl` backend's GEMM shader; defaults to `GPU_GEMM_TILE`.
   * A tuning knob for new GPUs (`bench/gpu.ts --gemm-tiles` times several).
   */
  readonly gemmTile?: GpuGemmTile;
  /**
   * Threads the `js` and `wasm` backends use, the calling thread included; defaults to one per
   * core, at most 4. `1` keeps every kernel on the calling thread and starts no worker (a Deno
   * worker costs about 18 MiB of memory) at the cost of the parallel speed-up.
   */
  readonly threads?: number;
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
 * Device-resident runs of a compiled graph: see `CompiledGraph.resident`.
 *
 * @example
 * ```ts
 * import type { ResidentSession } from "./compile.ts";
 * async function imagesPerSecond(s: ResidentSession, batch: number): Promise<number> {
 *   const start = performance.now();
 *   for (let i = 0; i < 100; i++) s.run();
 *   await s.finish();
 *   return (100 * batch) / ((performance.now() - start) / 1000);
 * }
 * ```
 */
export interface ResidentSession {
  /** Uploads the inputs (by name) into device memory. */
  upload(inputs: Readonly<Record<string, TensorData>>): void;
  /** Queues one run; the output stays on the device. */
  run(): void;
  /** Resolves when all queued runs are done. */
  finish(): Promise<void>;
  /** Reads the output of the last run back to the host (into `into` when given). */
  read(into?: Float32Array): Promise<TensorData>;
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
  /**
   * Buffers to write results into, by name (`output` or a stage), so a caller running many
   * batches reuses memory instead of receiving fresh arrays (like ONNX Runtime's IO binding).
   */
  readonly into?: Readonly<Record<string, Float32Array>>;
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
  /** The backend that runs now (it changes if a fallback happens). */
  readonly backend: string;
  /** Why this backend was chosen. */
  readonly reason: string;
  /** Every fallback so far, with its reason, oldest first. */
  readonly fallbacks: readonly string[];
  /** Runs the graph on `inputs` (by input name). */
  run(inputs: Readonly<Record<string, TensorData>>, options?: RunOptions): Promise<RunResult>;
  /**
   * Device-resident runs for these input shapes (upload once, run many times, read back when
   * asked), on a backend that keeps tensors on a device (`wgsl`); otherwise throws.
   */
  resident(shapes: Readonly<Record<string, readonly number[]>>): Promise<ResidentSession>;
  /** Generates the kernels for these input shapes now instead of at the first `run()`. */
  prepare(shapes: Readonly<Record<string, readonly number[]>>, options?: RunOptions): Promise<void>;
  /** What runs: one line per kernel, and the sources with `{ source: true }`. */
  explain(options?: { source?: boolean }): string;
  /** Releases backend resources. */
  dispose(): void;
}

// Ordered by measured speed on the tokenizers (bench/tokenizer.ts): wasm (js plus WASM SIMD
// matrix multiplies), js, then gpu.js cpu, webasm.
const CPU_CHAIN: readonly Exclude<BackendName, "auto">[] = [
  "wasm",
  "js",
  "cpu",
  "webasm",
  "reference",
];

function makeBackend(name: Exclude<BackendName, "auto">, options: CompileOptions): Backend {
  switch (name) {
    case "reference":
      return referenceBackend;
    case "js":
      return options.threads ? cpuCodegenBackend("js", { threads: options.threads }) : jsBackend;
    case "wasm":
      return options.threads
        ? cpuCodegenBackend("wasm", { threads: options.threads })
        : wasmBackend;
    case "wgsl":
      return wgslBackend({ adapter: options.adapter, gemmTile: options.gemmTile });
    case "headlessgl":
    case "webgl":
      return {
        name,
        unavailable: () =>
          Promise.resolve(
            name === "webgl"
              ? "webgl needs a browser canvas; Deno has none (use webgpu)"
              : "headlessgl needs the native `gl` addon, which Deno does not load (use webgpu)",
          ),
        prepare: () => Promise.reject(new Error(`${name} is unavailable`)),
      };
    default:
      return gpuJsBackend(name as GpuJsMode, {
        maxBufferBytes: options.maxBufferBytes,
        adapter: options.adapter,
      });
  }
}

/** Picks the backend chain: the choice first, then the CPU fallbacks, with the reason. */
async function chooseBackends(
  requested: BackendName,
  options: CompileOptions,
  warn: (m: string) => void,
): Promise<{ chain: Backend[]; reason: string; skipped: string[] }> {
  const skipped: string[] = [];
  const usable = async (name: Exclude<BackendName, "auto">): Promise<Backend | undefined> => {
    const backend = makeBackend(name, options);
    const why = await backend.unavailable().catch((e: Error) => describeFailure(e));
    if (why) skipped.push(`${name}: ${why}`);
    return why ? undefined : backend;
  };
  const cpuChain = async (): Promise<Backend[]> => {
    const found: Backend[] = [];
    for (const name of CPU_CHAIN) {
      const b = await usable(name);
      if (b) found.push(b);
    }
    return found;
  };
  if (requested === "auto") {
    const webgpu = makeBackend("webgpu", options) as ReturnType<typeof gpuJsBackend>;
    const report = await webgpu.adapter();
    const cpus = await cpuChain();
    if (report && !report.isFallbackAdapter) {
      // Both GPU paths, fastest measured first (bench/README.md: wgsl 2.1x gpu.js at B=256).
      return {
        chain: [makeBackend("wgsl", options), webgpu, ...cpus],
        reason: `auto: wgsl (WebGPU) on ${report.description}`,
        skipped,
      };
    }
    skipped.unshift(
      report
        ? `webgpu: ${report.description} is a fallback (software) adapter`
        : "webgpu: no adapter (navigator.gpu.requestAdapter() returned null)",
    );
    return {
      chain: cpus,
      reason: `auto: ${cpus[0].name}, the fastest CPU backend measured here (${
        skipped.join("; ")
      })`,
      skipped,
    };
  }
  if (!BACKEND_NAMES.includes(requested)) {
    throw new Error(
      `compile: unknown backend "${requested}"; use one of ${BACKEND_NAMES.join(", ")}`,
    );
  }
  const first = await usable(requested);
  const cpus = (await cpuChain()).filter((b) => b.name !== requested);
  if (first) return { chain: [first, ...cpus], reason: `requested ${requested}`, skipped };
  const reason = `requested ${requested}, unavailable (${skipped[0]}); fell back to ${
    cpus[0].name
  }`;
  warn(`tessera: ${reason}`);
  return { chain: cpus, reason, skipped };
}

function describeFailure(e: unknown): string {
  if (e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied) {
    return `${(e as Error).message.split("\n")[0]} (run with the Deno flag it names, or -A)`;
  }
  if (e instanceof BackendRejection) return e.reason;
  return e instanceof Error ? e.message.split("\n")[0] : String(e);
}

/**
 * The symbolic batch dim, when every computed tensor carries it as dim 0 (so the batch can be
 * split into chunks and the results concatenated), else `undefined`.
 *
 * @example
 * ```ts
 * import { graph } from "../graph/builder.ts";
 * import { batchAxisSymbol } from "./compile.ts";
 * const g = graph("t", (b) => b.flatten(b.input("x", ["B", 2, 2]), 1, 2));
 * batchAxisSymbol(g); // "B"
 * ```
 */
export function batchAxisSymbol(graph: Graph): string | undefined {
  const inputs = graph.inputs();
  const symbol = inputs[0]?.shape[0];
  if (typeof symbol !== "string") return undefined;
  const carries = (n: AnyNode): boolean =>
    n.op === "param" ? !n.shape.includes(symbol) : n.shape[0] === symbol &&
      !n.shape.slice(1).some((d) => typeof d === "string" && d.split("*").includes(symbol));
  return graph.nodes.every(carries) ? symbol : undefined;
}

/**
 * Validates the weights, picks the backend (with its fallbacks), and returns the model.
 * Kernels are generated at the first `run()` for each input shape and cached.
 *
 * @example
 * ```ts
 * import { graph } from "../graph/builder.ts";
 * import { compile } from "./compile.ts";
 * const g = graph("t", (b) => b.flatten(b.input("x", ["B", 2, 2]), 1, 2));
 * const model = await compile(g, { backend: "cpu" });
 * model.backend; // "cpu"
 * ```
 */
export async function compile<Out extends TShape>(
  graph: Graph<Out>,
  options: CompileOptions = {},
): Promise<CompiledGraph<Out>> {
  const tileProblem = options.gemmTile && gemmTileProblem(options.gemmTile);
  if (tileProblem) {
    const { bm, bn, bk, tm, tn } = options.gemmTile as GpuGemmTile;
    throw new Error(
      `compile: gemmTile ${bm}x${bn}x${bk}/${tm}x${tn} cannot be used: ${tileProblem}; ` +
        `GPU_GEMM_TILE is a valid one`,
    );
  }
  if (
    options.threads !== undefined && !(Number.isInteger(options.threads) && options.threads > 0)
  ) {
    throw new Error(
      `compile: threads must be a positive whole number, got ${options.threads}; ` +
        `leave it out for one per core`,
    );
  }
  const weights = options.weights ?? initParams(graph, options.seed ?? 0);
  validateWeights(graph, weights, options.weightsSource);
  const warn = options.onWarning ?? ((m: string) => console.warn(m));
  const { chain, reason } = await chooseBackends(options.backend ?? "auto", options, warn);
  const fallbacks: string[] = [];
  let active = 0;
  const batchSymbol = batchAxisSymbol(graph);
  type Entry = { exe: Executable; want: Map<string, number>; chunk?: number };
  const cache = new Map<string, Entry>();
  let last: Executable | undefined;

  const fallBack = (why: string): void => {
    const from = chain[active].name;
    if (active + 1 >= chain.length) {
      throw new Error(`${from} failed and no fallback is left: ${why}`);
    }
    active++;
    cache.clear();
    const message = `tessera: ${from} -> ${chain[active].name}: ${why}`;
    fallbacks.push(message);
    warn(message);
  };

  const prepare = async (
    shapes: Readonly<Record<string, readonly number[]>>,
    stages: readonly string[],
  ): Promise<Entry> => {
    const key = JSON.stringify([active, shapes, stages]);
    const hit = cache.get(key);
    if (hit) return hit;
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
    const entry = { exe: await chain[active].prepare(concrete, weights, [...want.values()]), want };
    cache.set(key, entry);
    return entry;
  };

  // Prepares the active backend for these shapes, halving the batch while a size limit rejects
  // it; returns the batch ranges to run and their executables.
  const plan = async (
    shapes: Readonly<Record<string, readonly number[]>>,
    stages: readonly string[],
    from = 0,
  ): Promise<{ from: number; to: number; entry: Entry }[]> => {
    const batch = Object.values(shapes)[0]?.[0] ?? 1;
    try {
      return [{ from, to: from + batch, entry: await prepare(shapes, stages) }];
    } catch (e) {
      if (!(e instanceof BackendRejection && e.sizeBound && batchSymbol && batch > 1)) throw e;
      const half = Math.ceil(batch / 2);
      const withBatch = (b: number) =>
        Object.fromEntries(Object.entries(shapes).map(([k, s]) => [k, [b, ...s.slice(1)]]));
      return [
        ...await plan(withBatch(half), stages, from),
        ...await plan(withBatch(batch - half), stages, from + half),
      ];
    }
  };

  const runPlanned = async (
    inputs: Readonly<Record<string, TensorData>>,
    stages: readonly string[],
    into: Readonly<Record<string, Float32Array>>,
  ): Promise<Record<string, TensorData>> => {
    const shapes = Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, v.shape]));
    const chunks = await plan(shapes, stages);
    const parts: Record<string, TensorData>[] = [];
    for (const { from, to, entry } of chunks) {
      last = entry.exe;
      const slice = chunks.length === 1 ? inputs : sliceBatch(inputs, from, to);
      const targets = chunks.length === 1 ? [...entry.want.keys()].map((n) => into[n]) : undefined;
      if (!entry.exe.checksFinite) checkInputs(graph, slice);
      const values = await entry.exe.run(slice, targets).catch((e) => {
        // Names the input and index; the executable only knew that some value was bad.
        if (e instanceof NonFiniteInput) checkInputs(graph, inputs);
        throw e;
      });
      parts.push(Object.fromEntries([...entry.want.keys()].map((n, i) => [n, values[i]])));
    }
    return parts.length === 1 ? parts[0] : concatBatch(parts, into);
  };

  return {
    graph,
    get backend() {
      return chain[active].name;
    },
    reason,
    fallbacks,
    async run(inputs, runOptions = {}) {
      checkInputs(graph, inputs, false);
      const stages = runOptions.stages === "all" ? graph.labels() : [...(runOptions.stages ?? [])];
      const into = checkInto(graph, inputs, runOptions.into ?? {});
      for (;;) {
        try {
          const { output, ...rest } = await runPlanned(inputs, stages, into);
          return { output, stages: rest };
        } catch (e) {
          if (chain[active].name === "reference" || !isBackendFailure(e)) throw e;
          fallBack(describeFailure(e));
        }
      }
    },
    async resident(shapes) {
      const entry = await prepare(shapes, []);
      const runs = entry.exe.resident;
      if (!runs) {
        throw new Error(
          `resident runs need a device backend (wgsl); this model runs on ${chain[active].name}`,
        );
      }
      last = entry.exe;
      return {
        upload: (inputs) => {
          checkInputs(graph, inputs);
          runs.upload(inputs);
        },
        run: () => runs.run(),
        finish: () => runs.finish(),
        read: async (into) => (await runs.read(into ? [into] : undefined))[0],
      };
    },
    async prepare(shapes, runOptions = {}) {
      const stages = runOptions.stages === "all" ? graph.labels() : [...(runOptions.stages ?? [])];
      for (;;) {
        try {
          const chunks = await plan(shapes, stages);
          last = chunks[0].entry.exe;
          return;
        } catch (e) {
          if (chain[active].name === "reference" || !isBackendFailure(e)) throw e;
          fallBack(describeFailure(e));
        }
      }
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

// Errors about the user's data or graph are reported as they are; anything else a backend
// throws (device lost, a kernel it cannot compile, a missing permission) triggers a fallback.
function isBackendFailure(e: unknown): boolean {
  return !(e instanceof InputError) && !(e instanceof ShapeError) &&
    !(e instanceof Error && e.message.startsWith("run: no stage"));
}

function sliceBatch(
  inputs: Readonly<Record<string, TensorData>>,
  from: number,
  to: number,
): Record<string, TensorData> {
  return Object.fromEntries(
    Object.entries(inputs).map(([k, t]) => {
      const per = numel(t.shape.slice(1));
      return [k, {
        shape: [to - from, ...t.shape.slice(1)],
        data: t.data.subarray(from * per, to * per),
      }];
    }),
  );
}

function concatBatch(
  parts: readonly Record<string, TensorData>[],
  into: Readonly<Record<string, Float32Array>>,
): Record<string, TensorData> {
  return Object.fromEntries(
    Object.keys(parts[0]).map((k) => {
      const pieces = parts.map((p) => p[k]);
      const batch = pieces.reduce((s, t) => s + t.shape[0], 0);
      const data = into[k] ?? new Float32Array(pieces.reduce((s, t) => s + t.data.length, 0));
      let at = 0;
      for (const t of pieces) {
        data.set(t.data, at);
        at += t.data.length;
      }
      return [k, { shape: [batch, ...pieces[0].shape.slice(1)], data }];
    }),
  );
}

// Result shapes per input shapes, so checking `into` costs nothing after the first run.
const specializedForInto = new WeakMap<Graph, Map<string, Graph>>();

// `into` buffers must match the result sizes these inputs give, or the run is refused up front.
function checkInto(
  graph: Graph,
  inputs: Readonly<Record<string, TensorData>>,
  into: Readonly<Record<string, Float32Array>>,
): Readonly<Record<string, Float32Array>> {
  if (Object.keys(into).length === 0) return into;
  const shapes = Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, v.shape]));
  const key = JSON.stringify(shapes);
  let concrete = specializedForInto.get(graph)?.get(key);
  if (!concrete) {
    concrete = specialize(graph, shapes).graph;
    const perGraph = specializedForInto.get(graph) ?? new Map<string, Graph>();
    perGraph.set(key, concrete);
    specializedForInto.set(graph, perGraph);
  }
  for (const [name, buffer] of Object.entries(into)) {
    const node = name === "output" ? concrete.nodes[concrete.output] : concrete.find(name);
    if (!node) throw new Error(`run: into names "${name}", which is not output or a stage`);
    const size = numel(node.shape as number[]);
    if (!(buffer instanceof Float32Array) || buffer.length !== size) {
      throw new Error(
        `run: into.${name} must be a Float32Array of ${size} values for ${formatShape(node.shape)}`,
      );
    }
  }
  return into;
}

// `finite: false` leaves the NaN scan to an executable that `checksFinite`.
function checkInputs(
  graph: Graph,
  inputs: Readonly<Record<string, TensorData>>,
  finite = true,
): void {
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
    const bad = finite ? firstNonFinite(value.data) : -1;
    if (bad >= 0) {
      throw new InputError(
        name,
        `has ${value.data[bad]} at flat index ${bad}; inputs must be finite`,
      );
    }
  }
}
