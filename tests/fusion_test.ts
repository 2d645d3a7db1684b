// Fusion decisions, asserted on the structure of the lowered program (kernel count, shapes, which
// graph nodes each kernel computes, which reductions it contains and which buffers it reads),
// never on explain() text: softmax and layer norm become three kernels (two per-row reductions,
// then the elementwise output); GELU fuses into the Linear before it and is materialized before
// the Linear after it; a residual add fuses into the Linear it adds; a whole timm encoder block
// has a fixed kernel sequence with no reduction recomputed inside another. Every program is also
// run through the IR interpreter (`evalExpr`, kernel by kernel) against the reference
// interpreter, so a fusion that changes the value fails here too.
import assert from "node:assert/strict";
import {
  children,
  evalExpr,
  exprKey,
  foldExpr,
  freeVars,
  lin,
  linVars,
  narrow,
  type Ranges,
  someNode,
  v,
  variable,
  type VExpr,
} from "../codegen/ir/expr.ts";
import { type Kernel, outputVar, type Program } from "../codegen/ir/program.ts";
import { lowerProgram } from "../codegen/passes/pipeline.ts";
import { renderJsKernel } from "../codegen/render/js/loop_nest.ts";
import { renderWgslKernel } from "../codegen/render/wgsl/loop_nest.ts";
import {
  renderWgslRowReduction,
  ROW_THREADS,
  rowReductionOf,
} from "../codegen/render/wgsl/reduce.ts";
import type { Graph } from "../graph/ir.ts";
import { encoderBlock, vitEncoder } from "../models/vit_encoder.ts";
// Imported from the modules themselves, not mod.ts: these tests need no backend.
import { interpret } from "../codegen/backends/interpreter.ts";
import { graph } from "../graph/builder.ts";
import { initParams } from "../graph/params.ts";
import { specialize } from "../graph/specialize.ts";
import { patchEmbedding, seedTokenizer } from "../models/vit_tokenizer.ts";

type Reduce = VExpr & { k: "reduce" };

/** A deterministic input in [-1, 1). */
function data(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 31 - 1;
  });
}

/** Specializes `g0` to `shapes`, lowers it for a CPU target, and checks it against `interpret`. */
function lower(g0: Graph, shapes: Record<string, number[]>): { g: Graph; program: Program } {
  const g = specialize(g0, shapes).graph;
  const weights = initParams(g0, 1);
  const program = lowerProgram(g, weights, [g.output], { gpu: false });
  // The lowered program computes what the graph means.
  const inputs = Object.fromEntries(
    Object.entries(shapes).map(([name, shape], j) => [
      name,
      { shape, data: data(shape.reduce((p, d) => p * d, 1), 7 + j) },
    ]),
  );
  const want = interpret(g, inputs, weights)[g.output].data;
  const got = execute(program, inputs);
  let worst = 0;
  want.forEach((w, at) => (worst = Math.max(worst, Math.abs(got[at] - w))));
  assert.ok(worst <= 1e-4, `${g0.name}: lowered program is off by ${worst}`);
  return { g, program };
}

/** Runs a program with `evalExpr`, kernel by kernel (float32 buffers), and returns its result. */
function execute(
  program: Program,
  inputs: Record<string, { shape: number[]; data: Float32Array }>,
): Float32Array {
  const values = new Map<string, Float32Array>();
  for (const b of program.buffers.values()) {
    if (b.data) values.set(b.name, b.data);
    if (b.kind === "input") values.set(b.name, inputs[b.source as string].data);
  }
  for (const k of program.kernels) {
    const out = new Float32Array(k.size);
    const env = new Map<string, number>();
    for (let flat = 0; flat < k.size; flat++) {
      let rest = flat;
      for (let a = k.shape.length - 1; a >= 0; a--) {
        env.set(outputVar(a), rest % k.shape[a]);
        rest = Math.floor(rest / k.shape[a]);
      }
      out[flat] = evalExpr(k.expr, env, (name) => values.get(name) as Float32Array);
    }
    values.set(k.out, out);
  }
  return values.get(program.results[0]) as Float32Array;
}

/** Every reduce node of `e`, outermost first. */
function reductions(e: VExpr): Reduce[] {
  return foldExpr(e, [] as Reduce[], (acc, n) => (n.k === "reduce" ? [...acc, n] : acc));
}

