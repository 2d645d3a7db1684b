/**
 * `reshape`: a row-major reinterpretation with the same element count, exactly
 * `torch.reshape` on a contiguous tensor, including one `-1` dim inferred from the element
 * count. The buffer is copied as is; only the shape changes. This is what the seed's
 * `PatchTokenizer` does (not a transpose).
 *
 * Element counts are compared exactly at any size: as digit strings in the type checker and
 * as `bigint` at run time, so counts above 2^53 are checked too.
 * @module
 */

import type {
  DimStr,
  DynamicRank,
  ShapeErrorType,
  ShapeStr,
  StarFactors,
  TShape,
} from "../graph/shape_types.ts";
import type {
  CompareDigits,
  DivModDigits,
  IsLiteral,
  IsSize,
  ProductDigits,
} from "../graph/shape_math.ts";
import { type Dim, formatShape, isValidSize, type Shape, ShapeError } from "../graph/shape.ts";
import type { OpDef } from "./op.ts";

/**
 * The IR attributes of a reshape node.
 *
 * @example
 * ```ts
 * import type { ReshapeAttrs } from "./reshape.ts";
 * const a: ReshapeAttrs = { shape: ["B", 196, 3] };
 * ```
 */
export interface ReshapeAttrs {
  /**
   * The target shape; symbolic dims are bound when the graph runs. The builder stores it with
   * any `-1` already resolved; the rule itself also accepts one `-1`.
   */
  readonly shape: Shape;
}

// ---------------------------------------------------------------------------
// Type-level rule
// ---------------------------------------------------------------------------

/**
 * A target shape taken apart: its size literals, its names, how many `-1` dims it has and
 * whether some dim is only known at run time (`number`, `string`); or its first invalid dim.
 * @ignore
 */
type ScanTarget<
  T extends TShape,
  Nums extends number[] = [],
  Syms extends string[] = [],
  Holes extends 0[] = [],
  Dyn extends boolean = false,
> = T extends readonly [infer H, ...infer R extends TShape] ? (
    [H] extends [string] ? (
        string extends H ? ScanTarget<R, Nums, Syms, Holes, true>
          : TargetFactors<StarFactors<H & string>, R, Nums, Syms, Holes, Dyn>
      )
      : IsLiteral<H & number> extends false ? ScanTarget<R, Nums, Syms, Holes, true>
      : [`${H & number}`] extends ["-1"] ? ScanTarget<R, Nums, Syms, [...Holes, 0], Dyn>
      : [IsSize<H & number>] extends [true] ? ScanTarget<R, [...Nums, H & number], Syms, Holes, Dyn>
      : { bad: H }
  )
  : { nums: Nums; syms: Syms; holes: Holes["length"]; dyn: Dyn };

/**
 * A source shape taken apart: its exact element count of the literal dims (a digit string),
 * its names; or `false` when some dim is only known at run time.
 * @ignore
 */
type ScanSource<S extends TShape, Nums extends number[] = [], Syms extends string[] = []> =
  S extends readonly [infer H, ...infer R extends TShape] ? (
      [H] extends [string] ? (string extends H ? false
          : SourceFactors<StarFactors<H & string>, R, Nums, Syms>)
        : IsLiteral<H & number> extends false ? false
        : ScanSource<R, [...Nums, H & number], Syms>
    )
    : ProductDigits<Nums> extends infer C extends string ? (
        string extends C ? false : { count: C; syms: Syms }
      )
    : false;

/**

 * A factor without its parentheses, as the runtime's `unwrap`.

 * @ignore

 */
type Unwrap<X extends string> = X extends `(${infer I})` ? I : X;

/**

 * A product dim's factors into a source's literals and names.

 * @ignore

 */
type SourceFactors<
  F extends string[],
  R extends TShape,
  Nums extends number[],
  Syms extends string[],
> = F extends [infer X extends string, ...infer Rest extends string[]]
  ? X extends `${infer N extends number}` ? SourceFactors<Rest, R, [...Nums, N], Syms>
  : SourceFactors<Rest, R, Nums, [...Syms, Unwrap<X>]>
  : ScanSource<R, Nums, Syms>;

/**

 * A product dim's factors into a target's literals and names.

 * @ignore

 */
type TargetFactors<
  F extends string[],
  R extends TShape,
  Nums extends number[],
  Syms extends string[],
  Holes extends 0[],
  Dyn extends boolean,
> = F extends [infer X extends string, ...infer Rest extends string[]]
  ? X extends `${infer N extends number}` ? TargetFactors<Rest, R, [...Nums, N], Syms, Holes, Dyn>
  : TargetFactors<Rest, R, Nums, [...Syms, Unwrap<X>], Holes, Dyn>
  : ScanTarget<R, Nums, Syms, Holes, Dyn>;

