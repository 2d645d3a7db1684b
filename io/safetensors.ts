/**
 * Reading and writing float32 weights in the safetensors format, with one-line errors that name
 * the file, the tensor, what is wrong and how to fix it. F16 and BF16 tensors are read too and
 * widened to float32 exactly (every half value is a float32 value); files are written as F32.
 *
 * Layout: `[u64 LE header length n][n bytes JSON header][data]`. The header maps each tensor
 * name to `{dtype, shape, data_offsets: [start, end]}` (offsets relative to the data start) and
 * may hold a `__metadata__` object of string values.
 *
 * {@linkcode loadSafetensors} reads a path (in Deno, or in Node through `node:fs`), a `URL`
 * (fetched, streamed straight into the tensors' arrays) or a `Response`.
 *
 * @module
 */

import { fileErrorReason, openRegularFile, type RegularFile, writeFileAtomic } from "./files.ts";
import { isResponse, looksLikeUrl, openBody, type ProgressCallback } from "./fetch_bytes.ts";
import { hostFloats, numel, type TensorData } from "../graph/tensor_data.ts";

// Re-exported so this module's public signatures reference a public type.
export type { TensorData } from "../graph/tensor_data.ts";
export type { ProgressCallback } from "./fetch_bytes.ts";

/** Headers beyond this are treated as corruption rather than allocated. */
const MAX_HEADER_BYTES = 100 * 1024 * 1024;

const METADATA_KEY = "__metadata__";

/** Bytes per value of the dtypes Tessera reads; their values are all returned as float32. */
const ITEM_BYTES: Readonly<Record<Dtype, number>> = { F32: 4, F16: 2, BF16: 2 };

/** The dtypes Tessera reads, as error messages name them. */
const READ_DTYPES = "F32, F16 and BF16";

/** Dtypes the safetensors format defines; anything else is reported as unknown. */
const KNOWN_DTYPES: ReadonlySet<string> = new Set([
  "BOOL",
  "U8",
  "I8",
  "F8_E5M2",
  "F8_E4M3",
  "F8_E8M0",
  "F4",
  "F6_E2M3",
  "F6_E3M2",
  "I16",
  "U16",
  "F16",
  "BF16",
  "I32",
  "U32",
  "F32",
  "F64",
  "I64",
  "U64",
  "C64",
]);

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Where a {@linkcode WeightsError} happened. */
export interface WeightsErrorOptions {
  /** The file (path or display name) being read or written. */
  file?: string;
  /** The tensor the problem concerns. */
  tensor?: string;
  /** The underlying error, if any. */
  cause?: unknown;
}

/**
 * A problem with a weights file or with the tensors read from it. The message is one line:
 * `<file>: <what is wrong> (<how to fix it>)`.
 *
 * @example
 * ```ts
 * import { parseSafetensors, WeightsError } from "./safetensors.ts";
 * try {
 *   parseSafetensors(new Uint8Array(3), "weights.safetensors");
 * } catch (e) {
 *   if (e instanceof WeightsError) console.error(e.message, e.file);
 * }
 * ```
 */
export class WeightsError extends Error {
  /** The file involved, when known. */
  file?: string;
  /** The tensor involved, when known. */
  tensor?: string;
  /** Always `"WeightsError"`. */
  override name = "WeightsError";

  /**
   * Build the one-line message `<file>: <detail>` (or just `<detail>` when the file is unknown).
   *
   * @param detail What is wrong and how to fix it; the file name is prefixed automatically.
   * @param options The file and tensor involved, and the underlying cause.
   */
  constructor(detail: string, options: WeightsErrorOptions = {}) {
    const line = detail.replace(/\s*\n\s*/g, " ");
    super(options.file !== undefined ? `${options.file}: ${line}` : line, {
      cause: options.cause,
    });
    this.file = options.file;
    this.tensor = options.tensor;
  }
}

/**
 * The contents of a safetensors file: float32 tensors by name, in file header order, plus the
 * free-form string metadata.
 *
 * @example
 * ```ts
 * import type { SafetensorsFile } from "./safetensors.ts";
 * const file: SafetensorsFile = {
 *   tensors: new Map([["bias", { shape: [2], data: new Float32Array([1, 2]) }]]),
 *   metadata: { variant: "seed" },
 * };
 * ```
 */
export interface SafetensorsFile {
  /** Tensors by name. */
  tensors: Map<string, TensorData>;
  /** The header's `__metadata__` entries (empty when absent). */
  metadata: Record<string, string>;
  /** Where the file came from, used to prefix later errors (e.g. by {@linkcode requireTensor}). */
  source?: string;
}

function q(name: string): string {
  return JSON.stringify(name);
}

