// Compile-time tests for the typed builder and the two tokenizers. The assertions live in
// types, so `deno check` (which `deno test` runs first) is the real test: every `Expect` must
// hold, and every `@ts-expect-error` line must really be a compile error. Each bad call also
// runs, and must throw `ShapeError` at run time, so the two rule sets are checked together.
import assert from "node:assert/strict";
import {
  type Graph,
  graph,
  patchEmbedding,
  type PrependCheck,
  seedPipeline,
  seedTokenizer,
  ShapeError,
  type ShapeErrorType,
} from "../mod.ts";
import type { ExpandCheck } from "../graph/builder.ts";
import type { BroadcastCheck, BroadcastShape } from "../ops/broadcast.ts";
import type { ConcatCheck } from "../ops/concat.ts";
import type { ChannelCheck, Conv2dCheck } from "../ops/conv2d.ts";
import type { FlattenShape } from "../ops/flatten.ts";
import type { LinearCheck } from "../ops/linear.ts";
import type { PermuteShape, TransposeShape } from "../ops/permute.ts";
import type { ReshapeCheck } from "../ops/reshape.ts";
import type { DivisibleCheck, SeedChannelCheck } from "../models/vit_tokenizer.ts";
import type { Equal, Expect, IsError, IsNever, ShapeOf } from "./type_helpers.ts";
import { expectType } from "./type_helpers.ts";

// The message is a string type (so it prints as the expected parameter type) and not `never`.
type ReshapeMsg = "reshape: [B, 3, 196] has B*588 elements but [B, 196, 4] has B*784";
type LinearMsg = "linear e: input [B, 196, 1] has last dim 1 but in_features is 3";

