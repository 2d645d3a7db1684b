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
// Protobuf writer: varints, fixed32 floats and length-delimited fields are all ONNX needs.

const WIRE_VARINT = 0;
const WIRE_LEN = 2;
const WIRE_FIXED32 = 5;

/** The bytes of one varint: non-negative safe integers, and negatives as 10-byte int64. */
function varintBytes(value: number): Uint8Array {
  if (!Number.isSafeInteger(value)) {
    throw new RangeError(`protobuf varint must be a safe integer, got ${value}`);
  }
  const out: number[] = [];
  if (value < 0) {
    // int64 two's complement, as protobuf writes a negative int32/int64.
    let v = BigInt.asUintN(64, BigInt(value));
    while (v >= 0x80n) {
      out.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    out.push(Number(v));
    return Uint8Array.from(out);
  }
  let v = value;
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return Uint8Array.from(out);
}

/**
 * Accumulates one protobuf message as a list of chunks. An embedded message keeps its chunks (no
 * copy), and a bytes field keeps a view of its array, so a model of hundreds of MB is copied once,
 * by `finish()`; do not change an array handed to `bytes` before then.
 *
 * @example
 * ```ts
 * import { ProtoWriter } from "./onnx_models.ts";
 * const inner = new ProtoWriter().int(1, 150);
 * new ProtoWriter().message(3, inner).finish(); // Uint8Array [26, 3, 8, 150, 1]
 * ```
 */
export class ProtoWriter {
  #chunks: Uint8Array[] = [];
  #length = 0;

  /** Bytes written so far. */
  get length(): number {
    return this.#length;
  }

  #push(bytes: Uint8Array): void {
    this.#chunks.push(bytes);
    this.#length += bytes.length;
  }

  #tag(field: number, wire: number): void {
    this.#push(varintBytes(field * 8 + wire));
  }

  /** An int32/int64/enum field (negative values as int64). */
  int(field: number, value: number): this {
    this.#tag(field, WIRE_VARINT);
    this.#push(varintBytes(value));
    return this;
  }

  /** A float field (fixed32, little-endian; the value is rounded to float32). */
  float(field: number, value: number): this {
    this.#tag(field, WIRE_FIXED32);
    const raw = new Uint8Array(4);
    new DataView(raw.buffer).setFloat32(0, value, true);
    this.#push(raw);
    return this;
  }

  /** A bytes field. */
  bytes(field: number, value: Uint8Array): this {
    this.#tag(field, WIRE_LEN);
    this.#push(varintBytes(value.length));
    this.#push(value);
    return this;
  }

  /** A string field (UTF-8). */
  string(field: number, value: string): this {
    return this.bytes(field, new TextEncoder().encode(value));
  }

  /** An embedded message field (its chunks are shared, not copied). */
  message(field: number, value: ProtoWriter): this {
    this.#tag(field, WIRE_LEN);
    this.#push(varintBytes(value.#length));
    for (const c of value.#chunks) this.#push(c);
    return this;
  }

  /** A packed repeated int64 field. */
  packedInts(field: number, values: readonly number[]): this {
    const inner = new ProtoWriter();
    for (const v of values) inner.#push(varintBytes(v));
    return this.message(field, inner);
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
const ATTR_FLOAT = 1; // AttributeProto.AttributeType.FLOAT
const ATTR_INT = 2; // AttributeProto.AttributeType.INT
const ATTR_INTS = 7; // AttributeProto.AttributeType.INTS

/** The ONNX IR version the models are written with. */
export const ONNX_IR_VERSION = 8;
/** The default-domain opset the models import. */
export const ONNX_OPSET = 17;

/**
 * One node attribute: an int, a list of ints or a float.
 *
 * @example
 * ```ts
 * import type { OnnxAttr } from "./onnx_models.ts";
 * const attrs: OnnxAttr[] = [{ name: "axis", int: -1 }, { name: "epsilon", float: 1e-6 }];
 * ```
 */
export type OnnxAttr =
  | { readonly name: string; readonly int: number }
  | { readonly name: string; readonly ints: readonly number[] }
  | { readonly name: string; readonly float: number };

/**
 * A float32 `TensorProto` (an initializer) with `raw_data`; `dims` `[]` is a scalar.
 *
 * @example
 * ```ts
 * import { onnxFloatTensor } from "./onnx_models.ts";
 * onnxFloatTensor("half", [], Float32Array.of(0.5)).length > 0; // true
 * ```
 */
export function onnxFloatTensor(
  name: string,
  dims: readonly number[],
  data: Float32Array,
): ProtoWriter {
  const count = dims.reduce((a, b) => a * b, 1);
  if (count !== data.length) {
    throw new Error(
      `onnx: tensor "${name}" has ${data.length} values, dims [${dims}] need ${count}`,
    );
  }
  const raw = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  // TensorProto: dims = 1, data_type = 2, name = 8, raw_data = 9 (little-endian).
  return new ProtoWriter().packedInts(1, dims).int(2, FLOAT).string(8, name).bytes(9, raw);
}

/**
 * An int64 `TensorProto` (shapes, indices); `dims` defaults to `[values.length]`, `[]` is a scalar.
 *
 * @example
 * ```ts
 * import { onnxInt64Tensor } from "./onnx_models.ts";
 * onnxInt64Tensor("shape", [8, 197, 192]).length > 0; // true
 * ```
 */
export function onnxInt64Tensor(
  name: string,
  values: readonly number[],
  dims: readonly number[] = [values.length],
): ProtoWriter {
  const raw = new Uint8Array(values.length * 8);
  const view = new DataView(raw.buffer);
  values.forEach((v, i) => view.setBigInt64(i * 8, BigInt(v), true));
  return new ProtoWriter().packedInts(1, dims).int(2, INT64).string(8, name).bytes(9, raw);
}

/**
 * A `NodeProto` of the default domain; its name is `<op>_<first output>` unless given.
 *
 * @example
 * ```ts
 * import { onnxNode } from "./onnx_models.ts";
 * onnxNode("Softmax", ["scores"], "probs", [{ name: "axis", int: -1 }]).length > 0; // true
 * ```
 */
export function onnxNode(
  op: string,
  inputs: readonly string[],
  output: string | readonly string[],
  attrs: readonly OnnxAttr[] = [],
  name?: string,
): ProtoWriter {
  const outputs = typeof output === "string" ? [output] : output;
  // NodeProto: input = 1, output = 2, name = 3, op_type = 4, attribute = 5.
  const w = new ProtoWriter();
  for (const i of inputs) w.string(1, i);
  for (const o of outputs) w.string(2, o);
  w.string(3, name ?? `${op}_${outputs[0]}`).string(4, op);
  for (const a of attrs) {
    // AttributeProto: name = 1, f = 2, i = 3, ints = 8, type = 20.
    const attr = new ProtoWriter().string(1, a.name);
    if ("int" in a) attr.int(3, a.int).int(20, ATTR_INT);
    else if ("float" in a) attr.float(2, a.float).int(20, ATTR_FLOAT);
    else attr.packedInts(8, a.ints).int(20, ATTR_INTS);
    w.message(5, attr);
  }
  return w;
}

/**
 * A float32 `ValueInfoProto` with a static shape (a graph input or output).
 *
 * @example
 * ```ts
 * import { onnxValueInfo } from "./onnx_models.ts";
 * onnxValueInfo("image", [1, 3, 224, 224]).length > 0; // true
 * ```
 */
export function onnxValueInfo(name: string, dims: readonly number[]): ProtoWriter {
  // TensorShapeProto.Dimension: dim_value = 1. TensorShapeProto: dim = 1.
  const shape = new ProtoWriter();
  for (const d of dims) shape.message(1, new ProtoWriter().int(1, d));
  // TypeProto.Tensor: elem_type = 1, shape = 2. TypeProto: tensor_type = 1.
  const tensorType = new ProtoWriter().int(1, FLOAT).message(2, shape);
  // ValueInfoProto: name = 1, type = 2.
  return new ProtoWriter().string(1, name).message(2, new ProtoWriter().message(1, tensorType));
}

/** The parts of one ONNX model, for {@linkcode onnxModel}. */
export interface OnnxGraphParts {
  /** `GraphProto.name`. */
  readonly name: string;
  /** Nodes, in topological order. */
  readonly nodes: readonly ProtoWriter[];
  /** Initializers (`onnxFloatTensor`, `onnxInt64Tensor`). */
  readonly initializers: readonly ProtoWriter[];
  /** Graph inputs (`onnxValueInfo`). */
  readonly inputs: readonly ProtoWriter[];
  /** Graph outputs (`onnxValueInfo`). */
  readonly outputs: readonly ProtoWriter[];
  /** `ModelProto.producer_name`; defaults to `tessera-bench`. */
  readonly producer?: string;
}

/**
 * Encodes a `ModelProto` (IR version {@linkcode ONNX_IR_VERSION}, default-domain opset
 * {@linkcode ONNX_OPSET}) around one graph.
 *
 * @example
 * ```ts
 * import { onnxModel, onnxNode, onnxValueInfo } from "./onnx_models.ts";
 * const bytes = onnxModel({
 *   name: "relu",
 *   nodes: [onnxNode("Relu", ["x"], "y")],
 *   initializers: [],
 *   inputs: [onnxValueInfo("x", [2])],
 *   outputs: [onnxValueInfo("y", [2])],
 * });
 * bytes[0]; // 8: field 1 (ir_version), varint
 * ```
 */
export function onnxModel(parts: OnnxGraphParts): Uint8Array {
  // GraphProto: node = 1, name = 2, initializer = 5, input = 11, output = 12.
  const graph = new ProtoWriter();
  for (const nd of parts.nodes) graph.message(1, nd);
  graph.string(2, parts.name);
  for (const t of parts.initializers) graph.message(5, t);
  for (const i of parts.inputs) graph.message(11, i);
  for (const o of parts.outputs) graph.message(12, o);
  // ModelProto: ir_version = 1, producer_name = 2, graph = 7, opset_import = 8.
  // OperatorSetIdProto: domain = 1 (empty: default domain, omitted), version = 2.
  return new ProtoWriter()
    .int(1, ONNX_IR_VERSION)
    .string(2, parts.producer ?? "tessera-bench")
    .message(7, graph)
    .message(8, new ProtoWriter().int(2, ONNX_OPSET))
    .finish();
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
    inits.push(onnxFloatTensor(name, dims, data));
  const shapeInit = (name: string, values: readonly number[]) =>
    inits.push(onnxInt64Tensor(name, values));
  const node = onnxNode;

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

  return onnxModel({
    name: `${variant}_tokenizer_b${batch}`,
    nodes,
    initializers: inits,
    inputs: [onnxValueInfo("image", [batch, c, height, width])],
    outputs: [onnxValueInfo("output", [batch, n + 1, d])],
  });
}