function fmtShape(shape: readonly unknown[]): string {
  return `[${shape.join(", ")}]`;
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "string") return `the string ${q(value)}`;
  return typeof value === "object" ? "an object" : `${typeof value} ${String(value)}`;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isIndex(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

function displayPath(path: string | URL): string {
  return path instanceof URL ? decodeURIComponent(path.pathname) : path;
}

type Dtype = SafetensorsTensorInfo["dtype"];

function isReadDtype(dtype: string): dtype is Dtype {
  return Object.hasOwn(ITEM_BYTES, dtype);
}

interface Entry {
  name: string;
  dtype: Dtype;
  shape: number[];
  start: number;
  end: number;
}

function parseEntry(name: string, raw: unknown, file: string | undefined): Entry {
  const fail = (detail: string): WeightsError =>
    new WeightsError(`tensor ${q(name)} ${detail}`, { file, tensor: name });
  if (!isRecord(raw)) {
    throw fail(
      `header entry is ${describe(raw)}, not an object with dtype, shape and data_offsets ` +
        "(the file is corrupt; re-export it)",
    );
  }
  for (const key of ["dtype", "shape", "data_offsets"]) {
    if (!(key in raw)) {
      throw fail(`header entry is missing "${key}" (the file is corrupt; re-export it)`);
    }
  }
  const { dtype, shape, data_offsets: offsets } = raw;
  if (typeof dtype !== "string") {
    throw fail(
      `has dtype ${describe(dtype)}, expected a string such as "F32" (re-export the file)`,
    );
  }
  if (!isReadDtype(dtype)) {
    if (KNOWN_DTYPES.has(dtype)) {
      throw fail(
        `has dtype ${dtype}; Tessera reads ${READ_DTYPES} only ` +
          "(convert with tensor.float() before saving)",
      );
    }
    throw fail(
      `has unknown dtype ${q(dtype)}; Tessera reads ${READ_DTYPES} only ` +
        "(the file is corrupt or not safetensors; re-export it with float32 tensors)",
    );
  }
  if (!Array.isArray(shape)) {
    throw fail(`has shape ${describe(shape)}, expected an array of dims (re-export the file)`);
  }
  for (const d of shape) {
    if (!isIndex(d)) {
      throw fail(
        `has invalid shape ${fmtShape(shape.map((v) => JSON.stringify(v)))}: dims must be ` +
          "non-negative integers (the file is corrupt; re-export it)",
      );
    }
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isIndex)) {
    throw fail(
      `has data_offsets ${JSON.stringify(offsets)}, expected [start, end] with non-negative ` +
        "integers (the file is corrupt; re-export it)",
    );
  }
  const [start, end] = offsets as [number, number];
  if (end < start) {
    throw fail(
      `has data_offsets [${start}, ${end}] with end before start (the file is corrupt; re-export it)`,
    );
  }
  const dims = shape as number[];
  const expected = numel(dims) * ITEM_BYTES[dtype];
  if (end - start !== expected) {
    throw fail(
      `has data_offsets [${start}, ${end}] covering ${end - start} bytes, but shape ` +
        `${fmtShape(dims)} ${dtype} needs ${expected} bytes (the file is corrupt; re-export it)`,
    );
  }
  return { name, dtype, shape: dims, start, end };
}

/**
 * The float32 bits of the binary16 value with bits `h`. Exact: binary16 is a subset of
 * binary32, so only the exponent is rebiased (15 to 127) and the mantissa shifted; subnormal
 * halves are normal float32s, and NaN keeps its sign and payload.
 */
function halfToFloatBits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >> 10) & 0x1f;
  let mant = h & 0x3ff;
  if (exp === 0x1f) return (sign | 0x7f800000 | (mant << 13)) >>> 0;
  if (exp !== 0) return (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0;
  if (mant === 0) return sign >>> 0;
  // Subnormal: mant * 2^-24. Shift the leading 1 up to the implicit bit, lowering the exponent.
  let e = 113;
  while ((mant & 0x400) === 0) {
    mant <<= 1;
    e--;
  }
  return (sign | (e << 23) | ((mant & 0x3ff) << 13)) >>> 0;
}

let halfTable: Uint32Array | undefined;

/** Float32 bits for all 65536 halves (256 KiB, built on first use): one lookup per value. */
function halfBits(): Uint32Array {
  if (halfTable === undefined) {
    halfTable = new Uint32Array(65536);
    for (let h = 0; h < 65536; h++) halfTable[h] = halfToFloatBits(h);
  }
  return halfTable;
}

/**
 * A fresh float32 array for `e` and the bytes of its buffer that the file's raw data must be
 * copied into: all of it for F32, its top half for F16 and BF16, so that {@linkcode finish}
 * widens in place and no second buffer is ever allocated.
 */
function allocate(e: Entry): { data: Float32Array; raw: Uint8Array } {
  const data = hostFloats((e.end - e.start) / ITEM_BYTES[e.dtype]);
  const rawLength = e.end - e.start;
  return { data, raw: new Uint8Array(data.buffer, data.byteLength - rawLength, rawLength) };
}

