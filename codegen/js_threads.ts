/**
 * A small worker pool for the `js` backend. Workers are created from a Blob URL, so they need
 * no `--allow-read`, and they compile the same kernel bodies as the main thread. Buffers are
 * `SharedArrayBuffer`-backed, so a kernel's output range is written in place by whichever
 * thread owns it. Idle pools shut down by themselves, so they never keep a program alive.
 * @module
 */

/** What one thread runs: kernel `kernel` over `[lo, hi)` of its split axis. */
interface Task {
  readonly kernel: number;
  readonly lo: number;
  readonly hi: number;
  readonly out: Float32Array;
  readonly args: readonly Float32Array[];
}

const WORKER_SOURCE = `
let kernels = [];
self.onmessage = (event) => {
  const m = event.data;
  if (m.bodies) {
    kernels = m.bodies.map((b) => new Function("out", "lo", "hi", ...b.params, b.body));
    return;
  }
  kernels[m.kernel](m.out, m.lo, m.hi, ...m.args);
  self.postMessage(0);
};
`;

/**
 * Runs kernels split across the main thread and `size - 1` workers.
 *
 * @example
 * ```ts
 * import { KernelPool } from "./js_threads.ts";
 * const pool = new KernelPool([{ params: [], body: "for (let i = lo; i < hi; i++) out[i] = i;" }], 2);
 * const out = new Float32Array(new SharedArrayBuffer(16));
 * await pool.run(0, 4, out, []);
 * pool.close();
 * ```
 */
export class KernelPool {
  readonly #bodies: readonly { params: readonly string[]; body: string }[];
  readonly #local: ((out: Float32Array, lo: number, hi: number, ...a: Float32Array[]) => void)[];
  readonly #size: number;
  #workers: Worker[] = [];
  #idle: ReturnType<typeof setTimeout> | undefined;

  /** `bodies` are kernel function bodies over `(out, lo, hi, ...params)`. */
  constructor(bodies: readonly { params: readonly string[]; body: string }[], size: number) {
    this.#bodies = bodies;
    this.#size = Math.max(1, size);
    // Generated kernel code, compiled once: this is the backend's JIT step.
    this.#local = bodies.map((b) =>
      new Function("out", "lo", "hi", ...b.params, b.body) as (
        out: Float32Array,
        lo: number,
        hi: number,
        ...a: Float32Array[]
      ) => void
    );
  }

  /** Threads a run uses, the main thread included. */
  get size(): number {
    return this.#size;
  }

  /** Runs kernel `kernel` over `[0, extent)` in up to `maxParts` even parts, one per thread. */
  async run(
    kernel: number,
    extent: number,
    out: Float32Array,
    args: readonly Float32Array[],
    maxParts: number = this.#size,
  ): Promise<void> {
    const parts = Math.min(this.#size, maxParts, extent);
    if (parts <= 1) {
      this.#local[kernel](out, 0, extent, ...args);
      return;
    }
    this.#ensureWorkers(parts - 1);
    const bounds = Array.from({ length: parts + 1 }, (_, i) => Math.round((i * extent) / parts));
    const done = this.#workers.slice(0, parts - 1).map((w, i) =>
      new Promise<void>((resolve, reject) => {
        w.onmessage = () => resolve();
        w.onerror = (e) => {
          e.preventDefault();
          reject(new Error(`js backend worker failed: ${e.message}`));
        };
        const task: Task = { kernel, lo: bounds[i + 1], hi: bounds[i + 2], out, args };
        w.postMessage(task);
      })
    );
    this.#local[kernel](out, bounds[0], bounds[1], ...args);
    await Promise.all(done);
    this.#scheduleIdle();
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
      w.postMessage({ bodies: this.#bodies });
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
