/**
 * The contract every op file fulfils: a runtime shape rule that mirrors its type-level rule,
 * and reference semantics written for clarity. The reference is the oracle for every backend.
 * @module
 */

import type { Dim, Shape } from "../graph/shape.ts";
import type { TensorData } from "../graph/tensor_data.ts";

/**
 * One op's runtime story.
 *
 * @example
 * ```ts
 * import type { OpDef } from "./op.ts";
 * const identity: OpDef<Record<string, never>> = {
 *   kind: "identity",
 *   inferShape: (inputs) => [...inputs[0]],
 *   evaluate: (inputs) => inputs[0].data.slice(),
 * };
 * ```
 */
export interface OpDef<A> {
  /** The op's name in the IR. */
  readonly kind: string;
  /** Output shape from input shapes; throws `ShapeError` naming `node` when they do not fit. */
  inferShape(inputs: readonly Shape[], attrs: A, node: string): Dim[];
  /** Reference semantics on concrete host tensors; returns the row-major output. */
  evaluate(inputs: readonly TensorData[], attrs: A, outShape: readonly number[]): Float32Array;
}
