/**
 * The typed graph builder. Every method computes its output shape twice: in the type checker,
 * from the op's type rule (a bad shape is a compile error with a readable message), and at run
 * time, from the op's runtime rule (a bad shape is a `ShapeError`). Both live in `ops/<op>.ts`.
 * @module
 */

import type {
  Checked,
  ClassTokenCheck,
  DimsAgree,
  DimsCheck,
  DimStr,
  DynamicRank,
  FirstError,
  ShapeErrorType,
  ShapeStr,
  TDim,
  TShape,
  WidenUnionDims,
} from "./shape_types.ts";
import type { Lt } from "./shape_math.ts";
import {
  type Dim,
  dimFault,
  formatShape,
  isValidSize,
  normalizeAxis,
  type Shape,
  ShapeError,
} from "./shape.ts";
import { evaluateDim } from "./dim_expr.ts";
import type { AddDims } from "./dim_expr_types.ts";
import { type AnyNode, type AttrsOf, Graph, type ParamInit } from "./ir.ts";
import { OPS } from "../ops/registry.ts";
import type { OpDef } from "../ops/op.ts";
import {
  type ChannelCheck,
  type Conv2dCheck,
  type Conv2dOptions,
  conv2dOptionsFault,
  type Conv2dShape,
} from "../ops/conv2d.ts";
import type { FlattenShape } from "../ops/flatten.ts";
import { type ReshapeCheck, type ReshapeShape, resolveReshape } from "../ops/reshape.ts";
import type { PermuteShape, TransposeShape } from "../ops/permute.ts";
import type { LinearCheck, LinearOptions, LinearShape } from "../ops/linear.ts";
import type { ConcatAxisCheck, ConcatOperandCheck, ConcatShape } from "../ops/concat.ts";
import type { BroadcastCheck, BroadcastShape } from "../ops/broadcast.ts";
import type { ResizeShape } from "../ops/resize.ts";
import type { ToTensorShape } from "../ops/to_tensor.ts";
import type { BinaryCheck, BinaryShape } from "../ops/binary.ts";
import type { LayerNormCheck, LayerNormOptions } from "../ops/layer_norm.ts";
import type { SoftmaxCheck } from "../ops/softmax.ts";
import type { GeluApproximate, GeluCheck, GeluOptions } from "../ops/gelu.ts";
import type { MatmulCheck, MatmulShape } from "../ops/matmul.ts";
import type { SelectShape } from "../ops/select.ts";
import type { SliceShape } from "../ops/slice.ts";
import type { MeanOptions, MeanShape } from "../ops/mean.ts";

/**
 * A symbolic tensor in a graph under construction. `S` is its shape as the type checker sees it.
 *
 * @example
 * ```ts
 * import { graph } from "./builder.ts";
 * graph("g", (b) => {
 *   const x = b.input("x", ["B", 3, 32, 32]); // Tensor<readonly ["B", 3, 32, 32]>
 *   return x;
 * });
 * ```
 */
export class Tensor<S extends TShape> {
  /** The node that produces this tensor. */
  readonly id: number;
  /** The runtime shape, mirroring `S`. */
  readonly shape: S;
  /** The graph under construction that made it (a tensor only works in its own graph). */
  readonly graph: object | undefined;

  /** Created by `GraphBuilder` methods only. */
  constructor(id: number, shape: S, graph?: object) {
    this.id = id;
    this.shape = shape;
    this.graph = graph;
  }
}

/**
 * Turns a type rule's result into a shape, so an erroring call still has a usable return type.
 * @ignore
 */
type Ok<R> = R extends TShape ? R : TShape;
/**
 * Turns a type rule's result into a parameter check: `unknown` or the error message.
 * @ignore
 */
type Check<R> = R extends TShape ? unknown : R;

/**
 * The shape after a class token `[1, 1, D]` is prepended to `[B, N, D]`.
 *
 * @example
 * ```ts
 * import type { PrependShape } from "./builder.ts";
 * type Y = PrependShape<["B", 196, 768]>; // ["B", 197, 768]
 * ```
 */
export type PrependShape<S extends TShape> = S extends
  readonly [infer B, infer N extends TDim, infer D] ? [B, AddDims<1, N>, D]
  : TShape;

/**
 * The compile-time check of a class-token prepend: a `[B, N, D]` sequence and a `[1, 1, D]` token.
 *
 * @example
 * ```ts
 * import type { PrependCheck } from "./builder.ts";
 * type E = PrependCheck<["B", 196, 768], [1, 1, 512]>;
 * // "prependToken: class token [1, 1, 512] has width 512 but the tokens [B, 196, 768] have width 768"
 * ```
 */
