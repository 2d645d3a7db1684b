// Compile-time tests for the encoder ops (layerNorm, softmax, gelu, matmul, mul/sub/div and add
// with numbers, select, slice, mean, negative transpose/permute axes). `deno check` is the real
// test: every `Expect` must hold and every `@ts-expect-error` line must be a compile error. Each
// bad call also runs and must throw `ShapeError`, so the type and runtime rules agree.
import assert from "node:assert/strict";
import { graph, ShapeError, type Tensor, type TShape } from "../mod.ts";
import type { BinaryCheck } from "../ops/binary.ts";
import type { GeluCheck } from "../ops/gelu.ts";
import type { LayerNormCheck } from "../ops/layer_norm.ts";
import type { MatmulCheck, MatmulShape } from "../ops/matmul.ts";
import type { MeanShape } from "../ops/mean.ts";
import type { SelectShape } from "../ops/select.ts";
import type { SliceShape } from "../ops/slice.ts";
import type { SoftmaxCheck } from "../ops/softmax.ts";
import type { Equal, Expect, IsError, ShapeOf } from "./type_helpers.ts";
import { expectType } from "./type_helpers.ts";

export type EncoderErrorMessages = [
  Expect<
    IsError<
      LayerNormCheck<["B", "D"], { name: "ln" }>,
      "layerNorm ln: last dim D of [B, D] must be a concrete size"
    >
  >,
  Expect<
    IsError<LayerNormCheck<[], { name: "ln" }>, "layerNorm ln: input must have at least one dim">
  >,
  Expect<Equal<LayerNormCheck<["B", 197, 768], { name: "ln" }>, unknown>>,
  Expect<
    IsError<SoftmaxCheck<["B", 197, 768], 3>, "softmax: axis 3 is out of range for [B, 197, 768]">
  >,
  Expect<Equal<SoftmaxCheck<["B", 197, 768], -3>, unknown>>,
  Expect<
    IsError<
      GeluCheck<{ approximate: "fast" }>,
      'gelu: approximate must be "none" or "tanh", got "fast"'
    >
  >,
  Expect<Equal<GeluCheck<{ approximate: "tanh" }>, unknown>>,
  Expect<
    IsError<
      MatmulCheck<[2, 5, 8], [7, 6]>,
      "matmul: inner dims differ: 8 in [2, 5, 8] vs 7 in [7, 6]"
    >
  >,
  Expect<
    IsError<
      MatmulCheck<[2, 5, 8], [3, 8, 6]>,
      "matmul: batch dims [2] of [2, 5, 8] and [3] of [3, 8, 6] do not broadcast"
    >
  >,
  Expect<IsError<MatmulCheck<[4], [5]>, "matmul: inner dims differ: 4 in [4] vs 5 in [5]">>,
  Expect<
    IsError<MatmulCheck<[], [5]>, "matmul: operands must have at least one dim, got []">
  >,
  Expect<
    IsError<
      BinaryCheck<[2, 3], Tensor<[4, 3]>>,
      "broadcast: dims 2 and 4 do not match in [2, 3] and [4, 3]"
    >
  >,
  Expect<Equal<BinaryCheck<[2, 3], number>, unknown>>,
  Expect<
    IsError<SelectShape<["B", 197], 2, 0>, "select: axis 2 is out of range for [B, 197]">
  >,
  Expect<
    IsError<
      SelectShape<["B", 197], 1, 197>,
      "select: index 197 is out of range for dim 197 (axis 1) of [B, 197]"
    >
  >,
  Expect<
    IsError<
      SliceShape<["B", 197], 0, 0, 1>,
      "slice: axis 0 of [B, 197] has symbolic size B; slice a concrete axis"
    >
  >,
  Expect<IsError<SliceShape<["B", 197], -3, 0, 1>, "slice: axis -3 is out of range for [B, 197]">>,
  Expect<IsError<MeanShape<["B", 197], 2, false>, "mean: axis 2 is out of range for [B, 197]">>,
];