/** The load nodes of buffer `buf` in `e`. */
function loadsFrom(e: VExpr, buf: string): (VExpr & { k: "load" })[] {
  return foldExpr(
    e,
    [] as (VExpr & { k: "load" })[],
    (acc, n) => (n.k === "load" && n.buf === buf ? [...acc, n] : acc),
  );
}

/** The name of the `nth` node of graph op `op`. */
function nodeName(g: Graph, op: string, nth = 0): string {
  const nodes = g.nodes.filter((n) => n.op === op);
  assert.ok(nodes.length > nth, `no ${op} #${nth}`);
  return nodes[nth].name;
}

/**
 * Reductions recomputed along a variable in scope: a reduce that does not mention an output axis
 * (of extent > 1 where it stands) or the variable of a reduce around it. `materializeReductions`
 * is to leave none (a conv's Σ_kx inside Σ_ky inside Σ_c mentions all three and is fine).
 */
function recomputedReductions(kernel: Kernel): string[] {
  const bad: string[] = [];
  const walk = (e: VExpr, scope: Ranges, enclosing: readonly string[]): void => {
    if (e.k === "select") {
      walk(e.a, narrow(e.cond, true, scope), enclosing);
      walk(e.b, narrow(e.cond, false, scope), enclosing);
      return;
    }
    if (e.k === "reduce") {
      const free = freeVars(e);
      const axes = kernel.shape.map((_, a) => outputVar(a));
      for (const name of [...axes, ...enclosing]) {
        const [lo, hi] = scope.get(name) as readonly [number, number];
        if (hi > lo && !free.has(name)) bad.push(`${exprKey(e)} is invariant along ${name}`);
      }
      const inner = new Map(scope).set(e.v, [0, e.extent - 1] as const);
      walk(e.body, inner, [...enclosing, e.v]);
      return;
    }
    for (const c of children(e)) walk(c, scope, enclosing);
  };
  walk(kernel.expr, kernel.ranges, []);
  return bad;
}

/** `shape:reductions`, e.g. `17:sum32` (a per-row sum over 32) or `1x17x32:ew` (none). */
function kind(k: Kernel): string {
  const distinct = [...new Set(reductions(k.expr).map((r) => `${r.op}${r.extent}`))];
  return `${k.shape.join("x")}:${distinct.join("+") || "ew"}`;
}

/**
 * Whether `k` is a per-row reduction materialized out of another kernel's value: its value is one
 * reduce (`op` over `extent`) and it has fewer axes than the graph node it belongs to.
 */
function isRowReduction(g: Graph, k: Kernel, op: "sum" | "max", extent: number): boolean {
  const root = g.nodes.find((n) => n.name === k.ops[k.ops.length - 1]);
  return k.expr.k === "reduce" && k.expr.op === op && k.expr.extent === extent &&
    reductions(k.expr).length === 1 && root !== undefined && k.shape.length < root.shape.length;
}

Deno.test("fusion: the recomputation checker flags broadcast and nested invariant reductions", () => {
  const row = (name: string) => v.load("x", lin.add(lin.scale(variable("i0"), 8), variable(name)));
  const kernelOf = (shape: number[], expr: VExpr): Kernel => {
    const ranges = new Map<string, readonly [number, number]>(
      shape.map((d, a) => [outputVar(a), [0, d - 1] as const]),
    );
    foldExpr(expr, ranges, (acc, n) => (n.k === "reduce" ? acc.set(n.v, [0, n.extent - 1]) : acc));
    return { index: 0, out: "y", shape, size: 0, ops: [], expr, ranges, reads: [] };
  };
  // x[i0, i1] / Σ_k x[i0, k]: the sum does not move along i1.
  const broadcast = v.div(row("i1"), v.sum("k", 8, row("k")));
  assert.equal(recomputedReductions(kernelOf([4, 8], broadcast)).length, 1);
  // Σ_j (x[i0, j] - Σ_k x[i0, k] / 8)²: the mean inside the variance does not move along j.
  const centered = v.sub(row("j"), v.divc(v.sum("k", 8, row("k")), 8));
  const variance = v.sum("j", 8, v.mul(centered, centered));
  assert.equal(recomputedReductions(kernelOf([4], variance)).length, 2);
  // Nested sums that mention every enclosing variable (a conv's) are fine; so is an axis of
  // extent 1, or one pinned by a select.
  const both = v.sum("j", 2, v.sum("k", 4, v.load("x", lin.add(variable("j"), variable("k")))));
  assert.deepEqual(recomputedReductions(kernelOf([1], both)), []);
  const first = v.select({ k: "lt", x: variable("i1"), c: 1 }, v.sum("k", 8, row("k")), row("i1"));
  assert.deepEqual(recomputedReductions(kernelOf([4, 8], first)), []);
});

