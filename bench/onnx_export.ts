/**
 * Tessera IR -> ONNX: the peer benchmark's model (`bench/vit_compare.ts`) is the very graph
 * Tessera compiles, written as an ONNX `ModelProto` (IR version 8, opset 17, fp32, static shapes
 * for one batch size) with the same weights as initializers.
 *
 * The graph is specialized for `batch` (`specialize`), then every node reachable from the output
 * becomes one or a few ONNX nodes ({@linkcode ONNX_LOWERINGS} lists them). Values keep the Tessera
 * node names (a parameter's initializer is named by its `state_dict` name), helper values are
 * `<node>/<what>`, and the graph output is `output`. An op with no lowering (`resize`) throws one
 * line naming it.
 *
 * @example
 * ```ts
 * import { initParams, vit } from "../mod.ts";
 * import { exportOnnx } from "./onnx_export.ts";
 * const g = vit({ image: 32, patch: 8, dim: 32, depth: 1, heads: 2, classes: 10 });
 * const bytes = exportOnnx(g, initParams(g, 0), 2); // write it, load it in ONNX Runtime
 * bytes.length > 19850 * 4; // true: every parameter is in it
 * ```
 * @module
 */

import {
  type AnyNode,
  type Dim,
  formatShape,
  type Graph,
  numel,
  specialize,
  type Weights,
} from "../mod.ts";
import {
  ONNX_IR_VERSION,
  ONNX_OPSET,
  type OnnxAttr,
  onnxFloatTensor,
  onnxInt64Tensor,
  onnxModel,
  onnxNode,
  onnxValueInfo,
} from "./onnx_models.ts";

export type { OnnxAttr };

/**
 * The ONNX nodes each Tessera op becomes, for documentation and tests.
 *
 * @example
 * ```ts
 * import { ONNX_LOWERINGS } from "./onnx_export.ts";
 * ONNX_LOWERINGS.layer_norm; // "LayerNormalization (axis -1, epsilon)"
 * ```
 */
export const ONNX_LOWERINGS: Readonly<Record<string, string>> = {
  input: "graph input (float32, static shape)",
  param: "initializer under its state_dict name",
  conv2d: "Conv (kernel_shape, strides, pads)",
  flatten: "Reshape to the static output shape",
  reshape: "Reshape to the static output shape",
  permute: "Transpose (perm)",
  expand: "Expand to the static output shape",
  concat: "Concat (axis)",
  add: "Add (a tensor, or a float32 scalar initializer)",
  sub: "Sub (a tensor, or a float32 scalar initializer)",
  mul: "Mul (a tensor, or a float32 scalar initializer)",
  div: "Div (a tensor, or a float32 scalar initializer)",
  layer_norm: "LayerNormalization (axis -1, epsilon)",
  linear: "2-D input: Gemm (transB 1); otherwise MatMul with the transposed weight, + Add bias",
  matmul: "MatMul",
  select: "Gather (a scalar int64 index: the axis is dropped)",
  slice: "Slice (starts, ends, axes; bounds clamped as Python does)",
  mean: "ReduceMean (axes attribute, keepdims)",
  softmax: "Softmax (axis)",
  gelu:
    'none: Div √2, Erf, Add 1, Mul x, Mul 0.5; "tanh": Pow 3, Mul, Add, Mul, Tanh, Add, Mul, Mul',
  to_tensor: "Transpose (0, 3, 1, 2), Div 255",
};

/**
 * One ONNX node of a plan.
 *
 * @example
 * ```ts
 * import type { OnnxNodePlan } from "./onnx_export.ts";
 * const n: OnnxNodePlan = {
 *   op: "Softmax",
 *   inputs: ["matmul_24"],
 *   outputs: ["softmax_25"],
 *   attrs: [{ name: "axis", int: 3 }],
 *   from: "softmax_25",
 * };
 * ```
 */
