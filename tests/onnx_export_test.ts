// bench/onnx_export.ts: the Tessera IR as ONNX. Structural tests (node list, initializers, opset,
// the bytes decoded back with a small protobuf reader, unsupported ops) need nothing but Deno. The
// parity tests run the exported models in ONNX Runtime through the Node peer (bench/vit_peer.mjs)
// and are ignored unless `node` and onnxruntime-node are installed (see bench/vit_compare.ts), so
// an offline CI passes and deno.lock is never touched.
import assert from "node:assert/strict";
import {
  compile,
  type Graph,
  graph,
  initParams,
  loadSafetensors,
  type TensorData,
  vit,
  type Weights,
} from "../mod.ts";
import {
  exportOnnx,
  ONNX_LOWERINGS,
  ONNX_OUTPUT,
  type OnnxInitializerPlan,
  type OnnxPlan,
  planOnnx,
} from "../bench/onnx_export.ts";
import { ProtoWriter } from "../bench/onnx_models.ts";
import { scaledError } from "./helpers.ts";

const MICRO = new URL("./fixtures/vit/vit_micro.safetensors", import.meta.url);
const MICRO_CONFIG = { image: 32, patch: 8, dim: 32, depth: 2, heads: 2, classes: 10 } as const;
const PEER = new URL("../bench/vit_peer.mjs", import.meta.url).pathname;

// ---------------------------------------------------------------------------------------------
// A protobuf reader, enough to read a ModelProto back.

type Field = { wire: 0; value: bigint } | { wire: 2; bytes: Uint8Array } | {
  wire: 5;
  bytes: Uint8Array;
};

function decode(buf: Uint8Array): Map<number, Field[]> {
  const fields = new Map<number, Field[]>();
  let at = 0;
  const varint = (): bigint => {
    let v = 0n;
    let shift = 0n;
    for (;;) {
      const b = buf[at++];
      v |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) return v;
      shift += 7n;
    }
  };
  while (at < buf.length) {
    const tag = Number(varint());
    const field = tag >> 3;
    const wire = tag & 7;
    let f: Field;
    if (wire === 0) f = { wire, value: varint() };
    else if (wire === 2) {
      const n = Number(varint());
      f = { wire, bytes: buf.subarray(at, at + n) };
      at += n;
    } else if (wire === 5) {
      f = { wire, bytes: buf.subarray(at, at + 4) };
      at += 4;
    } else throw new Error(`wire type ${wire} at ${at}`);
    fields.set(field, [...(fields.get(field) ?? []), f]);
  }
  return fields;
}

function all(m: Map<number, Field[]>, field: number): Field[] {
  return m.get(field) ?? [];
}
function bytesOf(f: Field): Uint8Array {
  assert.equal(f.wire, 2);
  return (f as { bytes: Uint8Array }).bytes;
}
function str(f: Field): string {
  return new TextDecoder().decode(bytesOf(f));
}
function int(f: Field): number {
  assert.equal(f.wire, 0);
  return Number(BigInt.asIntN(64, (f as { value: bigint }).value));
}
function packed(f: Field): number[] {
  const inner = bytesOf(f);
  const out: number[] = [];
  let at = 0;
  while (at < inner.length) {
    let v = 0n;
    let shift = 0n;
    for (;;) {
      const b = inner[at++];
      v |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) break;
      shift += 7n;
    }
    out.push(Number(BigInt.asIntN(64, v)));
  }
  return out;
}

/** The parts of a ModelProto the tests check. */
interface Decoded {
  irVersion: number;
  opsets: { domain: string; version: number }[];
  nodes: { op: string; inputs: string[]; outputs: string[]; attrs: Record<string, unknown> }[];
  initializers: Map<string, { dims: number[]; type: number; raw: Uint8Array }>;
  inputs: { name: string; dims: number[] }[];
  outputs: { name: string; dims: number[] }[];
}

function valueInfo(f: Field): { name: string; dims: number[] } {
  const vi = decode(bytesOf(f));
  const tensorType = decode(bytesOf(all(decode(bytesOf(all(vi, 2)[0])), 1)[0]));
  assert.equal(int(all(tensorType, 1)[0]), 1, "float32");
  const shape = decode(bytesOf(all(tensorType, 2)[0]));
  const dims = all(shape, 1).map((d) => int(all(decode(bytesOf(d)), 1)[0]));
  return { name: str(all(vi, 1)[0]), dims };
}

