// Compile-time tests for graph/shape_math.ts. The assertions live in types, so
// `deno check` (and `deno test`, which type-checks first) is the real test.
import type {
  Add,
  Eq,
  FloorDiv,
  IsLiteral,
  Lt,
  Lte,
  Mod,
  Mul,
  Product,
  Sub,
} from "../graph/shape_math.ts";

/** Exact type equality (distinguishes `number` from literals, `any`, unions). */
type Equal<X, Y> = (<T>() => T extends X ? 1 : 2) extends (<T>() => T extends Y ? 1 : 2) ? true
  : false;
/** Fails to compile unless `T` is `true`. */
type Expect<T extends true> = T;

export type Cases = [
  // Small numbers and identities.
  Expect<Equal<Add<0, 0>, 0>>,
  Expect<Equal<Add<2, 3>, 5>>,
  Expect<Equal<Sub<5, 5>, 0>>,
  Expect<Equal<Sub<7, 0>, 7>>,
  Expect<Equal<Mul<0, 12345>, 0>>,
  Expect<Equal<Mul<12345, 0>, 0>>,
  Expect<Equal<Mul<1, 7>, 7>>,
  Expect<Equal<Mul<6, 7>, 42>>,

  // Carries and borrows.
  Expect<Equal<Add<999, 1>, 1000>>,
  Expect<Equal<Add<1, 999999>, 1000000>>,
  Expect<Equal<Add<123456789, 987654321>, 1111111110>>,
  Expect<Equal<Sub<1000, 1>, 999>>,
  Expect<Equal<Sub<100000, 99999>, 1>>,
  Expect<Equal<Sub<1000000000000, 1>, 999999999999>>,
  Expect<Equal<Mul<99999, 99999>, 9999800001>>,
  Expect<Equal<Mul<999999, 999999>, 999998000001>>,

  // Shapes.
  Expect<Equal<Mul<3, Mul<224, 224>>, 150528>>,
  Expect<Equal<Mul<Mul<1024, 1024>, 3>, 3145728>>,
  Expect<Equal<Mul<4096, 4096>, 16777216>>,
  Expect<Equal<Mul<Mul<4096, 4096>, 3>, 50331648>>,
  Expect<Equal<Mul<1280, 1025>, 1312000>>,
  Expect<Equal<Mul<1280, 197>, 252160>>,
  Expect<Equal<Mul<16777216, 64>, 1073741824>>,
  Expect<Equal<Mul<1000000, 1000000>, 1000000000000>>,

  // Division and remainder.
  Expect<Equal<FloorDiv<150528, 256>, 588>>,
  Expect<Equal<FloorDiv<Sub<Add<224, 0>, 16>, 16>, 13>>, // conv: (224 + 2*0 - 16) / 16
  Expect<Equal<Add<FloorDiv<Sub<Add<224, 0>, 16>, 16>, 1>, 14>>, // conv output size: ... + 1
  Expect<Equal<FloorDiv<384, 14>, 27>>,
  Expect<Equal<Mod<384, 14>, 6>>,
  Expect<Equal<FloorDiv<0, 7>, 0>>,
  Expect<Equal<FloorDiv<6, 7>, 0>>,
  Expect<Equal<Mod<6, 7>, 6>>,
  Expect<Equal<FloorDiv<7, 7>, 1>>,
  Expect<Equal<Mod<150528, 256>, 0>>,
  Expect<Equal<FloorDiv<1000000000000, 7>, 142857142857>>,
  Expect<Equal<Mod<1000000000000, 7>, 1>>,
  Expect<Equal<FloorDiv<999999999999, 999999>, 1000001>>,
  Expect<Equal<FloorDiv<5, 0>, number>>,
  Expect<Equal<Mod<5, 0>, number>>,

  // Comparisons.
  Expect<Equal<Lt<99, 100>, true>>,
  Expect<Equal<Lt<100, 99>, false>>,
  Expect<Equal<Lt<5, 5>, false>>,
  Expect<Equal<Lt<123, 129>, true>>,
  Expect<Equal<Lt<0, 0>, false>>,
  Expect<Equal<Lte<5, 5>, true>>,
  Expect<Equal<Lte<6, 5>, false>>,
  Expect<Equal<Lte<999999999999, 1000000000000>, true>>,
  Expect<Equal<Eq<64, 64>, true>>,
  Expect<Equal<Eq<64, 65>, false>>,

  // Product.
  Expect<Equal<Product<[]>, 1>>,
  Expect<Equal<Product<[7]>, 7>>,
  Expect<Equal<Product<[1, 3, 224, 224]>, 150528>>,
  Expect<Equal<Product<readonly [1, 1280, 64, 64]>, 5242880>>,
  Expect<Equal<Product<[16, 3, 1024, 1024, 64]>, 3221225472>>, // >= 10^9
  Expect<Equal<Product<[1000, 1000, 1000, 1000]>, 1000000000000>>,
  Expect<Equal<Product<[2, 0, 5]>, 0>>,
  Expect<Equal<Product<[1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2]>, 2>>,
  Expect<Equal<Product<number[]>, number>>,
  Expect<Equal<Product<[2, number, 3]>, number>>,

  // Wide `number` propagates; comparisons become `boolean`.
  Expect<Equal<Add<number, 1>, number>>,
  Expect<Equal<Sub<1, number>, number>>,
  Expect<Equal<Mul<number, number>, number>>,
  Expect<Equal<FloorDiv<number, 2>, number>>,
  Expect<Equal<Mod<10, number>, number>>,
  Expect<Equal<Lt<number, 3>, boolean>>,
  Expect<Equal<Lte<3, number>, boolean>>,
  Expect<Equal<Eq<number, 3>, boolean>>,

  // Out-of-contract inputs degrade to `number`, never to a wrong literal.
  Expect<Equal<Sub<1, 2>, number>>,
  Expect<Equal<Add<-1, 2>, number>>,
  Expect<Equal<Mul<1.5, 2>, number>>,
  Expect<Equal<Mul<99999999999, 99999999999>, number>>, // beyond 2^53

  // Unions distribute.
  Expect<Equal<Add<1 | 2, 10>, 11 | 12>>,
  Expect<Equal<Eq<1 | 2, 1>, boolean>>,

  // IsLiteral.
  Expect<Equal<IsLiteral<224>, true>>,
  Expect<Equal<IsLiteral<0>, true>>,
  Expect<Equal<IsLiteral<number>, false>>,
  Expect<Equal<IsLiteral<1 | 2>, false>>,
  Expect<Equal<IsLiteral<never>, false>>,
  Expect<Equal<IsLiteral<number & { readonly brand: "dim" }>, false>>,
];

// A wrong answer must be rejected, otherwise the assertions above prove nothing.
// @ts-expect-error 3*224*224 is 150528, not 150529
export type Wrong = Expect<Equal<Mul<3, Mul<224, 224>>, 150529>>;

// The math also drives value-level types.
const elems: Product<[1, 3, 224, 224]> = 150528;

Deno.test("shape_math types compile (assertions are checked by deno check)", () => {
  if (elems !== 150528) throw new Error("unreachable");
});