Deno.test("fusion: softmax over the last axis is max per row, exp once, sum per row, then a divide", () => {
  const g0 = graph("softmax", (b) => b.softmax(b.input("x", [2, 3, 5]), -1));
  const { g, program } = lower(g0, { x: [2, 3, 5] });
  const softmax = nodeName(g, "softmax");
  assert.equal(program.kernels.length, 4);
  const [max, terms, sum, out] = program.kernels;
  assert.deepEqual(
    [max.shape, terms.shape, sum.shape, out.shape],
    [[2, 3], [2, 3, 5], [2, 3], [2, 3, 5]],
  );
  assert.ok(program.kernels.every((k) => k.ops.includes(softmax)));
  const exps = (k: Kernel): number =>
    foldExpr(k.expr, 0, (n, e) => n + (e.k === "unary" && e.op === "exp" ? 1 : 0));
  // 1. max_m x[row, m]: reads the input only.
  assert.ok(isRowReduction(g, max, "max", 5), kind(max));
  assert.deepEqual(max.reads, ["in_x"]);
  // 2. exp(x - max[row]), stored: the only exp of the four kernels.
  assert.deepEqual(program.kernels.map(exps), [0, 1, 0, 0]);
  assert.equal(reductions(terms.expr).length, 0);
  const maxLoads = loadsFrom(terms.expr, max.out);
  assert.equal(maxLoads.length, 1);
  assert.deepEqual([...linVars(maxLoads[0].index)].sort(), ["i0", "i1"]);
  assert.deepEqual([...terms.reads].sort(), ["in_x", max.out].sort());
  // 3. Σ_s terms[row, s]: a row reduction of the stored exps.
  assert.ok(isRowReduction(g, sum, "sum", 5), kind(sum));
  assert.deepEqual(sum.reads, [terms.out]);
  // 4. terms / sum: no reduction, the sum read at the row.
  assert.equal(reductions(out.expr).length, 0);
  for (const l of loadsFrom(out.expr, sum.out)) {
    assert.deepEqual([...linVars(l.index)].sort(), ["i0", "i1"]);
  }
  assert.deepEqual([...out.reads].sort(), [terms.out, sum.out].sort());
  assert.deepEqual(program.results, [out.out]);
  for (const k of [max, terms, sum]) {
    assert.equal(program.buffers.get(k.out)?.kind, "intermediate");
  }
  assert.deepEqual(program.kernels.flatMap(recomputedReductions), []);
});

Deno.test("fusion: layerNorm is mean per row, variance per row (reading the mean), normalize", () => {
  const g0 = graph("ln", (b) => b.layerNorm(b.input("x", [2, 3, 8]), { name: "ln" }));
  const { g, program } = lower(g0, { x: [2, 3, 8] });
  assert.equal(program.kernels.length, 3);
  const [mean, variance, out] = program.kernels;
  assert.deepEqual([mean.shape, variance.shape, out.shape], [[2, 3], [2, 3], [2, 3, 8]]);
  assert.ok(program.kernels.every((k) => k.ops.includes(nodeName(g, "layer_norm"))));
  assert.ok(isRowReduction(g, mean, "sum", 8), kind(mean));
  assert.deepEqual(mean.reads, ["in_x"]);
  // The variance is two-pass: Σ_j (x - mean)² reads the mean as a load, not a nested sum.
  assert.ok(isRowReduction(g, variance, "sum", 8), kind(variance));
  const meanLoads = loadsFrom(variance.expr, mean.out);
  assert.ok(meanLoads.length >= 1);
  for (const l of meanLoads) assert.deepEqual([...linVars(l.index)].sort(), ["i0", "i1"]);
  // Normalize: no reduction; reads both statistics per row, and the affine parameters.
  assert.equal(reductions(out.expr).length, 0);
  assert.ok(someNode(out.expr, (n) => n.k === "unary" && n.op === "rsqrt"));
  assert.deepEqual(
    [...out.reads].sort(),
    ["in_x", mean.out, variance.out, "p_ln_weight", "p_ln_bias"].sort(),
  );
  assert.deepEqual(program.kernels.flatMap(recomputedReductions), []);
});

