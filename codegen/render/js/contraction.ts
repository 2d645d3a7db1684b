/**
 * Renders a `Contraction` for the `wasm` backend: the tables its micro-kernel reads A through,
 * and a kernel factory (see `KernelPool`) whose kernel walks its outer indices in tiles small
 * enough that a tile's rows of A stay in a core's L2 cache. Per tile it copies the window of the
 * activation buffer the tile reads into the thread's staging area in WebAssembly memory (one
 * `TypedArray.set`, reused by the following tiles while they fit), runs the micro-kernel, and
 * runs the epilogue loop nest back into the output. It also packs the weights into the
 * micro-kernel's panel layout once, at compile time.
 * @module
 */

import {
  BATCH_VAR,
  type Contraction,
  type GemmTile,
  PRODUCT_BUFFER,
  TILE_VAR,
} from "../../passes/contraction.ts";
import { linSource } from "../../ir/expr.ts";
import type { Program } from "../../ir/program.ts";
import { renderJsKernel } from "./loop_nest.ts";

/**
 * Cache budget for one tile's rows of A and of the product, which every weight panel reuses.
 * Standard tokenizer, B=32, img/s: 96 KiB 481-491, 192 KiB 486-488, 384 KiB 491-494 (noise);
 * 192 KiB sits inside a core's L2.
 */
const TILE_BYTES = 192 * 1024;

/** At least this much of the activation buffer is staged at a time (1 MiB). */
const WINDOW_ELEMENTS = 256 * 1024;

/**
 * Outer indices per tile (see `Contraction.outer`): as many rows as fit the cache budget, at
 * least one outer index, and a multiple of `mr` rows when each outer index is one row.
 *
 * @example
 * ```ts
 * import { tileOuterFor } from "./contraction.ts";
 * tileOuterFor({ k: 768, nPadded: 768, inner: 1 }, 5); // 30
 * tileOuterFor({ k: 768, nPadded: 8, inner: 196 }, 5); // 1
 * ```
 */
export function tileOuterFor(
  c: Pick<Contraction, "k" | "nPadded" | "inner">,
  mr: number,
): number {
  const rows = Math.floor(TILE_BYTES / 4 / (c.k + c.nPadded));
  if (c.inner === 1) return Math.max(mr, Math.min(256, Math.floor(rows / mr) * mr));
  return Math.max(1, Math.floor(rows / c.inner));
}

/** Where A's rows and reduction runs start, and which part of the activation each tile reads. */
export interface OperandTables {
  /** Byte offset of each row in the activation buffer, then `mr` copies of the last. */
  readonly rowOffsets: Int32Array;
  /** Byte offset of each reduction run within a row. */
  readonly kOffsets: Int32Array;
  /** Per tile start (outer index): first element of the activation the tile reads. */
  readonly regionLo: Int32Array;
  /** Per tile start: one past the last element it reads. */
  readonly regionHi: Int32Array;
  /** Elements of activation a thread stages at a time. */
  readonly window: number;
}

/**
 * Evaluates `c.operand` over every row. Rows whose reads would leave the activation buffer
 * (rows an epilogue select discards, such as a class-token row) borrow a neighbour's offset, so
 * the micro-kernel never reads outside what is staged. Undefined when no row is in bounds.
 *
 * @example
 * ```ts
 * import { operandTables } from "./contraction.ts";
 * typeof operandTables; // "function"
 * ```
 */
