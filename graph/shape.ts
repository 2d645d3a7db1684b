/**
 * Runtime shapes: dims, the `ShapeError` every shape rule throws, and dim arithmetic that
 * keeps symbolic dims (such as `"B"`) symbolic until a graph is specialized to real sizes.
 * @module
 */

import { evaluateDim, parseDimFault } from "./dim_expr.ts";

/**
 * One dim: a concrete size, or a symbolic name such as `"B"` that is bound when the graph runs.
 * Ops derive expressions of names such as `"B*3"`, `"N+1"` or `"H/16"` (see `dim_expr.ts`).
 *
 * @example
 * ```ts
 * import type { Dim } from "./shape.ts";
 * const batch: Dim = "B";
 * const height: Dim = 224;
 * ```
 */
export type Dim = number | string;

/**
 * A shape: dims outermost first.
 *
 * @example
 * ```ts
 * import type { Shape } from "./shape.ts";
 * const image: Shape = ["B", 3, 224, 224];
 * ```
 */
export type Shape = readonly Dim[];

/**
 * Thrown by every runtime shape rule. It names the op, the node and the shapes involved, so a
 * JS caller or a graph built from a weights file gets the same diagnosis the type checker gives.
 *
 * @example
 * ```ts
 * import { ShapeError } from "./shape.ts";
 * const err = new ShapeError("reshape", "reshape_3", [[1, 3, 196]], "588 elements cannot become [1, 196, 4] (784)");
 * err.message; // "reshape (node reshape_3, input [1, 3, 196]): 588 elements cannot become ..."
 * ```
 */
export class ShapeError extends Error {
  /** The op whose rule failed, e.g. `"linear"`. */
  readonly op: string;
  /** The node's name in the graph, when it is known. */
  readonly node: string;
  /** The input shapes the rule saw. */
  readonly shapes: readonly Shape[];

  /** Builds the one-line message from the op, node, input shapes and the reason. */
  constructor(op: string, node: string, shapes: readonly Shape[], reason: string) {
    const inputs = shapes.map(formatShape).join(", ");
    const plural = shapes.length === 1 ? "input" : "inputs";
    super(`${op} (node ${node}${shapes.length ? `, ${plural} ${inputs}` : ""}): ${reason}`);
    this.name = "ShapeError";
    this.op = op;
    this.node = node;
    this.shapes = shapes;
  }
}

/**
 * Formats a shape as `[B, 3, 224, 224]`.
 *
 * @example
 * ```ts
 * import { formatShape } from "./shape.ts";
 * formatShape(["B", 196, 768]); // "[B, 196, 768]"
 * ```
 */
export function formatShape(shape: Shape): string {
  return `[${shape.join(", ")}]`;
}

/**
 * Whether a dim is a concrete size.
 *
 * @example
 * ```ts
 * import { isConcrete } from "./shape.ts";
 * isConcrete(3); // true
 * isConcrete("B"); // false
 * ```
 */
export function isConcrete(d: Dim): d is number {
  return typeof d === "number";
}

/**
 * Whether a value is usable as a concrete dim: a non-negative safe integer.
 *
 * @example
 * ```ts
 * import { isValidSize } from "./shape.ts";
 * isValidSize(224); // true
 * isValidSize(-1); // false
 * ```
 */
export function isValidSize(n: unknown): n is number {
  return typeof n === "number" && Number.isSafeInteger(n) && n >= 0;
}

/**
 * Why an integer option such as a kernel size is invalid, or `undefined` when it is valid:
 * `min` 1 asks for a positive integer, 0 for a non-negative one, and above 2^53 - 1 is too
 * large. The type-level `SizeFault` gives the same text for literal options.
 *
 * @example
 * ```ts
 * import { sizeFault } from "./shape.ts";
 * sizeFault("stride", 0, 1); // "stride must be a positive integer, got 0"
 * sizeFault("padding", 1, 0); // undefined
 * ```
 */
export function sizeFault(label: string, value: unknown, min: 0 | 1): string | undefined {
  if (isValidSize(value)) {
    return value < min ? `${label} must be a positive integer, got ${value}` : undefined;
  }
  if (typeof value === "number" && /^\d+$/.test(String(value))) {
    return `${label} must be at most 2^53 - 1, got ${value}`;
  }
  const got = typeof value === "string" ? JSON.stringify(value) : String(value);
  return min === 1
    ? `${label} must be a positive integer, got ${got}`
    : `${label} must be >= 0 and an integer, got ${got}`;
}

/**
 * Why a declared dim is invalid (neither a size nor a non-empty name), or `undefined`. The
 * type-level `DimsCheck` gives the same text for literal dims.
 *
 * @example
 * ```ts
 * import { dimFault } from "./shape.ts";
 * dimFault(-3); // "dim -3 is not a size (a safe integer >= 0) or a name"
 * dimFault("B"); // undefined
 * ```
 */
export function dimFault(d: unknown): string | undefined {
  // A name that reads as a number ("3") would be taken for that size where dims are compared.
  if (typeof d === "string" && d.trim() !== "" && !Number.isNaN(Number(d))) {
    return `dim "${d}" is a number written as a name; use the size ${d}`;
  }
  const ok = typeof d === "string" ? d.length > 0 : isValidSize(d);
  if (!ok) {
    return `dim ${d === "" ? '""' : String(d)} is not a size (a safe integer >= 0) or a name`;
  }
  // Names are identifiers, so that the expressions ops derive ("N+1", "H/16") can be read back.
  if (typeof d === "string" && parseDimFault(d) !== undefined) {
    return `dim "${d}" is not a name (letters, digits, _) or an expression of names`;
  }
  return undefined;
}

/**
 * Resolves an axis that may be negative (Python style) against a rank, or returns `undefined`
 * when it is out of range.
 *
 * @example
 * ```ts
 * import { normalizeAxis } from "./shape.ts";
 * normalizeAxis(-1, 4); // 3
 * normalizeAxis(4, 4); // undefined
 * ```
 */
export function normalizeAxis(axis: number, rank: number): number | undefined {
  if (!Number.isInteger(axis)) return undefined;
  const a = axis < 0 ? axis + rank : axis;
  return a >= 0 && a < rank ? a : undefined;
}

/**
 * Substitutes bound symbols into a shape and evaluates the expressions ops wrote, e.g.
 * `["B*3", "N+1"]` with `{ B: 2, N: 196 }` becomes `[6, 197]`. Unbound symbols stay symbolic.
 *
 * @example
 * ```ts
 * import { bindShape } from "./shape.ts";
 * bindShape(["B", 197, 768], { B: 8 }); // [8, 197, 768]
 * ```
 */
export function bindShape(shape: Shape, bindings: Readonly<Record<string, number>>): Dim[] {
  return shape.map((d) => evaluateDim(d, bindings));
}
