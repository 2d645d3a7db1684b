/**
 * Symbolic dim arithmetic at the type level, mirroring `dim_expr.ts` word for word: the same
 * grammar, the same canonical forms, the same strings (`MulDims<"N+1", 3>` is `"(N+1)*3"`, as
 * `mulDims("N+1", 3)` is). See `dim_expr.ts` for the grammar and the canonical forms.
 *
 * How: a string dim is tokenized character by character, then parsed and evaluated in one
 * shunting-yard loop (a value stack and an operator stack), each reduction applying the same
 * operation on canonical forms as the runtime, with the digit-wise arithmetic of
 * `shape_math.ts`. The result is printed back to a string. Every loop is tail recursive with an
 * accumulator, so it may run up to TypeScript's 1000 iterations: one string dim may be about 900
 * characters long (some 300 factors: `ProductOf` of 300 names, then `MulDims` on the result, is
 * tested); past that the checker reports "excessively deep" rather than giving a wrong type.
 *
 * Where the runtime would throw (a malformed string, an intermediate that is negative or beyond
 * 2^53 - 1, a symbolic subtrahend, a zero or symbolic divisor, a bad binding), the result is the
 * wide `number`: the project's "unchecked" dim, never a wrong literal. So is any operand or
 * binding that is the wide `number` or the wide `string`.
 *
 * @module
 */

import type { Add, FloorDiv, IsSize, Lt, Lte, Mod, Mul, Sub } from "./shape_math.ts";
import type { TDim } from "./shape_types.ts";

// Internal helpers referenced by exported types carry `@ignore` so that `deno doc --lint` does
// not demand they be exported (private-type-ref).

// ---------------------------------------------------------------------------
// Canonical forms (the runtime's `Prod`, `Sum`, `Quot` as tuples)
// ---------------------------------------------------------------------------

/**
 * What the runtime throws for: the evaluation failed and the result is `number`.
 * @ignore
 */
interface Fault {
  readonly fault: true;
}

/**
 * A symbolic factor: a name, or a sum or quotient kept whole.
 * @ignore
 */
type Factor = string | NSum | NQuot;

/**
 * `["p", factors, coeff]`: factors never empty, coeff >= 1.
 * @ignore
 */
type NProd = ["p", Factor[], number];

/**
 * A symbolic term of a sum.
 * @ignore
 */
type NTerm = NProd | NQuot;

/**
 * `["s", terms, constant is negative, |constant|]`: terms never empty.
 * @ignore
 */
type NSum = ["s", NTerm[], boolean, number];

/**
 * `["q", numerator, divisor]`: divisor >= 2, numerator symbolic.
 * @ignore
 */
type NQuot = ["q", NProd | NSum | NQuot, number];

/**
 * A canonical form: a number literal or a symbolic form.
 * @ignore
 */
type Node = number | NProd | NSum | NQuot;

/**
 * A signed constant `[negative, magnitude]`; zero is `[false, 0]`.
 * @ignore
 */
type Signed = [boolean, number];

/** Number.MAX_SAFE_INTEGER. */
type MaxSafe = 9007199254740991;

/**
 * `N` if it is a safe integer literal >= 0, else `Fault` (`Mul` and `Add` may return a literal
 * above 2^53 when it is exactly representable, and `number` when it is not).
 * @ignore
 */
type Safe<N extends number> = number extends N ? Fault : Lte<N, MaxSafe> extends true ? N : Fault;

// ---------------------------------------------------------------------------
// Operations on forms
// ---------------------------------------------------------------------------

/** @ignore */
type FactorsOf<X extends Node> = X extends number ? [] : X extends NProd ? X[1] : [X];
/** @ignore */
type CoeffOf<X extends Node> = X extends number ? X : X extends NProd ? X[2] : 1;

/**
 * A product, collapsed to a number, or to its one factor when that is a sum or quotient.
 * @ignore
 */
type ProdOf<Fs extends Factor[], C extends number> = Fs extends [] ? C
  : Fs extends [infer F extends NSum | NQuot] ? (C extends 1 ? F : ["p", Fs, C])
  : ["p", Fs, C];