export function operandTables(
  c: Contraction,
  activationLength: number,
  tileOuter: number,
  mr: number,
): OperandTables | undefined {
  const { operand } = c;
  const innerShape = c.kernel.shape.slice(c.axis + 1);
  const vars = ["i0", ...innerShape.map((_, j) => `i${j + 1}`)];
  const rowOf = new Function(...vars, `return ${linSource(operand.rowIndex)};`) as (
    ...i: number[]
  ) => number;
  const kMin = Math.min(...operand.kOffsets);
  const kMax = Math.max(...operand.kOffsets) + (operand.runLength - 1) * operand.runStride;
  const rows = new Float64Array(c.m + mr);
  const valid = new Uint8Array(c.m);
  const coords = new Array<number>(vars.length).fill(0);
  for (let r = 0; r < c.m; r++) {
    let rest = r % c.inner;
    coords[0] = Math.floor(r / c.inner);
    for (let j = innerShape.length - 1; j >= 0; j--) {
      coords[j + 1] = rest % innerShape[j];
      rest = Math.floor(rest / innerShape[j]);
    }
    rows[r] = rowOf(...coords);
    valid[r] = rows[r] + kMin >= 0 && rows[r] + kMax < activationLength ? 1 : 0;
  }
  // Invalid rows take the next valid row's offset (the same image's first patch for a class
  // token); rows after the last valid one take that one's.
  const last = valid.lastIndexOf(1);
  if (last < 0) return undefined;
  let borrowed = rows[last];
  for (let r = c.m - 1; r >= 0; r--) {
    if (valid[r]) borrowed = rows[r];
    else rows[r] = borrowed;
  }
  for (let r = c.m; r < c.m + mr; r++) rows[r] = rows[c.m - 1];
  const regionLo = new Int32Array(c.outer);
  const regionHi = new Int32Array(c.outer);
  let widest = 0;
  for (let s = 0; s < c.outer; s++) {
    const end = Math.min(c.m, (s + tileOuter) * c.inner) + mr;
    let lo = Infinity;
    let hi = -Infinity;
    for (let r = s * c.inner; r < end; r++) {
      lo = Math.min(lo, rows[r]);
      hi = Math.max(hi, rows[r]);
    }
    regionLo[s] = lo + kMin;
    regionHi[s] = hi + kMax + 1;
    widest = Math.max(widest, regionHi[s] - regionLo[s]);
  }
  return {
    rowOffsets: Int32Array.from(rows, (x) => 4 * x),
    kOffsets: Int32Array.from(operand.kOffsets, (x) => 4 * x),
    regionLo,
    regionHi,
    window: Math.min(activationLength, Math.max(widest, WINDOW_ELEMENTS)),
  };
}

/** Where a contraction's data lives in WebAssembly memory (byte addresses). */
export interface ContractionLayout {
  /**
   * The packed weights; for weights packed at run time (`runtimeWeights`), their offset within
   * each thread's scratch, after the staging window and the product tile.
   */
  readonly weights: number;
  /** `OperandTables.rowOffsets`. */
  readonly rowOffsets: number;
  /** `OperandTables.kOffsets`. */
  readonly kOffsets: number;
  /** `OperandTables.regionLo`, then `regionHi` right after it. */
  readonly regions: number;
  /** Elements staged at a time. */
  readonly window: number;
  /** Thread 0's scratch (staging window, then product tile); thread t's is `t * scratchStride` later. */
  readonly scratch: number;
  /** Bytes between consecutive threads' scratch. */
  readonly scratchStride: number;
  /** Outer indices per tile (`tileOuterFor`). */
  readonly tileOuter: number;
  /** The micro-kernel's export name. */
  readonly gemm: string;
  /** The register tile the micro-kernel was generated for. */
  readonly tile: GemmTile;
}

/**
 * Rows of the product tile, padded to the register tile.
 *
 * @example
 * ```ts
 * import { productRows } from "./contraction.ts";
 * productRows({ inner: 196 }, 1, 5); // 200
 * ```
 */
export function productRows(c: Pick<Contraction, "inner">, tileOuter: number, mr: number): number {
  return Math.ceil((tileOuter * c.inner) / mr) * mr;
}

/**
 * The factory source (for `KernelPool`) that runs `c` over outer indices `[lo, hi)`, and the
 * buffers its kernel takes after `out`.
 *
 * @example
 * ```ts
 * import { renderContraction } from "./contraction.ts";
 * typeof renderContraction; // "function"
 * ```
 */
