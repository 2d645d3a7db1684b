/**
 * The `js` backend: Tessera's own CPU code generator. Each fused kernel is rendered by
 * `render_js.ts` into a loop nest specialized to its shapes and compiled once by the JavaScript
 * engine; intermediates live in preallocated slots from the buffer plan, so a run allocates
 * only its results.
 * @module
 */

import { formatShape } from "../graph/shape.ts";
import { numel, type TensorData } from "../graph/tensor_data.ts";
import type { Backend, Executable } from "./backend.ts";
import type { VExpr } from "./expr.ts";
import { lowerGraph } from "./lower.ts";
import { chooseSplitAxis, renderJsKernel, UNROLL } from "./render_js.ts";
import { relayoutWeights } from "./relayout.ts";
import { KernelPool } from "./js_threads.ts";

/** Kernels with less work than this (outputs x reduction length) run on one thread. */
const MIN_PARALLEL_WORK = 300000;

// The longest chain of nested reductions: the work per output element.
function reductionSize(e: VExpr): number {
  switch (e.k) {
    case "const":
    case "load":
      return 1;
    case "sum":
      return e.extent * reductionSize(e.body);
    case "divc":
      return reductionSize(e.a);
    default:
      return Math.max(reductionSize(e.a), reductionSize(e.b));
  }
}

/**
 * Specialized JavaScript loop nests, generated from the same IR as every other backend.
 *
 * @example
 * ```ts
 * import { jsBackend } from "./js_backend.ts";
 * jsBackend.name; // "js"
 * ```
 */
export const jsBackend: Backend = {
  name: "js",
  unavailable: () => Promise.resolve(null),
  prepare(graph, weights, want): Promise<Executable> {
    const program = relayoutWeights(lowerGraph(graph, weights, want), {
      insideLoops: false,
      unrolled: UNROLL,
    });
    const threads = Math.max(1, Math.min(4, navigator.hardwareConcurrency ?? 1));
    const rendered = program.kernels.map((k) =>
      renderJsKernel(k, chooseSplitAxis(k.shape, threads))
    );
    const pool = new KernelPool(
      rendered.map((r) => ({ params: r.args.map((_, i) => `buf${i}`), body: r.body })),
      threads,
    );
    // Threads share memory: every buffer a kernel touches lives in a SharedArrayBuffer.
    const shared = (n: number): Float32Array => new Float32Array(new SharedArrayBuffer(n * 4));
    const slotSizes: number[] = [];
    for (const [name, slot] of program.slots) {
      const size = numel(program.buffers.get(name)?.shape ?? []);
      slotSizes[slot] = Math.max(slotSizes[slot] ?? 0, size);
    }
    const slots = slotSizes.map(shared);
    const env = new Map<string, Float32Array>();
    for (const b of program.buffers.values()) {
      if (b.data) {
        const copy = shared(b.data.length);
        copy.set(b.data);
        env.set(b.name, copy);
      } else if (b.kind === "input") {
        env.set(b.name, shared(numel(b.shape)));
      } else if (program.slots.has(b.name)) {
        env.set(b.name, slots[program.slots.get(b.name) as number].subarray(0, numel(b.shape)));
      }
    }
    // Results are computed into warm shared buffers, then copied out: fresh memory would
    // page-fault inside the kernels, and workers can only write shared memory.
    for (const name of new Set(program.results)) {
      env.set(name, shared(numel(program.buffers.get(name)?.shape ?? [])));
    }
    const work = program.kernels.map((k) => k.size * reductionSize(k.expr));
    return Promise.resolve({
      async run(
        inputs: Readonly<Record<string, TensorData>>,
        into?: readonly (Float32Array | undefined)[],
      ): Promise<TensorData[]> {
        // Caller buffers in shared memory are used in place by every thread: no copies.
        const direct = new Map<string, Float32Array>();
        for (const b of program.buffers.values()) {
          if (b.kind !== "input") continue;
          const data = inputs[b.source as string].data;
          // Inputs already in shared memory are read in place; others are copied in once.
          if (data.buffer instanceof SharedArrayBuffer) direct.set(b.name, data);
          else env.get(b.name)?.set(data);
        }
        program.results.forEach((name, i) => {
          const target = into?.[i];
          if (target?.buffer instanceof SharedArrayBuffer) direct.set(name, target);
        });
        const bufferOf = (name: string): Float32Array =>
          direct.get(name) ?? env.get(name) as Float32Array;
        await pool.runPlan(program.kernels.map((k, i) => ({
          kernel: i,
          extent: k.shape[rendered[i].splitAxis],
          // Small kernels are not worth splitting.
          parts: work[i] >= MIN_PARALLEL_WORK ? pool.size : 1,
          out: bufferOf(k.out),
          args: rendered[i].args.map(bufferOf),
        })));
        return program.results.map((name, i) => {
          const value = bufferOf(name);
          const data = into?.[i] ?? new Float32Array(value.length);
          if (data !== value) data.set(value);
          return { shape: program.buffers.get(name)?.shape as number[], data };
        });
      },
      explain(options = {}) {
        const lines = program.kernels.map((k, i) =>
          `kernel ${i}: ${k.ops.join(" + ")} -> ${k.out} ${formatShape(k.shape)}; ` +
          `launch ${k.size} outputs; backend js; split axis ${rendered[i].splitAxis} over ` +
          `${pool.size} threads; reads ${k.reads.join(", ")}`
        );
        const plan = program.slots.size
          ? [`buffer plan: ${[...program.slots].map(([b, s]) => `${b}->slot${s}`).join(", ")}`]
          : [];
        const sources = options.source
          ? rendered.map((r, i) =>
            `--- kernel ${i} source ---\n// (out, lo, hi, ${
              r.args.map((a, j) => `buf${j} = ${a}`).join(", ")
            })\n${r.body}`
          )
          : [];
        return [`graph ${graph.name} on js`, ...lines, ...plan, ...sources].join("\n");
      },
      dispose() {
        pool.close();
      },
    });
  },
};
