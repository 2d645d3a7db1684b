/**
 * The device check for the lent GPU: WebGPU parity on every fixture, then the webgpu
 * benchmark grid, printed as JSON lines and a short table.
 *
 *     deno run -A bench/gpu.ts [--batches 1,32,256] [--runs 10]
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
    backend: { type: "string", default: "webgpu" },
  },
});
const report = await probeWebGpu();
console.log(JSON.stringify({ adapter: report }));
const fixtures = new URL("../tests/fixtures/", import.meta.url);
const index = JSON.parse(await Deno.readTextFile(new URL("index.json", fixtures)));
for (const fixture of index.fixtures) {
  const file = await loadSafetensors(new URL(fixture.file, fixtures));
  const model = await compile(graphForFixture(file.metadata), {
    backend: "webgpu",
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
const rows = [];
for (const variant of ["seed", "standard"] as const) {
  for (const batch of values.batches.split(",").map(Number)) {
    const r = await benchTokenizer(variant, batch, "webgpu", Number(values.runs));
    console.log(JSON.stringify(r));
    rows.push(r);
  }
}
console.log("| variant | batch | backend | img/s | ms/batch | compile ms |");
for (const r of rows) {
  console.log(
    `| ${r.variant} | ${r.batch} | ${r.backend} | ${r.images_per_s} | ${r.ms_per_batch_median} | ${r.compile_ms} |`,
  );
}
