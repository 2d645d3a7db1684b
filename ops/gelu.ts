/**
 * `gelu`: `torch.nn.functional.gelu(x, approximate)`. Exact: `x/2 * (1 + erf(x/√2))`; `"tanh"`:
 * `x/2 * (1 + tanh(√(2/π) (x + 0.044715 x³)))`. JavaScript (and WGSL) have no `erf`, so this file
 * defines the float32 approximation every backend is to use (its error is measured in
 * tests/encoder_ops_test.ts).
 * @module
 */

import type { ShapeErrorType } from "../graph/shape_types.ts";
import { type Dim, type Shape, ShapeError } from "../graph/shape.ts";
import type { OpDef } from "./op.ts";

/**
 * The GELU variants, named as in PyTorch.
 *
 * @example
 * ```ts
 * import type { GeluApproximate } from "./gelu.ts";
 * const a: GeluApproximate = "tanh";
 * ```
 */
export type GeluApproximate = "none" | "tanh";

/**
 * Options a user passes to `g.gelu`.
 *
 * @example
 * ```ts
 * import type { GeluOptions } from "./gelu.ts";
 * const o: GeluOptions = { approximate: "tanh" };
 * ```
 */
export interface GeluOptions {
  /** `"none"` (the default) uses erf, `"tanh"` the tanh approximation. */
  readonly approximate?: string;
}

/**
 * The IR attributes of a gelu node.
 *
 * @example
 * ```ts
 * import type { GeluAttrs } from "./gelu.ts";
 * const a: GeluAttrs = { approximate: "none" };
 * ```
 */
export interface GeluAttrs {
  /** Which formula. */
  readonly approximate: GeluApproximate;
}

/**
 * The compile-time check of `gelu`'s options: `approximate` is `"none"` or `"tanh"`.
 *
 * @example
 * ```ts
 * import type { GeluCheck } from "./gelu.ts";
 * type E = GeluCheck<{ approximate: "fast" }>;
 * // 'gelu: approximate must be "none" or "tanh", got "fast"'
 * ```
 */
export type GeluCheck<O extends GeluOptions> = O["approximate"] extends GeluApproximate | undefined
  ? unknown
  : ShapeErrorType<
    `gelu: approximate must be "none" or "tanh", got "${O["approximate"] & string}"`
  >;

/**
 * `erf(x) = 2/√π Σ (-1)^n x^(2n+1) / (n! (2n+1))`: the Taylor coefficients of `erf(x)/x` in
 * powers of `x²`, used for `|x| < 0.5`, where the first dropped term is below 5e-10.
 *
 * @example
 * ```ts
 * import { ERF_SERIES } from "./gelu.ts";
 * ERF_SERIES.length; // 7
 * ```
 */
export const ERF_SERIES: readonly number[] = [
  1,
  -1 / 3,
  1 / 10,
  -1 / 42,
  1 / 216,
  -1 / 1320,
  1 / 9360,
]
  .map((c) => (c * 2) / Math.sqrt(Math.PI));

/**
 * Abramowitz and Stegun 7.1.26 (Hastings): `erf(x) = 1 - t (a1 + t (a2 + ... a5)) e^(-x²)` with
 * `t = 1 / (1 + p x)`, for `x >= 0`; error below 1.5e-7. Here `[p, a1, a2, a3, a4, a5]`.
 *
 * @example
 * ```ts
 * import { ERF_TAIL } from "./gelu.ts";
 * ERF_TAIL[0]; // 0.3275911
 * ```
 */
export const ERF_TAIL: readonly number[] = [
  0.3275911,
  0.254829592,
  -0.284496736,
  1.421413741,
  -1.453152027,
  1.061405429,
];

/**
 * The error function, to float32 accuracy (max abs error about 1.5e-7): the series near 0
 * (where it also keeps the relative error small), Abramowitz and Stegun 7.1.26 beyond.
 *
 * @example
 * ```ts
 * import { erf } from "./gelu.ts";
 * erf(0.5); // 0.5204998...
 * ```
 */
export function erf(x: number): number {
  const a = Math.abs(x);
  if (a < 0.5) {
    const z = x * x;
    let p = ERF_SERIES[ERF_SERIES.length - 1];
    for (let i = ERF_SERIES.length - 2; i >= 0; i--) p = p * z + ERF_SERIES[i];
    return x * p;
  }
  const [p, ...c] = ERF_TAIL;
  const t = 1 / (1 + p * a);
  let poly = c[c.length - 1];
  for (let i = c.length - 2; i >= 0; i--) poly = poly * t + c[i];
  const y = 1 - t * poly * Math.exp(-a * a);
  return x < 0 ? -y : y;
}

/**
 * GELU of one value, either formula.
 *
 * @example
 * ```ts
 * import { gelu } from "./gelu.ts";
 * gelu(1, "none"); // 0.8413447...
 * ```
 */
export function gelu(x: number, approximate: GeluApproximate): number {
  if (approximate === "tanh") {
    const inner = Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x);
    return 0.5 * x * (1 + Math.tanh(inner));
  }
  return 0.5 * x * (1 + erf(x * Math.SQRT1_2));
}

/**
 * The runtime rule and reference semantics of `gelu`.
 *
 * @example
 * ```ts
 * import { geluOp } from "./gelu.ts";
 * geluOp.inferShape([["B", 197, 3072]], { approximate: "none" }, "act"); // ["B", 197, 3072]
 * ```
 */
export const geluOp: OpDef<GeluAttrs> = {
  kind: "gelu",
  inferShape(inputs: readonly Shape[], attrs: GeluAttrs, node: string): Dim[] {
    if (attrs.approximate !== "none" && attrs.approximate !== "tanh") {
      throw new ShapeError(
        "gelu",
        node,
        inputs,
        `approximate must be "none" or "tanh", got ${JSON.stringify(attrs.approximate)}`,
      );
    }
    return [...inputs[0]];
  },
  evaluate(inputs, attrs): Float32Array {
    const x = inputs[0].data;
    const out = new Float32Array(x.length);
    for (let i = 0; i < x.length; i++) out[i] = gelu(x[i], attrs.approximate);
    return out;
  },
};
