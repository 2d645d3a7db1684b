/**
 * Tessera against a peer runtime, ONNX Runtime (`onnxruntime-node`, CPU execution provider,
 * 2 intra-op threads), on the same tokenizer work: same graph, same weights (`initParams(graph,
 * 0)`), same input, fp32, host Float32Array in to output in host memory, median of `--runs`
 * (at least 10) after two warm-up runs, one process per measurement.
 *
 *     deno run -A bench/compare.ts [--variants seed,standard] [--batches 1,8,32]
 *       [--backend auto] [--runs 10] [--ort npm:onnxruntime-node@1.30.0]
 *
 * First it checks, per variant at B=1, that ONNX Runtime's output matches Tessera's `reference`
 * backend (max abs error <= 1e-4). Then, per cell, it runs `bench/tokenizer.ts --json` in one
 * child process and the peer in another, prints one JSON line per cell and finally a markdown
 * table with the ratio tessera / ORT. When ONNX Runtime cannot be installed or loaded it prints
 * one `peer not installed: ...` line and exits 0.
 *
 * The peer children run this file with `--peer` (or `--check`) under `--no-lock`, so fetching
 * `onnxruntime-node` leaves the project's `deno.lock` alone.
 * @module
 */

import { parseArgs } from "node:util";
import {
  BACKEND_NAMES,
  type BackendName,
  compile,
  type Graph,
  initParams,
  patchEmbedding,
  seedTokenizer,
} from "../mod.ts";
import { buildTokenizerOnnx, type TokenizerVariant, VIT_B16_SIZES } from "./onnx_models.ts";
import type { BenchResult } from "./tokenizer.ts";

/** The ONNX Runtime package the peer loads unless `--ort` says otherwise. */
export const ORT_SPECIFIER = "npm:onnxruntime-node@1.30.0";

/** Max abs error allowed between ONNX Runtime and Tessera's `reference` backend at B=1. */
export const PARITY_TOLERANCE = 1e-4;

/** Exit code of a peer child that could not load ONNX Runtime. */
const EXIT_PEER_MISSING = 3;

/** The part of an ONNX Runtime tensor the benchmark reads. */
export interface OrtTensor {
  /** The values, in host memory for the CPU execution provider. */
  readonly data: unknown;
  /** The shape. */
  readonly dims: readonly number[];
}

/** The part of `InferenceSession` the benchmark uses. */
export interface OrtSession {
  /** Runs the model on named inputs. */
  run(feeds: Record<string, OrtTensor>): Promise<Record<string, OrtTensor>>;
  /** Frees the native session. */
  release(): Promise<void>;
}

/** The part of the `onnxruntime-node` module the benchmark uses. */
export interface OrtModule {
  /** Session factory. */
  readonly InferenceSession: {
    create(model: Uint8Array, options: Record<string, unknown>): Promise<OrtSession>;
  };
  /** Tensor constructor. */
  readonly Tensor: new (type: "float32", data: Float32Array, dims: readonly number[]) => OrtTensor;
  /** Runtime info; `versions.node` is the package version. */
  readonly env: { readonly versions: Readonly<Record<string, string>> };
}

/** ONNX Runtime session options of every peer run: CPU, 2 intra-op threads, all optimizations. */
export const ORT_SESSION_OPTIONS: Readonly<Record<string, unknown>> = {
  executionProviders: ["cpu"],
  intraOpNumThreads: 2,
  interOpNumThreads: 1,
  graphOptimizationLevel: "all",
};

/** One peer measurement, the counterpart of `BenchResult`. */
export interface PeerResult {
  /** `seed` or `standard`. */
  variant: TokenizerVariant;
  /** Images per run. */
  batch: number;
  /** `onnxruntime-node <version>`. */
  peer: string;
  /** Throughput at the median run time. */
  images_per_s: number;
  /** Median milliseconds per run. */
  ms_per_batch_median: number;
  /** `InferenceSession.create` time (graph optimization included). */
  session_ms: number;
  /** Resident set size after the runs, MiB. */
  peak_rss_mb: number;
}

