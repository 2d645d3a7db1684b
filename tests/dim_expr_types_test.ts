// Compile-time tests for graph/dim_expr_types.ts: the same examples as tests/dim_expr_test.ts,
// at the type level. `deno check` (which `deno test` runs first) is the real test; the one
// runtime test pins a few of the same answers from graph/dim_expr.ts.
import assert from "node:assert/strict";
import { addConst, evaluateDim, floorDivDim, mulDims } from "../graph/dim_expr.ts";
import type {
  AddConst,
  AddDims,
  EvalDim,
  FloorDivDim,
  MulDims,
  ProductOf,
  SameDim,
} from "../graph/dim_expr_types.ts";
import type { Equal, Expect } from "./type_helpers.ts";

const MAX = 9007199254740991;
type MAX = 9007199254740991;

/** `N` copies of `S`. */
type Repeat<S, N extends number, Acc extends S[] = []> = Acc["length"] extends N ? Acc
  : Repeat<S, N, [...Acc, S]>;
/** Strings joined with `*`. */
type Star<T extends string[], Acc extends string = ""> = T extends
  [infer H extends string, ...infer R extends string[]]
  ? Star<R, Acc extends "" ? H : `${Acc}*${H}`>
  : Acc;

export type Products = [
  Expect<Equal<MulDims<"B", 3>, "B*3">>,
  Expect<Equal<MulDims<3, "B">, "B*3">>,
  Expect<Equal<MulDims<"B*3", 4>, "B*12">>,
  Expect<Equal<MulDims<"H", "W">, "H*W">>,
  Expect<Equal<MulDims<"B", "B">, "B*B">>,
  Expect<Equal<MulDims<"B*2", "H*3">, "B*H*6">>,
  Expect<Equal<MulDims<6, 7>, 42>>,
  Expect<Equal<MulDims<"B", 1>, "B">>,
  Expect<Equal<MulDims<"3*B", 1>, "B*3">>,
  // A zero factor wins.
  Expect<Equal<MulDims<"B", 0>, 0>>,
  Expect<Equal<MulDims<0, "N+1">, 0>>,
  // Sums and quotients are parenthesized factors, never double wrapped.
  Expect<Equal<MulDims<"N+1", 3>, "(N+1)*3">>,
  Expect<Equal<MulDims<"(N+1)", 3>, "(N+1)*3">>,
  Expect<Equal<MulDims<"((N+1))", 3>, "(N+1)*3">>,
  Expect<Equal<MulDims<"H/16", "W/16">, "(H/16)*(W/16)">>,
  Expect<Equal<MulDims<"(N+1)*3", "B">, "(N+1)*B*3">>,
  Expect<Equal<MulDims<1, "N+1">, "N+1">>,
  Expect<Equal<MulDims<"H/16", 1>, "H/16">>,
  Expect<Equal<ProductOf<["N+1"]>, "N+1">>,
  Expect<Equal<ProductOf<[]>, 1>>,
  Expect<Equal<ProductOf<[3, 14, 14]>, 588>>,
  Expect<Equal<ProductOf<["B", 3, 196]>, "B*588">>,
  Expect<Equal<ProductOf<["B", "N+1", 3]>, "B*(N+1)*3">>,
  Expect<Equal<ProductOf<["B", 0, "H"]>, 0>>,
  Expect<Equal<ProductOf<number[]>, number>>,
  // Long products: the loops are tail recursive.
  Expect<Equal<ProductOf<Repeat<"B", 300>>, Star<Repeat<"B", 300>>>>,
  Expect<Equal<MulDims<Star<Repeat<"Dh", 250>>, 2>, `${Star<Repeat<"Dh", 250>>}*2`>>,
  Expect<Equal<ProductOf<Repeat<2, 52>>, 4503599627370496>>,
];