/** Turns the little-endian values that {@linkcode allocate}'s `raw` received into float32s. */
function finish(data: Float32Array, dtype: Dtype): void {
  const n = data.length;
  if (dtype === "F32") {
    if (!LITTLE_ENDIAN_HOST) {
      const view = new DataView(data.buffer);
      for (let i = 0; i < n; i++) data[i] = view.getFloat32(i * 4, true);
    }
    return;
  }
  const halves = new Uint16Array(data.buffer, 2 * n, n);
  if (!LITTLE_ENDIAN_HOST) {
    for (let i = 0; i < n; i++) halves[i] = ((halves[i] & 0xff) << 8) | (halves[i] >> 8);
  }
  // Writing bits[i] (bytes 4i..4i+3) after reading halves[i] never clobbers a half not yet
  // read: halves[j] for j > i starts at byte 2n + 2j >= 4i + 4.
  const bits = new Uint32Array(data.buffer, 0, n);
  if (dtype === "BF16") {
    // BF16 is the top 16 bits of a float32.
    for (let i = 0; i < n; i++) bits[i] = halves[i] << 16;
  } else {
    const table = halfBits();
    for (let i = 0; i < n; i++) bits[i] = table[halves[i]];
  }
}

/** The 8-byte header length, checked against the limit and the file's size. */
function headerLength(prefix: Uint8Array, size: number, file: string | undefined): number {
  if (size < 8) {
    throw new WeightsError(
      `file is ${size} bytes, too short to hold the 8-byte safetensors header length ` +
        "(the file is truncated or empty; re-download or re-export it)",
      { file },
    );
  }
  const headerLen = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (headerLen > BigInt(MAX_HEADER_BYTES)) {
    throw new WeightsError(
      `header length ${headerLen} bytes is absurd (limit ${MAX_HEADER_BYTES}); this is not a ` +
        "safetensors file or it is corrupt (check the path and re-export it)",
      { file },
    );
  }
  const n = Number(headerLen);
  if (8 + n > size) {
    throw new WeightsError(
      `header length ${n} bytes runs past the end of the ${size}-byte file ` +
        "(the file is truncated or not safetensors; re-download or re-export it)",
      { file },
    );
  }
  return n;
}

/** A parsed, validated header: every entry fits in a data section of `size - 8 - n` bytes. */
interface Header {
  metadata: Record<string, string>;
  entries: Entry[];
  dataStart: number;
}

function parseHeader(
  json: Uint8Array,
  size: number,
  file: string | undefined,
): Header {
  const n = json.length;
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(json);
  } catch (cause) {
    throw new WeightsError(
      "header is not valid UTF-8 (the file is corrupt or not safetensors; re-export it)",
      { file, cause },
    );
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (cause) {
    const why = cause instanceof Error ? cause.message.replace(/\s+/g, " ") : String(cause);
    throw new WeightsError(
      `header is not valid JSON (${why}); the file is corrupt or not safetensors (re-export it)`,
      { file, cause },
    );
  }
  if (!isRecord(header)) {
    throw new WeightsError(
      `header is ${describe(header)}, expected a JSON object mapping tensor names to entries ` +
        "(the file is corrupt; re-export it)",
      { file },
    );
  }

  const metadata: Record<string, string> = {};
  const rawMeta = header[METADATA_KEY];
  if (rawMeta !== undefined) {
    if (!isRecord(rawMeta)) {
      throw new WeightsError(
        `${METADATA_KEY} is ${
          describe(rawMeta)
        }, expected an object of strings (re-export the file)`,
        { file },
      );
    }
    for (const [k, v] of Object.entries(rawMeta)) {
      if (typeof v !== "string") {
        throw new WeightsError(
          `${METADATA_KEY} entry ${q(k)} is ${describe(v)}; metadata values must be strings ` +
            "(re-export the file with string metadata)",
          { file },
        );
      }
      metadata[k] = v;
    }
  }

  const entries: Entry[] = [];
  for (const [name, raw] of Object.entries(header)) {
    if (name !== METADATA_KEY) entries.push(parseEntry(name, raw, file));
  }

  const dataStart = 8 + n;
  const dataLen = size - dataStart;
  const byStart = entries.filter((e) => e.end > e.start).sort((a, b) => a.start - b.start);
  for (let i = 1; i < byStart.length; i++) {
    const prev = byStart[i - 1];
    const cur = byStart[i];
    if (cur.start < prev.end) {
      throw new WeightsError(
        `tensor ${q(cur.name)} data_offsets [${cur.start}, ${cur.end}] overlap tensor ` +
          `${
            q(prev.name)
          } [${prev.start}, ${prev.end}] (the header is corrupt; re-export the file)`,
        { file, tensor: cur.name },
      );
    }
  }
  const needed = byStart.length > 0 ? byStart[byStart.length - 1].end : 0;
  if (needed > dataLen) {
    // Back-to-back tensors from 0 mean the header is self-consistent and the file was cut short.
    const contiguous = byStart.every((e, i) => e.start === (i === 0 ? 0 : byStart[i - 1].end));
    if (contiguous) {
      throw new WeightsError(
        `data section is truncated: the header describes ${needed} bytes but only ${dataLen} ` +
          "follow it (the download or save was cut short; re-download or re-export the file)",
        { file },
      );
    }
    const bad = byStart.find((e) => e.end > dataLen) as Entry;
    throw new WeightsError(
      `tensor ${q(bad.name)} data_offsets [${bad.start}, ${bad.end}] run past the end of the ` +
        `${dataLen}-byte data section (the file is truncated or its header is corrupt; ` +
        "re-export it)",
      { file, tensor: bad.name },
    );
  }
  return { metadata, entries, dataStart };
}

