import assert from "node:assert/strict";
import {
  encodeSafetensors,
  loadSafetensors,
  parseSafetensors,
  requireTensor,
  type SafetensorsFile,
  saveSafetensors,
  WeightsError,
} from "../io/safetensors.ts";
import { numel, type TensorData } from "../graph/tensor_data.ts";

const FIXTURES = new URL("./fixtures/", import.meta.url);

interface IndexEntry {
  name: string;
  file: string;
  metadata: Record<string, string>;
  tensors: { name: string; shape: number[] }[];
}

async function readIndex(): Promise<IndexEntry[]> {
  const index = JSON.parse(await Deno.readTextFile(new URL("index.json", FIXTURES)));
  const entries: IndexEntry[] = [...index.fixtures];
  if (index.preprocess) entries.push(index.preprocess);
  return entries;
}

/** Build a file from a raw header object and a data section, bypassing the encoder. */
function rawFile(header: unknown, data: Uint8Array | number): Uint8Array {
  const json = new TextEncoder().encode(
    typeof header === "string" ? header : JSON.stringify(header),
  );
  const body = typeof data === "number" ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + json.length + body.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(body, 8 + json.length);
  return out;
}

const F32_HEADER = (name: string, shape: number[], start: number, end: number) => ({
  [name]: { dtype: "F32", shape, data_offsets: [start, end] },
});

function assertWeightsError(fn: () => unknown, ...words: string[]): WeightsError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof WeightsError, `expected WeightsError, got ${caught}`);
  assert.equal(caught.name, "WeightsError");
  assert.ok(!caught.message.includes("\n"), `message is not one line: ${caught.message}`);
  for (const w of words) {
    assert.ok(caught.message.includes(w), `message lacks ${JSON.stringify(w)}: ${caught.message}`);
  }
  return caught;
}

async function assertRejectsWeights(
  fn: () => Promise<unknown>,
  ...words: string[]
): Promise<WeightsError> {
  let caught: unknown;
  try {
    await fn();
  } catch (e) {
    caught = e;
  }
  return assertWeightsError(() => {
    if (caught !== undefined) throw caught;
  }, ...words);
}

function sample(): Map<string, TensorData> {
  return new Map<string, TensorData>([
    ["input", { shape: [1, 3, 2, 2], data: Float32Array.from({ length: 12 }, (_, i) => i / 7) }],
    ["bias", { shape: [3], data: new Float32Array([-1.5, NaN, Infinity]) }],
    ["scalar", { shape: [], data: new Float32Array([42]) }],
    ["empty", { shape: [0, 4], data: new Float32Array(0) }],
    ["odd", { shape: [5], data: new Float32Array([1e-38, -0, 3.4e38, 2, 3]) }],
  ]);
}

