/**
 * `add`: elementwise sum with broadcasting, exactly `torch.add` (how the positional
 * embedding `[1, N+1, D]` is added to `[B, N+1, D]`); `y` may be a number.
 * @module
 */

import { type BinaryAttrs, binaryOp } from "./binary.ts";
import type { OpDef } from "./op.ts";

export type { BroadcastCheck, BroadcastShape } from "./broadcast.ts";

/**
 * The runtime rule and reference semantics of `add`.
 *
 * @example
 * ```ts
 * import { addOp } from "./add.ts";
 * addOp.inferShape([["B", 197, 768], [1, 197, 768]], {}, "pos"); // ["B", 197, 768]
 * ```
 */
export const addOp: OpDef<BinaryAttrs> = binaryOp("add", (a, b) => a + b);
