/**
 * Type-level arithmetic on non-negative integer literal types, so the type
 * checker can compute tensor shapes (`Mul<3, Mul<224, 224>>` is `150528`).
 *
 * Numbers are turned into decimal strings (`${N}`) and processed digit by
 * digit with lookup tables, like pencil-and-paper arithmetic. Cost grows with
 * the number of digits, not with the magnitude, so values up to 2^53 work.
 * Every loop is a tail-recursive conditional type (the recursive call is the
 * whole branch, carrying an accumulator), which TypeScript evaluates as a loop
 * of up to 1000 iterations instead of nesting, so no "excessively deep" errors.
 *
 * Conventions shared by every export:
 * - if an operand is the wide `number` type, the result is `number`
 *   (comparisons give `boolean`);
 * - union operands distribute: `Add<1 | 2, 10>` is `11 | 12`;
 * - operands that are not non-negative integer literals (negative, fractional,
 *   `1e21`-style) give `number`, and so do results a JS number cannot hold
 *   exactly (most values above `Number.MAX_SAFE_INTEGER`): never a rounded literal.
 *
 * @module
 */

// Internal helpers referenced by exported types carry `@ignore` so that
// `deno doc --lint` does not demand they be exported (private-type-ref).

// ---------------------------------------------------------------------------
// Digit tables
// ---------------------------------------------------------------------------

/**
 * One decimal digit character.
 * @ignore
 */
type Digit = "0" | "1" | "2" | "3" | "4" | "5" | "6" | "7" | "8" | "9";

/** Digit successor; `"9"` maps to `"10"`, the extra row of the 11-row tables below. */
type Succ = {
  "0": "1";
  "1": "2";
  "2": "3";
  "3": "4";
  "4": "5";
  "5": "6";
  "6": "7";
  "7": "8";
  "8": "9";
  "9": "10";
};

/**
 * `AddTable[R][B]` is `R + B` as two chars: carry digit, then result digit.
 * Row 10 exists so an incoming carry can be folded into the row: a + b + 1 is
 * `AddTable[Succ[a]][b]`.
 */
type AddTable = [
  ["00", "01", "02", "03", "04", "05", "06", "07", "08", "09"],
  ["01", "02", "03", "04", "05", "06", "07", "08", "09", "10"],
  ["02", "03", "04", "05", "06", "07", "08", "09", "10", "11"],
  ["03", "04", "05", "06", "07", "08", "09", "10", "11", "12"],
  ["04", "05", "06", "07", "08", "09", "10", "11", "12", "13"],
  ["05", "06", "07", "08", "09", "10", "11", "12", "13", "14"],
  ["06", "07", "08", "09", "10", "11", "12", "13", "14", "15"],
  ["07", "08", "09", "10", "11", "12", "13", "14", "15", "16"],
  ["08", "09", "10", "11", "12", "13", "14", "15", "16", "17"],
  ["09", "10", "11", "12", "13", "14", "15", "16", "17", "18"],
  ["10", "11", "12", "13", "14", "15", "16", "17", "18", "19"],
];

/**
 * `SubTable[S][A]` is `A - S` as two chars: borrow digit, then result digit
 * (`A - S + 10` when borrowing). Row 10 lets an incoming borrow be folded into
 * the subtrahend: a - b - 1 is `SubTable[Succ[b]][a]`.
 */
type SubTable = [
  ["00", "01", "02", "03", "04", "05", "06", "07", "08", "09"],
  ["19", "00", "01", "02", "03", "04", "05", "06", "07", "08"],
  ["18", "19", "00", "01", "02", "03", "04", "05", "06", "07"],
  ["17", "18", "19", "00", "01", "02", "03", "04", "05", "06"],
  ["16", "17", "18", "19", "00", "01", "02", "03", "04", "05"],
  ["15", "16", "17", "18", "19", "00", "01", "02", "03", "04"],
  ["14", "15", "16", "17", "18", "19", "00", "01", "02", "03"],
  ["13", "14", "15", "16", "17", "18", "19", "00", "01", "02"],
  ["12", "13", "14", "15", "16", "17", "18", "19", "00", "01"],
  ["11", "12", "13", "14", "15", "16", "17", "18", "19", "00"],
  ["10", "11", "12", "13", "14", "15", "16", "17", "18", "19"],
];