export type PrependCheck<S extends TShape, T extends TShape> = DynamicRank<S> extends true ? unknown
  : DynamicRank<T> extends true ? unknown
  : S extends readonly [TDim, TDim, infer D] ? (
      T extends readonly [infer One, infer OneToo, infer W]
        ? (DimsAgree<One, 1> extends true ? (DimsAgree<OneToo, 1> extends true ? (
              DimsAgree<W, D> extends true ? unknown
                : ShapeErrorType<
                  `prependToken: class token ${ShapeStr<T>} has width ${DimStr<
                    W
                  >} but the tokens ${ShapeStr<S>} have width ${DimStr<D>}`
                >
            )
            : PrependTokenShapeError<T>)
          : PrependTokenShapeError<T>)
        : PrependTokenShapeError<T>
    )
  : ShapeErrorType<`prependToken: tokens ${ShapeStr<S>} must be [batch, tokens, width]`>;

/** @ignore */
type PrependTokenShapeError<T extends TShape> = ShapeErrorType<
  `prependToken: class token ${ShapeStr<T>} must be [1, 1, width]`
>;

/**
 * The compile-time check of `expand(S -> T)`: the target rank is at least the input's (new
 * dims are added in front, as in torch), and only dims of size 1 may grow.
 *
 * @example
 * ```ts
 * import type { ExpandCheck } from "./builder.ts";
 * type Ok = ExpandCheck<[1, 1, 768], ["B", 1, 768]>; // unknown
 * type E = ExpandCheck<[1, 2, 3], [2, 3]>;
 * // "expand: cannot expand [1, 2, 3] to [2, 3]: target rank 2 is below the input's rank 3"
 * ```
 */
export type ExpandCheck<S extends TShape, T extends TShape> = DynamicRank<S> extends true ? unknown
  : DynamicRank<T> extends true ? unknown
  : Lt<T["length"], S["length"]> extends true ? ShapeErrorType<
      `expand: cannot expand ${ShapeStr<S>} to ${ShapeStr<T>}: target rank ${T[
        "length"
      ]} is below the input's rank ${S["length"]}`
    >
  : ExpandDims<S, T>;

/** @ignore */
type ExpandDims<S extends TShape, T extends TShape> = BroadcastShape<S, T> extends
  infer R extends TShape ? (R["length"] extends T["length"] ? ExpandSame<R, T, S> : unknown)
  : ShapeErrorType<`expand: ${ShapeStr<S>} cannot expand to ${ShapeStr<T>}`>;

/** @ignore */
type ExpandSame<R extends TShape, T extends TShape, S extends TShape> = [R] extends [T] ? unknown
  : ShapeErrorType<`expand: ${ShapeStr<S>} cannot expand to ${ShapeStr<T>}`>;

/**
 * Options for a learned tensor added to a tensor (the positional embedding).
 *
 * @example
 * ```ts
 * import type { AddParamOptions } from "./builder.ts";
 * const o: AddParamOptions<readonly [1, 197, 768]> = {
 *   name: "positional_embedding.positional_embedding", shape: [1, 197, 768],
 * };
 * ```
 */
export interface AddParamOptions<P extends TShape> {
  /** Parameter name (a PyTorch `state_dict` key). */
  readonly name: string;
  /** Parameter shape, broadcast against the tensor. */
  readonly shape: P;
  /** Initialization when no weights are loaded; defaults to `randn` like the seed. */
  readonly init?: ParamInit;
}

/**
 * `keepdim` of mean's options; absent (`{}`) is `undefined`, torch's default.
 *
 * @example
 * ```ts
 * import type { KeepDim } from "./builder.ts";
 * type K = KeepDim<{}>; // undefined
 * ```
 */
export type KeepDim<O> = "keepdim" extends keyof O ? O["keepdim" & keyof O] : undefined;

/**
 * Records nodes; each method is one op. Obtain one through `graph()`.
 *
 * @example
 * ```ts
 * import { graph } from "./builder.ts";
 * const g = graph("tokens", (b) => {
 *   const x = b.input("image", ["B", 3, 32, 32]);
 *   const p = b.conv2d(x, { out: 8, kernel: 8, stride: 8, name: "proj" }); // ["B", 8, 4, 4]
 *   return b.transpose(b.flatten(p, 2, 3), 1, 2); // ["B", 16, 8]
 * });
 * ```
 */
export class GraphBuilder<Sym extends string = never> {
  readonly #nodes: AnyNode[] = [];
  readonly #names = new Set<string>();
  // Identifies this graph's tensors: ids index this graph's nodes only.
  readonly #token = {};
  // Dim names a parameter may use: a block's dims, bound to sizes when the block is inlined.
  readonly #symbols: ReadonlySet<string>;

