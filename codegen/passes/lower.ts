/**
 * Lowering: a specialized graph becomes a `Program`, a list of kernels over named buffers.
 * Each pass is a small function:
 *
 * 1. `liveNodes`: dead-node removal (only what the requested outputs need).
 * 2. `chooseKernelRoots`: fusion. A node gets its own kernel only when it must be in memory:
 *    a requested output, or a reduction (conv, linear) read by another reduction or by several
 *    consumers. Everything else (views, add, concat, epilogues) is inlined into its consumer.
 * 3. `lowerKernel`: each root becomes one expression over its output index `i0, i1, ...`, built by the
 *    op emitters; views fold into index arithmetic.
 * 4. `simplify` (expr.ts): ranges settle selects and pin indices per branch.
 * 5. `foldConstants`: input-independent subexpressions (e.g. `cls + pos[0]`, `bias + pos`)
 *    are evaluated once at compile time into new constant buffers.
 * 6. `planBuffers`: intermediates share memory slots when their lifetimes do not overlap.
 * @module
 */

import type { AnyNode, Graph } from "../../graph/ir.ts";
import type { Weights } from "../../graph/params.ts";
import { numel } from "../../graph/tensor_data.ts";
import {
  constant,
  evalExpr,
  freeVars,
  isBinary,
  type Lin,
  lin,
  loadsOf,
  narrow,
  type Ranges,
  simplify,
  v,
  variable,
  type VExpr,
} from "../ir/expr.ts";
import { BackendRejection } from "../ir/rejection.ts";
import { type BufferInfo, type Kernel, outputVar, type Program } from "../ir/program.ts";
import { type EmitContext, flatIndex } from "./emit/context.ts";
import { emitConv2d } from "./emit/conv2d.ts";
import { emitLinear } from "./emit/linear.ts";
import { emitAdd, emitConcat } from "./emit/elementwise.ts";
import { emitExpand, emitPermute, emitReshape } from "./emit/views.ts";
import { emitResize, emitToTensor } from "./emit/preprocess.ts";

const REDUCTIONS = new Set(["conv2d", "linear"]);

/**
 * Dead-node removal: the ids of nodes that the requested ones depend on.
 *
 * @example
 * ```ts
 * import { graph } from "../../graph/builder.ts";
 * import { liveNodes } from "./lower.ts";
 * const g = graph("t", (b) => {
 *   b.input("unused", [2]);
 *   return b.input("x", [2]);
 * });
 * liveNodes(g, [g.output]); // Set {1}
 * ```
 */
export function liveNodes(graph: Graph, want: readonly number[]): Set<number> {
  const live = new Set<number>();
  const stack = [...want];
  while (stack.length) {
    const id = stack.pop() as number;
    if (live.has(id)) continue;
    live.add(id);
    stack.push(...graph.nodes[id].inputs);
  }
  return live;
}

/**
 * Fusion: the nodes that become kernel outputs. See the module doc for the rule.
 *
 * @example
 * ```ts
 * import { seedTokenizer } from "../../models/vit_tokenizer.ts";
 * import { specialize } from "../../graph/specialize.ts";
 * import { chooseKernelRoots, liveNodes } from "./lower.ts";
 * const g = specialize(seedTokenizer({ height: 32, width: 32, patch: 8, embedding: 16 }), {
 *   image: [1, 3, 32, 32],
 * }).graph;
 * chooseKernelRoots(g, liveNodes(g, [g.output]), [g.output]).size; // 2: conv, then the rest
 * ```
 */
