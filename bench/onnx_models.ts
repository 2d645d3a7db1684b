/**
 * The two ViT tokenizers as ONNX models, encoded in memory with a small protobuf writer, so the
 * ONNX Runtime peer in `bench/compare.ts` runs the same work on the same weights as Tessera.
 *
 * Each model has static shapes for one batch size (ONNX IR 8, opset 17, fp32):
 *
 * - `seed`: Conv C->C k=s=P (+bias) -> Reshape (B,C,N) -> Reshape (B,N,C) (a row-major
 *   reinterpretation, not a transpose) -> MatMul W^T (C,D) -> Add bias -> Concat([Expand(cls),
 *   x], 1) -> Add pos.
 * - `standard`: Conv C->D k=s=P (+bias) -> Reshape (B,D,N) -> Transpose (0,2,1) ->
 *   Concat([Expand(cls), x], 1) -> Add pos.
 *
 * Weights are keyed by the PyTorch names the Tessera graphs use (see `models/vit_tokenizer.ts`),
 * e.g. from `initParams(graph, seed)`.
 * @module
 */

import type { TensorData, Weights } from "../mod.ts";

export type { TensorData, Weights };

/** Which tokenizer to build. */
export type TokenizerVariant = "seed" | "standard";

/** Image and embedding sizes; the benchmark uses 224x224, patch 16, width 768, 3 channels. */
export interface OnnxTokenizerSizes {
  /** Image height, divisible by `patch`. */
  readonly height: number;
  /** Image width, divisible by `patch`. */
  readonly width: number;
  /** Patch size (conv kernel and stride). */
  readonly patch: number;
  /** Embedding width D. */
  readonly embedding: number;
  /** Colour channels C; defaults to 3. */
  readonly channels?: number;
}

/** The benchmark's sizes: ViT-B/16 at 224x224. */
export const VIT_B16_SIZES: OnnxTokenizerSizes = {
  height: 224,
  width: 224,
  patch: 16,
  embedding: 768,
};

// ---------------------------------------------------------------------------------------------
// Protobuf writer: varints and length-delimited fields are all ONNX needs.

const WIRE_VARINT = 0;
const WIRE_LEN = 2;

/** Accumulates one protobuf message. Nested messages are encoded first, then embedded. */
class ProtoWriter {
  #chunks: Uint8Array[] = [];
  #length = 0;

