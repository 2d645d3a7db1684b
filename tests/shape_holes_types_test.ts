// Compile-time tests for four holes the probes found: conv2d's integer options, expand to a
// lower rank, classToken on a non-[B, N, D] input, and invalid input dims. `deno check` is the
// real test: every `Expect` must hold and every `@ts-expect-error` line must be a compile error.
// Each bad call also runs and must throw `ShapeError`, so the type and runtime rules agree.
import assert from "node:assert/strict";
import { type ClassTokenCheck, type ExpandCheck, graph, ShapeError } from "../mod.ts";
import type { IsSize } from "../graph/shape_math.ts";
import type { DimsCheck, SizeFault } from "../graph/shape_types.ts";
import type { Conv2dCheck, Conv2dShape } from "../ops/conv2d.ts";
import type { Equal, Expect, IsError, IsNever, ShapeOf } from "./type_helpers.ts";
import { expectType } from "./type_helpers.ts";

/** Conv2d options on a `[B, 3, 8, 8]` input. */
type Conv<O> = Conv2dCheck<["B", 3, 8, 8], O & { out: number; kernel: number; name: "c" }>;

export type SizeRules = [
  Expect<Equal<IsSize<0>, true>>,
  Expect<Equal<IsSize<224>, true>>,
  Expect<Equal<IsSize<9007199254740991>, true>>, // Number.MAX_SAFE_INTEGER
  Expect<Equal<IsSize<-3>, false>>,
  Expect<Equal<IsSize<2.5>, false>>,
  Expect<Equal<IsSize<1e16>, false>>,
  Expect<Equal<IsSize<1e21>, false>>, // "1e+21"
  Expect<Equal<IsSize<number>, boolean>>,
  Expect<Equal<SizeFault<"stride", 0, 1>, "stride must be a positive integer, got 0">>,
  Expect<Equal<SizeFault<"stride", 2.5, 1>, "stride must be a positive integer, got 2.5">>,
  Expect<Equal<SizeFault<"padding", -1, 0>, "padding must be >= 0 and an integer, got -1">>,
  Expect<
    Equal<SizeFault<"kernel", 1e16, 1>, "kernel must be at most 2^53 - 1, got 10000000000000000">
  >,
  Expect<Equal<SizeFault<"padding", 0, 0>, "">>,
  Expect<Equal<SizeFault<"stride", number, 1>, "">>, // dynamic: run time decides
];

