/**
 * The gpu.js backends: `webgpu` (WGSL compute shaders), `webasm` (WebAssembly with f32x4 SIMD)
 * and `cpu` (generated JavaScript). All three run the same lowered program: one gpu.js kernel
 * per fused kernel, weights and folded constants baked in once as kernel constants, and the
 * kernels chained with `gpu.createPipeline`, so one run uploads the input once, keeps the
 * intermediates on the device and reads the results back once.
 *
 * gpu.js itself is imported on demand, the first time one of these backends prepares a graph:
 * it depends on `webgpu` (Dawn binaries) and the native `gl` addon, which a program that runs
 * on the other backends should never have to download.
 * @module
 */

import type { Graph } from "../../graph/ir.ts";
import type { TensorData } from "../../graph/tensor_data.ts";
import {
  type Backend,
  BackendRejection,
  checkBufferLimit,
  type Executable,
  formatExplain,
} from "./backend.ts";
import { type AdapterProvider, type AdapterReport, probeWebGpu } from "./webgpu_device.ts";
import type { Program } from "../ir/program.ts";
import { lowerProgram } from "../passes/pipeline.ts";
import { fitsExactIndexing, type RenderedKernel, renderKernel } from "../render/gpujs.ts";

/**
 * The gpu.js modes Tessera drives.
 *
 * @example
 * ```ts
 * import type { GpuJsMode } from "./gpujs.ts";
 * const m: GpuJsMode = "webgpu";
 * ```
 */
export type GpuJsMode = "webgpu" | "webasm" | "cpu";

/**
 * Options of a gpu.js backend.
 *
 * @example
 * ```ts
 * import type { GpuJsOptions } from "./gpujs.ts";
 * const o: GpuJsOptions = { maxBufferBytes: 1 << 20 };
 * ```
 */
export interface GpuJsOptions {
  /** Cap on any one buffer in bytes (the device limit on webgpu unless lower). */
  readonly maxBufferBytes?: number;
  /** Where the webgpu backend gets its adapter (tests fake a missing one). */
  readonly adapter?: AdapterProvider;
}

// gpu.js ships no types Deno can see; these are the calls we make.
interface GpuKernel {
  (...args: unknown[]): unknown;
}
interface GpuPipeline {
  (...args: unknown[]): Promise<unknown[]>;
  readonly executorKind?: string;
  readonly fallbackReason?: string | null;
  destroy?(): void;
}
interface GpuInstance {
  createKernel(source: string, settings: Record<string, unknown>): GpuKernel;
  createPipeline(
    fn: (...handles: unknown[]) => unknown[],
    settings?: { threads?: boolean },
  ): GpuPipeline;
  destroy(): void;
}
type GpuConstructor = new (settings: { mode: GpuJsMode }) => GpuInstance;

let gpuJs: Promise<GpuConstructor> | undefined;

/**
 * How gpu.js's module is loaded: `import()` of it, by whichever specifier suits the caller.
 *
 * @example
 * ```ts
 * import type { GpuJsImport } from "./gpujs.ts";
 * const load: GpuJsImport = () => import("npm:gpu.js@2.24.1");
 * ```
 */
export type GpuJsImport = () => Promise<{ GPU: unknown }>;

// Not a literal, so Deno's module graph does not see gpu.js and a program that never picks a
// gpu.js backend never downloads it; mod.ts provides the literal import that bundlers need.
const GPU_JS: string = "npm:gpu.js@2.24.1";
let importGpuJs: GpuJsImport = () => import(GPU_JS);

/**
 * Sets how gpu.js is imported. `mod.ts` passes `() => import("npm:gpu.js@2.24.1")`, a literal,
 * so that `deno bundle mod.ts` inlines gpu.js; a page loading that one file then needs nothing
 * else.
 *
 * @example
 * ```ts
 * import { provideGpuJs } from "./gpujs.ts";
 * provideGpuJs(() => import("npm:gpu.js@2.24.1"));
 * ```
 */
export function provideGpuJs(load: GpuJsImport): void {
  importGpuJs = load;
}

function loadGpuJs(): Promise<GpuConstructor> {
  gpuJs ??= importGpuJs().then(
    (module) => module.GPU as GpuConstructor,
    (err: unknown) => {
      gpuJs = undefined; // a failed download or load is retried by the next prepare()
      throw err;
    },
  );
  return gpuJs;
}

/**
 * A gpu.js backend for `mode`.
 *
 * @example
 * ```ts
 * import { gpuJsBackend } from "./gpujs.ts";
 * const cpu = gpuJsBackend("cpu");
 * await cpu.unavailable(); // null
 * ```
 */
export function gpuJsBackend(mode: GpuJsMode, options: GpuJsOptions = {}): Backend & {
  adapter(): Promise<AdapterReport | null>;
} {
  let adapterReport: Promise<AdapterReport | null> | undefined;
  const adapter = (): Promise<AdapterReport | null> =>
    adapterReport ??= mode === "webgpu"
      ? (options.adapter ?? probeWebGpu)().catch(() => null)
      : Promise.resolve(null);
  return {
    name: mode,
    adapter,
    async unavailable() {
      if (mode === "cpu") return null;
      if (mode === "webasm") {
        return typeof WebAssembly === "object"
          ? null
          : "WebAssembly is not available in this runtime";
      }
      if (!options.adapter && !(globalThis.navigator as { gpu?: unknown } | undefined)?.gpu) {
        return "navigator.gpu is missing (WebGPU needs Deno, or a browser with WebGPU enabled)";
      }
      const report = await adapter();
      return report ? null : "navigator.gpu.requestAdapter() returned null (no WebGPU adapter)";
    },
    async prepare(graph, weights, want) {
      const program = lowerProgram(graph, weights, want, { gpu: true });
      const limit = await bufferLimit(mode, options, adapter);
      checkProgram(mode, program, limit);
      return buildExecutable(mode, graph, program, await loadGpuJs());
    },
  };
}

