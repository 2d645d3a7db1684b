// Compile-time tests for reshape's holes: `-1` is inferred (torch semantics), fractions,
// negatives other than -1 and two `-1`s are compile errors, a `number` dim keeps the count
// check on for the literal dims, and element counts are exact past 2^53. `deno check` is the
// real test: every `Expect` must hold and every `@ts-expect-error` line must be a compile error.
// Each bad call also runs and must throw `ShapeError` with the same reason, so the type and
// runtime rules agree.
import assert from "node:assert/strict";
import { graph, ShapeError } from "../mod.ts";
import type { ReshapeCheck, ReshapeRule, ReshapeShape } from "../ops/reshape.ts";
import type { CompareDigits, DivModDigits, ProductDigits } from "../graph/shape_math.ts";
import type { Equal, Expect, IsError, IsNever, ShapeOf } from "./type_helpers.ts";
import { expectType } from "./type_helpers.ts";

export type DigitRules = [
  Expect<Equal<ProductDigits<[4294967296, 4294967296]>, "18446744073709551616">>,
  Expect<Equal<ProductDigits<[]>, "1">>,
  Expect<Equal<ProductDigits<[7, 0, 9]>, "0">>,
  Expect<Equal<ProductDigits<[2, number]>, string>>,
  Expect<Equal<ProductDigits<[2, -1]>, string>>,
  Expect<Equal<ProductDigits<[2, 2.5]>, string>>,
  Expect<Equal<ProductDigits<[2, 1 | 2]>, string>>,
  Expect<Equal<ProductDigits<number[]>, string>>,
  Expect<Equal<CompareDigits<"9007199254740993", "9007199254740994">, "<">>,
  Expect<Equal<CompareDigits<"18446744073709551616", "18446744073709551616">, "=">>,
  Expect<Equal<DivModDigits<"18446744073709551616", "3">, ["6148914691236517205", "1"]>>,
  Expect<Equal<DivModDigits<"302592", "768">, ["394", "0"]>>,
  Expect<Equal<DivModDigits<"0", "5">, ["0", "0"]>>,
  Expect<Equal<IsNever<DivModDigits<"5", "0">>, true>>,
];

export type InferredShapes = [
  // One -1, inferred from the element count.
  Expect<Equal<ReshapeRule<[2, 197, 768], [2, -1, 12, 64]>, [2, 197, 12, 64]>>,
  Expect<Equal<ReshapeRule<[2, 197, 768], [-1]>, [302592]>>,
  Expect<Equal<ReshapeRule<[6], [-1, 1, 1]>, [6, 1, 1]>>,
  // Symbols cancel: B on both sides leaves 197*768 / 64.
  Expect<Equal<ReshapeRule<["B", 197, 768], ["B", -1, 64]>, ["B", 2364, 64]>>,
  Expect<Equal<ReshapeRule<["B", 197, 768], ["B", -1, 12, 64]>, ["B", 197, 12, 64]>>,
  Expect<Equal<ReshapeRule<["B", "T", 6], ["T", -1, "B"]>, ["T", 6, "B"]>>,
  // A lone leftover symbol is inferred exactly.
  Expect<Equal<ReshapeRule<["B", 197, 768], [-1, 197, 768]>, ["B", 197, 768]>>,
  // A leftover symbolic product (B*197 at run time) is `number`, never a wrong literal.
  Expect<Equal<ReshapeRule<["B", 197, 768], [-1, 768]>, [number, 768]>>,
  Expect<Equal<ReshapeRule<["B", "T", 6], [-1, 6]>, [number, 6]>>,
  // Run-time dims on either side: `number` for the -1.
  Expect<Equal<ReshapeRule<[number, 768], [-1, 12, 64]>, [number, 12, 64]>>,
  Expect<Equal<ReshapeRule<[2, 768], [number, -1]>, [number, number]>>,
  Expect<Equal<ReshapeRule<readonly number[], [-1, 4]>, [number, 4]>>,
  Expect<Equal<ReshapeRule<readonly number[], [3, 4]>, [3, 4]>>,
  // Zero elements: -1 is 0 when the other dims are not.
  Expect<Equal<ReshapeRule<[0, 5], [-1, 5]>, [0, 5]>>,
  Expect<Equal<ReshapeRule<["B", 0], [-1, 7]>, [0, 7]>>,
  // Big counts, exactly.
  Expect<
    Equal<
      ReshapeRule<[4294967296, 4294967296], [-1, 4294967296]>,
      [4294967296, 4294967296]
    >
  >,
  // No -1: the target as given; readonly stays readonly.
  Expect<Equal<ReshapeRule<["B", 3, 196], readonly ["B", 196, 3]>, readonly ["B", 196, 3]>>,
  Expect<Equal<ReshapeShape<["B", 197, 768], readonly ["B", -1, 64]>, readonly ["B", 2364, 64]>>,
  Expect<Equal<ReshapeRule<[0, 5], [0, 7]>, [0, 7]>>,
  Expect<Equal<ReshapeRule<[0, "B"], ["C", 0]>, ["C", 0]>>, // 0 elements whatever the names
  // A `number` dim: the literal dims must still divide the count.
  Expect<Equal<ReshapeRule<[2, 3], [number, 3]>, [number, 3]>>,
  Expect<Equal<ReshapeRule<["B", 6], [number, 2]>, [number, 2]>>, // B may hide in `number`
  Expect<Equal<ReshapeRule<[0, 3], [number, 4]>, [number, 4]>>,
  Expect<Equal<ReshapeCheck<[2, 197, 768], [2, -1, 12, 64]>, unknown>>,
  Expect<Equal<ReshapeCheck<[2, 4503599627370497], [2, 4503599627370497]>, unknown>>,
];

