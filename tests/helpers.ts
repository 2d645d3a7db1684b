// Shared test helpers: fixture graphs and error metrics.
import { type Graph, patchEmbedding, seedTokenizer } from "../mod.ts";

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