/**
 * Parse the bytes of a safetensors file holding F32, F16 or BF16 tensors; F16 and BF16 values
 * are widened to float32 exactly. The tensor data is copied, so the result does not alias
 * `bytes`. To read a file, prefer {@linkcode openSafetensors}, which reads only the tensors
 * asked for.
 *
 * @param bytes The whole file.
 * @param source File name used in error messages.
 * @returns The tensors (in header order) and the metadata.
 * @throws {WeightsError} When the file is truncated, corrupt or inconsistent, or a tensor's
 *   dtype is not F32, F16 or BF16.
 *
 * @example
 * ```ts
 * import { encodeSafetensors, parseSafetensors } from "./safetensors.ts";
 * const bytes = encodeSafetensors({ w: { shape: [2], data: new Float32Array([1, 2]) } });
 * const file = parseSafetensors(bytes, "w.safetensors");
 * file.tensors.get("w")?.data; // Float32Array [1, 2]
 * ```
 */
export function parseSafetensors(bytes: Uint8Array, source?: string): SafetensorsFile {
  const file = source;
  const n = headerLength(bytes, bytes.length, file);
  const { metadata, entries, dataStart } = parseHeader(
    bytes.subarray(8, 8 + n),
    bytes.length,
    file,
  );
  const tensors = new Map<string, TensorData>();
  for (const e of entries) {
    const { data, raw } = allocate(e);
    // Copied into a fresh buffer: the source offset need not be aligned.
    raw.set(bytes.subarray(dataStart + e.start, dataStart + e.end));
    finish(data, e.dtype);
    tensors.set(e.name, { shape: e.shape, data });
  }
  return source === undefined ? { tensors, metadata } : { tensors, metadata, source };
}

/**
 * Encode F32 tensors (in insertion order, back to back) and optional string metadata as a
 * safetensors file. The header is space-padded so the data starts at a multiple of 8 bytes.
 * Every tensor is written as F32, including those read from F16 or BF16 files.
 *
 * @param tensors Tensors by name.
 * @param metadata Optional `__metadata__` strings.
 * @returns The file bytes.
 * @throws {WeightsError} When a shape is invalid, a data length does not match its shape, a
 *   name is empty or reserved, or a metadata value is not a string.
 *
 * @example
 * ```ts
 * import { encodeSafetensors } from "./safetensors.ts";
 * const bytes = encodeSafetensors(
 *   { bias: { shape: [3], data: new Float32Array([0.1, 0.2, 0.3]) } },
 *   { variant: "seed" },
 * );
 * bytes.length % 4; // 0
 * ```
 */
export function encodeSafetensors(
  tensors: Map<string, TensorData> | Record<string, TensorData>,
  metadata?: Record<string, string>,
): Uint8Array {
  const list = tensors instanceof Map ? [...tensors] : Object.entries(tensors);
  const header: Record<string, unknown> = {};
  if (metadata !== undefined && Object.keys(metadata).length > 0) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== "string") {
        throw new WeightsError(
          `metadata ${q(k)} is ${describe(v)}; safetensors metadata values must be strings ` +
            "(convert it with String() before saving)",
        );
      }
    }
    header[METADATA_KEY] = metadata;
  }
  let offset = 0;
  for (const [name, t] of list) {
    const fail = (detail: string): WeightsError =>
      new WeightsError(`cannot save tensor ${q(name)}: ${detail}`, { tensor: name });
    if (name === "" || name === METADATA_KEY) {
      throw fail(`the name is ${name === "" ? "empty" : "reserved"} (rename the tensor)`);
    }
    if (!t.shape.every(isIndex)) {
      throw fail(`shape ${fmtShape(t.shape)} has a dim that is not a non-negative integer`);
    }
    const count = numel(t.shape);
    if (!(t.data instanceof Float32Array) || t.data.length !== count) {
      const got = t.data instanceof Float32Array ? `${t.data.length} values` : describe(t.data);
      throw fail(
        `shape ${fmtShape(t.shape)} needs ${count} float32 values but data has ${got} ` +
          "(fix the shape or the data before saving)",
      );
    }
    header[name] = {
      dtype: "F32",
      shape: [...t.shape],
      data_offsets: [offset, offset + count * 4],
    };
    offset += count * 4;
  }

  const json = new TextEncoder().encode(JSON.stringify(header));
  const n = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + n + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(n), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + n);
  let at = 8 + n;
  for (const [, t] of list) {
    if (LITTLE_ENDIAN_HOST) {
      out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), at);
    } else {
      for (let i = 0; i < t.data.length; i++) view.setFloat32(at + i * 4, t.data[i], true);
    }
    at += t.data.byteLength;
  }
  return out;
}

const READ_HINTS = { pathFlag: "--weights", kind: ".safetensors file" } as const;

function ioError(err: unknown, file: string, op: "read" | "write"): WeightsError {
  const hints = op === "read" ? READ_HINTS : { pathFlag: "--output", kind: ".safetensors file" };
  return new WeightsError(fileErrorReason(err, op, hints), { file, cause: err });
}

