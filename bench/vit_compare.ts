/**
 * Tessera against ONNX Runtime on the same whole timm ViT, in the same run (issue 14's peer
 * measurement). The peer runs where a user of ONNX Runtime runs it: in Node, as a child process
 * (`bench/vit_peer.mjs`), `onnxruntime-node` on the CPU execution provider and, with
 * `--peers node,web`, `onnxruntime-web`'s WebAssembly backend in Node too.
 *
 *     deno run -A bench/vit_compare.ts --model vit_tiny_patch16_224 --batch 1,8 --backend wasm
 *       [--runs 10] [--warmup-runs 2] [--threads 2] [--peers node,web] [--rounds 1]
 *       [--wait-idle 0] [--keep DIR]
 *
 * Per model: `vit(VIT_PRESETS[model])` with `initParams(graph, 0)` weights, exported to ONNX
 * (`bench/onnx_export.ts`: the same graph and weights) per batch, plus a fixed input
 * (`(i % 251) / 251`), written to a temp folder. Per cell (model x batch): Tessera in one child
 * process (this file with `--tessera`: compile + prepare timed as `compile_ms`, at least
 * `--warmup-runs` runs and 0.5 s of warm-up, the median of `--runs`, host Float32Array in, logits
 * on the host), then each peer in its own Node child, one after the other, never concurrently.
 * Logits parity: the max abs difference over `max(1, max |peer|)` must be <= 1e-3.
 *
 * On a shared box: `--rounds R` repeats each cell's Tessera-then-peers sequence R times, and the
 * table takes each system's best round (its median; the range in brackets); `--wait-idle P`
 * waits, before each measurement and for at most 2 minutes, until the CPUs were P% idle over 2 s.
 *
 * Prints a `machine` JSON line, one JSON line per (model, batch, system), and a markdown table of
 * the ratio Tessera / peer. The peers are installed once (`npm install --prefix`) into
 * `$TESSERA_PEERS/..` (default `~/.cache/tessera-peers`), never into the repository; when that
 * fails, Tessera's rows still print, with one `peer not installed: ...` line.
 * @module
 */

import { parseArgs } from "node:util";
import {
  BACKEND_NAMES,
  type BackendName,
  compile,
  initParams,
  vit,
  VIT_PRESETS,
  type VitPresetName,
} from "../mod.ts";
import { exportOnnx } from "./onnx_export.ts";

/** The peer packages, pinned. */
export const PEER_PACKAGES = {
  node: "onnxruntime-node@1.30.0",
  web: "onnxruntime-web@1.30.0",
} as const;

/** Which peers `--peers` can name: `node` (onnxruntime-node) and `web` (onnxruntime-web, wasm). */
export type PeerName = keyof typeof PEER_PACKAGES;

/** The largest scaled logits difference between Tessera and a peer that passes. */
export const LOGITS_TOLERANCE = 1e-3;

/** One Tessera measurement (a `--tessera` child's JSON line). */
export interface TesseraCell {
  /** Always `tessera`. */
  system: "tessera";
  /** Preset name. */
  model: string;
  /** Images per run. */
  batch: number;
  /** The backend that ran (after any fallback). */
  backend: string;
  /** Threads of the CPU backends (the `threads` compile option). */
  threads: number;
  /** Images per second at the median run. */
  images_per_s: number;
  /** Median milliseconds per run. */
  ms_per_batch_median: number;
  /** Fastest run, ms (on a shared box, the least disturbed one). */
  ms_min: number;
  /** `compile()` + `prepare()`. */
  compile_ms: number;
  /** Timed runs. */
  runs: number;
  /** Resident set size at the end, MiB. */
  rss_mb: number;
  /** `Deno <version>`. */
  runtime: string;
}

/** One peer measurement (`bench/vit_peer.mjs`'s JSON line). */
export interface PeerCell {
  /** `onnxruntime-node 1.30.0 in Node v20...`. */
  peer: string;
  /** Images per run. */
  batch: number;
  /** `intraOpNumThreads`. */
  threads: number;
  /** Images per second at the median run. */
  images_per_s: number;
  /** Median milliseconds per run. */
  ms_per_batch_median: number;
  /** Fastest run, ms. */
  ms_min: number;
  /** `InferenceSession.create`, graph optimizations included. */
  session_ms: number;
  /** Timed runs. */
  runs: number;
  /** The first logits of the last run. */
  first_logits: number[];
  /** Sum of the last run's logits. */
  logits_sum: number;
}