function bytesOf(t: TensorData): Uint8Array {
  return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

function assertSameFile(got: SafetensorsFile, want: Map<string, TensorData>): void {
  assert.deepEqual([...got.tensors.keys()], [...want.keys()]);
  for (const [name, t] of want) {
    const g = got.tensors.get(name)!;
    assert.deepEqual([...g.shape], [...t.shape], name);
    assert.deepEqual(bytesOf(g), bytesOf(t), name);
  }
}

Deno.test("every fixture loads and matches index.json", async () => {
  const entries = await readIndex();
  assert.ok(entries.length >= 6);
  for (const fx of entries) {
    const file = await loadSafetensors(new URL(fx.file, FIXTURES));
    assert.deepEqual(
      [...file.tensors.keys()].sort(),
      fx.tensors.map((t) => t.name).sort(),
      fx.name,
    );
    for (const t of fx.tensors) {
      const got = requireTensor(file, t.name, t.shape);
      assert.equal(got.data.length, numel(t.shape));
    }
    assert.deepEqual(file.metadata, fx.metadata, fx.name);
    assert.ok(file.metadata.variant !== undefined || fx.name.startsWith("preprocess"), fx.name);
  }
});

Deno.test("seed_224 spot checks", async () => {
  const file = await loadSafetensors(new URL("seed_224.safetensors", FIXTURES).pathname);
  const input = requireTensor(file, "input", [1, 3, 224, 224]);
  assert.equal(input.data.length, 150528);
  assert.equal(numel(input.shape), 150528);
  assert.equal(file.metadata.variant, "seed");
  // torch.rand values lie in [0, 1).
  assert.ok(input.data.every((v) => v >= 0 && v < 1));
  assert.equal(input.data.byteOffset % 4, 0);
});

Deno.test("encode -> parse round trip keeps shapes, bytes, metadata and order", () => {
  const tensors = sample();
  const meta = { variant: "seed", note: "ünïcode ✓" };
  const bytes = encodeSafetensors(tensors, meta);
  const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.equal(n % 8, 0);
  const file = parseSafetensors(bytes, "rt.safetensors");
  assertSameFile(file, tensors);
  assert.deepEqual(file.metadata, meta);
  assert.equal(file.source, "rt.safetensors");
  // A plain record works too, and no metadata gives {}.
  const again = parseSafetensors(encodeSafetensors(Object.fromEntries(tensors)));
  assertSameFile(again, tensors);
  assert.deepEqual(again.metadata, {});
});

Deno.test("parse copies data out of unaligned input", () => {
  const bytes = encodeSafetensors({ w: { shape: [3], data: new Float32Array([1, 2, 3]) } });
  const shifted = new Uint8Array(bytes.length + 1).subarray(1);
  shifted.set(bytes);
  const w = parseSafetensors(shifted).tensors.get("w")!;
  assert.deepEqual([...w.data], [1, 2, 3]);
  shifted.fill(0);
  assert.deepEqual([...w.data], [1, 2, 3]);
});

Deno.test("parse accepts a header whose length is not a multiple of 4", () => {
  let text = JSON.stringify(F32_HEADER("w", [2], 0, 8));
  if (text.length % 4 === 0) text += " ";
  const data = new Uint8Array(new Float32Array([0.5, -2]).buffer);
  const w = parseSafetensors(rawFile(text, data)).tensors.get("w")!;
  assert.deepEqual([...w.data], [0.5, -2]);
});

Deno.test("save -> load through a temp dir", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/weights.safetensors`;
    const tensors = sample();
    await saveSafetensors(path, tensors, { variant: "standard" });
    const file = await loadSafetensors(path);
    assertSameFile(file, tensors);
    assert.deepEqual(file.metadata, { variant: "standard" });
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["weights.safetensors"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("errors: short file, absurd or overlong header length", () => {
  assertWeightsError(
    () => parseSafetensors(new Uint8Array(5), "w.safetensors"),
    "w.safetensors:",
    "5 bytes",
    "too short",
  );
  const huge = new Uint8Array(16);
  new DataView(huge.buffer).setBigUint64(0, 1n << 40n, true);
  assertWeightsError(() => parseSafetensors(huge, "w.safetensors"), "header length", "absurd");
  const past = rawFile(F32_HEADER("a", [1], 0, 4), 4);
  new DataView(past.buffer).setBigUint64(0, BigInt(past.length), true);
  assertWeightsError(() => parseSafetensors(past, "w.safetensors"), "header length", "truncated");
});

Deno.test("errors: bad JSON, non-object header, bad metadata", () => {
  const e = assertWeightsError(
    () => parseSafetensors(rawFile('{"a": {"dtype": "F32",', 0), "bad.safetensors"),
    "bad.safetensors:",
    "not valid JSON",
  );
  assert.equal(e.file, "bad.safetensors");
  assertWeightsError(() => parseSafetensors(rawFile("[1, 2]", 0)), "an array", "JSON object");
  assertWeightsError(() => parseSafetensors(rawFile("null", 0)), "null");
  assertWeightsError(
    () => parseSafetensors(rawFile({ __metadata__: { seed: 3 } }, 0)),
    "__metadata__",
    '"seed"',
    "strings",
  );
  const bad = new Uint8Array([0xff, 0xfe, 0x20, 0x20]);
  const buf = new Uint8Array(12);
  new DataView(buf.buffer).setBigUint64(0, 4n, true);
  buf.set(bad, 8);
  assertWeightsError(() => parseSafetensors(buf), "UTF-8");
});

Deno.test("errors: malformed entries", () => {
  assertWeightsError(() => parseSafetensors(rawFile({ w: 3 }, 0)), '"w"', "not an object");
  assertWeightsError(
    () => parseSafetensors(rawFile({ w: { dtype: "F32", shape: [1] } }, 4)),
    '"w"',
    "data_offsets",
    "missing",
  );
  assertWeightsError(
    () => parseSafetensors(rawFile({ w: { shape: [1], data_offsets: [0, 4] } }, 4)),
    "missing",
    "dtype",
  );
  assertWeightsError(
    () => parseSafetensors(rawFile({ w: { dtype: 32, shape: [1], data_offsets: [0, 4] } }, 4)),
    "dtype",
    "number 32",
  );
  assertWeightsError(
    () => parseSafetensors(rawFile({ w: { dtype: "F32", shape: "1", data_offsets: [0, 4] } }, 4)),
    "shape",
  );
  assertWeightsError(
    () =>
      parseSafetensors(rawFile({ w: { dtype: "F32", shape: [2, -1], data_offsets: [0, 4] } }, 4)),
    '"w"',
    "[2, -1]",
    "non-negative integers",
  );
  assertWeightsError(
    () => parseSafetensors(rawFile({ w: { dtype: "F32", shape: [1.5], data_offsets: [0, 4] } }, 4)),
    "[1.5]",
  );
  assertWeightsError(
    () => parseSafetensors(rawFile({ w: { dtype: "F32", shape: [1], data_offsets: [0] } }, 4)),
    "data_offsets [0]",
  );
});

Deno.test("errors: non-F32 dtypes are named", () => {
  const e = assertWeightsError(
    () =>
      parseSafetensors(
        rawFile({ pos_embed: { dtype: "F16", shape: [2], data_offsets: [0, 4] } }, 4),
        "weights.safetensors",
      ),
    'weights.safetensors: tensor "pos_embed" has dtype F16; Tessera reads F32 only',
    "tensor.float()",
  );
  assert.equal(e.tensor, "pos_embed");
  assert.equal(e.file, "weights.safetensors");
  for (const dtype of ["BF16", "F64", "I64", "U8"]) {
    assertWeightsError(
      () => parseSafetensors(rawFile({ w: { dtype, shape: [1], data_offsets: [0, 8] } }, 8)),
      `dtype ${dtype}`,
    );
  }
  assertWeightsError(
    () => parseSafetensors(rawFile({ w: { dtype: "Q4_K", shape: [1], data_offsets: [0, 4] } }, 4)),
    "unknown dtype",
    "Q4_K",
  );
});

Deno.test("errors: offsets that lie", () => {
  assertWeightsError(
    () => parseSafetensors(rawFile(F32_HEADER("w", [1], 8, 4), 8)),
    '"w"',
    "end before start",
  );
  assertWeightsError(
    () => parseSafetensors(rawFile(F32_HEADER("w", [3], 0, 8), 12)),
    '"w"',
    "8 bytes",
    "needs 12 bytes",
  );
  // Offsets beyond the data with a gap before them: a lying header, not a cut-short file.
  assertWeightsError(
    () => parseSafetensors(rawFile(F32_HEADER("w", [2], 8, 16), 12)),
    '"w"',
    "[8, 16]",
    "run past the end",
  );
  const overlap = {
    a: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
    b: { dtype: "F32", shape: [2], data_offsets: [4, 12] },
  };
  const e = assertWeightsError(
    () => parseSafetensors(rawFile(overlap, 12)),
    '"b"',
    '"a"',
    "overlap",
  );
  assert.equal(e.tensor, "b");
});

Deno.test("errors: truncated data section", () => {
  const full = encodeSafetensors(sample());
  assertWeightsError(
    () => parseSafetensors(full.subarray(0, full.length - 3), "cut.safetensors"),
    "cut.safetensors:",
    "truncated",
  );
});

Deno.test("errors: missing file and directory paths", async () => {
  const e = await assertRejectsWeights(
    () => loadSafetensors("/nonexistent/dir/model.safetensors"),
    "/nonexistent/dir/model.safetensors: no such file",
    "--weights",
  );
  assert.equal(e.file, "/nonexistent/dir/model.safetensors");
  await assertRejectsWeights(() => loadSafetensors(Deno.cwd()), "directory");
});

Deno.test("requireTensor: missing name suggests the closest, shape mismatch names both", () => {
  const file = parseSafetensors(encodeSafetensors(sample()), "w.safetensors");
  const e = assertWeightsError(
    () => requireTensor(file, "biass"),
    'w.safetensors: tensor "biass" not found',
    'did you mean "bias"?',
    '"input"',
  );
  assert.equal(e.tensor, "biass");
  assertWeightsError(
    () => requireTensor(file, "input", [1, 3, 4, 4], "other.safetensors"),
    "other.safetensors:",
    "[1, 3, 2, 2]",
    "[1, 3, 4, 4]",
  );
  assertWeightsError(() => requireTensor(file, "bias", [3, 1]), "[3]", "[3, 1]");
  const many = new Map<string, TensorData>();
  for (let i = 0; i < 20; i++) many.set(`layer${i}.w`, { shape: [1], data: new Float32Array(1) });
  const m = assertWeightsError(
    () => requireTensor({ tensors: many, metadata: {} }, "layer19.weight"),
    'did you mean "layer19.w"?',
    "20 in all",
  );
  assert.ok(!m.message.includes('"layer10.w"'));
});

Deno.test("encode validates data length and keeps NaN", () => {
  const e = assertWeightsError(
    () => encodeSafetensors({ w: { shape: [2, 3], data: new Float32Array(5) } }),
    '"w"',
    "[2, 3]",
    "6",
    "5",
  );
  assert.equal(e.tensor, "w");
  assertWeightsError(
    () => encodeSafetensors({ w: { shape: [-1], data: new Float32Array(0) } }),
    "[-1]",
  );
  const nan = parseSafetensors(
    encodeSafetensors({ n: { shape: [1], data: new Float32Array([NaN]) } }),
  );
  assert.ok(Number.isNaN(nan.tensors.get("n")!.data[0]));
});

Deno.test("failed save leaves no file or temp file behind", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await assertRejectsWeights(
      () => saveSafetensors(`${dir}/missing/w.safetensors`, sample()),
      "w.safetensors",
      "directory does not exist",
    );
    assert.deepEqual([...Deno.readDirSync(dir)], []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("failed save over an existing file leaves the old file intact", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/w.safetensors`;
    await saveSafetensors(path, sample(), { version: "1" });
    const before = await Deno.readFile(path);
    const e = await assertRejectsWeights(
      () => saveSafetensors(path, { w: { shape: [4], data: new Float32Array(3) } }),
      `${path}:`,
      '"w"',
      "needs 4",
    );
    assert.equal(e.file, path);
    assert.deepEqual(await Deno.readFile(path), before);
    assert.deepEqual([...Deno.readDirSync(dir)].map((d) => d.name), ["w.safetensors"]);
    // A rename that fails (target is a non-empty directory) also cleans up its temp file.
    await Deno.mkdir(`${dir}/sub/inner`, { recursive: true });
    await assertRejectsWeights(() => saveSafetensors(`${dir}/sub`, sample()), `${dir}/sub:`);
    assert.deepEqual([...Deno.readDirSync(dir)].map((d) => d.name).sort(), [
      "sub",
      "w.safetensors",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
