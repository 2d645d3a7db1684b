/**
 * Reusable typed blocks: a sub-graph written once over named dims (jaxtyping's `"b n d"` as a
 * tuple, `["B", "N", "H*Dh"]`), type-checked where it is written, and inlined at every call with
 * the dims bound to the caller's. The binding is checked twice, like every op: by the type rule
 * below (a compile error naming the block, the call's name and the dims) and by the same rule at
 * run time (`ShapeError`).
 *
 * A dim of the signature is a size, a name bound by the caller's shape (`"B"`, `"N"`), or a
 * product of names (`"H*Dh"`) solved for its one unknown name: with `heads: 12` binding `H`, a
 * width of 768 gives `Dh = 64`, and a width that `H` does not divide is the error.
 * @module
 */

import type { FloorDiv, Mod, Product } from "./shape_math.ts";
import type {
  Checked,
  DimsAgree,
  DimStr,
  ShapeErrorType,
  ShapeStr,
  SizeFault,
  StarFactors,
  TDim,
  TShape,
} from "./shape_types.ts";
import type { EvalDim } from "./dim_expr_types.ts";
import { type Dim, formatShape, ShapeError, sizeFault } from "./shape.ts";
import { evaluateDim } from "./dim_expr.ts";
import { GraphBuilder, type Tensor } from "./builder.ts";

/**
 * The dims a block is written over.
 *
 * @example
 * ```ts
 * import type { BlockSignature } from "./block.ts";
 * const sig: BlockSignature = {
 *   input: ["B", "N", "H*Dh"], // batch, tokens, width = heads * head width
 *   sizes: { heads: "H", mlpHidden: "M" }, // call options that bind a dim
 *   defaults: { M: "H*Dh*4" }, // used when the option is left out
 *   settings: { eps: 1e-6 }, // a call may override it
 * };
 * ```
 */
export interface BlockSignature {
  /** The input's dims: sizes, names, or products of names such as `"H*Dh"`. */
  readonly input: TShape;
  /** Call options that bind a dim to a size: option name to dim name. */
  readonly sizes?: Readonly<Record<string, string>>;
  /** Values of dims no option or input dim binds, as products of the others (`"H*Dh*4"`). */
  readonly defaults?: Readonly<Record<string, TDim>>;
  /** Other call options (not dims) with their defaults, such as `{ eps: 1e-6 }`. */
  readonly settings?: Readonly<Record<string, number | string | boolean>>;
}

/** @ignore */
type NamesIn<D> = D extends `${number}` ? never
  : D extends string ? Exclude<StarFactors<D>[number], `${number}`>
  : never;

/** @ignore */
type SizesOf<Sig extends BlockSignature> = Sig["sizes"] extends Readonly<Record<string, string>>
  ? Sig["sizes"]
  : Record<never, string>;

/** @ignore */
type DefaultsOf<Sig extends BlockSignature> = Sig["defaults"] extends Readonly<Record<string, TDim>>
  ? Sig["defaults"]
  : Record<never, TDim>;

/**
 * The dims a block's body gets as numbers, and that its parameters may use: those in products,
 * bound by options, or defaulted (a name bound only by a plain input dim, such as the batch
 * `"B"`, may stay symbolic at a call).
 *
 * @example
 * ```ts
 * import type { BlockSizes } from "./block.ts";
 * type S = BlockSizes<{ input: ["B", "N", "H*Dh"]; sizes: { heads: "H" } }>;
 * // { readonly H: number; readonly Dh: number }
 * ```
 */
export type BlockSizes<Sig extends BlockSignature> = {
  readonly [K in SizedDims<Sig>]: number;
};

/** @ignore */
type SizedDims<Sig extends BlockSignature> =
  | NamesIn<Extract<Sig["input"][number], `${string}*${string}`>>
  | Extract<SizesOf<Sig>[keyof SizesOf<Sig>], string>
  | (keyof DefaultsOf<Sig> & string);

/**
 * A block's settings as its body sees them: the call's value, else the signature's default.
 *
 * @example
 * ```ts
 * import type { BlockSettings } from "./block.ts";
 * type S = BlockSettings<{ input: ["N"]; settings: { eps: 1e-6 } }>; // { readonly eps: number }
 * ```
 */
export type BlockSettings<Sig extends BlockSignature> = {
  readonly [K in keyof SettingsOf<Sig>]: Widen<SettingsOf<Sig>[K]>;
};

/** @ignore */
type SettingsOf<Sig extends BlockSignature> = Sig["settings"] extends
  Readonly<Record<string, number | string | boolean>> ? Sig["settings"]
  : Record<never, number>;

