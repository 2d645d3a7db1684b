/**
 * The benchmark grid behind `deno task bench`: backend x variant x batch, each cell in its own
 * process (so peak RSS is per cell), printed as a table and written as JSON lines.
 *
 *     deno run -A bench/grid.ts [--backends wasm,js,cpu,webasm,webgpu] [--batches 1,8,32]
 *       [--variants seed,standard] [--runs 10] [--cell-timeout 90] [--out bench/last_grid.jsonl]
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
  },
});
const adapter = await probeWebGpu();
const backends = (values.backends ?? (adapter ? "wasm,js,cpu,webasm,webgpu" : "wasm,js,cpu,webasm"))
  .split(
    ",",
  );
const cellTimeoutMs = Number(values["cell-timeout"]) * 1000;
const batches = values.batches.split(",").map(Number);
const variants = values.variants.split(",");
const script = new URL("./tokenizer.ts", import.meta.url).pathname;
const rows: BenchResult[] = [];
for (const backend of backends) {
  for (const variant of variants) {
    for (const batch of batches) {
      const args = ["run", "-A", script, "--variant", variant, "--batch", String(batch)];
      args.push("--backend", backend, "--runs", values.runs, "--json");
      // Slow cells (webasm on the standard variant) are cut off rather than stalling the grid.
      const child = new Deno.Command(Deno.execPath(), { args, stdout: "piped", stderr: "null" })
        .spawn();
      const timer = setTimeout(() => child.kill(), cellTimeoutMs);
      const out = await child.output();
      clearTimeout(timer);
      const line = new TextDecoder().decode(out.stdout).split("\n").find((l) => l.startsWith("{"));
      if (!out.success || !line) {
        const why = out.signal ? `cut off after ${values["cell-timeout"]} s` : `exit ${out.code}`;
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
await Deno.writeTextFile(values.out, rows.map((r) => JSON.stringify(r)).join("\n") + "\n");
console.error(`wrote ${values.out}`);