Deno.test("fusion: fc1 -> gelu -> fc2 fuses GELU into fc1 and materializes it before fc2", () => {
  const g0 = graph("mlp", (b) => {
    const x = b.input("x", [2, 5, 8]);
    const h = b.gelu(b.linear(x, { in: 8, out: 32, name: "fc1" }));
    return b.linear(h, { in: 32, out: 8, name: "fc2" });
  });
  const { g, program } = lower(g0, { x: [2, 5, 8] });
  const [fc1Name, fc2Name] = [nodeName(g, "linear", 0), nodeName(g, "linear", 1)];
  const geluName = nodeName(g, "gelu");
  assert.equal(program.kernels.length, 2);
  const [fc1, fc2] = program.kernels;
  assert.deepEqual(fc1.ops, [fc1Name, geluName]);
  assert.deepEqual(fc2.ops, [fc2Name]);
  assert.deepEqual([fc1.shape, fc2.shape], [[2, 5, 32], [2, 5, 8]]);
  // fc1's kernel: GELU's erf around the Linear's sum, which GELU reads twice; one sum by key
  // (the renderers compute it once).
  assert.ok(someNode(fc1.expr, (n) => n.k === "unary" && n.op === "erf"));
  const sums = reductions(fc1.expr);
  assert.equal(new Set(sums.map(exprKey)).size, 1);
  assert.equal(sums.length, 2);
  assert.ok(sums.every((r) => r.op === "sum" && r.extent === 8));
  // No erf inside a reduction: GELU is not recomputed per output column of either Linear.
  for (const k of program.kernels) {
    for (const r of reductions(k.expr)) {
      assert.ok(!someNode(r.body, (n) => n.k === "unary"), `${k.out}: ${exprKey(r)}`);
    }
  }
  // fc2 reads the GELU output as a load inside its sum.
  const [fc2Sum] = reductions(fc2.expr);
  assert.equal(fc2Sum.extent, 32);
  assert.equal(loadsFrom(fc2Sum.body, fc1.out).length, 1);
  assert.ok(fc2.reads.includes(fc1.out));
  assert.equal(program.buffers.get(fc1.out)?.kind, "intermediate");
  assert.deepEqual(program.kernels.flatMap(recomputedReductions), []);
});

Deno.test("fusion: a residual x + linear(y) is one kernel, the add an epilogue of the sum", () => {
  const g0 = graph("residual", (b) => {
    const x = b.input("x", [2, 5, 8]);
    const y = b.input("y", [2, 5, 8]);
    return b.add(x, b.linear(y, { in: 8, out: 8, name: "l" }));
  });
  const { g, program } = lower(g0, { x: [2, 5, 8], y: [2, 5, 8] });
  assert.equal(program.kernels.length, 1);
  const [k] = program.kernels;
  assert.deepEqual(k.ops, [nodeName(g, "linear"), nodeName(g, "add")]);
  const sums = reductions(k.expr);
  assert.equal(sums.length, 1);
  // x is read outside the sum, y inside it.
  assert.equal(loadsFrom(sums[0].body, "in_x").length, 0);
  assert.equal(loadsFrom(sums[0].body, "in_y").length, 1);
  assert.equal(loadsFrom(k.expr, "in_x").length, 1);
  assert.deepEqual([...k.reads].sort(), ["in_x", "in_y", "p_l_bias", "p_l_weight"]);
});

