// The WASM SIMD micro-kernel on its own, against a plain triple loop (short and long runs,
// strided runs, strides past one-byte LEB immediates, with and without fused multiply-add), and
// the pieces a contraction is split into.
import assert from "node:assert/strict";
import { gemmModule } from "../codegen/render/wasm/gemm_kernel.ts";
import { findContraction, PRODUCT_BUFFER } from "../codegen/passes/contraction.ts";
import { evalLin, lin, linSource, variable } from "../codegen/ir/expr.ts";
import { operandTables, packWeights } from "../codegen/render/js/contraction.ts";
import { lowerGraph } from "../codegen/passes/lower.ts";
import { graph, initParams, patchEmbedding, specialize } from "../mod.ts";

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  };
}

// A is read through row and run tables: rows `rowStride` apart, `runs` runs of `runLength`
// elements `runStride` apart, runs `runGap` apart (a strided, conv-like layout, not packed).
function runGemm(
  shape: { n: number; rows: number; runs: number; runLength: number; runStride: number },
  fma: boolean,
  tile: { mr: number; nr: number },
): number {
  const { n, rows, runs, runLength, runStride } = shape;
  const k = runs * runLength;
  const runGap = runLength * runStride + 3;
  const rowStride = runs * runGap + 5;
  const next = lcg(k * 31 + n);
  const x = Float32Array.from({ length: rows * rowStride }, next);
  const b = Float32Array.from({ length: k * n }, next); // [k][n]
  const a = (r: number, i: number): number =>
    x[r * rowStride + Math.floor(i / runLength) * runGap + (i % runLength) * runStride];
  const xAt = 64;
  const bAt = xAt + x.byteLength;
  const cAt = bAt + b.byteLength;
  const rowsAt = cAt + rows * n * 4;
  const kAt = rowsAt + rows * 4;
  const pages = Math.ceil((kAt + runs * 4) / 65536);
  const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
  const module = new WebAssembly.Module(
    gemmModule([{ n, runs, runLength, runStride, fma, tile }], pages),
  );
  const gemm = new WebAssembly.Instance(module, { env: { memory } }).exports.gemm0 as (
    ...args: number[]
  ) => void;
  const heap = new Float32Array(memory.buffer);
  const ints = new Int32Array(memory.buffer);
  heap.set(x, xAt / 4);
  for (let r = 0; r < rows; r++) ints[rowsAt / 4 + r] = r * rowStride * 4;
  for (let t = 0; t < runs; t++) ints[kAt / 4 + t] = t * runGap * 4;
  for (let col = 0; col < n; col++) {
    for (let i = 0; i < k; i++) {
      heap[bAt / 4 + Math.floor(col / tile.nr) * k * tile.nr + i * tile.nr + (col % tile.nr)] =
        b[i * n + col];
    }
  }
  gemm(xAt, rowsAt, kAt, bAt, cAt, rows);
  let worst = 0;
  for (let r = 0; r < rows; r++) {
    for (let col = 0; col < n; col++) {
      let want = 0;
      for (let i = 0; i < k; i++) want += a(r, i) * b[i * n + col];
      worst = Math.max(worst, Math.abs(heap[cAt / 4 + r * n + col] - want));
    }
  }
  return worst;
}

Deno.test("wasm gemm: matches a triple loop over strided runs, unrolled or looped, fused or not", () => {
  const shapes = [
    { n: 8, rows: 5, runs: 1, runLength: 13, runStride: 1 }, // one short run, fully unrolled
    { n: 16, rows: 10, runs: 3, runLength: 16, runStride: 2 }, // conv-like: 3 strided runs
    { n: 24, rows: 8, runs: 2, runLength: 300, runStride: 1 }, // long runs: the 4-step loop
    { n: 8, rows: 5, runs: 1, runLength: 37, runStride: 1 }, // long, not a multiple of 4
  ];
  for (const fma of [false, true]) {
    for (const shape of shapes) {
      const tile = shape.rows % 5 === 0 ? { mr: 5, nr: 8 } : { mr: 4, nr: 8 };
      const err = runGemm(shape, fma, tile);
      assert.ok(err < 1e-4, `${JSON.stringify(shape)} fma=${fma}: error ${err}`);
    }
  }
});

Deno.test("wasm gemm: a column count that is not a multiple of the tile is refused", () => {
  const shape = { n: 12, runs: 1, runLength: 16, runStride: 1, fma: false };
  assert.throws(() => gemmModule([shape], 1), /n 12 must be a multiple/);
});

Deno.test("linSource: a scaled modulo keeps its parentheses", () => {
  const ranges = new Map([["i", [0, 40] as const]]);
  const x = lin.add(lin.scale(lin.mod(lin.offset(variable("i"), 3), 4, ranges), 8), variable("i"));
  const f = new Function("i", `return ${linSource(x)};`);
  for (let i = 0; i <= 40; i++) assert.equal(f(i), evalLin(x, new Map([["i", i]])));
});