export type Sums = [
  Expect<Equal<AddDims<"N", 1>, "N+1">>,
  Expect<Equal<AddDims<1, "N">, "N+1">>,
  Expect<Equal<AddDims<"N+1", 1>, "N+2">>,
  Expect<Equal<AddDims<"N", "M">, "N+M">>,
  Expect<Equal<AddDims<"N+1", "M+2">, "N+M+3">>,
  Expect<Equal<AddDims<"N", "N">, "N+N">>,
  Expect<Equal<AddDims<"B*3", 1>, "B*3+1">>,
  Expect<Equal<AddDims<"H/16", 1>, "H/16+1">>,
  Expect<Equal<AddDims<2, 3>, 5>>,
  Expect<Equal<AddDims<"H-13", 13>, "H">>,
  Expect<Equal<AddConst<"H", -13>, "H-13">>,
  Expect<Equal<AddConst<"H-13", 13>, "H">>,
  Expect<Equal<AddConst<"H-13", 14>, "H+1">>,
  Expect<Equal<AddConst<"H+1", -14>, "H-13">>,
  Expect<Equal<AddConst<"N", 0>, "N">>,
  Expect<Equal<AddConst<10, -3>, 7>>,
  Expect<Equal<AddConst<10, -10>, 0>>,
  Expect<Equal<AddConst<5, -6>, number>>, // negative: the runtime throws
  Expect<Equal<AddConst<"N", 2.5>, number>>,
];

export type Quotients = [
  Expect<Equal<FloorDivDim<"H", 1>, "H">>,
  Expect<Equal<FloorDivDim<224, 16>, 14>>,
  Expect<Equal<FloorDivDim<223, 16>, 13>>,
  Expect<Equal<FloorDivDim<"H", 16>, "H/16">>,
  Expect<Equal<FloorDivDim<"H-13", 16>, "(H-13)/16">>,
  Expect<Equal<FloorDivDim<"B*3", 16>, "(B*3)/16">>,
  Expect<Equal<FloorDivDim<"B*32", 16>, "B*2">>,
  Expect<Equal<FloorDivDim<"B*16", 16>, "B">>,
  Expect<Equal<FloorDivDim<"(N+1)*16", 16>, "N+1">>,
  Expect<Equal<FloorDivDim<"H/16", 2>, "(H/16)/2">>,
  Expect<Equal<FloorDivDim<"N+1", 2>, "(N+1)/2">>,
  Expect<Equal<FloorDivDim<"H", 0>, number>>,
  Expect<Equal<FloorDivDim<MAX, 3>, 3002399751580330>>,
];

export type LargeNumbers = [
  Expect<Equal<MulDims<MAX, 1>, MAX>>,
  Expect<Equal<MulDims<"B", MAX>, "B*9007199254740991">>,
  Expect<Equal<AddDims<9007199254740990, 1>, MAX>>,
  Expect<Equal<AddConst<"N", -9007199254740991>, "N-9007199254740991">>,
  Expect<Equal<MulDims<94906265, 94906265>, 9007199136250225>>,
  // Beyond 2^53 - 1 the runtime throws; the types say `number`, never a rounded literal.
  Expect<Equal<MulDims<94906266, 94906266>, number>>,
  Expect<Equal<MulDims<"B*1073741824", 1073741824>, number>>,
  Expect<Equal<AddDims<MAX, 1>, number>>,
  Expect<Equal<AddDims<"N+9007199254740991", 1>, number>>,
  Expect<Equal<MulDims<9007199254740992, 1>, number>>,
  Expect<Equal<EvalDim<"B*9007199254740992">, number>>,
];