/**
 * `x * y`: a zero factor wins, then factors left first and coefficients multiplied.
 * @ignore
 */
type NMul<X extends Node, Y extends Node> = X extends 0 ? 0
  : Y extends 0 ? 0
  : Safe<Mul<CoeffOf<X>, CoeffOf<Y>>> extends infer C extends number
    ? ProdOf<[...FactorsOf<X>, ...FactorsOf<Y>], C>
  : Fault;

/** @ignore */
type TermsOf<X extends Node> = X extends number ? [] : X extends NSum ? X[1] : [X];
/** @ignore */
type ConstOf<X extends Node> = X extends number ? [false, X] : X extends NSum ? [X[2], X[3]]
: [false, 0];

/** @ignore */
type Negate<K extends Signed> = K[1] extends 0 ? [false, 0]
  : [K[0] extends true ? false : true, K[1]];

/**
 * Signed addition on `[negative, magnitude]` pairs, by magnitudes.
 * @ignore
 */
type AddSigned<A extends Signed, B extends Signed> = A[0] extends B[0] ? [A[0], Add<A[1], B[1]>]
  : Lt<A[1], B[1]> extends true ? [B[0], Sub<B[1], A[1]>]
  : Sub<A[1], B[1]> extends 0 ? [false, 0]
  : [A[0], Sub<A[1], B[1]>];

/**
 * A sum of terms and a constant, collapsed to a number or a lone term where it is one.
 * @ignore
 */
type SumOf<Ts extends NTerm[], K extends Signed> = Safe<K[1]> extends Fault ? Fault
  : Ts extends [] ? (K[0] extends true ? Fault : K[1])
  : Ts extends [infer T extends NTerm] ? (K[1] extends 0 ? T : ["s", Ts, K[0], K[1]])
  : ["s", Ts, K[0], K[1]];

/**
 * `x + y`.
 * @ignore
 */
type NAdd<X extends Node, Y extends Node> = SumOf<
  [...TermsOf<X>, ...TermsOf<Y>],
  AddSigned<ConstOf<X>, ConstOf<Y>>
>;

/**
 * `x + k` for a signed constant (`x - n` is `x + [true, n]`).
 * @ignore
 */
type NAddConst<X extends Node, K extends Signed> = SumOf<TermsOf<X>, AddSigned<ConstOf<X>, K>>;

/**
 * `floor(x / k)`: `x` for k = 1, exact for a number, the coefficient divided out when `k`
 * divides it, else a quotient.
 * @ignore
 */
type NDiv<X extends Node, K extends number> = K extends 0 ? Fault
  : K extends 1 ? X
  : X extends number ? FloorDiv<X, K>
  : X extends NProd ? (Mod<X[2], K> extends 0 ? ProdOf<X[1], FloorDiv<X[2], K>> : ["q", X, K])
  : ["q", X, K];

/**
 * One binary operation of the parser; a symbolic subtrahend or divisor is a fault.
 * @ignore
 */
type Apply<O extends Op, X extends Node, Y extends Node> = O extends "*" ? NMul<X, Y>
  : O extends "+" ? NAdd<X, Y>
  : Y extends number ? (O extends "-" ? NAddConst<X, Negate<[false, Y]>> : NDiv<X, Y>)
  : Fault; // only integers are subtracted or divided by

// ---------------------------------------------------------------------------
// Printing
// ---------------------------------------------------------------------------

/**
 * The canonical string of a symbolic form (recursion here is only as deep as the nesting of
 * parentheses; the loops over factors and terms are tail recursive). Results pass through
 * `infer ... extends string` so the checker never has to compute the constraint of a recursive
 * template (which it gives up on as "excessively deep").
 * @ignore
 */
