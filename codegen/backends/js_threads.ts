/**
 * A small worker pool for the `js` and `wasm` backends. Workers are created from a Blob URL (or,
 * in Node, from source through `node:worker_threads`), so they need no `--allow-read`, and they
 * build the same kernels as the main thread. Buffers are `SharedArrayBuffer`-backed, so a
 * kernel's output range is written in place by whichever thread owns it. Where the runtime has
 * no shared memory or no workers the pool runs everything on the calling thread. Idle pools shut
 * down by themselves, so they never keep a program alive.
 * @module
 */

import type { CBLAS, Sgemm, SGEMM_SYMBOL } from "./native_blas.ts";
import type { BlasKernelState } from "../render/js/blas_contraction.ts";
import {
  inSharedMemory,
  nodeBuiltin,
  planThreads,
  runtimeFeatures,
  type ThreadPlan,
} from "./runtime_features.ts";

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
  /**
   * In-place SIMD maps `(out, start, end)` over `out[start..end)` (`codegen/render/wasm/
   * vector_math.ts`), on every thread, where the pool was given the module.
   */
  readonly vmath?: Readonly<
    Record<"exp" | "gelu", (out: Float32Array, s: number, e: number) => void>
  >;
  /** This thread's instance of the program's WebAssembly kernels, over the buffers' memory. */
  readonly kernels?: WebAssembly.Exports;
}

/**
 * What a pool's threads build their kernels with, besides the sources.
 *
 * @example
 * ```ts
 * import type { PoolOptions } from "./js_threads.ts";
 * const options: PoolOptions = { backend: "wasm" };
 * ```
 */
export interface PoolOptions {
  /** The `wasm` backend's micro-kernel module and its memory. */
  readonly shared?: SharedModule;
  /** The `native` backend's BLAS (calling thread only). */
  readonly blas?: BlasRuntime;
  /** Names the backend in errors (default "js"). */
  readonly backend?: string;
  /** The module of `vectorMathModule()` (unshared memory import): gives every thread `rt.vmath`. */
  readonly vectorMath?: WebAssembly.Module;
  /** The program's WebAssembly kernels over the buffers' memory: gives every thread `rt.kernels`. */
  readonly kernels?: SharedModule;
  /** The `native` backend's products on the workers too (Deno only: they open the library). */
  readonly blasShare?: BlasShare;
}

/**
 * What a worker needs to run the `native` backend's products too: the library to open (the
 * same one the calling thread opened, so the same copy in the process) and each kernel's state
 * with its scratch left out (every thread allocates its own gather and pack buffers, and B too
 * where B is refilled per batch; constant weights are shared, in shared memory).
 *
 * @example
 * ```ts
 * import type { BlasShare } from "./js_threads.ts";
 * import { CBLAS, SGEMM_SYMBOL } from "./native_blas.ts";
 * const none: BlasShare = {
 *   library: "libopenblas.so.0",
 *   sgemm: { symbol: SGEMM_SYMBOL, cblas: CBLAS },
 *   states: [],
 * };
 * ```
 */
export interface BlasShare {
  /** The library file. */
  readonly library: string;
  /** `cblas_sgemm`'s signature (`SGEMM_SYMBOL`) and enum values (`CBLAS`), as native_blas.ts has them. */
  readonly sgemm: { readonly symbol: typeof SGEMM_SYMBOL; readonly cblas: typeof CBLAS };
  /** Per kernel: its state (with `b` only when shared), or undefined. */
  readonly states: readonly (SharedBlasState | undefined)[];
}

/**
 * A BLAS kernel's state as sent to a worker.
 *
 * @example
 * ```ts
 * import type { SharedBlasState } from "./js_threads.ts";
 * function scratch(s: SharedBlasState): number {
 *   return s.aSize + s.packedSize;
 * }
 * ```
 */
