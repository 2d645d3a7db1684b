/**
 * `mul`: elementwise product `x * y` with broadcasting, exactly `torch.mul`; `y` may be a number.
 * @module
 */

import { type BinaryAttrs, binaryOp } from "./binary.ts";
import type { OpDef } from "./op.ts";

/**
 * The runtime rule and reference semantics of `mul`.
 *
 * @example
 * ```ts
 * import { mulOp } from "./mul.ts";
 * mulOp.inferShape([["B", 197, 768], [768]], {}, "mul"); // ["B", 197, 768]
 * ```
 */
export const mulOp: OpDef<BinaryAttrs> = binaryOp("mul", (a, b) => a * b);
