/**
 * The row-reduction shader of the `wgsl` backend: a kernel whose value is one reduction (a
 * softmax's max or sum, a layer norm's mean or variance, each per row) gets a workgroup per
 * output. Its threads stride over the reduced axis, combine their partial results in workgroup
 * memory by halving, and one thread applies the rest of the expression and stores.
 * @module
 */

import { children, constant, replaceWhere, someNode, type VExpr } from "../../ir/expr.ts";
import type { Kernel } from "../../ir/program.ts";
import { renderExpression } from "../common.ts";
import { outputIndexLines, WGSL_OPS, type WgslKernel, wgslSyntax } from "./loop_nest.ts";

/** Threads per row (a power of two). */
export const ROW_THREADS = 64;

/** Rows shorter than this stay one thread per output. */
export const MIN_ROW_LENGTH = 64;

/** The buffer name the rest of the expression reads the reduced value from. */
const ROW_VALUE = "__row";

/**
 * The one reduction of `kernel` worth a workgroup per row, or undefined: a per-row kernel
 * (`Kernel.perRow`) whose value holds exactly one reduction, at least `MIN_ROW_LENGTH` long, with
 * no reduction inside it and not under a select. (Products such as a narrow Linear keep one
 * thread per output: there the outputs, not the reduction, fill the GPU.)
 *
 * @example
 * ```ts
 * import { rowReductionOf } from "./reduce.ts";
 * typeof rowReductionOf; // "function"
 * ```
 */
export function rowReductionOf(kernel: Kernel): (VExpr & { k: "reduce" }) | undefined {
  if (!kernel.perRow) return undefined;
  const found: (VExpr & { k: "reduce" })[] = [];
  let underSelect = false;
  const walk = (e: VExpr, selected: boolean): void => {
    if (e.k === "reduce") {
      found.push(e);
      underSelect ||= selected;
      return;
    }
    if (e.k === "select") {
      walk(e.a, true);
      walk(e.b, true);
      return;
    }
    children(e).forEach((c) => walk(c, selected));
  };
  walk(kernel.expr, false);
  if (found.length !== 1 || underSelect) return undefined;
  const r = found[0];
  if (r.extent < MIN_ROW_LENGTH || someNode(r.body, (n) => n.k === "reduce")) return undefined;
  return r;
}

/**
 * Renders `kernel` as a row-reduction shader, or undefined when it has no such reduction.
 * `threads` is `ROW_THREADS` per output; the launch is one workgroup per output.
 *
 * @example
 * ```ts
 * import { renderWgslRowReduction } from "./reduce.ts";
 * typeof renderWgslRowReduction; // "function"
 * ```
 */
export function renderWgslRowReduction(kernel: Kernel): WgslKernel | undefined {
  const r = rowReductionOf(kernel);
  if (!r) return undefined;
  const reads = [...kernel.reads].sort();
  const syntax = wgslSyntax(reads);
  const combine = r.op === "sum"
    ? (a: string, b: string): string => `${a} + ${b}`
    : WGSL_OPS.binary.max;
  const body = renderExpression(kernel, syntax, r.body, "    ");
  const rest = replaceWhere(kernel.expr, (n) => n === r, {
    k: "load",
    buf: ROW_VALUE,
    index: constant(0),
  });
  const tail = renderExpression(
    kernel,
    {
      ...syntax,
      load: (buf, index) => (buf === ROW_VALUE ? "partial[0]" : syntax.load(buf, index)),
    },
    rest,
    "    ",
  );
  const init = r.op === "sum" ? "0.0" : WGSL_OPS.lowest;
  const source = [
    ...reads.map((_, i) => `@group(0) @binding(${i}) var<storage, read> buf${i}: array<f32>;`),
    `@group(0) @binding(${reads.length}) var<storage, read_write> out: array<f32>;`,
    `var<workgroup> partial: array<f32, ${ROW_THREADS}>;`,
    `@compute @workgroup_size(${ROW_THREADS})`,
    "fn main(",
    "  @builtin(workgroup_id) wg: vec3<u32>,",
    "  @builtin(num_workgroups) groups: vec3<u32>,",
    "  @builtin(local_invocation_index) li: u32,",
    ") {",
    // One workgroup per output: the bound test is uniform, so the barriers below are too.
    "  let idx = wg.x + wg.y * groups.x;",
    `  if (idx >= ${kernel.size}u) { return; }`,
    "  let flat = i32(idx);",
    ...outputIndexLines(kernel.shape),
    `  var acc: f32 = ${init};`,
    `  for (var ${r.v}: i32 = i32(li); ${r.v} < ${r.extent}; ${r.v} += ${ROW_THREADS}) {`,
    ...body.lines,
    `    acc = ${combine("acc", body.value)};`,
    "  }",
    "  partial[li] = acc;",
    "  workgroupBarrier();",
    `  for (var half = ${ROW_THREADS / 2}u; half > 0u; half = half / 2u) {`,
    "    if (li < half) {",
    `      partial[li] = ${combine("partial[li]", "partial[li + half]")};`,
    "    }",
    "    workgroupBarrier();",
    "  }",
    "  if (li == 0u) {",
    ...tail.lines,
    `    out[idx] = ${tail.value};`,
    "  }",
    "}",
  ].join("\n");
  return { source, reads, workgroupSize: ROW_THREADS, threads: kernel.size * ROW_THREADS };
}