export type HoleMessages = [
  // 1. conv2d's integer options: out, kernel, stride >= 1; padding >= 0; all safe integers.
  Expect<
    IsError<
      Conv<{ out: 8; kernel: 2; stride: 0 }>,
      "conv2d c: stride must be a positive integer, got 0"
    >
  >,
  Expect<
    IsError<
      Conv<{ out: 8; kernel: 2; padding: -1 }>,
      "conv2d c: padding must be >= 0 and an integer, got -1"
    >
  >,
  Expect<
    IsError<
      Conv<{ out: 8; kernel: 2; padding: 0.5 }>,
      "conv2d c: padding must be >= 0 and an integer, got 0.5"
    >
  >,
  Expect<
    IsError<Conv<{ out: 8; kernel: 0 }>, "conv2d c: kernel must be a positive integer, got 0">
  >,
  Expect<
    IsError<Conv<{ out: 8; kernel: -2 }>, "conv2d c: kernel must be a positive integer, got -2">
  >,
  Expect<
    IsError<Conv<{ out: 8; kernel: 1.5 }>, "conv2d c: kernel must be a positive integer, got 1.5">
  >,
  Expect<IsError<Conv<{ out: 0; kernel: 2 }>, "conv2d c: out must be a positive integer, got 0">>,
  Expect<
    IsError<
      Conv<{ out: 1e16; kernel: 2 }>,
      "conv2d c: out must be at most 2^53 - 1, got 10000000000000000"
    >
  >,
  // The options are judged before the input, and in the runtime's order (out, kernel, ...).
  Expect<
    IsError<
      Conv2dCheck<[3, 8, 8], { out: 0; kernel: 0; name: "c" }>,
      "conv2d c: out must be a positive integer, got 0"
    >
  >,
  Expect<Equal<Conv<{ out: 8; kernel: 3; stride: 2; padding: 1 }>, unknown>>,
  Expect<Equal<Conv<{ out: number; kernel: number; stride: number; padding: number }>, unknown>>,
  Expect<Equal<IsNever<Conv<{ out: 8; kernel: 2; stride: 0 }>>, false>>,

  // 2. expand to a lower rank.
  Expect<
    IsError<
      ExpandCheck<[1, 2, 3], [2, 3]>,
      "expand: cannot expand [1, 2, 3] to [2, 3]: target rank 2 is below the input's rank 3"
    >
  >,
  Expect<
    IsError<
      ExpandCheck<["B", 1, 768], [768]>,
      "expand: cannot expand [B, 1, 768] to [768]: target rank 1 is below the input's rank 3"
    >
  >,
  Expect<Equal<ExpandCheck<[1, 768], ["B", 4, 768]>, unknown>>, // new leading dims are fine
  Expect<Equal<ExpandCheck<readonly number[], [2, 3]>, unknown>>, // dynamic rank: run time
  Expect<Equal<ExpandCheck<[1, 2, 3], readonly number[]>, unknown>>,
  Expect<Equal<IsNever<ExpandCheck<[1, 2, 3], [2, 3]>>, false>>,

  // 3. classToken needs [B, N, D] with a concrete D.
  Expect<
    IsError<
      ClassTokenCheck<["B", 3, 8, 8], "cls">,
      "classToken cls: input [B, 3, 8, 8] must be [batch, tokens, width]"
    >
  >,
  Expect<
    IsError<
      ClassTokenCheck<[4, 8], "cls">,
      "classToken cls: input [4, 8] must be [batch, tokens, width]"
    >
  >,
  Expect<
    IsError<
      ClassTokenCheck<["B", 196, "D"], "cls">,
      "classToken cls: width D of [B, 196, D] must be a concrete size"
    >
  >,
  Expect<Equal<ClassTokenCheck<["B", 196, 768], "cls">, unknown>>,
  Expect<Equal<ClassTokenCheck<[number, number, number], "cls">, unknown>>,
  Expect<Equal<ClassTokenCheck<readonly number[], "cls">, unknown>>,
  Expect<Equal<IsNever<ClassTokenCheck<["B", 3, 8, 8], "cls">>, false>>,

  // 4. input dims: sizes (safe integers >= 0) or non-empty names.
  Expect<
    IsError<
      DimsCheck<"input", "x", [-3, 4]>,
      "input x: dim -3 is not a size (a safe integer >= 0) or a name"
    >
  >,
  Expect<
    IsError<
      DimsCheck<"input", "x", ["B", 2.5]>,
      "input x: dim 2.5 is not a size (a safe integer >= 0) or a name"
    >
  >,
  Expect<
    IsError<
      DimsCheck<"input", "x", [1e16]>,
      "input x: dim 10000000000000000 is not a size (a safe integer >= 0) or a name"
    >
  >,
  Expect<
    IsError<
      DimsCheck<"input", "x", ["", 4]>,
      'input x: dim "" is not a size (a safe integer >= 0) or a name'
    >
  >,
  Expect<Equal<DimsCheck<"input", "x", ["B", 0, 9007199254740991]>, unknown>>,
  Expect<Equal<DimsCheck<"input", "x", [number, string]>, unknown>>,
  Expect<Equal<DimsCheck<"input", "x", readonly number[]>, unknown>>,
  Expect<Equal<IsNever<DimsCheck<"input", "x", [-3]>>, false>>,

  // Valid options infer the same shapes as before.
  Expect<
    Equal<
      Conv2dShape<["B", 3, 32, 32], { out: 8; kernel: 8; stride: 8; name: "p" }>,
      ["B", 8, 4, 4]
    >
  >,
];

