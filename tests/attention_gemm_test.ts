// Contractions over two activations (attention's q @ kᵀ and p @ v, batched over batch and heads)
// on the wasm micro-kernel and the wgsl tiled GEMM: a fast-check sweep of batch, heads, rows,
// reduction and column sizes (batch and heads of 1 included, where those axes drop out of the
// index), each compared with the reference and each asserting that the product took the GEMM.
import assert from "node:assert/strict";
import fc from "npm:fast-check@4.3.0";
import { compile, type Graph, graph, type TensorData, type TShape } from "../mod.ts";
import { lcgValues, sumMismatch } from "./helpers.ts";

const SMALL_TILE = { bm: 16, bn: 16, bk: 4, tm: 2, tn: 2 };

interface Case {
  readonly batch: number;
  readonly heads: number;
  readonly rows: number;
  readonly k: number;
  readonly cols: number;
  readonly transposed: boolean;
  readonly seed: number;
}

// q @ kᵀ (k read transposed, as attention does) or p @ v, scaled as attention's scores are.
function product(c: Case): Graph<TShape> {
  return graph("attention", (b) => {
    const a = b.input("a", [c.batch, c.heads, c.rows, c.k]);
    const right = c.transposed
      ? b.transpose(b.input("b", [c.batch, c.heads, c.cols, c.k]), -1, -2)
      : b.input("b", [c.batch, c.heads, c.k, c.cols]);
    return b.mul(b.matmul(a, right), 0.125);
  }) as Graph<TShape>;
}

function inputsOf(c: Case): Record<string, TensorData> {
  const bShape = c.transposed ? [c.batch, c.heads, c.cols, c.k] : [c.batch, c.heads, c.k, c.cols];
  return {
    a: lcgValues([c.batch, c.heads, c.rows, c.k], c.seed),
    b: lcgValues(bShape, c.seed + 1),
  };
}

async function check(c: Case, backend: "wasm" | "wgsl", gemm: RegExp): Promise<void> {
  const g = product(c);
  const inputs = inputsOf(c);
  const want = (await (await compile(g, { backend: "reference" })).run(inputs)).output;
  const model = await compile(g, {
    backend,
    ...(backend === "wgsl" ? { gemmTile: SMALL_TILE } : { threads: 2 }),
  });
  try {
    const { output } = await model.run(inputs);
    assert.equal(model.backend, backend);
    const why = sumMismatch(output, want, c.k);
    assert.equal(why, null, `${backend} ${JSON.stringify(c)}: ${why}`);
    // One column is a plain dot product (the column index folds away): no GEMM to take.
    if (c.cols > 1) assert.match(model.explain(), gemm, `${backend} ${JSON.stringify(c)}: no GEMM`);
  } finally {
    model.dispose();
  }
}

const cases = (minCols: number): fc.Arbitrary<Case> =>
  fc.record({
    batch: fc.integer({ min: 1, max: 3 }),
    heads: fc.integer({ min: 1, max: 3 }),
    rows: fc.integer({ min: 1, max: 40 }),
    k: fc.integer({ min: 16, max: 70 }),
    cols: fc.integer({ min: minCols, max: 48 }),
    transposed: fc.boolean(),
    seed: fc.integer({ min: 0, max: 1000 }),
  });

Deno.test("attention products on the wasm micro-kernel, B packed per batch and head (fast-check)", async () => {
  await fc.assert(
    fc.asyncProperty(cases(1), (c) => check(c, "wasm", /B packed at run time/)),
    { numRuns: 100 },
  );
});

Deno.test("attention products on the wgsl tiled GEMM, B packed per run (fast-check)", async () => {
  // The tiled GEMM takes products of at least 32 columns.
  await fc.assert(
    fc.asyncProperty(cases(32), (c) => check(c, "wgsl", /tiled WGSL GEMM.*B packed per run/)),
    { numRuns: 12 },
  );
});