export function chooseKernelRoots(
  graph: Graph,
  live: ReadonlySet<number>,
  want: readonly number[],
): Set<number> {
  const roots = new Set(want);
  const consumers = new Map<number, number>();
  for (const id of live) {
    for (const i of graph.nodes[id].inputs) consumers.set(i, (consumers.get(i) ?? 0) + 1);
  }
  const isCompute = (n: AnyNode): boolean => n.op !== "input" && n.op !== "param";
  // A reduction read (through inlined ops) by another reduction would be recomputed per read.
  for (const id of live) {
    const node = graph.nodes[id];
    if (!REDUCTIONS.has(node.op)) continue;
    const stack = [...node.inputs];
    while (stack.length) {
      const src = graph.nodes[stack.pop() as number];
      if (!isCompute(src)) continue;
      if (REDUCTIONS.has(src.op)) roots.add(src.id);
      else stack.push(...src.inputs);
    }
  }
  for (const id of live) {
    const node = graph.nodes[id];
    if (REDUCTIONS.has(node.op) && (consumers.get(id) ?? 0) > 1) roots.add(id);
  }
  return roots;
}

function bufferName(node: AnyNode): string {
  const base = node.op === "input" || node.op === "param" ? node.attrs.name : node.name;
  const prefix = node.op === "input" ? "in" : node.op === "param" ? "p" : "t";
  return `${prefix}_${base.replace(/[^A-Za-z0-9]/g, "_")}`;
}

/**
 * Lowers the whole graph for the requested node ids.
 *
 * @example
 * ```ts
 * import { patchEmbedding } from "../../models/vit_tokenizer.ts";
 * import { specialize } from "../../graph/specialize.ts";
 * import { initParams } from "../../graph/params.ts";
 * import { lowerGraph } from "./lower.ts";
 * const g0 = patchEmbedding({ height: 32, width: 32, patch: 8, embedding: 16 });
 * const g = specialize(g0, { image: [1, 3, 32, 32] }).graph;
 * lowerGraph(g, initParams(g0), [g.output]).kernels.length; // 1
 * ```
 */
export function lowerGraph(graph: Graph, weights: Weights, want: readonly number[]): Program {
  const live = liveNodes(graph, want);
  const roots = chooseKernelRoots(graph, live, want);
  const buffers = new Map<string, BufferInfo>();
  const names = new Map<number, string>();
  for (const id of [...live].sort((a, b) => a - b)) {
    const node = graph.nodes[id];
    const shape = node.shape as number[];
    const name = bufferName(node);
    if (node.op === "input") {
      names.set(id, name);
      buffers.set(name, { name, kind: "input", shape, source: node.attrs.name });
    } else if (node.op === "param") {
      names.set(id, name);
      const data = weights.get(node.attrs.name)?.data;
      buffers.set(name, { name, kind: "param", shape, source: node.attrs.name, data });
    } else if (roots.has(id)) {
      names.set(id, name);
      buffers.set(name, { name, kind: "intermediate", shape });
    }
  }
  const kernels: Kernel[] = [];
  let folded = 0;
  for (const id of [...roots].sort((a, b) => a - b)) {
    const { expr, ranges, ops } = lowerKernel(graph, id, names, (hint, shape, data) => {
      const name = `k_${hint}_${folded++}`;
      buffers.set(name, { name, kind: "const", shape, data });
      return name;
    });
    const simple = simplify(expr, ranges);
    const constants = foldConstants(simple, ranges, buffers, () => `c_${folded++}`);
    const shape = graph.nodes[id].shape as number[];
    kernels.push({
      index: kernels.length,
      out: names.get(id) as string,
      shape,
      size: numel(shape),
      ops,
      expr: constants,
      ranges,
      reads: [...loadsOf(constants)],
    });
  }
  const results = want.map((id) => names.get(id) as string);
  return { buffers, kernels, results, slots: planBuffers(kernels, results) };
}

/**
 * Lowers one kernel root to an expression over its output index variables.
 *
 * @example
 * ```ts
 * import { graph } from "../../graph/builder.ts";
 * import { lowerKernel } from "./lower.ts";
 * const g = graph("t", (b) => b.transpose(b.input("a", [2, 3]), 0, 1));
 * const names = new Map([[0, "in_a"]]);
 * lowerKernel(g, g.output, names).ops; // ["permute_1"]
 * ```
 */