/**
 * What a safetensors header says about one tensor, before its data is read.
 *
 * @example
 * ```ts
 * import type { SafetensorsTensorInfo } from "./safetensors.ts";
 * const info: SafetensorsTensorInfo = { shape: [3], dtype: "F16", byteLength: 6 };
 * ```
 */
export interface SafetensorsTensorInfo {
  /** The dims. */
  readonly shape: readonly number[];
  /**
   * The dtype stored in the file; other dtypes are rejected when the header is read. The values
   * read are always float32: F16 and BF16 are widened exactly.
   */
  readonly dtype: "F32" | "F16" | "BF16";
  /**
   * How many bytes of the file reading it costs (2 per value for F16 and BF16); the float32
   * values read take 4 bytes each.
   */
  readonly byteLength: number;
}

/**
 * An open safetensors file whose header has been read and checked: names, shapes and metadata
 * are known, and {@linkcode SafetensorsReader.read} reads only the byte ranges of the tensors
 * asked for, so a graph that needs 1% of a big checkpoint reads about 1% of it.
 *
 * @example
 * ```ts ignore
 * import { openSafetensors } from "./safetensors.ts";
 * const reader = await openSafetensors("model.safetensors");
 * try {
 *   const { tensors } = await reader.read(["pos_embed"]);
 * } finally {
 *   reader.close();
 * }
 * ```
 */
export interface SafetensorsReader {
  /** The path, for error messages. */
  readonly source: string;
  /** The header's `__metadata__` entries (empty when absent). */
  readonly metadata: Record<string, string>;
  /** Every tensor's header entry, in header order. */
  readonly tensors: ReadonlyMap<string, SafetensorsTensorInfo>;
  /** The file's size in bytes. */
  readonly size: number;
  /**
   * Reads the named tensors (all of them when `names` is omitted), in the order asked for.
   * @throws {WeightsError} When a name is not in the file (naming the closest) or the file
   *   changed on disk since it was opened.
   */
  read(names?: Iterable<string>): Promise<SafetensorsFile>;
  /** Closes the file; reads after this throw. */
  close(): void;
}

/** Bytes per read, so that progress is reported while a big tensor is read. */
const READ_CHUNK = 16 * 1024 * 1024;

/** Fills `into` from the file at `offset`; a short file means it changed since it was opened. */
async function readAt(
  f: RegularFile,
  offset: number,
  into: Uint8Array,
  file: string,
  onRead?: (bytes: number) => void,
): Promise<void> {
  try {
    for (let done = 0; done < into.length;) {
      const got = await f.read(
        into.subarray(done, Math.min(into.length, done + READ_CHUNK)),
        offset + done,
      );
      if (got === 0) {
        throw new WeightsError(
          `the file ended at byte ${offset + done} while reading up to byte ` +
            `${offset + into.length}: it changed on disk while being read (read it again)`,
          { file },
        );
      }
      done += got;
      onRead?.(got);
    }
  } catch (err) {
    throw err instanceof WeightsError ? err : ioError(err, file, "read");
  }
}

/**
 * Open a safetensors file of F32, F16 or BF16 tensors and read its header only: 8 bytes of
 * length (bounded, and checked against the file's size) and the JSON, validated as
 * {@linkcode parseSafetensors} does. Reads return float32 values whatever the file's dtype. A
 * path that is not a regular file (a directory, a FIFO, `/dev/zero`) is refused before it is
 * opened. Close the reader when done.
 *
 * @param path File path or `file:` URL, read in Deno or in Node (`node:fs/promises`).
 * @returns A reader holding the file open.
 * @throws {WeightsError} When the file is missing, unreadable, not a regular file or invalid,
 *   and in a browser (fetch it with {@linkcode loadSafetensors} and a URL instead).
 *
 * @example
 * ```ts
 * import { encodeSafetensors, openSafetensors } from "./safetensors.ts";
 * const path = await Deno.makeTempFile({ suffix: ".safetensors" });
 * await Deno.writeFile(path, encodeSafetensors({
 *   small: { shape: [2], data: new Float32Array([1, 2]) },
 *   big: { shape: [1000], data: new Float32Array(1000) },
 * }));
 * const reader = await openSafetensors(path);
 * try {
 *   reader.tensors.get("big")?.shape; // [1000], without reading its data
 *   const { tensors } = await reader.read(["small"]); // reads 8 bytes of data
 *   tensors.get("small")?.data; // Float32Array [1, 2]
 * } finally {
 *   reader.close();
 * }
 * ```
 */
export async function openSafetensors(path: string | URL): Promise<SafetensorsReader> {
  return (await openReader(path)).reader;
}

/** A reader, and a way to read everything reporting progress, for {@linkcode loadSafetensors}. */
interface OpenedReader {
  reader: SafetensorsReader;
  readAll(onProgress: ProgressCallback | undefined): Promise<SafetensorsFile>;
}