/** `MulTable[A][B]` is `A * B` as two chars: tens digit, then units digit. */
type MulTable = [
  ["00", "00", "00", "00", "00", "00", "00", "00", "00", "00"],
  ["00", "01", "02", "03", "04", "05", "06", "07", "08", "09"],
  ["00", "02", "04", "06", "08", "10", "12", "14", "16", "18"],
  ["00", "03", "06", "09", "12", "15", "18", "21", "24", "27"],
  ["00", "04", "08", "12", "16", "20", "24", "28", "32", "36"],
  ["00", "05", "10", "15", "20", "25", "30", "35", "40", "45"],
  ["00", "06", "12", "18", "24", "30", "36", "42", "48", "54"],
  ["00", "07", "14", "21", "28", "35", "42", "49", "56", "63"],
  ["00", "08", "16", "24", "32", "40", "48", "56", "64", "72"],
  ["00", "09", "18", "27", "36", "45", "54", "63", "72", "81"],
];

// ---------------------------------------------------------------------------
// String plumbing
// ---------------------------------------------------------------------------

/** Reverses a string. Digit loops run least-significant digit first, so inputs get reversed. */
type Reverse<S extends string, Acc extends string = ""> = S extends `${infer H}${infer T}`
  ? Reverse<T, `${H}${Acc}`>
  : Acc;

/** `true` iff `S` is a non-empty run of decimal digits (rejects "-1", "1.5", "1e+21"). */
type IsDigits<S extends string> = S extends `${infer _H extends Digit}${infer T}`
  ? T extends "" ? true : IsDigits<T>
  : false;

/** Drops leading zeros (subtraction and division leave them), keeping a lone "0". */
type StripZeros<S extends string> = S extends `0${infer T}` ? T extends "" ? "0" : StripZeros<T>
  : S;

/**
 * Decimal string back to a number literal. `infer ... extends number` only
 * succeeds when the string round-trips exactly, so values beyond 2^53 become
 * `number` instead of a silently rounded literal (exactly representable ones,
 * like 129684066143093100, stay literal).
 * @ignore
 */
type ToNum<S extends string> = S extends `${infer N extends number}` ? N : number;

/**
 * `true` iff both operands are non-negative integer literals (stringify to plain digits).
 * @ignore
 */
type BothNat<A extends number, B extends number> = [IsDigits<`${A}`>, IsDigits<`${B}`>] extends
  [true, true] ? true : false;

// ---------------------------------------------------------------------------
// Digit-string algorithms. Inputs/outputs are forward decimal strings unless
// the parameter is named `Rev*` (least-significant digit first).
// ---------------------------------------------------------------------------

/**
 * Schoolbook addition over reversed digit strings. Output digits are prepended
 * to `Acc`, so the result comes out most-significant first (forward).
 */
type AddRev<
  RevA extends string,
  RevB extends string,
  Carry extends string = "0",
  Acc extends string = "",
> = RevA extends `${infer X extends Digit}${infer RestA}`
  ? RevB extends `${infer Y extends Digit}${infer RestB}` ? AddStep<X, Y, Carry, RestA, RestB, Acc>
  : AddStep<X, "0", Carry, RestA, "", Acc>
  : RevB extends `${infer Y extends Digit}${infer RestB}` ? AddStep<"0", Y, Carry, "", RestB, Acc>
  : Carry extends "1" ? `1${Acc}`
  : Acc;

/** One column of `AddRev`: look up `X + Y + Carry`, emit the digit, loop with the new carry. */
type AddStep<
  X extends Digit,
  Y extends Digit,
  Carry extends string,
  RestA extends string,
  RestB extends string,
  Acc extends string,
