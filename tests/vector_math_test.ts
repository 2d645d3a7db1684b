// The WebAssembly SIMD maps behind the CPU backends' exp and GELU outputs
// (codegen/render/wasm/vector_math.ts): accuracy against Math.exp and the erf the other
// renderers spell, the IR pattern that selects them, and kernels that use them run through
// KernelPool (one thread and with a worker) against the same kernels in plain JavaScript; and
// the products' overflow check (codegen/render/wasm/finite_check.ts).
import { jsErf, kernelOf } from "./ir_helpers.ts";
import assert from "node:assert/strict";
import { lin, v, variable, type VExpr } from "../codegen/ir/expr.ts";
import type { Kernel } from "../codegen/ir/program.ts";
import { vectorMapRoot } from "../codegen/render/common.ts";
import { renderJsKernel } from "../codegen/render/js/loop_nest.ts";
import {
  VECTOR_CHUNK,
  VECTOR_PAGES,
  vectorMathModule,
} from "../codegen/render/wasm/vector_math.ts";
import { withMemory } from "../codegen/backends/wasm_plan.ts";
import { encodeModule } from "../codegen/render/wasm/encoder.ts";
import { finiteCheckFunction } from "../codegen/render/wasm/finite_check.ts";
import { KernelPool } from "../codegen/backends/js_threads.ts";

const MODULE = new WebAssembly.Module(withMemory(vectorMathModule(), false));

/** `fn` of the module over `xs`, through its own memory (at most VECTOR_CHUNK values). */
function mapped(fn: "exp" | "gelu", xs: Float32Array): Float32Array {
  const memory = new WebAssembly.Memory({ initial: VECTOR_PAGES, maximum: VECTOR_PAGES });
  const exports = new WebAssembly.Instance(MODULE, { env: { memory } }).exports as Record<
    string,
    (ptr: number, n: number) => void
  >;
  const heap = new Float32Array(memory.buffer);
  heap.set(xs);
  exports[fn](0, xs.length);
  return heap.slice(0, xs.length);
}

/** Distance in float32 steps between two finite floats of the same sign. */
function ulps(a: number, b: number): number {
  const bits = new Int32Array(new Float32Array([a, b]).buffer);
  return Math.abs(bits[0] - bits[1]);
}

Deno.test("vector math: exp is within 1 ulp of Math.exp, with IEEE overflow, underflow and NaN", () => {
  const xs = new Float32Array(VECTOR_CHUNK);
  for (let i = 0; i < xs.length; i++) xs[i] = -90 + (180 * i) / xs.length;
  const got = mapped("exp", xs);
  let worst = 0;
  xs.forEach((x, i) => {
    const want = Math.fround(Math.exp(x));
    if (want < 1.1754944e-38) {
      // Subnormal results: at most one subnormal step off.
      assert.ok(Math.abs(got[i] - want) <= 1.5e-45, `exp(${x}) = ${got[i]}, want ${want}`);
    } else if (Number.isFinite(want)) worst = Math.max(worst, ulps(got[i], want));
    else assert.equal(got[i], Infinity, `exp(${x})`);
  });
  assert.ok(worst <= 1, `worst error ${worst} ulp`);
  const edges = mapped("exp", new Float32Array([-Infinity, Infinity, NaN, 0, -200, 200, 88.7]));
  assert.deepEqual([...edges.slice(0, 2)], [0, Infinity]);
  assert.ok(Number.isNaN(edges[2]));
  assert.deepEqual([...edges.slice(3, 6)], [1, 0, Infinity]);
  assert.ok(ulps(edges[6], Math.fround(Math.exp(Math.fround(88.7)))) <= 1);
});

Deno.test("vector math: gelu equals 0.5 x (1 + erf(x / sqrt 2)) with the renderers' erf", () => {
  const xs = new Float32Array(4099); // not a multiple of 4: the tail lanes are mapped too
  for (let i = 0; i < xs.length; i++) xs[i] = -12 + (24 * i) / xs.length;
  const got = mapped("gelu", xs);
  xs.forEach((x, i) => {
    const want = 0.5 * x * (1 + jsErf(x * Math.SQRT1_2));
    const tol = 4e-7 * (1 + Math.abs(x));
    assert.ok(Math.abs(got[i] - want) <= tol, `gelu(${x}) = ${got[i]}, want ${want}`);
  });
  const edges = mapped("gelu", new Float32Array([Infinity, NaN, 0]));
  assert.equal(edges[0], Infinity);
  assert.ok(Number.isNaN(edges[1]));
  assert.equal(edges[2], 0);
});

const i0 = variable("i0");
const x = v.load("x", i0);
const gelu = (a: VExpr, c = Math.fround(Math.SQRT1_2)): VExpr =>
  v.mul(v.mul(v.const(0.5), a), v.add(v.const(1), v.unary("erf", v.mul(a, v.const(c)))));

Deno.test("vectorMapRoot: exp and the exact GELU at the root, in either operand order", () => {
  assert.deepEqual(vectorMapRoot(v.exp(x)), { fn: "exp", arg: x });
  assert.deepEqual(vectorMapRoot(gelu(x)), { fn: "gelu", arg: x });
  const swapped = v.mul(
    v.add(v.unary("erf", v.mul(v.const(Math.SQRT1_2), x)), v.const(1)),
    v.mul(x, v.const(0.5)),
  );
  assert.deepEqual(vectorMapRoot(swapped), { fn: "gelu", arg: x });
  // Not the pattern: exp below the root, another argument inside erf, another constant.
  assert.equal(vectorMapRoot(v.add(v.exp(x), v.const(1))), undefined);
  const y = v.load("y", i0);
  assert.equal(
    vectorMapRoot(v.mul(v.mul(v.const(0.5), x), v.add(v.const(1), v.unary("erf", y)))),
    undefined,
  );
  assert.equal(vectorMapRoot(gelu(x, 0.8)), undefined);
});

