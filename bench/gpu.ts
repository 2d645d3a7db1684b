/**
 * The device check for the lent GPU: WebGPU parity on every fixture, then the benchmark grid,
 * for the gpu.js `webgpu` backend and Tessera's own `wgsl` backend, as JSON lines and a table.
 *
 *     deno run -A bench/gpu.ts [--backend webgpu,wgsl] [--batches 1,32,256] [--runs 10]
 * @module
 */

import { parseArgs } from "node:util";
import { compile, loadSafetensors, probeWebGpu, type TensorData } from "../mod.ts";
import { graphForFixture, maxError } from "../tests/helpers.ts";
import { benchTokenizer } from "./tokenizer.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    batches: { type: "string", default: "1,32,256" },
    runs: { type: "string", default: "10" },
    backend: { type: "string", default: "webgpu,wgsl" },
  },
});
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
console.log("| variant | batch | backend | img/s | ms/batch | compile ms |");
for (const r of rows) {
  console.log(
    `| ${r.variant} | ${r.batch} | ${r.backend} | ${r.images_per_s} | ${r.ms_per_batch_median} | ${r.compile_ms} |`,
  );
}