export interface OnnxNodePlan {
  /** ONNX `op_type` (default domain). */
  readonly op: string;
  /** Input value names. */
  readonly inputs: readonly string[];
  /** Output value names. */
  readonly outputs: readonly string[];
  /** Attributes. */
  readonly attrs: readonly OnnxAttr[];
  /** The Tessera node it lowers. */
  readonly from: string;
}

/**
 * One initializer of a plan: float32 weights and constants, or int64 shapes and indices.
 *
 * @example
 * ```ts
 * import type { OnnxInitializerPlan } from "./onnx_export.ts";
 * const data = new Float32Array(10);
 * const i: OnnxInitializerPlan = { name: "head.bias", dims: [10], type: "float32", data };
 * ```
 */
export type OnnxInitializerPlan =
  | {
    readonly name: string;
    readonly dims: readonly number[];
    readonly type: "float32";
    readonly data: Float32Array;
  }
  | {
    readonly name: string;
    readonly dims: readonly number[];
    readonly type: "int64";
    readonly values: readonly number[];
  };

/**
 * A graph input or output: its name and static shape (float32).
 *
 * @example
 * ```ts
 * import type { OnnxValuePlan } from "./onnx_export.ts";
 * const v: OnnxValuePlan = { name: "image", dims: [2, 3, 32, 32] };
 * ```
 */
export interface OnnxValuePlan {
  /** Value name. */
  readonly name: string;
  /** Static shape. */
  readonly dims: readonly number[];
}

/**
 * The ONNX graph `exportOnnx` encodes, as plain data (what the tests inspect).
 *
 * @example
 * ```ts
 * import { initParams, vit } from "../mod.ts";
 * import { planOnnx } from "./onnx_export.ts";
 * const g = vit({ image: 16, patch: 8, dim: 8, depth: 1, heads: 2, classes: 3 });
 * const plan = planOnnx(g, initParams(g, 0), 1);
 * plan.outputs; // [{ name: "output", dims: [1, 3] }]
 * ```
 */
export interface OnnxPlan {
  /** `GraphProto.name`: `<graph name>_b<batch>`. */
  readonly name: string;
  /** ONNX IR version (8). */
  readonly irVersion: number;
  /** Default-domain opset (17). */
  readonly opset: number;
  /** Nodes in topological order. */
  readonly nodes: readonly OnnxNodePlan[];
  /** Initializers, in first-use order. */
  readonly initializers: readonly OnnxInitializerPlan[];
  /** Graph inputs, in the Tessera graph's input order. */
  readonly inputs: readonly OnnxValuePlan[];
  /** The graph output, `output`. */
  readonly outputs: readonly OnnxValuePlan[];
}

/** The name of the exported graph's output. */
export const ONNX_OUTPUT = "output";

function fail(why: string): never {
  throw new Error(`exportOnnx: ${why}`);
}

function concrete(node: AnyNode): number[] {
  return node.shape.map((d: Dim) =>
    typeof d === "number" ? d : fail(`node ${node.name} has symbolic dim ${d} after binding`)
  );
}

/** Row-major `[rows, cols]` -> `[cols, rows]`. */
function transpose2d(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c];
  }
  return out;
}

function clampBound(bound: number, d: number): number {
  const b = bound < 0 ? bound + d : bound;
  return Math.min(Math.max(b, 0), d);
}

/** The input shapes `specialize` gets: each input's symbolic batch (axis 0) bound to `batch`. */
function batchShapes(graph: Graph, batch: number): Record<string, number[]> {
  const shapes: Record<string, number[]> = {};
  let symbol: string | undefined;
  for (const input of graph.inputs()) {
    const name = input.attrs.name;
    shapes[name] = input.shape.map((d, i) => {
      if (typeof d === "number") {
        if (i === 0 && d !== batch) fail(`input "${name}" has a fixed batch of ${d}, not ${batch}`);
        return d;
      }
      if (i === 0 && (symbol === undefined || symbol === d)) {
        symbol = d;
        return batch;
      }
      if (d === symbol) return batch;
      return fail(
        `input "${name}" has symbolic dim ${d} at axis ${i}; only the batch dim may be symbolic ` +
          `(the export has static shapes)`,
      );
    });
  }
  return shapes;
}

