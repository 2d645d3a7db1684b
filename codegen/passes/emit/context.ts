/**
 * What an op emitter sees: the value of any node at a symbolic index, shapes, fresh reduction
 * variables, and index helpers. Emitters turn one node into a `VExpr` at an output index; view
 * ops only remap the index, so they never become kernels of their own.
 * @module
 */

import { constant, type Lin, lin, type Ranges, type VExpr } from "../../ir/expr.ts";

/**
 * The lowering context handed to every op emitter.
 *
 * @example
 * ```ts
 * import type { EmitContext } from "./context.ts";
 * function firstElement(ctx: EmitContext, input: number): unknown {
 *   return ctx.value(input, ctx.shape(input).map(() => ctx.constant(0)));
 * }
 * ```
 */
export interface EmitContext {
  /** The value of node `id` at multi-index `index`: inlined, or a load if materialized. */
  value(id: number, index: readonly Lin[]): VExpr;
  /** The concrete shape of node `id`. */
  shape(id: number): readonly number[];
  /** A new reduction variable with range `[0, extent)`. */
  fresh(prefix: string, extent: number): Lin & { readonly name: string };
  /** Variable ranges in scope (reduction variables included once created). */
  readonly ranges: Ranges;
  /** A constant index. */
  constant(c: number): Lin;
  /** Registers a compile-time constant buffer (e.g. resize weights) and returns its name. */
  addConstant(hint: string, shape: readonly number[], data: Float32Array): string;
}

/**
 * Row-major flat index of a multi-index.
 *
 * @example
 * ```ts
 * import { flatIndex } from "./context.ts";
 * import { variable } from "../../ir/expr.ts";
 * flatIndex([variable("t"), variable("d")], [197, 768]); // t*768 + d
 * ```
 */
export function flatIndex(index: readonly Lin[], shape: readonly number[]): Lin {
  let flat = constant(0);
  let stride = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    flat = lin.add(flat, lin.scale(index[i], stride));
    stride *= shape[i];
  }
  return flat;
}

/**
 * Splits a flat index back into a multi-index for `shape` (the inverse of `flatIndex`).
 *
 * @example
 * ```ts
 * import { unflatten } from "./context.ts";
 * import { variable } from "../../ir/expr.ts";
 * unflatten(variable("x"), [196, 3], new Map([["x", [0, 587]]])); // [x/3, x%3]
 * ```
 */
export function unflatten(flat: Lin, shape: readonly number[], ranges: Ranges): Lin[] {
  const out: Lin[] = new Array(shape.length);
  let stride = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    const q = lin.div(flat, stride, ranges);
    out[i] = i === 0 ? q : lin.mod(q, shape[i], ranges);
    stride *= shape[i];
  }
  return out;
}

/**
 * The index into a broadcast source of shape `src` for an output index (size-1 dims read 0).
 *
 * @example
 * ```ts
 * import { broadcastIndexOf } from "./context.ts";
 * import { variable } from "../../ir/expr.ts";
 * broadcastIndexOf([variable("b"), variable("t"), variable("d")], [1, 197, 768]); // [0, t, d]
 * ```
 */
export function broadcastIndexOf(index: readonly Lin[], src: readonly number[]): Lin[] {
  const offset = index.length - src.length;
  return src.map((d, i) => (d === 1 ? constant(0) : index[i + offset]));
}
