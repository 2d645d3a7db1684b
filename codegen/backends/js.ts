/**
 * The `js`, `wasm` and `native` backends: Tessera's own CPU code generators. Each fused kernel
 * is rendered by `render/js/loop_nest.ts` into a loop nest specialized to its shapes and compiled
 * once by the JavaScript engine; intermediates live in preallocated slots from the buffer plan,
 * so a run allocates only its results. On `wasm` and `native` every buffer lives in one
 * WebAssembly memory and the kernels run as WebAssembly SIMD loop nests
 * (`render/wasm/loop_nest.ts`), the JavaScript ones kept for the ranges where a float32 value
 * overflowed; `wasm` splits every kernel that holds a matrix multiply (`contraction.ts`) into a
 * SIMD micro-kernel and an epilogue, `native` runs it on OpenBLAS's `sgemm`.
 * @module
 */

import { allFinite } from "../../graph/params.ts";
import { numel, type TensorData } from "../../graph/tensor_data.ts";
import { type Backend, type Executable, formatExplain, NonFiniteInput } from "./backend.ts";
import { findContraction, PRODUCT_BUFFER, wholeEpilogue } from "../passes/contraction.ts";
import { children, type VExpr } from "../ir/expr.ts";
import { KernelPool } from "./js_threads.ts";
import { allocateArena } from "./arena.ts";
import { lowerProgram } from "../passes/pipeline.ts";
import { renderContraction } from "../render/js/contraction.ts";
import { chooseSplitAxis, renderJsKernel } from "../render/js/loop_nest.ts";
import { GEMM_TILE } from "../render/wasm/gemm_kernel.ts";
import { contractionNote, planWasm, wasmMissing, withMemory } from "./wasm_plan.ts";
import { vectorMathModule as vectorMathBytes } from "../render/wasm/vector_math.ts";
import { renderWasmKernel, type WasmKernel } from "../render/wasm/loop_nest.ts";
import { encodeModule, type WasmFunction } from "../render/wasm/encoder.ts";
import { finiteCheckFunction } from "../render/wasm/finite_check.ts";
import { loadBlas } from "./native_blas.ts";
import { blasNote, planBlas } from "./blas_plan.ts";
import {
  directEpilogue,
  renderBlasEpilogue,
  renderBlasGemm,
} from "../render/js/blas_contraction.ts";
import {
  describeThreads,
  floats,
  inSharedMemory,
  planThreads,
  runtimeFeatures,
} from "./runtime_features.ts";

/**
 * The module of a program's WebAssembly kernels over `memory` (its buffers), or undefined when
 * there are none or the engine refuses it (the JavaScript kernels then run).
 */
function wasmKernelModule(
  kernels: readonly (WasmKernel | undefined)[],
  memory: WebAssembly.Memory,
  shared: boolean,
  helpers: readonly WasmFunction[],
): WebAssembly.Module | undefined {
  const fns = kernels.flatMap((k) => (k ? [k.fn] : []));
  if (fns.length === 0 && helpers.length === 0) return undefined;
  fns.push(...helpers);
  try {
    const pages = memory.buffer.byteLength / 65536;
    return new WebAssembly.Module(withMemory(encodeModule(fns, pages), shared));
  } catch {
    return undefined;
  }
}

/**
 * The pool factory of a WebAssembly kernel: its buffers passed as byte offsets. Where it stored a
 * value that is not finite (a float32 intermediate overflowed, or the value really is), the
 * JavaScript kernel `fallback` (a factory body, buffers in the order `fallbackArgs`) redoes the
 * range in float64, so both give the same results.
 */
function wasmKernelSource(
  k: WasmKernel,
  fallback: string,
  fallbackArgs: readonly string[],
): string {
  const bufs = k.args.map((_, j) => `buf${j}`);
  const jsBufs = fallbackArgs.map((a) => `buf${k.args.indexOf(a)}`);
  return [
    `const f = rt.kernels.${k.fn.name};`,
    `const js = (function (rt) {\n${fallback}\n})(rt);`,
    `return function (out, lo, hi${bufs.map((b) => `, ${b}`).join("")}) {`,
    `  if (f(out.byteOffset, lo, hi${bufs.map((b) => `, ${b}.byteOffset`).join("")})) {`,
    `    js(out, lo, hi${jsBufs.map((b) => `, ${b}`).join("")});`,
    `  }`,
    `};`,
  ].join("\n");
}