/** One peer's rounds of one cell. */
export interface PeerRounds {
  /** Which peer. */
  readonly name: PeerName;
  /** One result per round. */
  readonly cells: readonly PeerCell[];
  /** The worst scaled logits difference from Tessera's over the rounds. */
  readonly maxScaledError: number;
}

/** One row of the comparison table: a (model, batch) cell, every round of every system. */
export interface CompareRow {
  /** Preset name. */
  readonly model: string;
  /** Images per run. */
  readonly batch: number;
  /** Tessera's result, one per round. */
  readonly tessera: readonly TesseraCell[];
  /** Each peer's results. */
  readonly peers: readonly PeerRounds[];
}

/**
 * The best round's throughput (on a shared box, the least disturbed one) and, over two or more
 * rounds, the range of the rounds' medians.
 *
 * @example
 * ```ts
 * import { bestOf } from "./vit_compare.ts";
 * bestOf([{ images_per_s: 5.1 }, { images_per_s: 7.2 }]); // { best: 7.2, text: "7.2 (5.1-7.2)" }
 * ```
 */
export function bestOf(cells: readonly { images_per_s: number }[]): { best: number; text: string } {
  const all = cells.map((c) => c.images_per_s);
  const best = Math.max(...all);
  const low = Math.min(...all);
  return { best, text: all.length > 1 ? `${best} (${low}-${best})` : String(best) };
}

/**
 * `max |got - want| / max(1, max |want|)`: the parity metric (NaN or a length mismatch gives
 * Infinity).
 *
 * @example
 * ```ts
 * import { scaledDifference } from "./vit_compare.ts";
 * scaledDifference(Float32Array.of(1, 4.002), Float32Array.of(1, 4)); // about 5e-4
 * ```
 */
export function scaledDifference(got: Float32Array, want: Float32Array): number {
  if (got.length !== want.length) return Infinity;
  let diff = 0;
  let scale = 1;
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i] - want[i]);
    if (!(d <= diff)) diff = Number.isNaN(d) ? Infinity : d;
    scale = Math.max(scale, Math.abs(want[i]));
  }
  return diff / scale;
}

/**
 * The benchmark input for `batch` images of `channels x size x size`: `(i % 251) / 251`.
 *
 * @example
 * ```ts
 * import { benchImage } from "./vit_compare.ts";
 * benchImage(1, 3, 224).data.length; // 150528
 * ```
 */
export function benchImage(
  batch: number,
  channels: number,
  size: number,
): { shape: number[]; data: Float32Array } {
  const shape = [batch, channels, size, size];
  const data = Float32Array.from(
    { length: batch * channels * size * size },
    (_, i) => (i % 251) / 251,
  );
  return { shape, data };
}

/**
 * The markdown table of `rows`: Tessera's throughput, each peer's, and the ratio Tessera / peer,
 * from each system's best round (the range of the rounds in brackets).
 *
 * @example
 * ```ts
 * import { markdownTable } from "./vit_compare.ts";
 * markdownTable([], ["node"]).split("\n").length; // 2: the header and its rule
 * ```
 */
export function markdownTable(rows: readonly CompareRow[], peers: readonly PeerName[]): string {
  const label = { node: "onnxruntime-node", web: "onnxruntime-web wasm" };
  const head = ["model", "B", "Tessera backend", "Tessera img/s"];
  for (const p of peers) {
    head.push(`${label[p]} (Node) img/s`, `Tessera / ${label[p]}`, `parity vs ${p}`);
  }
  const lines = [`| ${head.join(" | ")} |`, `|${head.map(() => "---").join("|")}|`];
  for (const r of rows) {
    const ours = bestOf(r.tessera);
    const backends = [...new Set(r.tessera.map((t) => t.backend))].join(", ");
    const cells = [r.model, String(r.batch), backends, ours.text];
    for (const p of peers) {
      const got = r.peers.find((x) => x.name === p);
      if (!got || got.cells.length === 0) cells.push("-", "-", "-");
      else {
        const theirs = bestOf(got.cells);
        cells.push(
          theirs.text,
          (ours.best / theirs.best).toFixed(3),
          got.maxScaledError.toExponential(1),
        );
      }
    }
    lines.push(`| ${cells.join(" | ")} |`);
  }
  return lines.join("\n");
}

