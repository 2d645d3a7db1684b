/**
 * The most probable classes of a row of logits, by softmax probability: what a classifier's
 * caller shows (the command line's `--top`, the browser example's list).
 * @module
 */

/**
 * The `k` most probable classes of `logits` (one image's row), best first, with their softmax
 * probabilities (computed stably, from the largest logit).
 *
 * @example
 * ```ts
 * import { topK } from "./top_k.ts";
 * topK(Float32Array.of(0, 2, 1), 2).map((c) => c.index); // [1, 2]
 * ```
 */
export function topK(logits: Float32Array, k: number): { index: number; p: number }[] {
  let max = -Infinity;
  for (const v of logits) max = Math.max(max, v);
  let sum = 0;
  for (const v of logits) sum += Math.exp(v - max);
  return [...logits]
    .map((v, index) => ({ index, p: Math.exp(v - max) / sum }))
    .sort((a, b) => b.p - a.p)
    .slice(0, k);
}