  /**
   * An empty builder; `graph()` makes one. `symbols` are dim names its parameters may use
   * (a block's dims, see `block()`); a top-level graph has none, so its parameters are sizes.
   */
  constructor(symbols: readonly Sym[] = []) {
    this.#symbols = new Set(symbols);
  }

  /**
   * Declares a graph input. Dims may be sizes (safe integers >= 0), symbolic names, or
   * `number`; a literal dim that is negative, fractional or above 2^53 - 1 is a compile error.
   */
  input<const S extends TShape, const N extends string>(
    name: N,
    checkedShape: Checked<S, DimsCheck<"input", N, S>>,
  ): Tensor<WidenUnionDims<S>> {
    const shape = checkedShape as S;
    this.#checkShape("input", name, shape);
    return this.#leaf<WidenUnionDims<S>, "input">("input", name, { name }, shape);
  }

  /** Declares a named parameter (a learned tensor); `init` applies when no weights are loaded. */
  param<const S extends TShape>(
    name: string,
    shape: S,
    init: ParamInit = { kind: "randn" },
  ): Tensor<S> {
    this.#checkShape("param", name, shape);
    if (!shape.every((d) => this.#paramDim(d))) {
      throw new ShapeError("param", name, [shape], "parameter dims must be concrete sizes");
    }
    return this.#leaf("param", name, { name, init }, shape);
  }

  /** `torch.nn.Conv2d(C, out, kernel, stride, padding)` on `[N, C, H, W]`. */
  conv2d<S extends TShape, const O extends Conv2dOptions>(
    x: Tensor<S>,
    checkedOptions: Checked<
      O,
      FirstError<Conv2dCheck<S, O>, ChannelCheck<S, ChannelsOf<S>, O["name"]>>
    >,
  ): Tensor<Conv2dShape<S, O>> {
    const options = checkedOptions as O;
    const { out, kernel, name } = options;
    const stride = options.stride ?? 1;
    const padding = options.padding ?? 0;
    const channels = x.shape[1];
    const fault = conv2dOptionsFault(options);
    if (fault) throw new ShapeError("conv2d", name, [x.shape], fault);
    if (!isValidSize(channels)) {
      throw new ShapeError(
        "conv2d",
        name,
        [x.shape],
        `channels (${channels}), out (${out}) and kernel (${kernel}) must be concrete sizes`,
      );
    }
    const weightShape = [out, channels, kernel, kernel];
    // Check before registering parameters, so a failed call leaves the graph unchanged.
    const node = this.#nextName("conv2d", options.bias === false ? 1 : 2);
    OPS.conv2d.inferShape([x.shape, weightShape, [out]], { stride, padding }, node);
    const fanIn = channels * kernel * kernel;
    const weight = this.param(`${name}.weight`, weightShape, {
      kind: "kaiming_uniform",
      fanIn,
    });
    const inputs = [this.#own("conv2d", x), this.#own("conv2d", weight)];
    if (options.bias !== false) {
      inputs.push(this.param(`${name}.bias`, [out], { kind: "bias_uniform", fanIn }).id);
    }
    return this.#op("conv2d", inputs, { stride, padding });
  }

  /** `torch.flatten(x, start, end)`; negative axes count from the end. */
  flatten<S extends TShape, const A extends number, const B extends number>(
    x: Tensor<S>,
    start: A,
    end: Checked<B, Check<FlattenShape<S, A, B>>>,
  ): Tensor<Ok<FlattenShape<S, A, B>>> {
    const last = end as number;
    return this.#op(
      "flatten",
      [this.#own("flatten", x)],
      { start, end: last },
      (s) => normalizedFlatten(s, start, last),
    );
  }

  /**
   * `torch.reshape(x, shape)`: same elements, row-major order kept. One dim may be `-1`,
   * inferred from the element count; the node stores the resolved shape.
   */
  reshape<S extends TShape, const T extends TShape>(
    x: Tensor<S>,
    checkedShape: Checked<T, ReshapeCheck<S, T>>,
  ): Tensor<ReshapeShape<S, T>> {
    const shape = checkedShape as T;
    const target: Shape = [...shape];
    return this.#op("reshape", [this.#own("reshape", x)], { shape: target }, ([s]) => {
      const resolved = resolveReshape(s, target);
      // Left as given when invalid, so the rule throws the `ShapeError` with the node name.
      return { shape: typeof resolved === "string" ? target : resolved };
    });
  }

