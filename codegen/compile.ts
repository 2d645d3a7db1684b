/**
 * `compile()`: binds a graph to weights and a backend, and returns a model whose `run()` can
 * be called many times. Specialization to real input shapes happens once per distinct shape.
 * @module
 */

import { type AnyNode, Graph } from "../graph/ir.ts";
import { firstNonFinite, initParams, validateWeights, type Weights } from "../graph/params.ts";
import { formatShape, ShapeError } from "../graph/shape.ts";
import { WeightsError } from "../io/safetensors.ts";
import { specialize } from "../graph/specialize.ts";
import type { TShape } from "../graph/shape_types.ts";
import { numel, type TensorData } from "../graph/tensor_data.ts";
import {
  type Backend,
  BackendRejection,
  type Executable,
  NonFiniteInput,
} from "./backends/backend.ts";
import { referenceBackend } from "./backends/reference.ts";
import { cpuCodegenBackend, jsBackend, nativeBackend, wasmBackend } from "./backends/js.ts";
import { wgslBackend } from "./backends/wgsl.ts";
import { gemmTileProblem, type GpuGemmTile } from "./render/wgsl/gemm.ts";
import { gpuJsBackend, type GpuJsMode } from "./backends/gpujs.ts";
import type { AdapterProvider } from "./backends/webgpu_device.ts";
import { runtimeFeatures } from "./backends/runtime_features.ts";

/**
 * A caller's mistake in the arguments of `compile()` or `run()` (an option of the wrong type, an
 * unknown stage). It is reported as it is and never makes the model fall back to another backend.
 *
 * @example
 * ```ts
 * import { ArgumentError } from "./compile.ts";
 * new ArgumentError("run: stages must be an array of labels or \"all\"").name; // "ArgumentError"
 * ```
 */
export class ArgumentError extends Error {
  /** An error whose message is the whole one-line explanation, with the fix. */
  constructor(message: string) {
    super(message);
    this.name = "ArgumentError";
  }
}

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
export class InputError extends ArgumentError {
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
  | "native"
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
  "native",
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
  /**
   * Parameter values by PyTorch name (a Map, such as `loadSafetensors(...).tensors`, or a plain
   * object); when absent they are initialized from `seed`. A backend may read these arrays in
   * place rather than copy them (`native` does, for the matrix multiplies' weights, where its
   * threads can see them: shared memory, as `loadSafetensors` and `initParams` allocate, or one
   * thread), so change them only before `compile()` or after `dispose()`.
   */
  readonly weights?: Weights | Readonly<Record<string, TensorData>>;
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

// Ordered by measured speed (bench/tokenizer.ts, bench/vit.ts): wasm (js plus WASM SIMD matrix
// multiplies), native (the same with a system BLAS, with --allow-ffi and the library), js, then
// gpu.js cpu, webasm. Graphs with large weight matrices put native first (see `productHeavy`).
const CPU_CHAIN: readonly Exclude<BackendName, "auto">[] = [
  "wasm",
  "native",
  "js",
  "cpu",
  "webasm",
  "reference",
];

// Weight elements of Linear and conv layers from which `auto` prefers native to wasm. Measured
// at B=8 (img/s, wasm / native): the seed tokenizer (3K weights) 3811 / 2279, the standard one
// (590K) 319 / 722, ViT-Ti (5.5M) 19.6 / 43.6.
const NATIVE_FROM_WEIGHTS = 100_000;

/** Whether `graph`'s Linear and conv weights are large enough that the BLAS wins. */
function productHeavy(graph: Graph): boolean {
  let weights = 0;
  for (const node of graph.nodes) {
    if (node.op !== "linear" && node.op !== "conv2d") continue;
    const w = graph.nodes[node.inputs[1]];
    if (w?.op === "param") weights += w.shape.reduce((p: number, d) => p * (Number(d) || 1), 1);
  }
  return weights >= NATIVE_FROM_WEIGHTS;
}

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
    case "native":
      return options.threads
        ? cpuCodegenBackend("native", { threads: options.threads })
        : nativeBackend;
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
  heavy = false,
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
    const order = heavy
      ? ["native" as const, ...CPU_CHAIN.filter((n) => n !== "native")]
      : CPU_CHAIN;
    for (const name of order) {
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
      reason: `auto: ${cpus[0].name}, the fastest CPU backend measured here${
        heavy ? " for large weight matrices" : ""
      } (${skipped.join("; ")})${how(cpus[0])}`,
      skipped,
    };
  }
  const first = await usable(requested);
  const cpus = (await cpuChain()).filter((b) => b.name !== requested);
  if (first) {
    return { chain: [first, ...cpus], reason: `requested ${requested}${how(first)}`, skipped };
  }
  const reason = `requested ${requested}, unavailable (${skipped[0]}); fell back to ${
    cpus[0].name
  }`;
  warn(`tessera: ${reason}`);
  return { chain: cpus, reason: reason + how(cpus[0]), skipped };
}

