// Shared test helpers: fixture graphs and error metrics.
import assert from "node:assert/strict";
import { loadBlas } from "../codegen/backends/native_blas.ts";
import {
  type Graph,
  graph,
  type GraphBuilder,
  patchEmbedding,
  seedTokenizer,
  type Tensor,
  type TensorData,
  type TShape,
  type Weights,
  WeightsError,
} from "../mod.ts";

/** Builds the graph a fixture's metadata describes. */
export function graphForFixture(meta: Record<string, string>): Graph {
  const sizes = {
    height: Number(meta.height),
    width: Number(meta.width),
    patch: Number(meta.patch_size),
    embedding: Number(meta.embedding_size),
    channels: Number(meta.channels),
  };
  switch (meta.variant) {
    case "seed":
      return seedTokenizer(sizes as typeof sizes & { channels: 3 });
    case "seed-generalized":
      return seedTokenizer({ ...sizes, generalized: true });
    case "standard":
      return patchEmbedding(sizes);
    default:
      throw new Error(`unknown variant ${meta.variant}`);
  }
}

/** Max abs error, relative for values above 1 in magnitude. */
export function maxError(actual: Float32Array, expected: Float32Array): number {
  if (actual.length !== expected.length) return Infinity;
  let worst = 0;
  for (let i = 0; i < actual.length; i++) {
    const scale = Math.max(1, Math.abs(expected[i]));
    worst = Math.max(worst, Math.abs(actual[i] - expected[i]) / scale);
  }
  return worst;
}

/** Deterministic values in [-1, 1) (a 32-bit LCG), so a failing case replays exactly. */
export function lcgValues(shape: readonly number[], seed: number): TensorData {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = s / 2 ** 31 - 1;
  }
  return { shape: [...shape], data };
}

/**
 * Why `got` is not within float32 rounding of `want` for sums of `k` products, or null. Inputs
 * lie in [-1, 1) and PyTorch's init draws weights from U(-1/sqrt(k), 1/sqrt(k)), so partial sums
 * stay O(1); each float32 addition rounds by up to 2^-24 of one, and over k additions in another
 * order than the reference's (which sums in float64) those errors add up like a random walk,
 * about 6e-8 * sqrt(k). 1e-5 * sqrt(k), relative above magnitude 1, leaves a margin of over 100
 * (and covers adversarial orders up to k in the thousands), while a layout bug (weights read
 * from the wrong panel) is off by 0.5 and more.
 */
export function sumMismatch(got: TensorData, want: TensorData, k: number): string | null {
  if (JSON.stringify(got.shape) !== JSON.stringify(want.shape)) {
    return `shape ${JSON.stringify(got.shape)}, want ${JSON.stringify(want.shape)}`;
  }
  const tolerance = 1e-5 * Math.sqrt(k);
  let worst = 0;
  let at = 0;
  for (let i = 0; i < want.data.length; i++) {
    const err = Math.abs(got.data[i] - want.data[i]) / Math.max(1, Math.abs(want.data[i]));
    if (!(err <= worst)) [worst, at] = [err, i];
  }
  return worst <= tolerance ? null : `error ${worst} at flat index ${at} (got ${got.data[at]}, ` +
    `want ${want.data[at]}) > ${tolerance}`;
}

/** The builder as plain JavaScript sees it: any arguments, no type rules. */
export type LooseBuilder = Record<string, (...args: unknown[]) => Tensor<TShape>>;

/** `b` without its type rules, to call it as a JavaScript caller would. */
export function loose(b: GraphBuilder): LooseBuilder {
  return b as unknown as LooseBuilder;
}

/** Builds a graph from code the type checker does not see (the runtime rules alone judge it). */
export function looseGraph(f: (u: LooseBuilder) => unknown): Graph<TShape> {
  return graph("g", (b) => f(loose(b)) as Tensor<TShape>);
}

/** Whether a file exists (the shared fixtures are optional outside CI). */
export function exists(url: URL): boolean {
  try {
    return Deno.statSync(url).isFile;
  } catch {
    return false;
  }
}

/** max |got - want| / max(1, max |want|): the fixtures' error measure. */
export function scaledError(got: TensorData, want: TensorData): number {
  assert.deepEqual(got.shape, want.shape, "shape");
  let diff = 0;
  let scale = 1;
  for (let i = 0; i < want.data.length; i++) {
    const d = Math.abs(got.data[i] - want.data[i]);
    // A NaN makes the error NaN, which fails the `<=` below.
    diff = d > diff || Number.isNaN(d) ? d : diff;
    scale = Math.max(scale, Math.abs(want.data[i]));
  }
  return diff / scale;
}

/** A fixture tensor that must be there. */
export function fixtureTensor(file: Weights, name: string): TensorData {
  const t = file.get(name);
  assert.ok(t, `fixture tensor ${name} is missing`);
  return t;
}

/** An attention map `[B, heads, N, N]`: every row a probability distribution. */
export function assertAttention(t: TensorData | undefined, heads: number, tokens: number): void {
  assert.ok(t, "attention stage is missing");
  assert.equal(t.shape.length, 4);
  assert.deepEqual(t.shape.slice(1), [heads, tokens, tokens]);
  for (let r = 0; r < t.data.length / tokens; r++) {
    let sum = 0;
    for (let j = 0; j < tokens; j++) {
      const p = t.data[r * tokens + j];
      assert.ok(p >= 0 && p <= 1, `probability ${p}`);
      sum += p;
    }
    assert.ok(Math.abs(sum - 1) < 1e-4, `row ${r} sums to ${sum}`);
  }
}

/** Runs `fn` and returns the one-line `WeightsError` it throws, which mentions every word. */
export function assertWeightsError(fn: () => unknown, ...words: string[]): WeightsError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof WeightsError, `expected WeightsError, got ${caught}`);
  assert.equal(caught.name, "WeightsError");
  assert.ok(!caught.message.includes("\n"), `message is not one line: ${caught.message}`);
  for (const w of words) {
    assert.ok(caught.message.includes(w), `message lacks ${JSON.stringify(w)}: ${caught.message}`);
  }
  return caught;
}

/** `assertWeightsError` for a promise. */
export async function assertRejectsWeights(
  fn: () => Promise<unknown>,
  ...words: string[]
): Promise<WeightsError> {
  let caught: unknown;
  try {
    await fn();
  } catch (e) {
    caught = e;
  }
  return assertWeightsError(() => {
    if (caught !== undefined) throw caught;
  }, ...words);
}

/**
 * Whether the `native` backend can load its BLAS here (`--allow-ffi` and OpenBLAS). CI installs
 * the library and sets TESSERA_REQUIRE_NATIVE, where tests/native_test.ts fails if it cannot.
 */
export const NATIVE_AVAILABLE: boolean = typeof loadBlas(2) !== "string";

/** Every backend the model tests run, `native` where its BLAS loads. */
export const MODEL_BACKENDS = [
  "reference",
  "js",
  "wasm",
  ...(NATIVE_AVAILABLE ? ["native"] as const : []),
  "cpu",
  "webasm",
  "webgpu",
  "wgsl",
] as const;
