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
import { lowerGraph } from "./lower.ts";
import { renderJsKernel } from "./render_js.ts";

type KernelFn = (out: Float32Array, ...args: Float32Array[]) => void;

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
    const program = lowerGraph(graph, weights, want);
    const rendered = program.kernels.map((k) => renderJsKernel(k));
    // The kernel bodies are generated code: compiling them is what a JIT backend does.
    const fns = rendered.map((r) =>
      new Function("out", ...r.args.map((_, i) => `b${i}`), r.body) as KernelFn
    );
    const slotSizes: number[] = [];
    for (const [name, slot] of program.slots) {
      const size = numel(program.buffers.get(name)?.shape ?? []);
      slotSizes[slot] = Math.max(slotSizes[slot] ?? 0, size);
    }
    const slots = slotSizes.map((n) => new Float32Array(n));
    const fixed = new Map<string, Float32Array>();
    for (const b of program.buffers.values()) {
      if (b.data) fixed.set(b.name, b.data);
    }
    const slotView = (name: string): Float32Array => {
      const slot = program.slots.get(name) as number;
      return slots[slot].subarray(0, numel(program.buffers.get(name)?.shape ?? []));
    };
    return Promise.resolve({
      run(inputs: Readonly<Record<string, TensorData>>): Promise<TensorData[]> {
        const env = new Map(fixed);
        for (const b of program.buffers.values()) {
          if (b.kind === "input") env.set(b.name, inputs[b.source as string].data);
        }
        program.kernels.forEach((k, i) => {
          const out = program.slots.has(k.out) ? slotView(k.out) : new Float32Array(k.size);
          fns[i](out, ...rendered[i].args.map((a) => env.get(a) as Float32Array));
          env.set(k.out, out);
        });
        return Promise.resolve(program.results.map((name) => ({
          shape: program.buffers.get(name)?.shape as number[],
          data: env.get(name) as Float32Array,
        })));
      },
      explain(options = {}) {
        const lines = program.kernels.map((k, i) =>
          `kernel ${i}: ${k.ops.join(" + ")} -> ${k.out} ${formatShape(k.shape)}; ` +
          `launch ${k.size} outputs; backend js; reads ${k.reads.join(", ")}`
        );
        const plan = program.slots.size
          ? [`buffer plan: ${[...program.slots].map(([b, s]) => `${b}->slot${s}`).join(", ")}`]
          : [];
        const sources = options.source
          ? rendered.map((r, i) =>
            `--- kernel ${i} source ---\n// (out, ${
              r.args.map((a, j) => `b${j} = ${a}`).join(", ")
            })\n${r.body}`
          )
          : [];
        return [`graph ${graph.name} on js`, ...lines, ...plan, ...sources].join("\n");
      },
      dispose() {},
    });
  },
};
