// The WASM SIMD micro-kernel on its own: against a plain triple loop, over reductions that do
// and do not take the 4-step unroll, strides past one-byte LEB immediates, and with and without
// fused multiply-add; and the pieces a contraction is split into.
import assert from "node:assert/strict";
import { gemmModule } from "../codegen/wasm/gemm_kernel.ts";
import { findContraction, PRODUCT_BUFFER } from "../codegen/contraction.ts";
import { lowerGraph } from "../codegen/lower.ts";
import { graph, initParams, patchEmbedding, specialize } from "../mod.ts";

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  };
}

function runGemm(k: number, n: number, rows: number, fma: boolean, mr: number, nr: number) {
  const next = lcg(k * 31 + n);
  const a = Float32Array.from({ length: rows * k }, next);
  const b = Float32Array.from({ length: k * n }, next); // [k][n]
  const aAt = 0;
  const bAt = rows * k * 4;
  const cAt = bAt + k * n * 4;
  const pages = Math.ceil((cAt + rows * n * 4) / 65536);
  const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
  const module = new WebAssembly.Module(gemmModule([{ k, n, fma, tile: { mr, nr } }], pages));
  const gemm = new WebAssembly.Instance(module, { env: { memory } }).exports.gemm0 as (
    a: number,
    b: number,
    c: number,
    rows: number,
  ) => void;
  const heap = new Float32Array(memory.buffer);
  heap.set(a, aAt / 4);
  for (let col = 0; col < n; col++) {
    for (let i = 0; i < k; i++) {
      heap[bAt / 4 + Math.floor(col / nr) * k * nr + i * nr + (col % nr)] = b[i * n + col];
    }
  }
  gemm(aAt, bAt, cAt, rows);
  let worst = 0;
  for (let r = 0; r < rows; r++) {
    for (let col = 0; col < n; col++) {
      let want = 0;
      for (let i = 0; i < k; i++) want += a[r * k + i] * b[i * n + col];
      worst = Math.max(worst, Math.abs(heap[cAt / 4 + r * n + col] - want));
    }
  }
  return worst;
}

Deno.test("wasm gemm: matches a triple loop, unrolled or not, fused or not", () => {
  for (const fma of [false, true]) {
    for (const [k, n, rows, mr, nr] of [[13, 8, 5, 5, 8], [300, 16, 10, 5, 8], [64, 24, 8, 4, 8]]) {
      const err = runGemm(k, n, rows, fma, mr, nr);
      assert.ok(err < 1e-4, `k=${k} n=${n} rows=${rows} fma=${fma}: error ${err}`);
    }
  }
});

Deno.test("wasm gemm: a column count that is not a multiple of the tile is refused", () => {
  assert.throws(() => gemmModule([{ k: 16, n: 12, fma: false }], 1), /n 12 must be a multiple/);
});

Deno.test("contraction: the standard tokenizer's conv is an im2col product with a cls epilogue", () => {
  const g = patchEmbedding({ height: 32, width: 32, patch: 8, embedding: 20 });
  const concrete = specialize(g, { image: [2, 3, 32, 32] }).graph;
  const program = lowerGraph(concrete, initParams(g, 0), [concrete.output]);
  const c = findContraction(program.kernels[0], program, 8);
  assert.ok(c);
  // Rows: 2 images x (1 cls + 16 patches); K: 3 channels x 8 x 8; N: 20, padded to 24.
  assert.deepEqual([c.m, c.k, c.n, c.nPadded], [34, 192, 20, 24]);
  assert.deepEqual(c.pack.shape, [34, 3, 8, 8]);
  assert.deepEqual(c.weights.shape, [20, 3, 8, 8]);
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