let vectorMath: WebAssembly.Module | null | undefined;

/** The compiled vector-math module (one per process), or undefined without WebAssembly SIMD. */
function vectorMathModule(): WebAssembly.Module | undefined {
  if (vectorMath === undefined) {
    const bytes = typeof WebAssembly === "object" ? withMemory(vectorMathBytes(), false) : null;
    vectorMath = bytes && WebAssembly.validate(bytes) ? new WebAssembly.Module(bytes) : null;
  }
  return vectorMath ?? undefined;
}

/** The `native` backend's one product buffer, shared by every BLAS step and its epilogue. */
const BLAS_PRODUCT = "__blas_product";

/**
 * Kernels with less work than this (outputs x reduction length) run on one thread. WebAssembly
 * kernels and spinning barriers made splits cheap: 300000 -> 60000 took ViT-Ti B=1 on native from
 * 31.2 to 34-36 img/s (B=8 unchanged, 44-46).
 */
const MIN_PARALLEL_WORK = 60000;

// The input scan (params.ts's allFinite) as a kernel, so threads share it and it rides the run's
// one message. allFinite's loop is bounded by the view's own length, which lets V8 drop the
// bounds checks: 1.4 ms vs 6.9 ms for 4.8M values when bounded by `hi` instead (measured).
const FINITE_CHECK = `const allFinite = ${allFinite.toString()};
return function (flag, lo, hi, data) {
  if (!allFinite(data.subarray(lo, hi))) flag[0] = 1;
};`;

// The longest chain of nested reductions: the work per output element.
function reductionSize(e: VExpr): number {
  if (e.k === "reduce") return e.extent * reductionSize(e.body);
  return Math.max(1, ...children(e).map(reductionSize));
}

/**
 * Threads a CPU backend uses by default, the calling thread included: one per core, at most 4
 * (where the runtime allows threads at all: see `planThreads`).
 *
 * @example
 * ```ts
 * import { defaultThreads } from "./js.ts";
 * defaultThreads() >= 1; // true
 * ```
 */
export function defaultThreads(): number {
  return Math.max(1, Math.min(4, runtimeFeatures().cores));
}

/**
 * The `js` or `wasm` backend running on `threads` threads (the calling thread included), or on
 * one where this runtime has no shared memory or workers (a page that is not cross-origin
 * isolated); `describe()` says which and why.
 *
 * @example
 * ```ts
 * import { cpuCodegenBackend } from "./js.ts";
 * cpuCodegenBackend("wasm", { threads: 1 }).name; // "wasm"
 * ```
 */
