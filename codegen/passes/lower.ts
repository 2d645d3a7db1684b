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
  exprKey,
  foldExpr,
  freeVars,
  isBinary,
  type Lin,
  lin,
  loadsOf,
  mapChildren,
  narrow,
  type Ranges,
  rebuild,
  simplify,
  substitute,
  v,
  variable,
  type VExpr,
} from "../ir/expr.ts";
import { type BufferInfo, type Kernel, outputVar, type Program } from "../ir/program.ts";
import { type EmitContext, flatIndex } from "./emit/context.ts";
import { emitConv2d } from "./emit/conv2d.ts";
import { emitLinear } from "./emit/linear.ts";
import { emitBinary, emitConcat } from "./emit/elementwise.ts";
import { emitGelu } from "./emit/gelu.ts";
import { emitLayerNorm, emitSoftmax } from "./emit/normalize.ts";
import { emitMatmul, emitMean } from "./emit/reduce.ts";
import { emitExpand, emitPermute, emitReshape, emitSelect, emitSlice } from "./emit/views.ts";
import { emitResize, emitToTensor } from "./emit/preprocess.ts";

/** Ops whose value is a reduction over (part of) an input. */
const REDUCING = new Set<AnyNode["op"]>([
  "conv2d",
  "linear",
  "matmul",
  "mean",
  "softmax",
  "layer_norm",
  "resize",
]);

/** Ops that only remap the index: free to inline anywhere. */
const VIEWS = new Set<AnyNode["op"]>([
  "flatten",
  "reshape",
  "permute",
  "expand",
  "select",
  "slice",
  "concat",
]);

/** Arithmetic per element of the elementwise ops (a rough count of float ops). */
const ELEMENTWISE_COST: Partial<Record<AnyNode["op"], number>> = {
  add: 1,
  sub: 1,
  mul: 1,
  div: 1,
  to_tensor: 1,
  gelu: 12,
};

// Whether `consumer` reads its input at `slot` inside one of its reductions (the bias of a
// Linear or a conv, and the affine parameters of a LayerNorm, are read outside).
function readsInside(consumer: AnyNode, slot: number): boolean {
  switch (consumer.op) {
    case "conv2d":
    case "linear":
    case "layer_norm":
      return consumer.op === "layer_norm" ? slot === 0 : slot < 2;
    case "matmul":
    case "mean":
    case "softmax":
    case "resize":
      return true;
    default:
      return false;
  }
}

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
 * Fusion at the graph level: the nodes that become kernel outputs. A node is inlined into its
 * consumers unless it must be in memory:
 * - a requested output;
 * - a reduction (conv, linear, matmul, mean, softmax, layer norm, resize) with several
 *   consumers, or read (through inlined ops) inside another reduction, which would recompute it
 *   per read;
 * - elementwise work costing more than one op per element read inside a reduction (a GELU or a
 *   LayerNorm's normalize before a Linear: it would be recomputed for every output column);
 * - elementwise work with several consumers that reads more than two buffers (a residual stream
 *   would otherwise grow by one load per block).
 * Reductions inside one op's value (softmax's max and sum, layer norm's mean and variance) are
 * materialized later, by expression (`materializeReductions`).
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
  const ids = [...live].sort((a, b) => a - b);
  const consumers = new Map<number, { node: AnyNode; slot: number }[]>();
  for (const id of ids) {
    const node = graph.nodes[id];
    node.inputs.forEach((i, slot) => {
      if (!consumers.has(i)) consumers.set(i, []);
      consumers.get(i)?.push({ node, slot });
    });
  }
  const isLeaf = (n: AnyNode): boolean => n.op === "input" || n.op === "param";
  // Elementwise arithmetic and buffer reads of each node with its inlinable producers.
  const cost = new Map<number, number>();
  const loads = new Map<number, number>();
  for (const id of ids) {
    const node = graph.nodes[id];
    if (isLeaf(node) || REDUCING.has(node.op)) {
      cost.set(id, 0);
      loads.set(id, 1);
      continue;
    }
    const own = ELEMENTWISE_COST[node.op] ?? 0;
    cost.set(id, node.inputs.reduce((c, i) => c + (cost.get(i) ?? 0), own));
    loads.set(id, node.inputs.reduce((c, i) => c + (loads.get(i) ?? 0), 0));
  }
  // From the outputs back: whether a node's value is read inside a reduction of the kernel it
  // is inlined into.
  const inside = new Map<number, boolean>();
  for (const id of ids.reverse()) {
    const node = graph.nodes[id];
    if (isLeaf(node)) continue;
    const readers = consumers.get(id) ?? [];
    const readInside = readers.some(({ node: c, slot }) =>
      readsInside(c, slot) || (!roots.has(c.id) && (inside.get(c.id) ?? false))
    );
    inside.set(id, readInside);
    if (roots.has(id)) continue;
    const material = REDUCING.has(node.op)
      ? readers.length > 1 || readInside
      : !VIEWS.has(node.op) &&
        ((readInside && (cost.get(id) ?? 0) >= 2) ||
          (readers.length > 1 && (loads.get(id) ?? 0) > 2));
    if (material) roots.add(id);
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
    const shape = graph.nodes[id].shape as number[];
    const out = names.get(id) as string;
    const split = materializeReductions({ out, shape, ops, expr: simplify(expr, ranges), ranges });
    for (const draft of [...split.before, split.main]) {
      if (draft !== split.main) {
        buffers.set(draft.out, { name: draft.out, kind: "intermediate", shape: draft.shape });
      }
      const constants = foldConstants(draft.expr, draft.ranges, buffers, () => `c_${folded++}`);
      kernels.push({
        index: kernels.length,
        out: draft.out,
        shape: draft.shape,
        size: numel(draft.shape),
        ops: draft.ops,
        expr: constants,
        ranges: draft.ranges,
        reads: [...loadsOf(constants)],
        ...(draft.perRow ? { perRow: true } : {}),
      });
    }
  }
  const results = want.map((id) => names.get(id) as string);
  return {
    buffers,
    kernels,
    results,
    slots: planBuffers(kernels, results, (b) => numel(buffers.get(b)?.shape ?? [])),
  };
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
    case "sub":
    case "mul":
    case "div":
      return emitBinary(node, index, ctx);
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
    case "select":
      return emitSelect(node, index, ctx);
    case "slice":
      return emitSlice(node, index, ctx);
    case "layer_norm":
      return emitLayerNorm(node, index, ctx);
    case "softmax":
      return emitSoftmax(node, index, ctx);
    case "gelu":
      return emitGelu(node, index, ctx);
    case "matmul":
      return emitMatmul(node, index, ctx);
    case "mean":
      return emitMean(node, index, ctx);
    case "input":
    case "param":
      throw new Error(`codegen: ${node.op} ${node.name} has no buffer`);
  }
}