type Text<X> = X extends ["p", infer Fs extends Factor[], infer C extends number]
  ? (JoinFactors<Fs> extends infer J extends string ? `${J}${C extends 1 ? "" : `*${C}`}` : never)
  : X extends ["s", infer Ts extends NTerm[], infer Neg extends boolean, infer M extends number]
    ? (JoinTerms<Ts> extends infer J extends string
      ? `${J}${M extends 0 ? "" : `${Neg extends true ? "-" : "+"}${M}`}`
      : never)
  : X extends ["q", infer A, infer K extends number] ? (
      A extends ["p", [infer F extends string], 1] ? `${F}/${K}`
        : Text<A> extends infer T extends string ? `(${T})/${K}`
        : never
    )
  : never;

/** @ignore */
type FactorText<F> = F extends string ? F
  : Text<F> extends infer T extends string ? `(${T})`
  : never;

/** @ignore */
type JoinFactors<Fs extends Factor[], Acc extends string = ""> = Fs extends
  [infer F, ...infer R extends Factor[]]
  ? (FactorText<F> extends infer T extends string
    ? JoinFactors<R, Acc extends "" ? T : `${Acc}*${T}`>
    : never)
  : Acc;

/** @ignore */
type JoinTerms<Ts extends NTerm[], Acc extends string = ""> = Ts extends
  [infer T extends NTerm, ...infer R extends NTerm[]]
  ? (Text<T> extends infer S extends string ? JoinTerms<R, Acc extends "" ? S : `${Acc}+${S}`>
    : never)
  : Acc;

/**
 * A form as a dim: the literal, the canonical string, or `number` for a fault.
 * @ignore
 */
type Show<X> = X extends Fault ? number : X extends number ? X : Text<X>;

// ---------------------------------------------------------------------------
// Tokenizing
// ---------------------------------------------------------------------------

/** @ignore */
type Digit = "0" | "1" | "2" | "3" | "4" | "5" | "6" | "7" | "8" | "9";
/** @ignore */
type Letter =
  | "a"
  | "b"
  | "c"
  | "d"
  | "e"
  | "f"
  | "g"
  | "h"
  | "i"
  | "j"
  | "k"
  | "l"
  | "m"
  | "n"
  | "o"
  | "p"
  | "q"
  | "r"
  | "s"
  | "t"
  | "u"
  | "v"
  | "w"
  | "x"
  | "y"
  | "z"
  | "A"
  | "B"
  | "C"
  | "D"
  | "E"
  | "F"
  | "G"
  | "H"
  | "I"
  | "J"
  | "K"
  | "L"
  | "M"
  | "N"
  | "O"
  | "P"
  | "Q"
  | "R"
  | "S"
  | "T"
  | "U"
  | "V"
  | "W"
  | "X"
  | "Y"
  | "Z"
  | "_";
/** @ignore */
type Op = "+" | "-" | "*" | "/";
/**
 * A token: a number literal, an operator or parenthesis, or a name (any other string).
 * @ignore
 */
type Tok = number | string;

/**
 * A digit run as a number token; a leading zero or a value beyond 2^53 - 1 is a fault
 * (`infer N extends number` only matches when the digits round-trip exactly).
 * @ignore
 */
type NumTok<S extends string> = S extends `0${infer R}` ? (R extends "" ? 0 : Fault)
  : S extends `${infer N extends number}` ? Safe<N>
  : Fault;

/**
 * The pending number or name `Cur` as a token (`Kind` "d" or "n"), or nothing.
 * @ignore
 */
type Flush<Cur extends string, Kind extends string> = Kind extends "d" ? [NumTok<Cur>]
  : Kind extends "n" ? (Cur extends "Infinity" ? [Fault] : [Cur])
  : [];

/**
 * Character loop: digits and name characters accumulate in `Cur`; an operator flushes it.
 * The wide `string` (or a template with a `string` hole) is a fault.
 * @ignore
 */
type Tokenize<S extends string, Acc extends Tok[] = [], Cur extends string = "", Kind = ""> =
  string extends S ? Fault
    : S extends `${infer C}${infer R}`
      ? C extends Digit ? Tokenize<R, Acc, `${Cur}${C}`, Kind extends "n" ? "n" : "d">
      : C extends Letter ? (Kind extends "d" ? Fault : Tokenize<R, Acc, `${Cur}${C}`, "n">)
      : C extends Op | "(" | ")"
        ? (Flush<Cur, Kind & string> extends infer F extends Tok[] ? Tokenize<R, [...Acc, ...F, C]>
          : Fault)
      : Fault
    : Flush<Cur, Kind & string> extends infer F extends Tok[] ? [...Acc, ...F]
    : Fault;