> = AddTable[Carry extends "1" ? Succ[X] : X][Y] extends `${infer C}${infer D}`
  ? AddRev<RestA, RestB, C, `${D}${Acc}`>
  : never;

/**
 * Forward-string addition.
 * @ignore
 */
type AddStr<A extends string, B extends string> = AddRev<Reverse<A>, Reverse<B>>;

/**
 * Schoolbook subtraction `A - B` over reversed strings, requires A >= B.
 * Result is forward and may carry leading zeros.
 */
type SubRev<
  RevA extends string,
  RevB extends string,
  Borrow extends string = "0",
  Acc extends string = "",
> = RevA extends `${infer X extends Digit}${infer RestA}`
  ? RevB extends `${infer Y extends Digit}${infer RestB}` ? SubStep<X, Y, Borrow, RestA, RestB, Acc>
  : SubStep<X, "0", Borrow, RestA, "", Acc>
  : Acc;

/** One column of `SubRev`: fold the borrow into the subtrahend digit, then look up. */
type SubStep<
  X extends Digit,
  Y extends Digit,
  Borrow extends string,
  RestA extends string,
  RestB extends string,
  Acc extends string,
> = SubTable[Borrow extends "1" ? Succ[Y] : Y][X] extends `${infer B}${infer D}`
  ? SubRev<RestA, RestB, B, `${D}${Acc}`>
  : never;

/**
 * Forward-string subtraction, A >= B, leading zeros removed.
 * @ignore
 */
type SubStr<A extends string, B extends string> = StripZeros<SubRev<Reverse<A>, Reverse<B>>>;

/**
 * Multiplies a reversed digit string by one digit `D`. Per column:
 * `X * D` (table) plus the carry (<= 8, so the sum stays <= 89 and the new
 * carry is one digit). Output is forward.
 */
type MulDigitRev<
  RevA extends string,
  D extends Digit,
  Carry extends Digit = "0",
  Acc extends string = "",
> = RevA extends `${infer X extends Digit}${infer Rest}`
  ? MulTable[X][D] extends `${infer Hi extends Digit}${infer Lo extends Digit}`
    ? AddTable[Lo][Carry] extends `${infer C extends Digit}${infer Out}`
      // Hi <= 8 and C <= 1, so Hi + C is a single digit: take its second char.
      ? AddTable[Hi][C] extends `0${infer NextCarry extends Digit}`
        ? MulDigitRev<Rest, D, NextCarry, `${Out}${Acc}`>
      : never
    : never
  : never
  : Carry extends "0" ? Acc
  : `${Carry}${Acc}`;

/**
 * Long multiplication: for each digit of B (least significant first), add
 * `A * digit` shifted left by `Shift` zeros into the forward accumulator.
 */
type MulRev<
  RevA extends string,
  RevB extends string,
  Shift extends string = "",
  Acc extends string = "0",
> = RevB extends `${infer Y extends Digit}${infer Rest}`
  // Skip zero digits: they contribute nothing and this keeps "0" results clean.
  ? Y extends "0" ? MulRev<RevA, Rest, `0${Shift}`, Acc>
  : MulRev<RevA, Rest, `0${Shift}`, AddStr<Acc, `${MulDigitRev<RevA, Y>}${Shift}`>>
  : Acc;

/**
 * Forward-string multiplication.
 * @ignore
 */
type MulStr<A extends string, B extends string> = A extends "0" ? "0"
  : MulRev<Reverse<A>, Reverse<B>>;

/** `true` iff digit X < digit Y: X appears strictly before Y in "0123456789". */
type DigitLt<X extends string, Y extends string> = "0123456789" extends
  `${string}${X}${string}${Y}${string}` ? true : false;

/**
 * Compares two forward digit strings without leading zeros: the shorter is
 * smaller; if equally long, the first differing digit decides.
 * Returns "<", "=" or ">".
 * @ignore
 */