export type ErrorMessages = [
  // reshape and linear: exact text, a string subtype, never `never`.
  Expect<IsError<ReshapeCheck<["B", 3, 196], ["B", 196, 4]>, ReshapeMsg>>,
  Expect<
    ReshapeCheck<["B", 3, 196], ["B", 196, 4]> extends ShapeErrorType<ReshapeMsg> ? true : false
  >,
  Expect<Equal<IsNever<ReshapeCheck<["B", 3, 196], ["B", 196, 4]>>, false>>,
  Expect<IsError<LinearCheck<["B", 196, 1], { in: 3; out: 768; name: "e" }>, LinearMsg>>,
  Expect<
    LinearCheck<["B", 196, 1], { in: 3; out: 768; name: "e" }> extends ShapeErrorType<LinearMsg>
      ? true
      : false
  >,
  Expect<Equal<IsNever<LinearCheck<["B", 196, 1], { in: 3; out: 768; name: "e" }>>, false>>,
  // Passing checks are `unknown` (no constraint on the argument).
  Expect<Equal<ReshapeCheck<["B", 3, 196], ["B", 196, 3]>, unknown>>,
  Expect<Equal<LinearCheck<["B", 196, 3], { in: 3; out: 768; name: "e" }>, unknown>>,
  // Concrete, big and symbolic counts.
  Expect<
    IsError<
      ReshapeCheck<[1, 3, 4096, 4096], [1, 4096, 4096]>,
      "reshape: [1, 3, 4096, 4096] has 50331648 elements but [1, 4096, 4096] has 16777216"
    >
  >,
  Expect<
    IsError<
      ReshapeCheck<["B", 588], ["C", 588]>,
      "reshape: [B, 588] has B*588 elements but [C, 588] has C*588"
    >
  >,
  Expect<Equal<ReshapeCheck<["B", "T", 6], ["T", "B", 2, 3]>, unknown>>,
  Expect<Equal<ReshapeCheck<[number, 6], [2, 3]>, unknown>>, // dynamic: run time decides

  // Every other rule's message.
  Expect<
    IsError<
      BroadcastCheck<["B", 197, 768], [1, 196, 768]>,
      "broadcast: dims 197 and 196 do not match in [B, 197, 768] and [1, 196, 768]"
    >
  >,
  Expect<
    IsError<
      PrependCheck<["B", 196, 768], [1, 1, 512]>,
      "prependToken: class token [1, 1, 512] has width 512 but the tokens [B, 196, 768] have width 768"
    >
  >,
  Expect<
    IsError<
      PrependCheck<["B", 196, 768], [1, 2, 768]>,
      "prependToken: class token [1, 2, 768] must be [1, 1, width]"
    >
  >,
  Expect<
    IsError<
      ConcatCheck<[1, 1, 512], [1, 196, 768], 1>,
      "concat: dim 2 differs: 512 in [1, 1, 512] vs 768 in [1, 196, 768]"
    >
  >,
  Expect<
    IsError<ConcatCheck<[1, 2], [1, 2, 3], 0>, "concat: ranks differ: [1, 2] vs [1, 2, 3]">
  >,
  Expect<
    IsError<ConcatCheck<[1, 2], [1, 2], 2>, "concat: axis 2 is out of range for [1, 2]">
  >,
  Expect<
    IsError<
      FlattenShape<["B", 3, 14, 14], 3, 2>,
      "flatten: axes 3..2 are not a valid range for [B, 3, 14, 14]"
    >
  >,
  Expect<
    IsError<
      FlattenShape<["B", 3, 14, 14], 0, 4>,
      "flatten: axes 0..4 are not a valid range for [B, 3, 14, 14]"
    >
  >,
  Expect<
    IsError<
      TransposeShape<["B", 768, 196], 1, 3>,
      "transpose: axis 3 is out of range for [B, 768, 196]"
    >
  >,
  Expect<
    IsError<
      TransposeShape<["B", 768, 196], -4, 1>,
      "transpose: axis -4 is out of range for [B, 768, 196]"
    >
  >,
  Expect<
    IsError<
      PermuteShape<["B", 768, 196], [0, 1, 1]>,
      "permute: [0, 1, 1] is not a permutation of the axes of [B, 768, 196]"
    >
  >,
  Expect<
    IsError<
      PermuteShape<["B", 768, 196], [0, 1]>,
      "permute: [0, 1] is not a permutation of the axes of [B, 768, 196]"
    >
  >,
  Expect<
    IsError<
      Conv2dCheck<[1, 3, 8, 8], { out: 3; kernel: 16; name: "c" }>,
      "conv2d c: kernel 16 is larger than the padded height 8 + 2*0"
    >
  >,
  Expect<
    IsError<
      Conv2dCheck<[1, 3, 16, 8], { out: 3; kernel: 16; padding: 2; name: "c" }>,
      "conv2d c: kernel 16 is larger than the padded width 8 + 2*2"
    >
  >,
  Expect<Equal<Conv2dCheck<[1, 3, 8, 8], { out: 3; kernel: 16; padding: 4; name: "c" }>, unknown>>,
  Expect<
    IsError<
      Conv2dCheck<[3, 8, 8], { out: 3; kernel: 2; name: "c" }>,
      "conv2d c: input [3, 8, 8] must be 4-D [N, C, H, W]"
    >
  >,
  Expect<
    IsError<
      ChannelCheck<[1, 4, 8, 8], 3, "c">,
      "conv2d c: input has 4 channels but the weight expects 3"
    >
  >,
  Expect<
    IsError<
      ExpandCheck<[2, 1, 768], ["B", 1, 768]>,
      "expand: [2, 1, 768] cannot expand to [B, 1, 768]"
    >
  >,
  Expect<Equal<ExpandCheck<[1, 1, 768], ["B", 1, 768]>, unknown>>,
  Expect<
    IsError<
      DivisibleCheck<{ height: 225; width: 224; patch: 16; embedding: 8 }, "seedTokenizer">,
      "seedTokenizer: image height 225 is not divisible by patch size 16 (strict_img_size)"
    >
  >,
  Expect<
    IsError<
      DivisibleCheck<{ height: 224; width: 230; patch: 16; embedding: 8 }, "patchEmbedding">,
      "patchEmbedding: image width 230 is not divisible by patch size 16 (strict_img_size)"
    >
  >,
  Expect<
    IsError<
      SeedChannelCheck<{ height: 32; width: 32; patch: 8; embedding: 8; channels: 1 }>,
      "seedTokenizer: linear token_embedding.embedding: tokens [B, N, 1] have last dim 1 but the seed hard-codes in_features 3; pass generalized: true"
    >
  >,
  Expect<
    Equal<
      SeedChannelCheck<
        { height: 32; width: 32; patch: 8; embedding: 8; channels: 1; generalized: true }
      >,
      unknown
    >
  >,
  // No failing rule collapses to `never` (which would accept nothing, silently).
  Expect<Equal<IsNever<BroadcastCheck<[2, 3], [4, 3]>>, false>>,
  Expect<Equal<IsNever<ConcatCheck<[1, 1, 512], [1, 196, 768], 1>>, false>>,
  Expect<Equal<IsNever<FlattenShape<[1, 2], 1, 0>>, false>>,
  Expect<Equal<IsNever<PermuteShape<[1, 2], [1, 1]>>, false>>,
  Expect<Equal<IsNever<Conv2dCheck<[1, 3, 8, 8], { out: 3; kernel: 16; name: "c" }>>, false>>,
  Expect<Equal<IsNever<ExpandCheck<[2, 3], [4, 3]>>, false>>,
  Expect<Equal<IsNever<PrependCheck<[1, 2, 3], [1, 1, 4]>>, false>>,
];