async function openReader(path: string | URL): Promise<OpenedReader> {
  const file = displayPath(path);
  if (typeof path === "string" && looksLikeUrl(path)) throw urlAsPathError(path);
  let f: RegularFile;
  try {
    f = await openRegularFile(path, READ_HINTS, (why) => new WeightsError(why, { file }));
  } catch (err) {
    throw err instanceof WeightsError ? err : ioError(err, file, "read");
  }
  try {
    const { size } = f;
    const prefix = new Uint8Array(Math.min(8, size));
    await readAt(f, 0, prefix, file);
    const json = new Uint8Array(headerLength(prefix, size, file));
    await readAt(f, 8, json, file);
    return makeReader(f, file, size, parseHeader(json, size, file));
  } catch (err) {
    f.close();
    throw err;
  }
}

function urlAsPathError(path: string): WeightsError {
  return new WeightsError(
    `a string is read as a file path; to download it, pass a URL: ` +
      `loadSafetensors(new URL(${q(path)}))`,
    { file: path },
  );
}

function makeReader(f: RegularFile, file: string, size: number, header: Header): OpenedReader {
  const byName = new Map(header.entries.map((e) => [e.name, e]));
  const tensors = new Map<string, SafetensorsTensorInfo>();
  for (const e of header.entries) {
    tensors.set(e.name, { shape: e.shape, dtype: e.dtype, byteLength: e.end - e.start });
  }
  let closed = false;
  // Reads share the file position: run them one at a time.
  let queue: Promise<unknown> = Promise.resolve();

  async function readNow(
    names: Iterable<string> | undefined,
    onProgress?: ProgressCallback,
  ): Promise<SafetensorsFile> {
    if (closed) throw new Error(`${file}: read() after close()`);
    const wanted = names === undefined ? header.entries : [...new Set(names)].map((name) => {
      const e = byName.get(name);
      if (e === undefined) throw notFoundError([...byName.keys()], name, file);
      return e;
    });
    // The header was read on opening: progress reports it at once.
    let loaded = header.dataStart;
    const onRead = onProgress && ((n: number): void => onProgress(loaded += n, size));
    onProgress?.(0, size);
    onProgress?.(loaded, size);
    const out = new Map<string, TensorData>();
    for (const e of wanted) {
      const { data, raw } = allocate(e);
      // Straight into the tensor's own buffer, widened there: no second copy of the data.
      await readAt(f, header.dataStart + e.start, raw, file, onRead);
      finish(data, e.dtype);
      out.set(e.name, { shape: [...e.shape], data });
    }
    // Done: bytes the tensors do not cover (alignment, trailing bytes) count as read too.
    if (loaded < size) onProgress?.(size, size);
    return { tensors: out, metadata: { ...header.metadata }, source: file };
  }

  function queued(
    names: Iterable<string> | undefined,
    onProgress?: ProgressCallback,
  ): Promise<SafetensorsFile> {
    const run = queue.then(() => readNow(names, onProgress));
    queue = run.catch(() => {});
    return run;
  }

  const reader: SafetensorsReader = {
    source: file,
    metadata: header.metadata,
    tensors,
    size,
    read(names?: Iterable<string>): Promise<SafetensorsFile> {
      return queued(names);
    },
    close(): void {
      if (closed) return;
      closed = true;
      f.close();
    },
  };
  return { reader, readAll: (onProgress) => queued(undefined, onProgress) };
}

/**
 * Builds a {@linkcode SafetensorsFile} from a body as it arrives, checking as it goes: the 8-byte
 * header length as soon as it is in (against the declared size, when there is one), the header
 * as soon as it is in (its tensors must fit in the declared size, and a declared size past them
 * is refused before any data is read), then each byte lands straight in its tensor's array,
 * allocated when its first byte arrives. A byte past the last tensor is refused at once.
 */
class StreamParser {
  private readonly prefix = new Uint8Array(8);
  private json: Uint8Array | undefined;
  private header: Header | undefined;
  /** Tensors with data, by start; `next` is the first not yet complete. */
  private pending: Entry[] = [];
  private next = 0;
  private readonly arrays = new Map<Entry, { data: Float32Array; raw: Uint8Array }>();
  /** The body's size once the header is in: 8 + header + the end of the last tensor. */
  private expected = Infinity;
  private loaded = 0;

  constructor(private readonly file: string, private readonly size: number | undefined) {}

  push(chunk: Uint8Array): void {
    const base = this.loaded;
    this.loaded += chunk.length;
    for (let at = 0; at < chunk.length;) {
      const pos = base + at;
      const left = chunk.length - at;
      if (pos < 8) {
        const take = Math.min(8 - pos, left);
        this.prefix.set(chunk.subarray(at, at + take), pos);
        at += take;
        if (pos + take === 8) {
          this.json = new Uint8Array(headerLength(this.prefix, this.size ?? Infinity, this.file));
          if (this.json.length === 0) this.parse();
        }
        continue;
      }
      const json = this.json as Uint8Array;
      if (this.header === undefined) {
        const off = pos - 8;
        const take = Math.min(json.length - off, left);
        json.set(chunk.subarray(at, at + take), off);
        at += take;
        if (off + take === json.length) this.parse();
        continue;
      }
      if (pos >= this.expected) throw this.tooLong(`at least ${base + chunk.length}`);
      const d = pos - this.header.dataStart;
      const e = this.pending[this.next];
      if (d < e.start) {
        // A gap the header leaves between tensors: skipped.
        at += Math.min(e.start - d, left);
        continue;
      }
      let target = this.arrays.get(e);
      if (target === undefined) {
        target = allocate(e);
        this.arrays.set(e, target);
      }
      const take = Math.min(e.end - d, left);
      target.raw.set(chunk.subarray(at, at + take), d - e.start);
      at += take;
      if (d + take === e.end) {
        finish(target.data, e.dtype);
        this.next++;
      }
    }
  }