export function lowerKernel(
  graph: Graph,
  root: number,
  materialized: ReadonlyMap<number, string>,
  addConstant: EmitContext["addConstant"] = () => {
    throw new Error("codegen: this kernel cannot register constants");
  },
): { expr: VExpr; ranges: Map<string, readonly [number, number]>; ops: string[] } {
  const shape = graph.nodes[root].shape as number[];
  const ranges = new Map<string, readonly [number, number]>(
    shape.map((d, i) => [outputVar(i), [0, d - 1]] as const),
  );
  const ops: string[] = [];
  let counter = 0;
  const ctx: EmitContext = {
    ranges,
    constant,
    addConstant,
    shape: (id) => graph.nodes[id].shape as number[],
    fresh(prefix, extent) {
      const name = `${prefix}${counter++}`;
      ranges.set(name, [0, extent - 1]);
      return Object.assign(variable(name), { name });
    },
    value(id, index) {
      const node = graph.nodes[id];
      const buffer = materialized.get(id);
      if (buffer !== undefined && id !== root) {
        return v.load(buffer, lin.pin(flatIndex(index, node.shape as number[]), ranges));
      }
      if (!ops.includes(node.name)) ops.unshift(node.name);
      return emitNode(node, index, ctx);
    },
  };
  const expr = ctx.value(root, shape.map((_, i) => variable(outputVar(i))));
  return { expr, ranges, ops };
}

function emitNode(node: AnyNode, index: readonly Lin[], ctx: EmitContext): VExpr {
  switch (node.op) {
    case "conv2d":
      return emitConv2d(node, index, ctx);
    case "linear":
      return emitLinear(node, index, ctx);
    case "add":
      if (node.attrs.scalar !== undefined) throw noEmitter("add with a number", node);
      return emitAdd(node, index, ctx);
    case "concat":
      return emitConcat(node, index, ctx);
    case "flatten":
    case "reshape":
      return emitReshape(node, index, ctx);
    case "permute":
      return emitPermute(node, index, ctx);
    case "expand":
      return emitExpand(node, index, ctx);
    case "to_tensor":
      return emitToTensor(node, index, ctx);
    case "resize":
      return emitResize(node, index, ctx);
    case "layer_norm":
      throw noEmitter("layerNorm", node);
    case "softmax":
    case "gelu":
    case "matmul":
    case "mul":
    case "sub":
    case "div":
    case "select":
    case "slice":
    case "mean":
      throw noEmitter(node.op, node);
    case "input":
    case "param":
      throw new Error(`codegen: ${node.op} ${node.name} has no buffer`);
  }
}

// Ops with reference semantics but no kernel yet: every codegen backend declines them, so
// compile() falls back (in the end to `reference`) instead of computing something wrong.
function noEmitter(op: string, node: AnyNode): BackendRejection {
  return new BackendRejection("codegen", `${op} has no kernel emitter yet (node ${node.name})`);
}

/**
 * Constant folding: every input-independent subexpression with arithmetic in it (a sum of
 * param loads, such as `cls[d] + pos[d]` or `bias[d] + pos[t, d]`) is evaluated once into a new
 * constant buffer indexed by its free variables. Add chains are regrouped first so all constant
 * terms of a sum fold together, unless a folded value overflows float32 (`bias + pos` of two
 * values near 3e38): then the chain keeps its order, so `x + bias + pos` can stay finite.
 *
 * @example
 * ```ts
 * import { foldConstants } from "./lower.ts";
 * import { v, variable } from "../ir/expr.ts";
 * const buffers = new Map([["p_a", { name: "p_a", kind: "param" as const, shape: [2], data: new Float32Array([1, 2]) }]]);
 * const e = v.add(v.load("p_a", variable("x")), v.load("p_a", variable("x")));
 * foldConstants(e, new Map([["x", [0, 1]]]), buffers, () => "c_0"); // load c_0[x]
 * ```
 */