/**
 * A kernel before constant folding: what `materializeReductions` takes and makes.
 *
 * @example
 * ```ts
 * import type { KernelDraft } from "./lower.ts";
 * import { v } from "../ir/expr.ts";
 * const d: KernelDraft = { out: "t", shape: [1], ops: [], expr: v.const(0), ranges: new Map() };
 * ```
 */
export interface KernelDraft {
  /** Output buffer name. */
  readonly out: string;
  /** Output shape. */
  readonly shape: readonly number[];
  /** Graph nodes fused into it. */
  readonly ops: readonly string[];
  /** The value of output element `[i0, i1, ...]`. */
  readonly expr: VExpr;
  /** Ranges of the output and reduction variables. */
  readonly ranges: Ranges;
  /** A reduction pulled out of an op's value (see `Kernel.perRow`). */
  readonly perRow?: boolean;
}

/**
 * Fusion by expression: every reduction that does not depend on one of the kernel's output axes
 * or on the variable of a reduction around it (it would be recomputed along that variable: a
 * row's softmax sum read by each element of the row, a row's mean inside its variance) becomes a
 * kernel of its own over its free variables, and the expression reads it back. A reduction
 * that occurs twice with the same variables becomes one kernel. Softmax's max and sum and layer
 * norm's mean and variance thus become per-row kernels, run before `main` (in `before`,
 * producers first). A row sum of an exp, log, tanh or erf term that the value also reads at the
 * output index (softmax's `exp(x - max)`) gets that term stored as a kernel of its own, read by
 * the sum and the value.
 *
 * @example
 * ```ts
 * import { materializeReductions } from "./lower.ts";
 * import { v, variable } from "../ir/expr.ts";
 * const row = v.sum("k", 8, v.load("x", variable("k")));
 * const expr = v.div(v.load("x", variable("i0")), row); // x[i0] / Σ x: the sum is broadcast
 * const ranges = new Map([["i0", [0, 7] as const], ["k", [0, 7] as const]]);
 * materializeReductions({ out: "y", shape: [8], ops: [], expr, ranges }).before.length; // 1
 * ```
 */