// A backend's runtime-dependent setup for `reason` (the CPU backends' threads and why).
function how(backend: Backend): string {
  const words = backend.describe?.();
  return words ? `; ${words}` : "";
}

function describeFailure(e: unknown): string {
  // Deno's error classes exist only under Deno; browsers and Node take the generic branch.
  const errors = (globalThis as { Deno?: typeof Deno }).Deno?.errors;
  if (errors && (e instanceof errors.NotCapable || e instanceof errors.PermissionDenied)) {
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
  // An op along axis 0 (softmax over the batch, say) mixes the samples, so a split would change it.
  const alongBatch = (n: AnyNode): boolean =>
    "axis" in n.attrs && (n.attrs as { axis: unknown }).axis === 0;
  const carries = (n: AnyNode): boolean =>
    n.op === "param" ? !n.shape.includes(symbol) : n.shape[0] === symbol && !alongBatch(n) &&
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
  const warn = checkCompileOptions(graph, options);
  const threads = clampThreads(options.threads, warn);
  const settings = threads === options.threads ? options : { ...options, threads };
  const weights = weightsMap(graph, options.weights) ?? initParams(graph, options.seed ?? 0);
  validateWeights(graph, weights, options.weightsSource);
  const { chain, reason } = await chooseBackends(
    options.backend ?? "auto",
    settings,
    warn,
    productHeavy(graph),
  );
  const fallbacks: string[] = [];
  let active = 0;
  const batchSymbol = batchAxisSymbol(graph);
  type Entry = { exe: Executable; want: Map<string, number> };
  const cache = new Map<string, Entry>();
  let last: Executable | undefined;
  // Executables keep their inputs, intermediates and results in buffers of their own, so runs of
  // one model go one at a time (bench/concurrency.ts: a queue serves as many images per second as
  // one model per caller, without the memory).
  let queue: Promise<unknown> = Promise.resolve();
  const queued = <T>(job: () => Promise<T>): Promise<T> => {
    const result = queue.then(job);
    queue = result.catch(() => {});
    return result;
  };

  // `everyKernel`: no generated-code backend can take the graph (an op without an emitter), so
  // the model goes straight to the interpreter instead of trying each of them in turn.
  const fallBack = (why: string, everyKernel = false): void => {
    const from = chain[active].name;
    if (active + 1 >= chain.length) {
      throw new Error(`${from} failed and no fallback is left: ${why}`);
    }
    const interpreter = chain.findIndex((b) => b.name === "reference");
    active = everyKernel && interpreter > active ? interpreter : active + 1;
    cache.clear();
    const message = `tessera: ${from} -> ${chain[active].name}: ${why}`;
    fallbacks.push(message);
    warn(message);
  };

  // The concrete graph and the node of each requested name ("output" first), per input shapes
  // and stages.
  type Resolved = { concrete: Graph; nodes: Map<string, AnyNode> };
  const resolved = new Map<string, Resolved>();
  const resolve = (
    shapes: Readonly<Record<string, readonly number[]>>,
    stages: readonly string[],
  ): Resolved => {
    const key = JSON.stringify([shapes, stages]);
    const hit = resolved.get(key);
    if (hit) return hit;
    const concrete = specialize(graph, shapes).graph;
    const nodes = new Map<string, AnyNode>([["output", concrete.nodes[concrete.output]]]);
    for (const s of stages) {
      const node = concrete.find(s);
      if (!node) {
        throw new ArgumentError(
          `run: no stage "${s}" in graph ${graph.name} (stages: ${
            graph.labels().join(", ") || "none"
          })`,
        );
      }
      nodes.set(s, node);
    }
    const entry = { concrete, nodes };
    resolved.set(key, entry);
    return entry;
  };

  // The names a backend computes: not inputs or parameters (returned as copies), not empty.
  const computedNames = (nodes: Map<string, AnyNode>): string[] =>
    [...nodes].filter(([, n]) => !isLeaf(n) && numel(n.shape as number[]) > 0).map(([k]) => k);

  const prepare = async (
    shapes: Readonly<Record<string, readonly number[]>>,
    names: readonly string[],
  ): Promise<Entry> => {
    const key = JSON.stringify([active, shapes, names]);
    const hit = cache.get(key);
    if (hit) return hit;
    const { concrete, nodes } = resolve(shapes, names.filter((n) => n !== "output"));
    const want = new Map(names.map((n) => [n, (nodes.get(n) as AnyNode).id]));
    const entry = { exe: await chain[active].prepare(concrete, weights, [...want.values()]), want };
    cache.set(key, entry);
    return entry;
  };

  // Prepares the active backend for these shapes, halving the batch while a size limit rejects
  // it; returns the batch ranges to run and their executables.
  const plan = async (
    shapes: Readonly<Record<string, readonly number[]>>,
    names: readonly string[],
    from = 0,
  ): Promise<{ from: number; to: number; entry: Entry }[]> => {
    const batch = Object.values(shapes)[0]?.[0] ?? 1;
    try {
      return [{ from, to: from + batch, entry: await prepare(shapes, names) }];
    } catch (e) {
      if (!(e instanceof BackendRejection && e.sizeBound && batchSymbol && batch > 1)) throw e;
      const half = Math.ceil(batch / 2);
      const withBatch = (b: number) =>
        Object.fromEntries(Object.entries(shapes).map(([k, s]) => [k, [b, ...s.slice(1)]]));
      return [
        ...await plan(withBatch(half), names, from),
        ...await plan(withBatch(batch - half), names, from + half),
      ];
    }
  };

  const runPlanned = async (
    inputs: Readonly<Record<string, TensorData>>,
    names: readonly string[],
    into: Readonly<Record<string, Float32Array>>,
  ): Promise<Record<string, TensorData>> => {
    const chunks = await plan(shapesOf(inputs), names);
    const parts: Record<string, TensorData>[] = [];
    for (const { from, to, entry } of chunks) {
      last = entry.exe;
      const slice = chunks.length === 1 ? inputs : sliceBatch(inputs, from, to);
      const targets = chunks.length === 1 ? [...entry.want.keys()].map((n) => into[n]) : undefined;
      if (!entry.exe.checksFinite) checkFinite(graph, slice);
      const values = await entry.exe.run(slice, targets).catch((e) => {
        // Names the input and index; the executable only knew that some value was bad.
        if (e instanceof NonFiniteInput) checkFinite(graph, inputs);
        throw e;
      });
      parts.push(Object.fromEntries([...entry.want.keys()].map((n, i) => [n, values[i]])));
    }
    return parts.length === 1 ? parts[0] : concatBatch(parts, into);
  };

  // Runs on the active backend, falling back when the backend (never the caller) is at fault.
  const onBackend = async <T>(job: () => Promise<T>): Promise<T> => {
    for (;;) {
      try {
        return await job();
      } catch (e) {
        if (chain[active].name === "reference" || !isBackendFailure(e)) throw e;
        fallBack(describeFailure(e), e instanceof BackendRejection && e.backend === "codegen");
      }
    }
  };

  const runResolved = async (
    inputs: Readonly<Record<string, TensorData>>,
    { concrete, nodes }: Resolved,
    into: Readonly<Record<string, Float32Array>>,
  ): Promise<RunResult> => {
    const values: Record<string, TensorData> = {};
    for (const [name, node] of nodes) {
      const shape = node.shape as number[];
      if (node.op === "input") values[name] = copied(inputs[node.attrs.name], into[name]);
      else if (node.op === "param") {
        values[name] = copied(weights.get(node.attrs.name) as TensorData, into[name]);
      } else if (numel(shape) === 0) {
        values[name] = { shape, data: into[name] ?? new Float32Array(0) };
      }
    }
    const names = computedNames(nodes);
    if (names.length > 0) {
      // An empty input with a non-empty result (a stage that does not depend on it) goes to the
      // interpreter: device backends cannot bind empty buffers, and it is not their failure.
      const empty = Object.values(inputs).some((v) => v.data.length === 0);
      const computed = empty
        ? await interpretEmpty(concrete, weights, inputs, nodes, names)
        : await onBackend(() => runPlanned(inputs, names, into));
      Object.assign(values, computed);
    }
    const { output, ...stages } = values;
    return { output, stages };
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
      const { stages, into } = checkRunOptions(graph, runOptions);
      const request = resolve(shapesOf(inputs), stages);
      checkInto(request.nodes, into);
      return await queued(() => runResolved(inputs, request, into));
    },
    async resident(shapes) {
      checkShapes(graph, shapes);
      const empty = Object.entries(shapes).find(([, s]) => numel(s) === 0);
      if (empty) {
        // A device cannot bind an empty buffer, and there is nothing to keep resident.
        throw new InputError(
          empty[0],
          `has shape ${formatShape(empty[1])} with no values; resident runs need a non-empty ` +
            `batch (run() returns empty results for it)`,
        );
      }
      const entry = await queued(() => prepare(shapes, ["output"]));
      const runs = entry.exe.resident;
      if (!runs) {
        throw new ArgumentError(
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
      checkShapes(graph, shapes);
      const { stages } = checkRunOptions(graph, runOptions);
      const names = computedNames(resolve(shapes, stages).nodes);
      if (names.length === 0) return;
      await queued(() =>
        onBackend(async () => {
          last = (await plan(shapes, names))[0].entry.exe;
        })
      );
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

function isLeaf(node: AnyNode): boolean {
  return node.op === "input" || node.op === "param";
}

function shapesOf(
  inputs: Readonly<Record<string, TensorData>>,
): Record<string, readonly number[]> {
  return Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, v.shape]));
}

// A copy (or the caller's `into`): returned tensors never alias an input or a weight.
function copied(value: TensorData, into?: Float32Array): TensorData {
  const data = into ?? new Float32Array(value.data.length);
  data.set(value.data);
  return { shape: [...value.shape], data };
}

async function interpretEmpty(
  concrete: Graph,
  weights: Weights,
  inputs: Readonly<Record<string, TensorData>>,
  nodes: Map<string, AnyNode>,
  names: readonly string[],
): Promise<Record<string, TensorData>> {
  const ids = names.map((n) => (nodes.get(n) as AnyNode).id);
  const exe = await referenceBackend.prepare(concrete, weights, ids);
  const values = await exe.run(inputs);
  return Object.fromEntries(names.map((n, i) => [n, values[i]]));
}

// Errors about the user's data, graph or options are reported as they are; anything else a
// backend throws (device lost, a kernel it cannot compile, a missing permission) falls back.
function isBackendFailure(e: unknown): boolean {
  return !(e instanceof ArgumentError) && !(e instanceof ShapeError) &&
    !(e instanceof WeightsError);
}

// How a wrong value looks in a message: its type, not its contents.
function describeValue(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "string") return JSON.stringify(value.slice(0, 40));
  if (typeof value !== "object") return String(value);
  return `a ${value.constructor?.name ?? "plain object"}`;
}

function isRecord(value: unknown): boolean {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

// Checks everything about compile()'s arguments that a caller can get wrong, before any backend
// is touched; returns the warning sink.
function checkCompileOptions(graph: Graph, options: CompileOptions): (m: string) => void {
  if (!(graph instanceof Graph)) {
    throw new ArgumentError(
      `compile: the first argument must be a Graph from graph(name, (g) => ...), got ${
        describeValue(graph)
      }`,
    );
  }
  if (!isRecord(options)) {
    throw new ArgumentError(
      `compile: options must be an object such as { backend: "auto" }, got ${
        describeValue(options)
      }`,
    );
  }
  const { backend, seed, onWarning, maxBufferBytes, gemmTile } = options;
  if (backend !== undefined && !BACKEND_NAMES.includes(backend)) {
    throw new ArgumentError(
      `compile: unknown backend "${backend}"; use one of ${BACKEND_NAMES.join(", ")}`,
    );
  }
  if (seed !== undefined && !Number.isSafeInteger(seed)) {
    throw new ArgumentError(`compile: seed must be a whole number, got ${describeValue(seed)}`);
  }
  if (onWarning !== undefined && typeof onWarning !== "function") {
    throw new ArgumentError(
      `compile: onWarning must be a function, got ${describeValue(onWarning)}`,
    );
  }
  if (
    maxBufferBytes !== undefined &&
    !(typeof maxBufferBytes === "number" && maxBufferBytes > 0)
  ) {
    throw new ArgumentError(
      `compile: maxBufferBytes must be a positive number of bytes, got ${
        describeValue(maxBufferBytes)
      }`,
    );
  }
  const tileProblem = gemmTile && gemmTileProblem(gemmTile);
  if (tileProblem) {
    const { bm, bn, bk, tm, tn } = gemmTile as GpuGemmTile;
    throw new ArgumentError(
      `compile: gemmTile ${bm}x${bn}x${bk}/${tm}x${tn} cannot be used: ${tileProblem}; ` +
        `GPU_GEMM_TILE is a valid one`,
    );
  }
  return onWarning ?? ((m: string) => console.warn(m));
}

// More threads than cores only adds workers (about 18 MiB each) and contention, so a larger
// request is clamped to the hardware's concurrency with a warning.
function clampThreads(threads: unknown, warn: (m: string) => void): number | undefined {
  if (threads === undefined) return undefined;
  if (!(typeof threads === "number" && Number.isInteger(threads) && threads > 0)) {
    throw new ArgumentError(
      `compile: threads must be a positive whole number, got ${describeValue(threads)}; ` +
        `leave it out for one per core`,
    );
  }
  // Node 20 has no navigator; runtimeFeatures asks node:os there.
  const cores = Math.max(1, runtimeFeatures().cores);
  if (threads <= cores) return threads;
  warn(
    `tessera: threads ${threads} is more than the ${cores} cores here; using ${cores} ` +
      `(extra threads only add workers, about 18 MiB each)`,
  );
  return cores;
}

// Weights as a Map or a plain object by name; each entry the graph uses must be tensor data.
function weightsMap(graph: Graph, weights: CompileOptions["weights"]): Weights | undefined {
  if (weights === undefined) return undefined;
  if (!(weights instanceof Map) && !isRecord(weights)) {
    throw new ArgumentError(
      `compile: weights must be a Map (or object) of name -> { shape, data }, such as ` +
        `loadSafetensors(...).tensors; got ${describeValue(weights)}`,
    );
  }
  const map: Weights = weights instanceof Map
    ? weights
    : new Map(Object.entries(weights as Record<string, TensorData>));
  for (const p of graph.params()) {
    const w = map.get(p.attrs.name) as Partial<TensorData> | undefined;
    if (w === undefined) continue;
    if (!isRecord(w) || !Array.isArray(w.shape) || !(w.data instanceof Float32Array)) {
      throw new ArgumentError(
        `compile: weights "${p.attrs.name}" must be { shape: number[], data: Float32Array }, ` +
          `got ${describeValue(w)}`,
      );
    }
  }
  return map;
}

function checkRunOptions(
  graph: Graph,
  runOptions: RunOptions,
): { stages: string[]; into: Readonly<Record<string, Float32Array>> } {
  if (!isRecord(runOptions)) {
    throw new ArgumentError(
      `run: options must be an object such as { stages: "all" }, got ${describeValue(runOptions)}`,
    );
  }
  const { stages = [], into = {} } = runOptions;
  if (stages !== "all" && !(Array.isArray(stages) && stages.every((s) => typeof s === "string"))) {
    throw new ArgumentError(
      `run: stages must be "all" or an array of stage labels (${
        graph.labels().join(", ") || "none"
      }), got ${describeValue(stages)}`,
    );
  }
  if (!isRecord(into)) {
    throw new ArgumentError(
      `run: into must be an object of Float32Arrays by name (output or a stage), got ${
        describeValue(into)
      }`,
    );
  }
  return { stages: stages === "all" ? graph.labels() : [...new Set(stages)], into };
}

// Input shapes for prepare()/resident(): one array of sizes per input, nothing extra.
function checkShapes(graph: Graph, shapes: Readonly<Record<string, readonly number[]>>): void {
  const names = graph.inputs().map((n) => n.attrs.name);
  if (!isRecord(shapes)) {
    throw new ArgumentError(
      `shapes must be an object by input name, such as { ${names[0]}: [1, ...] }, got ${
        describeValue(shapes)
      }`,
    );
  }
  for (const name of names) checkShape(name, shapes[name], true);
  checkExtra(graph, shapes);
}

function checkShape(name: string, shape: unknown, required: boolean): void {
  if (shape === undefined && required) {
    throw new InputError(name, `has no shape; pass { ${name}: [sizes] }`);
  }
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new InputError(
      name,
      `shape must be an array of whole numbers >= 0, got ${describeValue(shape)}${
        Array.isArray(shape) ? ` [${shape.map(String).join(", ")}]` : ""
      }`,
    );
  }
}

function checkExtra(graph: Graph, byName: Readonly<Record<string, unknown>>): void {
  const names = graph.inputs().map((n) => n.attrs.name);
  for (const key of Object.keys(byName)) {
    if (!names.includes(key)) {
      throw new InputError(
        key,
        `is not an input of graph ${graph.name} (its inputs: ${names.join(", ")}); remove it`,
      );
    }
  }
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

// `into` buffers must be for a requested result and match its size, or the run is refused.
function checkInto(
  nodes: Map<string, AnyNode>,
  into: Readonly<Record<string, Float32Array>>,
): void {
  for (const [name, buffer] of Object.entries(into)) {
    const node = nodes.get(name);
    if (!node) {
      throw new ArgumentError(
        `run: into names "${name}", which is not output or a requested stage; ` +
          `add it to stages or remove it`,
      );
    }
    const size = numel(node.shape as number[]);
    if (!(buffer instanceof Float32Array) || buffer.length !== size) {
      throw new ArgumentError(
        `run: into.${name} must be a Float32Array of ${size} values for ${formatShape(node.shape)}`,
      );
    }
  }
}

// `finite: false` leaves the NaN scan to an executable that `checksFinite`.
function checkInputs(
  graph: Graph,
  inputs: Readonly<Record<string, TensorData>>,
  finite = true,
): void {
  const names = graph.inputs().map((n) => n.attrs.name);
  if (!isRecord(inputs)) {
    throw new ArgumentError(
      `run: inputs must be an object by input name, such as { ${names[0]}: { shape, data } }, ` +
        `got ${describeValue(inputs)}`,
    );
  }
  for (const name of names) {
    const value = inputs[name] as Partial<TensorData> | undefined;
    if (value === undefined) {
      throw new InputError(name, `is missing; pass { ${name}: { shape, data } } to run()`);
    }
    if (!isRecord(value)) {
      throw new InputError(name, `must be { shape, data }, got ${describeValue(value)}`);
    }
    checkShape(name, value.shape, false);
    if (!(value.data instanceof Float32Array)) {
      throw new InputError(name, "must hold a Float32Array (convert with Float32Array.from)");
    }
    const shape = value.shape as number[];
    if (value.data.length !== numel(shape)) {
      throw new InputError(
        name,
        `holds ${value.data.length} values but its shape ${formatShape(shape)} needs ${
          numel(shape)
        }`,
      );
    }
  }
  checkExtra(graph, inputs);
  if (finite) checkFinite(graph, inputs);
}

function checkFinite(graph: Graph, inputs: Readonly<Record<string, TensorData>>): void {
  for (const node of graph.inputs()) {
    const name = node.attrs.name;
    const value = inputs[name];
    const bad = firstNonFinite(value.data);
    if (bad >= 0) {
      throw new InputError(
        name,
        `has ${value.data[bad]} at flat index ${bad}; inputs must be finite`,
      );
    }
  }
}
