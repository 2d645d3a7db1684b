// Float32 overflow on every backend. Each op's value is the float32 rounding of its exact value
// (what the reference's float64 sums give): a result beyond float32's range is ±Inf with the
// sign of the exact value, a sum whose products overflow but whose exact value fits is that
// value (3e38 * 4 + 3e38 * -4 is 0, not Inf - Inf = NaN), and an Inf that is already there
// propagates by IEEE rules. Inputs stay finite: run() refuses NaN and infinities on purpose.
import assert from "node:assert/strict";
import { type BackendName, compile, type Graph, graph, type TensorData } from "../mod.ts";
import { probeWebGpu } from "../codegen/backends/webgpu_device.ts";

const adapter = await probeWebGpu();
if (!adapter) console.warn("overflow_test: no WebGPU adapter here; webgpu and wgsl are skipped");

const BACKENDS: { name: BackendName; ignore: boolean }[] = [
  { name: "reference", ignore: false },
  { name: "js", ignore: false },
  { name: "wasm", ignore: false },
  { name: "cpu", ignore: false },
  { name: "webasm", ignore: false },
  { name: "webgpu", ignore: adapter === null },
  { name: "wgsl", ignore: adapter === null },
];

const BIG = 3e38;

interface Case {
  readonly name: string;
  readonly graph: Graph;
  readonly weights: Record<string, number[] | Float32Array>;
  readonly inputs: Record<string, TensorData>;
  /** Expected output values; a finite one within a relative 1e-6. */
  readonly expected: readonly number[];
  /**
   * Backends whose kernel here keeps f32 sums (IEEE per addition, so NaN or ±Inf where the exact
   * value is finite): wgsl's loop nests have no rescue (README: limits).
   */
  readonly float32Sums?: readonly string[];
}

const tensor = (shape: number[], data: number[] | Float32Array): TensorData => ({
  shape,
  data: Float32Array.from(data),
});

// A Linear over `rows` rows of 3e38 with weight rows that sum to -Inf, 0, +Inf and 3e38 (the
// last through a partial sum of 6e38); other columns are zero. With k >= 16 the wasm backend
// runs it on its micro-kernel and wgsl on a product shader chosen by the width.
function contraction(k: number, n: number, rows: number): Case {
  const w = new Float32Array(n * k);
  w.set([4, 4, -4, -4, -4], 0);
  w.set([4, -4], k);
  w.set([4, -2], 2 * k);
  w.set([1, 1, -1], 3 * k);
  const row = [-Infinity, 0, Infinity, Math.fround(BIG), ...new Array(n - 4).fill(0)];
  return {
    name: `a ${rows}x${k} by ${k}x${n} product of opposite overflowing terms is exact`,
    graph: graph(
      "product",
      (b) => b.linear(b.input("x", [rows, k]), { in: k, out: n, name: "fc" }),
    ),
    weights: { "fc.weight": w, "fc.bias": new Float32Array(n) },
    inputs: { x: tensor([rows, k], new Float32Array(rows * k).fill(BIG)) },
    expected: Array.from({ length: rows }, () => row).flat(),
    // wgsl runs >= 32 columns on its tiled GEMM, <= 16 with k >= 256 split, else a loop nest.
    float32Sums: n < 32 && !(n <= 16 && k >= 256) ? ["wgsl"] : [],
  };
}

