/**
 * A small worker pool for the `js` and `wasm` backends. Workers are created from a Blob URL, so
 * they need no `--allow-read`, and they build the same kernels as the main thread. Buffers are
 * `SharedArrayBuffer`-backed, so a kernel's output range is written in place by whichever
 * thread owns it. Idle pools shut down by themselves, so they never keep a program alive.
 * @module
 */

import type { Sgemm } from "./native_blas.ts";
import type { BlasKernelState } from "../render/js/blas_contraction.ts";

/**
 * What a kernel factory gets on each thread: the thread's index (0 is the calling thread) and,
 * when the pool has a WebAssembly module, that thread's instance of it over the shared memory.
 */
export interface ThreadRuntime {
  /** 0 for the calling thread, 1... for workers. */
  readonly thread: number;
  /** The module's exports on this thread. */
  readonly exports?: WebAssembly.Exports;
  /** The shared WebAssembly memory as floats. */
  readonly heap?: Float32Array;
  /** The `native` backend's BLAS and its kernels' state: on the calling thread only. */
  readonly blas?: BlasRuntime;
}

/**
 * What the `native` backend's matrix-multiply kernels use on the calling thread.
 *
 * @example
 * ```ts
 * import type { BlasRuntime } from "./js_threads.ts";
 * const none: BlasRuntime = { sgemm: () => {}, states: [] };
 * ```
 */
export interface BlasRuntime {
  /** The library's `sgemm`. */
  readonly sgemm: Sgemm;
  /** Per kernel index: its state, or undefined for kernels that are not BLAS products. */
  readonly states: readonly (BlasKernelState | undefined)[];
}

/** A WebAssembly module every thread instantiates over one shared memory. */
export interface SharedModule {
  /** The compiled module; it imports `env.memory`. */
  readonly module: WebAssembly.Module;
  /** Shared memory, so all threads see the same heap. */
  readonly memory: WebAssembly.Memory;
}

type KernelFn = (out: Float32Array, lo: number, hi: number, ...a: Float32Array[]) => void;

/** Instantiates `shared` (if any) and runs each factory source with the thread's runtime. */
function buildKernels(
  sources: readonly string[],
  thread: number,
  shared?: SharedModule,
  blas?: BlasRuntime,
): KernelFn[] {
  const rt: ThreadRuntime = shared
    ? {
      thread,
      exports: new WebAssembly.Instance(shared.module, { env: { memory: shared.memory } }).exports,
      heap: new Float32Array(shared.memory.buffer),
      blas,
    }
    : { thread, blas };
  // Generated kernel code, compiled once per thread: this is the backend's JIT step.
  return sources.map((s) => new Function("rt", s)(rt) as KernelFn);
}

/** One kernel launch of a run: its output range is split into `parts` even pieces. */
export interface Step {
  /** Index of the kernel body. */
  readonly kernel: number;
  /** Iterations of the kernel's split axis. */
  readonly extent: number;
  /** Threads to use (1 keeps it on the calling thread). */
  readonly parts: number;
  /** Output buffer (shared memory when parts > 1). */
  readonly out: Float32Array;
  /** Argument buffers (shared memory when parts > 1). */
  readonly args: readonly Float32Array[];
}

// Control block: [0] steps finished by workers (summed), [1] steps released by the main thread.
const DONE = 0;
const GO = 1;
const STEP_TIMEOUT_MS = 60_000;

// A worker gets one message per run with its slice of every step, then meets the main thread
// at a barrier between steps (each step reads the previous one's output).
const WORKER_SOURCE = `
let kernels = [];
const buildKernels = ${buildKernels.toString()};
self.onmessage = (event) => {
  const m = event.data;
  if (m.sources) {
    kernels = buildKernels(m.sources, m.thread, m.shared);
    return;
  }
  const c = m.control;
  m.steps.forEach((s, i) => {
    // Wait on the value just read: re-reading it for the wait could miss the main thread's one
    // notify and sleep forever.
    for (let go = Atomics.load(c, ${GO}); go < i; go = Atomics.load(c, ${GO})) {
      Atomics.wait(c, ${GO}, go);
    }
    if (s.lo < s.hi && !(m.stop && m.stop[0] !== 0)) kernels[s.kernel](s.out, s.lo, s.hi, ...s.args);
    Atomics.add(c, ${DONE}, 1);
    Atomics.notify(c, ${DONE});
  });
};
`;

/**
 * Runs kernels split across the main thread and `size - 1` workers.
 *
 * @example
 * ```ts
 * import { KernelPool } from "./js_threads.ts";
 * const pool = new KernelPool(["return (out, lo, hi) => { for (let i = lo; i < hi; i++) out[i] = i; };"], 2);
 * const out = new Float32Array(new SharedArrayBuffer(16));
 * await pool.runPlan([{ kernel: 0, extent: 4, parts: 2, out, args: [] }]);
 * pool.close();
 * ```
 */
