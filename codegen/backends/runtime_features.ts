/**
 * What this JavaScript runtime lets the CPU backends do with threads: shared memory, blocking
 * waits on this thread, `Atomics.waitAsync`, workers (web or `node:worker_threads`) and cores.
 * Everything is detected, never assumed from the runtime's name, so one bundle runs the same
 * code under Deno, in Node, in a page (isolated or not) and in a worker; no path reads `Deno`.
 * @module
 */

/**
 * The features the `js`/`wasm`/`native` thread pool depends on, as detected on this thread.
 *
 * @example
 * ```ts
 * import { runtimeFeatures } from "./runtime_features.ts";
 * runtimeFeatures().sharedMemory; // true in Deno
 * ```
 */
export interface RuntimeFeatures {
  /** `SharedArrayBuffer` exists (a browser exposes it only to cross-origin isolated pages). */
  readonly sharedMemory: boolean;
  /** A shared `WebAssembly.Memory` can be created. */
  readonly sharedWasmMemory: boolean;
  /** `globalThis.crossOriginIsolated` (a browser's flag; undefined elsewhere). */
  readonly crossOriginIsolated: boolean | undefined;
  /** `Atomics.wait` may block this thread (a browser window's main thread may not). */
  readonly canBlock: boolean;
  /** `Atomics.waitAsync` exists. */
  readonly waitAsync: boolean;
  /** Which workers this runtime starts: a global `Worker`, Node's `node:worker_threads`, none. */
  readonly workers: "web" | "node" | "none";
  /** Logical cores (`navigator.hardwareConcurrency`, or Node's `os.availableParallelism()`). */
  readonly cores: number;
}

/** The part of Node's `process` read here: present in Node 20.16+ (and Deno), absent in pages. */
interface NodeProcess {
  getBuiltinModule?(name: string): unknown;
}

/**
 * A Node built-in module (`node:os`, `node:worker_threads`) loaded without an `import`, so a
 * browser bundle holds no reference to it; undefined where there is no `process.getBuiltinModule`.
 *
 * @example
 * ```ts
 * import { nodeBuiltin } from "./runtime_features.ts";
 * const os = nodeBuiltin<{ availableParallelism?(): number }>("node:os");
 * typeof os?.availableParallelism; // "function" in Deno and Node 20.16+
 * ```
 */
export function nodeBuiltin<T>(name: string): T | undefined {
  const process = (globalThis as { process?: NodeProcess }).process;
  if (typeof process?.getBuiltinModule !== "function") return undefined;
  try {
    return process.getBuiltinModule(name) as T | undefined;
  } catch {
    return undefined;
  }
}

// Blocking is refused before the value is compared (ECMA-262 DoWait: AgentCanSuspend), so a
// wait for a value that is not there answers at once where it is allowed and throws where not.
function probeBlocking(): boolean {
  try {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 1, 0);
    return true;
  } catch {
    return false;
  }
}

function probeSharedWasmMemory(): boolean {
  if (typeof WebAssembly !== "object") return false;
  try {
    new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
    return true;
  } catch {
    return false;
  }
}

function probeCores(): number {
  const fromNavigator = globalThis.navigator?.hardwareConcurrency;
  if (typeof fromNavigator === "number" && fromNavigator > 0) return fromNavigator;
  // Node 20 has no navigator (21 added it).
  const os = nodeBuiltin<{ availableParallelism?(): number; cpus?(): unknown[] }>("node:os");
  const fromNode = os?.availableParallelism?.() ?? os?.cpus?.().length;
  return typeof fromNode === "number" && fromNode > 0 ? fromNode : 1;
}

function probeWorkers(): RuntimeFeatures["workers"] {
  if (typeof (globalThis as { Worker?: unknown }).Worker === "function") return "web";
  const threads = nodeBuiltin<{ Worker?: unknown }>("node:worker_threads");
  return typeof threads?.Worker === "function" ? "node" : "none";
}

let detected: RuntimeFeatures | undefined;

/**
 * This thread's features, probed once (they cannot change while a program runs).
 *
 * @example
 * ```ts
 * import { runtimeFeatures } from "./runtime_features.ts";
 * const f = runtimeFeatures();
 * console.log(f.workers, f.cores, f.canBlock);
 * ```
 */
export function runtimeFeatures(): RuntimeFeatures {
  if (detected) return detected;
  const sharedMemory = typeof SharedArrayBuffer === "function";
  const isolated = (globalThis as { crossOriginIsolated?: unknown }).crossOriginIsolated;
  detected = {
    sharedMemory,
    sharedWasmMemory: sharedMemory && probeSharedWasmMemory(),
    crossOriginIsolated: typeof isolated === "boolean" ? isolated : undefined,
    canBlock: sharedMemory && probeBlocking(),
    waitAsync: typeof (Atomics as { waitAsync?: unknown }).waitAsync === "function",
    workers: probeWorkers(),
    cores: probeCores(),
  };
  return detected;
}

