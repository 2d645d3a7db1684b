/**
 * The gpu.js emitter: renders a lowered kernel as the source of a gpu.js kernel function,
 * specialized to its static shapes (every size is a literal, loops have constant bounds).
 *
 * gpu.js types a `const` as f32, so integer index math is kept inline: thread ids, loop
 * counters and integer literals stay i32 in WGSL, and division is written `(a / d | 0)`, which
 * gpu.js lowers to an i32 truncation. The f32 division inside is exact while `a < 2^24`; the
 * launcher (`fitsExactIndexing`) keeps every launch below that by splitting the batch.
 * @module
 */

import { bounds, children, type Cond, type Lin, type VExpr } from "../ir/expr.ts";
import {
  erfSpelling,
  floatLiteral,
  infixOps,
  type OpSpelling,
  type OverflowRescue,
  renderStatements,
  tanhSpelling,
} from "./common.ts";
import type { BufferInfo, Kernel } from "../ir/program.ts";

/**
 * A kernel ready for `gpu.createKernel`: its source, argument names and constants.
 *
 * @example
 * ```ts
 * import type { RenderedKernel } from "./gpujs.ts";
 * function argCount(k: RenderedKernel): number {
 *   return k.args.length;
 * }
 * ```
 */
export interface RenderedKernel {
  /** `function (a, b) { ... }` for gpu.js. */
  readonly source: string;
  /** Buffers passed as arguments, in order (inputs and intermediates). */
  readonly args: readonly string[];
  /** Buffers baked in as `this.constants` (params and folded constants). */
  readonly constants: readonly string[];
  /** The largest constant loop bound, for gpu.js's `loopMaxIterations`. */
  readonly maxLoop: number;
}

/**
 * Largest value the f32 division in `(a / d | 0)` handles exactly.
 *
 * @example
 * ```ts
 * import { EXACT_INDEX_LIMIT } from "./gpujs.ts";
 * EXACT_INDEX_LIMIT; // 16777216
 * ```
 */
export const EXACT_INDEX_LIMIT = 2 ** 24;

/** The largest finite float32. */
const F32_MAX = 3.4028234663852886e38;

/**
 * How gpu.js kernels recompute an overflowed reduction (webasm and webgpu sum in f32). The test
 * is `!(|x| < 2^127)`: it holds for ±Inf and NaN, and a comparison with a finite bound survives
 * compilers that assume floats are finite (llvmpipe folds `x - x != 0` to false). It also holds
 * for finite values from 2^127 up, which the recomputation returns unchanged. `finite` compares
 * with the largest float32 for the same reason.
 *
 * @example
 * ```ts
 * import { GPUJS_RESCUE } from "./gpujs.ts";
 * GPUJS_RESCUE.overflowed("acc0"); // "!(Math.abs(acc0) < 1.7014118346046923e+38)"
 * ```
 */
export const GPUJS_RESCUE: OverflowRescue = {
  overflowed: (x) => `!(Math.abs(${x}) < ${floatLiteral(2 ** 127)})`,
  finite: (x) => `${x} <= ${floatLiteral(F32_MAX)}`,
  abs: (x) => `Math.abs(${x})`,
  max: (a, b) => `Math.max(${a}, ${b})`,
  min: (a, b) => `Math.min(${a}, ${b})`,
};

const gpuSelect = (c: string, a: string, b: string): string => `(${c} ? ${a} : ${b})`;
const math = (name: string) => (a: string): string => `Math.${name}(${a})`;

/**
 * How a gpu.js kernel spells every op of the IR (its supported `Math` functions).
 *
 * @example
 * ```ts
 * import { GPUJS_OPS } from "./gpujs.ts";
 * GPUJS_OPS.unary.exp("x"); // "Math.exp(x)"
 * ```
 */