type Compare<A extends string, B extends string> = LengthCmp<A, B> extends "=" ? LexCmp<A, B>
  : LengthCmp<A, B>;

/** Strips one character from both strings until one runs out. */
type LengthCmp<A extends string, B extends string> = A extends `${string}${infer RestA}`
  ? B extends `${string}${infer RestB}` ? LengthCmp<RestA, RestB> : ">"
  : B extends "" ? "="
  : "<";

/** Digit-by-digit comparison of equally long strings, most significant first. */
type LexCmp<A extends string, B extends string> = A extends `${infer X}${infer RestA}`
  ? B extends `${infer Y}${infer RestB}`
    ? X extends Y ? LexCmp<RestA, RestB> : DigitLt<X, Y> extends true ? "<" : ">"
  : "="
  : "=";

/**
 * Long division. Bring down one digit of A into the remainder, then subtract
 * B while possible (at most 9 times) counting the quotient digit in `QD`.
 * Returns `[quotient, remainder]` as forward strings.
 */
type DivLoop<
  A extends string,
  B extends string,
  Rem extends string = "0",
  Q extends string = "",
> = A extends `${infer D}${infer Rest}` ? DivDigit<Rest, B, StripZeros<`${Rem}${D}`>, Q, "0">
  : [StripZeros<Q>, Rem];

/** Inner loop of `DivLoop`: repeated subtraction for one quotient digit. */
type DivDigit<
  Rest extends string,
  B extends string,
  Rem extends string,
  Q extends string,
  QD extends Digit,
> = Compare<Rem, B> extends "<" ? DivLoop<Rest, B, Rem, `${Q}${QD}`>
  : DivDigit<Rest, B, SubStr<Rem, B>, Q, Succ[QD] & Digit>;

/**
 * Quotient (`I` = 0) or remainder (`I` = 1) of `A / B` as a number literal.
 * @ignore
 */
type DivPart<A extends string, B extends string, I extends 0 | 1> = DivLoop<A, B> extends
  [infer Q extends string, infer R extends string] ? ToNum<I extends 0 ? Q : R> : number;

// ---------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------

/**
 * `A + B` for non-negative integer literals.
 *
 * @example
 * ```ts
 * import type { Add } from "./shape_math.ts";
 * const s: Add<999, 1> = 1000;
 * const w: Add<number, 1> = 42; // wide operand -> `number`
 * ```
 */
export type Add<A extends number, B extends number> = number extends A | B ? number
  : A extends number
    ? B extends number ? BothNat<A, B> extends true ? ToNum<AddStr<`${A}`, `${B}`>> : number
    : number
  : number;

/**
 * `A - B` when `A >= B`; `number` when `A < B` (no negative results), so
 * guard with {@linkcode Lt} first when the order is not known.
 *
 * @example
 * ```ts
 * import type { Sub } from "./shape_math.ts";
 * const d: Sub<224, 16> = 208;
 * const n: Sub<1, 2> = 5; // A < B -> `number`
 * ```
 */
export type Sub<A extends number, B extends number> = number extends A | B ? number
  : A extends number
    ? B extends number
      ? BothNat<A, B> extends true
        ? Compare<`${A}`, `${B}`> extends "<" ? number : ToNum<SubStr<`${A}`, `${B}`>>
      : number
    : number
  : number;

/**
 * `A * B` for non-negative integer literals.
 *
 * @example
 * ```ts
 * import type { Mul } from "./shape_math.ts";
 * const n: Mul<3, Mul<224, 224>> = 150528;
 * ```
 */
export type Mul<A extends number, B extends number> = number extends A | B ? number
  : A extends number
    ? B extends number ? BothNat<A, B> extends true ? ToNum<MulStr<`${A}`, `${B}`>> : number
    : number
  : number;