function decodeModel(bytes: Uint8Array): Decoded {
  const model = decode(bytes);
  const graphMsg = decode(bytesOf(all(model, 7)[0]));
  const nodes = all(graphMsg, 1).map((f) => {
    const n = decode(bytesOf(f));
    const attrs: Record<string, unknown> = {};
    for (const a of all(n, 5)) {
      const am = decode(bytesOf(a));
      const type = int(all(am, 20)[0]);
      const name = str(all(am, 1)[0]);
      if (type === 1) {
        const raw = (all(am, 2)[0] as { bytes: Uint8Array }).bytes;
        attrs[name] = new DataView(raw.buffer, raw.byteOffset, 4).getFloat32(0, true);
      } else if (type === 2) attrs[name] = int(all(am, 3)[0]);
      else if (type === 7) attrs[name] = packed(all(am, 8)[0]);
      else throw new Error(`attribute type ${type}`);
    }
    return {
      op: str(all(n, 4)[0]),
      inputs: all(n, 1).map(str),
      outputs: all(n, 2).map(str),
      attrs,
    };
  });
  const initializers = new Map<string, { dims: number[]; type: number; raw: Uint8Array }>();
  for (const f of all(graphMsg, 5)) {
    const t = decode(bytesOf(f));
    const dimsField = all(t, 1)[0];
    initializers.set(str(all(t, 8)[0]), {
      dims: dimsField ? packed(dimsField) : [],
      type: int(all(t, 2)[0]),
      raw: bytesOf(all(t, 9)[0]),
    });
  }
  return {
    irVersion: int(all(model, 1)[0]),
    opsets: all(model, 8).map((f) => {
      const o = decode(bytesOf(f));
      return { domain: o.has(1) ? str(all(o, 1)[0]) : "", version: int(all(o, 2)[0]) };
    }),
    nodes,
    initializers,
    inputs: all(graphMsg, 11).map(valueInfo),
    outputs: all(graphMsg, 12).map(valueInfo),
  };
}

function int64s(init: OnnxInitializerPlan | undefined): readonly number[] {
  assert.ok(init && init.type === "int64", "an int64 initializer");
  return init.values;
}

function initOf(plan: OnnxPlan, name: string): OnnxInitializerPlan | undefined {
  return plan.initializers.find((i) => i.name === name);
}

// ---------------------------------------------------------------------------------------------
// Structure.

/** The ONNX ops of one timm encoder block, as exported. */
const BLOCK_OPS = [
  ...["LayerNormalization", "MatMul", "Add"], // norm1, qkv
  ...["Reshape", "Transpose", "Gather", "Mul", "Gather", "Gather"], // split heads, q * scale, k, v
  ...["Transpose", "MatMul", "Softmax", "MatMul"], // kᵀ, q @ kᵀ, softmax, @ v
  ...["Transpose", "Reshape", "MatMul", "Add", "Add"], // merge heads, proj, residual
  ...["LayerNormalization", "MatMul", "Add"], // norm2, fc1
  ...["Div", "Erf", "Add", "Mul", "Mul"], // exact GELU
  ...["MatMul", "Add", "Add"], // fc2, residual
];

Deno.test("exportOnnx: a timm ViT becomes the expected ONNX node list", () => {
  const g = vit(MICRO_CONFIG);
  const plan = planOnnx(g, initParams(g, 0), 2);
  const tokenizer = ["Conv", "Reshape", "Transpose", "Expand", "Concat", "Add"];
  const head = ["LayerNormalization", "Gather", "Gemm"];
  assert.deepEqual(plan.nodes.map((n) => n.op), [
    ...tokenizer,
    ...BLOCK_OPS,
    ...BLOCK_OPS,
    ...head,
  ]);
  assert.deepEqual(plan.inputs, [{ name: "image", dims: [2, 3, 32, 32] }]);
  assert.deepEqual(plan.outputs, [{ name: ONNX_OUTPUT, dims: [2, 10] }]);
  assert.equal(plan.nodes.at(-1)?.outputs[0], ONNX_OUTPUT);
  assert.equal(plan.opset, 17);
  assert.equal(plan.irVersion, 8);
  // Every value is produced before it is read (topological), and produced once.
  const known = new Set([
    ...plan.inputs.map((i) => i.name),
    ...plan.initializers.map((i) => i.name),
  ]);
  for (const n of plan.nodes) {
    for (const i of n.inputs) assert.ok(known.has(i), `${n.op} (${n.from}) reads ${i} early`);
    for (const o of n.outputs) {
      assert.ok(!known.has(o), `${o} produced twice`);
      known.add(o);
    }
  }
});