export function cpuCodegenBackend(
  name: "js" | "wasm" | "native",
  options: { threads?: number } = {},
): Backend {
  const unavailable = (): string | null => {
    if (name === "wasm") return wasmMissing();
    if (name !== "native") return null;
    const blas = loadBlas(1);
    return typeof blas === "string" ? blas : null;
  };
  // Planned from features detected (once a process), never assumed: Deno and Node's main thread
  // may block in Atomics.wait, a page's main thread may not, and a page without cross-origin
  // isolation has no shared memory.
  const threadPlan = () =>
    planThreads(options.threads, runtimeFeatures(), { wasm: name === "wasm" });
  return {
    name,
    unavailable: () => Promise.resolve(unavailable()),
    describe: () => describeThreads(threadPlan()),
    prepare(graph, weights, want): Promise<Executable> {
      const program = lowerProgram(graph, weights, want, { gpu: false });
      const plan = threadPlan();
      const threads = plan.threads;
      const contractions = program.kernels.map((k) =>
        name === "js" ? undefined : findContraction(k, program, GEMM_TILE.nr)
      );
      const wasm = name === "wasm" && contractions.some((c) => c)
        ? planWasm(
          program,
          contractions,
          threads,
          plan.shared && runtimeFeatures().sharedWasmMemory,
        )
        : undefined;
      const blas = name === "native" ? planBlas(program, contractions, plan.shared) : undefined;
      // exp and GELU outputs mapped by WebAssembly SIMD; `js` stays plain JavaScript.
      const vmath = name === "js" ? undefined : vectorMathModule();
      const rendered = program.kernels.map((k, i) => {
        const c = contractions[i];
        const layout = wasm?.layouts[i];
        if (c && layout && wasm) {
          const r = renderContraction(c, layout, { vectorMath: vmath !== undefined });
          return { ...r, extent: c.outer, note: contractionNote(c, layout, wasm.fma) };
        }
        if (c && blas?.states[i]) {
          const r = renderBlasEpilogue(c, BLAS_PRODUCT, { vectorMath: vmath !== undefined });
          const into = directEpilogue(c) ? ", the epilogue done by sgemm" : "";
          return { ...r, extent: c.outer, note: blasNote(c, blas) + into };
        }
        const r = renderJsKernel(k, chooseSplitAxis(k.shape, threads), [], {
          vectorMath: vmath !== undefined,
        });
        const params = ["out", "lo", "hi", ...r.args.map((_, j) => `buf${j}`)].join(", ");
        return {
          args: r.args,
          source: `return function (${params}) {\n${r.body}\n};`,
          extent: k.shape[r.splitAxis],
          note: `split axis ${r.splitAxis}`,
        };
      });
      // A BLAS product runs first, its rows split among the pool's threads (each calls the
      // single-threaded library on its part), into one shared product buffer that the epilogue
      // then reads.
      // A product whose epilogue sgemm can do (a scale, a bias) is written straight into the
      // output; its epilogue step is never run.
      const sgemmEpilogues = program.kernels.map((_, i) => {
        const c = contractions[i];
        return c && blas?.states[i] ? directEpilogue(c) : undefined;
      });
      const gemms = program.kernels.map((_, i) => {
        const c = contractions[i];
        return c && blas?.states[i]
          ? renderBlasGemm(c, i, GEMM_TILE.nr, blas.states[i]?.view, sgemmEpilogues[i])
          : undefined;
      });
      const gemmSources = gemms.filter((g) => g !== undefined).map((g) => g.source);
      // The same kernels as WebAssembly SIMD functions, where the wasm and native backends can
      // run them (their buffers in one WebAssembly memory); the JavaScript stays the fallback.
      const wasmKernels = name === "js" || wasmMissing() !== null
        ? []
        : program.kernels.map((k, i) => {
          const c = contractions[i];
          if (c && wasm?.layouts[i]) return undefined; // its epilogue reads a per-thread tile
          // A BLAS product's epilogue reads the whole product buffer: one launch over all rows.
          if (c && blas?.states[i]) {
            if (sgemmEpilogues[i]) return undefined;
            const w = renderWasmKernel(wholeEpilogue(c), 0, `k${i}`);
            return w && { ...w, args: w.args.map((a) => a === PRODUCT_BUFFER ? BLAS_PRODUCT : a) };
          }
          return renderWasmKernel(k, chooseSplitAxis(k.shape, threads), `k${i}`);
        });
      const checkKernel = rendered.length;
      const gemmKernel: (number | undefined)[] = [];
      let nextGemm = checkKernel + 1;
      for (const g of gemms) gemmKernel.push(g ? nextGemm++ : undefined);
      const badInput = floats(1, plan.shared);
      const inputNames = [...program.buffers.values()].filter((b) => b.kind === "input");
      // Every buffer a kernel touches, sized first and allocated together: in one WebAssembly
      // memory on the wasm and native backends (so WebAssembly kernels reach them by offset),
      // else each in its own SharedArrayBuffer (an ArrayBuffer where the runtime has none, and
      // the pool then has one thread).
      const sizes: number[] = [];
      const request = (n: number): number => sizes.push(n) - 1;
      const slotSizes: number[] = [];
      for (const [buffer, slot] of program.slots) {
        const size = numel(program.buffers.get(buffer)?.shape ?? []);
        slotSizes[slot] = Math.max(slotSizes[slot] ?? 0, size);
      }
      const slotAt = slotSizes.map(request);
      // Weights only a micro-kernel reads live packed in WebAssembly memory instead; weights
      // only sgemm reads (in place, from any memory) are the caller's own arrays where every
      // thread can see them (shared memory, or one thread), else one shared copy apart.
      const kernelReads = new Set(rendered.flatMap((r) => r.args));
      const gemmReads = new Set(gemms.flatMap((r) => r?.args ?? []));
      const bufferAt = new Map<string, number>();
      const apart = new Map<string, Float32Array>();
      for (const b of program.buffers.values()) {
        if (b.data && !kernelReads.has(b.name) && gemmReads.has(b.name)) {
          const visible = !plan.shared || inSharedMemory(b.data);
          const copy = visible ? b.data : floats(b.data.length, plan.shared);
          if (!visible) copy.set(b.data);
          apart.set(b.name, copy);
          continue;
        }
        if (b.data && !kernelReads.has(b.name)) continue;
        if (b.data) bufferAt.set(b.name, request(b.data.length));
        else if (b.kind === "input") bufferAt.set(b.name, request(numel(b.shape)));
      }
      // Results are computed into warm buffers, then copied out: fresh memory would page-fault
      // inside the kernels, and workers can only write shared memory.
      for (const result of new Set(program.results)) {
        bufferAt.set(result, request(numel(program.buffers.get(result)?.shape ?? [])));
      }
      if (blas) {
        const rows = contractions.map((c, i) => (c && blas.states[i] ? c.m * c.nPadded : 0));
        bufferAt.set(BLAS_PRODUCT, request(Math.max(0, ...rows)));
      }
      const arena = name === "js" ? undefined : allocateArena(sizes, plan.shared);
      // The products' float32 overflow check, where sgemm writes into the same memory.
      const helpers = blas && wasmMissing() === null ? [finiteCheckFunction("nonfinite")] : [];
      const kernelModule = arena &&
        wasmKernelModule(wasmKernels, arena.memory, plan.shared, helpers);
      const kernelSources = rendered.map((r, i) => {
        const w = kernelModule && wasmKernels[i];
        return w ? wasmKernelSource(w, r.source, r.args) : r.source;
      });
      const kernelArgs = rendered.map((r, i) => (kernelModule && wasmKernels[i]?.args) || r.args);
      const notes = rendered.map((r, i) => {
        const w = kernelModule && wasmKernels[i];
        return w ? `${r.note}, WebAssembly${w.vectorized ? " SIMD" : ""}` : r.note;
      });
      const pool = new KernelPool([...kernelSources, FINITE_CHECK, ...gemmSources], threads, {
        shared: wasm?.shared,
        blas,
        blasShare: blas?.share,
        backend: name,
        vectorMath: vmath,
        kernels: kernelModule ? { module: kernelModule, memory: arena.memory } : undefined,
      });
      const views = arena?.views ?? sizes.map((n) => floats(n, plan.shared));
      const env = new Map<string, Float32Array>(apart);
      for (const [buffer, at] of bufferAt) env.set(buffer, views[at]);
      for (const b of program.buffers.values()) {
        if (b.data && bufferAt.has(b.name)) env.get(b.name)?.set(b.data);
        const slot = program.slots.get(b.name);
        if (slot !== undefined && !bufferAt.has(b.name)) {
          env.set(b.name, views[slotAt[slot]].subarray(0, numel(b.shape)));
        }
      }
      const work = program.kernels.map((k) => k.size * reductionSize(k.expr));
      // Small kernels are not worth splitting; a split never has more parts than iterations.
      const parts = program.kernels.map((_, i) =>
        Math.min(work[i] >= MIN_PARALLEL_WORK ? pool.size : 1, rendered[i].extent)
      );
      return Promise.resolve({
        checksFinite: true,
        async run(
          inputs: Readonly<Record<string, TensorData>>,
          into?: readonly (Float32Array | undefined)[],
        ): Promise<TensorData[]> {
          // Caller buffers in shared memory are used in place by every thread: no copies (but
          // WebAssembly kernels see only their own memory, so with it everything is copied).
          const inPlace = (data: Float32Array): boolean => !arena && inSharedMemory(data);
          const direct = new Map<string, Float32Array>();
          for (const b of program.buffers.values()) {
            if (b.kind !== "input") continue;
            const data = inputs[b.source as string].data;
            if (inPlace(data)) direct.set(b.name, data);
            else env.get(b.name)?.set(data);
          }
          program.results.forEach((result, i) => {
            const target = into?.[i];
            if (target && inPlace(target)) direct.set(result, target);
          });
          const bufferOf = (buffer: string): Float32Array =>
            direct.get(buffer) ?? env.get(buffer) as Float32Array;
          badInput[0] = 0;
          const checks = inputNames.map((b) => {
            const data = bufferOf(b.name);
            const parts = data.length >= MIN_PARALLEL_WORK ? pool.size : 1;
            return { kernel: checkKernel, extent: data.length, parts, out: badInput, args: [data] };
          });
          const kernels = program.kernels.flatMap((k, i) => {
            const step = {
              kernel: i,
              extent: rendered[i].extent,
              parts: parts[i],
              out: bufferOf(k.out),
              args: kernelArgs[i].map(bufferOf),
            };
            const gemm = gemms[i];
            const at = gemmKernel[i];
            if (!gemm || at === undefined) return [step];
            const args = gemm.args.map(bufferOf);
            // Split as the product step itself counts its work (rows, or column blocks).
            const split = { extent: gemm.extent, parts: Math.min(parts[i], gemm.extent) };
            const product = { ...step, ...split, kernel: at, args };
            if (sgemmEpilogues[i]) return [product];
            return [{ ...product, out: bufferOf(BLAS_PRODUCT) }, step];
          });
          // A bad value stops the run before any kernel writes a result.
          await pool.runPlan([...checks, ...kernels], badInput);
          if (badInput[0] !== 0) throw new NonFiniteInput();
          return program.results.map((result, i) => {
            const value = bufferOf(result);
            const data = into?.[i] ?? new Float32Array(value.length);
            if (data !== value) data.set(value);
            return { shape: program.buffers.get(result)?.shape as number[], data };
          });
        },
        explain(options = {}) {
          const memory = [
            ...(wasm
              ? [`wasm memory: ${wasm.bytes} bytes (packed weights, per-thread tiles)`]
              : []),
            ...(blas ? [`blas: ${blas.library}, ${blas.threads} threads`] : []),
            ...(arena
              ? [
                `buffers: ${arena.bytes} bytes in one WebAssembly memory${
                  plan.shared ? " (shared)" : ""
                }`,
              ]
              : []),
          ];
          const sources = options.source
            ? rendered.map((r, i) =>
              `--- kernel ${i} source ---\n// factory (rt) -> (out, lo, hi, ${
                r.args.map((a, j) => `buf${j} = ${a}`).join(", ")
              })\n${kernelSources[i]}`
            )
            : [];
          return formatExplain({
            graph: graph.name,
            backend: name,
            program,
            how: (k, i) =>
              `launch ${k.size} outputs; backend ${name}; ${notes[i]} over ` +
              `${parts[i]} thread${parts[i] > 1 ? "s" : ""}`,
            notes: [...memory, describeThreads(plan)],
            sources,
          });
        },
        dispose() {
          pool.close();
        },
      });
    },
  };
}

/**
 * Specialized JavaScript loop nests, generated from the same IR as every other backend.
 *
 * @example
 * ```ts
 * import { jsBackend } from "./js.ts";
 * jsBackend.name; // "js"
 * ```
 */
export const jsBackend: Backend = cpuCodegenBackend("js");

/**
 * WebAssembly SIMD loop nests, with every matrix multiply (a conv's im2col product, a Linear)
 * lowered to a SIMD micro-kernel over L2-sized tiles.
 *
 * @example
 * ```ts
 * import { wasmBackend } from "./js.ts";
 * wasmBackend.name; // "wasm"
 * ```
 */
export const wasmBackend: Backend = cpuCodegenBackend("wasm");

/**
 * The `wasm` backend's loop nests with every matrix multiply on a system BLAS (OpenBLAS's `sgemm`
 * through `Deno.dlopen`); needs `--allow-ffi` and the library, else `compile()` falls back.
 *
 * @example
 * ```ts
 * import { nativeBackend } from "./js.ts";
 * nativeBackend.name; // "native"
 * ```
 */
export const nativeBackend: Backend = cpuCodegenBackend("native");