export function materializeReductions(kernel: KernelDraft): {
  before: KernelDraft[];
  main: KernelDraft;
} {
  const outputs = kernel.shape.map((d, a) => ({ name: outputVar(a), extent: d }))
    .filter((o) => o.extent > 1)
    .map((o) => o.name);
  const before: KernelDraft[] = [];
  const done = new Map<string, VExpr>();
  const hoist = (r: VExpr, scope: Ranges, perRow = true): VExpr => {
    const dims = freeDims(r, scope, byAxisThenName);
    const key = `${exprKey(r)}@${dims.map((d) => `${d.name}:${d.lo}+${d.size}`).join(",")}`;
    const known = done.get(key);
    if (known) return known;
    const out = `${kernel.out}_${r.k === "reduce" ? r.op : "terms"}${before.length}`;
    // Rename through placeholders so no new i0, i1, ... captures an old one.
    const held = new Map(scope);
    let body: VExpr = r;
    dims.forEach((d, j) => {
      held.set(`__h${j}`, [d.lo, d.lo + d.size - 1]);
      body = substitute(body, d.name, variable(`__h${j}`), held);
    });
    const ranges = new Map<string, readonly [number, number]>(
      dims.map((d, j) => [outputVar(j), [0, d.size - 1]] as const),
    );
    foldExpr(r, ranges, (acc, n) => n.k === "reduce" ? acc.set(n.v, [0, n.extent - 1]) : acc);
    const renamedScope = new Map([...held, ...ranges]);
    dims.forEach((d, j) => {
      body = substitute(body, `__h${j}`, lin.offset(variable(outputVar(j)), d.lo), renamedScope);
    });
    if (dims.length === 0) ranges.set(outputVar(0), [0, 0]);
    const shape = dims.length === 0 ? [1] : dims.map((d) => d.size);
    before.push({
      out,
      shape,
      ops: kernel.ops,
      expr: simplify(body, ranges),
      ranges,
      ...(perRow ? { perRow } : {}),
    });
    const load = v.load(out, denseIndex(dims));
    done.set(key, load);
    return load;
  };
  // `enclosing`: the variables of the reductions around `e`. A reduction is hoisted when some
  // variable in scope (an output axis, or an enclosing reduction's) does not occur in it: it
  // would be recomputed along that variable. A reduction over all of them (a conv's Σ_kx inside
  // Σ_ky inside Σ_c) is one multi-axis reduction and stays.
  // A sum whose summand also occurs in the value at the output index (softmax's
  // `exp(x - max)`, summed along the row and divided by the sum) gets its summand stored once,
  // so each element's exp is computed once rather than in the sum and again in the value.
  const summandAt = new Map<string, string>();
  const outputRange = (t: string): number => {
    const [lo, hi] = kernel.ranges.get(t) as readonly [number, number];
    return lo === 0 ? hi + 1 : -1;
  };
  const values = foldExpr(kernel.expr, new Set<string>(), (acc, n) => acc.add(exprKey(n)));
  foldExpr(kernel.expr, summandAt, (acc, n) => {
    if (n.k !== "reduce" || n.op !== "sum" || !transcendental(n.body)) return acc;
    const free = freeVars(n);
    const t = outputs.find((o) => !free.has(o) && outputRange(o) === n.extent);
    if (t === undefined) return acc;
    const key = exprKey(substitute(n.body, n.v, variable(t), kernel.ranges));
    return values.has(key) ? acc.set(key, t) : acc;
  });
  const stored = new Map<string, VExpr>();
  const store = (e: VExpr, key: string): VExpr => {
    const known = stored.get(key);
    if (known) return known;
    const inside = rebuild(mapChildren(e, (c) => walk(c, kernel.ranges, [])));
    const load = hoist(inside, kernel.ranges, false);
    stored.set(key, load);
    return load;
  };
  const walk = (e: VExpr, scope: Ranges, enclosing: readonly string[]): VExpr => {
    if (
      summandAt.size > 0 && enclosing.length === 0 &&
      (e.k === "unary" || e.k === "binary" || e.k === "reduce")
    ) {
      const key = exprKey(e);
      if (summandAt.has(key)) return store(e, key);
      if (e.k === "reduce" && e.op === "sum") {
        const t = outputs.find((o) =>
          !freeVars(e).has(o) &&
          summandAt.get(exprKey(substitute(e.body, e.v, variable(o), scope))) === o
        );
        if (t !== undefined) {
          const x = substitute(e.body, e.v, variable(t), scope);
          const inner = new Map(scope).set(e.v, [0, e.extent - 1] as const);
          const body = substitute(store(x, exprKey(x)), t, variable(e.v), inner);
          const r = { ...e, body };
          return hoist(r, scope);
        }
      }
    }
    if (e.k === "select") {
      return v.select(
        e.cond,
        walk(e.a, narrow(e.cond, true, scope), enclosing),
        walk(e.b, narrow(e.cond, false, scope), enclosing),
      );
    }
    if (e.k === "reduce") {
      const inner = new Map(scope).set(e.v, [0, e.extent - 1] as const);
      const r = { ...e, body: walk(e.body, inner, [...enclosing, e.v]) };
      const free = freeVars(r);
      const invariant = [...outputs, ...enclosing].some((name) => {
        const [lo, hi] = scope.get(name) as readonly [number, number];
        return !free.has(name) && hi > lo;
      });
      return invariant ? hoist(r, scope) : r;
    }
    return rebuild(mapChildren(e, (c) => walk(c, scope, enclosing)));
  };
  const expr = walk(kernel.expr, kernel.ranges, []);
  return { before, main: { ...kernel, expr } };
}