/**
 * How many threads a CPU backend runs on here, whether its buffers are shared memory, how the
 * calling thread waits for workers, and why, in words.
 *
 * @example
 * ```ts
 * import type { ThreadPlan } from "./runtime_features.ts";
 * const single: ThreadPlan = {
 *   threads: 1,
 *   shared: false,
 *   wait: "block",
 *   workers: "none",
 *   why: "no SharedArrayBuffer (page not cross-origin isolated)",
 * };
 * ```
 */
export interface ThreadPlan {
  /** Threads, the calling thread included. */
  readonly threads: number;
  /** Buffers are `SharedArrayBuffer`s (required when threads > 1). */
  readonly shared: boolean;
  /** The calling thread waits at barriers with `Atomics.wait` or with `Atomics.waitAsync`. */
  readonly wait: "block" | "async";
  /** Which workers to start (`none` when threads is 1). */
  readonly workers: RuntimeFeatures["workers"];
  /** Why this many threads, for `explain()` and `reason`. */
  readonly why: string;
}

/**
 * The thread plan for a request (`undefined`: one per core, at most 4) on a runtime with
 * `features`. `wasm` asks for a shared WebAssembly memory as well, which threads need there.
 *
 * @example
 * ```ts
 * import { planThreads } from "./runtime_features.ts";
 * const plan = planThreads(2, {
 *   sharedMemory: false,
 *   sharedWasmMemory: false,
 *   crossOriginIsolated: false,
 *   canBlock: false,
 *   waitAsync: true,
 *   workers: "web",
 *   cores: 8,
 * });
 * plan.why; // "no SharedArrayBuffer (page not cross-origin isolated)"
 * ```
 */
export function planThreads(
  requested: number | undefined,
  features: RuntimeFeatures = runtimeFeatures(),
  options: { wasm?: boolean } = {},
): ThreadPlan {
  const shared = features.sharedMemory;
  const wait = features.canBlock ? "block" : "async";
  const one = (why: string): ThreadPlan => ({ threads: 1, shared, wait, workers: "none", why });
  if (requested === 1) return one("threads: 1 was requested");
  if (!shared) {
    return one(
      features.crossOriginIsolated === false
        ? "no SharedArrayBuffer (page not cross-origin isolated)"
        : "no SharedArrayBuffer in this runtime",
    );
  }
  if (options.wasm && !features.sharedWasmMemory) {
    return one("no shared WebAssembly.Memory in this runtime");
  }
  if (features.workers === "none") {
    return one("no Worker here (no global Worker, and no node:worker_threads)");
  }
  if (!features.canBlock && !features.waitAsync) {
    return one("Atomics.wait is not allowed on this thread and there is no Atomics.waitAsync");
  }
  const threads = requested ?? Math.max(1, Math.min(4, features.cores));
  if (threads <= 1) return one("one core here");
  const helpers = `${threads - 1} worker${threads > 2 ? "s" : ""}`;
  const kind = features.workers === "node" ? " (node:worker_threads)" : "";
  const how = features.canBlock
    ? "the calling thread waits with Atomics.wait"
    : "the calling thread waits with Atomics.waitAsync (Atomics.wait is not allowed on it)";
  return {
    threads,
    shared,
    wait,
    workers: features.workers,
    why: `the calling thread and ${helpers}${kind} over SharedArrayBuffer memory, ${how}`,
  };
}

/**
 * A plan in one line for `explain()` and `reason`, e.g. "1 thread: threads: 1 was requested".
 *
 * @example
 * ```ts
 * import { describeThreads } from "./runtime_features.ts";
 * describeThreads({ threads: 1, shared: true, wait: "block", workers: "none", why: "one core here" });
 * // "1 thread: one core here"
 * ```
 */
export function describeThreads(plan: ThreadPlan): string {
  return `${plan.threads} thread${plan.threads === 1 ? "" : "s"}: ${plan.why}`;
}

/**
 * `n` floats, in shared memory when `shared` (so workers can read and write them in place).
 *
 * @example
 * ```ts
 * import { floats } from "./runtime_features.ts";
 * floats(4, false).buffer instanceof ArrayBuffer; // true
 * ```
 */
export function floats(n: number, shared: boolean): Float32Array {
  return new Float32Array(shared ? new SharedArrayBuffer(n * 4) : new ArrayBuffer(n * 4));
}

/**
 * Whether `array` lives in a `SharedArrayBuffer`; false, without touching the name, where the
 * runtime has none.
 *
 * @example
 * ```ts
 * import { inSharedMemory } from "./runtime_features.ts";
 * inSharedMemory(new Float32Array(2)); // false
 * ```
 */
export function inSharedMemory(array: Float32Array): boolean {
  return typeof SharedArrayBuffer === "function" && array.buffer instanceof SharedArrayBuffer;
}