Deno.test("exportOnnx: attributes follow each op's semantics", () => {
  const g = vit(MICRO_CONFIG);
  const plan = planOnnx(g, initParams(g, 0), 3);
  const attrsOf = (op: string) => plan.nodes.filter((n) => n.op === op).map((n) => n.attrs);
  assert.deepEqual(attrsOf("Conv")[0], [
    { name: "kernel_shape", ints: [8, 8] },
    { name: "strides", ints: [8, 8] },
    { name: "pads", ints: [0, 0, 0, 0] },
  ]);
  assert.deepEqual(attrsOf("Softmax")[0], [{ name: "axis", int: 3 }]);
  assert.deepEqual(attrsOf("Concat")[0], [{ name: "axis", int: 1 }]);
  assert.deepEqual(attrsOf("LayerNormalization")[0], [
    { name: "axis", int: -1 },
    { name: "epsilon", float: 1e-6 },
  ]);
  assert.deepEqual(attrsOf("Gemm")[0], [{ name: "transB", int: 1 }]);
  const transposes = attrsOf("Transpose").map((a) => a[0]);
  assert.deepEqual(transposes.slice(0, 5), [
    { name: "perm", ints: [0, 2, 1] }, // tokens
    { name: "perm", ints: [2, 0, 3, 1, 4] }, // qkv split
    { name: "perm", ints: [0, 1, 3, 2] }, // kᵀ
    { name: "perm", ints: [0, 2, 1, 3] }, // merge heads
    { name: "perm", ints: [2, 0, 3, 1, 4] }, // the next block
  ]);
  // Static shapes for the batch, select as a scalar Gather index (the axis is dropped).
  assert.deepEqual(int64s(initOf(plan, "flatten_6/shape")), [3, 32, 16]);
  assert.deepEqual(int64s(initOf(plan, "expand_8/shape")), [3, 1, 32]);
  assert.deepEqual(int64s(initOf(plan, "reshape_17/shape")), [3, 17, 3, 2, 16]);
  const gathers = plan.nodes.filter((n) => n.op === "Gather");
  assert.deepEqual(
    gathers.map((
      n,
    ) => [n.attrs[0], int64s(initOf(plan, n.inputs[1])), initOf(plan, n.inputs[1])?.dims]),
    [
      ...[0, 1, 2, 0, 1, 2].map((i) => [{ name: "axis", int: 0 }, [i], []]),
      [{ name: "axis", int: 1 }, [0], []], // the class token row
    ],
  );
  const scale = plan.nodes.find((n) => n.op === "Mul")?.inputs[1];
  const scaleInit = initOf(plan, scale ?? "");
  assert.ok(scaleInit?.type === "float32");
  assert.deepEqual([...scaleInit.data], [0.25]); // head dim 16: 16 ** -0.5
  assert.deepEqual(scaleInit.dims, []);
});

Deno.test("exportOnnx: initializers are the parameters under their names (linear weights transposed)", () => {
  const g = vit(MICRO_CONFIG);
  const weights = initParams(g, 0);
  const plan = planOnnx(g, weights, 1);
  const floats = plan.initializers.filter((i) =>
    i.type === "float32" && !i.name.startsWith("const/")
  );
  const expected = g.params().map((p) => {
    const name = p.attrs.name;
    // Linears on [B, N, D] use MatMul with Wᵀ; the head (on [B, D]) is a Gemm with transB.
    const transposed = /^blocks\.\d+\.(attn\.qkv|attn\.proj|mlp\.fc1|mlp\.fc2)\.weight$/.test(name);
    const dims = p.shape as number[];
    return transposed ? `${name}/T [${[dims[1], dims[0]]}]` : `${name} [${dims}]`;
  });
  assert.deepEqual(floats.map((i) => `${i.name} [${i.dims}]`).sort(), expected.sort());
  const qkv = weights.get("blocks.0.attn.qkv.weight") as TensorData;
  const qkvT = initOf(plan, "blocks.0.attn.qkv.weight/T");
  assert.ok(qkvT?.type === "float32");
  // W [96, 32] -> Wᵀ [32, 96]: Wᵀ[i][o] = W[o][i].
  for (const [o, i] of [[0, 0], [5, 7], [95, 31], [40, 2]]) {
    assert.equal(qkvT.data[i * 96 + o], qkv.data[o * 32 + i]);
  }
  const head = initOf(plan, "head.weight");
  assert.ok(head?.type === "float32");
  assert.equal(head.data, weights.get("head.weight")?.data);
  // Constants are shared: the GELU's 1, 0.5 and √2 appear once for both blocks.
  const consts = plan.initializers.filter((i) => i.name.startsWith("const/")).map((i) => i.name);
  assert.deepEqual(consts.sort(), [
    "const/0.25",
    "const/0.5",
    "const/1",
    "const/1.4142135381698608",
  ]);
});