export type ErrorMessages = [
  Expect<
    IsError<
      ReshapeCheck<[2, 3], [-1, -1]>,
      "reshape: cannot reshape [2, 3] to [-1, -1]: only one dim can be -1"
    >
  >,
  Expect<
    IsError<
      ReshapeCheck<[2, 3], [-1, 4]>,
      "reshape: cannot infer -1 in [-1, 4] from [2, 3]: 6 elements are not a multiple of 4"
    >
  >,
  Expect<
    IsError<
      ReshapeCheck<[2, 197, 768], [2, -1, 100]>,
      "reshape: cannot infer -1 in [2, -1, 100] from [2, 197, 768]: 302592 elements are not a multiple of 200"
    >
  >,
  Expect<
    IsError<
      ReshapeCheck<[5, 1], [2.5, 2]>,
      "reshape: cannot reshape [5, 1] to [2.5, 2]: target dim 2.5 is not a size or -1"
    >
  >,
  Expect<
    IsError<
      ReshapeCheck<[2, 3], [-2, -3]>,
      "reshape: cannot reshape [2, 3] to [-2, -3]: target dim -2 is not a size or -1"
    >
  >,
  // An invalid dim is reported before a second -1, as at run time.
  Expect<
    IsError<
      ReshapeCheck<[2, 3], [-1, -1, 0.5]>,
      "reshape: cannot reshape [2, 3] to [-1, -1, 0.5]: target dim 0.5 is not a size or -1"
    >
  >,
  Expect<
    IsError<
      ReshapeCheck<readonly number[], [1e16]>,
      "reshape: cannot reshape [...] to [10000000000000000]: target dim 10000000000000000 is not a size or -1"
    >
  >,
  Expect<
    IsError<
      ReshapeCheck<["B", 6], ["C", -1]>,
      "reshape: cannot infer -1 in [C, -1] from [B, 6]: B*6 elements are not a multiple of C"
    >
  >,
  Expect<
    IsError<
      ReshapeCheck<[0, 5], [0, -1]>,
      "reshape: cannot infer -1 in [0, -1] from [0, 5]: the other dims hold 0 elements, so -1 is ambiguous"
    >
  >,
  Expect<
    IsError<
      ReshapeCheck<[2, 3], [0, -1]>,
      "reshape: cannot infer -1 in [0, -1] from [2, 3]: 6 elements are not a multiple of 0"
    >
  >,
  Expect<
    IsError<
      ReshapeCheck<[4294967296, 4294967296], [-1]>,
      "reshape: cannot infer -1 in [-1] from [4294967296, 4294967296]: the inferred dim 18446744073709551616 is above 2^53 - 1"
    >
  >,
  // A `number` dim no longer switches the count check off.
  Expect<
    IsError<
      ReshapeCheck<[2, 3], [number, 4]>,
      "reshape: [2, 3] has 6 elements but [?, 4] has a multiple of 4"
    >
  >,
  Expect<
    IsError<
      ReshapeCheck<["B", 6], [number, "C"]>,
      "reshape: [B, 6] has B*6 elements but [?, C] has a multiple of C"
    >
  >,
  // Counts past 2^53 are compared exactly.
  Expect<
    IsError<
      ReshapeCheck<[2, 4503599627370497], [3, 3002399751580331]>,
      "reshape: [2, 4503599627370497] has 9007199254740994 elements but [3, 3002399751580331] has 9007199254740993"
    >
  >,
  Expect<
    IsError<
      ReshapeCheck<[4294967296, 4294967297], [4294967296, 4294967296]>,
      "reshape: [4294967296, 4294967297] has 18446744078004518912 elements but [4294967296, 4294967296] has 18446744073709551616"
    >
  >,
  // The existing count message is unchanged.
  Expect<
    IsError<
      ReshapeCheck<["B", 3, 196], ["B", 196, 4]>,
      "reshape: [B, 3, 196] has B*588 elements but [B, 196, 4] has B*784"
    >
  >,
  Expect<Equal<IsNever<ReshapeCheck<[2, 3], [-1, -1]>>, false>>,
  Expect<Equal<IsNever<ReshapeCheck<[2, 3], [-1, 4]>>, false>>,
];