/** One parity check of ONNX Runtime against Tessera's `reference` backend. */
export interface ParityResult {
  /** `seed` or `standard`. */
  variant: TokenizerVariant;
  /** Batch size of the check (1). */
  batch: number;
  /** Largest absolute difference over the output. */
  max_abs_error: number;
  /** Whether `max_abs_error <= PARITY_TOLERANCE`. */
  ok: boolean;
}

/** One row of the comparison. */
export interface CompareRow {
  /** `seed` or `standard`. */
  variant: string;
  /** Images per run. */
  batch: number;
  /** The backend Tessera ran on (after any fallback). */
  tessera_backend: string;
  /** Tessera's throughput. */
  tessera_images_per_s: number;
  /** ONNX Runtime's throughput. */
  ort_images_per_s: number;
  /** `tessera_images_per_s / ort_images_per_s`. */
  ratio: number;
  /** Tessera's median ms per batch. */
  tessera_ms_per_batch: number;
  /** ONNX Runtime's median ms per batch. */
  ort_ms_per_batch: number;
  /** The peer and its version. */
  peer: string;
  /** Tessera's device string. */
  device: string;
}

/** Loads ONNX Runtime from `specifier` (a runtime import, so type checking never fetches it). */
export async function loadOrt(specifier: string = ORT_SPECIFIER): Promise<OrtModule> {
  const mod = (await import(specifier)) as Partial<OrtModule> & { default?: Partial<OrtModule> };
  const ort = mod.InferenceSession ? mod : mod.default;
  if (!ort?.InferenceSession || !ort.Tensor || !ort.env) {
    throw new Error(`${specifier} does not export InferenceSession/Tensor/env`);
  }
  return ort as OrtModule;
}

function tokenizerGraph(variant: TokenizerVariant): Graph {
  return variant === "seed" ? seedTokenizer(VIT_B16_SIZES) : patchEmbedding(VIT_B16_SIZES);
}

/** The benchmark input, identical to `bench/tokenizer.ts`'s. */
function benchInput(batch: number): { shape: number[]; data: Float32Array } {
  const { height, width } = VIT_B16_SIZES;
  const shape = [batch, 3, height, width];
  const data = new Float32Array(batch * 3 * height * width).map((_, i) => (i % 251) / 251);
  return { shape, data };
}

function outputData(out: Record<string, OrtTensor>): Float32Array {
  const data = out.output?.data;
  if (!(data instanceof Float32Array)) throw new Error("ONNX Runtime returned no float32 output");
  return data;
}

/**
 * Times ONNX Runtime on one cell: same weights as Tessera's default (`initParams(graph, 0)`),
 * same input, two warm-up runs, then the median of `max(10, runs)` runs.
 */
export async function benchOrt(
  ort: OrtModule,
  variant: TokenizerVariant,
  batch: number,
  runs = 10,
): Promise<PeerResult> {
  const bytes = buildTokenizerOnnx(variant, batch, initParams(tokenizerGraph(variant), 0));
  const { shape, data } = benchInput(batch);
  const t0 = performance.now();
  const session = await ort.InferenceSession.create(bytes, { ...ORT_SESSION_OPTIONS });
  const sessionMs = performance.now() - t0;
  const once = async () => {
    const out = await session.run({ image: new ort.Tensor("float32", data, shape) });
    return outputData(out);
  };
  for (let i = 0; i < 2; i++) await once();
  const times: number[] = [];
  for (let i = 0; i < Math.max(10, runs); i++) {
    const start = performance.now();
    await once();
    times.push(performance.now() - start);
  }
  await session.release();
  times.sort((a, b) => a - b);
  const median = times[Math.floor(times.length / 2)];
  return {
    variant,
    batch,
    peer: `onnxruntime-node ${ort.env.versions.node ?? ort.env.versions.common ?? "?"}`,
    images_per_s: Number((batch / (median / 1000)).toFixed(2)),
    ms_per_batch_median: Number(median.toFixed(3)),
    session_ms: Number(sessionMs.toFixed(1)),
    peak_rss_mb: Number((Deno.memoryUsage().rss / 2 ** 20).toFixed(1)),
  };
}