  /** `x.transpose(a, b)`, materialized (a permute of two axes). */
  transpose<S extends TShape, const A extends number, const B extends number>(
    x: Tensor<S>,
    a: A,
    b: Checked<B, Check<TransposeShape<S, A, B>>>,
  ): Tensor<Ok<TransposeShape<S, A, B>>> {
    const perm = x.shape.map((_, i) => i);
    const rank = x.shape.length;
    const bAxis = b as number;
    const [ia, ib] = [a < 0 ? a + rank : a, bAxis < 0 ? bAxis + rank : bAxis];
    if (perm[ia] === undefined || perm[ib] === undefined) {
      throw new ShapeError(
        "transpose",
        this.#nextName("permute"),
        [x.shape],
        `axes ${a} and ${bAxis} must lie in 0..${rank - 1} (or -${rank}..-1)`,
      );
    }
    [perm[ia], perm[ib]] = [perm[ib], perm[ia]];
    return this.#op("permute", [this.#own("transpose", x)], { perm });
  }

  /** `x.permute(perm)`, materialized. */
  permute<S extends TShape, const P extends readonly number[]>(
    x: Tensor<S>,
    perm: P & Check<PermuteShape<S, P>>,
  ): Tensor<Ok<PermuteShape<S, P>>> {
    return this.#op("permute", [this.#own("permute", x)], { perm: [...perm] });
  }

