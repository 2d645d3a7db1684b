/**
 * Float32 buffers carved out of one WebAssembly memory, so that WebAssembly kernels address
 * every buffer of a program by its byte offset while JavaScript kernels, the BLAS and the
 * threads see ordinary `Float32Array` views. The memory never grows, so no view is ever
 * detached; it is shared when the program runs on worker threads.
 * @module
 */

/** Bytes one buffer is aligned to: a SIMD vector. */
const ALIGN = 16;
const PAGE = 65536;

/**
 * The buffers and the memory they live in.
 *
 * @example
 * ```ts
 * import { type Arena, allocateArena } from "./arena.ts";
 * const arena: Arena | undefined = allocateArena([3, 5], false);
 * arena?.views[1].byteOffset; // 16
 * ```
 */
export interface Arena {
  /** The memory every view is over. */
  readonly memory: WebAssembly.Memory;
  /** One view per requested size, in request order. */
  readonly views: readonly Float32Array[];
  /** Bytes in use (the memory is this rounded up to whole pages). */
  readonly bytes: number;
}

/**
 * Lays out `sizes` floats each, 16-byte aligned, in a fresh memory (shared when `shared`), or
 * returns undefined when they do not fit in `maxBytes` or the engine refuses the memory (the
 * caller then allocates them apart and keeps to JavaScript kernels).
 *
 * @example
 * ```ts
 * import { allocateArena } from "./arena.ts";
 * allocateArena([1 << 20], false)?.views[0].length; // 1048576
 * allocateArena([2 ** 31], false); // undefined: past the 2 GiB default
 * ```
 */
export function allocateArena(
  sizes: readonly number[],
  shared: boolean,
  maxBytes: number = 2 ** 31,
): Arena | undefined {
  const offsets: number[] = [];
  let bytes = 0;
  for (const n of sizes) {
    offsets.push(bytes);
    bytes += Math.ceil((4 * n) / ALIGN) * ALIGN;
  }
  if (bytes > maxBytes) return undefined;
  const pages = Math.max(1, Math.ceil(bytes / PAGE));
  let memory: WebAssembly.Memory;
  try {
    memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared });
  } catch {
    return undefined; // out of memory, or no shared WebAssembly memory here
  }
  const views = sizes.map((n, i) => new Float32Array(memory.buffer, offsets[i], n));
  return { memory, views, bytes };
}