/**
 * `Math.floor(A / B)` by long division; `number` when `B` is 0.
 *
 * @example
 * ```ts
 * import type { FloorDiv } from "./shape_math.ts";
 * const q: FloorDiv<384, 14> = 27;
 * ```
 */
export type FloorDiv<A extends number, B extends number> = number extends A | B ? number
  : A extends number
    ? B extends number
      ? BothNat<A, B> extends true ? B extends 0 ? number : DivPart<`${A}`, `${B}`, 0>
      : number
    : number
  : number;

/**
 * `A % B` (remainder of {@linkcode FloorDiv}); `number` when `B` is 0.
 *
 * @example
 * ```ts
 * import type { Mod } from "./shape_math.ts";
 * const r: Mod<384, 14> = 6;
 * ```
 */
export type Mod<A extends number, B extends number> = number extends A | B ? number
  : A extends number
    ? B extends number
      ? BothNat<A, B> extends true ? B extends 0 ? number : DivPart<`${A}`, `${B}`, 1>
      : number
    : number
  : number;

/**
 * `A < B` as `true` / `false`; `boolean` if an operand is `number` (or not a
 * non-negative integer literal).
 *
 * @example
 * ```ts
 * import type { Lt } from "./shape_math.ts";
 * const t: Lt<99, 100> = true;
 * ```
 */
export type Lt<A extends number, B extends number> = number extends A | B ? boolean
  : A extends number
    ? B extends number
      ? BothNat<A, B> extends true ? Compare<`${A}`, `${B}`> extends "<" ? true : false
      : boolean
    : boolean
  : boolean;

/**
 * `A <= B` as `true` / `false`; `boolean` if an operand is `number`.
 *
 * @example
 * ```ts
 * import type { Lte } from "./shape_math.ts";
 * const t: Lte<7, 7> = true;
 * ```
 */
export type Lte<A extends number, B extends number> = number extends A | B ? boolean
  : A extends number
    ? B extends number
      ? BothNat<A, B> extends true ? Compare<`${A}`, `${B}`> extends ">" ? false : true
      : boolean
    : boolean
  : boolean;

/**
 * `A === B` on number literals as `true` / `false`; `boolean` if an operand
 * is `number`. Unions distribute, so `Eq<1 | 2, 1>` is `boolean`.
 *
 * @example
 * ```ts
 * import type { Eq } from "./shape_math.ts";
 * const f: Eq<64, 65> = false;
 * ```
 */
export type Eq<A extends number, B extends number> = number extends A | B ? boolean
  : A extends number ? B extends number ? [A] extends [B] ? true : false
    : boolean
  : boolean;

/**
 * Accumulator loop for {@linkcode Product}.
 * @ignore
 */
type ProductLoop<T extends readonly number[], Acc extends number> = T extends readonly [] ? Acc
  : T extends readonly [infer H extends number, ...infer Rest extends readonly number[]]
    ? ProductLoop<Rest, Mul<Acc, H>>
  : number; // not a fixed-length tuple, e.g. `number[]`

/**
 * Product of a tuple of literals (`1` for the empty tuple): the element count
 * of a shape. `number` if any element is `number` or `T` is not a fixed-length
 * tuple.
 *
 * @example
 * ```ts
 * import type { Product } from "./shape_math.ts";
 * const n: Product<[1, 3, 224, 224]> = 150528;
 * ```
 */
export type Product<T extends readonly number[]> = ProductLoop<T, 1>;

/**
 * `true` iff `T` is a union of two or more members.
 * @ignore
 */
type IsUnion<T, U = T> = T extends T ? [U] extends [T] ? false : true : never;

/**
 * `true` if `N` is exactly one numeric literal type; `false` for `number`,
 * unions of literals, branded numbers (`number & {...}`) and `never`.
 *
 * @example
 * ```ts
 * import type { IsLiteral } from "./shape_math.ts";
 * const a: IsLiteral<224> = true;
 * const b: IsLiteral<number> = false;
 * const c: IsLiteral<1 | 2> = false;
 * ```
 */