export interface SharedBlasState extends Omit<BlasKernelState, "a" | "packed" | "b"> {
  /** B when it is constant weights (in shared memory), else undefined: the worker makes one. */
  readonly b?: Float32Array;
  /** Floats of B, of the gather scratch and of the pack scratch. */
  readonly bSize: number;
  readonly aSize: number;
  readonly packedSize: number;
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
  /** Shared memory, so all threads see the same heap (unshared where threads are unavailable). */
  readonly memory: WebAssembly.Memory;
}

type KernelFn = (out: Float32Array, lo: number, hi: number, ...a: Float32Array[]) => void;

/**
 * Instantiates `shared` (if any) and `vectorMath` (if any, over this thread's own memory) and
 * runs each factory source with the thread's runtime. Self-contained: workers get its source.
 */
function buildKernels(
  sources: readonly string[],
  thread: number,
  shared?: SharedModule,
  blas?: BlasRuntime,
  vectorMath?: WebAssembly.Module,
  wasmKernels?: SharedModule,
  blasShare?: BlasShare,
): KernelFn[] {
  if (!blas && blasShare) {
    // A worker of the native backend: the library again (dlopen returns the process's copy),
    // cblas_sgemm row-major, and this thread's own scratch.
    const deno = (globalThis as { Deno?: typeof Deno }).Deno as typeof Deno;
    const { symbol, cblas } = blasShare.sgemm;
    const gemm = deno.dlopen(blasShare.library, { cblas_sgemm: symbol }).symbols.cblas_sgemm;
    const order = [cblas.rowMajor, cblas.noTrans] as const;
    blas = {
      sgemm: (m, n, k, a, lda, b, ldb, c, ldc, transB = false, alpha = 1, beta = 0) =>
        gemm(
          ...order,
          transB ? cblas.trans : cblas.noTrans,
          m,
          n,
          k,
          alpha,
          a,
          lda,
          b,
          ldb,
          beta,
          c,
          ldc,
        ),
      states: blasShare.states.map((s) =>
        s && {
          ...s,
          b: s.b ?? new Float32Array(s.bSize),
          a: new Float32Array(s.aSize),
          packed: new Float32Array(s.packedSize),
        }
      ),
    };
  }
  const kernels = wasmKernels &&
    new WebAssembly.Instance(wasmKernels.module, { env: { memory: wasmKernels.memory } }).exports;
  let vmath: ThreadRuntime["vmath"];
  if (vectorMath) {
    // 2 pages: VECTOR_PAGES of vector_math.ts; a piece of 16384 floats (VECTOR_CHUNK) at a time.
    const memory = new WebAssembly.Memory({ initial: 2, maximum: 2 });
    const fns = new WebAssembly.Instance(vectorMath, { env: { memory } }).exports as Record<
      "exp" | "gelu",
      (ptr: number, n: number) => void
    >;
    const scratch = new Float32Array(memory.buffer);
    const inPlace =
      (f: (ptr: number, n: number) => void) => (out: Float32Array, s: number, e: number) => {
        for (let a = s; a < e; a += 16384) {
          const n = Math.min(e - a, 16384);
          scratch.set(out.subarray(a, a + n));
          f(0, n);
          out.set(scratch.subarray(0, n), a);
        }
      };
    vmath = { exp: inPlace(fns.exp), gelu: inPlace(fns.gelu) };
  }
  const rt: ThreadRuntime = shared
    ? {
      thread,
      exports: new WebAssembly.Instance(shared.module, { env: { memory: shared.memory } }).exports,
      heap: new Float32Array(shared.memory.buffer),
      blas,
      vmath,
      kernels,
    }
    : { thread, blas, vmath, kernels };
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
// Loads of the control word a thread spins through before it sleeps in Atomics.wait (tens of
// microseconds: about a small step's length, far less than a wake-up costs on a busy core).
const SPIN = 20_000;

// A worker builds its kernels, says so, then gets one message per run with its slice of every
// step and meets the main thread at a barrier between steps (each step reads the previous one's
// output). Workers may always block in Atomics.wait; only the main thread of a page may not.
const WORKER_BODY = `
let kernels = [];
const buildKernels = ${buildKernels.toString()};
const handle = (m, reply) => {
  if (m.sources) {
    kernels = buildKernels(
      m.sources, m.thread, m.shared, undefined, m.vectorMath, m.kernels, m.blasShare,
    );
    reply({ ready: true });
    return;
  }
  const c = m.control;
  m.steps.forEach((s, i) => {
    // Spin a little first: a step is often shorter than the wake-up from Atomics.wait.
    for (let spin = 0; spin < ${SPIN} && Atomics.load(c, ${GO}) < i; spin++);
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
const WEB_WORKER = `${WORKER_BODY}
self.onmessage = (event) => handle(event.data, (m) => self.postMessage(m));
`;
// Node runs an eval'd worker as CommonJS, so it has require (but no self or onmessage).
const NODE_WORKER = `${WORKER_BODY}
const { parentPort } = require("node:worker_threads");
parentPort.on("message", (m) => handle(m, (r) => parentPort.postMessage(r)));
`;

/** The part of a `node:worker_threads` Worker the pool uses. */
interface NodeWorker {
  postMessage(message: unknown): void;
  on(event: "message" | "error" | "exit", listener: (value: unknown) => void): void;
  terminate(): unknown;
}

type NodeWorkerThreads = { Worker: new (source: string, options: { eval: true }) => NodeWorker };

/** A started worker of either kind; events stop once the pool terminates it. */
interface PoolWorker {
  post(message: unknown): void;
  terminate(): void;
}

/** Starts one worker from `url` (web) or the Node source; reports its messages and its death. */
function startWorker(
  kind: "web" | "node",
  url: string | undefined,
  onMessage: (message: unknown) => void,
  onFailure: (why: string) => void,
): PoolWorker {
  let ended = false;
  const message = (m: unknown): void => {
    if (!ended) onMessage(m);
  };
  const failure = (why: string): void => {
    if (!ended) onFailure(why);
  };
  if (kind === "web") {
    const w = new Worker(url as string, { type: "module" });
    w.onmessage = (e) => message(e.data);
    w.onerror = (e) => {
      e.preventDefault();
      failure(e.message || "it failed to start");
    };
    return {
      post: (m) => w.postMessage(m),
      terminate: () => {
        ended = true;
        w.terminate();
      },
    };
  }
  const threads = nodeBuiltin<NodeWorkerThreads>("node:worker_threads") as NodeWorkerThreads;
  const w = new threads.Worker(NODE_WORKER, { eval: true });
  w.on("message", message);
  w.on("error", (e) => failure(e instanceof Error ? e.message : String(e)));
  w.on("exit", () => failure("it exited"));
  return {
    post: (m) => w.postMessage(m),
    terminate: () => {
      ended = true;
      w.terminate();
    },
  };
}

/**
 * Runs kernels split across the main thread and `size - 1` workers, where this runtime allows
 * (see `planThreads`): without shared memory or workers the pool has one thread. The calling
 * thread waits at barriers with `Atomics.wait`, or with `Atomics.waitAsync` on a page's main
 * thread, which may not block.
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
  readonly #vectorMath: WebAssembly.Module | undefined;
  readonly #kernels: SharedModule | undefined;
  readonly #blasShare: BlasShare | undefined;
  readonly #local: KernelFn[];
  readonly #size: number;
  readonly #plan: ThreadPlan;
  readonly #backend: string;
  #workers: PoolWorker[] = [];
  // Settles once every worker started so far has built its kernels; undefined when they have.
  #starting: Promise<void> | undefined;
  // Rejects the start of workers still building their kernels (on close).
  #abandon = new Set<(why: Error) => void>();
  #control: Int32Array | undefined;
  #failed = false;
  #idle: ReturnType<typeof setTimeout> | undefined;

  /**
   * `sources` are factory bodies: run as `function (rt) { ... }` with the thread's
   * `ThreadRuntime`, each returns the kernel `(out, lo, hi, ...buffers) => void`.
   */
  constructor(sources: readonly string[], size: number, options: PoolOptions = {}) {
    const { shared, blas, backend = "js", vectorMath, kernels, blasShare } = options;
    this.#blasShare = blasShare;
    this.#sources = sources;
    this.#shared = shared;
    this.#vectorMath = vectorMath;
    this.#kernels = kernels;
    this.#backend = backend;
    this.#plan = planThreads(Math.max(1, size), runtimeFeatures(), { wasm: shared !== undefined });
    // A WebAssembly memory that is not shared cannot be seen by workers.
    const sharedHeap = !shared || inSharedMemory(new Float32Array(shared.memory.buffer, 0, 0));
    this.#size = sharedHeap ? this.#plan.threads : 1;
    this.#local = buildKernels(sources, 0, shared, blas, vectorMath, kernels);
  }

  /** Threads a run uses, the main thread included. */
  get size(): number {
    return this.#size;
  }

  /**
   * Runs `steps` in order. Each step's range is split among the threads it asks for; the
   * threads meet at a barrier between steps. One message per worker per run, then atomics.
   * Once a step sets `stop[0]` (shared memory) to non-zero, the later steps are skipped. New
   * workers are waited for (asynchronously) before the first barrier: a browser starts a worker
   * only when its creator's event loop turns, which a blocked thread never does.
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
    const starting = this.#ensureWorkers(threads - 1);
    if (!starting) return this.#runSplit(steps, threads - 1, stop);
    return starting.then(
      () => this.#runSplit(steps, threads - 1, stop),
      (e) => {
        this.close();
        throw e;
      },
    );
  }

  /** Terminates the workers now. */
  close(): void {
    if (this.#idle !== undefined) clearTimeout(this.#idle);
    this.#idle = undefined;
    for (const w of this.#workers) w.terminate();
    this.#workers = [];
    const abandoned = [...this.#abandon];
    this.#abandon.clear();
    this.#starting = undefined;
    for (const reject of abandoned) reject(new Error(`${this.#backend} backend: pool closed`));
  }

  #runSplit(steps: readonly Step[], workers: number, stop?: Float32Array): Promise<void> {
    const control = this.#control ??= new Int32Array(new SharedArrayBuffer(8));
    Atomics.store(control, DONE, 0);
    Atomics.store(control, GO, 0);
    const slices = steps.map((s) => {
      const parts = Math.min(this.#size, s.parts, s.extent);
      return Array.from({ length: parts + 1 }, (_, i) => Math.round((i * s.extent) / parts));
    });
    for (let w = 0; w < workers; w++) {
      this.#workers[w].post({
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
    if (this.#plan.wait === "async") return this.#barriersAsync(steps, slices, workers, stop);
    steps.forEach((s, i) => {
      if (!(stop && stop[0] !== 0)) {
        this.#local[s.kernel](s.out, slices[i][0], slices[i][1], ...s.args);
      }
      const target = workers * (i + 1);
      for (let spin = 0; spin < SPIN && Atomics.load(control, DONE) < target; spin++);
      const deadline = performance.now() + STEP_TIMEOUT_MS;
      for (let d = Atomics.load(control, DONE); d < target; d = Atomics.load(control, DONE)) {
        // A worker that died would never arrive: fail the run (compile() then falls back).
        if (performance.now() > deadline || this.#failed) this.#stalled(s.kernel);
        Atomics.wait(control, DONE, d, 100);
      }
      Atomics.store(control, GO, i + 1);
      Atomics.notify(control, GO);
    });
    this.#scheduleIdle();
    return Promise.resolve();
  }

  // The same barriers for a thread that may not block (a page's main thread): each wait yields.
  async #barriersAsync(
    steps: readonly Step[],
    slices: readonly number[][],
    workers: number,
    stop?: Float32Array,
  ): Promise<void> {
    const control = this.#control as Int32Array;
    for (let i = 0; i < steps.length; i++) {
      const s = steps[i];
      if (!(stop && stop[0] !== 0)) {
        this.#local[s.kernel](s.out, slices[i][0], slices[i][1], ...s.args);
      }
      const target = workers * (i + 1);
      for (let spin = 0; spin < SPIN && Atomics.load(control, DONE) < target; spin++);
      const deadline = performance.now() + STEP_TIMEOUT_MS;
      for (let d = Atomics.load(control, DONE); d < target; d = Atomics.load(control, DONE)) {
        if (performance.now() > deadline || this.#failed) this.#stalled(s.kernel);
        const waited = Atomics.waitAsync(control, DONE, d, 100);
        if (waited.async) await waited.value;
      }
      Atomics.store(control, GO, i + 1);
      Atomics.notify(control, GO);
    }
    this.#scheduleIdle();
  }

  #stalled(kernel: number): never {
    this.close();
    throw new Error(`${this.#backend} backend: a worker stopped during kernel ${kernel}`);
  }

  // Starts workers up to `count`; returns what to wait for while some are still starting.
  #ensureWorkers(count: number): Promise<void> | undefined {
    if (this.#idle !== undefined) clearTimeout(this.#idle);
    this.#idle = undefined;
    if (this.#workers.length >= count) return this.#starting;
    const kind = this.#plan.workers === "node" ? "node" : "web";
    const url = kind === "web"
      ? URL.createObjectURL(new Blob([WEB_WORKER], { type: "text/javascript" }))
      : undefined;
    const started: Promise<void>[] = [];
    for (let thread = this.#workers.length + 1; thread <= count; thread++) {
      started.push(this.#startWorker(kind, url, thread));
    }
    if (url) URL.revokeObjectURL(url);
    const all: Promise<void> = Promise.all([this.#starting, ...started]).then(() => {
      if (this.#starting === all) this.#starting = undefined;
    });
    this.#starting = all;
    return all;
  }

  // One worker: sends it the kernel sources; resolves when it has built them.
  #startWorker(kind: "web" | "node", url: string | undefined, thread: number): Promise<void> {
    // Not Promise.withResolvers: Node 20 lacks it.
    let resolve = (): void => {};
    let reject = (_: Error): void => {};
    const promise = new Promise<void>((yes, no) => {
      resolve = yes;
      reject = no;
    });
    const settle = (e?: Error): void => {
      clearTimeout(timer);
      this.#abandon.delete(settle);
      if (e) reject(e);
      else resolve();
    };
    // Also after the start: a worker that dies makes the next barrier fail instead of hang.
    const fail = (why: string): void => {
      this.#failed = true;
      settle(new Error(`${this.#backend} backend: worker ${thread} failed: ${why}`));
    };
    const timer = setTimeout(
      () => fail(`it did not start within ${STEP_TIMEOUT_MS / 1000} s`),
      STEP_TIMEOUT_MS,
    );
    this.#abandon.add(settle);
    try {
      const worker = startWorker(kind, url, (m) => {
        if ((m as { ready?: boolean } | null)?.ready) settle();
      }, fail);
      worker.post({
        sources: this.#sources,
        thread,
        shared: this.#shared,
        vectorMath: this.#vectorMath,
        kernels: this.#kernels,
        blasShare: this.#blasShare,
      });
      this.#workers.push(worker);
    } catch (e) {
      fail(e instanceof Error ? e.message : String(e));
    }
    return promise;
  }

  // Live workers keep a Deno program running, so an idle pool closes itself.
  #scheduleIdle(): void {
    if (this.#idle !== undefined) clearTimeout(this.#idle);
    this.#idle = setTimeout(() => this.close(), 100);
  }
}