  /** `torch.nn.Linear(in, out)` over the last dim. */
  linear<S extends TShape, const O extends LinearOptions>(
    x: Tensor<S>,
    checkedOptions: Checked<O, LinearCheck<S, O, Sym>>,
  ): Tensor<LinearShape<S, O>> {
    const options = checkedOptions as O;
    const { name } = options;
    if (!this.#paramDim(options.in) || !this.#paramDim(options.out)) {
      throw new ShapeError("linear", name, [x.shape], "in and out must be concrete sizes");
    }
    const node = this.#nextName("linear", options.bias === false ? 1 : 2);
    const prospective = [x.shape, [options.out, options.in]];
    if (options.bias !== false) prospective.push([options.out]);
    OPS.linear.inferShape(prospective, {}, node);
    const weight = this.param(`${name}.weight`, [options.out, options.in], {
      kind: "kaiming_uniform",
      fanIn: options.in,
    });
    const inputs = [this.#own("linear", x), this.#own("linear", weight)];
    if (options.bias !== false) {
      inputs.push(
        this.param(`${name}.bias`, [options.out], { kind: "bias_uniform", fanIn: options.in }).id,
      );
    }
    return this.#op("linear", inputs, {});
  }

  /** `torch.cat([a, b], axis)`. A dim that differs is `b`'s error, a bad axis the axis's. */
  concat<A extends TShape, B extends TShape, const Axis extends number>(
    a: Tensor<A>,
    checkedB: Checked<Tensor<B>, ConcatOperandCheck<A, B, Axis>>,
    axis: Checked<Axis, ConcatAxisCheck<A, Axis>>,
  ): Tensor<ConcatShape<A, B, Axis>> {
    const b = checkedB as Tensor<B>;
    const at = axis as number;
    return this.#op("concat", [this.#own("concat", a), this.#own("concat", b)], {
      axis: normalizeAxis(at, a.shape.length) ?? at,
    });
  }

  /** `x.expand(shape)`, materialized. */
  expand<S extends TShape, const T extends TShape>(
    x: Tensor<S>,
    checkedShape: Checked<T, ExpandCheck<S, T>>,
  ): Tensor<T> {
    const shape = checkedShape as T;
    return this.#op("expand", [this.#own("expand", x)], { shape: [...shape] });
  }

  /** `a + b` with broadcasting; `b` may be a number. */
  add<A extends TShape, Y extends Tensor<TShape> | number>(
    a: Tensor<A>,
    checkedB: Checked<Y, BinaryCheck<A, Y, "add">>,
  ): Tensor<BinaryShape<A, Y>> {
    const b = checkedB as Y;
    return this.#binary("add", a, b);
  }

  /** `a - b` with broadcasting (`torch.sub`); `b` may be a number. */
  sub<A extends TShape, Y extends Tensor<TShape> | number>(
    a: Tensor<A>,
    checkedB: Checked<Y, BinaryCheck<A, Y, "sub">>,
  ): Tensor<BinaryShape<A, Y>> {
    const b = checkedB as Y;
    return this.#binary("sub", a, b);
  }

  /** `a * b` with broadcasting (`torch.mul`); `b` may be a number. */
  mul<A extends TShape, Y extends Tensor<TShape> | number>(
    a: Tensor<A>,
    checkedB: Checked<Y, BinaryCheck<A, Y, "mul">>,
  ): Tensor<BinaryShape<A, Y>> {
    const b = checkedB as Y;
    return this.#binary("mul", a, b);
  }

  /** `a / b` with broadcasting (`torch.div`, true division); `b` may be a number. */
  div<A extends TShape, Y extends Tensor<TShape> | number>(
    a: Tensor<A>,
    checkedB: Checked<Y, BinaryCheck<A, Y, "div">>,
  ): Tensor<BinaryShape<A, Y>> {
    const b = checkedB as Y;
    return this.#binary("div", a, b);
  }

  /**
   * `torch.nn.LayerNorm(D)` over the last dim (biased variance), with parameters
   * `<name>.weight` (ones) and `<name>.bias` (zeros) of shape `[D]`; `eps` defaults to 1e-5.
   */
  layerNorm<S extends TShape, const O extends LayerNormOptions>(
    x: Tensor<S>,
    checkedOptions: Checked<O, LayerNormCheck<S, O, Sym>>,
  ): Tensor<S> {
    const options = checkedOptions as O;
    const { name } = options;
    const eps = options.eps ?? 1e-5;
    const d = x.shape[x.shape.length - 1];
    const node = this.#nextName("layer_norm", 2);
    if (d !== undefined && !this.#paramDim(d)) {
      throw new ShapeError("layerNorm", node, [x.shape], `last dim ${d} must be a concrete size`);
    }
    // Checked before the parameters exist, so a failed call leaves the graph unchanged.
    OPS.layer_norm.inferShape([x.shape, [d], [d]], { eps }, node);
    const weight = this.param(`${name}.weight`, [d], { kind: "ones" });
    const bias = this.param(`${name}.bias`, [d], { kind: "zeros" });
    return this.#op("layer_norm", [
      this.#own("layerNorm", x),
      this.#own("layerNorm", weight),
      this.#own("layerNorm", bias),
    ], { eps });
  }

  /** `torch.softmax(x, axis)`, max-subtracted; negative axes count from the end. */
  softmax<S extends TShape, const A extends number>(
    x: Tensor<S>,
    axis: Checked<A, SoftmaxCheck<S, A>>,
  ): Tensor<S> {
    const at = axis as number;
    return this.#op("softmax", [this.#own("softmax", x)], {
      axis: normalizeAxis(at, x.shape.length) ?? at,
    });
  }

  /** `torch.nn.functional.gelu(x, approximate)`: exact (erf) by default, or `"tanh"`. */
  gelu<S extends TShape, const O extends GeluOptions = { approximate: "none" }>(
    x: Tensor<S>,
    checkedOptions?: Checked<O, GeluCheck<O>>,
  ): Tensor<S> {
    const options = checkedOptions as O | undefined;
    const approximate = (options?.approximate ?? "none") as GeluApproximate;
    return this.#op("gelu", [this.#own("gelu", x)], { approximate });
  }

  /** `torch.matmul(a, b)`: batched, batch dims broadcast; 1-D operands as in torch. */
  matmul<A extends TShape, B extends TShape>(
    a: Tensor<A>,
    checkedB: Checked<Tensor<B>, MatmulCheck<A, B>>,
  ): Tensor<Ok<MatmulShape<A, B>>> {
    const b = checkedB as Tensor<B>;
    return this.#op("matmul", [this.#own("matmul", a), this.#own("matmul", b)], {});
  }

  /** `torch.select(x, axis, index)`: `x[..., index, ...]`, the axis dropped. */
  select<S extends TShape, const A extends number, const I extends number>(
    x: Tensor<S>,
    axis: A,
    index: Checked<I, Check<SelectShape<S, A, I>>>,
  ): Tensor<Ok<SelectShape<S, A, I>>> {
    const at = axis as number;
    const attrs = { axis: normalizeAxis(at, x.shape.length) ?? at, index: index as number };
    return this.#op("select", [this.#own("select", x)], attrs);
  }

  /** `x[..., start:end, ...]` on one axis, step 1, with Python's clamping; `end` defaults to the end. */
  slice<
    S extends TShape,
    const A extends number,
    const St extends number,
    const E extends number | undefined = undefined,
  >(
    x: Tensor<S>,
    axis: A,
    start: Checked<St, Check<SliceShape<S, A, St, E>>>,
    end?: E,
  ): Tensor<Ok<SliceShape<S, A, St, E>>> {
    const at = axis as number;
    const attrs = {
      axis: normalizeAxis(at, x.shape.length) ?? at,
      start: start as number,
      ...(end === undefined ? {} : { end: end as number }),
    };
    return this.#op("slice", [this.#own("slice", x)], attrs);
  }

  /** `torch.mean(x, axis, keepdim)`; negative axes count from the end. */
  mean<
    S extends TShape,
    const A extends number,
    const O extends MeanOptions = { keepdim: false },
  >(
    x: Tensor<S>,
    axis: Checked<A, Check<MeanShape<S, A, KeepDim<O>>>>,
    options?: O,
  ): Tensor<Ok<MeanShape<S, A, KeepDim<O>>>> {
    const at = axis as number;
    const keepdim = options?.keepdim ?? false;
    return this.#op("mean", [this.#own("mean", x)], {
      axis: normalizeAxis(at, x.shape.length) ?? at,
      keepdim,
    });
  }

  /** Adds a learned parameter with broadcasting: the positional embedding. */
  addParam<S extends TShape, const P extends TShape>(
    x: Tensor<S>,
    options: AddParamOptions<P> & { readonly shape: Checked<P, BroadcastCheck<S, P, "addParam">> },
  ): Tensor<Ok<BroadcastShape<S, P>>> {
    const p = this.param(options.name, options.shape, options.init ?? { kind: "randn" });
    return this.#op("add", [this.#own("addParam", x), this.#own("addParam", p)], {});
  }

  /** Prepends a `[1, 1, D]` token to a `[B, N, D]` sequence: `cat([token.expand(B, 1, D), x], 1)`. */
  prependToken<S extends TShape, T extends TShape>(
    x: Tensor<S>,
    checkedToken: Checked<Tensor<T>, PrependCheck<S, T>>,
  ): Tensor<PrependShape<S>> {
    const token = checkedToken as Tensor<T>;
    return this.#prepend(x, token);
  }

  /**
   * Creates a `[1, 1, D]` class token named `name` (randn-initialized) and prepends it to a
   * `[B, N, D]` sequence; `D` must be a concrete size.
   */
  classToken<S extends TShape, const N extends string>(
    x: Tensor<S>,
    checkedOptions: Checked<{ readonly name: N }, ClassTokenCheck<S, N, Sym>>,
  ): Tensor<PrependShape<S>> {
    const options = checkedOptions as { readonly name: N };
    const { name } = options;
    const width = x.shape[x.shape.length - 1];
    // Checked before the token exists, so a failed call leaves the graph unchanged.
    if (x.shape.length !== 3) {
      throw new ShapeError("classToken", name, [x.shape], "input must be [batch, tokens, width]");
    }
    if (!this.#paramDim(width)) {
      throw new ShapeError(
        "classToken",
        name,
        [x.shape],
        `width ${String(width)} must be a concrete size`,
      );
    }
    const token = this.param(name, [1, 1, width], { kind: "randn" });
    return this.#prepend(x, token);
  }

  /** torchvision `ToTensor()` on raw HWC pixel values: `[B, H, W, C] -> [B, C, H, W]`, `x / 255`. */
  toTensor<S extends TShape>(
    x: Tensor<S> & Check<ToTensorShape<S>>,
  ): Tensor<Ok<ToTensorShape<S>>> {
    return this.#op("to_tensor", [this.#own("toTensor", x)], {});
  }

  /**
   * `TF.resize(x, [height, width], BILINEAR, antialias)` on `[N, C, h, w]` (align_corners=False).
   * `antialias` is required: torchvision 0.14 resizes tensors without it, >= 0.17 with it.
   */
  resize<S extends TShape, const H extends number, const W extends number>(
    x: Tensor<S>,
    options:
      & { readonly height: H; readonly width: W; readonly antialias: boolean }
      & Check<ResizeShape<S, H, W>>,
  ): Tensor<Ok<ResizeShape<S, H, W>>> {
    const { height, width, antialias } = options;
    return this.#op("resize", [this.#own("resize", x)], { height, width, antialias });
  }

  /**
   * Appends a copy of the graph `sub`, as torch.fx inlines a sub-module: its inputs become
   * `args` (in declaration order), its symbolic dims are replaced by `dims` (`{ H: 12, Dh: 64 }`)
   * and every op's runtime rule runs again on the new shapes; parameter names and labels get the
   * prefix `<prefix>.`. On any error this graph is left as it was. `block()` is built on it.
   *
   * @example
   * ```ts
   * import { graph } from "./builder.ts";
   * const mlp = graph("mlp", (b) => b.linear(b.input("x", ["N", 4]), { in: 4, out: 8, name: "fc" }));
   * const g = graph("net", (b) => {
   *   const y = b.inline(mlp, [b.input("tokens", [10, 4])], { prefix: "blocks.0" });
   *   return y; // [10, 8]; its parameters are blocks.0.fc.weight and blocks.0.fc.bias
   * });
   * ```
   */
  inline<S extends TShape = TShape>(
    sub: Graph<TShape>,
    args: readonly Tensor<TShape>[],
    options: InlineOptions = {},
  ): Tensor<S> {
    const dims = options.dims ?? {};
    const prefixed = (n: string): string => (options.prefix ? `${options.prefix}.${n}` : n);
    const bind = (shape: Shape): Dim[] => shape.map((d) => evaluateDim(d, dims));
    const inputs = sub.inputs();
    if (inputs.length !== args.length) {
      throw new ShapeError(
        "inline",
        sub.name,
        args.map((a) => a.shape),
        `${sub.name} takes ${inputs.length} inputs, got ${args.length}`,
      );
    }
    const mark = this.#nodes.length;
    const names = new Set(this.#names);
    try {
      const ids: number[] = [];
      let nextArg = 0;
      for (const node of sub.nodes) {
        let id: number;
        if (node.op === "input") {
          const arg = args[nextArg++];
          id = this.#own("inline", arg);
          const want = bind(node.shape);
          const fits = want.length === arg.shape.length &&
            want.every((d, i) => d === arg.shape[i]);
          if (!fits) {
            throw new ShapeError(
              "inline",
              prefixed(node.name),
              [arg.shape],
              `input ${node.attrs.name} must be ${formatShape(want)}`,
            );
          }
        } else if (node.op === "param") {
          const init = node.attrs.init;
          const boundInit = "fanIn" in init
            ? { ...init, fanIn: evaluateDim(init.fanIn, dims) }
            : init;
          id = this.param(prefixed(node.attrs.name), bind(node.shape), boundInit).id;
        } else {
          const attrs = "shape" in node.attrs
            ? { ...node.attrs, shape: bind(node.attrs.shape) }
            : node.attrs;
          id = this.#op(node.op, node.inputs.map((i) => ids[i]), attrs).id;
        }
        ids.push(id);
        // An input's label belongs to the caller's tensor, which inlining never edits.
        if (node.label && node.op !== "input") {
          for (const l of [node.label, ...(node.aliases ?? [])]) {
            this.label(new Tensor(id, this.#nodes[id].shape, this.#token), prefixed(l));
          }
        }
      }
      const out = ids[sub.output];
      return new Tensor(out, this.#nodes[out].shape as unknown as S, this.#token);
    } catch (e) {
      this.#nodes.length = mark;
      this.#names.clear();
      for (const n of names) this.#names.add(n);
      throw e;
    }
  }

  /**
   * Labels a tensor as a named stage (e.g. `"patches"`) so its value can be requested; a tensor
   * that already has a label gets `label` as an alias (one value, two stage names).
   */
  label<S extends TShape>(t: Tensor<S>, label: string): Tensor<S> {
    const id = this.#own("label", t);
    const node = this.#nodes[id];
    if (this.#nodes.some((n) => n.label === label || n.aliases?.includes(label))) {
      throw new ShapeError("label", node.name, [node.shape], `label "${label}" is already used`);
    }
    this.#nodes[id] =
      (node.label === undefined
        ? { ...node, label }
        : { ...node, aliases: [...(node.aliases ?? []), label] }) as AnyNode;
    return t;
  }

  /** Freezes the recorded nodes into a `Graph` whose output is `out`. */
  build<S extends TShape>(name: string, out: Tensor<S>): Graph<S> {
    return new Graph<S>(name, [...this.#nodes], this.#own("build", out));
  }

  #prepend<S extends TShape>(x: Tensor<S>, token: Tensor<TShape>): Tensor<PrependShape<S>> {
    const [batch, , width] = x.shape;
    const [one, oneToo, tokenWidth] = token.shape;
    const fits = x.shape.length === 3 && token.shape.length === 3 && one === 1 && oneToo === 1 &&
      tokenWidth === width;
    if (!fits) {
      throw new ShapeError(
        "prependToken",
        this.#nextName("concat"),
        [x.shape, token.shape],
        "tokens must be [batch, tokens, width] and the class token [1, 1, width]",
      );
    }
    const expanded = this.#op("expand", [this.#own("prependToken", token)], {
      shape: [batch, 1, width],
    });
    return this.#op("concat", [this.#own("prependToken", expanded), this.#own("prependToken", x)], {
      axis: 1,
    });
  }

  #binary<A extends TShape, R extends TShape>(
    op: "add" | "sub" | "mul" | "div",
    a: Tensor<A>,
    b: Tensor<TShape> | number,
  ): Tensor<R> {
    if (typeof b === "number") return this.#op(op, [this.#own(op, a)], { scalar: b });
    if (!(b instanceof Tensor)) {
      throw new ShapeError(op, this.#nextName(op), [a.shape], `y must be a tensor or a number`);
    }
    return this.#op(op, [this.#own(op, a), this.#own(op, b)], {});
  }

  /** The name the next `op` node gets, after `skip` nodes (its parameters) are added first. */
  #nextName(op: string, skip = 0): string {
    return `${op}_${this.#nodes.length + skip}`;
  }

  // A size, or a product of this builder's block dims ("H*Dh"); never a caller's free name.
  #paramDim(d: Dim): boolean {
    if (typeof d === "number") return isValidSize(d);
    if (dimFault(d) !== undefined) return false;
    return d.split("*").every((f) => this.#symbols.has(f) || isValidSize(Number(f)) && f !== "");
  }

  #checkShape(op: string, name: string, shape: Shape): void {
    if (!Array.isArray(shape)) {
      throw new ShapeError(op, name, [], `shape must be an array of dims, got ${String(shape)}`);
    }
    for (const d of shape) {
      const fault = dimFault(d);
      if (fault) throw new ShapeError(op, name, [shape], fault);
    }
    if (this.#names.has(name)) {
      throw new ShapeError(op, name, [shape], `the name "${name}" is already used in this graph`);
    }
  }

  #leaf<S extends TShape, K extends "input" | "param">(
    op: K,
    name: string,
    attrs: AttrsOf[K],
    shape: Shape,
  ): Tensor<S> {
    this.#names.add(name);
    const id = this.#nodes.length;
    this.#nodes.push({ id, op, name, inputs: [], attrs, shape: [...shape] } as AnyNode);
    return new Tensor(id, [...shape] as unknown as S, this.#token);
  }

  // The node id of `t`, refusing a tensor made by another graph() (its id would silently name a
  // node of this one).
  #own(op: string, t: Tensor<TShape>): number {
    if (!(t instanceof Tensor) || t.graph !== this.#token) {
      throw new ShapeError(
        op,
        "",
        [],
        "a tensor from another graph() was passed in; build each graph from its own tensors",
      );
    }
    return t.id;
  }

  #op<K extends keyof typeof OPS, S extends TShape>(
    op: K,
    inputs: number[],
    attrs: AttrsOf[K],
    normalize?: (shapes: readonly Shape[]) => AttrsOf[K],
  ): Tensor<S> {
    const id = this.#nodes.length;
    const name = `${op}_${id}`;
    const shapes = inputs.map((i) => this.#nodes[i].shape);
    const finalAttrs = normalize ? normalize(shapes) : attrs;
    const rule = OPS[op] as OpDef<AttrsOf[K]>;
    const shape = rule.inferShape(shapes, finalAttrs, name);
    this.#nodes.push({ id, op, name, inputs, attrs: finalAttrs, shape } as AnyNode);
    return new Tensor(id, shape as unknown as S, this.#token);
  }
}

/**
 * How `GraphBuilder.inline` binds a sub-graph.
 *
 * @example
 * ```ts
 * import type { InlineOptions } from "./builder.ts";
 * const o: InlineOptions = { dims: { H: 12, Dh: 64 }, prefix: "blocks.0" };
 * ```
 */
export interface InlineOptions {
  /** Values for the sub-graph's symbolic dims: sizes, or the caller's own symbols. */
  readonly dims?: Readonly<Record<string, Dim>>;
  /** Prefix for the sub-graph's parameter names and labels (`blocks.0` gives `blocks.0.norm1.weight`). */
  readonly prefix?: string;
}

/** @ignore */
type ChannelsOf<S extends TShape> = S extends readonly [TDim, infer C extends number, ...TDim[]] ? C
  : number;

function normalizedFlatten(
  shapes: readonly Shape[],
  start: number,
  end: number,
): AttrsOf["flatten"] {
  // Out-of-range axes stay as given, so the rule rejects them with the user's numbers.
  const rank = shapes[0].length;
  return { start: normalizeAxis(start, rank) ?? start, end: normalizeAxis(end, rank) ?? end };
}

/**
 * Builds a graph: `build` receives a `GraphBuilder` and returns the output tensor.
 * Runtime shape errors throw `ShapeError` naming the op, node and shapes.
 *
 * @example
 * ```ts
 * import { graph } from "./builder.ts";
 * const g = graph("seed", (b) => {
 *   const x = b.input("image", ["B", 3, 224, 224]);
 *   const p = b.conv2d(x, { out: 3, kernel: 16, stride: 16, name: "patch_extractor.patch_extractor" });
 *   const t = b.reshape(b.flatten(p, 2, 3), ["B", 196, 3]);
 *   const e = b.linear(t, { in: 3, out: 768, name: "token_embedding.embedding" });
 *   return e; // Tensor<["B", 196, 768]>
 * });
 * console.log(g.summary());
 * ```
 */
export function graph<S extends TShape>(
  name: string,
  build: (g: GraphBuilder) => Tensor<S>,
): Graph<S> {
  const builder = new GraphBuilder();
  return builder.build(name, build(builder));
}