Deno.test("exportOnnx: the bytes decode to the plan (IR 8, opset 17, raw little-endian data)", () => {
  const g = vit({ ...MICRO_CONFIG, depth: 1 });
  const weights = initParams(g, 0);
  const plan = planOnnx(g, weights, 2);
  const model = decodeModel(exportOnnx(g, weights, 2));
  assert.equal(model.irVersion, 8);
  assert.deepEqual(model.opsets, [{ domain: "", version: 17 }]);
  assert.deepEqual(model.inputs, [{ name: "image", dims: [2, 3, 32, 32] }]);
  assert.deepEqual(model.outputs, [{ name: "output", dims: [2, 10] }]);
  assert.deepEqual(
    model.nodes.map((n) => [n.op, n.inputs, n.outputs]),
    plan.nodes.map((n) => [n.op, n.inputs, n.outputs]),
  );
  const ln = model.nodes.find((n) => n.op === "LayerNormalization");
  assert.deepEqual(ln?.attrs, { axis: -1, epsilon: Math.fround(1e-6) });
  assert.deepEqual([...model.initializers.keys()], plan.initializers.map((i) => i.name));
  const pos = model.initializers.get("pos_embed");
  assert.deepEqual(pos?.dims, [1, 17, 32]);
  assert.equal(pos?.type, 1);
  const want = weights.get("pos_embed")?.data as Float32Array;
  assert.deepEqual(new Float32Array(pos.raw.slice().buffer), want);
  const index = model.initializers.get("select_19/index");
  assert.deepEqual(index?.dims, []);
  assert.equal(index?.type, 7);
  assert.equal(new DataView(index.raw.slice().buffer).getBigInt64(0, true), 0n);
});

Deno.test("exportOnnx: average pooling is Slice + ReduceMean (opset 17: axes an attribute)", () => {
  const g = vit({ image: 16, patch: 8, dim: 8, depth: 1, heads: 2, classes: 3, pool: "avg" });
  const plan = planOnnx(g, initParams(g, 0), 2);
  const ops = plan.nodes.map((n) => n.op);
  assert.deepEqual(ops.slice(-4), ["Slice", "ReduceMean", "LayerNormalization", "Gemm"]);
  const slice = plan.nodes.find((n) => n.op === "Slice");
  assert.deepEqual(slice?.inputs.slice(1).map((i) => int64s(initOf(plan, i))), [[1], [5], [1]]);
  assert.deepEqual(plan.nodes.find((n) => n.op === "ReduceMean")?.attrs, [
    { name: "axes", ints: [1] },
    { name: "keepdims", int: 0 },
  ]);
  assert.ok(!plan.initializers.some((i) => i.name.startsWith("norm.")), "no final norm");
});

/** A graph with every other lowering: to_tensor, padded conv, tanh GELU, scalar and tensor
 * sub/div/mul, linear without bias, keepdim mean, a clamped slice, a negative select, a 2-D
 * linear, matmul with a parameter. */
function opsGraph() {
  return graph("ops", (g) => {
    const pixels = g.input("pixels", ["B", 6, 6, 3]);
    const img = g.toTensor(pixels);
    const conv = g.conv2d(img, { out: 4, kernel: 3, stride: 2, padding: 1, name: "conv" });
    const seq = g.transpose(g.flatten(conv, 2, 3), 1, 2); // [B, 9, 4]
    const lin = g.linear(seq, { in: 4, out: 8, name: "lin", bias: false });
    const act = g.gelu(lin, { approximate: "tanh" });
    const scaled = g.div(g.sub(act, 0.25), 1.5);
    const w = g.param("w", [8]);
    const v = g.param("v", [1, 9, 8], { kind: "ones" });
    const mixed = g.sub(g.div(g.mul(scaled, w), g.add(v, 2)), scaled);
    const probs = g.softmax(mixed, -1);
    const pooled = g.mean(probs, 1, { keepdim: true }); // [B, 1, 8]
    const cut = g.slice(pooled, 2, -6, 100); // [B, 1, 6]
    const row = g.select(cut, 1, -1); // [B, 6]
    const head = g.linear(row, { in: 6, out: 3, name: "head" });
    const m = g.param("m", [3, 2]);
    return g.matmul(head, m);
  });
}

