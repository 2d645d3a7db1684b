/**
 * The error a pass or a backend raises to decline a program; `compile()` falls back on it.
 * @module
 */

/**
 * A backend cannot take a program (too large for the device, or a kernel it cannot express).
 * `compile()` catches it and falls back to a CPU backend, recording `reason`.
 *
 * @example
 * ```ts
 * import { BackendRejection } from "./rejection.ts";
 * new BackendRejection("webgpu", "output needs 3 GiB").message;
 * ```
 */
export class BackendRejection extends Error {
  /** The backend that declined. */
  readonly backend: string;
  /** Why, in words, with the fix when there is one. */
  readonly reason: string;
  /** Whether a smaller batch would fit (so the batch can be split). */
  readonly sizeBound: boolean;
  /** Builds the message from the backend and the reason. */
  constructor(backend: string, reason: string, sizeBound = false) {
    super(`${backend}: ${reason}`);
    this.name = "BackendRejection";
    this.backend = backend;
    this.reason = reason;
    this.sizeBound = sizeBound;
  }
}
