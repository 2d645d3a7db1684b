/**
 * The WebAssembly memory plan of the `wasm` backend: where each contraction's packed weights,
 * offset tables, staging windows and product tiles live, and the micro-kernel module over it.
 * @module
 */

import { BackendRejection } from "./backend.ts";
import type { Contraction } from "../passes/contraction.ts";
import type { SharedModule } from "./js_threads.ts";
import type { Program } from "../ir/program.ts";
import { numel } from "../../graph/tensor_data.ts";
import {
  type ContractionLayout,
  operandTables,
  packWeights,
  productRows,
  tileOuterFor,
} from "../render/js/contraction.ts";
import { GEMM_TILE, gemmModule } from "../render/wasm/gemm_kernel.ts";

// The smallest micro-kernel, compiled only to ask the engine which instructions it validates.
const PROBE = { n: 8, runs: 1, runLength: 16, runStride: 1 };

/**
 * Why this engine cannot run the `wasm` backend (no WebAssembly or no SIMD), or null when it can.
 * Shared memory is not needed: without it the backend runs on one thread.
 *
 * @example
 * ```ts
 * import { wasmMissing } from "./wasm_plan.ts";
 * wasmMissing(); // null in Deno
 * ```
 */
export function wasmMissing(): string | null {
  if (typeof WebAssembly !== "object") return "this runtime has no WebAssembly";
  if (!WebAssembly.validate(withMemory(gemmModule([{ ...PROBE, fma: false }], 1), false))) {
    return "this runtime has no WebAssembly SIMD";
  }
  return null;
}

// Reads an unsigned LEB128 at `at`: its value and the offset after it.
function leb(bytes: Uint8Array, at: number): [number, number] {
  let value = 0;
  let shift = 0;
  for (;;) {
    const b = bytes[at++];
    value += (b & 0x7f) * 2 ** shift;
    shift += 7;
    if (!(b & 0x80)) return [value, at];
  }
}

/**
 * `module` (from `gemmModule`, which imports one shared memory) as it must be for a memory that
 * is `shared` or not: a non-shared memory needs the import's limits flag 3 (shared, maximum)
 * turned into 1 (maximum), or instantiation fails; every other byte stays.
 *
 * @example
 * ```ts
 * import { withMemory } from "./wasm_plan.ts";
 * import { gemmModule } from "../render/wasm/gemm_kernel.ts";
 * const bytes = withMemory(gemmModule([{ n: 8, runs: 1, runLength: 16, runStride: 1, fma: false }], 1), false);
 * WebAssembly.validate(bytes); // true
 * ```
 */
export function withMemory(
  module: Uint8Array<ArrayBuffer>,
  shared: boolean,
): Uint8Array<ArrayBuffer> {
  if (shared) return module;
  const out = module.slice();
  // Sections after the 8-byte header: an id byte, then the size; the import section is id 2.
  for (let at = 8; at < out.length;) {
    const [size, body] = leb(out, at + 1);
    if (out[at] !== 2) {
      at = body + size;
      continue;
    }
    // The encoder's one import is its memory: module name, field name, kind 2, limits flag.
    const [count, entry] = leb(out, body);
    const [moduleName, afterModule] = leb(out, entry);
    const [field, afterField] = leb(out, afterModule + moduleName);
    const kind = afterField + field;
    if (count !== 1 || out[kind] !== 0x02) break;
    if (out[kind + 1] === 0x03) out[kind + 1] = 0x01;
    return out;
  }
  throw new Error("wasm backend: the micro-kernel module has no memory import to unshare");
}

const PAGE = 65536;
/** wasm32 addresses 4 GiB. */
const MAX_PAGES = 65536;
const align = (n: number, to: number): number => Math.ceil(n / to) * to;

/**
 * The WebAssembly side of a `wasm` program: the module, its memory and each kernel's layout.
 *
 * @example
 * ```ts
 * import type { WasmPlan } from "./wasm_plan.ts";
 * function heapBytes(p: WasmPlan): number {
 *   return p.bytes;
 * }
 * ```
 */
export interface WasmPlan {
  /** The module and its memory (shared unless the runtime has no shared memory). */
  readonly shared: SharedModule;
  /** Per kernel: where its contraction lives, or undefined for loop-nest kernels. */
  readonly layouts: readonly (ContractionLayout | undefined)[];
  /** Whether the micro-kernels use `f32x4.relaxed_madd`. */
  readonly fma: boolean;
  /** WebAssembly memory size. */
  readonly bytes: number;
}

/**
 * Lays out WebAssembly memory for the contractions (packed weights, offset tables, per-thread
 * staging windows and product tiles), writes the constant parts, and compiles one micro-kernel
 * per contraction. A contraction whose rows all fall outside its activation is dropped (its
 * layout is undefined) and stays a loop nest. The memory is shared (for workers) unless
 * `shared` is false, for runtimes without shared memory.
 *
 * @example
 * ```ts
 * import { planWasm } from "./wasm_plan.ts";
 * typeof planWasm; // "function"
 * ```
 */