Deno.test("exportOnnx: every other lowering (to_tensor, padding, tanh GELU, scalars, slice bounds)", () => {
  const g = opsGraph();
  const plan = planOnnx(g, initParams(g, 0), 2);
  assert.deepEqual(plan.nodes.map((n) => n.op), [
    ...["Transpose", "Div", "Conv", "Reshape", "Transpose", "MatMul"],
    ...["Pow", "Mul", "Add", "Mul", "Tanh", "Add", "Mul", "Mul"],
    ...["Sub", "Div", "Mul", "Add", "Div", "Sub", "Softmax", "ReduceMean", "Slice", "Gather"],
    ...["Gemm", "MatMul"],
  ]);
  const conv = plan.nodes.find((n) => n.op === "Conv");
  assert.deepEqual(conv?.attrs.at(-1), { name: "pads", ints: [1, 1, 1, 1] });
  const slice = plan.nodes.find((n) => n.op === "Slice");
  assert.deepEqual(slice?.inputs.slice(1).map((i) => int64s(initOf(plan, i))), [[2], [8], [2]]);
  const gather = plan.nodes.find((n) => n.op === "Gather");
  assert.deepEqual(int64s(initOf(plan, gather?.inputs[1] ?? "")), [0]); // -1 of a dim of 1
  assert.deepEqual(plan.nodes.find((n) => n.op === "ReduceMean")?.attrs, [
    { name: "axes", ints: [1] },
    { name: "keepdims", int: 1 },
  ]);
  assert.deepEqual(plan.outputs, [{ name: "output", dims: [2, 2] }]);
  assert.ok(!plan.initializers.some((i) => i.name === "lin.weight"), "only lin.weight/T");
});

Deno.test("exportOnnx: an unsupported op, a missing weight or a bad batch is one clear line", () => {
  const resized = graph("r", (g) => {
    const x = g.input("x", ["B", 3, 8, 8]);
    return g.resize(x, { height: 4, width: 4, antialias: true });
  });
  assert.throws(
    () => exportOnnx(resized, new Map(), 1),
    (e: Error) =>
      /^exportOnnx: op "resize" \(node resize_\d+\) has no ONNX lowering; supported: /.test(
        e.message,
      ) && !e.message.includes("\n"),
  );
  const g = vit({ image: 16, patch: 8, dim: 8, depth: 1, heads: 2, classes: 3 });
  const weights = new Map(initParams(g, 0));
  weights.delete("blocks.0.mlp.fc1.weight");
  assert.throws(
    () => exportOnnx(g, weights, 1),
    { message: 'exportOnnx: weight "blocks.0.mlp.fc1.weight" is missing' },
  );
  const bad: Weights = new Map([...initParams(g, 0), ["head.bias", {
    shape: [4],
    data: new Float32Array(4),
  }]]);
  assert.throws(
    () => exportOnnx(g, bad, 1),
    { message: 'exportOnnx: weight "head.bias" has shape [4], the graph wants [3]' },
  );
  assert.throws(() => exportOnnx(g, initParams(g, 0), 0), {
    message: "exportOnnx: batch must be a positive integer, got 0",
  });
  const twoSyms = graph("t", (b) => b.flatten(b.input("x", ["B", "N", 4]), 1, 2));
  assert.throws(() => exportOnnx(twoSyms, new Map(), 2), {
    message: 'exportOnnx: input "x" has symbolic dim N at axis 1; only the batch dim may be ' +
      "symbolic (the export has static shapes)",
  });
  const fixed = graph("f", (b) => b.flatten(b.input("x", [1, 2, 4]), 1, 2));
  assert.throws(() => exportOnnx(fixed, new Map(), 2), {
    message: 'exportOnnx: input "x" has a fixed batch of 1, not 2',
  });
  assert.ok(!("resize" in ONNX_LOWERINGS));
});