function median(times: number[]): number {
  const sorted = [...times].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

function isPreset(name: string): name is VitPresetName {
  return Object.hasOwn(VIT_PRESETS, name);
}

function readF32(path: string): Float32Array {
  const raw = Deno.readFileSync(path);
  return new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
}

function writeF32(path: string, data: Float32Array): void {
  Deno.writeFileSync(path, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
}

/** Child mode: one Tessera cell; the input from `--input`, the logits written to `--output`. */
async function tesseraMain(args: {
  model: VitPresetName;
  batch: number;
  backend: BackendName;
  runs: number;
  warmupRuns: number;
  threads: number;
  input: string;
  output: string;
}): Promise<void> {
  const preset = VIT_PRESETS[args.model];
  const g = vit(preset);
  const weights = initParams(g, 0);
  const image = { shape: [args.batch, 3, preset.image, preset.image], data: readF32(args.input) };
  const t0 = performance.now();
  const model = await compile(g, { backend: args.backend, weights, threads: args.threads });
  await model.prepare({ image: image.shape });
  const compileMs = performance.now() - t0;
  const into = { output: new Float32Array(args.batch * preset.classes) };
  const warm = performance.now();
  for (let i = 0; i < args.warmupRuns || performance.now() - warm < 500; i++) {
    await model.run({ image }, { into });
  }
  const times: number[] = [];
  for (let i = 0; i < args.runs; i++) {
    const start = performance.now();
    await model.run({ image }, { into });
    times.push(performance.now() - start);
  }
  writeF32(args.output, into.output);
  const ms = median(times);
  const cell: TesseraCell = {
    system: "tessera",
    model: args.model,
    batch: args.batch,
    backend: model.backend,
    threads: args.threads,
    images_per_s: Number((args.batch / (ms / 1000)).toFixed(2)),
    ms_per_batch_median: Number(ms.toFixed(2)),
    ms_min: Number(Math.min(...times).toFixed(2)),
    compile_ms: Number(compileMs.toFixed(0)),
    runs: args.runs,
    rss_mb: Number((Deno.memoryUsage().rss / 2 ** 20).toFixed(0)),
    runtime: `Deno ${Deno.version.deno}`,
  };
  model.dispose();
  console.log(JSON.stringify(cell));
}

interface Child {
  readonly code: number;
  readonly json: unknown;
  readonly stderr: string;
}

async function runChild(cmd: string, args: string[]): Promise<Child> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr);
  const line = stdout.split("\n").find((l) => l.startsWith("{"));
  return { code: out.code, json: line ? JSON.parse(line) : undefined, stderr };
}

function lastLine(text: string): string {
  return text.trim().split("\n").slice(-1)[0] ?? "";
}

/** The folder the peers are installed in (holding `node_modules`). */
function peersPrefix(): string {
  const env = Deno.env.get("TESSERA_PEERS");
  if (env) return env.replace(/\/node_modules\/?$/, "");
  return `${Deno.env.get("HOME") ?? "."}/.cache/tessera-peers`;
}

function installedVersion(prefix: string, pkg: string): string | undefined {
  try {
    const text = Deno.readTextFileSync(`${prefix}/node_modules/${pkg}/package.json`);
    return (JSON.parse(text) as { version?: string }).version;
  } catch {
    return undefined;
  }
}