/**
 * `L` with one occurrence of each of `X` removed, or `false` when `X` is not contained in `L`.
 * @ignore
 */
type Minus<L extends string[], X extends string[]> = X extends
  [infer H extends string, ...infer R extends string[]]
  ? (RemoveFirst<L, H> extends infer Rest extends string[] ? Minus<Rest, R> : false)
  : L;

/**
 * `L` without its first `X`, or `false`.
 * @ignore
 */
type RemoveFirst<L extends string[], X extends string, Seen extends string[] = []> = L extends
  [infer H extends string, ...infer R extends string[]]
  ? ([H] extends [X] ? [...Seen, ...R] : RemoveFirst<R, X, [...Seen, H]>)
  : false;

/**
 * Names joined by `*`.
 * @ignore
 */
type Join<Y extends string[], Acc extends string = ""> = Y extends
  [infer H extends string, ...infer R extends string[]]
  ? Join<R, Acc extends "" ? H : `${Acc}*${H}`>
  : Acc;

/**
 * An element count as text, as the runtime writes it: `"588"`, `"B*588"`, `"B"` or `"0"`.
 * @ignore
 */
type CountText<C extends string, Y extends string[]> = Y extends [] ? C
  : C extends "0" ? "0"
  : C extends "1" ? Join<Y>
  : `${Join<Y>}*${C}`;

/**
 * A shape for a message; a dynamic-rank one reads `[...]`.
 * @ignore
 */
type ShapeText<S extends TShape> = DynamicRank<S> extends true ? "[...]" : ShapeStr<S>;

/**
 * `T` with its `-1` dim replaced by `X`.
 * @ignore
 */
type Fill<T extends TShape, X> = { [K in keyof T]: [T[K]] extends [-1] ? X : T[K] };

/**
 * `T` itself when it has no `-1` (`H` is 0), else `T` with the `-1` replaced by `X`.
 * @ignore
 */
type Out<T extends TShape, H extends number, X> = H extends 0 ? T : Fill<T, X>;

/**
 * The largest safe integer as digits.
 * @ignore
 */
type MaxSafeDigits = "9007199254740991";

/**
 * The inferred `-1`: `Q` times the names `L` left over once the target's names are cancelled.
 * A literal when nothing is left, the name itself for one name times 1, else `number`.
 * @ignore
 */
type Inferred<Q extends string, L extends string[]> = Q extends "0" ? 0
  : L extends [] ? (Q extends `${infer N extends number}` ? N : number)
  : L extends [infer Y extends string] ? (Q extends "1" ? Y : number)
  : number;

/** @ignore */
type CannotInfer<S extends TShape, T extends TShape, Why extends string> = ShapeErrorType<
  `reshape: cannot infer -1 in ${ShapeText<T>} from ${ShapeText<S>}: ${Why}`
>;

/**
 * The rule once the target is known valid with at most one `-1`: `TN`/`TY` are the target's
 * literals and names (without the `-1`), `H` the number of `-1`s, `TD` whether the target has
 * run-time dims.
 * @ignore
 */
type CountRule<
  S extends TShape,
  T extends TShape,
  TN extends number[],
  TY extends string[],
  H extends number,
  TD extends boolean,
> = ScanSource<S> extends { count: infer SC extends string; syms: infer SY extends string[] }
  ? ProductDigits<TN> extends infer RC extends string ? (
      [H, TD] extends [0, false] ? (
          // No unknowns: the counts must be equal (zero is zero whatever the names).
          [SC, RC] extends ["0", "0"] ? T
            : [SC] extends [RC]
              ? (Minus<SY, TY> extends []
                ? (Minus<TY, SY> extends [] ? T : Mismatch<S, T, SC, SY, RC, TY>)
                : Mismatch<S, T, SC, SY, RC, TY>)
            : Mismatch<S, T, SC, SY, RC, TY>
        )
        : SC extends "0" ? (
            [H, TD, RC] extends [1, false, "0"]
              ? CannotInfer<S, T, "the other dims hold 0 elements, so -1 is ambiguous">
              : Out<T, H, TD extends true ? number : 0>
          )
        : Minus<SY, TY> extends infer L extends string[] ? (
            RC extends "0" ? NotMultiple<S, T, SC, SY, RC, TY, H>
              : DivModDigits<SC, RC> extends [infer Q extends string, "0"] ? (
                  TD extends true ? Out<T, H, number>
                    : L extends [] ? (
                        CompareDigits<Q, MaxSafeDigits> extends ">"
                          ? CannotInfer<S, T, `the inferred dim ${Q} is above 2^53 - 1`>
                          : Fill<T, Inferred<Q, L>>
                      )
                    : Fill<T, Inferred<Q, L>>
                )
              : NotMultiple<S, T, SC, SY, RC, TY, H>
          )
        : NotMultiple<S, T, SC, SY, RC, TY, H>
    )
  : Out<T, H, number>
  // The source has run-time dims: only the run time can count.
  : Out<T, H, number>;