/** Runs `build`, which holds a line that must not compile, and checks the runtime rule too. */
function rejects(build: () => unknown, op: string, reason: RegExp): void {
  assert.throws(build, (e: unknown) => {
    assert.ok(e instanceof ShapeError, `expected ShapeError, got ${e}`);
    assert.equal(e.op, op, e.message);
    assert.match(e.message, reason);
    assert.ok(!e.message.includes("\n"), e.message);
    return true;
  });
}

Deno.test("holes: valid calls still type-check and infer the same shapes", () => {
  const stride: number = 2;
  const g = graph("ok", (b) => {
    const x = b.input("image", ["B", 3, 32, 32]);
    expectType<Equal<ShapeOf<typeof x>, readonly ["B", 3, 32, 32]>>();
    const p = b.conv2d(x, { out: 8, kernel: 8, stride: 8, name: "proj" });
    const s: ["B", 8, 4, 4] = p.shape;
    expectType<Equal<ShapeOf<typeof p>, ["B", 8, 4, 4]>>();
    const same = b.conv2d(x, { out: 4, kernel: 3, padding: 1, name: "same" });
    expectType<Equal<ShapeOf<typeof same>, ["B", 4, 32, 32]>>();
    const dyn = b.conv2d(x, { out: 4, kernel: 2, stride, name: "dyn" });
    expectType<Equal<ShapeOf<typeof dyn>, ["B", 4, number, number]>>();
    const t = b.transpose(b.flatten(p, 2, 3), 1, 2);
    const k = b.classToken(t, { name: "cls" });
    expectType<Equal<ShapeOf<typeof k>, ["B", 17, 8]>>();
    const row = b.param("row", [1, 8]);
    const e = b.expand(row, ["B", 17, 8]);
    expectType<Equal<ShapeOf<typeof e>, readonly ["B", 17, 8]>>();
    const edge = b.input("edge", [0, 9007199254740991, "N"]);
    expectType<Equal<ShapeOf<typeof edge>, readonly [0, 9007199254740991, "N"]>>();
    assert.deepEqual([s, dyn.shape, edge.shape], [
      ["B", 8, 4, 4],
      ["B", 4, 16, 16],
      [0, 9007199254740991, "N"],
    ]);
    return b.add(k, e);
  });
  expectType<Equal<ShapeOf<typeof g>, ["B", 17, 8]>>();
  assert.deepEqual(g.outShape, ["B", 17, 8]);
});