const CASES: Case[] = [
  {
    name: "3e38 * 4 through a Linear is +Inf, -3e38 * 4 is -Inf",
    graph: graph("linear", (b) => b.linear(b.input("x", [2, 1]), { in: 1, out: 2, name: "fc" })),
    weights: { "fc.weight": [4, -4], "fc.bias": [0, 0] },
    inputs: { x: tensor([2, 1], [BIG, -BIG]) },
    expected: [Infinity, -Infinity, -Infinity, Infinity],
  },
  {
    name: "3e38 + 3e38 is +Inf",
    graph: graph("add", (b) => b.addParam(b.input("x", [1, 4]), { name: "p", shape: [1, 4] })),
    weights: { p: [BIG, -BIG, -BIG, 1] },
    inputs: { x: tensor([1, 4], [BIG, -BIG, BIG, 1]) },
    expected: [Infinity, -Infinity, 0, 2],
  },
  {
    name: "3e38 * 4 + 3e38 * -2 is +Inf and 3e38 * 4 + 3e38 * -4 is 0, not NaN",
    graph: graph("pairs", (b) => b.linear(b.input("x", [1, 2]), { in: 2, out: 3, name: "fc" })),
    weights: { "fc.weight": [4, -2, 4, -4, -4, 2], "fc.bias": [0, 0, 0] },
    inputs: { x: tensor([1, 2], [BIG, BIG]) },
    expected: [Infinity, 0, -Infinity],
    float32Sums: ["wgsl"],
  },
  {
    name: "a zero-padded conv sums overflowing taps exactly",
    graph: graph(
      "conv",
      (b) => b.conv2d(b.input("x", [1, 1, 1, 2]), { out: 1, kernel: 2, padding: 1, name: "c" }),
    ),
    weights: { "c.weight": [4, -4, 4, -2], "c.bias": [0] },
    inputs: { x: tensor([1, 1, 1, 2], [BIG, BIG]) },
    expected: [-Infinity, Infinity, Infinity, -Infinity, 0, Infinity],
    float32Sums: ["wgsl"],
  },
  {
    // bias + pos is folded at compile time; -2e38 + -2e38 must not become a -Inf constant.
    name: "bias + positional embedding past float32 leaves a finite output finite",
    graph: graph(
      "fold",
      (b) =>
        b.addParam(b.linear(b.input("x", [1, 2, 1]), { in: 1, out: 1, name: "fc" }), {
          name: "pos",
          shape: [1, 2, 1],
        }),
    ),
    weights: { "fc.weight": [1], "fc.bias": [-2e38], pos: [-2e38, 1e38] },
    inputs: { x: tensor([1, 2, 1], [1e38, 2e38]) },
    expected: [-3e38, 1e38],
  },
  {
    name: "an Inf from an earlier kernel propagates: Inf + Inf is Inf, Inf - Inf is NaN",
    graph: graph("chain", (b) => {
      const conv = b.conv2d(b.input("x", [1, 1, 1, 2]), { out: 1, kernel: 1, name: "c" });
      return b.linear(b.flatten(conv, 1, 3), { in: 2, out: 2, name: "fc" });
    }),
    weights: {
      "c.weight": [4],
      "c.bias": [0],
      "fc.weight": [1, 1, 1, -1],
      "fc.bias": [0, 0],
    },
    inputs: { x: tensor([1, 1, 1, 2], [BIG, BIG]) },
    expected: [Infinity, NaN],
  },
  contraction(32, 16, 10),
  contraction(32, 32, 10),
  contraction(256, 4, 10),
];

function weightsOf(c: Case): Map<string, TensorData> {
  const shapes = new Map(c.graph.params().map((p) => [p.attrs.name, p.shape as number[]]));
  return new Map(
    Object.entries(c.weights).map(([name, data]) => [
      name,
      tensor(shapes.get(name) as number[], data),
    ]),
  );
}

function show(x: number): string {
  return Number.isFinite(x) ? x.toExponential(3) : String(x);
}

function check(actual: Float32Array, expected: readonly number[]): void {
  assert.equal(actual.length, expected.length);
  const bad: string[] = [];
  expected.forEach((e, i) => {
    const a = actual[i];
    const ok = Number.isFinite(e)
      ? Math.abs(a - e) <= 1e-6 * Math.max(1, Math.abs(e))
      : Object.is(a, e) || (Number.isNaN(e) && Number.isNaN(a));
    if (!ok) bad.push(`[${i}] ${show(a)} (expected ${show(e)})`);
  });
  assert.deepEqual(bad, [], bad.join(", "));
}

for (const { name: backend, ignore } of BACKENDS) {
  Deno.test({
    name: `overflow: ${backend} gives IEEE float32 results for values past float32's range`,
    ignore,
    async fn(t) {
      for (const c of CASES) {
        const float32 = c.float32Sums?.includes(backend) ?? false;
        const name = float32 ? `${c.name} (not on ${backend}'s loop nests: f32 sums)` : c.name;
        await t.step({
          name,
          ignore: float32,
          fn: async () => {
            const warnings: string[] = [];
            const model = await compile(c.graph, {
              backend,
              weights: weightsOf(c),
              threads: 1,
              // A small GEMM tile: llvmpipe compiles the default 128x128 one in minutes, and the
              // rescue code is the same for every tile.
              ...(backend === "wgsl" ? { gemmTile: { bm: 32, bn: 32, bk: 4, tm: 4, tn: 4 } } : {}),
              onWarning: (m) => warnings.push(m),
            });
            try {
              const { output } = await model.run(c.inputs);
              assert.equal(model.backend, backend, warnings.join("; "));
              check(output.data, c.expected);
            } finally {
              model.dispose?.();
            }
          },
        });
      }
    },
  });
}