/** @ignore */
type Widen<V> = V extends number ? number : V extends string ? string : boolean;

/**
 * What a block call takes: `name` (the parameter prefix and the output's label), one size per
 * `sizes` option (optional where the dim has a default), and any of the settings.
 *
 * @example
 * ```ts
 * import type { BlockOptions } from "./block.ts";
 * type O = BlockOptions<{ input: ["B", "N", "H*Dh"]; sizes: { heads: "H" } }>;
 * const o: O = { heads: 12, name: "blocks.0" };
 * ```
 */
export type BlockOptions<Sig extends BlockSignature> =
  & { readonly name: string }
  & {
    readonly [K in keyof SizesOf<Sig> as SizesOf<Sig>[K] extends keyof DefaultsOf<Sig> ? never : K]:
      number;
  }
  & {
    readonly [
      K in keyof SizesOf<Sig> as SizesOf<Sig>[K] extends keyof DefaultsOf<Sig> ? K : never
    ]?: number;
  }
  & Partial<BlockSettings<Sig>>;

/** @ignore */
type Fail<Op extends string, O, Msg extends string> = ShapeErrorType<
  `${Op} ${O extends { readonly name: infer N extends string } ? N : ""}: ${Msg}`
>;

/**

 * The option sizes as an environment, after checking each is a positive integer.

 * @ignore

 */
type OptionEnv<
  Op extends string,
  Sizes,
  O,
  Keys extends unknown[],
  E = unknown,
> = Keys extends [infer K extends keyof Sizes & string, ...infer R]
  ? K extends keyof O
    ? O[K] extends number
      ? SizeFault<K, O[K], 1> extends ""
        ? OptionEnv<Op, Sizes, O, R, E & { [D in Sizes[K] & string]: O[K] }>
      : Fail<Op, O, SizeFault<K, O[K], 1>>
    : OptionEnv<Op, Sizes, O, R, E>
  : OptionEnv<Op, Sizes, O, R, E>
  : E;

/** @ignore */
type KeysOf<T> = UnionToTuple<keyof T>;
/** @ignore */
type UnionToTuple<U, Acc extends unknown[] = []> = [U] extends [never] ? Acc
  : LastOf<U> extends infer L ? UnionToTuple<Exclude<U, L>, [L, ...Acc]>
  : Acc;
/** @ignore */
type LastOf<U> = (U extends unknown ? (f: () => U) => void : never) extends (f: infer F) => void
  ? F extends () => infer L ? L : never
  : never;

/**

 * Pass 1: sizes and plain names of the signature against the caller's dims.

 * @ignore

 */
type BindPlain<
  Op extends string,
  O,
  Sig extends TShape,
  S extends TShape,
  E,
  I extends unknown[] = [],
> = I["length"] extends Sig["length"] ? E
  : Sig[I["length"]] extends infer D
    ? D extends `${string}*${string}` ? BindPlain<Op, O, Sig, S, E, [...I, 0]>
    : D extends number ? (
        DimsAgree<D, S[I["length"]]> extends true ? BindPlain<Op, O, Sig, S, E, [...I, 0]>
          : Fail<Op, O, `input dim ${I["length"]} is ${DimStr<S[I["length"]]>}, expected ${D}`>
      )
    : D extends keyof E ? (
        DimsAgree<E[D], S[I["length"]]> extends true ? BindPlain<Op, O, Sig, S, E, [...I, 0]>
          : Fail<
            Op,
            O,
            `${D & string} is ${DimStr<E[D]>} but input dim ${I["length"]} is ${DimStr<
              S[I["length"]]
            >}`
          >
      )
    : BindPlain<Op, O, Sig, S, E & { [K in D & string]: S[I["length"]] }, [...I, 0]>
  : E;

/**

 * Pass 2: each product dim, solved for its one unbound name.

 * @ignore

 */
type BindProducts<
  Op extends string,
  O,
  Sizes,
  Sig extends TShape,
  S extends TShape,
  E,
  I extends unknown[] = [],
> = I["length"] extends Sig["length"] ? E
  : Sig[I["length"]] extends `${string}*${string}` ? (
      SolveProduct<Op, O, Sizes, Sig[I["length"]] & string, S[I["length"]], E> extends infer R
        ? (R extends ShapeErrorType<string> ? R
          : BindProducts<Op, O, Sizes, Sig, S, R, [...I, 0]>)
        : never
    )
  : BindProducts<Op, O, Sizes, Sig, S, E, [...I, 0]>;

/**

 * Splits a product's factors into the known sizes and the unbound names.

 * @ignore

 */