export type Evaluation = [
  Expect<Equal<EvalDim<"(N+1)*3", { N: 196 }>, 591>>,
  Expect<Equal<EvalDim<"H/16", { H: 224 }>, 14>>,
  Expect<Equal<EvalDim<"B*N", { N: 197 }>, "B*197">>,
  Expect<Equal<EvalDim<"(H-13)/16+1", { H: 224 }>, 14>>,
  Expect<Equal<EvalDim<"B*H*W", { H: 14; W: 14 }>, "B*196">>,
  Expect<Equal<EvalDim<"B*N*Dh", { B: "B"; N: 197; H: 12; Dh: 64 }>, "B*12608">>,
  Expect<Equal<EvalDim<224, { H: 1 }>, 224>>,
  Expect<Equal<EvalDim<"N*2", { N: "M+1" }>, "(M+1)*2">>,
  // Simultaneous substitution.
  Expect<Equal<EvalDim<"A*B", { A: "B"; B: 2 }>, "B*2">>,
  Expect<Equal<EvalDim<"A+B", { A: "B"; B: "A" }>, "B+A">>,
  // Canonicalization with no bindings.
  Expect<Equal<EvalDim<"3*B">, "B*3">>,
  Expect<Equal<EvalDim<"H/16/2">, "(H/16)/2">>,
  Expect<Equal<EvalDim<"B*3/16">, "(B*3)/16">>,
  Expect<Equal<EvalDim<"B/16*3">, "(B/16)*3">>,
  Expect<Equal<EvalDim<"N+M+N">, "N+M+N">>,
  Expect<Equal<EvalDim<"N-(5-3)">, "N-2">>,
  Expect<Equal<EvalDim<"(N-5)+5">, "N">>,
  Expect<Equal<EvalDim<"N-M", { M: 3 }>, "N-3">>,
  Expect<Equal<EvalDim<"2*(3+4)">, 14>>,
  // Where the runtime throws: `number`.
  Expect<Equal<EvalDim<"(H-13)*2", { H: 10 }>, number>>,
  Expect<Equal<EvalDim<"H/W">, number>>,
  Expect<Equal<EvalDim<"H/0">, number>>,
  Expect<Equal<EvalDim<"2-5+N">, number>>,
  Expect<Equal<EvalDim<"N-M">, number>>, // only integers are subtracted
  Expect<Equal<EvalDim<"5-N">, number>>,
  Expect<Equal<EvalDim<"N", { M: "x y" }>, number>>, // every binding is validated
  Expect<Equal<EvalDim<"N", { N: -1 }>, number>>,
  // Wide operands: `number`.
  Expect<Equal<EvalDim<"B*N", { N: number }>, number>>,
  Expect<Equal<EvalDim<number>, number>>,
  Expect<Equal<EvalDim<string>, number>>,
  Expect<Equal<MulDims<number, 3>, number>>,
  Expect<Equal<AddDims<"N", number>, number>>,
  Expect<Equal<AddConst<"N", number>, number>>,
  Expect<Equal<FloorDivDim<"H", number>, number>>,
  Expect<Equal<MulDims<`B${string}`, 3>, number>>,
];

export type Faults = [
  Expect<Equal<EvalDim<"">, number>>,
  Expect<Equal<EvalDim<"3">, number>>,
  Expect<Equal<EvalDim<"Infinity">, number>>,
  Expect<Equal<EvalDim<"a**b">, number>>,
  Expect<Equal<EvalDim<"-3">, number>>,
  Expect<Equal<EvalDim<"N+">, number>>,
  Expect<Equal<EvalDim<"(a">, number>>,
  Expect<Equal<EvalDim<"a)">, number>>,
  Expect<Equal<EvalDim<"()">, number>>,
  Expect<Equal<EvalDim<"a(b)">, number>>,
  Expect<Equal<EvalDim<"B * 3">, number>>,
  Expect<Equal<EvalDim<"1e3">, number>>,
  Expect<Equal<EvalDim<"07">, number>>,
  Expect<Equal<MulDims<"a b", 1>, number>>,
];

export type Sameness = [
  Expect<Equal<SameDim<"H*W*2", "2*W*H">, true>>,
  Expect<Equal<SameDim<"B*B*H", "H*B*B">, true>>,
  Expect<Equal<SameDim<"B*B*H", "H*B*H">, false>>,
  Expect<Equal<SameDim<"B*3", "B*4">, false>>,
  Expect<Equal<SameDim<"B", "B*1">, true>>,
  Expect<Equal<SameDim<"(N+1)*B", "B*(N+1)">, true>>,
  Expect<Equal<SameDim<"N+1", "1+N">, true>>,
  Expect<Equal<SameDim<"N+M", "M+N">, false>>,
  Expect<Equal<SameDim<3, 3>, true>>,
  Expect<Equal<SameDim<3, "B">, false>>,
  Expect<Equal<SameDim<"2*3", 6>, true>>,
  Expect<Equal<SameDim<number, 6>, boolean>>,
  Expect<Equal<SameDim<"a b", "B">, boolean>>,
];

Deno.test("the type-level answers above are the runtime's", () => {
  assert.equal(mulDims("N+1", 3), "(N+1)*3");
  assert.equal(addConst("H", -13), "H-13");
  assert.equal(floorDivDim("B*32", 16), "B*2");
  assert.equal(evaluateDim("A*B", { A: "B", B: 2 }), "B*2");
  assert.equal(floorDivDim(MAX, 3), 3002399751580330);
});
