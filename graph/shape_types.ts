/**
 * Type-level shapes: the vocabulary every op's type rule is written in. A dim is a numeric
 * literal, a symbolic name (`"B"`) that flows through unchanged, or plain `number` (dynamic,
 * checked at run time only). Rule failures are branded string types that name the op and dims.
 * @module
 */

import type { IsLiteral, IsSize, Lt, Lte, Product, Sub } from "./shape_math.ts";
import type { EvalDim } from "./dim_expr_types.ts";

/**
 * A type-level dim: a numeric literal, a symbolic name, or `number`.
 *
 * @example
 * ```ts
 * import type { TDim } from "./shape_types.ts";
 * type Batch = "B" extends TDim ? true : false; // true
 * ```
 */
export type TDim = number | string;

/**
 * A type-level shape.
 *
 * @example
 * ```ts
 * import type { TShape } from "./shape_types.ts";
 * type Image = readonly ["B", 3, 224, 224] extends TShape ? true : false; // true
 * ```
 */
export type TShape = readonly TDim[];

/**
 * A compile-time shape error: a readable message in a type no real argument satisfies. An
 * argument checked against it fails with the message once, in the first line of `deno check`'s
 * error (`... parameter of type 'ShapeErrorType<"linear fc: ...">'`; for an object literal,
 * `'in' does not exist in type 'ShapeErrorType<"...">'`, with the squiggle on the option).
 *
 * @example
 * ```ts
 * import type { ShapeErrorType } from "./shape_types.ts";
 * type E = ShapeErrorType<"linear: input's last dim 4 does not equal in 3">;
 * ```
 */
export interface ShapeErrorType<Msg extends string> {
  /** The message. */
  readonly __tesseraShapeError: Msg;
}

/**
 * The first failing of two checks (each `unknown` when it passes).
 *
 * @example
 * ```ts
 * import type { FirstError, ShapeErrorType } from "./shape_types.ts";
 * type E = FirstError<unknown, ShapeErrorType<"conv2d c: stride must be a positive integer, got 0">>;
 * ```
 */
export type FirstError<A, B> = unknown extends A ? B : A;

/**
 * A parameter type that is `V` when the rule's check `C` passed (`unknown`), else the error
 * message itself, so the editor reports the message at the offending argument.
 *
 * @example
 * ```ts
 * import type { Checked, ShapeErrorType } from "./shape_types.ts";
 * type Ok = Checked<3, unknown>; // 3
 * type Bad = Checked<5, ShapeErrorType<"transpose: axis 5 is out of range">>; // the message
 * ```
 */
export type Checked<V, C> = unknown extends C ? V
  // Rebuilt, so the error prints as `ShapeErrorType<"...">`, not as the helper alias that made it.
  : C extends ShapeErrorType<infer M extends string> ? ShapeErrorType<M>
  : C;

/**
 * `true` when a shape's rank is unknown statically (a plain array, not a tuple); such shapes
 * are checked by the runtime rules only.
 *
 * @example
 * ```ts
 * import type { DynamicRank } from "./shape_types.ts";
 * type A = DynamicRank<number[]>; // true
 * type B = DynamicRank<[1, 2]>; // false
 * ```
 */
export type DynamicRank<S extends TShape> = number extends S["length"] ? true : false;

/**
 * `true` when `D` is the dynamic `number` type.
 *
 * @example
 * ```ts
 * import type { IsDynamic } from "./shape_types.ts";
 * type A = IsDynamic<number>; // true
 * type B = IsDynamic<3>; // false
 * ```
 */
export type IsDynamic<D> = number extends D ? true : false;

/**
 * Renders a dim for an error message: `number` reads as `?`.
 *
 * @example
 * ```ts
 * import type { DimStr } from "./shape_types.ts";
 * type S = DimStr<196>; // "196"
 * ```
 */
export type DimStr<D> = D extends string ? D
  : D extends number ? (IsLiteral<D> extends true ? `${D}` : "?")
  : "?";

