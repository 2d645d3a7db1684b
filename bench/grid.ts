/**
 * The benchmark grid behind `deno task bench`: the tokenizers (backend x variant x batch), then
 * the whole ViTs (`bench/vit.ts`: model x batch on each of `--vit-backends`), each cell in its
 * own process (so peak RSS is per cell), printed as tables and written as JSON lines.
 *
 *     deno run -A bench/grid.ts [--backends wasm,js,cpu,webasm,webgpu] [--batches 1,8,32]
 *       [--variants seed,standard] [--runs 10] [--cell-timeout 90] [--out bench/last_grid.jsonl]
 *       [--vit-models vit_tiny_patch16_224,vit_small_patch16_224,vit_base_patch16_224]
 *       [--vit-batches 1,8] [--vit-backends wasm,native] [--vit-runs 5] [--out-vit
 *       bench/last_vit_grid.jsonl]
 *
 * An empty `--vit-models` (or `--variants`) skips that half.
 * @module
 */

import { parseArgs } from "node:util";
import { probeWebGpu } from "../mod.ts";
import type { BenchResult } from "./tokenizer.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    backends: { type: "string" },
    batches: { type: "string", default: "1,8,32" },
    variants: { type: "string", default: "seed,standard" },
    runs: { type: "string", default: "10" },
    out: { type: "string", default: "bench/last_grid.jsonl" },
    "cell-timeout": { type: "string", default: "90" },
    "vit-models": {
      type: "string",
      default: "vit_tiny_patch16_224,vit_small_patch16_224,vit_base_patch16_224",
    },
    "vit-batches": { type: "string", default: "1,8" },
    "vit-backends": { type: "string", default: "wasm,native" },
    "vit-runs": { type: "string", default: "5" },
    "out-vit": { type: "string", default: "bench/last_vit_grid.jsonl" },
  },
});

/** Runs one cell's script in its own process; its JSON line, or why there is none. */
async function cell(args: string[]): Promise<{ line?: string; why?: string }> {
  // Slow cells (webasm on the standard variant) are cut off rather than stalling the grid.
  const child = new Deno.Command(Deno.execPath(), { args, stdout: "piped", stderr: "null" })
    .spawn();
  const timer = setTimeout(() => child.kill(), cellTimeoutMs);
  const out = await child.output();
  clearTimeout(timer);
  const line = new TextDecoder().decode(out.stdout).split("\n").find((l) => l.startsWith("{"));
  if (out.success && line) return { line };
  return { why: out.signal ? `cut off after ${values["cell-timeout"]} s` : `exit ${out.code}` };
}
const adapter = await probeWebGpu();
const variants = values.variants.split(",").filter((v) => v);
const backends = (values.backends ?? (adapter ? "wasm,js,cpu,webasm,webgpu" : "wasm,js,cpu,webasm"))
  .split(
    ",",
  );
const cellTimeoutMs = Number(values["cell-timeout"]) * 1000;
const batches = values.batches.split(",").map(Number);
const script = new URL("./tokenizer.ts", import.meta.url).pathname;
const rows: BenchResult[] = [];
for (const backend of backends) {
  for (const variant of variants) {
    for (const batch of batches) {
      const args = ["run", "-A", script, "--variant", variant, "--batch", String(batch)];
      args.push("--backend", backend, "--runs", values.runs, "--json");
      const { line, why } = await cell(args);
      if (!line) {
        console.error(`${backend} ${variant} B=${batch}: no result (${why})`);
        console.log(`| ${backend} | ${variant} | ${batch} | (${why}) | | | | |`);
        continue;
      }
      const row = JSON.parse(line) as BenchResult;
      rows.push(row);
      console.error(`${backend} ${variant} B=${batch}: ${row.images_per_s} img/s`);
    }
  }
}
const header =
  "| backend | variant | batch | img/s | ms/batch | compile ms | peak RSS MB | device |";
console.log([
  header,
  "|---|---|---|---|---|---|---|---|",
  ...rows.map((r) =>
    `| ${r.backend} | ${r.variant} | ${r.batch} | ${r.images_per_s} | ${r.ms_per_batch_median} | ` +
    `${r.compile_ms} | ${r.peak_rss_mb} | ${r.device} |`
  ),
].join("\n"));
if (rows.length > 0) {
  await Deno.writeTextFile(values.out, rows.map((r) => JSON.stringify(r)).join("\n") + "\n");
  console.error(`wrote ${values.out}`);
}

// The whole ViTs: image batch in, logits out (bench/vit.ts), the same JSON fields.
interface VitRow {
  readonly model: string;
  readonly batch: number;
  readonly backend: string;
  readonly images_per_s: number;
  readonly ms_per_batch_median: number;
  readonly compile_ms: number;
  readonly peak_rss_mb: number;
}
const vitScript = new URL("./vit.ts", import.meta.url).pathname;
const vitRows: VitRow[] = [];
for (const backend of values["vit-backends"].split(",").filter((b) => b)) {
  for (const model of values["vit-models"].split(",").filter((m) => m)) {
    for (const batch of values["vit-batches"].split(",").map(Number)) {
      const args = ["run", "-A", vitScript, "--model", model, "--batch", String(batch)];
      args.push("--backend", backend, "--runs", values["vit-runs"], "--json");
      const { line, why } = await cell(args);
      if (!line) {
        console.error(`${backend} ${model} B=${batch}: no result (${why})`);
        continue;
      }
      const row = JSON.parse(line) as VitRow;
      vitRows.push(row);
      console.error(`${row.backend} ${model} B=${batch}: ${row.images_per_s} img/s`);
    }
  }
}
if (vitRows.length > 0) {
  console.log([
    "| backend | model | batch | img/s | ms/batch | compile ms | peak RSS MB |",
    "|---|---|---|---|---|---|---|",
    ...vitRows.map((r) =>
      `| ${r.backend} | ${r.model} | ${r.batch} | ${r.images_per_s} | ${r.ms_per_batch_median} | ` +
      `${r.compile_ms} | ${r.peak_rss_mb} |`
    ),
  ].join("\n"));
  const out = values["out-vit"];
  await Deno.writeTextFile(out, vitRows.map((r) => JSON.stringify(r)).join("\n") + "\n");
  console.error(`wrote ${out}`);
}
