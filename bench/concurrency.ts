/**
 * Serving throughput with concurrent callers: how many images per second one compiled model
 * serves when `callers` clients each keep one `run()` in flight, against one compiled model per
 * caller (every in-flight run with buffers and threads of its own). One JSON line per cell:
 *
 *     deno run -A bench/concurrency.ts [--variant standard|seed] [--backend wasm] [--batch 1]
 *         [--callers 1,4,16] [--seconds 3]
 *
 * Each caller sends its own input and checks that its result is its own (the run with that input
 * alone), so a throughput gained by mixing results up would be caught. `rss_mb` is the resident
 * set at the end of the cell, with its models still alive. `queue` is what
 * `compile()` does: one model, runs one at a time. `per_caller` is the alternative.
 * @module
 */

import { parseArgs } from "node:util";
import {
  type BackendName,
  compile,
  type CompiledGraph,
  patchEmbedding,
  seedTokenizer,
  type TensorData,
} from "../mod.ts";

const args = parseArgs({
  args: Deno.args,
  options: {
    variant: { type: "string", default: "standard" },
    backend: { type: "string", default: "wasm" },
    batch: { type: "string", default: "1" },
    callers: { type: "string", default: "1,4,16" },
    seconds: { type: "string", default: "3" },
  },
});

const graph = args.values.variant === "seed"
  ? seedTokenizer({ height: 224, width: 224, patch: 16, embedding: 768 })
  : patchEmbedding({ height: 224, width: 224, patch: 16, embedding: 768 });
const batch = Number(args.values.batch);
const seconds = Number(args.values.seconds);
const backend = args.values.backend as BackendName;

function inputFor(caller: number): TensorData {
  const shape = [batch, 3, 224, 224];
  const data = new Float32Array(batch * 3 * 224 * 224);
  for (let i = 0; i < data.length; i++) data[i] = ((i + 31 * caller) % 251) / 251;
  return { shape, data };
}

async function serve(models: CompiledGraph[], callers: number): Promise<number> {
  const inputs = Array.from({ length: callers }, (_, c) => inputFor(c));
  const expected: Float32Array[] = [];
  for (let c = 0; c < callers; c++) {
    expected.push((await models[c % models.length].run({ image: inputs[c] })).output.data);
  }
  let images = 0;
  const end = performance.now() + seconds * 1000;
  const start = performance.now();
  await Promise.all(inputs.map(async (image, c) => {
    const model = models[c % models.length];
    while (performance.now() < end) {
      const { output } = await model.run({ image });
      if (output.data[7] !== expected[c][7] || output.data.at(-1) !== expected[c].at(-1)) {
        throw new Error(`caller ${c} got another caller's result`);
      }
      images += batch;
    }
  }));
  return images / ((performance.now() - start) / 1000);
}

for (const callers of args.values.callers.split(",").map(Number)) {
  for (const mode of ["queue", "per_caller"] as const) {
    const count = mode === "queue" ? 1 : callers;
    const models: CompiledGraph[] = [];
    for (let i = 0; i < count; i++) models.push(await compile(graph, { backend }));
    const imagesPerSecond = await serve(models, callers);
    console.log(JSON.stringify({
      variant: args.values.variant,
      backend: models[0].backend,
      batch,
      callers,
      mode,
      images_per_s: Math.round(imagesPerSecond * 10) / 10,
      rss_mb: Math.round(Deno.memoryUsage().rss / 2 ** 20),
    }));
    for (const m of models) m.dispose();
  }
}