/**
 * Renders a shape for an error message, e.g. `[B, 3, 224, 224]`.
 *
 * @example
 * ```ts
 * import type { ShapeStr } from "./shape_types.ts";
 * type S = ShapeStr<["B", 196, 3]>; // "[B, 196, 3]"
 * ```
 */
export type ShapeStr<S extends TShape, Acc extends string = ""> = S extends
  readonly [infer H, ...infer R extends TShape]
  ? ShapeStr<R, Acc extends "" ? DimStr<H> : `${Acc}, ${DimStr<H>}`>
  : `[${Acc}]`;

/**
 * `true` when two dims may be equal: the same literal or name, or either one dynamic.
 *
 * @example
 * ```ts
 * import type { DimsAgree } from "./shape_types.ts";
 * type A = DimsAgree<768, 768>; // true
 * type B = DimsAgree<768, 512>; // false
 * ```
 */
export type DimsAgree<X, Y> = IsDynamic<X> extends true ? true
  : IsDynamic<Y> extends true ? true
  // A union dim (`144 | 196`) is one of several sizes: only the run time can tell which.
  : true extends IsUnionDim<X> | IsUnionDim<Y> ? true
  : [X] extends [Y] ? ([Y] extends [X] ? true : false)
  : false;

/**
 * `true` for a union such as `144 | 196` (distributes, so read it as `true extends ...`).
 * @ignore
 */
type IsUnionDim<T, U = T> = T extends unknown ? ([U] extends [T] ? false : true) : never;

/**
 * A shape with its union dims (`144 | 196`, a size known only at run time) widened to
 * `number`, so that no rule reports a check against one member of the union; other shapes are
 * returned unchanged.
 *
 * @example
 * ```ts
 * import type { WidenUnionDims } from "./shape_types.ts";
 * type S = WidenUnionDims<["B", 144 | 196]>; // ["B", number]
 * ```
 */
export type WidenUnionDims<S extends TShape> = true extends HasUnionDim<S> ? {
    [K in keyof S]: true extends IsUnionDim<S[K]> ? (S[K] extends string ? string : number) : S[K];
  }
  : S;

/**
 * @ignore
 */
type HasUnionDim<S extends TShape> = S extends readonly [infer H, ...infer R extends TShape]
  ? (true extends IsUnionDim<H> ? true : HasUnionDim<R>)
  : false;

/**
 * The dims of a shape that are numeric literals, and its symbolic names, split apart so
 * element counts can be compared before symbols are bound.
 * @ignore
 */
type SplitDims<
  S extends TShape,
  Nums extends number[] = [],
  Syms extends string[] = [],
> = S extends readonly [infer H, ...infer R extends TShape]
  ? H extends string ? SplitFactorList<StarFactors<H>, R, Nums, Syms>
  : SplitDims<R, [...Nums, H & number], Syms>
  : { nums: Nums; syms: Syms };

/**
 * The `*`-separated factors of a symbolic dim, as the runtime rules split a product to count
 * elements.
 *
 * @example
 * ```ts
 * import type { StarFactors } from "./shape_types.ts";
 * type F = StarFactors<"H*Dh*3">; // ["H", "Dh", "3"]
 * ```
 */
export type StarFactors<D extends string, Acc extends string[] = []> = D extends
  `${infer H}*${infer R}` ? StarFactors<R, [...Acc, H]>
  : [...Acc, D];

/** @ignore */
type SplitFactorList<
  F extends string[],
  R extends TShape,
  Nums extends number[],
  Syms extends string[],
> = F extends [infer H extends string, ...infer Rest extends string[]]
  ? H extends `${infer N extends number}` ? SplitFactorList<Rest, R, [...Nums, N], Syms>
  : SplitFactorList<Rest, R, Nums, [...Syms, H extends `(${infer I})` ? I : H]>
  : SplitDims<R, Nums, Syms>;

/**
 * `true` when a shape contains a dynamic `number` dim.
 *
 * @example
 * ```ts
 * import type { HasDynamic } from "./shape_types.ts";
 * type A = HasDynamic<[number, 3]>; // true
 * ```
 */