// Shape rules as plain types: big literals, negative axes, dynamic dims.
export type ShapeRules = [
  Expect<Equal<FlattenShape<[1, 3, 4096, 4096], 2, 3>, [1, 3, 16777216]>>,
  Expect<Equal<FlattenShape<[1, 3, 4096, 4096], 1, 3>, [1, 50331648]>>,
  Expect<Equal<FlattenShape<[1, 3, 4096, 4096], 0, -1>, [50331648]>>,
  Expect<Equal<FlattenShape<[1, 3, 1024, 1024], 2, 3>, [1, 3, 1048576]>>,
  Expect<Equal<FlattenShape<[1, 3, 1024, 1024], -2, -1>, [1, 3, 1048576]>>,
  Expect<Equal<FlattenShape<["B", 3, 14, 14], 2, 3>, ["B", 3, 196]>>,
  Expect<Equal<FlattenShape<["B", 3, 14, 14], 0, 1>, ["B*3", 14, 14]>>, // as the runtime prints it
  Expect<Equal<FlattenShape<[1, number, 14, 14], 1, 2>, [1, number, 14]>>,
  Expect<Equal<TransposeShape<["B", 768, 196], -1, -2>, ["B", 196, 768]>>,
  Expect<Equal<PermuteShape<[1, 3, 224, 224], [0, 2, 3, 1]>, [1, 224, 224, 3]>>,
  Expect<Equal<PermuteShape<[1, 3, 224, 224], [0, -2, -1, 1]>, [1, 224, 224, 3]>>,
  Expect<Equal<BroadcastShape<["B", 197, 768], [1, 197, 768]>, ["B", 197, 768]>>,
  Expect<Equal<BroadcastShape<[197, 768], ["B", 1, 1]>, ["B", 197, 768]>>,
];

Deno.test("seed graph: every step's inferred shape", () => {
  const g = graph("seed", (b) => {
    const x = b.input("image", ["B", 3, 224, 224]);
    expectType<Equal<ShapeOf<typeof x>, readonly ["B", 3, 224, 224]>>();
    const c = b.conv2d(x, { out: 3, kernel: 16, stride: 16, name: "patch" });
    expectType<Equal<ShapeOf<typeof c>, ["B", 3, 14, 14]>>();
    const f = b.flatten(c, 2, 3);
    expectType<Equal<ShapeOf<typeof f>, ["B", 3, 196]>>();
    const r = b.reshape(f, ["B", 196, 3]);
    expectType<Equal<ShapeOf<typeof r>, readonly ["B", 196, 3]>>();
    const l = b.linear(r, { in: 3, out: 768, name: "emb" });
    expectType<Equal<ShapeOf<typeof l>, ["B", 196, 768]>>();
    const k = b.classToken(l, { name: "cls" });
    expectType<Equal<ShapeOf<typeof k>, ["B", 197, 768]>>();
    const p = b.addParam(k, { name: "pos", shape: [1, 197, 768] });
    expectType<Equal<ShapeOf<typeof p>, ["B", 197, 768]>>();
    return p;
  });
  expectType<Equal<ShapeOf<typeof g>, ["B", 197, 768]>>();
  // Runtime shapes mirror the static ones node by node.
  assert.deepEqual(
    g.nodes.filter((n) => n.op !== "param").map((n) => n.shape),
    [
      ["B", 3, 224, 224],
      ["B", 3, 14, 14],
      ["B", 3, 196],
      ["B", 196, 3],
      ["B", 196, 768],
      ["B", 1, 768],
      ["B", 197, 768],
      ["B", 197, 768],
    ],
  );
});