export function planWasm(
  program: Program,
  candidates: readonly (Contraction | undefined)[],
  threads: number,
  shared = true,
): WasmPlan {
  const { mr } = GEMM_TILE;
  // Engines without relaxed SIMD get a separate multiply and add.
  const fma = WebAssembly.validate(withMemory(gemmModule([{ ...PROBE, fma: true }], 1), shared));
  const tileOuter = candidates.map((c) => (c ? tileOuterFor(c, mr) : 0));
  const tables = candidates.map((c, i) => {
    const activation = c && program.buffers.get(c.operand.buffer);
    return c && activation && operandTables(c, numel(activation.shape), tileOuter[i], mr);
  });
  const contractions = candidates.map((c, i) => (tables[i] ? c : undefined));
  let cursor = 0;
  const take = (bytes: number): number => {
    const at = cursor;
    cursor = align(cursor + bytes, 64);
    return at;
  };
  const placed = contractions.map((c, i) => {
    const t = tables[i];
    if (!c || !t) return undefined;
    const tiles = align(t.window * 4, 64) +
      align(productRows(c, tileOuter[i], mr) * c.nPadded * 4, 64);
    // Weights packed at run time live in each thread's scratch, after its window and tile.
    const packedBytes = c.k * c.nPadded * 4;
    return {
      weights: c.runtimeWeights ? tiles : take(packedBytes),
      rowOffsets: take(t.rowOffsets.byteLength),
      kOffsets: take(t.kOffsets.byteLength),
      regions: take(2 * t.regionLo.byteLength),
      scratchBytes: tiles + (c.runtimeWeights ? packedBytes : 0),
    };
  });
  const scratch = cursor;
  const stride = align(Math.max(0, ...placed.map((p) => p?.scratchBytes ?? 0)), 64);
  const pages = Math.max(1, Math.ceil((scratch + stride * threads) / PAGE));
  if (pages > MAX_PAGES) {
    throw new BackendRejection(
      "wasm",
      `packed weights, offset tables and staging need ${pages * PAGE} bytes of WebAssembly ` +
        `memory, over its 4 GiB limit; use a smaller batch or the js backend`,
      true,
    );
  }
  const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared });
  const heap = new Float32Array(memory.buffer);
  const ints = new Int32Array(memory.buffer);
  const found = contractions.filter((c): c is Contraction => c !== undefined);
  const module = new WebAssembly.Module(withMemory(
    gemmModule(
      found.map((c) => ({
        n: c.nPadded,
        runs: c.operand.kOffsets.length,
        runLength: c.operand.runLength,
        runStride: c.operand.runStride,
        fma,
        tile: GEMM_TILE,
      })),
      pages,
    ),
    shared,
  ));
  const layouts = contractions.map((c, i): ContractionLayout | undefined => {
    const at = placed[i];
    const t = tables[i];
    if (!c || !at || !t) return undefined;
    if (!c.runtimeWeights) packWeights(c, program, heap, at.weights / 4);
    ints.set(t.rowOffsets, at.rowOffsets / 4);
    ints.set(t.kOffsets, at.kOffsets / 4);
    ints.set(t.regionLo, at.regions / 4);
    ints.set(t.regionHi, at.regions / 4 + c.outer);
    return {
      weights: at.weights,
      rowOffsets: at.rowOffsets,
      kOffsets: at.kOffsets,
      regions: at.regions,
      window: t.window,
      scratch,
      scratchStride: stride,
      tileOuter: tileOuter[i],
      gemm: `gemm${found.indexOf(c)}`,
      tile: GEMM_TILE,
    };
  });
  return { shared: { module, memory }, layouts, fma, bytes: pages * PAGE };
}

/**
 * The `explain()` words for a contraction on the micro-kernel.
 *
 * @example
 * ```ts
 * import { contractionNote } from "./wasm_plan.ts";
 * typeof contractionNote; // "function"
 * ```
 */
export function contractionNote(c: Contraction, layout: ContractionLayout, fma: boolean): string {
  const { mr, nr } = layout.tile;
  const batched = c.runtimeWeights
    ? `, ${c.batches} batch${c.batches === 1 ? "" : "es"} of B packed at run time from ${
      c.weights.reads.join(", ")
    }`
    : "";
  return `matrix multiply ${c.m}x${c.k} by ${c.k}x${c.n} on WASM SIMD (${mr}x${nr} register ` +
    `tile, ${fma ? "fused multiply-add" : "multiply + add"}, ${
      layout.tileOuter * c.inner
    }-row tiles${batched}), rows split`;
}