export type HasDynamic<S extends TShape> = S extends readonly [infer H, ...infer R extends TShape]
  ? (IsDynamic<H> extends true ? true : HasDynamic<R>)
  : false;

/**
 * The element count of a shape as text: `"588"`, or `"B*588"` with symbolic dims.
 *
 * @example
 * ```ts
 * import type { CountStr } from "./shape_types.ts";
 * type N = CountStr<["B", 3, 196]>; // "B*588"
 * ```
 */
export type CountStr<S extends TShape> = SplitDims<S> extends
  { nums: infer N extends number[]; syms: infer Y extends string[] }
  ? Y extends [] ? `${Product<N>}` : `${JoinSyms<Y>}*${Product<N>}`
  : string;

/** @ignore */
type JoinSyms<Y extends string[], Acc extends string = ""> = Y extends
  [infer H extends string, ...infer R extends string[]]
  ? JoinSyms<R, Acc extends "" ? H : `${Acc}*${H}`>
  : Acc;

/**
 * Removes the first occurrence of `X` from `L`, or returns `false` when it is absent.
 * @ignore
 */
type RemoveOne<L extends string[], X extends string, Seen extends string[] = []> = L extends
  [infer H extends string, ...infer R extends string[]]
  ? (H extends X ? [...Seen, ...R] : RemoveOne<R, X, [...Seen, H]>)
  : false;

/**
 * `true` when two lists of symbols are the same multiset.
 * @ignore
 */
type SameSymbols<A extends string[], B extends string[]> = A extends
  [infer H extends string, ...infer R extends string[]]
  ? (RemoveOne<B, H> extends infer Rest extends string[] ? SameSymbols<R, Rest> : false)
  : B extends [] ? true
  : false;

/**
 * `true` when two shapes provably hold the same number of elements, or when either has a
 * dynamic dim (then only the run-time rule can tell).
 *
 * @example
 * ```ts
 * import type { SameCount } from "./shape_types.ts";
 * type A = SameCount<["B", 3, 196], ["B", 196, 3]>; // true
 * ```
 */
export type SameCount<S extends TShape, T extends TShape> = HasDynamic<S> extends true ? true
  : HasDynamic<T> extends true ? true
  : [SplitDims<S>, SplitDims<T>] extends [
    { nums: infer SN extends number[]; syms: infer SY extends string[] },
    { nums: infer TN extends number[]; syms: infer TY extends string[] },
  ] ? (Product<SN> extends Product<TN> ? SameSymbols<SY, TY> : false)
  : false;

/**
 * Resolves a possibly negative axis against a rank; out of range gives `false`.
 *
 * @example
 * ```ts
 * import type { NormAxis } from "./shape_types.ts";
 * type A = NormAxis<-1, 4>; // 3
 * ```
 */
export type NormAxis<A extends number, R extends number> = `${A}` extends
  `-${infer P extends number}`
  ? (Lt<0, P> extends true ? (Lte<P, R> extends true ? Sub<R, P> : false) : false)
  : Lt<A, R> extends true ? A
  : false;

/**
 * The first `N` dims of a shape (ranks are small, so counting by tuple length is fine here).
 *
 * @example
 * ```ts
 * import type { Take } from "./shape_types.ts";
 * type T = Take<["B", 3, 14, 14], 2>; // ["B", 3]
 * ```
 */
export type Take<S extends TShape, N extends number, Acc extends TDim[] = []> =
  Acc["length"] extends N ? Acc
    : S extends readonly [infer H extends TDim, ...infer R extends TShape] ? Take<R, N, [...Acc, H]>
    : Acc;

/**
 * The dims of a shape after the first `N`.
 *
 * @example
 * ```ts
 * import type { Drop } from "./shape_types.ts";
 * type T = Drop<["B", 3, 14, 14], 2>; // [14, 14]
 * ```
 */
export type Drop<S extends TShape, N extends number, Seen extends unknown[] = []> =
  Seen["length"] extends N ? S
    : S extends readonly [unknown, ...infer R extends TShape] ? Drop<R, N, [...Seen, unknown]>
    : [];