/** Asserts `build` throws a one-line `ShapeError` from reshape whose reason is `reason`. */
function rejects(build: () => unknown, reason: string): void {
  assert.throws(build, (e: unknown) => {
    assert.ok(e instanceof ShapeError, `expected ShapeError, got ${e}`);
    assert.equal(e.op, "reshape", e.message);
    assert.ok(e.message.startsWith(`reshape (node ${e.node}, input `), e.message);
    assert.ok(e.message.endsWith(`: ${reason}`), e.message);
    assert.ok(!e.message.includes("\n"), e.message);
    return true;
  });
}

Deno.test("reshape -1: builder infers the exact shape, and the node stores it resolved", () => {
  const g = graph("heads", (b) => {
    const x = b.input("x", [2, 197, 768]);
    const h = b.reshape(x, [2, -1, 12, 64]);
    expectType<Equal<ShapeOf<typeof h>, readonly [2, 197, 12, 64]>>();
    assert.deepEqual(h.shape, [2, 197, 12, 64]);
    const flat = b.reshape(h, [-1]);
    expectType<Equal<ShapeOf<typeof flat>, readonly [302592]>>();
    return flat;
  });
  expectType<Equal<ShapeOf<typeof g>, readonly [302592]>>();
  const reshapes = g.nodes.filter((n) => n.op === "reshape");
  assert.deepEqual(reshapes.map((n) => n.attrs), [
    { shape: [2, 197, 12, 64] },
    { shape: [302592] },
  ]);
});

Deno.test("reshape -1: symbolic dims cancel", () => {
  const g = graph("sym", (b) => {
    const x = b.input("x", ["B", 197, 768]);
    const a = b.reshape(x, ["B", -1, 64]);
    expectType<Equal<ShapeOf<typeof a>, readonly ["B", 2364, 64]>>();
    assert.deepEqual(a.shape, ["B", 2364, 64]);
    const h = b.reshape(x, ["B", -1, 12, 64]);
    expectType<Equal<ShapeOf<typeof h>, readonly ["B", 197, 12, 64]>>();
    assert.deepEqual(h.shape, ["B", 197, 12, 64]);
    const back = b.reshape(h, [-1, 197, 768]);
    expectType<Equal<ShapeOf<typeof back>, readonly ["B", 197, 768]>>();
    assert.deepEqual(back.shape, ["B", 197, 768]);
    // B*197 is not a literal: the type says `number`, the run time keeps the product.
    const rows = b.reshape(x, [-1, 768]);
    expectType<Equal<ShapeOf<typeof rows>, readonly [number, 768]>>();
    assert.deepEqual(rows.shape, ["B*197", 768]);
    return rows;
  });
  assert.deepEqual(g.outShape, ["B*197", 768]);
});