export function renderContraction(
  c: Contraction,
  layout: ContractionLayout,
  options: { readonly vectorMath?: boolean } = {},
): { source: string; args: string[] } {
  const epilogue = renderJsKernel(c.epilogue, 0, [TILE_VAR], options);
  const args = contractionArgs(c, epilogue.args);
  const param = new Map(args.map((a, i) => [a, `buf${i}`]));
  const epilogueArgs = epilogue.args.map((a) => param.get(a) ?? "product");
  const { mr, nr } = layout.tile;
  const rows = productRows(c, layout.tileOuter, mr);
  const outPerOuter = c.n * c.inner;
  const x = param.get(c.operand.buffer) as string;
  const perBatch = c.outer / c.batches;
  const pack = c.runtimeWeights ? renderJsKernel(c.weights, 0, [BATCH_VAR]) : undefined;
  const packArgs = pack?.args.map((a) => param.get(a) as string) ?? [];
  const source = [
    `// ${layout.gemm}: WASM SIMD micro-kernel, ${mr}x${nr} register tile; C[rows, ${c.nPadded}] = ` +
    `A[rows, ${c.k}] x B, A read as ${c.operand.kOffsets.length} runs of ${c.operand.runLength} ` +
    `(stride ${c.operand.runStride}) from ${c.operand.buffer}, B in ${
      c.nPadded / nr
    } panels of ${nr} columns`,
    `const heap = rt.heap;`,
    `const ints = new Int32Array(heap.buffer);`,
    `const gemm = rt.exports.${layout.gemm};`,
    `const s = ${layout.scratch} + rt.thread * ${layout.scratchStride};`,
    `const p = s + ${layout.window * 4};`,
    `const staging = heap.subarray(s / 4, s / 4 + ${layout.window});`,
    ...(pack
      ? [
        `const w = s + ${layout.weights};`,
        `const packed = heap.subarray(w / 4, w / 4 + ${c.k * c.nPadded});`,
        `// B from ${c.weights.reads.join(", ")}, packed per batch index at run time.`,
        `const pack = function (${
          ["out", "lo", "hi", ...pack.args.map((_, i) => `buf${i}`), BATCH_VAR].join(", ")
        }) {\n${indent(pack.body)}\n};`,
      ]
      : [`const w = ${layout.weights};`]),
    `const product = heap.subarray(p / 4, p / 4 + ${rows * c.nPadded});`,
    `const regionLo = ints.subarray(${layout.regions / 4}, ${layout.regions / 4 + c.outer});`,
    `const regionHi = ints.subarray(${layout.regions / 4 + c.outer}, ${
      layout.regions / 4 + 2 * c.outer
    });`,
    ...renderRecompute(c, layout, "p"),
    `const epilogue = function (${
      ["out", "lo", "hi", ...epilogue.args.map((_, i) => `buf${i}`), TILE_VAR].join(", ")
    }) {\n${indent(epilogue.body)}\n};`,
    `return function (out, lo, hi, ${args.map((a) => param.get(a)).join(", ")}) {`,
    `  let windowLo = 0, windowHi = -1, packedBatch = -1;`,
    `  for (let ${TILE_VAR} = lo; ${TILE_VAR} < hi;) {`,
    ...(pack
      ? [
        // A tile stays within one batch index: the rows of another read another B.
        `    const ${BATCH_VAR} = Math.floor(${TILE_VAR} / ${perBatch});`,
        `    const t = Math.min(${layout.tileOuter}, hi - ${TILE_VAR}, (${BATCH_VAR} + 1) * ${perBatch} - ${TILE_VAR});`,
        `    if (${BATCH_VAR} !== packedBatch) {`,
        `      pack(packed, 0, ${c.weights.shape[0]}, ${[...packArgs, BATCH_VAR].join(", ")});`,
        `      packedBatch = ${BATCH_VAR};`,
        `    }`,
      ]
      : [`    const t = Math.min(${layout.tileOuter}, hi - ${TILE_VAR});`]),
    `    if (regionLo[${TILE_VAR}] < windowLo || regionHi[${TILE_VAR}] > windowHi) {`,
    `      windowLo = regionLo[${TILE_VAR}];`,
    `      windowHi = Math.min(${x}.length, windowLo + ${layout.window});`,
    `      staging.set(${x}.subarray(windowLo, windowHi));`,
    `    }`,
    `    if (gemm(s - 4 * windowLo, ${layout.rowOffsets} + 4 * ${c.inner} * ${TILE_VAR}, ${layout.kOffsets}, w, p, Math.ceil((t * ${c.inner}) / ${mr}) * ${mr})) {`,
    `      recompute(s - 4 * windowLo, ${c.inner} * ${TILE_VAR}, t * ${c.inner});`,
    `    }`,
    `    epilogue(out.subarray(${TILE_VAR} * ${outPerOuter}, (${TILE_VAR} + t) * ${outPerOuter}), 0, t, ${
      epilogueArgs.join(", ")
    }, ${TILE_VAR});`,
    `    ${TILE_VAR} += t;`,
    `  }`,
    `};`,
  ].join("\n");
  return { source, args };
}

