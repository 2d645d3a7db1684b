/**
 * Peak memory of loading a timm ViT checkpoint (issue 13: a 346 MB ViT-B checkpoint loads with
 * peak RSS at most 1.3x its size). Writes a random ViT-B/16 checkpoint (F32, timm names, 346 MB)
 * to a temporary folder, then in a fresh Deno process opens it and reads every tensor the graph
 * needs, and prints one JSON line: the file size, the process's peak RSS (`VmHWM`) before and
 * after loading, and the ratio. `--compile` also compiles the model (`wasm`) and runs one image.
 *
 * Run: `deno run -A bench/load_weights.ts [--model vit_base_patch16_224] [--compile]`
 * @module
 */

import { openSafetensors, vit, VIT_PRESETS, type VitPresetName } from "../mod.ts";

const args = Deno.args;
const at = args.indexOf("--model");
const model = (at >= 0 ? args[at + 1] : "vit_base_patch16_224") as VitPresetName;
if (args[0] !== "--child" && !Object.hasOwn(VIT_PRESETS, model)) {
  throw new Error(`--model ${model} is not a preset (${Object.keys(VIT_PRESETS).join(", ")})`);
}

/** The process's peak resident set size in MB, from /proc (Linux). */
function peakRssMb(): number {
  const status = Deno.readTextFileSync("/proc/self/status");
  const kb = Number(status.match(/VmHWM:\s+(\d+) kB/)?.[1] ?? NaN);
  return kb / 1024;
}

if (args[0] === "--child") {
  // The measured process: nothing else allocated but Deno itself and the module graph.
  const [, path, name, compileToo] = args;
  const before = peakRssMb();
  const g = vit(VIT_PRESETS[name as VitPresetName]);
  const file = await openSafetensors(path);
  const start = performance.now();
  const weights = (await file.read(g.params().map((p) => p.attrs.name))).tensors;
  const loadMs = performance.now() - start;
  file.close();
  const loaded = peakRssMb();
  let compiled: number | undefined;
  if (compileToo === "1") {
    const { compile } = await import("../mod.ts");
    const m = await compile(g, { backend: "wasm", weights });
    const c = VIT_PRESETS[name as VitPresetName];
    const image = { shape: [1, 3, c.image, c.image], data: new Float32Array(3 * c.image ** 2) };
    await m.run({ image });
    m.dispose();
    compiled = peakRssMb();
  }
  console.log(JSON.stringify({ before, loaded, loadMs, compiled, tensors: weights.size }));
  Deno.exit(0);
}

/** Writes a checkpoint of random values tensor by tensor, never holding it all in memory. */
async function writeCheckpoint(path: string, name: VitPresetName): Promise<number> {
  const params = vit(VIT_PRESETS[name]).params();
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const p of params) {
    const n = (p.shape as number[]).reduce((a, b) => a * b, 1);
    header[p.attrs.name] = { dtype: "F32", shape: p.shape, data_offsets: [offset, offset + 4 * n] };
    offset += 4 * n;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const pad = Math.ceil(json.length / 8) * 8;
  const file = await Deno.open(path, { write: true, create: true, truncate: true });
  try {
    const head = new Uint8Array(8 + pad).fill(0x20);
    new DataView(head.buffer).setBigUint64(0, BigInt(pad), true);
    head.set(json, 8);
    await file.write(head);
    let seed = 1;
    for (const p of params) {
      const values = new Float32Array((p.shape as number[]).reduce((a, b) => a * b, 1));
      for (let i = 0; i < values.length; i++) {
        seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
        values[i] = (seed / 2 ** 32 - 0.5) * 0.04;
      }
      const bytes = new Uint8Array(values.buffer);
      for (let done = 0; done < bytes.length;) done += await file.write(bytes.subarray(done));
    }
  } finally {
    file.close();
  }
  return 8 + pad + offset;
}

const dir = await Deno.makeTempDir({ prefix: "tessera_load_" });
try {
  const path = `${dir}/${model}.safetensors`;
  const bytes = await writeCheckpoint(path, model);
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL(import.meta.url).pathname,
      "--child",
      path,
      model,
      args.includes("--compile") ? "1" : "0",
    ],
    stderr: "inherit",
  }).output();
  if (!out.success) Deno.exit(1);
  const child = JSON.parse(new TextDecoder().decode(out.stdout));
  const fileMb = bytes / 2 ** 20;
  console.log(JSON.stringify({
    bench: "load_weights",
    model,
    file_mb: Number(fileMb.toFixed(1)),
    rss_before_load_mb: Number(child.before.toFixed(1)),
    peak_rss_after_load_mb: Number(child.loaded.toFixed(1)),
    peak_over_file: Number((child.loaded / fileMb).toFixed(3)),
    load_ms: Math.round(child.loadMs),
    ...(child.compiled === undefined
      ? {}
      : { peak_rss_after_compile_and_run_mb: Number(child.compiled.toFixed(1)) }),
  }));
} finally {
  await Deno.remove(dir, { recursive: true });
}
