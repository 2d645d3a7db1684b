/**
 * Benchmarks timm's ViT encoder (`vitEncoder`: the blocks and the final norm, from `embedded` to
 * `features`) on one backend and prints one JSON line:
 *
 *     deno run -A bench/encoder.ts [--model tiny|small|base] [--batch N] [--backend NAME]
 *         [--runs N] [--threads N]
 *
 * `tiny`, `small` and `base` are ViT-Ti/16, ViT-S/16 and ViT-B/16 at 224x224 (197 tokens; dims
 * 192/384/768, heads 3/6/12, 12 blocks), with PyTorch-exact random weights (`initParams(g, 0)`):
 * speed does not depend on the values. Times run from a host Float32Array in to the output in
 * host memory; the median of `--runs` (at least 5) after two warm-up runs. `compile_ms` is
 * `compile()` plus `prepare()` for the batch's shapes. GFLOP/s counts 2 flops per multiply-add
 * of the six matrix products of each block (the rest is small).
 * @module
 */

import { parseArgs } from "node:util";
import { BACKEND_NAMES, type BackendName, compile, initParams, vitEncoder } from "../mod.ts";

/** The encoder sizes this benchmark knows. */
export const ENCODER_MODELS = {
  tiny: { dim: 192, heads: 3 },
  small: { dim: 384, heads: 6 },
  base: { dim: 768, heads: 12 },
} as const;

/** One encoder benchmark result. */
export interface EncoderBenchResult {
  /** `tiny`, `small` or `base`. */
  model: string;
  /** Images per run. */
  batch: number;
  /** The backend that ran. */
  backend: string;
  /** Median milliseconds per run. */
  ms_per_batch_median: number;
  /** Images per second at the median. */
  images_per_s: number;
  /** Matrix-product GFLOP/s at the median. */
  gflops: number;
  /** `compile()` + `prepare()`. */
  compile_ms: number;
  /** Kernels in the lowered program, from `explain()`. */
  kernels: number;
}

/**
 * Multiply-adds of one image through the encoder's matrix products: per block qkv (3D²), q@kᵀ and
 * p@v (2N²D), proj (D²), fc1 and fc2 (8D²), each for N tokens where it applies.
 *
 * @example
 * ```ts
 * import { encoderMacs } from "./encoder.ts";
 * encoderMacs(197, 192, 12); // about 1.26e9
 * ```
 */
export function encoderMacs(tokens: number, dim: number, depth: number): number {
  return depth * (12 * tokens * dim * dim + 2 * tokens * tokens * dim);
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      model: { type: "string", default: "tiny" },
      batch: { type: "string", default: "1" },
      backend: { type: "string", default: "wasm" },
      runs: { type: "string", default: "10" },
      threads: { type: "string" },
    },
  });
  const size = ENCODER_MODELS[values.model as keyof typeof ENCODER_MODELS];
  if (!size) throw new Error(`--model ${values.model}: use tiny, small or base`);
  const backend = values.backend as BackendName;
  if (!BACKEND_NAMES.includes(backend)) throw new Error(`--backend ${backend}: unknown`);
  const batch = Number(values.batch);
  const runs = Math.max(5, Number(values.runs));
  const tokens = 197;
  const g = vitEncoder({ tokens, dim: size.dim, depth: 12, heads: size.heads });
  const embedded = {
    shape: [batch, tokens, size.dim],
    data: Float32Array.from({ length: batch * tokens * size.dim }, (_, i) => Math.sin(i * 0.37)),
  };
  const t0 = performance.now();
  const model = await compile(g, {
    backend,
    weights: initParams(g, 0),
    ...(values.threads ? { threads: Number(values.threads) } : {}),
  });
  await model.prepare({ embedded: embedded.shape });
  const compileMs = performance.now() - t0;
  const into = { output: new Float32Array(embedded.data.length) };
  for (let i = 0; i < 2; i++) await model.run({ embedded }, { into });
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    await model.run({ embedded }, { into });
    times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  const median = times[Math.floor(times.length / 2)];
  const result: EncoderBenchResult = {
    model: values.model as string,
    batch,
    backend: model.backend,
    ms_per_batch_median: Number(median.toFixed(2)),
    images_per_s: Number(((1000 * batch) / median).toFixed(2)),
    gflops: Number(((2 * encoderMacs(tokens, size.dim, 12) * batch) / median / 1e6).toFixed(1)),
    compile_ms: Number(compileMs.toFixed(0)),
    kernels: model.explain().split("\n").filter((l) => l.startsWith("kernel ")).length,
  };
  console.log(JSON.stringify(result));
  model.dispose();
}