  private parse(): void {
    const header = parseHeader(this.json as Uint8Array, this.size ?? Infinity, this.file);
    this.header = header;
    this.pending = header.entries.filter((e) => e.end > e.start).sort((a, b) => a.start - b.start);
    const last = this.pending[this.pending.length - 1];
    this.expected = header.dataStart + (last?.end ?? 0);
    if (this.size !== undefined && this.size > this.expected) throw this.tooLong(`${this.size}`);
  }

  private tooLong(got: string): WeightsError {
    const dataStart = this.header?.dataStart ?? 0;
    return new WeightsError(
      `the body is ${got} bytes, past the ${this.expected} its header describes (8 + ` +
        `${dataStart - 8} bytes of header, ${this.expected - dataStart} of tensors): it is not ` +
        "one safetensors file as written (check the URL; re-export or re-upload the file)",
      { file: this.file },
    );
  }

  end(): SafetensorsFile {
    const { loaded, file } = this;
    // Each check below throws the message reading a file of `loaded` bytes would.
    if (this.header === undefined) {
      headerLength(this.prefix.subarray(0, Math.min(8, loaded)), loaded, file);
      throw new WeightsError("the header ended early (re-download the file)", { file });
    }
    if (loaded < this.expected) {
      parseHeader(this.json as Uint8Array, loaded, file);
      throw new WeightsError("the body ended early (re-download the file)", { file });
    }
    const tensors = new Map<string, TensorData>();
    for (const e of this.header.entries) {
      // Empty tensors got no bytes, so no array yet.
      const { data } = this.arrays.get(e) ?? allocate(e);
      tensors.set(e.name, { shape: e.shape, data });
    }
    return { tensors, metadata: this.header.metadata, source: file };
  }
}

/** {@linkcode loadSafetensors} on a URL (not `file:`) or a Response. */
async function loadFromBody(
  source: URL | Response,
  options: LoadSafetensorsOptions,
): Promise<SafetensorsFile> {
  const body = await openBody(source, {
    caller: "loadSafetensors",
    error: (line, url, cause) => {
      const err = new WeightsError(line, { cause });
      err.file = url;
      return err;
    },
    onProgress: options.onProgress,
    signal: options.signal,
  });
  const parser = new StreamParser(body.url, body.length);
  // A throw inside the loop (a refused byte) cancels the rest of the download.
  for await (const chunk of body.chunks) parser.push(chunk);
  return parser.end();
}

/**
 * Where {@linkcode loadSafetensors} reads from: a file path (Deno, or Node through
 * `node:fs/promises`), a `URL` (`file:` URLs are paths, others are fetched with `fetch`), or a
 * `Response` (from your own `fetch`, e.g. one with an `Authorization` header).
 *
 * @example
 * ```ts
 * import type { SafetensorsSource } from "./safetensors.ts";
 * const sources: SafetensorsSource[] = [
 *   "weights/model.safetensors",
 *   new URL("https://example.com/model.safetensors"),
 * ];
 * ```
 */
export type SafetensorsSource = string | URL | Response;

/**
 * Options for {@linkcode loadSafetensors}.
 *
 * @example
 * ```ts
 * import type { LoadSafetensorsOptions } from "./safetensors.ts";
 * const options: LoadSafetensorsOptions = {
 *   onProgress: (loaded, total) => console.log(`${loaded} of ${total ?? "?"} bytes`),
 *   signal: AbortSignal.timeout(60_000),
 * };
 * ```
 */
export interface LoadSafetensorsOptions {
  /**
   * Called as bytes arrive (for a file, as they are read), with the total when known (the
   * `Content-Length`, or the file's size); see {@linkcode ProgressCallback}.
   */
  onProgress?: ProgressCallback;
  /** Aborts a download (ignored for files); the abort reason is rethrown as it is. */
  signal?: AbortSignal;
}

