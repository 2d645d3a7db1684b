/**
 * `sub`: elementwise difference `x - y` with broadcasting, exactly `torch.sub`; `y` may be a number.
 * @module
 */

import { type BinaryAttrs, binaryOp } from "./binary.ts";
import type { OpDef } from "./op.ts";

/**
 * The runtime rule and reference semantics of `sub`.
 *
 * @example
 * ```ts
 * import { subOp } from "./sub.ts";
 * subOp.inferShape([["B", 197, 768], [768]], {}, "sub"); // ["B", 197, 768]
 * ```
 */
export const subOp: OpDef<BinaryAttrs> = binaryOp("sub", (a, b) => a - b);