// ---------------------------------------------------------------------------
// Parsing and evaluating
// ---------------------------------------------------------------------------

/**
 * Whether operator `O` on the stack binds at least as tightly as the incoming `In` (all
 * operators are left associative, so equal precedence reduces).
 * @ignore
 */
type ReducesBefore<O extends Op, In extends Op> = In extends "+" | "-" ? true
  : O extends "*" | "/" ? true
  : false;

/**
 * Bound names, each value already a form (or `Fault`).
 * @ignore
 */
type Forms = { [name: string]: Node | Fault };

/**
 * Pops the top operator and two values, pushes the result, and resumes `Parse` in mode `W`.
 * @ignore
 */
type Reduce<
  T extends Tok[],
  E extends Forms,
  Vs extends Node[],
  Os extends (Op | "(")[],
  W extends "operand" | "operator",
> = Os extends [...infer OR extends (Op | "(")[], infer O extends Op]
  ? Vs extends [...infer VR extends Node[], infer X extends Node, infer Y extends Node]
    ? (Apply<O, X, Y> extends infer V extends Node ? Parse<T, E, [...VR, V], OR, W> : Fault)
  : Fault
  : Fault;

/**
 * The shunting-yard loop over tokens `T`: `W` says whether an operand or an operator comes
 * next; `Vs` holds values (forms), `Os` operators and open parentheses. Each step consumes a
 * token or reduces, so it is one tail-recursive loop.
 * @ignore
 */
type Parse<
  T extends Tok[],
  E extends Forms,
  Vs extends Node[] = [],
  Os extends (Op | "(")[] = [],
  W extends "operand" | "operator" = "operand",
> = W extends "operand" ? (
    T extends [infer H, ...infer R extends Tok[]]
      ? H extends number ? Parse<R, E, [...Vs, H], Os, "operator">
      : H extends "(" ? Parse<R, E, Vs, [...Os, "("], "operand">
      : H extends Op | ")" ? Fault
      : H extends keyof E
        ? (E[H] extends infer V extends Node ? Parse<R, E, [...Vs, V], Os, "operator">
          : Fault)
      : H extends string ? Parse<R, E, [...Vs, ["p", [H], 1]], Os, "operator">
      : Fault
      : Fault // ran out where an operand was due: "" or a trailing operator
  )
  : T extends [infer H, ...infer R extends Tok[]] ? (
      H extends Op ? (
          Os extends [...(Op | "(")[], infer O extends Op]
            ? (ReducesBefore<O, H> extends true ? Reduce<T, E, Vs, Os, "operator">
              : Parse<R, E, Vs, [...Os, H], "operand">)
            : Parse<R, E, Vs, [...Os, H], "operand">
        )
        : H extends ")" ? (
            Os extends [...infer OR extends (Op | "(")[], infer O]
              ? (O extends "(" ? Parse<R, E, Vs, OR, "operator"> : Reduce<T, E, Vs, Os, "operator">)
              : Fault // unbalanced ")"
          )
        : Fault // an operand right after an operand
    )
  : Os extends [...(Op | "(")[], infer O]
    ? (O extends "(" ? Fault : Reduce<T, E, Vs, Os, "operator">)
  : Vs extends [infer V extends Node] ? V
  : Fault;

/**
 * The form of a string dim with bindings `E`; a lone number written as a string is a fault,
 * as at run time.
 * @ignore
 */
type FormOfString<S extends string, E extends Forms> = Tokenize<S> extends infer T extends Tok[]
  ? (T extends [number] ? Fault : Parse<T, E>)
  : Fault;

/**
 * The form of any dim operand; the wide `number`, or a number literal that is not a size, is a
 * fault.
 * @ignore
 */