Deno.test("fusion: a timm encoder block (dim 32, 2 heads, 17 tokens) lowers to 19 kernels", () => {
  const g0 = vitEncoder({ tokens: 17, dim: 32, depth: 1, heads: 2 });
  const { g, program } = lower(g0, { embedded: [1, 17, 32] });
  const ks = program.kernels;
  // Per-row statistics drop the extent-1 batch axis: [17] (tokens) and [2, 17] (heads x tokens).
  assert.deepEqual(ks.map(kind), [
    "17:sum32", // norm1: mean
    "17:sum32", // norm1: variance (reads the mean)
    "1x17x32:ew", // norm1: normalize
    "1x17x96:sum32", // qkv Linear
    "1x2x17x17:sum16", // q @ kᵀ (q's scale inlined)
    "2x17:max17", // softmax: max per row
    "2x17x17:ew", // softmax: exp(x - max), stored
    "2x17:sum17", // softmax: sum per row
    "1x2x17x17:ew", // softmax: normalize
    "1x2x17x16:sum17", // attn @ v
    "1x17x32:sum32", // proj Linear (reads the heads through the transpose)
    "17:sum32", // norm2: mean of x + proj (the residual add inlined)
    "17:sum32", // norm2: variance
    "1x17x32:ew", // norm2: normalize
    "1x17x128:sum32", // fc1 Linear + GELU
    "1x17x32:sum128", // fc2 Linear + both residual adds
    "17:sum32", // final norm: mean
    "17:sum32", // final norm: variance
    "1x17x32:ew", // final norm: normalize
  ]);
  // Which kernels are per-row reductions (the value is one reduce over the full row).
  const rowKernels = ks.flatMap((k, at) =>
    isRowReduction(g, k, "sum", 32) || isRowReduction(g, k, "max", 17) ||
      isRowReduction(g, k, "sum", 17)
      ? [at]
      : []
  );
  assert.deepEqual(rowKernels, [0, 1, 5, 7, 11, 12, 16, 17]);
  // A sum over the full width (dim 32 or hidden 128) in every Linear and the stats kernels.
  const fullWidth = ks.flatMap((k, at) =>
    reductions(k.expr).some((r) => r.op === "sum" && (r.extent === 32 || r.extent === 128))
      ? [at]
      : []
  );
  assert.deepEqual(fullWidth, [0, 1, 3, 10, 11, 12, 14, 15, 16, 17]);
  // The fused graph nodes: GELU with fc1, fc2 with the residuals, the residual x + proj
  // (add #0) recomputed in norm2's three kernels and fc2's epilogue (it reads two buffers).
  const linear = (n: number): string => nodeName(g, "linear", n);
  const [add0, add1] = [nodeName(g, "add", 0), nodeName(g, "add", 1)];
  assert.deepEqual(ks[14].ops, [linear(2), nodeName(g, "gelu")]);
  assert.deepEqual([...ks[15].ops].sort(), [linear(3), add0, add1].sort());
  assert.deepEqual(ks.flatMap((k, at) => (k.ops.includes(add0) ? [at] : [])), [11, 12, 13, 15]);
  // No reduction is recomputed inside another, or along an output axis.
  assert.deepEqual(ks.flatMap(recomputedReductions), []);
  // No nested reductions at all in this model, and at most one distinct reduction per kernel.
  for (const k of ks) {
    const rs = reductions(k.expr);
    assert.ok(rs.every((r) => reductions(r.body).length === 0), k.out);
    assert.ok(new Set(rs.map(exprKey)).size <= 1, k.out);
  }
  // No transcendental op inside any reduction: softmax's exp(x - max) is stored once and its
  // row sum reads it; GELU, rsqrt and exp are never recomputed per output column of a GEMM.
  for (const [at, k] of ks.entries()) {
    for (const r of reductions(k.expr)) {
      const unary = foldExpr(
        r.body,
        [] as string[],
        (acc, n) => (n.k === "unary" ? [...acc, n.op] : acc),
      );
      assert.deepEqual(unary, [], `${k.out} (kernel ${at}): ${exprKey(r)}`);
    }
  }
  // GEMM bodies are plain products of two loads, except q @ kᵀ, whose q is scaled by
  // headDim^-0.5 inside the sum (one extra multiply per multiply-add, redone for each of the 17
  // key columns; contraction.ts moves the constant out for the wasm micro-kernel).
  const products = [3, 4, 9, 10, 14, 15].map((at) => {
    const body = reductions(ks[at].expr)[0].body;
    const plain = body.k === "binary" && body.op === "mul" && body.a.k === "load" &&
      body.b.k === "load";
    return [at, plain];
  });
  assert.deepEqual(products, [[3, true], [4, false], [9, true], [10, true], [14, true], [
    15,
    true,
  ]]);
  const qk = reductions(ks[4].expr)[0].body;
  assert.equal(foldExpr(qk, 0, (n, e) => n + (e.k === "binary" ? 1 : 0)), 2);
  assert.equal(program.results.length, 1);
  assert.equal(program.results[0], ks[18].out);
});

Deno.test("fusion: the encoder block's kernel sequence does not depend on the batch size", () => {
  const block = graph("block", (b) => {
    const x = b.input("x", ["B", 17, 32]);
    return encoderBlock(b, x, { heads: 2, name: "blocks.0" });
  });
  const one = lower(block, { x: [1, 17, 32] }).program.kernels;
  const two = lower(block, { x: [2, 17, 32] }).program.kernels;
  // The block alone: the encoder's kernels without the final norm.
  assert.equal(one.length, 16);
  assert.equal(two.length, 16);
  assert.deepEqual(one.map((k) => k.ops), two.map((k) => k.ops));
  assert.deepEqual(
    two.map(kind),
    [
      "2x17:sum32",
      "2x17:sum32",
      "2x17x32:ew",
      "2x17x96:sum32",
      "2x2x17x17:sum16",
      "2x2x17:max17",
      "2x2x17x17:ew",
      "2x2x17:sum17",
      "2x2x17x17:ew",
      "2x2x17x16:sum17",
      "2x17x32:sum32",
      "2x17:sum32",
      "2x17:sum32",
      "2x17x32:ew",
      "2x17x128:sum32",
      "2x17x32:sum128",
    ],
  );
  assert.deepEqual(two.flatMap(recomputedReductions), []);
});