type SplitFactors<F extends string[], E, Known extends number[] = [], Free extends string[] = []> =
  F extends [infer H extends string, ...infer R extends string[]]
    ? H extends `${infer N extends number}` ? SplitFactors<R, E, [...Known, N], Free>
    : H extends keyof E ? (E[H] extends number ? SplitFactors<R, E, [...Known, E[H]], Free>
        : "symbolic")
    : SplitFactors<R, E, Known, [...Free, H]>
    : { known: Known; free: Free };

/**

 * How the bound factors of a product read in a message: `H = 5 (heads)`.

 * @ignore

 */
type KnownStr<F extends string[], E, Sizes, Acc extends string = ""> = F extends
  [infer H extends string, ...infer R extends string[]] ? KnownStr<
    R,
    E,
    Sizes,
    H extends keyof E
      ? `${Acc extends "" ? "" : `${Acc}, `}${H} = ${DimStr<E[H]>}${OptionOf<Sizes, H>}`
      : Acc
  >
  : Acc;

/** @ignore */
type OptionOf<Sizes, D extends string> = {
  [K in keyof Sizes]: Sizes[K] extends D ? K : never;
}[keyof Sizes] extends infer K extends string ? ([K] extends [never] ? "" : ` (${K})`) : "";

/** @ignore */
type SolveProduct<Op extends string, O, Sizes, P extends string, X, E> =
  SplitFactors<StarFactors<P>, E> extends
    { known: infer K extends number[]; free: infer F extends string[] } ? (
      F extends [] ? (
          DimsAgree<Product<K>, X> extends true ? E
            : Fail<Op, O, `input dim ${DimStr<X>} must be ${P} = ${Product<K>}`>
        )
        : F extends [infer U extends string] ? (
            number extends X ? E & { [N in U]: number }
              : X extends number ? (
                  number extends Product<K> ? E & { [N in U]: number }
                    : Mod<X, Product<K>> extends 0 ? E & { [N in U]: FloorDiv<X, Product<K>> }
                    : Fail<
                      Op,
                      O,
                      `input dim ${X} must be ${P}, but ${KnownStr<
                        StarFactors<P>,
                        E,
                        Sizes
                      >} does not divide ${X}`
                    >
                )
              : Fail<Op, O, `input dim ${DimStr<X>} must be a concrete size (it is ${P})`>
          )
        : Fail<Op, O, `input dim ${DimStr<X>} = ${P} leaves ${F[0]} and ${F[1]} both unknown`>
    )
    : Fail<Op, O, `input dim ${DimStr<X>} = ${P} needs concrete sizes for its factors`>;

/**

 * Pass 3: the defaults of dims still unbound.

 * @ignore

 */
type WithDefaults<Defs, E> =
  & E
  & { [K in Exclude<keyof Defs, keyof E>]: EvalDim<Defs[K] & TDim, E & Record<string, TDim>> };

/** @ignore */
type Flat<E> = { [K in keyof E]: E[K] };

/**
 * The dims a call binds (an object type from dim name to the caller's dim), or the
 * `ShapeErrorType` saying why the call does not fit the signature.
 *
 * @example
 * ```ts
 * import type { BlockBinding } from "./block.ts";
 * type E = BlockBinding<"mha", { input: ["B", "N", "H*Dh"]; sizes: { heads: "H" } }, ["B", 197, 768], { heads: 12; name: "a" }>;
 * // { H: 12; B: "B"; N: 197; Dh: 64 }
 * ```
 */
export type BlockBinding<Op extends string, Sig extends BlockSignature, S extends TShape, O> =
  // The order of the runtime rule: option sizes, rank, plain dims, products, defaults.
  OptionEnv<Op, SizesOf<Sig>, O, KeysOf<SizesOf<Sig>>> extends infer E0
    ? E0 extends ShapeErrorType<string> ? E0
      // Rank unknown statically: unchecked here, every output dim `number`; the run time checks.
    : number extends S["length"] ? Record<string, number>
    : S["length"] extends Sig["input"]["length"]
      ? BindPlain<Op, O, Sig["input"], S, E0> extends infer E1
        ? E1 extends ShapeErrorType<string> ? E1
        : BindProducts<Op, O, SizesOf<Sig>, Sig["input"], S, E1> extends infer E2
          ? E2 extends ShapeErrorType<string> ? E2
          : Flat<WithDefaults<DefaultsOf<Sig>, E2>>
        : never
      : never
    : Fail<
      Op,
      O,
      `input has rank ${S["length"]}, expected ${Sig["input"]["length"]} ${ShapeStr<
        Sig["input"]
      >}`
    >
    : never;