type FormOf<D extends TDim, E extends Forms = NoForms> = D extends number
  ? (IsSize<D> extends true ? D : Fault)
  : D extends string ? FormOfString<D, E>
  : Fault;

/** @ignore */
type NoForms = Record<never, never>;

/**
 * Each binding's form, validated eagerly like the runtime's.
 * @ignore
 */
type FormsOf<Env extends Record<string, TDim>> = { [K in keyof Env & string]: FormOf<Env[K]> };

/**
 * `A` and `B` as forms, or `Fault`.
 * @ignore
 */
type Both<A extends TDim, B extends TDim> = [FormOf<A>, FormOf<B>] extends
  [infer X extends Node, infer Y extends Node] ? [X, Y] : Fault;

/**
 * Accumulator loop for {@linkcode ProductOf}.
 * @ignore
 */
type ProductLoop<Ds extends readonly TDim[], Acc extends Node> = Ds extends readonly [] ? Acc
  : Ds extends readonly [infer H extends TDim, ...infer R extends readonly TDim[]]
    ? (FormOf<H> extends infer X extends Node
      ? (NMul<Acc, X> extends infer P extends Node ? ProductLoop<R, P> : Fault)
      : Fault)
  : Fault; // not a fixed-length tuple

/**
 * Multiset equality of two lists of strings, removing each of `As` from `Bs` in turn.
 * @ignore
 */
type SameBag<As extends string[], Bs extends string[]> = As extends
  [infer H extends string, ...infer R extends string[]]
  ? (Without<H, Bs> extends infer Rest extends string[] ? SameBag<R, Rest> : false)
  : Bs extends [] ? true
  : false;

/**
 * `Bs` less its first `H`, or `Fault` when there is none.
 * @ignore
 */
type Without<H extends string, Bs extends string[], Before extends string[] = []> = Bs extends
  [infer X extends string, ...infer R extends string[]]
  ? ([X] extends [H] ? [...Before, ...R] : Without<H, R, [...Before, X]>)
  : Fault;

/** @ignore */
type FactorTexts<Fs extends Factor[], Acc extends string[] = []> = Fs extends
  [infer F, ...infer R extends Factor[]]
  ? (FactorText<F> extends infer T extends string ? FactorTexts<R, [...Acc, T]> : never)
  : Acc;

/** @ignore */
type SameForm<X extends Node, Y extends Node> = X extends number
  ? (Y extends number ? ([X] extends [Y] ? true : false) : false)
  : Y extends number ? false
  : X extends NProd ? (
      Y extends NProd
        ? ([X[2]] extends [Y[2]] ? SameBag<FactorTexts<X[1]>, FactorTexts<Y[1]>> : false)
        : false
    )
  : [Text<X>] extends [Text<Y>] ? true
  : false;

// ---------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------

/**
 * `mulDims(A, B)`: the canonical product, symbolic factors in order of first appearance, the
 * coefficient last, a sum or quotient as one parenthesized factor; any factor 0 gives 0.
 *
 * @example
 * ```ts
 * import type { MulDims } from "./dim_expr_types.ts";
 * const a: MulDims<"B", 3> = "B*3";
 * const b: MulDims<3, "B*4"> = "B*12";
 * const c: MulDims<"N+1", 3> = "(N+1)*3";
 * const d: MulDims<"H/16", "W/16"> = "(H/16)*(W/16)";
 * const e: MulDims<number, 3> = 42; // a wide operand: `number`
 * ```
 */
export type MulDims<A extends TDim, B extends TDim> = Both<A, B> extends
  [infer X extends Node, infer Y extends Node] ? Show<NMul<X, Y>> : number;

/**
 * `productOf(Ds)`: the product of a tuple of dims folded from 1 (`1` for `[]`); `number` for a
 * tuple of unknown length.
 *
 * @example
 * ```ts
 * import type { ProductOf } from "./dim_expr_types.ts";
 * const a: ProductOf<["B", 3, 196]> = "B*588";
 * const b: ProductOf<[]> = 1;
 * ```
 */
export type ProductOf<Ds extends readonly TDim[]> = Show<ProductLoop<Ds, 1>>;

