/**
 * F16 and BF16 safetensors tensors: widened to float32 exactly on read (all 65536 patterns of
 * each), through every reader, reading only the byte ranges asked for, with one-line errors.
 * Files are built byte by byte here so nothing depends on the encoder (which writes F32 only).
 */
import assert from "node:assert/strict";
import {
  encodeSafetensors,
  loadSafetensors,
  openSafetensors,
  parseSafetensors,
  type TensorData,
} from "../io/safetensors.ts";
import { assertRejectsWeights, assertWeightsError } from "./helpers.ts";

interface RawTensor {
  name: string;
  dtype: string;
  shape: number[];
  /** The raw little-endian bytes, or a byte count to declare (data_offsets) but leave as zeros. */
  bytes: Uint8Array | number;
}

/** A safetensors file: u64 LE header length, the JSON header, then the tensors back to back. */
function buildFile(tensors: RawTensor[], metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata !== undefined) header.__metadata__ = metadata;
  let at = 0;
  for (const t of tensors) {
    const length = typeof t.bytes === "number" ? t.bytes : t.bytes.length;
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [at, at + length] };
    at += length;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + at);
  let n = json.length;
  for (let i = 0; i < 8; i++, n = Math.floor(n / 256)) out[i] = n % 256;
  out.set(json, 8);
  let p = 8 + json.length;
  for (const t of tensors) {
    if (typeof t.bytes === "number") {
      p += t.bytes;
    } else {
      out.set(t.bytes, p);
      p += t.bytes.length;
    }
  }
  return out;
}

/** The header length stored in the first 8 bytes, for computing absolute offsets. */
function headerLength(file: Uint8Array): number {
  let n = 0;
  for (let i = 7; i >= 0; i--) n = n * 256 + file[i];
  return n;
}

/** 16-bit patterns as little-endian bytes, low byte first. */
function le16(patterns: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(patterns.length * 2);
  for (let i = 0; i < patterns.length; i++) {
    out[2 * i] = patterns[i] & 0xff;
    out[2 * i + 1] = (patterns[i] >> 8) & 0xff;
  }
  return out;
}

const F32_BOX = new Float32Array(1);
const U32_BOX = new Uint32Array(F32_BOX.buffer);

/** The float32 bit pattern of `v` (rounded to float32 first). */
function f32Bits(v: number): number {
  F32_BOX[0] = v;
  return U32_BOX[0];
}

/** float32 values as little-endian bytes, low byte first, whatever the host's byte order. */
function le32(values: readonly number[]): Uint8Array {
  const out = new Uint8Array(values.length * 4);
  values.forEach((v, i) => {
    const bits = f32Bits(v);
    for (let b = 0; b < 4; b++) out[4 * i + b] = (bits >>> (8 * b)) & 0xff;
  });
  return out;
}

/** The value of binary16 bits `h`, by arithmetic from the IEEE 754 definition (no bit tricks). */
function halfValue(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0x1f) return mant === 0 ? sign * Infinity : NaN;
  if (exp === 0) return sign * mant * 2 ** -24;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** The value of bfloat16 bits `h` (8 exponent bits, 7 mantissa bits), by arithmetic. */
function bfloatValue(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 7) & 0xff;
  const mant = h & 0x7f;
  if (exp === 0xff) return mant === 0 ? sign * Infinity : NaN;
  if (exp === 0) return sign * mant * 2 ** -133;
  return sign * (1 + mant / 128) * 2 ** (exp - 127);
}

const ALL_PATTERNS = Uint16Array.from({ length: 65536 }, (_, i) => i);

function hex(v: number, digits: number): string {
  return `0x${v.toString(16).padStart(digits, "0")}`;
}

/**
 * The patterns `h` (the index in `got`) whose widened value differs from `reference(h)`,
 * compared as float32 bits so -0 and 0 differ (NaN matches any NaN).
 */
function mismatches(got: Float32Array, reference: (h: number) => number): string[] {
  const bits = new Uint32Array(got.buffer, got.byteOffset, got.length);
  const bad: string[] = [];
  for (let h = 0; h < got.length; h++) {
    const want = reference(h);
    const ok = Number.isNaN(want) ? Number.isNaN(got[h]) : bits[h] === f32Bits(want);
    if (!ok && bad.length < 10) bad.push(`${hex(h, 4)} -> ${hex(bits[h], 8)}, want ${want}`);
  }
  return bad;
}