  #push(bytes: Uint8Array): void {
    this.#chunks.push(bytes);
    this.#length += bytes.length;
  }

  #varint(value: number): void {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new RangeError(`protobuf varint must be a non-negative safe integer, got ${value}`);
    }
    const out: number[] = [];
    let v = value;
    while (v >= 0x80) {
      out.push((v % 0x80) | 0x80);
      v = Math.floor(v / 0x80);
    }
    out.push(v);
    this.#push(Uint8Array.from(out));
  }

  #tag(field: number, wire: number): void {
    this.#varint(field * 8 + wire);
  }

  /** An int32/int64/enum field (non-negative values only). */
  int(field: number, value: number): this {
    this.#tag(field, WIRE_VARINT);
    this.#varint(value);
    return this;
  }

  /** A bytes field. */
  bytes(field: number, value: Uint8Array): this {
    this.#tag(field, WIRE_LEN);
    this.#varint(value.length);
    this.#push(value);
    return this;
  }

  /** A string field (UTF-8). */
  string(field: number, value: string): this {
    return this.bytes(field, new TextEncoder().encode(value));
  }

  /** An embedded message field. */
  message(field: number, value: ProtoWriter): this {
    return this.bytes(field, value.finish());
  }

  /** A packed repeated int64 field. */
  packedInts(field: number, values: readonly number[]): this {
    const inner = new ProtoWriter();
    for (const v of values) inner.#varint(v);
    return this.bytes(field, inner.finish());
  }

  /** The encoded message. */
  finish(): Uint8Array {
    const out = new Uint8Array(this.#length);
    let at = 0;
    for (const c of this.#chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  }
}

// ---------------------------------------------------------------------------------------------
// ONNX messages (field numbers from onnx/onnx.proto).

const FLOAT = 1; // TensorProto.DataType.FLOAT
const INT64 = 7; // TensorProto.DataType.INT64
const ATTR_INT = 2; // AttributeProto.AttributeType.INT
const ATTR_INTS = 7; // AttributeProto.AttributeType.INTS

type Attr = { readonly name: string; readonly int: number } | {
  readonly name: string;
  readonly ints: readonly number[];
};

function floatTensor(name: string, dims: readonly number[], data: Float32Array): ProtoWriter {
  const raw = new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice();
  // TensorProto: dims = 1, data_type = 2, name = 8, raw_data = 9 (little-endian).
  return new ProtoWriter().packedInts(1, dims).int(2, FLOAT).string(8, name).bytes(9, raw);
}

function int64Tensor(name: string, values: readonly number[]): ProtoWriter {
  const raw = new Uint8Array(values.length * 8);
  const view = new DataView(raw.buffer);
  values.forEach((v, i) => view.setBigInt64(i * 8, BigInt(v), true));
  return new ProtoWriter().packedInts(1, [values.length]).int(2, INT64).string(8, name).bytes(
    9,
    raw,
  );
}

function node(
  op: string,
  inputs: readonly string[],
  output: string,
  attrs: readonly Attr[] = [],
): ProtoWriter {
  // NodeProto: input = 1, output = 2, name = 3, op_type = 4, attribute = 5.
  const w = new ProtoWriter();
  for (const i of inputs) w.string(1, i);
  w.string(2, output).string(3, `${op}_${output}`).string(4, op);
  for (const a of attrs) {
    // AttributeProto: name = 1, i = 3, ints = 8, type = 20.
    const attr = new ProtoWriter().string(1, a.name);
    if ("int" in a) attr.int(3, a.int).int(20, ATTR_INT);
    else attr.packedInts(8, a.ints).int(20, ATTR_INTS);
    w.message(5, attr);
  }
  return w;
}

function valueInfo(name: string, dims: readonly number[]): ProtoWriter {
  // TensorShapeProto.Dimension: dim_value = 1. TensorShapeProto: dim = 1.
  const shape = new ProtoWriter();
  for (const d of dims) shape.message(1, new ProtoWriter().int(1, d));
  // TypeProto.Tensor: elem_type = 1, shape = 2. TypeProto: tensor_type = 1.
  const tensorType = new ProtoWriter().int(1, FLOAT).message(2, shape);
  // ValueInfoProto: name = 1, type = 2.
  return new ProtoWriter().string(1, name).message(2, new ProtoWriter().message(1, tensorType));
}

function need(weights: Weights, name: string, size: number): TensorData {
  const w = weights.get(name);
  if (!w) throw new Error(`onnx_models: weight "${name}" is missing`);
  if (w.data.length !== size) {
    throw new Error(`onnx_models: weight "${name}" has ${w.data.length} values, expected ${size}`);
  }
  return w;
}

/** Row-major (rows, cols) -> (cols, rows). */
function transpose2d(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c];
  }
  return out;
}

/**
 * Encodes one tokenizer as an ONNX `ModelProto` with static shapes for `batch`: input `image`
 * (B,C,H,W), output `output` (B,N+1,D), fp32. `weights` holds the PyTorch-named parameters of
 * the matching Tessera graph (`seedTokenizer` or `patchEmbedding` with the same sizes).
 *
 * @example
 * ```ts
 * import { initParams, seedTokenizer } from "../mod.ts";
 * import { buildTokenizerOnnx } from "./onnx_models.ts";
 * const sizes = { height: 32, width: 32, patch: 16, embedding: 8 };
 * const bytes = buildTokenizerOnnx("seed", 2, initParams(seedTokenizer(sizes), 0), sizes);
 * bytes.length > 0; // true
 * ```
 */