/** Installs the missing peer packages into `prefix`; returns a reason when it could not. */
async function ensurePeers(prefix: string, peers: readonly PeerName[]): Promise<string | null> {
  const missing = peers.map((p) => PEER_PACKAGES[p]).filter((spec) => {
    const [pkg, version] = spec.split("@");
    return installedVersion(prefix, pkg) !== version;
  });
  if (missing.length === 0) return null;
  console.error(`installing ${missing.join(", ")} into ${prefix} (once)`);
  await Deno.mkdir(prefix, { recursive: true });
  try {
    const out = await new Deno.Command("npm", {
      args: ["install", "--prefix", prefix, "--save-exact", "--no-audit", "--no-fund", ...missing],
      // onnxruntime-node's install script would fetch CUDA binaries from NuGet; the CPU ones ship.
      env: { ONNXRUNTIME_NODE_INSTALL: "skip" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (out.code !== 0) {
      return `npm install exited ${out.code}: ${lastLine(new TextDecoder().decode(out.stderr))}`;
    }
  } catch (e) {
    return `npm could not run (${e instanceof Error ? e.message : String(e)})`;
  }
  return null;
}

/**
 * The version of the `node` on the PATH, or undefined. (Without one, Deno runs a spawned `node`
 * itself, which prints Deno's version: that is no Node.)
 */
function nodeVersion(): string | undefined {
  try {
    const out = new Deno.Command("node", { args: ["--version"], stdout: "piped" }).outputSync();
    const text = new TextDecoder().decode(out.stdout).trim();
    return out.success && /^v\d+\.\d+\.\d+$/.test(text) ? text : undefined;
  } catch {
    return undefined;
  }
}

/** The 1-minute load average (Linux), so a row measured on a busy box says so; -1 elsewhere. */
function loadAverage(): number {
  try {
    return Number(Deno.readTextFileSync("/proc/loadavg").split(" ")[0]);
  } catch {
    return -1;
  }
}

/** Busy and total CPU jiffies since boot (Linux `/proc/stat`), or undefined. */
function cpuJiffies(): { busy: number; total: number } | undefined {
  try {
    const line = Deno.readTextFileSync("/proc/stat").split("\n")[0];
    const [user, nice, system, idle, iowait, irq, softirq, steal] = line.trim().split(/\s+/)
      .slice(1, 9).map(Number);
    const total = user + nice + system + idle + iowait + irq + softirq + steal;
    return { busy: total - idle - iowait, total };
  } catch {
    return undefined;
  }
}

/**
 * Waits until the CPUs were at least `percent`% idle over 2 s (other jobs on a shared box), at
 * most `maxSeconds`; returns the idle percentage seen last (-1 where `/proc/stat` is missing).
 */
async function waitIdle(percent: number, maxSeconds: number): Promise<number> {
  const start = performance.now();
  for (;;) {
    const a = cpuJiffies();
    await new Promise((r) => setTimeout(r, 2000));
    const b = cpuJiffies();
    if (!a || !b || b.total === a.total) return -1;
    const idle = 100 * (1 - (b.busy - a.busy) / (b.total - a.total));
    if (idle >= percent || performance.now() - start > maxSeconds * 1000) {
      return Number(idle.toFixed(0));
    }
  }
}

function machine(): Record<string, string | number> {
  let cpu = "unknown";
  try {
    cpu = Deno.readTextFileSync("/proc/cpuinfo").match(/model name\s*:\s*(.*)/)?.[1] ?? cpu;
  } catch {
    // Not Linux.
  }
  return {
    cpus: navigator.hardwareConcurrency,
    cpu,
    os: `${Deno.build.os} ${Deno.build.arch}`,
    deno: Deno.version.deno,
    node: nodeVersion() ?? "not found",
    date: new Date().toISOString(),
    load_avg_1m: loadAverage(),
  };
}

/** Orchestrator: export, then per cell Tessera's child and each peer's Node child. */
async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      model: { type: "string", default: "vit_tiny_patch16_224" },
      batch: { type: "string", default: "1,8" },
      backend: { type: "string", default: "wasm" },
      runs: { type: "string", default: "10" },
      "warmup-runs": { type: "string", default: "2" },
      threads: { type: "string", default: String(navigator.hardwareConcurrency) },
      peers: { type: "string", default: "node,web" },
      rounds: { type: "string", default: "1" },
      "wait-idle": { type: "string", default: "0" },
      keep: { type: "string" },
    },
  });
  const models = values.model.split(",");
  const batches = values.batch.split(",").map(Number);
  const peers = values.peers === "" ? [] : values.peers.split(",");
  const backend = values.backend as BackendName;
  const [runs, warmupRuns, threads, rounds, idlePercent] = [
    values.runs,
    values["warmup-runs"],
    values.threads,
    values.rounds,
    values["wait-idle"],
  ].map(Number);
  const badModel = models.find((m) => !isPreset(m));
  if (badModel !== undefined) {
    console.error(
      `error: --model ${badModel} is not a preset (${Object.keys(VIT_PRESETS).join(", ")})`,
    );
    return 1;
  }
  if (!BACKEND_NAMES.includes(backend)) {
    console.error(`error: --backend must be one of ${BACKEND_NAMES.join(", ")}`);
    return 1;
  }
  if (!batches.every((b) => Number.isSafeInteger(b) && b > 0)) {
    console.error(`error: --batch must be positive integers, got ${values.batch}`);
    return 1;
  }
  if (![runs, threads, rounds].every((n) => Number.isSafeInteger(n) && n > 0)) {
    console.error(`error: --runs, --threads and --rounds must be positive integers`);
    return 1;
  }
  if (!(warmupRuns >= 0) || !(idlePercent >= 0 && idlePercent <= 100)) {
    console.error(`error: --warmup-runs must be >= 0 and --wait-idle a percentage`);
    return 1;
  }
  // Before each measurement, on a shared box: wait (at most 2 minutes) for the other jobs.
  const settle = async (): Promise<number | undefined> =>
    idlePercent > 0 ? await waitIdle(idlePercent, 120) : undefined;
  const badPeer = peers.find((p) => !Object.hasOwn(PEER_PACKAGES, p));
  if (badPeer !== undefined) {
    console.error(`error: --peers takes node and/or web, got ${badPeer}`);
    return 1;
  }
  const peerNames = peers as PeerName[];

  console.log(JSON.stringify({ machine: machine() }));
  const prefix = peersPrefix();
  let usable = peerNames;
  if (peerNames.length > 0) {
    const why = nodeVersion() === undefined
      ? "node (Node.js) is not on the PATH"
      : await ensurePeers(prefix, peerNames);
    if (why !== null) {
      console.log(`peer not installed: ${why}; Tessera's rows only`);
      usable = [];
    }
  }

  const dir = values.keep ?? await Deno.makeTempDir({ prefix: "tessera-vit-compare-" });
  await Deno.mkdir(dir, { recursive: true });
  const self = new URL(import.meta.url).pathname;
  const peerScript = new URL("./vit_peer.mjs", import.meta.url).pathname;
  const rows: CompareRow[] = [];
  let failures = 0;
  try {
    for (const name of models as VitPresetName[]) {
      const preset = VIT_PRESETS[name];
      const g = vit(preset);
      const weights = initParams(g, 0);
      for (const batch of batches) {
        const cell = `${name} B=${batch}`;
        const base = `${dir}/${name}_b${batch}`;
        const t0 = performance.now();
        Deno.writeFileSync(`${base}.onnx`, exportOnnx(g, weights, batch));
        const exportMs = performance.now() - t0;
        writeF32(`${base}.input.bin`, benchImage(batch, 3, preset.image).data);
        console.error(`${cell}: exported ONNX in ${exportMs.toFixed(0)} ms`);
        const tesseraRounds: TesseraCell[] = [];
        const peerRounds = new Map<PeerName, { cells: PeerCell[]; worst: number }>(
          usable.map((p) => [p, { cells: [], worst: 0 }]),
        );
        for (let round = 1; round <= rounds; round++) {
          const idle = await settle();
          console.error(`${cell}, round ${round}/${rounds}: Tessera`);
          const t = await runChild(Deno.execPath(), [
            "run",
            "-A",
            self,
            "--tessera",
            ...["--model", name, "--batch", String(batch), "--backend", backend],
            ...["--runs", String(runs), "--warmup-runs", String(warmupRuns)],
            ...["--threads", String(threads)],
            ...["--input", `${base}.input.bin`, "--output", `${base}.tessera.bin`],
          ]);
          const tessera = t.json as TesseraCell | undefined;
          if (t.code !== 0 || !tessera) {
            console.error(`${cell}: tessera failed (exit ${t.code}): ${lastLine(t.stderr)}`);
            failures++;
            break;
          }
          tesseraRounds.push(tessera);
          console.log(JSON.stringify({
            ...tessera,
            round,
            ...(idle === undefined ? {} : { cpu_idle_before_pct: idle }),
            load_avg_1m_after: loadAverage(),
          }));
          const ours = readF32(`${base}.tessera.bin`);
          for (const peer of usable) {
            const peerIdle = await settle();
            console.error(`${cell}, round ${round}/${rounds}: ${PEER_PACKAGES[peer]} in Node`);
            const out = `${base}.${peer}.bin`;
            const p = await runChild("node", [
              peerScript,
              ...["--model", `${base}.onnx`, "--batch", String(batch), "--runs", String(runs)],
              ...["--warmup-runs", String(warmupRuns), "--threads", String(threads)],
              ...["--input", `${base}.input.bin`, "--output", out],
              ...["--modules", `${prefix}/node_modules`],
              ...(peer === "web" ? ["--wasm"] : []),
            ]);
            const result = p.json as PeerCell | undefined;
            if (p.code !== 0 || !result) {
              console.error(`${cell}: ${peer} peer failed (exit ${p.code}): ${lastLine(p.stderr)}`);
              failures++;
              continue;
            }
            const maxScaledError = scaledDifference(ours, readF32(out));
            const ok = maxScaledError <= LOGITS_TOLERANCE;
            if (!ok) failures++;
            const rec = peerRounds.get(peer) as { cells: PeerCell[]; worst: number };
            rec.cells.push(result);
            rec.worst = Math.max(rec.worst, maxScaledError);
            console.log(JSON.stringify({
              system: peer === "node" ? "onnxruntime-node" : "onnxruntime-web",
              model: name,
              ...result,
              round,
              ran_in: "Node (child process, after Tessera, same run)",
              parity_max_scaled_error: Number(maxScaledError.toExponential(2)),
              parity_ok: ok,
              ...(peerIdle === undefined ? {} : { cpu_idle_before_pct: peerIdle }),
              load_avg_1m_after: loadAverage(),
              ratio_tessera_over_peer: Number(
                (tessera.images_per_s / result.images_per_s).toFixed(4),
              ),
            }));
          }
        }
        if (tesseraRounds.length === 0) continue;
        const row: CompareRow = {
          model: name,
          batch,
          tessera: tesseraRounds,
          peers: [...peerRounds].map(([p, r]) => ({
            name: p,
            cells: r.cells,
            maxScaledError: r.worst,
          })),
        };
        rows.push(row);
      }
    }
  } finally {
    if (values.keep === undefined) await Deno.remove(dir, { recursive: true });
  }
  console.log("");
  console.log(markdownTable(rows, usable));
  const peerLine = rows.flatMap((r) => r.peers.flatMap((p) => p.cells.map((c) => c.peer)));
  console.log(
    `\nPeers ran in Node as child processes, one at a time after Tessera in the same run: ` +
      `${[...new Set(peerLine)].join("; ") || "none"}. Tessera: Deno ${Deno.version.deno}, ` +
      `backend ${backend}, ${threads} threads; peers: intraOpNumThreads ${threads}. Parity: max ` +
      `|tessera - peer| / max(1, max |peer|) <= ${LOGITS_TOLERANCE}. ` +
      (rounds > 1
        ? `Each system's best of ${rounds} rounds (the range of the rounds' medians in brackets); `
        : "") +
      `img/s at the median of ${runs} runs.`,
  );
  return failures === 0 ? 0 : 1;
}

if (import.meta.main) {
  if (Deno.args.includes("--tessera")) {
    const { values } = parseArgs({
      args: Deno.args,
      options: {
        tessera: { type: "boolean" },
        model: { type: "string", default: "vit_tiny_patch16_224" },
        batch: { type: "string", default: "1" },
        backend: { type: "string", default: "wasm" },
        runs: { type: "string", default: "10" },
        "warmup-runs": { type: "string", default: "2" },
        threads: { type: "string", default: String(navigator.hardwareConcurrency) },
        input: { type: "string" },
        output: { type: "string" },
      },
    });
    if (!isPreset(values.model) || !values.input || !values.output) {
      console.error("error: --tessera needs a preset --model, --input and --output");
      Deno.exit(1);
    }
    await tesseraMain({
      model: values.model,
      batch: Number(values.batch),
      backend: values.backend as BackendName,
      runs: Number(values.runs),
      warmupRuns: Number(values["warmup-runs"]),
      threads: Number(values.threads),
      input: values.input,
      output: values.output,
    });
  } else {
    Deno.exit(await main());
  }
}