Deno.test("hole 1: conv2d with invalid literal options is a compile error", () => {
  rejects(
    () =>
      graph("g", (b) => {
        const x = b.input("x", ["B", 3, 8, 8]);
        // @ts-expect-error conv2d c: stride must be a positive integer, got 0
        return b.conv2d(x, { out: 4, kernel: 2, stride: 0, name: "c" });
      }),
    "conv2d",
    /conv2d \(node c, .*stride must be a positive integer, got 0$/,
  );
  rejects(
    () =>
      graph("g", (b) => {
        const x = b.input("x", ["B", 3, 8, 8]);
        // @ts-expect-error conv2d c: stride must be a positive integer, got 1.5
        return b.conv2d(x, { out: 4, kernel: 2, stride: 1.5, name: "c" });
      }),
    "conv2d",
    /stride must be a positive integer, got 1\.5$/,
  );
  rejects(
    () =>
      graph("g", (b) => {
        const x = b.input("x", ["B", 3, 8, 8]);
        // @ts-expect-error conv2d c: padding must be >= 0 and an integer, got -1
        return b.conv2d(x, { out: 4, kernel: 2, padding: -1, name: "c" });
      }),
    "conv2d",
    /padding must be >= 0 and an integer, got -1$/,
  );
  rejects(
    () =>
      graph("g", (b) => {
        const x = b.input("x", ["B", 3, 8, 8]);
        // @ts-expect-error conv2d c: padding must be >= 0 and an integer, got 0.5
        return b.conv2d(x, { out: 4, kernel: 2, padding: 0.5, name: "c" });
      }),
    "conv2d",
    /padding must be >= 0 and an integer, got 0\.5$/,
  );
  rejects(
    () =>
      graph("g", (b) => {
        const x = b.input("x", ["B", 3, 8, 8]);
        // @ts-expect-error conv2d c: kernel must be a positive integer, got 0
        return b.conv2d(x, { out: 4, kernel: 0, name: "c" });
      }),
    "conv2d",
    /kernel must be a positive integer, got 0$/,
  );
  rejects(
    () =>
      graph("g", (b) => {
        const x = b.input("x", ["B", 3, 8, 8]);
        // @ts-expect-error conv2d c: kernel must be a positive integer, got -2
        return b.conv2d(x, { out: 4, kernel: -2, name: "c" });
      }),
    "conv2d",
    /kernel must be a positive integer, got -2$/,
  );
  rejects(
    () =>
      graph("g", (b) => {
        const x = b.input("x", ["B", 3, 8, 8]);
        // @ts-expect-error conv2d c: kernel must be a positive integer, got 2.5
        return b.conv2d(x, { out: 4, kernel: 2.5, name: "c" });
      }),
    "conv2d",
    /kernel must be a positive integer, got 2\.5$/,
  );
  rejects(
    () =>
      graph("g", (b) => {
        const x = b.input("x", ["B", 3, 8, 8]);
        // @ts-expect-error conv2d c: out must be a positive integer, got 0
        return b.conv2d(x, { out: 0, kernel: 2, name: "c" });
      }),
    "conv2d",
    /out must be a positive integer, got 0$/,
  );
});

Deno.test("hole 1: number-typed conv2d options compile and are checked at run time", () => {
  const zero: number = 0;
  const minusOne: number = -1;
  rejects(
    () =>
      graph("g", (b) => {
        const x = b.input("x", ["B", 3, 8, 8]);
        return b.conv2d(x, { out: 4, kernel: 2, stride: zero, name: "c" });
      }),
    "conv2d",
    /stride must be a positive integer, got 0$/,
  );
  rejects(
    () =>
      graph("g", (b) => {
        const x = b.input("x", ["B", 3, 8, 8]);
        return b.conv2d(x, { out: 4, kernel: 2, padding: minusOne, name: "c" });
      }),
    "conv2d",
    /padding must be >= 0 and an integer, got -1$/,
  );
  rejects(
    () =>
      graph("g", (b) => {
        const x = b.input("x", ["B", 3, 8, 8]);
        return b.conv2d(x, { out: zero, kernel: 2, name: "c" });
      }),
    "conv2d",
    /out must be a positive integer, got 0$/,
  );
});

Deno.test("hole 2: expand to a lower rank is a compile error", () => {
  rejects(
    () =>
      graph("g", (b) => {
        const x = b.input("x", [1, 2, 3]);
        // @ts-expect-error expand: cannot expand [1, 2, 3] to [2, 3]: target rank 2 is below ...
        return b.expand(x, [2, 3]);
      }),
    "expand",
    /target rank 2 is below the input's rank 3$/,
  );
  rejects(
    () =>
      graph("g", (b) => {
        const x = b.param("cls", [1, 1, 768]);
        // @ts-expect-error expand: cannot expand [1, 1, 768] to [768]: target rank 1 is below ...
        return b.expand(x, [768]);
      }),
    "expand",
    /cannot expand to \[768\]: target rank 1 is below the input's rank 3$/,
  );
  // A dynamic rank compiles; the run-time rule still rejects it.
  const target: readonly number[] = [2, 3];
  rejects(
    () => graph("g", (b) => b.expand(b.input("x", [1, 2, 3]), target)),
    "expand",
    /target rank 2 is below the input's rank 3$/,
  );
});

Deno.test("hole 3: classToken needs a [B, N, D] input", () => {
  rejects(
    () =>
      graph("g", (b) => {
        const x = b.input("x", ["B", 3, 8, 8]);
        // @ts-expect-error classToken cls: input [B, 3, 8, 8] must be [batch, tokens, width]
        return b.classToken(x, { name: "cls" });
      }),
    "classToken",
    /^classToken \(node cls, input \[B, 3, 8, 8\]\): input must be \[batch/,
  );
  rejects(
    () =>
      graph("g", (b) => {
        const x = b.input("x", ["B", 196, "D"]);
        // @ts-expect-error classToken cls: width D of [B, 196, D] must be a concrete size
        return b.classToken(x, { name: "cls" });
      }),
    "classToken",
    /width D must be a concrete size$/,
  );
});

Deno.test("hole 4: invalid input dims are compile errors", () => {
  rejects(
    // @ts-expect-error input x: dim -3 is not a size (a safe integer >= 0) or a name
    () => graph("g", (b) => b.input("x", [-3, 4])),
    "input",
    /^input \(node x, input \[-3, 4\]\): dim -3 is not a size/,
  );
  rejects(
    // @ts-expect-error input x: dim 2.5 is not a size (a safe integer >= 0) or a name
    () => graph("g", (b) => b.input("x", ["B", 2.5])),
    "input",
    /dim 2\.5 is not a size/,
  );
  rejects(
    // @ts-expect-error input x: dim 10000000000000000 is not a size ... or a name
    () => graph("g", (b) => b.input("x", [1e16])),
    "input",
    /dim 10000000000000000 is not a size/,
  );
  rejects(
    // @ts-expect-error input x: dim "" is not a size (a safe integer >= 0) or a name
    () => graph("g", (b) => b.input("x", ["", 4])),
    "input",
    /dim "" is not a size/,
  );
  // A name that reads as a number would compare equal to that size in the runtime rules.
  rejects(
    // @ts-expect-error input x: dim "3" is a number written as a name; use the size 3
    () => graph("g", (b) => b.input("x", ["3", 4])),
    "input",
    /dim "3" is a number written as a name; use the size 3$/,
  );
  // `number` dims compile; the run-time rule judges them.
  const dim: number = -3;
  rejects(() => graph("g", (b) => b.input("x", [dim, 4])), "input", /dim -3 is not a size/);
});

Deno.test("a shape that is not a tuple literal gets an honest type, never a wrong one", () => {
  const dims: number[] = [2, 3, 4];
  const fc = graph("g", (b) => b.linear(b.input("x", dims), { in: 4, out: 5, name: "fc" }));
  // Rank unknown statically: only the last dim is known (it was typed `[5]`, a wrong rank).
  expectType<Equal<ShapeOf<typeof fc>, [...(string | number)[], 5]>>();
  assert.deepEqual(fc.outShape, [2, 3, 5]);
  // A union dim is a size known only at run time: widened to `number`, so no rule reports a
  // check against one member ("last dim 144 but in_features is 144").
  const d = 196 as 144 | 196;
  const u = graph("g", (b) => b.linear(b.input("x", ["B", d]), { in: 196, out: 5, name: "fc" }));
  expectType<Equal<ShapeOf<typeof u>, ["B", 5]>>();
  // Options in a variable widen to `number`: the output says so, and the run time checks.
  const opts = { in: 3, out: 4, name: "fc" };
  const v = graph("g", (b) => b.linear(b.input("x", ["B", 3]), opts));
  expectType<Equal<ShapeOf<typeof v>, ["B", number]>>();
  rejects(
    () => graph("g", (b) => b.linear(b.input("x", ["B", 5]), opts)),
    "linear",
    /last dim 5 but in_features is 3/,
  );
});

Deno.test("input dim names are identifiers, so derived expressions read back", () => {
  rejects(
    // @ts-expect-error input x: dim "seq len" is not a name (letters, digits, _) or an expression
    () => graph("g", (b) => b.input("x", ["seq len", 4])),
    "input",
    /dim "seq len" is not a name/,
  );
  const ok = graph("g", (b) => b.input("x", ["seq_len", 4]));
  assert.deepEqual(ok.outShape, ["seq_len", 4]);
});