/**
 * Lowers `graph` at batch size `batch` to an ONNX plan (nodes, initializers, inputs, output).
 * `weights` must hold every parameter the output depends on, under its name, in its shape.
 *
 * @example
 * ```ts
 * import { initParams, vit } from "../mod.ts";
 * import { planOnnx } from "./onnx_export.ts";
 * const g = vit({ image: 16, patch: 8, dim: 8, depth: 1, heads: 2, classes: 3 });
 * const plan = planOnnx(g, initParams(g, 0), 4);
 * plan.nodes[0].op; // "Conv"
 * ```
 */
export function planOnnx(graph: Graph, weights: Weights, batch: number): OnnxPlan {
  if (!Number.isSafeInteger(batch) || batch < 1) {
    fail(`batch must be a positive integer, got ${batch}`);
  }
  const g = specialize(graph, batchShapes(graph, batch)).graph;
  const live = new Set<number>([g.output]);
  for (let id = g.output; id >= 0; id--) {
    if (live.has(id)) { for (const i of g.nodes[id].inputs) live.add(i); }
  }

  const nodes: OnnxNodePlan[] = [];
  const initializers: OnnxInitializerPlan[] = [];
  const emitted = new Set<string>();
  const addInit = (init: OnnxInitializerPlan): string => {
    if (!emitted.has(init.name)) {
      emitted.add(init.name);
      initializers.push(init);
    }
    return init.name;
  };
  const out = g.nodes[g.output];
  const valueOf = (id: number): string => {
    const n = g.nodes[id];
    if (n.op === "param") {
      return addInit({ name: n.attrs.name, dims: concrete(n), type: "float32", data: weightOf(n) });
    }
    if (n.op === "input") return n.attrs.name;
    return id === g.output ? ONNX_OUTPUT : n.name;
  };
  const weightOf = (n: AnyNode): Float32Array => {
    const name = n.op === "param" ? n.attrs.name : n.name;
    const w = weights.get(name) ?? fail(`weight "${name}" is missing`);
    const want = concrete(n);
    if (w.shape.length !== want.length || w.shape.some((d, i) => d !== want[i])) {
      fail(
        `weight "${name}" has shape ${formatShape(w.shape)}, the graph wants ${formatShape(want)}`,
      );
    }
    if (w.data.length !== numel(want)) {
      fail(
        `weight "${name}" has ${w.data.length} values, its shape ${formatShape(want)} needs ${
          numel(want)
        }`,
      );
    }
    return w.data;
  };
  const scalar = (value: number): string => {
    const v = Math.fround(value);
    return addInit({ name: `const/${v}`, dims: [], type: "float32", data: Float32Array.of(v) });
  };
  const ints = (name: string, values: readonly number[], dims?: readonly number[]): string =>
    addInit({ name, dims: dims ?? [values.length], type: "int64", values });

  for (const n of g.nodes) {
    if (!live.has(n.id) || n.op === "param" || n.op === "input") continue;
    const from = n.name;
    const y = valueOf(n.id);
    // A linear's weight parameter is emitted transposed, so it is not named here first.
    const x = n.op === "linear"
      ? n.inputs.map((id, i) => (i === 1 && g.nodes[id].op === "param" ? "" : valueOf(id)))
      : n.inputs.map(valueOf);
    const shape = concrete(n);
    const inShape = (i: number): number[] => concrete(g.nodes[n.inputs[i]]);
    const emit = (
      op: string,
      inputs: readonly string[],
      output: string,
      attrs: readonly OnnxAttr[] = [],
    ): string => {
      nodes.push({ op, inputs, outputs: [output], attrs, from });
      return output;
    };
    const reshapeTo = (input: string, dims: readonly number[]): void => {
      const attrs: OnnxAttr[] = dims.includes(0) ? [{ name: "allowzero", int: 1 }] : [];
      emit("Reshape", [input, ints(`${from}/shape`, dims)], y, attrs);
    };
    switch (n.op) {
      case "conv2d": {
        const [, , kh, kw] = inShape(1);
        const { stride, padding } = n.attrs;
        emit("Conv", x, y, [
          { name: "kernel_shape", ints: [kh, kw] },
          { name: "strides", ints: [stride, stride] },
          { name: "pads", ints: [padding, padding, padding, padding] },
        ]);
        break;
      }
      case "flatten":
      case "reshape":
        reshapeTo(x[0], shape);
        break;
      case "permute": {
        const rank = shape.length;
        emit("Transpose", x, y, [{
          name: "perm",
          ints: n.attrs.perm.map((a) => (a + rank) % rank),
        }]);
        break;
      }
      case "expand":
        emit("Expand", [x[0], ints(`${from}/shape`, shape)], y);
        break;
      case "concat":
        emit("Concat", x, y, [{ name: "axis", int: n.attrs.axis }]);
        break;
      case "add":
      case "sub":
      case "mul":
      case "div": {
        const op = { add: "Add", sub: "Sub", mul: "Mul", div: "Div" }[n.op];
        const s = n.attrs.scalar;
        emit(op, s === undefined ? x : [x[0], scalar(s)], y);
        break;
      }
      case "layer_norm":
        emit("LayerNormalization", x, y, [
          { name: "axis", int: -1 },
          { name: "epsilon", float: n.attrs.eps },
        ]);
        break;
      case "linear": {
        const wNode = g.nodes[n.inputs[1]];
        const [outF, inF] = concrete(wNode);
        if (inShape(0).length === 2) {
          emit("Gemm", [x[0], valueOf(wNode.id), ...x.slice(2)], y, [{ name: "transB", int: 1 }]);
          break;
        }
        const wt = wNode.op === "param"
          ? addInit({
            name: `${wNode.attrs.name}/T`,
            dims: [inF, outF],
            type: "float32",
            data: transpose2d(weightOf(wNode), outF, inF),
          })
          : emit("Transpose", [x[1]], `${from}/weight_t`, [{ name: "perm", ints: [1, 0] }]);
        if (x.length < 3) {
          emit("MatMul", [x[0], wt], y);
        } else {
          emit("Add", [emit("MatMul", [x[0], wt], `${from}/matmul`), x[2]], y);
        }
        break;
      }
      case "matmul":
        emit("MatMul", x, y);
        break;
      case "select": {
        const { axis } = n.attrs;
        const d = inShape(0)[axis];
        const index = ints(`${from}/index`, [(n.attrs.index + d) % d], []);
        emit("Gather", [x[0], index], y, [{ name: "axis", int: axis }]);
        break;
      }
      case "slice": {
        const { axis } = n.attrs;
        const d = inShape(0)[axis];
        const lo = clampBound(n.attrs.start, d);
        const hi = Math.max(lo, clampBound(n.attrs.end ?? d, d));
        emit("Slice", [
          x[0],
          ints(`${from}/starts`, [lo]),
          ints(`${from}/ends`, [hi]),
          ints(`${from}/axes`, [axis]),
        ], y);
        break;
      }
      case "mean":
        // Opset 17: `axes` is still an attribute (it became an input in opset 18).
        emit("ReduceMean", x, y, [
          { name: "axes", ints: [n.attrs.axis] },
          { name: "keepdims", int: n.attrs.keepdim ? 1 : 0 },
        ]);
        break;
      case "softmax":
        emit("Softmax", x, y, [{ name: "axis", int: n.attrs.axis }]);
        break;
      case "gelu": {
        const t = (what: string): string => `${from}/${what}`;
        if (n.attrs.approximate === "tanh") {
          // x/2 * (1 + tanh(√(2/π) (x + 0.044715 x³))), as PyTorch exports it.
          const cube = emit("Pow", [x[0], scalar(3)], t("cube"));
          const inner = emit(
            "Add",
            [x[0], emit("Mul", [cube, scalar(0.044715)], t("scaled"))],
            t("inner"),
          );
          const th = emit(
            "Tanh",
            [emit("Mul", [inner, scalar(Math.sqrt(2 / Math.PI))], t("arg"))],
            t("tanh"),
          );
          const half = emit(
            "Mul",
            [x[0], emit("Add", [th, scalar(1)], t("one_plus"))],
            t("x_times"),
          );
          emit("Mul", [half, scalar(0.5)], y);
        } else {
          // x/2 * (1 + erf(x/√2)): the pattern ONNX Runtime fuses into one Gelu.
          const e = emit("Erf", [emit("Div", [x[0], scalar(Math.SQRT2)], t("scaled"))], t("erf"));
          const half = emit(
            "Mul",
            [x[0], emit("Add", [e, scalar(1)], t("one_plus"))],
            t("x_times"),
          );
          emit("Mul", [half, scalar(0.5)], y);
        }
        break;
      }
      case "to_tensor": {
        const hwc = emit("Transpose", x, `${from}/chw`, [{ name: "perm", ints: [0, 3, 1, 2] }]);
        emit("Div", [hwc, scalar(255)], y);
        break;
      }
      default:
        fail(
          `op "${n.op}" (node ${n.name}) has no ONNX lowering; supported: ` +
            Object.keys(ONNX_LOWERINGS).join(", "),
        );
    }
  }
  if (out.op === "input" || out.op === "param") {
    nodes.push({
      op: "Identity",
      inputs: [valueOf(out.id)],
      outputs: [ONNX_OUTPUT],
      attrs: [],
      from: out.name,
    });
  }
  return {
    name: `${graph.name}_b${batch}`,
    irVersion: ONNX_IR_VERSION,
    opset: ONNX_OPSET,
    nodes,
    initializers,
    inputs: g.inputs().map((i) => ({ name: i.attrs.name, dims: concrete(i) })),
    outputs: [{ name: ONNX_OUTPUT, dims: concrete(out) }],
  };
}