export const GPUJS_OPS: OpSpelling = {
  unary: {
    neg: (a) => `(-${a})`,
    exp: math("exp"),
    log: math("log"),
    sqrt: math("sqrt"),
    rsqrt: (a) => `(1.0 / Math.sqrt(${a}))`,
    erf: (a) =>
      erfSpelling(a, {
        float: floatLiteral,
        abs: math("abs"),
        exp: math("exp"),
        select: gpuSelect,
      }),
    // gpu.js's own tanh is NaN past |x| ~ 44 in f32 on some targets.
    tanh: (a) => tanhSpelling(a, floatLiteral, math("exp")),
    abs: math("abs"),
    recip: (a) => `(1.0 / ${a})`,
  },
  binary: {
    ...infixOps((c) => `(${c} ? 1.0 : 0.0)`, "=="),
    max: (a, b) => `Math.max(${a}, ${b})`,
    min: (a, b) => `Math.min(${a}, ${b})`,
  },
  where: (c, a, b) => gpuSelect(`${c} != 0.0`, a, b),
  lowest: floatLiteral(-F32_MAX),
};

/**
 * Renders one kernel.
 *
 * @example
 * ```ts
 * import { renderKernel } from "./gpujs.ts";
 * typeof renderKernel; // "function"
 * ```
 */
export function renderKernel(
  kernel: Kernel,
  buffers: ReadonlyMap<string, BufferInfo>,
): RenderedKernel {
  const isConstant = (name: string): boolean => {
    const kind = buffers.get(name)?.kind;
    return kind === "param" || kind === "const";
  };
  const args = kernel.reads.filter((b) => !isConstant(b)).sort();
  const constants = kernel.reads.filter(isConstant).sort();
  const strides: number[] = [];
  let stride = 1;
  for (let i = kernel.shape.length - 1; i >= 0; i--) {
    strides[i] = stride;
    stride *= kernel.shape[i];
  }
  const outputAxis = (name: string): string | undefined => {
    const m = /^i(\d+)$/.exec(name);
    if (!m) return undefined;
    const axis = Number(m[1]);
    const q = strides[axis] === 1 ? "this.thread.x" : `(this.thread.x / ${strides[axis]} | 0)`;
    return axis === 0 ? q : modText(q, kernel.shape[axis]);
  };
  const { lines: body, maxLoop } = renderStatements(kernel, {
    variable: (name) => outputAxis(name) ?? name,
    div: (x, d) => `(${x} / ${d} | 0)`,
    mod: modText,
    load: (buf, index) => `${isConstant(buf) ? `this.constants.${buf}` : buf}[${index}]`,
    float: floatLiteral,
    select: gpuSelect,
    accumulator: (name, init) => `let ${name} = ${init};`,
    bind: (name, value) => `const ${name} = ${value};`,
    ops: GPUJS_OPS,
    loop: (v, extent) => `for (let ${v} = 0; ${v} < ${extent}; ${v}++) {`,
    store: (value) => `return ${value};`,
    elseBranch: false,
    rescue: GPUJS_RESCUE,
  }, "  ");
  const source = [`function (${args.join(", ")}) {`, ...body, "}"].join("\n");
  return { source, args, constants, maxLoop };
}

function modText(x: string, d: number): string {
  return `(${x} - (${x} / ${d} | 0) * ${d})`;
}

/**
 * Whether every integer division in a kernel (output index decomposition and folded views) has
 * a numerator below `EXACT_INDEX_LIMIT`, where the GPU backends' f32 division is exact.
 *
 * @example
 * ```ts
 * import { fitsExactIndexing } from "./gpujs.ts";
 * typeof fitsExactIndexing; // "function"
 * ```
 */
export function fitsExactIndexing(kernel: Kernel): boolean {
  if (kernel.size > EXACT_INDEX_LIMIT) return false;
  let ok = true;
  const checkLin = (x: Lin): void => {
    for (const t of x.terms) {
      if (t.atom.k === "var") continue;
      if (bounds(t.atom.x, kernel.ranges)[1] >= EXACT_INDEX_LIMIT) ok = false;
      checkLin(t.atom.x);
    }
  };
  const checkCond = (c: Cond): void => {
    if (c.k === "lt" || c.k === "ge") checkLin(c.x);
    else if (c.k === "and") {
      checkCond(c.a);
      checkCond(c.b);
    }
  };
  const walk = (e: VExpr): void => {
    if (e.k === "load") checkLin(e.index);
    else if (e.k === "select") checkCond(e.cond);
    children(e).forEach(walk);
  };
  walk(kernel.expr);
  return ok;
}