Deno.test("timm standard graph: flatten(2).transpose(1, 2)", () => {
  const g = graph("timm", (b) => {
    const x = b.input("image", ["B", 3, 224, 224]);
    const c = b.conv2d(x, { out: 768, kernel: 16, stride: 16, name: "proj" });
    expectType<Equal<ShapeOf<typeof c>, ["B", 768, 14, 14]>>();
    const f = b.flatten(c, 2, 3);
    expectType<Equal<ShapeOf<typeof f>, ["B", 768, 196]>>();
    const t = b.transpose(f, 1, 2);
    expectType<Equal<ShapeOf<typeof t>, ["B", 196, 768]>>();
    const tNeg = b.transpose(f, -1, -2);
    expectType<Equal<ShapeOf<typeof tNeg>, ["B", 196, 768]>>();
    const perm = b.permute(f, [0, 2, 1]);
    expectType<Equal<ShapeOf<typeof perm>, readonly ["B", 196, 768]>>(); // mapped over the const perm
    const cls = b.param("cls_token", [1, 1, 768]);
    const k = b.prependToken(t, cls);
    expectType<Equal<ShapeOf<typeof k>, ["B", 197, 768]>>();
    const e = b.expand(cls, ["B", 1, 768]);
    const cat = b.concat(e, t, 1);
    expectType<Equal<ShapeOf<typeof cat>, readonly ["B", 197, 768]>>(); // mapped over readonly e
    const pos = b.param("pos_embed", [1, 197, 768]);
    const out = b.add(k, pos);
    expectType<Equal<ShapeOf<typeof out>, ["B", 197, 768]>>();
    return out;
  });
  expectType<Equal<ShapeOf<typeof g>, ["B", 197, 768]>>();
  assert.deepEqual(g.outShape, ["B", 197, 768]);
});

Deno.test("tokenizer outShape types at real ViT sizes", () => {
  const s224 = seedTokenizer({ height: 224, width: 224, patch: 16, embedding: 768 });
  expectType<Equal<ShapeOf<typeof s224>, ["B", 197, 768]>>();
  const p224 = patchEmbedding({ height: 224, width: 224, patch: 16, embedding: 768 });
  expectType<Equal<ShapeOf<typeof p224>, ["B", 197, 768]>>();
  // ViT-L/14: 384 is not a multiple of 14 (see the error test below); 378 = 27 * 14 gives N = 729.
  const p378 = patchEmbedding({ height: 378, width: 378, patch: 14, embedding: 1024 });
  expectType<Equal<ShapeOf<typeof p378>, ["B", 730, 1024]>>();
  const p1024 = patchEmbedding({ height: 1024, width: 1024, patch: 16, embedding: 1280 });
  expectType<Equal<ShapeOf<typeof p1024>, ["B", 4097, 1280]>>();
  const rect = patchEmbedding({ height: 224, width: 320, patch: 16, embedding: 64, batch: 8 });
  expectType<Equal<ShapeOf<typeof rect>, [8, 281, 64]>>(); // 14 * 20 + 1, literal batch
  const gray = seedTokenizer({
    height: 32,
    width: 48,
    patch: 8,
    embedding: 16,
    channels: 1,
    generalized: true,
    batch: "N",
  });
  expectType<Equal<ShapeOf<typeof gray>, ["N", 25, 16]>>();
  const sized = { height: 64, width: 64, patch: 8, embedding: 32 } as const;
  const s64 = seedTokenizer({ ...sized, channels: 3 });
  expectType<Equal<ShapeOf<typeof s64>, ["B", 65, 32]>>();
  assert.deepEqual(s224.outShape, ["B", 197, 768]);
  assert.deepEqual(p378.outShape, ["B", 730, 1024]);
  assert.deepEqual(p1024.outShape, ["B", 4097, 1280]);
  assert.deepEqual(rect.outShape, [8, 281, 64]);
  assert.deepEqual(gray.outShape, ["N", 25, 16]);
  assert.deepEqual(s64.outShape, ["B", 65, 32]);
});

