import assert from "node:assert/strict";
import {
  encodeSafetensors,
  loadSafetensors,
  openSafetensors,
  parseSafetensors,
  requireTensor,
  type SafetensorsFile,
  saveSafetensors,
  WeightsError,
} from "../io/safetensors.ts";
import { numel, type TensorData } from "../graph/tensor_data.ts";
import { assertRejectsWeights, assertWeightsError } from "./helpers.ts";

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

Deno.test("errors: dtypes other than F32, F16 and BF16 are named", () => {
  const e = assertWeightsError(
    () =>
      parseSafetensors(
        rawFile({ pos_embed: { dtype: "F64", shape: [2], data_offsets: [0, 16] } }, 16),
        "weights.safetensors",
      ),
    'weights.safetensors: tensor "pos_embed" has dtype F64; Tessera reads F32, F16 and BF16 only',
    "tensor.float()",
  );
  assert.equal(e.tensor, "pos_embed");
  assert.equal(e.file, "weights.safetensors");
  for (const dtype of ["I64", "U8", "BOOL", "F8_E4M3"]) {
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

/** A sparse file: `tensors` after an unused F32 tensor of `unusedBytes` that takes no disk. */
async function sparseFile(
  path: string,
  unusedBytes: number,
  tensors: Map<string, TensorData>,
): Promise<void> {
  const header: Record<string, unknown> = {
    unused: { dtype: "F32", shape: [unusedBytes / 4], data_offsets: [0, unusedBytes] },
  };
  let at = unusedBytes;
  for (const [name, t] of tensors) {
    header[name] = { dtype: "F32", shape: t.shape, data_offsets: [at, at + t.data.byteLength] };
    at += t.data.byteLength;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const f = await Deno.open(path, { write: true, createNew: true });
  try {
    const length = new Uint8Array(8);
    new DataView(length.buffer).setBigUint64(0, BigInt(json.length), true);
    await f.write(length);
    await f.write(json);
    await f.seek(8 + json.length + unusedBytes, Deno.SeekMode.Start);
    for (const t of tensors.values()) await f.write(bytesOf(t));
  } finally {
    f.close();
  }
}

Deno.test("openSafetensors reads the header, then only the tensors asked for", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/big.safetensors`;
    const gib = 2 ** 30;
    await sparseFile(path, gib, sample());
    const rssBefore = Deno.memoryUsage().rss;
    const reader = await openSafetensors(path);
    try {
      assert.equal(reader.source, path);
      assert.deepEqual([...reader.tensors.keys()], ["unused", ...sample().keys()]);
      assert.deepEqual(reader.tensors.get("unused"), {
        shape: [gib / 4],
        dtype: "F32",
        byteLength: gib,
      });
      assert.ok(reader.size > gib);
      // In the order asked for; the 1 GiB tensor is never read.
      const got = await reader.read(["odd", "input", "odd"]);
      assert.deepEqual([...got.tensors.keys()], ["odd", "input"]);
      assertSameFile(
        got,
        new Map([["odd", sample().get("odd")!], ["input", sample().get("input")!]]),
      );
      assert.equal(got.source, path);
      assert.ok(Deno.memoryUsage().rss - rssBefore < 256 * 2 ** 20, "the big tensor was read");
      const e = await assertRejectsWeights(
        () => reader.read(["inptu"]),
        `${path}: tensor "inptu" not found`,
        'did you mean "input"?',
      );
      assert.equal(e.tensor, "inptu");
    } finally {
      reader.close();
    }
    await assert.rejects(() => reader.read(["input"]), /after close/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadSafetensors still reads every tensor, from the header's ranges", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/w.safetensors`;
    await sparseFile(path, 64, sample());
    const file = await loadSafetensors(path);
    assert.deepEqual([...file.tensors.keys()], ["unused", ...sample().keys()]);
    assert.deepEqual([...file.tensors.get("unused")!.data], new Array(16).fill(0));
    const rest = new Map(file.tensors);
    rest.delete("unused");
    assertSameFile({ ...file, tensors: rest }, sample());
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a device, a FIFO or a folder is refused before it is opened", async () => {
  // /dev/null first: before the fix /dev/zero was read until memory ran out.
  for (const device of ["/dev/null", "/dev/zero"]) {
    const e = await assertRejectsWeights(
      () => loadSafetensors(device),
      `${device}: is a character device, not a regular file`,
      "--weights",
    );
    assert.equal(e.file, device);
  }
  await assertRejectsWeights(() => openSafetensors(Deno.cwd()), "directory");
  if (Deno.build.os === "windows") return;
  const dir = await Deno.makeTempDir();
  try {
    const fifo = `${dir}/pipe.safetensors`;
    assert.equal((await new Deno.Command("mkfifo", { args: [fifo] }).output()).code, 0);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const blocked = new Promise<"blocked">((resolve) => {
      timer = setTimeout(() => resolve("blocked"), 5000);
    });
    const load = loadSafetensors(fifo).then(() => "loaded", (e: unknown) => e);
    const first = await Promise.race([load, blocked]);
    clearTimeout(timer);
    if (first === "blocked") {
      // Opening the other end unblocks the reader, so the test can fail instead of hanging.
      (await Deno.open(fifo, { write: true })).close();
      await load;
      assert.fail("loadSafetensors opened the FIFO and blocked");
    }
    assert.ok(first instanceof WeightsError, `expected a WeightsError, got ${first}`);
    assert.ok(first.message.includes(`${fifo}: is a FIFO (named pipe), not a regular file`));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a header length beyond the limit or the file is refused before it is read", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/w.safetensors`;
    const bytes = new Uint8Array(16);
    new DataView(bytes.buffer).setBigUint64(0, 1n << 40n, true);
    await Deno.writeFile(path, bytes);
    await assertRejectsWeights(() => openSafetensors(path), `${path}: header length`, "absurd");
    new DataView(bytes.buffer).setBigUint64(0, 1000n, true);
    await Deno.writeFile(path, bytes);
    await assertRejectsWeights(
      () => openSafetensors(path),
      "header length 1000 bytes runs past the end of the 16-byte file",
    );
    await Deno.writeFile(path, new Uint8Array(3));
    await assertRejectsWeights(() => openSafetensors(path), "3 bytes", "too short");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a file cut short after it was opened is one line, not garbage", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/w.safetensors`;
    await Deno.writeFile(path, encodeSafetensors(sample()));
    const reader = await openSafetensors(path);
    try {
      await Deno.truncate(path, reader.size - 8);
      await assertRejectsWeights(() => reader.read(), path, "changed on disk");
    } finally {
      reader.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "saving over an existing file keeps its permission bits",
  ignore: Deno.build.os === "windows",
  fn: async () => {
    const dir = await Deno.makeTempDir();
    try {
      const path = `${dir}/w.safetensors`;
      await saveSafetensors(path, sample());
      for (const mode of [0o600, 0o640, 0o755]) {
        await Deno.chmod(path, mode);
        await saveSafetensors(path, sample(), { mode: mode.toString(8) });
        assert.equal((await Deno.stat(path)).mode! & 0o777, mode);
        assert.equal((await loadSafetensors(path)).metadata.mode, mode.toString(8));
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

for (const [signal, code] of [["SIGTERM", 143], ["SIGINT", 130]] as const) {
  Deno.test({
    name: `a write interrupted by ${signal} leaves no temporary, and the old file intact`,
    ignore: Deno.build.os === "windows",
    fn: async () => {
      const dir = await Deno.makeTempDir();
      try {
        const target = `${dir}/w.safetensors`;
        await Deno.writeTextFile(target, "old");
        const files = new URL("../io/files.ts", import.meta.url).href;
        // The second chunk never comes: the write is caught halfway, temporary open.
        const script = `import { writeFileAtomic } from ${JSON.stringify(files)};
          async function* chunks() {
            yield new Uint8Array(4096);
            console.log("writing");
            await new Promise((r) => setTimeout(r, 60_000));
            yield new Uint8Array(1);
          }
          await writeFileAtomic(${JSON.stringify(target)}, chunks());`;
        const child = new Deno.Command(Deno.execPath(), {
          args: ["eval", script],
          stdout: "piped",
          stderr: "inherit",
        }).spawn();
        const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
        let said = "";
        while (!said.includes("writing")) {
          const { value, done } = await lines.read();
          if (done) break;
          said += value;
        }
        const during = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
        assert.equal(during.length, 2, `expected the target and a temporary: ${during}`);
        assert.match(during[0], /^\.w\.safetensors\.tessera-tmp-[0-9a-z]+$/);
        child.kill(signal);
        const status = await child.status;
        await lines.cancel();
        assert.equal(status.code, code);
        assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["w.safetensors"]);
        assert.equal(await Deno.readTextFile(target), "old");
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  });
}