/** Runs ONNX Runtime and Tessera's `reference` backend on the same weights and input at B=1. */
export async function checkParity(
  ort: OrtModule,
  variant: TokenizerVariant,
): Promise<ParityResult> {
  const graph = tokenizerGraph(variant);
  const weights = initParams(graph, 0);
  const { shape, data } = benchInput(1);
  const session = await ort.InferenceSession.create(
    buildTokenizerOnnx(variant, 1, weights),
    { ...ORT_SESSION_OPTIONS },
  );
  const got = outputData(await session.run({ image: new ort.Tensor("float32", data, shape) }));
  await session.release();
  const model = await compile(graph, { backend: "reference", weights, onWarning: () => {} });
  const want = (await model.run({ image: { shape, data } })).output.data;
  model.dispose();
  let worst = got.length === want.length ? 0 : Infinity;
  for (let i = 0; i < Math.min(got.length, want.length); i++) {
    const e = Math.abs(got[i] - want[i]);
    if (!(e <= worst)) worst = Number.isNaN(e) ? Infinity : e;
  }
  return { variant, batch: 1, max_abs_error: worst, ok: worst <= PARITY_TOLERANCE };
}

/** The markdown table of `rows`. */
export function markdownTable(rows: readonly CompareRow[]): string {
  return [
    "| variant | batch | tessera backend | tessera img/s | ORT img/s | ratio (tessera/ORT) |",
    "|---|---|---|---|---|---|",
    ...rows.map((r) =>
      `| ${r.variant} | ${r.batch} | ${r.tessera_backend} | ${r.tessera_images_per_s} | ` +
      `${r.ort_images_per_s} | ${r.ratio.toFixed(3)} |`
    ),
  ].join("\n");
}

interface Child {
  readonly code: number;
  readonly json: unknown;
  readonly stdout: string;
  readonly stderr: string;
}

async function runChild(args: string[]): Promise<Child> {
  const out = await new Deno.Command(Deno.execPath(), { args, stdout: "piped", stderr: "piped" })
    .output();
  const stdout = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr);
  const line = stdout.split("\n").find((l) => l.startsWith("{"));
  return { code: out.code, json: line ? JSON.parse(line) : undefined, stdout, stderr };
}

function lastLines(text: string, n = 5): string {
  return text.trim().split("\n").slice(-n).join("\n");
}

function isVariant(v: string): v is TokenizerVariant {
  return v === "seed" || v === "standard";
}

/** Child mode: one peer measurement or parity check, printed as one JSON line. */
async function peerMain(mode: "peer" | "check", spec: string, variant: TokenizerVariant) {
  let ort: OrtModule;
  try {
    ort = await loadOrt(spec);
  } catch (e) {
    const why = (e instanceof Error ? e.message : String(e)).split("\n")[0];
    console.log(`peer not installed: ${spec} could not be loaded (${why})`);
    Deno.exit(EXIT_PEER_MISSING);
  }
  const { values } = parseArgs({
    args: Deno.args,
    options: { batch: { type: "string", default: "1" }, runs: { type: "string", default: "10" } },
    strict: false,
  });
  const result = mode === "check"
    ? await checkParity(ort, variant)
    : await benchOrt(ort, variant, Number(values.batch), Number(values.runs));
  console.log(JSON.stringify(result));
}

