/**
 * Benchmarks one tokenizer on one backend and prints one JSON line:
 *
 *     deno run -A bench/tokenizer.ts --variant seed|standard --batch N --backend NAME [--runs N]
 *         [--threads N] [--json]
 *
 * Times run from a host Float32Array in to the output in host memory (a reused output buffer,
 * `run(..., { into })`); the median of `--runs` (at least 10) after at least 0.5 s of warm-up. `compile_ms` is `compile()` plus kernel generation for
 * the batch's shapes (`prepare()`), before any run. `memory_over_data` is the peak RSS less the RSS
 * once `mod.ts` is imported, over the bytes of input + output + weights.
 * @module
 */

import { parseArgs } from "node:util";
import {
  BACKEND_NAMES,
  type BackendName,
  compile,
  patchEmbedding,
  probeWebGpu,
  seedTokenizer,
} from "../mod.ts";

/** One benchmark result. */
export interface BenchResult {
  variant: string;
  batch: number;
  backend: string;
  images_per_s: number;
  ms_per_batch_median: number;
  compile_ms: number;
  device: string;
  peak_rss_mb: number;
  /**
   * Peak RSS minus the RSS once `mod.ts` was imported, over input + output + weights; the peak
   * is the process's, so this means most when the process benchmarks one cell.
   */
  memory_over_data: number;
  /** Threads the CPU backends used (the `threads` compile option), when set. */
  threads?: number;
}

// Measured when this module is evaluated: mod.ts and its dependencies are loaded, no data yet.
const importRssBytes = Deno.memoryUsage().rss;

async function deviceOf(backend: string): Promise<string> {
  if (backend === "webgpu") {
    const report = await probeWebGpu();
    return report ? `webgpu: ${report.description}` : "webgpu: no adapter";
  }
  return `cpu x${navigator.hardwareConcurrency} (${Deno.build.os} ${Deno.build.arch})`;
}

/** The process's peak resident set (Linux `VmHWM`), else its current one. */
function peakRssBytes(): number {
  try {
    const kib = Deno.readTextFileSync("/proc/self/status").match(/VmHWM:\s+(\d+) kB/)?.[1];
    if (kib) return Number(kib) * 1024;
  } catch {
    // Not Linux, or no read permission: the current RSS is the best there is.
  }
  return Deno.memoryUsage().rss;
}

/** Runs one benchmark cell. */
export async function benchTokenizer(
  variant: "seed" | "standard",
  batch: number,
  backend: BackendName,
  runs = 10,
  threads?: number,
): Promise<BenchResult> {
  const sizes = { height: 224, width: 224, patch: 16, embedding: 768 };
  const graph = variant === "seed" ? seedTokenizer(sizes) : patchEmbedding(sizes);
  const shape = [batch, 3, 224, 224];
  const weights = graph.params().reduce(
    (n, p) => n + p.shape.reduce<number>((a, d) => a * Number(d), 1),
    0,
  );
  // Shared memory, so the js backend's threads read the batch in place.
  const data = new Float32Array(new SharedArrayBuffer(batch * 3 * 224 * 224 * 4));
  data.forEach((_, i) => (data[i] = (i % 251) / 251));
  const t0 = performance.now();
  const model = await compile(graph, { backend, threads, onWarning: () => {} });
  await model.prepare({ image: shape });
  const compileMs = performance.now() - t0;
  // The output buffer is reused across runs, as a serving loop (or ONNX Runtime's arena) would.
  // Shared memory lets the js backend's threads write it in place; others just copy into it.
  const into = { output: new Float32Array(new SharedArrayBuffer(batch * 197 * 768 * 4)) };
  const warmUntil = performance.now() + 500;
  for (let i = 0; i < 3 || performance.now() < warmUntil; i++) {
    await model.run({ image: { shape, data } }, { into });
  }
  const times: number[] = [];
  for (let i = 0; i < Math.max(10, runs); i++) {
    const start = performance.now();
    await model.run({ image: { shape, data } }, { into });
    times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  const median = times[Math.floor(times.length / 2)];
  const result = {
    variant,
    batch,
    backend: model.backend,
    images_per_s: Number((batch / (median / 1000)).toFixed(2)),
    ms_per_batch_median: Number(median.toFixed(3)),
    compile_ms: Number(compileMs.toFixed(1)),
    device: await deviceOf(model.backend),
    peak_rss_mb: Number((peakRssBytes() / 2 ** 20).toFixed(1)),
    memory_over_data: Number(
      ((peakRssBytes() - importRssBytes) / (4 * (data.length + into.output.length + weights)))
        .toFixed(2),
    ),
    ...(threads ? { threads } : {}),
  };
  model.dispose();
  return result;
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      variant: { type: "string", default: "seed" },
      batch: { type: "string", default: "1" },
      backend: { type: "string", default: "auto" },
      runs: { type: "string", default: "10" },
      json: { type: "boolean", default: false },
      threads: { type: "string" },
    },
  });
  const variant = values.variant;
  const backend = values.backend as BackendName;
  if (variant !== "seed" && variant !== "standard") {
    console.error(`error: --variant must be seed or standard, got ${variant}`);
    Deno.exit(1);
  }
  if (!BACKEND_NAMES.includes(backend)) {
    console.error(`error: --backend must be one of ${BACKEND_NAMES.join(", ")}`);
    Deno.exit(1);
  }
  const threads = values.threads === undefined ? undefined : Number(values.threads);
  const result = await benchTokenizer(
    variant,
    Number(values.batch),
    backend,
    Number(values.runs),
    threads,
  );
  console.log(values.json ? JSON.stringify(result) : result);
}