/**
 * Read a safetensors file of F32, F16 or BF16 tensors, from a path, a URL or a `Response`. Every
 * tensor's bytes go straight into its own float32 array, widened there, so the file is never
 * held whole in memory: the peak is about the size of the tensors read.
 *
 * - A path (or `file:` URL) is read in Deno or in Node (through `node:fs/promises`); only
 *   regular files are read (a FIFO or `/dev/zero` is refused before it is opened). To read only
 *   some tensors, use {@linkcode openSafetensors}.
 * - A `URL` is fetched and its body streamed; a `Response` is streamed as it is. The header is
 *   checked as soon as it arrives, against the `Content-Length` when there is one; a body longer
 *   than the header describes is refused at the first byte too many, one shorter at its end.
 *
 * @param source A path, a `URL` or a `Response`.
 * @param options A progress callback, and an abort signal for downloads.
 * @returns The tensors and metadata; `source` is the path or the URL, for later error messages.
 * @throws {WeightsError} When the file is missing, unreadable, not a regular file or invalid; a
 *   fetch failed or answered a non-2xx status (`loadSafetensors: GET <url> answered 404 Not
 *   Found ...`); a body is cut short or runs long.
 *
 * @example
 * ```ts ignore
 * import { loadSafetensors } from "./safetensors.ts";
 * const weights = await loadSafetensors("weights.safetensors");
 * const remote = await loadSafetensors(new URL("https://example.com/vit.safetensors"), {
 *   onProgress: (loaded, total) => console.log(loaded, total),
 * });
 * console.log([...weights.tensors.keys()], remote.metadata);
 * ```
 */
export async function loadSafetensors(
  source: SafetensorsSource,
  options: LoadSafetensorsOptions = {},
): Promise<SafetensorsFile> {
  if (isResponse(source) || (source instanceof URL && source.protocol !== "file:")) {
    return await loadFromBody(source, options);
  }
  const { reader, readAll } = await openReader(source);
  try {
    return await readAll(options.onProgress);
  } finally {
    reader.close();
  }
}

/**
 * Encode and save F32 tensors atomically: the bytes go to a temp file beside `path`, which is
 * then renamed over it, so a failed save never leaves a half-written or clobbered file.
 *
 * @param path Destination file path or `file:` URL.
 * @param tensors Tensors by name, saved in insertion order.
 * @param metadata Optional `__metadata__` strings.
 * @throws {WeightsError} When the tensors are invalid (nothing is written) or the write fails.
 *
 * @example
 * ```ts ignore
 * import { saveSafetensors } from "./safetensors.ts";
 * await saveSafetensors("out.safetensors", {
 *   w: { shape: [2, 2], data: new Float32Array([1, 0, 0, 1]) },
 * }, { note: "identity" });
 * ```
 */
export async function saveSafetensors(
  path: string | URL,
  tensors: Map<string, TensorData> | Record<string, TensorData>,
  metadata?: Record<string, string>,
): Promise<void> {
  const file = displayPath(path);
  let bytes: Uint8Array;
  try {
    bytes = encodeSafetensors(tensors, metadata);
  } catch (err) {
    if (err instanceof WeightsError && err.file === undefined) {
      throw new WeightsError(err.message, { file, tensor: err.tensor, cause: err });
    }
    throw err;
  }
  await writeFileAtomic(file, bytes).catch((err) => {
    throw ioError(err, file, "write");
  });
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length];
}

/** A missing tensor, with the closest name and a few of those the file has. */
function notFoundError(names: readonly string[], name: string, where?: string): WeightsError {
  if (names.length === 0) {
    return new WeightsError(
      `tensor ${q(name)} not found: the file has no tensors (check the --weights path)`,
      { file: where, tensor: name },
    );
  }
  const closest = names.reduce((best, cand) =>
    editDistance(cand, name) < editDistance(best, name) ? cand : best
  );
  const shown = names.slice(0, 8).map(q).join(", ");
  const more = names.length > 8 ? `, ... (${names.length} in all)` : "";
  return new WeightsError(
    `tensor ${q(name)} not found; did you mean ${q(closest)}? available: ${shown}${more} ` +
      "(check the checkpoint matches the model variant)",
    { file: where, tensor: name },
  );
}

/**
 * Get a tensor by name, optionally checking its shape.
 *
 * @param file A parsed or loaded safetensors file.
 * @param name The tensor name.
 * @param shape The expected shape, if it must match exactly.
 * @param source File name for error messages; defaults to `file.source`.
 * @returns The tensor.
 * @throws {WeightsError} When the name is missing (listing available names and the closest
 *   one) or the shape differs.
 *
 * @example
 * ```ts
 * import { encodeSafetensors, parseSafetensors, requireTensor } from "./safetensors.ts";
 * const file = parseSafetensors(
 *   encodeSafetensors({ cls_token: { shape: [1, 1, 2], data: new Float32Array(2) } }),
 * );
 * requireTensor(file, "cls_token", [1, 1, 2]).data.length; // 2
 * ```
 */
export function requireTensor(
  file: SafetensorsFile,
  name: string,
  shape?: readonly number[],
  source?: string,
): TensorData {
  const where = source ?? file.source;
  const t = file.tensors.get(name);
  if (t === undefined) throw notFoundError([...file.tensors.keys()], name, where);
  if (shape !== undefined) {
    const same = shape.length === t.shape.length && shape.every((d, i) => d === t.shape[i]);
    if (!same) {
      throw new WeightsError(
        `tensor ${q(name)} has shape ${fmtShape(t.shape)} but ${fmtShape(shape)} was expected ` +
          "(check the model config matches the checkpoint)",
        { file: where, tensor: name },
      );
    }
  }
  return t;
}