/**
 * The last dim of a shape.
 *
 * @example
 * ```ts
 * import type { LastDim } from "./shape_types.ts";
 * type D = LastDim<["B", 196, 3]>; // 3
 * ```
 */
export type LastDim<S extends TShape> = S extends readonly [...TShape, infer L] ? L : number;

/**
 * All dims but the last.
 *
 * @example
 * ```ts
 * import type { InitDims } from "./shape_types.ts";
 * type D = InitDims<["B", 196, 3]>; // ["B", 196]
 * ```
 */
export type InitDims<S extends TShape> = S extends readonly [...infer I extends TShape, unknown] ? I
  : [];

/**
 * A shape with axis `N` (already normalized) removed: what `select` and `mean` leave.
 *
 * @example
 * ```ts
 * import type { DropAxis } from "./shape_types.ts";
 * type T = DropAxis<["B", 197, 768], 1>; // ["B", 768]
 * ```
 */
export type DropAxis<S extends TShape, N extends number, Acc extends TDim[] = []> = S extends
  readonly [infer H extends TDim, ...infer R extends TShape]
  ? (Acc["length"] extends N ? [...Acc, ...R] : DropAxis<R, N, [...Acc, H]>)
  : Acc;

/**
 * A shape with the dim at axis `N` (already normalized) replaced by `D`.
 *
 * @example
 * ```ts
 * import type { SetAxis } from "./shape_types.ts";
 * type T = SetAxis<["B", 197, 768], 2, 1>; // ["B", 197, 1]
 * ```
 */
export type SetAxis<S extends TShape, N extends number, D extends TDim, Acc extends TDim[] = []> =
  S extends readonly [infer H extends TDim, ...infer R extends TShape]
    ? (Acc["length"] extends N ? [...Acc, D, ...R] : SetAxis<R, N, D, [...Acc, H]>)
    : Acc;

/**
 * Why an integer option such as a kernel size is invalid, as message text, or `""` when it is
 * valid or not known until run time (`number`). `Min` 1 asks for a positive integer, 0 for a
 * non-negative one; above 2^53 - 1 is too large either way. `sizeFault` in `shape.ts` is the
 * same rule at run time, word for word.
 *
 * @example
 * ```ts
 * import type { SizeFault } from "./shape_types.ts";
 * type A = SizeFault<"stride", 0, 1>; // "stride must be a positive integer, got 0"
 * type B = SizeFault<"padding", -1, 0>; // "padding must be >= 0 and an integer, got -1"
 * type C = SizeFault<"kernel", 16, 1>; // ""
 * ```
 */
export type SizeFault<Label extends string, V extends number, Min extends 0 | 1> =
  [IsSize<V>] extends [false] ? (
      Lt<9007199254740991, V> extends true ? `${Label} must be at most 2^53 - 1, got ${V}`
        : Min extends 1 ? `${Label} must be a positive integer, got ${V}`
        : `${Label} must be >= 0 and an integer, got ${V}`
    )
    : Min extends 1 ? ([V] extends [0] ? `${Label} must be a positive integer, got 0` : "")
    : "";

/**
 * The first dim of `S` that is neither a size nor a name, wrapped in a tuple; `[]` if none.
 * @ignore
 */
type BadDim<S extends TShape> = S extends readonly [infer H, ...infer R extends TShape]
  ? ([DimFits<H>] extends [false] ? [H] : BadDim<R>)
  : [];

/**
 * `false` for a dim the runtime rejects: the empty name, a name that reads as a number (`"3"`
 * would compare equal to the size 3), or a literal that is not a size.
 * @ignore
 */
type DimFits<D> = D extends string
  ? ([D] extends [""] ? false : D extends `${number}` ? false : string extends D ? true
  : number extends EvalDim<D> ? false
  : true)
  : D extends number ? IsSize<D>
  : false;