/** Orchestrator: parity per variant, then Tessera and the peer per cell, each in its own child. */
async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      variants: { type: "string", default: "seed,standard" },
      batches: { type: "string", default: "1,8,32" },
      backend: { type: "string", default: "auto" },
      runs: { type: "string", default: "10" },
      ort: { type: "string", default: ORT_SPECIFIER },
    },
  });
  const variants = values.variants.split(",");
  const batches = values.batches.split(",").map(Number);
  const backend = values.backend as BackendName;
  const bad = variants.find((v) => !isVariant(v));
  if (bad !== undefined) {
    console.error(`error: --variants must be seed and/or standard, got ${bad}`);
    return 1;
  }
  if (!BACKEND_NAMES.includes(backend)) {
    console.error(`error: --backend must be one of ${BACKEND_NAMES.join(", ")}`);
    return 1;
  }
  if (!batches.every((b) => Number.isSafeInteger(b) && b > 0)) {
    console.error(`error: --batches must be positive integers, got ${values.batches}`);
    return 1;
  }
  const self = new URL(import.meta.url).pathname;
  const tokenizer = new URL("./tokenizer.ts", import.meta.url).pathname;
  const peerArgs = (mode: string, variant: string) => [
    "run",
    "-A",
    "--no-lock",
    self,
    `--${mode}`,
    "--ort",
    values.ort,
    "--variant",
    variant,
  ];

  for (const variant of variants) {
    const check = await runChild(peerArgs("check", variant));
    if (check.code === EXIT_PEER_MISSING) {
      console.log(check.stdout.trim().split("\n").find((l) => l.startsWith("peer not installed")));
      return 0;
    }
    const parity = check.json as ParityResult | undefined;
    if (check.code !== 0 || !parity) {
      console.error(
        `${variant}: parity check failed (exit ${check.code})\n${lastLines(check.stderr)}`,
      );
      return 1;
    }
    console.log(JSON.stringify({ parity }));
    if (!parity.ok) {
      console.error(
        `${variant}: ONNX Runtime differs from the reference backend by ${parity.max_abs_error} ` +
          `(> ${PARITY_TOLERANCE}); the models do not compute the same thing`,
      );
      return 1;
    }
  }

  const rows: CompareRow[] = [];
  for (const variant of variants) {
    for (const batch of batches) {
      const cell = `${variant} B=${batch}`;
      const t = await runChild([
        "run",
        "-A",
        tokenizer,
        ...["--variant", variant, "--batch", String(batch), "--backend", backend],
        ...["--runs", values.runs, "--json"],
      ]);
      const tessera = t.json as BenchResult | undefined;
      if (t.code !== 0 || !tessera) {
        console.error(`${cell}: tessera failed (exit ${t.code})\n${lastLines(t.stderr)}`);
        continue;
      }
      const p = await runChild([
        ...peerArgs("peer", variant),
        "--batch",
        String(batch),
        "--runs",
        values.runs,
      ]);
      const peer = p.json as PeerResult | undefined;
      if (p.code !== 0 || !peer) {
        console.error(`${cell}: ORT failed (exit ${p.code})\n${lastLines(p.stderr)}`);
        continue;
      }
      const row: CompareRow = {
        variant,
        batch,
        tessera_backend: tessera.backend,
        tessera_images_per_s: tessera.images_per_s,
        ort_images_per_s: peer.images_per_s,
        ratio: Number((tessera.images_per_s / peer.images_per_s).toFixed(4)),
        tessera_ms_per_batch: tessera.ms_per_batch_median,
        ort_ms_per_batch: peer.ms_per_batch_median,
        peer: peer.peer,
        device: tessera.device,
      };
      rows.push(row);
      console.log(JSON.stringify(row));
    }
  }
  console.log("");
  console.log(markdownTable(rows));
  return rows.length === variants.length * batches.length ? 0 : 1;
}

if (import.meta.main) {
  const mode = Deno.args.includes("--peer") ? "peer" : Deno.args.includes("--check") ? "check" : "";
  if (mode === "") {
    Deno.exit(await main());
  }
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      variant: { type: "string", default: "seed" },
      ort: { type: "string", default: ORT_SPECIFIER },
    },
    strict: false,
  });
  const variant = String(values.variant);
  if (!isVariant(variant)) {
    console.error(`error: --variant must be seed or standard, got ${variant}`);
    Deno.exit(1);
  }
  await peerMain(mode, String(values.ort), variant);
}