/** Each reader's view of `bytes`'s tensor `name`: parsed in memory, loaded and read from disk. */
async function readAllWays(bytes: Uint8Array, name: string): Promise<Float32Array[]> {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/w.safetensors`;
    await Deno.writeFile(path, bytes);
    const reader = await openSafetensors(path);
    try {
      return [
        parseSafetensors(bytes).tensors.get(name)!.data,
        (await loadSafetensors(path)).tensors.get(name)!.data,
        (await reader.read([name])).tensors.get(name)!.data,
      ];
    } finally {
      reader.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("F16: all 65536 bit patterns widen to the same float32 value", async () => {
  const bytes = buildFile([{
    name: "h",
    dtype: "F16",
    shape: [256, 256],
    bytes: le16(ALL_PATTERNS),
  }]);
  const view = new DataView(le16(ALL_PATTERNS).buffer);
  for (const got of await readAllWays(bytes, "h")) {
    assert.equal(got.length, 65536);
    assert.deepEqual(mismatches(got, halfValue), []);
    // The platform's own binary16 decoder agrees too.
    assert.deepEqual(mismatches(got, (h) => view.getFloat16(2 * h, true)), []);
    const bits = new Uint32Array(got.buffer, got.byteOffset, got.length);
    const spots: [number, number][] = [
      [0x0000, 0x00000000], // +0
      [0x8000, 0x80000000], // -0
      [0x0001, 0x33800000], // smallest subnormal, 2^-24
      [0x03ff, 0x387fc000], // largest subnormal
      [0x0400, 0x38800000], // smallest normal, 2^-14
      [0x3c00, 0x3f800000], // 1
      [0xc000, 0xc0000000], // -2
      [0x7bff, 0x477fe000], // 65504, the largest half
      [0x7c00, 0x7f800000], // +Infinity
      [0xfc00, 0xff800000], // -Infinity
    ];
    for (const [h, want] of spots) assert.equal(hex(bits[h], 8), hex(want, 8), hex(h, 4));
    for (const h of [0x7c01, 0x7e00, 0x7fff, 0xfe00]) assert.ok(Number.isNaN(got[h]), hex(h, 4));
  }
});

Deno.test("BF16: all 65536 bit patterns are the top 16 bits of the float32", async () => {
  const bytes = buildFile([{
    name: "b",
    dtype: "BF16",
    shape: [65536],
    bytes: le16(ALL_PATTERNS),
  }]);
  for (const got of await readAllWays(bytes, "b")) {
    assert.equal(got.length, 65536);
    assert.deepEqual(mismatches(got, bfloatValue), []);
    // NaNs included: the bits are exactly the pattern shifted up.
    const bits = new Uint32Array(got.buffer, got.byteOffset, got.length);
    const bad = [...ALL_PATTERNS].filter((h) => bits[h] !== ((h << 16) >>> 0));
    assert.deepEqual(bad.slice(0, 10).map((h) => hex(h, 4)), []);
    assert.equal(got[0x3f80], 1);
    assert.equal(got[0x4049], 3.140625);
    assert.equal(got[0x0001], 2 ** -133);
    assert.ok(Object.is(got[0x8000], -0));
    assert.equal(got[0xff80], -Infinity);
    assert.ok(Number.isNaN(got[0x7fc0]));
  }
});

/** F32, F16 and BF16 tensors, unaligned (F32 after 6 bytes of F16), an empty one and a scalar. */
const MIXED: RawTensor[] = [
  { name: "big", dtype: "F16", shape: [64, 64], bytes: le16(ALL_PATTERNS.subarray(0, 4096)) },
  { name: "h16", dtype: "F16", shape: [3], bytes: le16([0x3c00, 0xc000, 0x3555]) },
  { name: "w32", dtype: "F32", shape: [2, 2], bytes: le32([0.5, -1.25, 1e-3, 65504]) },
  { name: "b16", dtype: "BF16", shape: [2, 1], bytes: le16([0x4049, 0xff80]) },
  { name: "scalar", dtype: "BF16", shape: [], bytes: le16([0x8000]) },
  { name: "empty", dtype: "F16", shape: [0, 2], bytes: new Uint8Array(0) },
];

const MIXED_VALUES: Record<string, number[]> = {
  h16: [1, -2, 0.333251953125],
  w32: [0.5, -1.25, Math.fround(1e-3), 65504],
  b16: [3.140625, -Infinity],
  scalar: [-0],
  empty: [],
};

function assertMixedValues(tensors: ReadonlyMap<string, TensorData>): void {
  for (const [name, want] of Object.entries(MIXED_VALUES)) {
    const t = tensors.get(name);
    assert.ok(t !== undefined, name);
    assert.ok(t.data instanceof Float32Array, name);
    assert.deepEqual([...t.shape], MIXED.find((m) => m.name === name)!.shape, name);
    assert.equal(t.data.length, want.length, name);
    want.forEach((v, i) => assert.ok(Object.is(t.data[i], v), `${name}[${i}] = ${t.data[i]}`));
  }
}

Deno.test("a mixed F32 + F16 + BF16 file reads through every reader", async () => {
  const bytes = buildFile(MIXED, { variant: "half" });
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/mixed.safetensors`;
    await Deno.writeFile(path, bytes);
    const reader = await openSafetensors(path);
    try {
      assert.deepEqual(
        [...reader.tensors].map(([name, info]) => [name, info.dtype, info.byteLength]),
        [
          ["big", "F16", 8192],
          ["h16", "F16", 6],
          ["w32", "F32", 16],
          ["b16", "BF16", 4],
          ["scalar", "BF16", 2],
          ["empty", "F16", 0],
        ],
      );
      assert.deepEqual(reader.tensors.get("b16")!.shape, [2, 1]);
      const names = ["b16", "w32", "scalar", "h16", "empty"];
      const got = await reader.read(names);
      assert.deepEqual([...got.tensors.keys()], names);
      assert.deepEqual(got.metadata, { variant: "half" });
      assertMixedValues(got.tensors);
    } finally {
      reader.close();
    }
    const loaded = await loadSafetensors(path);
    assert.deepEqual([...loaded.tensors.keys()], MIXED.map((t) => t.name));
    assertMixedValues(loaded.tensors);
    assert.deepEqual(mismatches(loaded.tensors.get("big")!.data, halfValue), []);
    // In memory too, from input that is not even 2-byte aligned.
    const shifted = new Uint8Array(bytes.length + 1).subarray(1);
    shifted.set(bytes);
    assertMixedValues(parseSafetensors(shifted).tensors);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** Records the byte range of every `Deno.FsFile` read made while it is active. */
function spyOnFileReads(): { reads: [number, number][]; restore: () => void } {
  const proto = Deno.FsFile.prototype;
  const { seek, read } = proto;
  const reads: [number, number][] = [];
  const position = new WeakMap<Deno.FsFile, number>();
  proto.seek = async function (
    this: Deno.FsFile,
    offset: number | bigint,
    whence: Deno.SeekMode,
  ): Promise<number> {
    const at = await seek.call(this, offset, whence);
    position.set(this, at);
    return at;
  };
  proto.read = async function (this: Deno.FsFile, into: Uint8Array): Promise<number | null> {
    const got = await read.call(this, into);
    if (got !== null && got > 0) {
      const at = position.get(this) ?? 0;
      position.set(this, at + got);
      reads.push([at, at + got]);
    }
    return got;
  };
  return {
    reads,
    restore: () => {
      proto.seek = seek;
      proto.read = read;
    },
  };
}

/** `reads` with back-to-back ranges joined, so a range read in several chunks is one entry. */
function joined(reads: readonly [number, number][]): [number, number][] {
  const out: [number, number][] = [];
  for (const [s, e] of reads) {
    const last = out.at(-1);
    if (last !== undefined && last[1] === s) last[1] = e;
    else out.push([s, e]);
  }
  return out;
}

Deno.test("openSafetensors reads only the header and the requested tensors' bytes", async () => {
  const bytes = buildFile(MIXED);
  const dataStart = 8 + headerLength(bytes);
  const range = new Map<string, [number, number]>();
  let at = dataStart;
  for (const t of MIXED) {
    const length = (t.bytes as Uint8Array).length;
    range.set(t.name, [at, at + length]);
    at += length;
  }
  const dir = await Deno.makeTempDir();
  const spy = spyOnFileReads();
  try {
    const path = `${dir}/mixed.safetensors`;
    await Deno.writeFile(path, bytes);
    const reader = await openSafetensors(path);
    try {
      assert.deepEqual(joined(spy.reads), [[0, dataStart]], "opening reads the header only");
      spy.reads.length = 0;
      // In the order asked for, each range on its own; "big" (8 KiB) and "w32" are never read.
      const got = await reader.read(["b16", "h16", "scalar"]);
      assert.deepEqual(joined(spy.reads), [
        range.get("b16"),
        range.get("h16"),
        range.get("scalar"),
      ]);
      assert.equal(spy.reads.reduce((sum, [s, e]) => sum + e - s, 0), 4 + 6 + 2);
      assert.deepEqual([...got.tensors.get("h16")!.data], MIXED_VALUES.h16);
      assert.deepEqual([...got.tensors.get("b16")!.data], MIXED_VALUES.b16);
      assert.ok(Object.is(got.tensors.get("scalar")!.data[0], -0));
    } finally {
      reader.close();
    }
    // loadSafetensors reads every range once, tensor by tensor: no read spans two tensors.
    spy.reads.length = 0;
    assertMixedValues((await loadSafetensors(path)).tensors);
    const tensorReads = spy.reads.filter(([s]) => s >= dataStart);
    assert.deepEqual(
      joined(tensorReads),
      [[dataStart, bytes.length]],
      "every tensor byte read, once",
    );
    for (const [s, e] of tensorReads) {
      const inside = [...range.values()].some(([ts, te]) => ts <= s && e <= te);
      assert.ok(inside, `read [${s}, ${e}) spans more than one tensor`);
    }
  } finally {
    spy.restore();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("F16 and BF16 with the wrong byte length give a one-line error", async () => {
  const cases: [RawTensor, string][] = [
    [
      { name: "h", dtype: "F16", shape: [3], bytes: 12 },
      "covering 12 bytes, but shape [3] F16 needs 6",
    ],
    [
      { name: "h", dtype: "F16", shape: [2], bytes: 5 },
      "covering 5 bytes, but shape [2] F16 needs 4",
    ],
    [
      { name: "b", dtype: "BF16", shape: [2, 2], bytes: 16 },
      "covering 16 bytes, but shape [2, 2] BF16 needs 8",
    ],
  ];
  const dir = await Deno.makeTempDir();
  try {
    for (const [t, words] of cases) {
      const bytes = buildFile([t]);
      const e = assertWeightsError(
        () => parseSafetensors(bytes, "half.safetensors"),
        `half.safetensors: tensor "${t.name}" has data_offsets [0, ${t.bytes}] ${words} bytes`,
        "re-export",
      );
      assert.equal(e.tensor, t.name);
      const path = `${dir}/half.safetensors`;
      await Deno.writeFile(path, bytes);
      await assertRejectsWeights(() => openSafetensors(path), `${path}: tensor "${t.name}"`, words);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("other dtypes get one line naming the tensor and the dtypes read", async () => {
  const bytes = buildFile([
    { name: "ok", dtype: "F16", shape: [1], bytes: 2 },
    { name: "steps", dtype: "I64", shape: [2], bytes: 16 },
  ]);
  const e = assertWeightsError(
    () => parseSafetensors(bytes, "w.safetensors"),
    'w.safetensors: tensor "steps" has dtype I64; Tessera reads F32, F16 and BF16 only',
    "(convert with tensor.float() before saving)",
  );
  assert.equal(e.tensor, "steps");
  assert.equal(e.file, "w.safetensors");
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/w.safetensors`;
    await Deno.writeFile(path, bytes);
    await assertRejectsWeights(
      () => openSafetensors(path),
      `${path}: tensor "steps" has dtype I64; Tessera reads F32, F16 and BF16 only`,
      "tensor.float()",
    );
    await assertRejectsWeights(() => loadSafetensors(path), '"steps"', "I64");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  for (const [dtype, size] of [["F64", 8], ["U8", 1], ["BOOL", 1], ["F8_E4M3", 1]] as const) {
    assertWeightsError(
      () => parseSafetensors(buildFile([{ name: "w", dtype, shape: [2], bytes: 2 * size }])),
      `tensor "w" has dtype ${dtype}; Tessera reads F32, F16 and BF16 only`,
      "tensor.float()",
    );
  }
  assertWeightsError(
    () => parseSafetensors(buildFile([{ name: "w", dtype: "f16", shape: [1], bytes: 2 }])),
    'tensor "w" has unknown dtype "f16"; Tessera reads F32, F16 and BF16 only',
  );
});

Deno.test("tensors read from F16 and BF16 are saved back as F32", () => {
  const file = parseSafetensors(buildFile(MIXED));
  const saved = encodeSafetensors(file.tensors);
  const json = new TextDecoder().decode(saved.subarray(8, 8 + headerLength(saved)));
  const header = JSON.parse(json) as Record<string, { dtype: string }>;
  assert.deepEqual(new Set(Object.values(header).map((e) => e.dtype)), new Set(["F32"]));
  const again = parseSafetensors(saved);
  for (const [name, t] of file.tensors) {
    const back = again.tensors.get(name)!.data;
    assert.deepEqual(new Uint8Array(back.buffer), new Uint8Array(t.data.buffer), name);
  }
});
