// The `wgsl` backend's three matrix-multiply paths (the split-reduction shader for few columns
// and a long reduction, the tiled GEMM, the plain loop nest) against the reference interpreter,
// over generated rows x reduction (1..4096) -> columns (1..64), through a Linear and through a
// conv's implicit im2col. Each case asserts which path ran, from the shape of the generated
// shaders, so every path is really exercised.
//
// llvmpipe compiles every distinct shader anew (shapes are literals in the source): 0.1-0.3 s for
// a loop nest, 0.5-1 s for a product shader, so the run counts are small. The GEMM runs with small
// tiles: they compile in under a second where the default 128 x 128 tile takes over a minute on
// llvmpipe (tests/backends_test.ts covers that tile), and columns 1..64 then span several weight
// panels, as the default tile's never do.
import assert from "node:assert/strict";
import fc from "npm:fast-check@4.3.0";
import {
  compile,
  type CompiledGraph,
  type GpuGemmTile,
  type Graph,
  graph,
  patchEmbedding,
  probeWebGpu,
  type TensorData,
} from "../mod.ts";
import { lcgValues, sumMismatch } from "./helpers.ts";

const adapter = await probeWebGpu();
if (!adapter) console.warn("wgsl_sweep_test: no WebGPU adapter here; the sweep is skipped");

/** The matrix-multiply paths of the wgsl backend. */
type Path = "narrow" | "gemm" | "loop";

/**
 * The path the backend takes for `n` columns and a reduction of `k`, restating its routing:
 * `MIN_K` (16) in codegen/contraction.ts, `MIN_GEMM_COLUMNS` (32), `MIN_NARROW_DEPTH` (256) and
 * `NARROW_MAX_COLUMNS` (16) in codegen/backends/wgsl.ts. One column is a plain dot product.
 */
function expectedPath(n: number, k: number): Path {
  if (n === 1 || k < 16) return "loop";
  if (n >= 32) return "gemm";
  return n <= 16 && k >= 256 ? "narrow" : "loop";
}

/**
 * The path that ran, from the shaders `explain({ source: true })` lists: a product runs as its
 * own shader plus an epilogue (two sources for one kernel); the split reduction stages one array
 * in workgroup memory (the partial sums), the GEMM two (slices of A and B), a loop nest none.
 */
function pathOf(model: CompiledGraph): Path {
  const text = model.explain({ source: true });
  const sections = text.split(/^--- kernel (\d+) source(?: (\d+))? ---$/m);
  const byKernel = new Map<string, string[]>();
  for (let i = 1; i + 2 < sections.length; i += 3) {
    byKernel.set(sections[i], [...(byKernel.get(sections[i]) ?? []), sections[i + 2]]);
  }
  const products = [...byKernel.values()].filter((sources) => sources.length === 2);
  assert.ok(products.length <= 1, `more than one product shader:\n${text}`);
  if (products.length === 0) {
    for (const sources of byKernel.values()) {
      assert.doesNotMatch(sources[0], /var<workgroup>/, "a loop nest uses no workgroup memory");
    }
    return "loop";
  }
  const staged = products[0][0].match(/^var<workgroup> /gm)?.length ?? 0;
  assert.ok(staged === 1 || staged === 2, `${staged} workgroup arrays:\n${products[0][0]}`);
  return staged === 1 ? "narrow" : "gemm";
}

/** Asserts `got` is within float32 rounding of `want` for sums of `k` products. */
function assertClose(got: TensorData, want: TensorData, k: number, what: string): void {
  const why = sumMismatch(got, want, k);
  assert.equal(why, null, `${what}: ${why}`);
}

/**
 * Small GEMM tiles, panels of 16 and 32 columns, square and not, one and two A loads a thread:
 * llvmpipe compiles each in under a second (its time grows fast with the workgroup arrays).
 */
const SWEEP_TILES: readonly GpuGemmTile[] = [
  { bm: 16, bn: 16, bk: 4, tm: 2, tn: 2 },
  { bm: 32, bn: 16, bk: 4, tm: 4, tn: 2 },
  { bm: 32, bn: 32, bk: 4, tm: 4, tn: 4 },
];

const quiet = { onWarning: () => {} };

/** Compiles `g` on wgsl and the reference, runs both, compares, and returns the path taken. */
async function check(
  g: Graph,
  inputs: Record<string, TensorData>,
  k: number,
  seed: number,
  tile: GpuGemmTile,
): Promise<Path> {
  const want = (await (await compile(g, { backend: "reference", seed })).run(inputs)).output;
  const model = await compile(g, { backend: "wgsl", seed, gemmTile: tile, ...quiet });
  try {
    const got = (await model.run(inputs)).output;
    assert.equal(model.backend, "wgsl", `fell back: ${model.fallbacks}`);
    const path = pathOf(model);
    assertClose(got, want, k, `${g.name} on the ${path} path`);
    return path;
  } finally {
    model.dispose();
  }
}

/** rows x k -> rows x n through `g.linear` (bias included, so the epilogue runs too). */
function linearGraph(rows: number, k: number, n: number): Graph {
  return graph(`linear ${rows}x${k}->${n}`, (b) => {
    const x = b.input("x", [rows, k]);
    return b.linear(x, { in: k, out: n, name: "proj" });
  });
}

interface LinearCase {
  readonly rows: number;
  readonly k: number;
  readonly n: number;
  readonly seed: number;
  readonly tile: GpuGemmTile;
}