export function buildTokenizerOnnx(
  variant: TokenizerVariant,
  batch: number,
  weights: Weights,
  sizes: OnnxTokenizerSizes = VIT_B16_SIZES,
): Uint8Array {
  const { height, width, patch, embedding: d } = sizes;
  const c = sizes.channels ?? 3;
  if (height % patch !== 0 || width % patch !== 0) {
    throw new Error(`onnx_models: ${height}x${width} is not divisible by patch ${patch}`);
  }
  if (!Number.isSafeInteger(batch) || batch < 1) {
    throw new Error(`onnx_models: batch must be a positive integer, got ${batch}`);
  }
  const n = (height / patch) * (width / patch);
  const names = variant === "seed"
    ? {
      conv: "patch_extractor.patch_extractor",
      cls: "class_token_prepender.class_token_vector",
      pos: "positional_embedding.positional_embedding",
    }
    : { conv: "patch_embed.proj", cls: "cls_token", pos: "pos_embed" };
  const convOut = variant === "seed" ? c : d;
  const inits: ProtoWriter[] = [];
  const nodes: ProtoWriter[] = [];
  const floatInit = (name: string, dims: readonly number[], data: Float32Array) =>
    inits.push(floatTensor(name, dims, data));
  const shapeInit = (name: string, values: readonly number[]) =>
    inits.push(int64Tensor(name, values));

  const convW = need(weights, `${names.conv}.weight`, convOut * c * patch * patch);
  const convB = need(weights, `${names.conv}.bias`, convOut);
  floatInit("conv_w", [convOut, c, patch, patch], convW.data);
  floatInit("conv_b", [convOut], convB.data);
  floatInit("cls", [1, 1, d], need(weights, names.cls, d).data);
  floatInit("pos", [1, n + 1, d], need(weights, names.pos, (n + 1) * d).data);
  shapeInit("cls_shape", [batch, 1, d]);
  shapeInit("flat_shape", [batch, convOut, n]);

  nodes.push(node("Conv", ["image", "conv_w", "conv_b"], "patches", [
    { name: "kernel_shape", ints: [patch, patch] },
    { name: "strides", ints: [patch, patch] },
  ]));
  nodes.push(node("Reshape", ["patches", "flat_shape"], "flat"));
  if (variant === "seed") {
    // The seed's Linear always has 3 in-features; the graph builder enforces channels == 3.
    const linW = need(weights, "token_embedding.embedding.weight", d * c);
    floatInit("lin_wt", [c, d], transpose2d(linW.data, d, c));
    floatInit("lin_b", [d], need(weights, "token_embedding.embedding.bias", d).data);
    shapeInit("tokens_shape", [batch, n, c]);
    nodes.push(node("Reshape", ["flat", "tokens_shape"], "tokens"));
    nodes.push(node("MatMul", ["tokens", "lin_wt"], "matmul"));
    nodes.push(node("Add", ["matmul", "lin_b"], "embeddings"));
  } else {
    nodes.push(node("Transpose", ["flat"], "embeddings", [{ name: "perm", ints: [0, 2, 1] }]));
  }
  nodes.push(node("Expand", ["cls", "cls_shape"], "cls_batch"));
  nodes.push(node("Concat", ["cls_batch", "embeddings"], "with_class_token", [
    { name: "axis", int: 1 },
  ]));
  nodes.push(node("Add", ["with_class_token", "pos"], "output"));

  // GraphProto: node = 1, name = 2, initializer = 5, input = 11, output = 12.
  const graph = new ProtoWriter();
  for (const nd of nodes) graph.message(1, nd);
  graph.string(2, `${variant}_tokenizer_b${batch}`);
  for (const t of inits) graph.message(5, t);
  graph.message(11, valueInfo("image", [batch, c, height, width]));
  graph.message(12, valueInfo("output", [batch, n + 1, d]));

  // ModelProto: ir_version = 1, producer_name = 2, graph = 7, opset_import = 8.
  // OperatorSetIdProto: domain = 1 (empty: default domain, omitted), version = 2.
  return new ProtoWriter()
    .int(1, 8)
    .string(2, "tessera-bench")
    .message(7, graph)
    .message(8, new ProtoWriter().int(2, 17))
    .finish();
}