/**
 * Encodes a plan as ONNX `ModelProto` bytes.
 *
 * @example
 * ```ts
 * import { initParams, vit } from "../mod.ts";
 * import { encodeOnnx, planOnnx } from "./onnx_export.ts";
 * const g = vit({ image: 16, patch: 8, dim: 8, depth: 1, heads: 2, classes: 3 });
 * encodeOnnx(planOnnx(g, initParams(g, 0), 1)).length > 0; // true
 * ```
 */
export function encodeOnnx(plan: OnnxPlan): Uint8Array {
  return onnxModel({
    name: plan.name,
    nodes: plan.nodes.map((n, i) => onnxNode(n.op, n.inputs, n.outputs, n.attrs, `${n.op}_${i}`)),
    initializers: plan.initializers.map((t) =>
      t.type === "float32"
        ? onnxFloatTensor(t.name, t.dims, t.data)
        : onnxInt64Tensor(t.name, t.values, t.dims)
    ),
    inputs: plan.inputs.map((v) => onnxValueInfo(v.name, v.dims)),
    outputs: plan.outputs.map((v) => onnxValueInfo(v.name, v.dims)),
    producer: "tessera",
  });
}

/**
 * `graph` at batch size `batch` as an ONNX model (IR 8, opset 17, fp32, static shapes), with
 * `weights` as initializers: input(s) under the graph's input names, output `output`.
 *
 * @example
 * ```ts
 * import { initParams, vit } from "../mod.ts";
 * import { exportOnnx } from "./onnx_export.ts";
 * const g = vit({ image: 16, patch: 8, dim: 8, depth: 1, heads: 2, classes: 3 });
 * const bytes: Uint8Array = exportOnnx(g, initParams(g, 0), 8);
 * ```
 */
export function exportOnnx(graph: Graph, weights: Weights, batch: number): Uint8Array {
  return encodeOnnx(planOnnx(graph, weights, batch));
}