function linearCase(
  n: fc.Arbitrary<number>,
  k: fc.Arbitrary<number>,
): fc.Arbitrary<LinearCase> {
  return fc.record({
    rows: fc.integer({ min: 1, max: 40 }),
    k,
    n,
    seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
    tile: fc.constantFrom(...SWEEP_TILES),
  });
}

const int = (min: number, max: number): fc.Arbitrary<number> => fc.integer({ min, max });

// Together these cover columns 1..64 x reduction 1..4096, each region on the path it routes to.
const LINEAR_PATHS: { path: Path; cases: fc.Arbitrary<LinearCase>; runs: number }[] = [
  { path: "narrow", cases: linearCase(int(2, 16), int(256, 4096)), runs: 10 },
  { path: "gemm", cases: linearCase(int(32, 64), int(16, 4096)), runs: 10 },
  {
    path: "loop",
    cases: fc.oneof(
      linearCase(int(1, 64), int(1, 15)),
      linearCase(fc.constant(1), int(1, 4096)),
      linearCase(int(17, 31), int(16, 4096)),
      linearCase(int(2, 16), int(16, 255)),
    ),
    runs: 12,
  },
];

for (const { path, cases, runs } of LINEAR_PATHS) {
  Deno.test({
    name: `wgsl sweep: Linear on the ${path} path matches the reference (fast-check)`,
    ignore: adapter === null,
    async fn() {
      await fc.assert(
        fc.asyncProperty(cases, async (c) => {
          assert.equal(expectedPath(c.n, c.k), path);
          const inputs = { x: lcgValues([c.rows, c.k], c.seed) };
          const ran = await check(linearGraph(c.rows, c.k, c.n), inputs, c.k, c.seed, c.tile);
          assert.equal(ran, path, `${c.rows}x${c.k}->${c.n}`);
        }),
        { numRuns: runs },
      );
    },
  });
}

interface PatchCase {
  readonly channels: number;
  readonly embedding: number;
  readonly patch: number;
  readonly gridH: number;
  readonly gridW: number;
  readonly seed: number;
}

/** timm's patch embedding: the conv's reduction runs over channels x patch rows x patch columns. */
async function checkPatchEmbedding(c: PatchCase, tile: GpuGemmTile): Promise<Path> {
  const sizes = {
    height: c.gridH * c.patch,
    width: c.gridW * c.patch,
    patch: c.patch,
    embedding: c.embedding,
    channels: c.channels,
  };
  const inputs = { image: lcgValues([1, c.channels, sizes.height, sizes.width], c.seed) };
  const k = c.channels * c.patch * c.patch;
  return await check(patchEmbedding(sizes), inputs, k, c.seed, tile);
}

/** Patch embeddings with `embedding` columns and 1..16 channels x patch^2 taps in [lo, hi]. */
function patchCase(
  embedding: fc.Arbitrary<number>,
  lo: number,
  hi: number,
): fc.Arbitrary<PatchCase> {
  const channels = (p: number): [number, number] => [
    Math.max(1, Math.ceil(lo / (p * p))),
    Math.min(16, Math.floor(hi / (p * p))),
  ];
  return int(1, 16)
    .filter((p) => channels(p)[0] <= channels(p)[1])
    .chain((patch) =>
      fc.record({
        channels: int(...channels(patch)),
        embedding,
        patch: fc.constant(patch),
        gridH: int(1, 3),
        gridW: int(1, 3),
        seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
      })
    );
}

// The configurations of the report (channels, embedding, patch, grid): 5-16 columns, so two to
// four 4-column weight panels, read as one panel before the fix (0.65-1.4 off).
const REPORTED: readonly PatchCase[] = [
  { channels: 4, embedding: 5, patch: 8, gridH: 1, gridW: 1, seed: 1 },
  { channels: 6, embedding: 12, patch: 16, gridH: 2, gridW: 2, seed: 2 },
  { channels: 3, embedding: 7, patch: 16, gridH: 3, gridW: 3, seed: 3 },
  { channels: 5, embedding: 16, patch: 8, gridH: 2, gridW: 2, seed: 4 },
];

const PATCH_PATHS: {
  path: Path;
  cases: fc.Arbitrary<PatchCase>;
  runs: number;
  examples: readonly PatchCase[];
}[] = [
  { path: "narrow", cases: patchCase(int(2, 16), 256, 4096), runs: 6, examples: REPORTED },
  { path: "gemm", cases: patchCase(int(32, 64), 16, 4096), runs: 6, examples: [] },
  {
    path: "loop",
    cases: fc.oneof(
      patchCase(int(1, 64), 1, 15),
      patchCase(fc.constant(1), 1, 4096),
      patchCase(int(17, 31), 16, 4096),
      patchCase(int(2, 16), 16, 255),
    ),
    runs: 8,
    examples: [],
  },
];

for (const { path, cases, runs, examples } of PATCH_PATHS) {
  Deno.test({
    name: `wgsl sweep: patch embeddings (implicit im2col) on the ${path} path match (fast-check)`,
    ignore: adapter === null,
    async fn() {
      const tiles = fc.constantFrom(...SWEEP_TILES);
      await fc.assert(
        fc.asyncProperty(cases, tiles, async (c, tile) => {
          assert.equal(expectedPath(c.embedding, c.channels * c.patch * c.patch), path);
          assert.equal(await checkPatchEmbedding(c, tile), path, JSON.stringify(c));
        }),
        { numRuns: runs, examples: examples.map((c) => [c, SWEEP_TILES[0]]) },
      );
    },
  });
}