const TRANSCENDENTAL = new Set(["exp", "log", "tanh", "erf"]);

// Whether `e` is an op over an exp, log, tanh or erf: worth storing rather than recomputing.
function transcendental(e: VExpr): boolean {
  return (e.k === "unary" || e.k === "binary") &&
    foldExpr(e, false, (acc, n) => acc || (n.k === "unary" && TRANSCENDENTAL.has(n.op)));
}

/** A free variable of a materialized expression, with its range in scope. */
interface FreeDim {
  readonly name: string;
  readonly lo: number;
  readonly size: number;
}

// The free variables of `e` (in `order`) with their ranges under `scope`: the axes of the buffer
// a materialized expression is stored in.
function freeDims(
  e: VExpr,
  scope: Ranges,
  order?: (a: string, b: string) => number,
): FreeDim[] {
  return [...freeVars(e)].sort(order).map((name) => {
    const [lo, hi] = scope.get(name) as readonly [number, number];
    return { name, lo, size: hi - lo + 1 };
  });
}

// The row-major index into that buffer.
function denseIndex(dims: readonly FreeDim[]): Lin {
  let index = constant(0);
  let stride = 1;
  for (let j = dims.length - 1; j >= 0; j--) {
    index = lin.add(index, lin.scale(lin.offset(variable(dims[j].name), -dims[j].lo), stride));
    stride *= dims[j].size;
  }
  return index;
}

// Output variables in axis order first (so a row's kernel keeps the row's layout), then the rest.
function byAxisThenName(a: string, b: string): number {
  const axis = (name: string): number => {
    const m = /^i(\d+)$/.exec(name);
    return m ? Number(m[1]) : Infinity;
  };
  return axis(a) - axis(b) || (a < b ? -1 : a > b ? 1 : 0);
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
    const dims = freeDims(e, scope);
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
    return v.load(name, denseIndex(dims));
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
 * Buffer planning: intermediates that are not results get memory slots. A buffer lives from the
 * kernel that writes it to the last kernel that reads it (a kernel's output never shares a slot
 * with what it reads). Largest buffers are placed first, each in the smallest slot whose buffers
 * all live at other times, else in a new slot, so a small buffer does not take a large slot that
 * a later large buffer then cannot reuse. A slot is as large as its largest buffer; `sizeOf`
 * gives a buffer's element count (without it all buffers count alike).
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
  sizeOf: (buffer: string) => number = () => 1,
): Map<string, number> {
  const lastUse = new Map<string, number>();
  kernels.forEach((k) => k.reads.forEach((b) => lastUse.set(b, k.index)));
  const lives = kernels
    .filter((k) => !results.includes(k.out))
    .map((k) => ({
      buffer: k.out,
      from: k.index,
      to: Math.max(k.index, lastUse.get(k.out) ?? k.index),
      size: sizeOf(k.out),
    }))
    .sort((a, b) => b.size - a.size || a.from - b.from);
  const slotLives: { from: number; to: number }[][] = [];
  const slotSize: number[] = [];
  const slots = new Map<string, number>();
  for (const life of lives) {
    let best = -1;
    slotLives.forEach((held, slot) => {
      const apart = held.every((h) => h.to < life.from || life.to < h.from);
      if (apart && (best < 0 || slotSize[slot] < slotSize[best])) best = slot;
    });
    if (best < 0) {
      best = slotLives.push([]) - 1;
      slotSize[best] = life.size;
    }
    slotLives[best].push(life);
    slots.set(life.buffer, best);
  }
  // In kernel order, as explain() lists them.
  return new Map(
    kernels.filter((k) => slots.has(k.out)).map((k) => [k.out, slots.get(k.out) as number]),
  );
}