/**
 * The block's output shape at a call: its body's output dims with the binding substituted.
 *
 * @example
 * ```ts
 * import type { BlockShape } from "./block.ts";
 * type Y = BlockShape<["B", "N", "H*Dh"], { B: "B"; N: 197; H: 12; Dh: 64 }>; // ["B", 197, 768]
 * ```
 */
export type BlockShape<Out extends TShape, E> = BlockShapeLoop<Out, E, []>;

/** @ignore */
type BlockShapeLoop<Out extends TShape, E, Acc extends TDim[]> = Out extends
  readonly [infer H extends TDim, ...infer R extends TShape]
  ? BlockShapeLoop<R, E, [...Acc, H extends keyof E ? E[H] & TDim : EvalDim<H, Mentioned<E, H>>]>
  : number extends Out["length"] ? TDim[]
  : Acc;

/**
 * The bindings an output dim may mention (names that occur in its text), so that a wide
 * `number` binding makes only the dims that use it `number`.
 * @ignore
 */
type Mentioned<E, D extends TDim> = {
  [K in keyof E & string as D extends `${string}${K}${string}` ? K : never]: E[K] & TDim;
};

/**
 * A block, callable like a builder method: `block(g, x, { heads: 12, name: "blocks.0" })`.
 *
 * @example
 * ```ts
 * import type { Block } from "./block.ts";
 * type MHA = Block<"mha", { input: ["B", "N", "H*Dh"]; sizes: { heads: "H" } }, ["B", "N", "H*Dh"]>;
 * ```
 */
export type Block<Op extends string, Sig extends BlockSignature, Out extends TShape> = <
  Sym extends string,
  S extends TShape,
  const O extends BlockOptions<Sig>,
>(
  g: GraphBuilder<Sym>,
  x: Tensor<S>,
  options: Checked<O, BlockCheck<Op, Sig, S, O>>,
) => Tensor<BlockBinding<Op, Sig, S, O> extends infer E ? BlockShape<Out, E> : never>;

/**
 * `unknown` when a call fits the block's signature, else the binding's error.
 *
 * @example
 * ```ts
 * import type { BlockCheck } from "./block.ts";
 * type E = BlockCheck<"mha", { input: ["B", "N", "H*Dh"]; sizes: { heads: "H" } }, ["B", 197, 768], { heads: 5; name: "a" }>;
 * // "mha a: input dim 768 must be H*Dh, but H = 5 (heads) does not divide 768"
 * ```
 */
export type BlockCheck<Op extends string, Sig extends BlockSignature, S extends TShape, O> =
  BlockBinding<Op, Sig, S, O> extends infer E extends ShapeErrorType<string> ? E : unknown;

/**
 * Defines a reusable block: `body` builds it once per call on a builder whose input has the
 * signature's symbolic dims, so every op inside is type-checked against those dims where the
 * block is written; the call binds them to the caller's dims, checks the binding, and inlines
 * the sub-graph with its parameters named `<name>.<param>` and its output labelled `name`.
 *
 * @example
 * ```ts
 * import { block } from "./block.ts";
 * import { graph } from "./builder.ts";
 * const mlp = block("mlp", { input: ["B", "N", "D"], sizes: { hidden: "M", width: "D" } },
 *   (g, x) => g.linear(g.gelu(g.linear(x, { in: "D", out: "M", name: "fc1" })), {
 *     in: "M",
 *     out: "D",
 *     name: "fc2",
 *   }));
 * const net = graph("net", (g) => {
 *   const x = g.input("x", ["B", 197, 192]);
 *   return mlp(g, x, { hidden: 768, width: 192, name: "blocks.0.mlp" }); // ["B", 197, 192]
 * });
 * ```
 */
export function block<
  const Op extends string,
  const Sig extends BlockSignature,
  Out extends TShape,