// `recompute(xBase, row0, rows)`: the products of the tile's rows that are ±Inf or NaN, summed
// again in float64 from the staged activation and the packed weights. The micro-kernel's f32
// sums overflow where the exact sum need not (`3e38 * 4 + 3e38 * -4` is 0, the reference's value).
function renderRecompute(c: Contraction, layout: ContractionLayout, product: string): string[] {
  const { nr } = layout.tile;
  const { runLength, runStride, kOffsets } = c.operand;
  return [
    `const recompute = function (xBase, row0, rows) {`,
    `  for (let r = 0; r < rows; r++) {`,
    `    const at = ${product} / 4 + r * ${c.nPadded};`,
    `    const row = xBase + ints[${layout.rowOffsets / 4} + row0 + r];`,
    `    for (let col = 0; col < ${c.n}; col++) {`,
    `      const value = heap[at + col];`,
    `      if (value - value === 0) continue;`,
    `      const wAt = w / 4 + (col / ${nr} | 0) * ${c.k * nr} + col % ${nr};`,
    `      let acc = 0;`,
    `      for (let j = 0; j < ${kOffsets.length}; j++) {`,
    `        const a = (row + ints[${layout.kOffsets / 4} + j]) / 4;`,
    `        const b = wAt + j * ${runLength * nr};`,
    `        for (let l = 0; l < ${runLength}; l++) {`,
    `          acc += heap[a + l * ${runStride}] * heap[b + l * ${nr}];`,
    `        }`,
    `      }`,
    `      heap[at + col] = acc;`,
    `    }`,
    `  }`,
    `};`,
  ];
}

function indent(body: string): string {
  return body.split("\n").map((l) => "  " + l).join("\n");
}

/**
 * The buffers a contraction kernel takes after `out`: the activation, what `also` reads (its
 * epilogue), and B's sources when B is packed at run time. Compile-time weights are not among
 * them: they live packed (in WebAssembly memory, or row-major for BLAS), so the kernel's buffer
 * set does not hold a second copy of them.
 *
 * @example
 * ```ts
 * import { contractionArgs } from "./contraction.ts";
 * typeof contractionArgs; // "function"
 * ```
 */
export function contractionArgs(c: Contraction, also: readonly string[]): string[] {
  const names = new Set([c.operand.buffer, ...also.filter((a) => a !== PRODUCT_BUFFER)]);
  if (c.runtimeWeights) { for (const r of c.weights.reads) names.add(r); }
  return [...names].sort();
}

/**
 * Evaluates `c.weights` (the panel-packed weights) into `heap` from float index `at`.
 *
 * @example
 * ```ts
 * import { packWeights } from "./contraction.ts";
 * typeof packWeights; // "function"
 * ```
 */
export function packWeights(
  c: Contraction,
  program: Program,
  heap: Float32Array,
  at: number,
): void {
  const r = renderJsKernel(c.weights);
  const bufs = r.args.map((name) => program.buffers.get(name)?.data as Float32Array);
  new Function("out", "lo", "hi", ...bufs.map((_, i) => `buf${i}`), r.body)(
    heap.subarray(at, at + c.k * c.nPadded),
    0,
    c.weights.shape[0],
    ...bufs,
  );
}
