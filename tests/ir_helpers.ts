// Kernels built by hand and the oracles they are checked against, shared by the IR, WebAssembly
// loop-nest and vector-math tests.
import { evalExpr, foldExpr, loadsOf, type VExpr } from "../codegen/ir/expr.ts";
import type { Kernel } from "../codegen/ir/program.ts";
import { erfSpelling } from "../codegen/render/common.ts";

/** A kernel `out[i0, ...] = expr` with the ranges of its output and reduction variables. */
export function kernelOf(shape: readonly number[], expr: VExpr): Kernel {
  const r = new Map<string, readonly [number, number]>(
    shape.map((d, a) => [`i${a}`, [0, d - 1] as const]),
  );
  foldExpr(expr, r, (acc, n) => (n.k === "reduce" ? acc.set(n.v, [0, n.extent - 1]) : acc));
  const size = shape.reduce((p, d) => p * d, 1);
  return { index: 0, out: "out", shape, size, ops: [], expr, ranges: r, reads: [...loadsOf(expr)] };
}

/** Evaluates `kernel` at every output element with `evalExpr`. */
export function runEval(
  kernel: Kernel,
  buffers: Readonly<Record<string, Float32Array>>,
): Float32Array {
  const out = new Float32Array(kernel.size);
  for (let flat = 0; flat < kernel.size; flat++) {
    const env = new Map<string, number>();
    let rest = flat;
    for (let a = kernel.shape.length - 1; a >= 0; a--) {
      env.set(`i${a}`, rest % kernel.shape[a]);
      rest = Math.floor(rest / kernel.shape[a]);
    }
    out[flat] = evalExpr(kernel.expr, env, (name) => buffers[name]);
  }
  return out;
}

/** erf as the JavaScript renderer spells it (`erfSpelling`), in float64. */
export const jsErf = new Function(
  "x",
  `return ${
    erfSpelling("x", {
      float: String,
      abs: (a) => `Math.abs(${a})`,
      exp: (a) => `Math.exp(${a})`,
      select: (c, a, b) => `(${c} ? ${a} : ${b})`,
    })
  };`,
) as (x: number) => number;
