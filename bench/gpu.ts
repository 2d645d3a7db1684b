/**
 * The device check for the lent GPU: WebGPU parity on every fixture, then the benchmark grid,
 * for the gpu.js `webgpu` backend and Tessera's own `wgsl` backend, as JSON lines and a table.
 *
 *     deno run -A bench/gpu.ts [--backend webgpu,wgsl] [--batches 1,32,256] [--runs 10]
 *         [--resident-runs 200] [--resident-batch 256] [--gemm-tiles 64x64x16/4x4,128x128x8/8x8]
 *
 * `--gemm-tiles` (BMxBNxBK/TMxTN each) checks and times the `wgsl` GEMM shader per tile instead:
 * parity of the standard tokenizer against the `js` backend at B=2, then device-resident runs.
 * `--pieces` times device-resident runs of the seed's conv alone, the seed, and the standard
 * tokenizer, to see which of the seed's two kernels takes the time.
 * @module
 */

import { parseArgs } from "node:util";
import {
  compile,
  type GpuGemmTile,
  type Graph,
  graph,
  loadSafetensors,
  patchEmbedding,
  probeWebGpu,
  seedTokenizer,
  type TensorData,
} from "../mod.ts";
import { graphForFixture, maxError } from "../tests/helpers.ts";
import { benchTokenizer } from "./tokenizer.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    batches: { type: "string", default: "1,32,256" },
    runs: { type: "string", default: "10" },
    backend: { type: "string", default: "webgpu,wgsl" },
    "resident-runs": { type: "string", default: "200" },
    "resident-batch": { type: "string", default: "256" },
    "gemm-tiles": { type: "string", default: "" },
    pieces: { type: "boolean", default: false },
  },
});

const sizes = { height: 224, width: 224, patch: 16, embedding: 768 };
const graphOf = (variant: "seed" | "standard" | "seed-conv"): Graph =>
  variant === "seed" ? seedTokenizer(sizes) : variant === "standard"
    ? patchEmbedding(sizes)
    // The seed's first kernel alone, to split its time between its two kernels.
    : graph("seed-conv", (g) =>
      g.conv2d(g.input("image", ["B", 3, 224, 224]), {
        out: 3,
        kernel: 16,
        stride: 16,
        name: "patch_extractor.patch_extractor",
      }));

// Device-resident throughput: the input uploaded once, outputs left on the device, runs queued
// back to back, one wait at the end.
async function residentImagesPerS(
  variant: "seed" | "standard" | "seed-conv",
  batch: number,
  runs: number,
  gemmTile?: GpuGemmTile,
): Promise<{ images_per_s: number; ms_per_batch_mean: number }> {
  const model = await compile(graphOf(variant), { backend: "wgsl", gemmTile });
  const shape = [batch, 3, 224, 224];
  const session = await model.resident({ image: shape });
  session.upload({ image: { shape, data: new Float32Array(batch * 3 * 224 * 224).fill(0.5) } });
  // Half a second of warm-up: after the host-to-host grid, ten warm-up runs left the seed at
  // 1.37 ms a batch on the H100, against 0.41 ms measured on a fresh process.
  for (const warmUntil = performance.now() + 500; performance.now() < warmUntil;) {
    for (let i = 0; i < 10; i++) session.run();
    await session.finish();
  }
  const start = performance.now();
  for (let i = 0; i < runs; i++) session.run();
  await session.finish();
  const ms = (performance.now() - start) / runs;
  model.dispose();
  return {
    images_per_s: Number((batch / (ms / 1000)).toFixed(1)),
    ms_per_batch_mean: Number(ms.toFixed(3)),
  };
}

if (values.pieces) {
  const batch = Number(values["resident-batch"]);
  for (const variant of ["seed-conv", "seed", "standard"] as const) {
    const timed = await residentImagesPerS(variant, batch, Number(values["resident-runs"]));
    console.log(JSON.stringify({ variant, batch, backend: "wgsl (device-resident)", ...timed }));
  }
  Deno.exit(0);
}
if (values["gemm-tiles"]) {
  const shape = [2, 3, 224, 224];
  const image = { shape, data: new Float32Array(2 * 3 * 224 * 224).map((_, i) => (i % 251) / 251) };
  const want = (await (await compile(patchEmbedding(sizes), { backend: "js" })).run({ image }))
    .output;
  for (const spec of values["gemm-tiles"].split(",")) {
    const [bm, bn, bk, tm, tn] = spec.split(/[x/]/).map(Number);
    const gemmTile = { bm, bn, bk, tm, tn };
    try {
      const model = await compile(patchEmbedding(sizes), { backend: "wgsl", gemmTile });
      const got = (await model.run({ image })).output;
      model.dispose();
      const batch = Number(values["resident-batch"]);
      const timed = await residentImagesPerS(
        "standard",
        batch,
        Number(values["resident-runs"]),
        gemmTile,
      );
      console.log(JSON.stringify({
        gemm_tile: spec,
        max_error_vs_js: maxError(got.data, want.data),
        variant: "standard",
        batch,
        ...timed,
        tflops: Number((timed.images_per_s * 2 * 196 * 768 * 768 / 1e12).toFixed(2)),
      }));
    } catch (e) {
      console.log(JSON.stringify({ gemm_tile: spec, error: String(e) }));
    }
  }
  Deno.exit(0);
}
const report = await probeWebGpu();
console.log(JSON.stringify({ adapter: report }));
const fixtures = new URL("../tests/fixtures/", import.meta.url);
const index = JSON.parse(await Deno.readTextFile(new URL("index.json", fixtures)));
const backends = values.backend.split(",") as ("webgpu" | "wgsl")[];
for (const backend of backends) {
  for (const fixture of index.fixtures) {
    const file = await loadSafetensors(new URL(fixture.file, fixtures));
    const model = await compile(graphForFixture(file.metadata), {
      backend,
      weights: file.tensors,
    });
    const { output, stages } = await model.run({ image: file.tensors.get("input") as TensorData }, {
      stages: "all",
    });
    let worst = 0;
    for (const [name, value] of Object.entries({ ...stages, output })) {
      worst = Math.max(worst, maxError(value.data, (file.tensors.get(name) as TensorData).data));
    }
    console.log(JSON.stringify({ parity: fixture.name, backend: model.backend, max_error: worst }));
    model.dispose();
  }
}
const rows = [];
for (const backend of backends) {
  for (const variant of ["seed", "standard"] as const) {
    for (const batch of values.batches.split(",").map(Number)) {
      const r = await benchTokenizer(variant, batch, backend, Number(values.runs));
      console.log(JSON.stringify(r));
      rows.push(r);
    }
  }
}
const residentRuns = Number(values["resident-runs"]);
if (backends.includes("wgsl") && residentRuns > 0) {
  for (const variant of ["seed", "standard"] as const) {
    const batch = Number(values["resident-batch"]);
    const timed = await residentImagesPerS(variant, batch, residentRuns);
    console.log(JSON.stringify({
      variant,
      batch,
      backend: "wgsl (device-resident)",
      ...timed,
      runs: residentRuns,
    }));
  }
}
console.log("| variant | batch | backend | img/s | ms/batch | compile ms |");
for (const r of rows) {
  console.log(
    `| ${r.variant} | ${r.batch} | ${r.backend} | ${r.images_per_s} | ${r.ms_per_batch_median} | ${r.compile_ms} |`,
  );
}