Deno.test("reshape -1: bad targets are compile errors and ShapeErrors", () => {
  rejects(
    () =>
      graph("g", (b) => {
        const x = b.input("x", [2, 3]);
        // @ts-expect-error reshape: cannot reshape [2, 3] to [-1, -1]: only one dim can be -1
        return b.reshape(x, [-1, -1]);
      }),
    "cannot reshape [2, 3] to [-1, -1]: only one dim can be -1",
  );
  rejects(
    () =>
      graph("g", (b) => {
        const x = b.input("x", [2, 197, 768]);
        // @ts-expect-error reshape: cannot infer -1 in [2, -1, 100] ... not a multiple of 200
        return b.reshape(x, [2, -1, 100]);
      }),
    "cannot infer -1 in [2, -1, 100] from [2, 197, 768]: 302592 elements are not a multiple of 200",
  );
  rejects(
    () =>
      graph("g", (b) => {
        const x = b.input("x", [5, 1]);
        // @ts-expect-error reshape: cannot reshape [5, 1] to [2.5, 2]: target dim 2.5 ...
        return b.reshape(x, [2.5, 2]);
      }),
    "cannot reshape [5, 1] to [2.5, 2]: target dim 2.5 is not a size or -1",
  );
  rejects(
    () =>
      graph("g", (b) => {
        const x = b.input("x", [2, 3]);
        // @ts-expect-error reshape: cannot reshape [2, 3] to [-2, -3]: target dim -2 ...
        return b.reshape(x, [-2, -3]);
      }),
    "cannot reshape [2, 3] to [-2, -3]: target dim -2 is not a size or -1",
  );
  rejects(
    () =>
      graph("g", (b) => {
        const x = b.input("x", ["B", 6]);
        // @ts-expect-error reshape: cannot infer -1 in [C, -1] from [B, 6]: B*6 elements ...
        return b.reshape(x, ["C", -1]);
      }),
    "cannot infer -1 in [C, -1] from [B, 6]: B*6 elements are not a multiple of C",
  );
  rejects(
    () =>
      graph("g", (b) => {
        const x = b.input("x", [0, 5]);
        // @ts-expect-error reshape: cannot infer -1 in [0, -1] from [0, 5]: ... ambiguous
        return b.reshape(x, [0, -1]);
      }),
    "cannot infer -1 in [0, -1] from [0, 5]: the other dims hold 0 elements, so -1 is ambiguous",
  );
  rejects(
    () =>
      graph("g", (b) => {
        const x = b.input("x", [2, 3, 4]);
        // @ts-expect-error reshape: [2, 3, 4] has 24 elements but [5, 5] has 25
        return b.reshape(x, [5, 5]);
      }),
    "[2, 3, 4] has 24 elements but [5, 5] has 25",
  );
});

Deno.test("reshape: a number dim keeps the count check on for the literal dims", () => {
  const four: number = 4;
  const three: number = 3;
  rejects(
    () =>
      graph("g", (b) => {
        const x = b.input("x", [2, 3]);
        // @ts-expect-error reshape: [2, 3] has 6 elements but [?, 4] has a multiple of 4
        return b.reshape(x, [three, 4]);
      }),
    "[2, 3] has 6 elements but [3, 4] has 12",
  );
  const g = graph("g", (b) => {
    const x = b.input("x", [2, 6]);
    const y = b.reshape(x, [four, 3]);
    expectType<Equal<ShapeOf<typeof y>, readonly [number, 3]>>();
    return y;
  });
  assert.deepEqual(g.outShape, [4, 3]);
});

Deno.test("reshape: element counts past 2^53 are exact, in the types and at run time", () => {
  rejects(
    () =>
      graph("g", (b) => {
        const x = b.input("x", [2, 4503599627370497]);
        // @ts-expect-error reshape: [2, 4503599627370497] has 9007199254740994 elements but ...
        return b.reshape(x, [3, 3002399751580331]);
      }),
    "[2, 4503599627370497] has 9007199254740994 elements but [3, 3002399751580331] has 9007199254740993",
  );
  rejects(
    () =>
      graph("g", (b) => {
        const x = b.input("x", [4294967296, 4294967296]);
        // @ts-expect-error reshape: cannot infer -1 in [-1] ... above 2^53 - 1
        return b.reshape(x, [-1]);
      }),
    "cannot infer -1 in [-1] from [4294967296, 4294967296]: the inferred dim 18446744073709551616 is above 2^53 - 1",
  );
  const g = graph("big", (b) => {
    const x = b.input("x", [4294967296, 4294967297]);
    const y = b.reshape(x, [4294967297, -1]);
    expectType<Equal<ShapeOf<typeof y>, readonly [4294967297, 4294967296]>>();
    return y;
  });
  assert.deepEqual(g.outShape, [4294967297, 4294967296]);
});