Deno.test("contraction: the standard tokenizer's conv is an im2col product with a cls epilogue", () => {
  const g = patchEmbedding({ height: 32, width: 32, patch: 8, embedding: 20 });
  const concrete = specialize(g, { image: [2, 3, 32, 32] }).graph;
  const program = lowerGraph(concrete, initParams(g, 0), [concrete.output]);
  const c = findContraction(program.kernels[0], program, 8);
  assert.ok(c);
  // Rows: 2 images x (1 cls + 16 patches); K: 3 channels x 8 x 8; N: 20, padded to 24.
  assert.deepEqual([c.m, c.k, c.n, c.nPadded], [34, 192, 20, 24]);
  // Weights in 3 panels of 8 columns, each 192 deep; columns 20-23 are zero.
  assert.deepEqual(c.weights.shape, [3, 3, 8, 8, 8]);
  const packed = new Float32Array(c.k * c.nPadded).fill(NaN);
  packWeights(c, program, packed, 0);
  const w = initParams(g, 0).get("patch_embed.proj.weight")?.data as Float32Array; // [20, 192]
  for (let col = 0; col < 24; col++) {
    for (let k = 0; k < 192; k += 37) {
      const at = Math.floor(col / 8) * 192 * 8 + k * 8 + (col % 8);
      assert.equal(packed[at], col < 20 ? w[col * 192 + k] : 0, `column ${col}, k ${k}`);
    }
  }
  // A is read in place: 3 x 8 runs of 8 contiguous pixels per patch (implicit im2col).
  assert.equal(c.operand.buffer, "in_image");
  assert.deepEqual([c.operand.kOffsets.length, c.operand.runLength, c.operand.runStride], [
    24,
    8,
    1,
  ]);
  assert.deepEqual(c.operand.kOffsets.slice(0, 3), [0, 32, 64]);
  assert.ok(c.epilogue.reads.includes(PRODUCT_BUFFER));
  assert.ok(!c.epilogue.reads.includes("in_image"), "the epilogue no longer reads the image");
});

Deno.test("contraction: a conv's channel axis is the column axis; padded convs stay loops", () => {
  // Conv output [B, out, H, W]: the weights follow axis 1, so each image is a tile of H*W rows.
  const plain = graph("conv", (b) => {
    const x = b.input("x", [2, 2, 8, 8]);
    return b.conv2d(x, { out: 4, kernel: 4, stride: 4, name: "c" });
  });
  const program = lowerGraph(plain, initParams(plain, 0), [plain.output]);
  const c = findContraction(program.kernels[0], program, 8);
  assert.ok(c);
  assert.deepEqual([c.axis, c.outer, c.inner, c.k, c.n], [1, 2, 4, 32, 4]);
  assert.deepEqual(c.epilogue.shape, [2, 4, 2, 2]);
  // Zero padding puts a bounds check inside the reduction: not a plain product of two loads.
  const padded = graph("padded", (b) => {
    const x = b.input("x", [1, 2, 8, 8]);
    return b.conv2d(x, { out: 4, kernel: 3, stride: 1, padding: 1, name: "c" });
  });
  const paddedProgram = lowerGraph(padded, initParams(padded, 0), [padded.output]);
  assert.equal(findContraction(paddedProgram.kernels[0], paddedProgram, 8), undefined);
});

Deno.test("operandTables: rows outside the activation borrow an in-bounds row, trailing rows too", () => {
  // Tokens 5-904 are an appended parameter: their Linear input rows would read x past its end.
  const g = graph("append", (b) => {
    const x = b.input("x", [2, 5, 20]);
    const emb = b.linear(x, { in: 20, out: 16, name: "l" });
    const pad = b.expand(b.param("pad", [1, 900, 16]), [2, 900, 16]);
    return b.concat(emb, pad, 1);
  });
  const program = lowerGraph(g, initParams(g, 0), [g.output]);
  const c = findContraction(program.kernels[0], program, 8);
  assert.ok(c);
  const tables = operandTables(c, 200, 256, 5);
  assert.ok(tables);
  const rows = [...tables.rowOffsets].map((bytes) => bytes / 4);
  // Every row, the 5 padding rows too, reads x[row .. row + 19] inside its 200 values.
  assert.equal(rows.length, c.m + 5);
  assert.ok(rows.every((r) => r >= 0 && r + 19 < 200), `${Math.max(...rows)}`);
  // Real rows keep their own offsets: image 1, token 2 starts at 100 + 2 * 20.
  assert.equal(rows[905 + 2], 140);
  // Tiles read at most what they need.
  assert.ok(tables.regionHi.every((hi, s) => hi <= 200 && tables.regionLo[s] >= 0));
});