Deno.test("ProtoWriter: negative ints are 10-byte int64 varints, floats fixed32", () => {
  assert.deepEqual(
    [...new ProtoWriter().int(1, -1).finish()],
    [8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
  );
  assert.deepEqual([...new ProtoWriter().float(2, 1).finish()], [21, 0, 0, 0x80, 0x3f]);
  assert.deepEqual([...new ProtoWriter().int(1, 300).finish()], [8, 0xac, 0x02]);
});

// ---------------------------------------------------------------------------------------------
// Parity in ONNX Runtime (through the Node peer), when it is installed.

function peerModules(): string {
  const env = Deno.env.get("TESSERA_PEERS");
  if (env) return env.endsWith("node_modules") ? env : `${env}/node_modules`;
  return `${Deno.env.get("HOME") ?? "."}/.cache/tessera-peers/node_modules`;
}

function peerInstalled(): boolean {
  try {
    Deno.statSync(`${peerModules()}/onnxruntime-node/package.json`);
    // Without a Node on the PATH, Deno runs a spawned `node` itself and prints its own version.
    const out = new Deno.Command("node", { args: ["--version"], stdout: "piped" }).outputSync();
    return out.success && /^v\d+\.\d+\.\d+$/.test(new TextDecoder().decode(out.stdout).trim());
  } catch {
    return false;
  }
}

const HAVE_PEER = peerInstalled();

/** Runs `bytes` in onnxruntime-node (bench/vit_peer.mjs, one run) on `input`; the output. */
async function runOrt(
  bytes: Uint8Array,
  input: Float32Array,
  batch: number,
): Promise<Float32Array> {
  const dir = await Deno.makeTempDir({ prefix: "tessera-onnx-test-" });
  try {
    await Deno.writeFile(`${dir}/m.onnx`, bytes);
    await Deno.writeFile(
      `${dir}/in.bin`,
      new Uint8Array(input.buffer, input.byteOffset, input.byteLength),
    );
    const out = await new Deno.Command("node", {
      args: [
        PEER,
        ...["--model", `${dir}/m.onnx`, "--batch", String(batch), "--runs", "1"],
        ...["--warmup-runs", "0", "--warmup-s", "0", "--threads", "1"],
        ...["--input", `${dir}/in.bin`, "--output", `${dir}/out.bin`, "--modules", peerModules()],
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    const raw = await Deno.readFile(`${dir}/out.bin`);
    return new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test({
  name: "exportOnnx parity: vit_micro in ONNX Runtime matches timm's logits at 1e-4",
  ignore: !HAVE_PEER,
  fn: async () => {
    const { tensors } = await loadSafetensors(MICRO);
    const input = tensors.get("input") as TensorData;
    const want = tensors.get("logits") as TensorData;
    const g = vit(MICRO_CONFIG);
    const got = await runOrt(exportOnnx(g, tensors, 2), input.data, 2);
    const err = scaledError({ shape: want.shape, data: got }, want);
    console.log(`vit_micro logits, onnxruntime-node vs timm: scaled error ${err.toExponential(2)}`);
    assert.ok(err <= 1e-4, `scaled error ${err}`);
  },
});

Deno.test({
  name: "exportOnnx parity: every other lowering matches Tessera's reference backend at 1e-4",
  ignore: !HAVE_PEER,
  fn: async () => {
    const cases: [Graph, number[], (i: number) => number][] = [
      [opsGraph(), [2, 6, 6, 3], (i) => (i * 37) % 256],
      [
        vit({ image: 16, patch: 8, dim: 8, depth: 1, heads: 2, classes: 3, pool: "avg" }),
        [3, 3, 16, 16],
        (i) => Math.sin(i * 0.1),
      ],
    ];
    for (const [g, shape, values] of cases) {
      const weights = initParams(g, 0);
      const data = Float32Array.from(
        { length: shape.reduce((a, b) => a * b, 1) },
        (_, i) => values(i),
      );
      const name = g.inputs()[0].attrs.name;
      const model = await compile(g, { backend: "reference", weights });
      const want = (await model.run({ [name]: { shape: [...shape], data } })).output;
      model.dispose();
      const got = await runOrt(exportOnnx(g, weights, shape[0]), data, shape[0]);
      const err = scaledError({ shape: want.shape, data: got }, want);
      console.log(`${g.name}, onnxruntime-node vs reference: scaled error ${err.toExponential(2)}`);
      assert.ok(err <= 1e-4, `${g.name}: scaled error ${err}`);
    }
  },
});