async function bufferLimit(
  mode: GpuJsMode,
  options: GpuJsOptions,
  adapter: () => Promise<AdapterReport | null>,
): Promise<number> {
  const device = mode === "webgpu"
    ? (await adapter())?.maxStorageBufferBindingSize ?? Infinity
    : Infinity;
  return Math.min(device, options.maxBufferBytes ?? Infinity);
}

function checkProgram(mode: GpuJsMode, program: Program, limit: number): void {
  checkBufferLimit(mode, program, limit);
  if (mode === "cpu") return; // JavaScript numbers divide integers exactly
  for (const kernel of program.kernels) {
    if (!fitsExactIndexing(kernel)) {
      throw new BackendRejection(
        mode,
        `kernel ${kernel.index} (${kernel.ops.join(", ")}) indexes past 2^24 elements, where ` +
          `its f32 index division stops being exact; use a smaller batch`,
        true,
      );
    }
  }
}

function buildExecutable(
  mode: GpuJsMode,
  graph: Graph,
  program: Program,
  GPU: GpuConstructor,
): Executable {
  const gpu = new GPU({ mode });
  const rendered: RenderedKernel[] = [];
  const kernels: GpuKernel[] = [];
  for (const kernel of program.kernels) {
    const r = renderKernel(kernel, program.buffers);
    const constants: Record<string, Float32Array> = {};
    for (const name of r.constants) {
      constants[name] = program.buffers.get(name)?.data as Float32Array;
    }
    rendered.push(r);
    kernels.push(gpu.createKernel(r.source, {
      output: [kernel.size],
      constants,
      loopMaxIterations: r.maxLoop + 1,
      precision: "single",
      tactic: "precision",
    }));
  }
  const inputs = [...program.buffers.values()].filter((b) => b.kind === "input");
  const results = [...new Set(program.results)];
  // gpu.js's webasm worker pool creates classic workers, which Deno refuses ("Classic workers
  // are not supported"), so pipelines run on its single-threaded SIMD executor.
  const pipeline = gpu.createPipeline(
    withArity(inputs.length, (handles) => {
      const env = new Map<string, unknown>(inputs.map((b, i) => [b.name, handles[i]]));
      program.kernels.forEach((k, i) => {
        env.set(k.out, kernels[i](...rendered[i].args.map((a) => env.get(a))));
      });
      return results.map((r) => env.get(r));
    }),
    { threads: false },
  );
  const shapes = new Map(program.kernels.map((k) => [k.out, k.shape]));
  return {
    async run(
      values: Readonly<Record<string, TensorData>>,
      into?: readonly (Float32Array | undefined)[],
    ): Promise<TensorData[]> {
      const args = inputs.map((b) => values[b.source as string].data);
      const out = await pipeline(...args);
      const byName = new Map(results.map((r, i) => [r, out[i]]));
      return program.results.map((name, i) => ({
        shape: shapes.get(name) as number[],
        data: toFloat32(byName.get(name), into?.[i]),
      }));
    },
    explain(options = {}) {
      const executor = pipeline.executorKind
        ? [
          `pipeline executor: ${pipeline.executorKind}${
            pipeline.fallbackReason ? ` (${pipeline.fallbackReason})` : ""
          }`,
        ]
        : [];
      // gpu.js places pipeline intermediates itself, so Tessera's buffer plan is not shown here.
      const sources = options.source
        ? rendered.map((r, i) => `--- kernel ${i} source ---\n${r.source}`)
        : [];
      return formatExplain({
        graph: graph.name,
        backend: mode,
        program,
        how: (k) => `launch ${k.size} threads; backend ${mode}`,
        plan: false,
        notes: executor,
        sources,
      });
    },
    dispose() {
      pipeline.destroy?.();
      gpu.destroy();
    },
  };
}

// gpu.js passes a pipeline as many handles as its orchestration function declares parameters.
function withArity(
  n: number,
  body: (handles: unknown[]) => unknown[],
): (...handles: unknown[]) => unknown[] {
  switch (n) {
    case 1:
      return (a) => body([a]);
    case 2:
      return (a, b) => body([a, b]);
    case 3:
      return (a, b, c) => body([a, b, c]);
    case 4:
      return (a, b, c, d) => body([a, b, c, d]);
    default:
      throw new BackendRejection("gpu.js", `graphs with ${n} inputs are not supported (1 to 4)`);
  }
}

function toFloat32(value: unknown, into?: Float32Array): Float32Array {
  if (value instanceof Float32Array) {
    if (!into) return value.slice();
    into.set(value);
    return into;
  }
  throw new Error(`gpu.js returned ${Object.prototype.toString.call(value)}, not a Float32Array`);
}