/** @ignore */
type Mismatch<
  S extends TShape,
  T extends TShape,
  SC extends string,
  SY extends string[],
  RC extends string,
  TY extends string[],
> = ShapeErrorType<
  `reshape: ${ShapeStr<S>} has ${CountText<SC, SY>} elements but ${ShapeStr<T>} has ${CountText<
    RC,
    TY
  >}`
>;

/** @ignore */
type NotMultiple<
  S extends TShape,
  T extends TShape,
  SC extends string,
  SY extends string[],
  RC extends string,
  TY extends string[],
  H extends number,
> = H extends 1 ? CannotInfer<
    S,
    T,
    `${CountText<SC, SY>} elements are not a multiple of ${CountText<RC, TY>}`
  >
  : ShapeErrorType<
    `reshape: ${ShapeStr<S>} has ${CountText<SC, SY>} elements but ${ShapeStr<
      T
    >} has a multiple of ${CountText<RC, TY>}`
  >;

/**
 * The type rule of `reshape(S -> T)`: the output shape (`T` with its `-1`, if any, inferred)
 * or a {@linkcode ShapeErrorType} naming `reshape` and both shapes. At most one `-1`; other
 * literal dims must be sizes. The element counts must agree exactly (no 2^53 limit); a
 * `number` dim in `T` still requires the count of `S` to be a multiple of the rest of `T`.
 * Symbolic names cancel, so `["B", 197, 768]` to `["B", -1, 64]` infers `2364`. When `-1`
 * cannot be known exactly it is `number`, never a guessed literal.
 *
 * @example
 * ```ts
 * import type { ReshapeRule } from "./reshape.ts";
 * type Y = ReshapeRule<[2, 197, 768], [2, -1, 12, 64]>; // [2, 197, 12, 64]
 * type Z = ReshapeRule<["B", 197, 768], ["B", -1, 64]>; // ["B", 2364, 64]
 * type E = ReshapeRule<[2, 3], [-1, 4]>;
 * // "reshape: cannot infer -1 in [-1, 4] from [2, 3]: 6 elements are not a multiple of 4"
 * ```
 */
export type ReshapeRule<S extends TShape, T extends TShape> = DynamicRank<T> extends true ? T
  : ScanTarget<T> extends infer R ? (
      R extends { bad: infer D } ? ShapeErrorType<
          `reshape: cannot reshape ${ShapeText<S>} to ${ShapeStr<T>}: target dim ${DimStr<
            D
          >} is not a size or -1`
        >
        : R extends {
          nums: infer TN extends number[];
          syms: infer TY extends string[];
          holes: infer H extends number;
          dyn: infer TD extends boolean;
        } ? (
            H extends 0 | 1 ? (DynamicRank<S> extends true ? (H extends 0 ? T : Fill<T, number>)
                : CountRule<S, T, TN, TY, H, TD>)
              : ShapeErrorType<
                `reshape: cannot reshape ${ShapeText<S>} to ${ShapeStr<T>}: only one dim can be -1`
              >
          )
        : TShape
    )
  : TShape;

/**
 * The compile-time check of `reshape(S -> T)`: `unknown` when {@linkcode ReshapeRule} gives
 * a shape, else its error message.
 *
 * @example
 * ```ts
 * import type { ReshapeCheck } from "./reshape.ts";
 * type E = ReshapeCheck<["B", 3, 196], ["B", 196, 4]>;
 * // "reshape: [B, 3, 196] has B*588 elements but [B, 196, 4] has B*784"
 * ```
 */
export type ReshapeCheck<S extends TShape, T extends TShape> = ReshapeRule<S, T> extends infer R
  ? (R extends TShape ? unknown : R)
  : unknown;

/**
 * The output shape of `reshape(S -> T)`: `T` with its `-1` inferred (`TShape` when the check
 * fails, so an erroring call still has a usable type).
 *
 * @example
 * ```ts
 * import type { ReshapeShape } from "./reshape.ts";
 * type Y = ReshapeShape<["B", 197, 768], ["B", -1, 12, 64]>; // ["B", 197, 12, 64]
 * ```
 */
export type ReshapeShape<S extends TShape, T extends TShape> = ReshapeRule<S, T> extends
  infer R extends TShape ? R : TShape;

// ---------------------------------------------------------------------------
// Runtime rule
// ---------------------------------------------------------------------------

/** An element count: an exact coefficient times sorted symbolic factors. */
interface Count {
  readonly coeff: bigint;
  readonly symbols: readonly string[];
}

