/**
 * Benchmarks a whole timm ViT (`vit()`: image in, logits out) on one backend and prints one
 * JSON line (issue 14's binding interface):
 *
 *     deno run -A bench/vit.ts --model vit_tiny_patch16_224 --batch 8 [--backend wasm]
 *         [--runs 10] [--threads N] --json
 *
 * `--model` is any `VIT_PRESETS` name (`vit_tiny_patch16_224`, `vit_small_patch16_224`,
 * `vit_base_patch16_224`, ...), with random weights (`initParams(g, 0)`): speed does not depend
 * on the values. Each run goes from a host Float32Array image batch to the logits in host memory;
 * the median of `--runs` (at least 5) after a warm-up of two runs and at least one second. `compile_ms` is `compile()` plus
 * `prepare()` for the batch's shapes (not drawing the random weights); `peak_rss_mb` is the process's peak resident set (Linux
 * `VmHWM`, else `Deno.memoryUsage().rss` at the end). Without `--json` it prints a readable line.
 * @module
 */

import { parseArgs } from "node:util";
import {
  BACKEND_NAMES,
  type BackendName,
  compile,
  initParams,
  resolveVitConfig,
  vit,
  VIT_PRESETS,
  type VitPresetName,
} from "../mod.ts";

/** One ViT benchmark result. */
export interface VitBenchResult {
  /** The preset. */
  model: string;
  /** Images per run. */
  batch: number;
  /** The backend that ran. */
  backend: string;
  /** Images per second at the median. */
  images_per_s: number;
  /** Median milliseconds per run. */
  ms_per_batch_median: number;
  /** `compile()` + `prepare()`. */
  compile_ms: number;
  /** Peak resident set size of the process. */
  peak_rss_mb: number;
  /** Multiply-adds per image, in billions (timm's "GMACs": 1.26 for ViT-Ti/16). */
  gmac_per_image: number;
  /** Whole-model GFLOP/s at the median, 2 flops per multiply-add. */
  gflops: number;
}

/**
 * Multiply-adds of one image through a ViT: the patch embedding (N·D·C·P²) and per block qkv
 * (3D²N), q@kᵀ and p@v (2N²D), proj (D²N), the MLP (2·M·D·N), and the head.
 *
 * @example
 * ```ts
 * import { vitMacs } from "./vit.ts";
 * import { VIT_PRESETS } from "../mod.ts";
 * vitMacs(VIT_PRESETS.vit_tiny_patch16_224); // about 1.26e9
 * ```
 */
export function vitMacs(preset: (typeof VIT_PRESETS)[VitPresetName]): number {
  const c = resolveVitConfig(preset);
  const patches = c.grid[0] * c.grid[1];
  const n = patches + 1;
  const d = c.dim;
  const embed = patches * d * c.channels * c.patch * c.patch;
  const block = 4 * n * d * d + 2 * n * n * d + 2 * n * d * c.mlpHidden;
  return embed + c.depth * block + d * c.classes;
}

/**
 * The benchmarks' deterministic image batch for a preset: `[batch, 3, side, side]`, values
 * `sin(0.37 i)`.
 *
 * @example
 * ```ts
 * import { vitBenchImage } from "./vit.ts";
 * import { VIT_PRESETS } from "../mod.ts";
 * vitBenchImage(VIT_PRESETS.vit_tiny_patch16_224, 2).shape; // [2, 3, 224, 224]
 * ```
 */
export function vitBenchImage(
  preset: (typeof VIT_PRESETS)[VitPresetName],
  batch: number,
): { shape: number[]; data: Float32Array } {
  const side = preset.image;
  return {
    shape: [batch, 3, side, side],
    data: Float32Array.from({ length: batch * 3 * side * side }, (_, i) => Math.sin(i * 0.37)),
  };
}

/** The process's peak RSS in MB (`VmHWM` on Linux). */
function peakRssMb(): number {
  try {
    const status = Deno.readTextFileSync("/proc/self/status");
    const kb = Number(status.match(/VmHWM:\s+(\d+) kB/)?.[1]);
    if (Number.isFinite(kb)) return kb / 1024;
  } catch {
    // Not Linux: the current RSS is the best available.
  }
  return Deno.memoryUsage().rss / 2 ** 20;
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      model: { type: "string", default: "vit_tiny_patch16_224" },
      batch: { type: "string", default: "1" },
      backend: { type: "string", default: "wasm" },
      runs: { type: "string", default: "10" },
      threads: { type: "string" },
      json: { type: "boolean", default: false },
    },
  });
  const name = values.model as VitPresetName;
  if (!Object.hasOwn(VIT_PRESETS, name)) {
    throw new Error(`--model ${name}: use one of ${Object.keys(VIT_PRESETS).join(", ")}`);
  }
  const backend = values.backend as BackendName;
  if (!BACKEND_NAMES.includes(backend) && backend !== "auto") {
    throw new Error(`--backend ${backend}: use one of ${BACKEND_NAMES.join(", ")}`);
  }
  const batch = Number(values.batch);
  const runs = Math.max(5, Number(values.runs));
  const preset = VIT_PRESETS[name];
  const g = vit(preset);
  const image = vitBenchImage(preset, batch);
  // Made first: drawing random weights is the benchmark's setup, not part of compiling.
  const weights = initParams(g, 0);
  const t0 = performance.now();
  const model = await compile(g, {
    backend,
    weights,
    ...(values.threads ? { threads: Number(values.threads) } : {}),
  });
  await model.prepare({ image: image.shape });
  const compileMs = performance.now() - t0;
  const into = { output: new Float32Array(batch * preset.classes) };
  // Warm-up: two runs and at least a second, so that the engine has optimized the kernels on
  // every thread (V8 compiles WebAssembly with a baseline tier first).
  const warm = performance.now();
  for (let i = 0; i < 2 || performance.now() - warm < 1000; i++) {
    await model.run({ image }, { into });
  }
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    await model.run({ image }, { into });
    times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  const median = times[Math.floor(times.length / 2)];
  const gmac = vitMacs(preset) / 1e9;
  const result: VitBenchResult = {
    model: name,
    batch,
    backend: model.backend,
    images_per_s: Number(((1000 * batch) / median).toFixed(2)),
    ms_per_batch_median: Number(median.toFixed(2)),
    compile_ms: Number(compileMs.toFixed(0)),
    peak_rss_mb: Number(peakRssMb().toFixed(1)),
    gmac_per_image: Number(gmac.toFixed(3)),
    gflops: Number(((2 * gmac * batch * 1000) / median).toFixed(1)),
  };
  console.log(
    values.json ? JSON.stringify(result) : `${name} B=${batch} on ${result.backend}: ` +
      `${result.images_per_s} img/s (${result.ms_per_batch_median} ms a batch, ` +
      `${result.gflops} GFLOP/s), compile ${result.compile_ms} ms, peak RSS ${result.peak_rss_mb} MB`,
  );
  model.dispose();
}
