/**
 * Where a whole ViT's time goes on a CPU backend: runs every kernel step alone (one thread by
 * default, so the steps do not overlap) and prints the milliseconds per step kind, summed over
 * the blocks, as one JSON line; `--table` prints the readable ranking instead.
 *
 *     deno run -A bench/kernel_profile.ts --model vit_tiny_patch16_224 --batch 1 \
 *         [--backend native] [--threads 1] [--runs 3] [--table]
 *
 * A BLAS backend's product step (`sgemm`) is listed apart from its epilogue, as `GEMM ...`, or
 * as `GEMM+epilogue ...` where sgemm did the epilogue too.
 * @module
 */

import { parseArgs } from "node:util";
import {
  type BackendName,
  compile,
  initParams,
  vit,
  VIT_PRESETS,
  type VitPresetName,
} from "../mod.ts";
import { KernelPool } from "../codegen/backends/js_threads.ts";
import { vitBenchImage } from "./vit.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    model: { type: "string", default: "vit_tiny_patch16_224" },
    batch: { type: "string", default: "1" },
    backend: { type: "string", default: "native" },
    threads: { type: "string", default: "1" },
    runs: { type: "string", default: "3" },
    table: { type: "boolean", default: false },
  },
});
const name = values.model as VitPresetName;
if (!Object.hasOwn(VIT_PRESETS, name)) {
  throw new Error(`--model ${name}: use one of ${Object.keys(VIT_PRESETS).join(", ")}`);
}
const batch = Number(values.batch);
const runs = Math.max(1, Number(values.runs));
const preset = VIT_PRESETS[name];
const g = vit(preset);
const image = vitBenchImage(preset, batch);
const model = await compile(g, {
  backend: values.backend as BackendName,
  weights: initParams(g, 0),
  threads: Number(values.threads),
});
await model.prepare({ image: image.shape });
const lines = model.explain().split("\n");
const kernelLines = lines.filter((l) => /^kernel \d+:/.test(l));
for (let i = 0; i < 2; i++) await model.run({ image });
const t0 = performance.now();
await model.run({ image });
const wholeMs = performance.now() - t0;

// Steps past the program's kernels are the BLAS product steps, in program order: one followed
// by its epilogue is named after it; one whose epilogue sgemm did (no epilogue step) stands for
// the next program kernel itself.
const times = new Map<string, number>();
const runPlan = KernelPool.prototype.runPlan;
KernelPool.prototype.runPlan = async function (steps, stop) {
  let last = -1; // the program kernel the previous step ran or stood for
  for (let i = 0; i < steps.length; i++) {
    const s = steps[i];
    const product = s.kernel > kernelLines.length;
    const paired = product && steps[i + 1]?.kernel === last + 1;
    const at = !product ? s.kernel : paired ? steps[i + 1].kernel : last + 1;
    if (s.kernel < kernelLines.length || (product && !paired)) last = at;
    const what = (kernelLines[at] ?? `kernel ${at}`).replace(/^kernel \d+: /, "")
      .replace(/_\d+/g, "").replace(/; launch \d+ outputs/, "").split(";")[0];
    const key = (product ? (paired ? "GEMM " : "GEMM+epilogue ") : "") + what;
    const t = performance.now();
    await runPlan.call(this, [s], stop);
    times.set(key, (times.get(key) ?? 0) + performance.now() - t);
  }
};
for (let i = 0; i < runs; i++) await model.run({ image });
KernelPool.prototype.runPlan = runPlan;
model.dispose();
const steps = [...times].map(([step, ms]) => ({ step, ms: Math.round((ms / runs) * 100) / 100 }))
  .sort((a, b) => b.ms - a.ms);
const profiledMs = steps.reduce((s, x) => s + x.ms, 0);
if (values.table) {
  console.log(`${name} B=${batch} on ${model.backend}: ${wholeMs.toFixed(1)} ms a run`);
  for (const s of steps) console.log(`${s.ms.toFixed(1).padStart(8)} ms  ${s.step}`);
} else {
  console.log(JSON.stringify({
    model: name,
    batch,
    backend: model.backend,
    threads: Number(values.threads),
    run_ms: Math.round(wholeMs * 10) / 10,
    profiled_ms: Math.round(profiledMs * 10) / 10,
    steps,
  }));
}