export type EncoderShapes = [
  Expect<Equal<MatmulShape<["B", 12, 197, 64], ["B", 12, 64, 197]>, ["B", 12, 197, 197]>>,
  Expect<Equal<MatmulShape<[2, 3, 5, 8], [8, 4]>, [2, 3, 5, 4]>>,
  Expect<Equal<MatmulShape<[3, 1, 5, 8], [4, 8, 6]>, [3, 4, 5, 6]>>,
  Expect<Equal<MatmulShape<[8], [8]>, []>>,
  Expect<Equal<MatmulShape<[8], [2, 8, 6]>, [2, 6]>>,
  Expect<Equal<MatmulShape<[2, 5, 8], [8]>, [2, 5]>>,
  Expect<Equal<MatmulShape<number[], [8]>, readonly (string | number)[]>>,
  Expect<Equal<SliceShape<["B", 197, 768], 1, -5, 500>, ["B", 5, 768]>>,
  Expect<Equal<SliceShape<["B", 197, 768], 1, 10, 2>, ["B", 0, 768]>>,
  Expect<Equal<SliceShape<["B", 197, 768], -1, 0, -1>, ["B", 197, 767]>>,
  Expect<Equal<SliceShape<["B", 197, 768], 1, 1, undefined>, ["B", 196, 768]>>,
  Expect<Equal<SliceShape<["B", 197, 768], 1, number, 3>, ["B", number, 768]>>,
  Expect<Equal<MeanShape<["B", 197, 768], -1, true>, ["B", 197, 1]>>,
  Expect<Equal<MeanShape<["B", 197, 768], 1, undefined>, ["B", 768]>>,
  Expect<Equal<SelectShape<["B", 197, 768], 1, -1>, ["B", 768]>>,
];

Deno.test("encoder ops keep shapes and symbolic dims in the types", () => {
  const g = graph("encoder-ops", (b) => {
    const x = b.input("x", ["B", 197, 64]);
    const ln = b.layerNorm(x, { name: "norm1", eps: 1e-6 });
    expectType<Equal<ShapeOf<typeof ln>, readonly ["B", 197, 64]>>();
    const heads = b.permute(b.reshape(ln, ["B", 197, 4, 16]), [0, -2, 1, -1]);
    expectType<Equal<ShapeOf<typeof heads>, readonly ["B", 4, 197, 16]>>();
    const kt = b.transpose(heads, -2, -1);
    expectType<Equal<ShapeOf<typeof kt>, readonly ["B", 4, 16, 197]>>();
    const scores = b.mul(b.matmul(heads, kt), 0.25);
    expectType<Equal<ShapeOf<typeof scores>, ["B", 4, 197, 197]>>();
    const attn = b.softmax(scores, -1);
    expectType<Equal<ShapeOf<typeof attn>, ["B", 4, 197, 197]>>();
    const ctx = b.matmul(attn, heads);
    expectType<Equal<ShapeOf<typeof ctx>, ["B", 4, 197, 16]>>();
    const w = b.param("proj", [16, 8]);
    const proj = b.matmul(ctx, w);
    expectType<Equal<ShapeOf<typeof proj>, ["B", 4, 197, 8]>>();
    const act = b.gelu(b.gelu(proj), { approximate: "tanh" });
    expectType<Equal<ShapeOf<typeof act>, ["B", 4, 197, 8]>>();
    const centered = b.div(b.sub(act, b.mean(act, -1, { keepdim: true })), 2);
    expectType<Equal<ShapeOf<typeof centered>, ["B", 4, 197, 8]>>();
    const cls = b.select(centered, 2, 0);
    expectType<Equal<ShapeOf<typeof cls>, ["B", 4, 8]>>();
    const patches = b.slice(centered, 2, 1);
    expectType<Equal<ShapeOf<typeof patches>, ["B", 4, 196, 8]>>();
    const pooled = b.mean(patches, 2);
    expectType<Equal<ShapeOf<typeof pooled>, ["B", 4, 8]>>();
    const sum = b.add(b.add(pooled, cls), 1);
    expectType<Equal<ShapeOf<typeof sum>, ["B", 4, 8]>>();
    return b.mul(sum, b.param("scale", [8]));
  });
  expectType<Equal<ShapeOf<typeof g>, ["B", 4, 8]>>();
  assert.deepEqual(g.outShape, ["B", 4, 8]);
});

/** Runs `build`, which holds a line that must not compile, and checks the runtime rule too. */
function rejects(build: () => unknown, op: string): void {
  assert.throws(build, (e: unknown) => {
    assert.ok(e instanceof ShapeError, `expected ShapeError, got ${e}`);
    assert.equal(e.op, op);
    return true;
  });
}

