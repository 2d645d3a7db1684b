// The sweep of tests/wgsl_sweep_test.ts for every other compiled backend: generated rows x
// reduction (1..4096) -> columns (1..64), through a Linear and through timm's patch embedding (a
// conv's implicit im2col), on `js`, `wasm` (default threads and one), gpu.js `cpu`, `webasm` and
// `webgpu` (llvmpipe here), each against the reference interpreter. Every case runs the reference
// once and then all backends, and reports every backend that disagrees, not just the first.
import assert from "node:assert/strict";
import fc from "npm:fast-check@4.3.0";
import {
  compile,
  type CompileOptions,
  type Graph,
  graph,
  patchEmbedding,
  probeWebGpu,
  type TensorData,
} from "../mod.ts";
import { lcgValues, sumMismatch } from "./helpers.ts";

const adapter = await probeWebGpu();
if (!adapter) console.warn("backend_sweep_test: no WebGPU adapter here; webgpu is left out");

/** A backend under test: its label in messages and the options that select it. */
interface Target {
  readonly label: string;
  readonly options: CompileOptions & { backend: NonNullable<CompileOptions["backend"]> };
}

const TARGETS: readonly Target[] = [
  { label: "js", options: { backend: "js" } },
  { label: "wasm", options: { backend: "wasm" } },
  { label: "wasm (threads: 1)", options: { backend: "wasm", threads: 1 } },
  { label: "cpu", options: { backend: "cpu" } },
  { label: "webasm", options: { backend: "webasm" } },
  ...(adapter ? [{ label: "webgpu", options: { backend: "webgpu" } } as const] : []),
];

const quiet = { onWarning: () => {} };

/** Runs `g` on the reference and on every target; fails naming each target that disagrees. */
async function checkAll(
  g: Graph,
  inputs: Record<string, TensorData>,
  k: number,
  seed: number,
): Promise<void> {
  const want = (await (await compile(g, { backend: "reference", seed })).run(inputs)).output;
  const wrong: string[] = [];
  for (const { label, options } of TARGETS) {
    const model = await compile(g, { ...options, seed, ...quiet });
    try {
      const got = (await model.run(inputs)).output;
      const why = model.backend === options.backend
        ? sumMismatch(got, want, k)
        : `fell back to ${model.backend}: ${model.fallbacks.join("; ")}`;
      if (why) wrong.push(`${label}: ${why}`);
    } finally {
      model.dispose();
    }
  }
  assert.deepEqual(wrong, [], `${g.name}:\n${wrong.join("\n")}`);
}

const int = (min: number, max: number): fc.Arbitrary<number> => fc.integer({ min, max });
const seed = fc.integer({ min: 0, max: 2 ** 31 - 1 });

Deno.test("backend sweep: Linear rows x k -> n matches the reference on every backend (fast-check)", async () => {
  const cases = fc.record({ rows: int(1, 40), k: int(1, 4096), n: int(1, 64), seed });
  await fc.assert(
    fc.asyncProperty(cases, async (c) => {
      const g = graph(`linear ${c.rows}x${c.k}->${c.n}`, (b) => {
        const x = b.input("x", [c.rows, c.k]);
        return b.linear(x, { in: c.k, out: c.n, name: "proj" });
      });
      await checkAll(g, { x: lcgValues([c.rows, c.k], c.seed) }, c.k, c.seed);
    }),
    {
      numRuns: 30,
      examples: [
        [{ rows: 1, k: 1, n: 1, seed: 1 }],
        [{ rows: 40, k: 4096, n: 64, seed: 2 }],
        [{ rows: 5, k: 256, n: 5, seed: 3 }],
        [{ rows: 13, k: 1536, n: 16, seed: 4 }],
      ],
    },
  );
});

Deno.test("backend sweep: patch embeddings match the reference on every backend (fast-check)", async () => {
  const cases = fc.record({
    channels: int(1, 16),
    embedding: int(1, 64),
    patch: int(1, 16),
    gridH: int(1, 3),
    gridW: int(1, 3),
    seed,
  });
  await fc.assert(
    fc.asyncProperty(cases, async (c) => {
      const sizes = {
        height: c.gridH * c.patch,
        width: c.gridW * c.patch,
        patch: c.patch,
        embedding: c.embedding,
        channels: c.channels,
      };
      const inputs = { image: lcgValues([1, c.channels, sizes.height, sizes.width], c.seed) };
      await checkAll(patchEmbedding(sizes), inputs, c.channels * c.patch * c.patch, c.seed);
    }),
    {
      numRuns: 20,
      // The wgsl backend's reported configurations (channels, embedding, patch, grid).
      examples: [
        [{ channels: 4, embedding: 5, patch: 8, gridH: 1, gridW: 1, seed: 1 }],
        [{ channels: 6, embedding: 12, patch: 16, gridH: 2, gridW: 2, seed: 2 }],
        [{ channels: 3, embedding: 7, patch: 16, gridH: 3, gridW: 3, seed: 3 }],
        [{ channels: 5, embedding: 16, patch: 8, gridH: 2, gridW: 2, seed: 4 }],
      ],
    },
  );
});