/**
 * `addDims(A, B)`: the canonical sum, symbolic terms in order (nested sums flattened), the
 * constant last.
 *
 * @example
 * ```ts
 * import type { AddDims } from "./dim_expr_types.ts";
 * const a: AddDims<"N", 1> = "N+1";
 * const b: AddDims<1, "N"> = "N+1";
 * const c: AddDims<"N+1", 1> = "N+2";
 * const d: AddDims<"B*3", 1> = "B*3+1";
 * ```
 */
export type AddDims<A extends TDim, B extends TDim> = Both<A, B> extends
  [infer X extends Node, infer Y extends Node] ? Show<NAdd<X, Y>> : number;

/**
 * `addConst(A, C)`. A negative constant is a negative literal type (`AddConst<"H", -13>`),
 * exactly as at run time; `C` must be an integer literal of magnitude <= 2^53 - 1.
 *
 * @example
 * ```ts
 * import type { AddConst } from "./dim_expr_types.ts";
 * const a: AddConst<"H", -13> = "H-13";
 * const b: AddConst<"H-13", 13> = "H";
 * const c: AddConst<10, -3> = 7;
 * ```
 */
export type AddConst<A extends TDim, C extends number> = FormOf<A> extends infer X extends Node
  ? (`${C}` extends `-${infer M extends number}`
    ? (IsSize<M> extends true ? Show<NAddConst<X, [true, M]>> : number)
    : IsSize<C> extends true ? Show<NAddConst<X, [false, C]>>
    : number)
  : number;

/**
 * `floorDivDim(A, K)`: `floor(A / K)` for a positive integer literal `K` (`number` for 0).
 *
 * @example
 * ```ts
 * import type { FloorDivDim } from "./dim_expr_types.ts";
 * const a: FloorDivDim<224, 16> = 14;
 * const b: FloorDivDim<"H", 16> = "H/16";
 * const c: FloorDivDim<"H-13", 16> = "(H-13)/16";
 * const d: FloorDivDim<"B*32", 16> = "B*2";
 * ```
 */
export type FloorDivDim<A extends TDim, K extends number> = FormOf<A> extends infer X extends Node
  ? (IsSize<K> extends true ? Show<NDiv<X, K>> : number)
  : number;

/**
 * `evaluateDim(D, Env)`: substitutes the bindings of `Env` (an object type such as
 * `{ B: "B"; N: 197 }`) all at once and rebuilds the canonical form; unbound names stay
 * symbolic. `number` if `D` or any binding is malformed or the wide `number`. Without `Env`,
 * this canonicalizes `D` (`EvalDim<"3*B">` is `"B*3"`).
 *
 * @example
 * ```ts
 * import type { EvalDim } from "./dim_expr_types.ts";
 * const a: EvalDim<"(N+1)*3", { N: 196 }> = 591;
 * const b: EvalDim<"H/16", { H: 224 }> = 14;
 * const c: EvalDim<"B*N", { N: 197 }> = "B*197";
 * const d: EvalDim<"A*B", { A: "B"; B: 2 }> = "B*2";
 * ```
 */
export type EvalDim<D extends TDim, Env extends Record<string, TDim> = NoForms> = FormsOf<
  Env
> extends infer E extends Forms ? (Fault extends E[keyof E] ? number
    : D extends number ? Show<FormOf<D>>
    : D extends string ? Show<FormOfString<D, E>>
    : number)
  : number;

/**
 * `sameDim(A, B)`: `true` when the canonical forms match (products as multisets of factors
 * with the coefficient, other forms as strings), else `false`; `boolean` when an operand is
 * malformed or wide.
 *
 * @example
 * ```ts
 * import type { SameDim } from "./dim_expr_types.ts";
 * const a: SameDim<"H*W*2", "2*W*H"> = true;
 * const b: SameDim<"N+M", "M+N"> = false;
 * ```
 */
export type SameDim<A extends TDim, B extends TDim> = Both<A, B> extends
  [infer X extends Node, infer Y extends Node] ? SameForm<X, Y> : boolean;