Deno.test("fusion: the tokenizers keep their kernel counts (patchEmbedding 1, seedTokenizer 2)", () => {
  const sizes = { height: 32, width: 32, patch: 8, embedding: 16 };
  for (const batch of [1, 2]) {
    const image = [batch, 3, 32, 32];
    const standard = lower(patchEmbedding(sizes), { image }).program;
    assert.equal(standard.kernels.length, 1, `patchEmbedding, batch ${batch}`);
    // conv, flatten, transpose, class token and positional embedding: one kernel, the conv's
    // three nested sums one reduction over (c, ky, kx).
    const [k] = standard.kernels;
    assert.deepEqual(k.shape, [batch, 17, 16]);
    const rs = reductions(k.expr);
    assert.deepEqual(rs.map((r) => `${r.op}${r.extent}`), ["sum3", "sum8", "sum8"]);
    assert.deepEqual(recomputedReductions(k), []);
    const seed = lower(seedTokenizer(sizes), { image }).program;
    assert.equal(seed.kernels.length, 2, `seedTokenizer, batch ${batch}`);
    assert.deepEqual(seed.kernels.map((x) => x.shape), [[batch, 3, 4, 4], [batch, 17, 16]]);
    assert.ok(seed.kernels[1].reads.includes(seed.kernels[0].out));
    assert.deepEqual(seed.kernels.flatMap(recomputedReductions), []);
  }
});

Deno.test("per-row kernels: fusion marks the reductions it pulls out, and only those get wgsl's workgroup per row", () => {
  const g0 = graph("rows", (b) => {
    const x = b.input("x", ["B", 7, 300]);
    const h = b.layerNorm(x, { name: "ln", eps: 1e-6 });
    return b.linear(b.softmax(h, -1), { in: 300, out: 8, name: "fc" });
  });
  const { program } = lower(g0, { x: [2, 7, 300] });
  const perRow = program.kernels.filter((k) => k.perRow).map((k) => k.out);
  assert.deepEqual(perRow, [
    "t_layer_norm_3_sum0",
    "t_layer_norm_3_sum1",
    "t_softmax_4_max0",
    "t_softmax_4_sum2",
  ]);
  for (const k of program.kernels) {
    const r = rowReductionOf(k);
    assert.equal(r !== undefined, k.perRow === true, k.out);
  }
  // The Linear (a 300-long sum too) keeps one thread per output.
  const linear = program.kernels[program.kernels.length - 1];
  assert.ok(someNode(linear.expr, (n) => n.k === "reduce"));
  assert.equal(renderWgslRowReduction(linear), undefined);
  const shader = renderWgslRowReduction(program.kernels[0]);
  assert.ok(shader);
  assert.equal(shader.workgroupSize, ROW_THREADS);
  assert.equal(shader.threads, 14 * ROW_THREADS);
  assert.match(shader.source, /workgroupBarrier/);
});

Deno.test("a reduction read twice (GELU reads fc1's sum twice) is one loop in the rendered kernel", () => {
  const g0 = graph("mlp", (b) => {
    const x = b.input("x", ["B", 5, 64]);
    return b.gelu(b.linear(x, { in: 64, out: 16, name: "fc1" }));
  });
  const { program } = lower(g0, { x: [2, 5, 64] });
  assert.equal(program.kernels.length, 1);
  const [kernel] = program.kernels;
  const sums = new Set<string>();
  foldExpr(kernel.expr, sums, (acc, n) => (n.k === "reduce" ? acc.add(exprKey(n)) : acc));
  assert.equal(sums.size, 1);
  const loops = (source: string): number => source.match(/for \((var|let) k\d+\b/g)?.length ?? 0;
  assert.equal(loops(renderWgslKernel(kernel).source), 1, "wgsl (jammed)");
  assert.equal(loops(renderJsKernel(kernel).body), 1, "js");
});