function countOf(dims: Shape): Count {
  let coeff = 1n;
  const symbols: string[] = [];
  for (const d of dims) {
    if (typeof d === "number") {
      coeff *= BigInt(d);
      continue;
    }
    for (const part of d.split("*")) {
      if (/^\d+$/.test(part)) coeff *= BigInt(part);
      else symbols.push(unwrap(part));
    }
  }
  return { coeff, symbols: symbols.sort() };
}

/** A factor without its parentheses: `"(N+1)"` in `"B*(N+1)"` is the dim `"N+1"`. */
function unwrap(factor: string): string {
  return factor.startsWith("(") && factor.endsWith(")") ? factor.slice(1, -1) : factor;
}

/** A count as `productOf` writes it: `588`, `B*588`, `B`, or `0`. */
function countText(c: Count): string {
  if (c.symbols.length === 0 || c.coeff === 0n) return String(c.coeff);
  const names = c.symbols.join("*");
  return c.coeff === 1n ? names : `${names}*${c.coeff}`;
}

/** `from` with one occurrence of each of `take` removed, or `undefined` if one is missing. */
function minus(from: readonly string[], take: readonly string[]): string[] | undefined {
  const left = [...from];
  for (const t of take) {
    const i = left.indexOf(t);
    if (i < 0) return undefined;
    left.splice(i, 1);
  }
  return left;
}

/**
 * Resolves a reshape target against the input shape with `torch.reshape` semantics: returns
 * the target with its one `-1` (if any) inferred from the element count, or the reason it is
 * invalid (the same text the type rule gives after `reshape: `). An inferred dim that keeps
 * symbolic factors is a symbolic product such as `"B*197"`. Counts are exact at any size.
 *
 * @example
 * ```ts
 * import { resolveReshape } from "./reshape.ts";
 * resolveReshape([2, 197, 768], [2, -1, 12, 64]); // [2, 197, 12, 64]
 * resolveReshape(["B", 197, 768], [-1, 768]); // ["B*197", 768]
 * resolveReshape([2, 3], [-1, 4]); // "cannot infer -1 in [-1, 4] from [2, 3]: 6 elements ..."
 * ```
 */
export function resolveReshape(x: Shape, target: Shape): Dim[] | string {
  const from = formatShape(x);
  const to = formatShape(target);
  for (const d of target) {
    if (typeof d === "string" || isValidSize(d) || d === -1) continue;
    return `cannot reshape ${from} to ${to}: target dim ${String(d)} is not a size or -1`;
  }
  const holes = target.filter((d) => d === -1).length;
  if (holes > 1) return `cannot reshape ${from} to ${to}: only one dim can be -1`;
  const src = countOf(x);
  if (holes === 0) {
    const dst = countOf(target);
    const same = src.coeff === dst.coeff &&
      (src.coeff === 0n || src.symbols.join("*") === dst.symbols.join("*"));
    return same
      ? [...target]
      : `${from} has ${countText(src)} elements but ${to} has ${countText(dst)}`;
  }
  const hole = target.indexOf(-1);
  const rest = countOf(target.filter((_, i) => i !== hole));
  const cannot = (why: string) => `cannot infer -1 in ${to} from ${from}: ${why}`;
  let inferred: Dim;
  if (src.coeff === 0n) {
    if (rest.coeff === 0n) return cannot("the other dims hold 0 elements, so -1 is ambiguous");
    inferred = 0;
  } else {
    const left = minus(src.symbols, rest.symbols);
    if (!left || rest.coeff === 0n || src.coeff % rest.coeff !== 0n) {
      return cannot(`${countText(src)} elements are not a multiple of ${countText(rest)}`);
    }
    const q = src.coeff / rest.coeff;
    if (left.length === 0) {
      if (q > BigInt(Number.MAX_SAFE_INTEGER)) {
        return cannot(`the inferred dim ${q} is above 2^53 - 1`);
      }
      inferred = Number(q);
    } else {
      inferred = countText({ coeff: q, symbols: left });
    }
  }
  return target.map((d, i) => (i === hole ? inferred : d));
}

/**
 * The runtime rule and reference semantics of `reshape`.
 *
 * @example
 * ```ts
 * import { reshapeOp } from "./reshape.ts";
 * reshapeOp.inferShape([["B", 3, 196]], { shape: ["B", 196, 3] }, "tokens"); // ["B", 196, 3]
 * reshapeOp.inferShape([["B", 3, 196]], { shape: ["B", -1, 3] }, "tokens"); // ["B", 196, 3]
 * ```
 */
export const reshapeOp: OpDef<ReshapeAttrs> = {
  kind: "reshape",
  inferShape(inputs: readonly Shape[], attrs: ReshapeAttrs, node: string): Dim[] {
    const resolved = resolveReshape(inputs[0], attrs.shape);
    if (typeof resolved === "string") throw new ShapeError("reshape", node, inputs, resolved);
    return resolved;
  },
  evaluate(inputs): Float32Array {
    return inputs[0].data.slice();
  },
};