export type IsLiteral<N extends number> = [N] extends [never] ? false
  : number extends N ? false
  : true extends IsUnion<N> ? false
  // A literal stringifies to digits (or "-"); `number & Brand` stays a deferred template.
  : `${N}` extends `${Digit | "-"}${string}` ? true
  : false;

/**
 * The largest safe integer, `Number.MAX_SAFE_INTEGER` (2^53 - 1), as digits.
 * @ignore
 */
type MaxSafe = "9007199254740991";

/**
 * `true` iff `N` is a size the runtime accepts (`isValidSize`): a non-negative safe integer
 * literal. `false` for any other literal: negative (`-3`), fractional (`2.5`), or above
 * `Number.MAX_SAFE_INTEGER` (`1e16`). `boolean` for `number` and branded numbers, which only
 * the run time can judge; unions distribute.
 *
 * @example
 * ```ts
 * import type { IsSize } from "./shape_math.ts";
 * const a: IsSize<224> = true;
 * const b: IsSize<-3> = false;
 * const c: IsSize<2.5> = false;
 * const d: IsSize<1e16> = false;
 * const e: IsSize<number> = true; // `boolean`: unknown until run time
 * ```
 */
export type IsSize<N extends number> = number extends N ? boolean
  : N extends number ? (
      IsLiteral<N> extends true
        ? (IsDigits<`${N}`> extends true ? (Compare<`${N}`, MaxSafe> extends ">" ? false : true)
          : false)
        : boolean
    )
  : boolean;

// ---------------------------------------------------------------------------
// Exact digit-string arithmetic, for values past 2^53 (element counts)
// ---------------------------------------------------------------------------

/**
 * `true` iff `N` is one non-negative integer literal (a plain run of digits when stringified).
 * @ignore
 */
type IsNat<N extends number> = IsLiteral<N> extends true ? IsDigits<`${N}`> : false;

/**
 * Accumulator loop for {@linkcode ProductDigits}.
 * @ignore
 */
type ProductDigitsLoop<T extends readonly number[], Acc extends string> = T extends readonly []
  ? Acc
  : T extends readonly [infer H extends number, ...infer Rest extends readonly number[]]
    ? (IsNat<H> extends true ? ProductDigitsLoop<Rest, MulStr<Acc, `${H}`>> : string)
  : string;

/**
 * Exact product of a tuple of non-negative integer literals as a decimal string (`"1"` for
 * the empty tuple), with no 2^53 limit: the element count of a big shape, exactly. The wide
 * `string` when an element is not such a literal (`number`, a union, `-1`, `2.5`, `1e21`) or
 * `T` is not a fixed-length tuple.
 *
 * @example
 * ```ts
 * import type { ProductDigits } from "./shape_math.ts";
 * const n: ProductDigits<[4294967296, 4294967296]> = "18446744073709551616"; // 2^64
 * const s: ProductDigits<[2, number]> = "any string"; // not all literals -> `string`
 * ```
 */
export type ProductDigits<T extends readonly number[]> = ProductDigitsLoop<T, "1">;

/**
 * Compares two decimal strings without leading zeros, exactly and at any length: `"<"`,
 * `"="` or `">"`.
 *
 * @example
 * ```ts
 * import type { CompareDigits } from "./shape_math.ts";
 * const c: CompareDigits<"18446744073709551617", "18446744073709551616"> = ">";
 * ```
 */
export type CompareDigits<A extends string, B extends string> = Compare<A, B>;

/**
 * Exact long division of two decimal strings: `[quotient, remainder]`, both decimal strings
 * without leading zeros. `never` when `B` is `"0"`.
 *
 * @example
 * ```ts
 * import type { DivModDigits } from "./shape_math.ts";
 * const qr: DivModDigits<"18446744073709551616", "3"> = ["6148914691236517205", "1"];
 * ```
 */
export type DivModDigits<A extends string, B extends string> = B extends "0" ? never
  : DivLoop<A, B>;