/** Runs `kernel` split along `splitAxis` on `threads` threads, with or without vector math. */
async function runPooled(
  kernel: Kernel,
  splitAxis: number,
  threads: number,
  vector: boolean,
  buffers: Readonly<Record<string, Float32Array>>,
): Promise<{ out: Float32Array; body: string }> {
  const r = renderJsKernel(kernel, splitAxis, [], { vectorMath: vector });
  const params = ["out", "lo", "hi", ...r.args.map((_, j) => `buf${j}`)].join(", ");
  const source = `return function (${params}) {\n${r.body}\n};`;
  const pool = new KernelPool([source], threads, { backend: "wasm", vectorMath: MODULE });
  const shared = (n: number): Float32Array => new Float32Array(new SharedArrayBuffer(4 * n));
  const out = shared(kernel.size);
  const args = r.args.map((a) => {
    const b = shared(buffers[a].length);
    b.set(buffers[a]);
    return b;
  });
  try {
    await pool.runPlan([{
      kernel: 0,
      extent: kernel.shape[splitAxis],
      parts: threads,
      out,
      args,
    }]);
  } finally {
    pool.close();
  }
  return { out: out.slice(), body: r.body };
}

Deno.test("renderJsKernel with vectorMath: softmax terms and GELU match plain JavaScript, split over threads", async () => {
  // exp(s - max) over [3, 37, 41] split along axis 1 (so each thread maps 3 separate ranges),
  // and GELU over [37, 64] split along axis 0.
  const s = new Float32Array(3 * 37 * 41).map((_, i) => Math.sin(i * 0.37) * 6);
  const m = new Float32Array(3 * 37).map((_, i) => Math.cos(i) * 2);
  const at = lin.add(
    lin.scale(variable("i0"), 37 * 41),
    lin.add(lin.scale(variable("i1"), 41), variable("i2")),
  );
  const row = lin.add(lin.scale(variable("i0"), 37), variable("i1"));
  const terms = kernelOf([3, 37, 41], v.exp(v.sub(v.load("s", at), v.load("m", row))));
  const g = new Float32Array(37 * 64).map((_, i) => Math.sin(i * 0.11) * 7);
  const gk = kernelOf(
    [37, 64],
    gelu(v.load("g", lin.add(lin.scale(variable("i0"), 64), variable("i1")))),
  );
  // Past MAP_PIECE (4096) floats a thread maps what it wrote so far, then goes on.
  const long = new Float32Array(97 * 130).map((_, i) => Math.cos(i * 0.013) * 5);
  const lk = kernelOf(
    [97, 130],
    gelu(v.load("l", lin.add(lin.scale(variable("i0"), 130), variable("i1")))),
  );
  const cases = [[terms, 1, { s, m }], [gk, 0, { g }], [lk, 0, { l: long }]] as const;
  for (const [kernel, split, buffers] of cases) {
    const plain = await runPooled(kernel, split, 1, false, buffers);
    assert.doesNotMatch(plain.body, /rt\.vmath/);
    for (const threads of [1, 2]) {
      const fast = await runPooled(kernel, split, threads, true, buffers);
      assert.match(fast.body, /rt\.vmath\.(exp|gelu)\(out, /);
      plain.out.forEach((want, i) => {
        const tol = 4e-7 * Math.max(1, Math.abs(want));
        assert.ok(Math.abs(fast.out[i] - want) <= tol, `[${i}] ${fast.out[i]} vs ${want}`);
      });
    }
  }
});

Deno.test("finite check: finds NaN and ±Infinity in the rows and columns asked, nowhere else", () => {
  const bytes = withMemory(encodeModule([finiteCheckFunction("nonfinite")], 1), false);
  const memory = new WebAssembly.Memory({ initial: 1, maximum: 1 });
  const check = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } })
    .exports.nonfinite as (ptr: number, rows: number, width: number, ld: number) => number;
  const heap = new Float32Array(memory.buffer);
  // 5 rows of 11 floats, 13 apart, from float 3 (an unaligned start); widths 1..11.
  const at = (r: number, c: number): number => 3 + r * 13 + c;
  for (const bad of [NaN, Infinity, -Infinity]) {
    for (let width = 1; width <= 11; width++) {
      for (const [r, c] of [[0, 0], [2, width - 1], [4, Math.floor(width / 2)]]) {
        heap.fill(1.5);
        heap[at(r, c)] = bad;
        assert.equal(check(4 * at(0, 0), 5, width, 13), 1, `${bad} at ${r},${c} of ${width}`);
        // Outside the block: past its width, or in the gap between rows.
        heap[at(r, c)] = 1.5;
        heap[at(r, width)] = bad;
        heap[at(r, 12)] = bad;
        assert.equal(check(4 * at(0, 0), 5, width, 13), 0, `${bad} outside ${width}`);
      }
    }
  }
  heap.fill(-0);
  heap[at(1, 1)] = 3.4e38;
  assert.equal(check(4 * at(0, 0), 5, 11, 13), 0, "large finite values are finite");
});