Deno.test("big literal shapes, padding, negative axes, literal and dynamic dims", () => {
  const n: number = 2;
  const h: number = 40;
  graph("mixed", (b) => {
    const big = b.input("big", [1, 3, 4096, 4096]);
    const bigFlat = b.flatten(big, 2, 3);
    expectType<Equal<ShapeOf<typeof bigFlat>, [1, 3, 16777216]>>();
    const bigAll = b.flatten(big, 1, -1);
    expectType<Equal<ShapeOf<typeof bigAll>, [1, 50331648]>>();
    const mid = b.input("mid", [1, 3, 1024, 1024]);
    const midFlat = b.flatten(mid, -2, -1);
    expectType<Equal<ShapeOf<typeof midFlat>, [1, 3, 1048576]>>();
    const midTokens = b.reshape(midFlat, [1, 1048576, 3]);
    expectType<Equal<ShapeOf<typeof midTokens>, readonly [1, 1048576, 3]>>();

    // Padding: ResNet stem 7x7/2 pad 3 on 224 gives 112; 3x3/1 pad 1 keeps 32.
    const img = b.input("img", [4, 3, 224, 224]);
    const stem = b.conv2d(img, { out: 64, kernel: 7, stride: 2, padding: 3, name: "stem" });
    expectType<Equal<ShapeOf<typeof stem>, [4, 64, 112, 112]>>();
    const small = b.input("small", [1, 3, 32, 32]);
    const same = b.conv2d(small, { out: 8, kernel: 3, padding: 1, name: "same" });
    expectType<Equal<ShapeOf<typeof same>, [1, 8, 32, 32]>>();
    const tiny = b.input("tiny", [1, 3, 2, 2]);
    const padded = b.conv2d(tiny, { out: 8, kernel: 4, padding: 1, name: "padded" });
    expectType<Equal<ShapeOf<typeof padded>, [1, 8, 1, 1]>>();

    // Dynamic `number` dims pass through; only the runtime rules check them.
    const dyn = b.input("dyn", [n, 3, h, h]);
    expectType<Equal<ShapeOf<typeof dyn>, readonly [number, 3, number, number]>>();
    const dynConv = b.conv2d(dyn, { out: 16, kernel: 8, stride: 8, name: "dynconv" });
    expectType<Equal<ShapeOf<typeof dynConv>, [number, 16, number, number]>>();
    const dynTok = b.transpose(b.flatten(dynConv, 2, 3), 1, 2);
    expectType<Equal<ShapeOf<typeof dynTok>, [number, number, 16]>>();
    const dynCls = b.classToken(dynTok, { name: "dyncls" });
    expectType<Equal<ShapeOf<typeof dynCls>, [number, number, 16]>>();
    const dynLin = b.linear(dynCls, { in: 16, out: 4, name: "dynlin" });
    expectType<Equal<ShapeOf<typeof dynLin>, [number, number, 4]>>();
    return dynLin;
  });
});

Deno.test("symbolic batch flows through; literal batch too", () => {
  const g = graph("sym", (b) => {
    const x = b.input("x", ["Batch", 2, 8, 8]);
    const t = b.transpose(
      b.flatten(b.conv2d(x, { out: 5, kernel: 4, stride: 4, name: "c" }), 2, 3),
      1,
      2,
    );
    expectType<Equal<ShapeOf<typeof t>, ["Batch", 4, 5]>>();
    return b.linear(t, { in: 5, out: 6, name: "l" });
  });
  expectType<Equal<ShapeOf<typeof g>, ["Batch", 4, 6]>>();
  const lit = seedTokenizer({ height: 32, width: 32, patch: 8, embedding: 8, batch: 2 });
  expectType<Equal<ShapeOf<typeof lit>, [2, 17, 8]>>();
  assert.deepEqual(g.outShape, ["Batch", 4, 6]);
  assert.deepEqual(lit.outShape, [2, 17, 8]);
});

