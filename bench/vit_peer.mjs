// The ONNX Runtime peer of bench/vit_compare.ts, run in Node, where a user of ONNX Runtime runs it:
//
//   node bench/vit_peer.mjs --model PATH.onnx --batch B [--runs N] [--threads 2]
//     [--input PATH.bin] [--output PATH.bin] [--wasm] [--warmup-runs 3] [--warmup-s 0.5]
//     [--modules DIR]
//
// Loads onnxruntime-node (or with --wasm onnxruntime-web's WebAssembly backend, same threads) from
// DIR (default $TESSERA_PEERS or ~/.cache/tessera-peers/node_modules), creates a CPU session with
// `intraOpNumThreads` = --threads and all graph optimizations, warms up (at least --warmup-runs
// runs and --warmup-s seconds), then times `session.run` from a host Float32Array to the logits
// on the host --runs times. Prints one JSON line: images_per_s and ms_per_batch_median at the
// median run, session_ms, the peer and Node versions, the first logits and their sum (a
// checksum). --input is raw little-endian float32 (default: (i % 251) / 251); --output writes the
// last run's logits so.
// Exit 3: the runtime could not be loaded.
import { createRequire } from "node:module";
import { readFileSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    model: { type: "string" },
    batch: { type: "string", default: "1" },
    runs: { type: "string", default: "10" },
    threads: { type: "string", default: "2" },
    input: { type: "string" },
    output: { type: "string" },
    wasm: { type: "boolean", default: false },
    "warmup-runs": { type: "string", default: "3" },
    "warmup-s": { type: "string", default: "0.5" },
    modules: { type: "string" },
  },
});
const die = (msg, code = 1) => {
  console.error(`vit_peer: ${msg}`);
  process.exit(code);
};
if (process.versions.deno) die("run this with Node (node bench/vit_peer.mjs), not Deno");
if (!values.model) die("--model PATH.onnx is required");
const batch = Number(values.batch);
const runs = Number(values.runs);
const threads = Number(values.threads);
if (!(Number.isSafeInteger(batch) && batch > 0)) die(`--batch must be a positive integer`);
if (!(Number.isSafeInteger(runs) && runs > 0)) die(`--runs must be a positive integer`);
if (!(Number.isSafeInteger(threads) && threads > 0)) die(`--threads must be a positive integer`);

const modules = values.modules ?? process.env.TESSERA_PEERS ??
  join(homedir(), ".cache", "tessera-peers", "node_modules");
const pkg = values.wasm ? "onnxruntime-web" : "onnxruntime-node";
let ort;
let version;
try {
  const require = createRequire(join(modules, "_peer.js"));
  ort = require(pkg);
  version = JSON.parse(readFileSync(join(modules, pkg, "package.json"), "utf8")).version;
} catch (e) {
  die(`${pkg} could not be loaded from ${modules} (${String(e.message).split("\n")[0]})`, 3);
}

const options = {
  executionProviders: [values.wasm ? "wasm" : "cpu"],
  intraOpNumThreads: threads,
  interOpNumThreads: 1,
  graphOptimizationLevel: "all",
};
if (values.wasm) ort.env.wasm.numThreads = threads;

const t0 = performance.now();
const session = await ort.InferenceSession.create(readFileSync(values.model), options);
const sessionMs = performance.now() - t0;
const [inputName] = session.inputNames;
const [outputName] = session.outputNames;
const dims = session.inputMetadata?.[0]?.shape;
if (!Array.isArray(dims) || dims.some((d) => typeof d !== "number")) {
  die(`the model's input ${inputName} has no static shape`);
}
if (dims[0] !== batch) die(`the model is for batch ${dims[0]}, not --batch ${batch}`);
const count = dims.reduce((a, b) => a * b, 1);
let data;
if (values.input) {
  const raw = readFileSync(values.input);
  data = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
  if (data.length !== count) die(`--input has ${data.length} floats, the model wants ${count}`);
} else {
  data = Float32Array.from({ length: count }, (_, i) => (i % 251) / 251);
}

const once = async () => {
  const out = await session.run({ [inputName]: new ort.Tensor("float32", data, dims) });
  return out[outputName].data;
};
let logits;
const warm = performance.now();
const warmupRuns = Number(values["warmup-runs"]);
for (
  let i = 0;
  i < warmupRuns || performance.now() - warm < 1000 * Number(values["warmup-s"]);
  i++
) {
  logits = await once();
}
const times = [];
for (let i = 0; i < runs; i++) {
  const start = performance.now();
  logits = await once();
  times.push(performance.now() - start);
}
await session.release();
times.sort((a, b) => a - b);
const median = times[Math.floor(times.length / 2)];
if (values.output) {
  writeFileSync(values.output, new Uint8Array(logits.buffer, logits.byteOffset, logits.byteLength));
}
let sum = 0;
for (const v of logits) sum += v;
console.log(JSON.stringify({
  peer: `${pkg} ${version}${values.wasm ? " (wasm backend)" : ""} in Node ${process.version}`,
  batch,
  threads,
  images_per_s: Number((batch / (median / 1000)).toFixed(2)),
  ms_per_batch_median: Number(median.toFixed(3)),
  ms_min: Number(times[0].toFixed(3)),
  ms_max: Number(times[times.length - 1].toFixed(3)),
  runs,
  session_ms: Number(sessionMs.toFixed(1)),
  first_logits: Array.from(logits.slice(0, 5), (v) => Number(v.toPrecision(7))),
  logits_sum: Number(sum.toPrecision(9)),
}));
// onnxruntime-web's worker threads can keep the process alive.
process.exit(0);