/**
 * The compile-time check of a declared shape (`g.input`): every dim is a size (a safe integer
 * >= 0) or a non-empty name, as the runtime check demands; `number` and `string` dims are left
 * to run time. `unknown` when it passes, else a message naming the op, the tensor and the dim.
 *
 * @example
 * ```ts
 * import type { DimsCheck } from "./shape_types.ts";
 * type E = DimsCheck<"input", "x", [-3, 4]>;
 * // "input x: dim -3 is not a size (a safe integer >= 0) or a name"
 * type Ok = DimsCheck<"input", "x", ["B", 4]>; // unknown
 * ```
 */
export type DimsCheck<Op extends string, Name extends string, S extends TShape> =
  DynamicRank<S> extends true ? unknown
    : BadDim<S> extends [infer D] ? ShapeErrorType<
        D extends `${number}`
          ? `${Op} ${Name}: dim "${D}" is a number written as a name; use the size ${D}`
          : D extends "" | number ? `${Op} ${Name}: dim ${D extends "" ? '""'
              : DimStr<D>} is not a size (a safe integer >= 0) or a name`
          : `${Op} ${Name}: dim "${DimStr<
            D
          >}" is not a name (letters, digits, _) or an expression of names`
      >
    : unknown;

/**
 * The compile-time check of `classToken`: the input is `[B, N, D]` with a concrete width `D`
 * (the learned `[1, 1, D]` token needs a real size). `Name` is the token's parameter name.
 * It lives here rather than in `builder.ts` so that `mod.ts` exports it with the other rules.
 *
 * @example
 * ```ts
 * import type { ClassTokenCheck } from "./shape_types.ts";
 * type Ok = ClassTokenCheck<["B", 196, 768], "cls">; // unknown
 * type E = ClassTokenCheck<["B", 3, 8, 8], "cls">;
 * // "classToken cls: input [B, 3, 8, 8] must be [batch, tokens, width]"
 * ```
 */
export type ClassTokenCheck<S extends TShape, Name extends string, Sym extends string = never> =
  DynamicRank<S> extends true ? unknown
    : S extends readonly [TDim, TDim, infer D] ? (
        ParamDimOk<D, Sym> extends true ? unknown
          : ShapeErrorType<
            `classToken ${Name}: width ${DimStr<D>} of ${ShapeStr<S>} must be a concrete size`
          >
      )
    : ShapeErrorType<`classToken ${Name}: input ${ShapeStr<S>} must be [batch, tokens, width]`>;

/**
 * `true` when the literal `N` is not an integer (`0.5`, `1e-7`); `false` for integer literals
 * and for `number`, which only the runtime rules can check.
 *
 * @example
 * ```ts
 * import type { NonInteger } from "./shape_types.ts";
 * type A = NonInteger<0.5>; // true
 * type B = NonInteger<-3>; // false
 * ```
 */
export type NonInteger<N extends number> = number extends N ? false
  : `${N}` extends `${string}.${string}` | `${string}e-${string}` ? true
  : false;

/**
 * `true` when `D` may be a parameter's dim: a size, `number` (checked at run time), or, inside a
 * block, a product of the block's dim names `Sym` such as `"H*Dh"` (bound to sizes when the
 * block is called). A name outside `Sym` has no size to make the parameter with.
 *
 * @example
 * ```ts
 * import type { ParamDimOk } from "./shape_types.ts";
 * type A = ParamDimOk<768, never>; // true
 * type B = ParamDimOk<"D", never>; // false
 * type C = ParamDimOk<"H*Dh", "H" | "Dh">; // true
 * ```
 */
export type ParamDimOk<D, Sym extends string> = D extends number ? true
  // A number written as a name ("3") is never a dim.
  : D extends `${number}` ? false
  : D extends string ? FactorsIn<D, Sym>
  : false;

/** @ignore */
type FactorsIn<D extends string, Sym extends string> = D extends `${infer H}*${infer R}`
  ? (H extends Sym | `${number}` ? FactorsIn<R, Sym> : false)
  : D extends Sym | `${number}` ? true
  : false;