>(
  op: Op,
  signature: Sig,
  body: (
    g: GraphBuilder<keyof BlockSizes<Sig> & string>,
    x: Tensor<Sig["input"]>,
    sizes: BlockSizes<Sig>,
    settings: BlockSettings<Sig>,
  ) => Tensor<Out>,
): Block<Op, Sig, Out> {
  // Parameters may use the dims that are sizes at every call, not a name the caller may leave
  // symbolic (the batch).
  const sized = sizedDims(signature);
  return (<Sym extends string, S extends TShape, const O extends BlockOptions<Sig>>(
    g: GraphBuilder<Sym>,
    x: Tensor<S>,
    checkedOptions: Checked<O, BlockCheck<Op, Sig, S, O>>,
  ) => {
    const options = checkedOptions as BlockCall;
    const dims = bindBlock(op, signature, x.shape, options);
    const sub = new GraphBuilder<keyof BlockSizes<Sig> & string>(
      sized as (keyof BlockSizes<Sig> & string)[],
    );
    // The signature was checked by `block`'s own type; the input's dims are the block's names.
    const input = sub.input("input", signature.input as TShape) as Tensor<TShape> as Tensor<
      Sig["input"]
    >;
    const sizes = Object.fromEntries(
      sized.map((d) => [d, dims[d]]),
    ) as BlockSizes<Sig>;
    const settings = Object.fromEntries(
      Object.entries(signature.settings ?? {}).map(([k, v]) => [k, options[k] ?? v]),
    ) as BlockSettings<Sig>;
    const out = body(sub, input, sizes, settings);
    const y = g.inline(sub.build(op, out), [x], { dims, prefix: options.name });
    return g.label(y, options.name);
  }) as Block<Op, Sig, Out>;
}

/** A call's options as the runtime sees them. */
interface BlockCall {
  readonly name: string;
  readonly [size: string]: unknown;
}

function factorsOf(d: Dim): string[] {
  return typeof d === "number" ? [] : d.split("*").filter((f) => Number.isNaN(Number(f)));
}

function sizedDims(sig: BlockSignature): string[] {
  const all = [
    ...sig.input.flatMap((d) => (String(d).includes("*") ? factorsOf(d) : [])),
    ...Object.values(sig.sizes ?? {}),
    ...Object.keys(sig.defaults ?? {}),
  ];
  return [...new Set(all)];
}

/**
 * The runtime binding of a block call, the same rule as `BlockBinding`: option sizes, then plain
 * dims, then products solved for their one unbound name, then defaults. Throws `ShapeError`
 * with the type rule's message.
 */
function bindBlock(
  op: string,
  sig: BlockSignature,
  shape: readonly Dim[],
  options: BlockCall,
): Record<string, Dim> {
  const fail = (why: string): never => {
    throw new ShapeError(op, options.name, [shape], why);
  };
  const env: Record<string, Dim> = {};
  for (const [key, dim] of Object.entries(sig.sizes ?? {})) {
    const value = options[key];
    if (value === undefined) continue;
    const fault = sizeFault(key, value, 1);
    if (fault) fail(fault);
    env[dim] = value as number;
  }
  if (shape.length !== sig.input.length) {
    fail(
      `input has rank ${shape.length}, expected ${sig.input.length} ${formatShape(sig.input)}`,
    );
  }
  sig.input.forEach((d, i) => {
    const x = shape[i];
    if (typeof d === "number") {
      if (d !== x) fail(`input dim ${i} is ${x}, expected ${d}`);
    } else if (!d.includes("*")) {
      if (!Object.hasOwn(env, d)) env[d] = x;
      else if (env[d] !== x) fail(`${d} is ${env[d]} but input dim ${i} is ${x}`);
    }
  });
  sig.input.forEach((d, i) => {
    if (typeof d === "string" && d.includes("*")) solveProduct(d, shape[i], env, sig, fail);
  });
  for (const [dim, value] of Object.entries(sig.defaults ?? {})) {
    if (!Object.hasOwn(env, dim)) env[dim] = evaluateDim(value, env);
  }
  return env;
}

function solveProduct(
  product: string,
  x: Dim,
  env: Record<string, Dim>,
  sig: BlockSignature,
  fail: (why: string) => never,
): void {
  let known = 1;
  const free: string[] = [];
  for (const f of product.split("*")) {
    const n = Number(f);
    if (!Number.isNaN(n)) known *= n;
    else if (!Object.hasOwn(env, f)) free.push(f);
    else if (typeof env[f] === "number") known *= env[f] as number;
    else fail(`input dim ${x} = ${product} needs concrete sizes for its factors`);
  }
  if (free.length === 0) {
    if (known !== x) fail(`input dim ${x} must be ${product} = ${known}`);
    return;
  }
  if (free.length > 1) {
    fail(`input dim ${x} = ${product} leaves ${free[0]} and ${free[1]} both unknown`);
  }
  if (typeof x !== "number") fail(`input dim ${x} must be a concrete size (it is ${product})`);
  const size = x as number;
  if (size % known !== 0) {
    const bound = product.split("*").filter((f) => Object.hasOwn(env, f)).map((f) => {
      const option = Object.entries(sig.sizes ?? {}).find(([, d]) => d === f)?.[0];
      return `${f} = ${env[f]}${option ? ` (${option})` : ""}`;
    });
    fail(`input dim ${size} must be ${product}, but ${bound.join(", ")} does not divide ${size}`);
  }
  env[free[0]] = size / known;
}