Deno.test("bad encoder op calls are compile errors (and runtime ShapeErrors)", () => {
  rejects(() =>
    graph("g", (b) => {
      const x = b.input("x", ["B", "D"]);
      // @ts-expect-error layerNorm ln: last dim D of [B, D] must be a concrete size
      return b.layerNorm(x, { name: "ln" });
    }), "layerNorm");
  rejects(() =>
    graph("g", (b) => {
      const x = b.input("x", ["B", 7]);
      // @ts-expect-error softmax: axis 2 is out of range for [B, 7]
      return b.softmax(x, 2);
    }), "softmax");
  rejects(() =>
    graph("g", (b) => {
      const x = b.input("x", ["B", 7]);
      // @ts-expect-error softmax: axis -3 is out of range for [B, 7]
      return b.softmax(x, -3);
    }), "softmax");
  rejects(() =>
    graph("g", (b) => {
      const x = b.input("x", ["B", 7]);
      // @ts-expect-error gelu: approximate must be "none" or "tanh", got "fast"
      return b.gelu(x, { approximate: "fast" });
    }), "gelu");
  rejects(() =>
    graph("g", (b) => {
      const x = b.input("x", ["B", 5, 8]);
      // @ts-expect-error matmul: inner dims differ: 8 in [B, 5, 8] vs 7 in [7, 6]
      return b.matmul(x, b.param("w", [7, 6]));
    }), "matmul");
  rejects(() =>
    graph("g", (b) => {
      const x = b.input("x", [2, 5, 8]);
      // @ts-expect-error matmul: batch dims [2] of [2, 5, 8] and [3] of [3, 8, 6] do not broadcast
      return b.matmul(x, b.input("y", [3, 8, 6]));
    }), "matmul");
  rejects(() =>
    graph("g", (b) => {
      const x = b.input("x", [4]);
      // @ts-expect-error matmul: inner dims differ: 4 in [4] vs 5 in [5]
      return b.matmul(x, b.input("y", [5]));
    }), "matmul");
  for (const op of ["mul", "sub", "div", "add"] as const) {
    rejects(() =>
      graph("g", (b) => {
        const x = b.input("x", [2, 3]);
        // @ts-expect-error broadcast: dims 2 and 4 do not match in [2, 3] and [4, 3]
        return b[op](x, b.input("y", [4, 3]));
      }), op);
  }
  rejects(() =>
    graph("g", (b) => {
      const x = b.input("x", ["B", 197]);
      // @ts-expect-error select: axis 2 is out of range for [B, 197]
      return b.select(x, 2, 0);
    }), "select");
  rejects(() =>
    graph("g", (b) => {
      const x = b.input("x", ["B", 197]);
      // @ts-expect-error select: index -198 is out of range for dim 197 (axis 1) of [B, 197]
      return b.select(x, -1, -198);
    }), "select");
  rejects(() =>
    graph("g", (b) => {
      const x = b.input("x", ["B", 197]);
      // @ts-expect-error slice: axis 0 of [B, 197] has symbolic size B; slice a concrete axis
      return b.slice(x, 0, 0, 1);
    }), "slice");
  rejects(() =>
    graph("g", (b) => {
      const x = b.input("x", ["B", 197]);
      // @ts-expect-error slice: axis 2 is out of range for [B, 197]
      return b.slice(x, 2, 0);
    }), "slice");
  rejects(() =>
    graph("g", (b) => {
      const x = b.input("x", ["B", 197]);
      // @ts-expect-error mean: axis -3 is out of range for [B, 197]
      return b.mean(x, -3);
    }), "mean");
  rejects(() =>
    graph("g", (b) => {
      const x = b.input("x", ["B", 197, 8]);
      // @ts-expect-error transpose: axis -4 is out of range for [B, 197, 8]
      return b.transpose(x, 0, -4);
    }), "transpose");
  rejects(() =>
    graph("g", (b) => {
      const x = b.input("x", ["B", 197, 8]);
      // @ts-expect-error permute: [0, -1, 2] is not a permutation of the axes of [B, 197, 8]
      return b.permute(x, [0, -1, 2]);
    }), "permute");
  // Found by tests/type_rules_agree_test.ts: these type-checked and then threw.
  rejects(() =>
    graph("g", (b) => {
      const x = b.input("x", ["B", 197]);
      // @ts-expect-error slice: start 0.5 and end undefined must be integers
      return b.slice(x, 1, 0.5);
    }), "slice");
  rejects(() =>
    graph("g", (b) => {
      const x = b.input("x", [2, "N"]);
      // @ts-expect-error select: index 0.5 is not an integer
      return b.select(x, 1, 0.5);
    }), "select");
  rejects(() =>
    graph("g", (b) => {
      const x = b.input("x", ["B", 8]);
      // @ts-expect-error layerNorm ln: eps must be a finite number >= 0, got -1
      return b.layerNorm(x, { name: "ln", eps: -1 });
    }), "layerNorm");
});

export type DynamicAxes = [
  Expect<Equal<SoftmaxCheck<["B", 7], number>, unknown>>,
  Expect<Equal<SoftmaxCheck<["B", 7], 1 | -1>, unknown>>,
  Expect<Equal<MeanShape<["B", 7], number, false>, TShape>>,
  Expect<Equal<SelectShape<["B", 7], number, 0>, TShape>>,
  Expect<Equal<SliceShape<["B", 7], number, 0, 1>, TShape>>,
];