/** Runs `build`, which holds a line that must not compile, and checks the runtime rule too. */
function rejects(build: () => unknown, op?: string): void {
  assert.throws(build, (e: unknown) => {
    assert.ok(e instanceof ShapeError, `expected ShapeError, got ${e}`);
    if (op) assert.equal(e.op, op);
    return true;
  });
}

Deno.test("bad graphs are compile errors (and runtime ShapeErrors)", () => {
  rejects(() =>
    graph("g", (b) => {
      const f = b.flatten(b.input("x", ["B", 3, 14, 14]), 2, 3);
      // @ts-expect-error reshape: [B, 3, 196] has B*588 elements but [B, 196, 4] has B*784
      return b.reshape(f, ["B", 196, 4]);
    }), "reshape");
  rejects(() =>
    graph("g", (b) => {
      const x = b.input("x", ["B", 196, 1]);
      // @ts-expect-error linear: input [B, 196, 1] has last dim 1 but in_features is 3
      return b.linear(x, { in: 3, out: 768, name: "e" });
    }), "linear");
  rejects(() =>
    graph("g", (b) => {
      const x = b.input("x", ["B", 197, 768]);
      // @ts-expect-error broadcast: dims 197 and 196 do not match
      return b.addParam(x, { name: "pos", shape: [1, 196, 768] });
    }), "add");
  rejects(() =>
    graph("g", (b) => {
      const x = b.input("x", ["B", 196, 768]);
      const cls = b.param("cls", [1, 1, 512]);
      // @ts-expect-error prependToken: class token [1, 1, 512] has width 512 but ... 768
      return b.prependToken(x, cls);
    }), "prependToken");
  rejects(() =>
    graph("g", (b) => {
      const x = b.input("x", ["B", 3, 14, 14]);
      // @ts-expect-error flatten: axes 2..4 are not a valid range
      return b.flatten(x, 2, 4);
    }), "flatten");
  rejects(() =>
    graph("g", (b) => {
      const x = b.input("x", ["B", 3, 14, 14]);
      // @ts-expect-error flatten: axes 3..2 are not a valid range (end before start)
      return b.flatten(x, 3, 2);
    }), "flatten");
  rejects(() =>
    graph("g", (b) => {
      const x = b.input("x", ["B", 768, 196]);
      // @ts-expect-error transpose: axis 3 is out of range
      return b.transpose(x, 1, 3);
    }), "transpose");
  rejects(() =>
    graph("g", (b) => {
      const x = b.input("x", ["B", 768, 196]);
      // @ts-expect-error permute: [0, 1, 1] is not a permutation
      return b.permute(x, [0, 1, 1]);
    }), "permute");
  rejects(() =>
    graph("g", (b) => {
      const x = b.input("x", ["B", 768, 196]);
      // @ts-expect-error permute: [0, 1] is not a permutation (wrong length)
      return b.permute(x, [0, 1]);
    }), "permute");
  rejects(() =>
    graph("g", (b) => {
      const a = b.param("a", [1, 1, 512]);
      const c = b.param("c", [1, 196, 768]);
      // @ts-expect-error concat: dim 2 differs: 512 vs 768
      return b.concat(a, c, 1);
    }), "concat");
  rejects(() =>
    graph("g", (b) => {
      const x = b.input("x", [1, 3, 8, 8]);
      // @ts-expect-error conv2d c: kernel 16 is larger than the padded height 8 + 2*0
      return b.conv2d(x, { out: 3, kernel: 16, stride: 16, name: "c" });
    }), "conv2d");
  rejects(() =>
    graph("g", (b) => {
      const x = b.input("x", [3, 8, 8]);
      // @ts-expect-error conv2d c: input [3, 8, 8] must be 4-D [N, C, H, W]
      return b.conv2d(x, { out: 3, kernel: 2, name: "c" });
    }), "conv2d");
  rejects(() =>
    graph("g", (b) => {
      const x = b.param("x", [2, 1, 768]);
      // @ts-expect-error expand: [2, 1, 768] cannot expand to [B, 1, 768]
      return b.expand(x, ["B", 1, 768]);
    }), "expand");
  rejects(() =>
    graph("g", (b) => {
      const x = b.input("x", [2, 3]);
      const y = b.input("y", [4, 3]);
      // @ts-expect-error broadcast: dims 2 and 4 do not match
      return b.add(x, y);
    }), "add");
});