export class KernelPool {
  readonly #sources: readonly string[];
  readonly #shared: SharedModule | undefined;
  readonly #local: KernelFn[];
  readonly #size: number;
  #workers: Worker[] = [];
  readonly #control = new Int32Array(new SharedArrayBuffer(8));
  #failed = false;
  #idle: ReturnType<typeof setTimeout> | undefined;

  /**
   * `sources` are factory bodies: run as `function (rt) { ... }` with the thread's
   * `ThreadRuntime`, each returns the kernel `(out, lo, hi, ...buffers) => void`.
   */
  constructor(sources: readonly string[], size: number, shared?: SharedModule, blas?: BlasRuntime) {
    this.#sources = sources;
    this.#shared = shared;
    this.#size = Math.max(1, size);
    this.#local = buildKernels(sources, 0, shared, blas);
  }

  /** Threads a run uses, the main thread included. */
  get size(): number {
    return this.#size;
  }

  /**
   * Runs `steps` in order. Each step's range is split among the threads it asks for; the
   * threads meet at a barrier between steps. One message per worker per run, then atomics.
   * Once a step sets `stop[0]` (shared memory) to non-zero, the later steps are skipped.
   */
  runPlan(steps: readonly Step[], stop?: Float32Array): Promise<void> {
    const stopped = (): boolean => stop !== undefined && stop[0] !== 0;
    if (this.#failed) this.close();
    this.#failed = false;
    const threads = Math.max(...steps.map((s) => Math.min(this.#size, s.parts, s.extent)));
    if (threads <= 1) {
      for (const s of steps) if (!stopped()) this.#local[s.kernel](s.out, 0, s.extent, ...s.args);
      return Promise.resolve();
    }
    const workers = threads - 1;
    this.#ensureWorkers(workers);
    const control = this.#control;
    Atomics.store(control, DONE, 0);
    Atomics.store(control, GO, 0);
    const slices = steps.map((s) => {
      const parts = Math.min(this.#size, s.parts, s.extent);
      return Array.from({ length: parts + 1 }, (_, i) => Math.round((i * s.extent) / parts));
    });
    for (let w = 0; w < workers; w++) {
      this.#workers[w].postMessage({
        control,
        stop,
        steps: steps.map((s, i) => {
          const b = slices[i];
          const mine = w + 1 < b.length - 1;
          return {
            kernel: s.kernel,
            lo: mine ? b[w + 1] : 0,
            hi: mine ? b[w + 2] : 0,
            out: s.out,
            args: s.args,
          };
        }),
      });
    }
    steps.forEach((s, i) => {
      if (!stopped()) this.#local[s.kernel](s.out, slices[i][0], slices[i][1], ...s.args);
      const target = workers * (i + 1);
      const deadline = performance.now() + STEP_TIMEOUT_MS;
      for (let d = Atomics.load(control, DONE); d < target; d = Atomics.load(control, DONE)) {
        // A worker that died would never arrive: fail the run (compile() then falls back).
        if (performance.now() > deadline || this.#failed) {
          this.close();
          throw new Error(`js backend: a worker stopped during kernel ${s.kernel}`);
        }
        Atomics.wait(control, DONE, d, 100);
      }
      Atomics.store(control, GO, i + 1);
      Atomics.notify(control, GO);
    });
    this.#scheduleIdle();
    return Promise.resolve();
  }

  /** Terminates the workers now. */
  close(): void {
    if (this.#idle !== undefined) clearTimeout(this.#idle);
    this.#idle = undefined;
    for (const w of this.#workers) w.terminate();
    this.#workers = [];
  }

  #ensureWorkers(count: number): void {
    if (this.#idle !== undefined) clearTimeout(this.#idle);
    this.#idle = undefined;
    if (this.#workers.length >= count) return;
    const url = URL.createObjectURL(new Blob([WORKER_SOURCE], { type: "text/javascript" }));
    while (this.#workers.length < count) {
      const w = new Worker(url, { type: "module" });
      w.onerror = (e) => {
        e.preventDefault();
        this.#failed = true;
      };
      const thread = this.#workers.length + 1;
      w.postMessage({ sources: this.#sources, thread, shared: this.#shared });
      this.#workers.push(w);
    }
    URL.revokeObjectURL(url);
  }

  // Live workers keep a Deno program running, so an idle pool closes itself.
  #scheduleIdle(): void {
    if (this.#idle !== undefined) clearTimeout(this.#idle);
    this.#idle = setTimeout(() => this.close(), 100);
  }
}
