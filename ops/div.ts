/**
 * `div`: elementwise true quotient `x / y` with broadcasting, exactly `torch.div`; `y` may be a number.
 * @module
 */

import { type BinaryAttrs, binaryOp } from "./binary.ts";
import type { OpDef } from "./op.ts";

/**
 * The runtime rule and reference semantics of `div`.
 *
 * @example
 * ```ts
 * import { divOp } from "./div.ts";
 * divOp.inferShape([["B", 197, 768], [768]], {}, "div"); // ["B", 197, 768]
 * ```
 */
export const divOp: OpDef<BinaryAttrs> = binaryOp("div", (a, b) => a / b);