export function foldConstants(
  expr: VExpr,
  ranges: Ranges,
  buffers: Map<string, BufferInfo>,
  nextName: () => string,
): VExpr {
  const isConst = (e: VExpr): boolean =>
    [...loadsOf(e)].every((b) => {
      const kind = buffers.get(b)?.kind;
      return kind === "param" || kind === "const";
    });
  const fold = (e: VExpr, scope: Ranges): VExpr => {
    if (isBinary(e, "add")) {
      const terms = flattenAdd(e).map((t) => fold(t, scope));
      const fixed = terms.filter(isConst);
      const rest = terms.filter((t) => !isConst(t));
      const constantPart = fixed.length > 1 || (fixed.length === 1 && hasArithmetic(fixed[0]))
        ? materialize(fixed.reduce((a, b) => v.add(a, b)), scope)
        : fixed[0];
      // A fold that overflows float32 would turn a finite sum into ±Inf: keep the original order.
      if (constantPart === undefined && fixed.length > 0) {
        return terms.reduce((a, b) => v.add(a, b));
      }
      const all = constantPart ? [...rest, constantPart] : rest;
      return all.reduce((a, b) => v.add(a, b));
    }
    if (e.k === "select") {
      return {
        ...e,
        a: fold(e.a, narrow(e.cond, true, scope)),
        b: fold(e.b, narrow(e.cond, false, scope)),
      };
    }
    return e;
  };
  // Undefined when a folded value overflows float32.
  const materialize = (e: VExpr, scope: Ranges): VExpr | undefined => {
    const vars = [...freeVars(e)].sort();
    const dims = vars.map((name) => {
      const [lo, hi] = scope.get(name) as readonly [number, number];
      return { name, lo, size: hi - lo + 1 };
    });
    const size = dims.reduce((s, d) => s * d.size, 1);
    const readSize = [...loadsOf(e)].reduce((s, b) => s + numel(buffers.get(b)?.shape ?? []), 0);
    if (size > readSize) return e; // folding would only grow memory traffic
    const data = new Float32Array(size);
    const env = new Map<string, number>();
    const lookup = (name: string): Float32Array => buffers.get(name)?.data as Float32Array;
    for (let flat = 0; flat < size; flat++) {
      let rest = flat;
      for (let i = dims.length - 1; i >= 0; i--) {
        env.set(dims[i].name, dims[i].lo + (rest % dims[i].size));
        rest = Math.floor(rest / dims[i].size);
      }
      data[flat] = evalExpr(e, env, lookup);
      if (!Number.isFinite(data[flat])) return undefined;
    }
    const name = nextName();
    buffers.set(name, { name, kind: "const", shape: dims.map((d) => d.size), data });
    let index = constant(0);
    let stride = 1;
    for (let i = dims.length - 1; i >= 0; i--) {
      index = lin.add(index, lin.scale(lin.offset(variable(dims[i].name), -dims[i].lo), stride));
      stride *= dims[i].size;
    }
    return v.load(name, index);
  };
  return fold(expr, ranges);
}

function flattenAdd(e: VExpr): VExpr[] {
  return isBinary(e, "add") ? [...flattenAdd(e.a), ...flattenAdd(e.b)] : [e];
}

function hasArithmetic(e: VExpr): boolean {
  return e.k !== "load" && e.k !== "const";
}

/**
 * Buffer planning: intermediates that are not results get memory slots, reused once the last
 * kernel reading a buffer has run (a linear scan over kernel order).
 *
 * @example
 * ```ts
 * import { planBuffers } from "./lower.ts";
 * planBuffers([], []).size; // 0
 * ```
 */
export function planBuffers(
  kernels: readonly Kernel[],
  results: readonly string[],
): Map<string, number> {
  const lastUse = new Map<string, number>();
  kernels.forEach((k) => k.reads.forEach((b) => lastUse.set(b, k.index)));
  const slots = new Map<string, number>();
  const free: number[] = [];
  let next = 0;
  for (const k of kernels) {
    if (!results.includes(k.out)) slots.set(k.out, free.pop() ?? next++);
    for (const [buf, last] of lastUse) {
      if (last === k.index && slots.has(buf)) free.push(slots.get(buf) as number);
    }
  }
  return slots;
}