Deno.test("bad tokenizer configs are compile errors (and runtime ShapeErrors)", () => {
  // The seed's latent bug: its Linear hard-codes 3 in-features.
  rejects(() =>
    // @ts-expect-error seedTokenizer: ... hard-codes in_features 3; pass generalized: true
    seedTokenizer({ height: 32, width: 32, patch: 8, embedding: 8, channels: 1 }), "linear");
  rejects(() =>
    // @ts-expect-error seedTokenizer: ... hard-codes in_features 3; pass generalized: true
    seedTokenizer({ height: 32, width: 32, patch: 8, embedding: 8, channels: 4 }), "linear");
  const seedConfig = { height: 32, width: 32, patch: 8, embedding: 8, channels: 4 } as const;
  rejects(() =>
    // @ts-expect-error generalized: false is the seed, so 4 channels still fail
    seedTokenizer({ ...seedConfig, generalized: false }), "linear");
  // Image sizes the patch does not divide (timm's strict_img_size).
  rejects(() =>
    // @ts-expect-error seedTokenizer: image height 225 is not divisible by patch size 16
    seedTokenizer({ height: 225, width: 224, patch: 16, embedding: 768 }), "seedTokenizer");
  rejects(() =>
    // @ts-expect-error patchEmbedding: image height 225 is not divisible by patch size 16
    patchEmbedding({ height: 225, width: 224, patch: 16, embedding: 768 }), "patchEmbedding");
  rejects(() =>
    // @ts-expect-error patchEmbedding: image width 230 is not divisible by patch size 16
    patchEmbedding({ height: 224, width: 230, patch: 16, embedding: 768 }), "patchEmbedding");
  rejects(() =>
    // @ts-expect-error patchEmbedding: image height 384 is not divisible by patch size 14
    patchEmbedding({ height: 384, width: 384, patch: 14, embedding: 1024 }), "patchEmbedding");
});

// A type that claims the wrong shape must be rejected, or the assertions above prove nothing.
// @ts-expect-error the seed output is [B, 197, 768], not [B, 196, 768]
export type Wrong = Expect<Equal<ShapeOf<Graph<["B", 197, 768]>>, ["B", 196, 768]>>;
// @ts-expect-error readonly and mutable tuples differ under Equal
export type WrongReadonly = Expect<Equal<readonly [1, 2], [1, 2]>>;
// @ts-expect-error `number` is not the literal 197
export type WrongDynamic = Expect<Equal<[number], [197]>>;

Deno.test("preprocessing is typed end to end: image(200, 300) -> resize(224, 224) -> tokenizer", () => {
  const pipeline = seedPipeline({
    imageHeight: 200,
    imageWidth: 300,
    size: 224,
    patch: 16,
    embedding: 768,
    antialias: false,
  });
  const shape: ["B", 197, 768] = pipeline.outShape;
  assert.deepEqual(shape, ["B", 197, 768]);
  const g = graph("pre", (b) => {
    const pixels = b.input("pixels", ["B", 200, 300, 3]);
    const tensor = b.toTensor(pixels);
    const t: readonly ["B", 3, 200, 300] = tensor.shape;
    const resized = b.resize(tensor, { height: 224, width: 224, antialias: true });
    const r: readonly ["B", 3, 224, 224] = resized.shape;
    assert.deepEqual([t, r], [["B", 3, 200, 300], ["B", 3, 224, 224]]);
    return resized;
  });
  assert.deepEqual(g.outShape, ["B", 3, 224, 224]);
  assert.throws(
    () =>
      // @ts-expect-error seedPipeline: image height 225 is not divisible by patch size 16
      seedPipeline({
        imageHeight: 200,
        imageWidth: 300,
        size: 225,
        patch: 16,
        embedding: 8,
        antialias: false,
      }),
    ShapeError,
  );
  assert.throws(
    () =>
      graph("bad", (b) =>
        // @ts-expect-error to_tensor: input [B, 200, 300] must be 4-D [B, H, W, C]
        b.toTensor(b.input("pixels", ["B", 200, 300]))),
    ShapeError,
  );
});
