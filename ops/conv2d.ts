/**
 * `conv2d`: 2-D cross-correlation with bias, exactly `torch.nn.Conv2d` (groups = 1,
 * dilation = 1, zero padding). Inputs: `x [N, C, H, W]`, `weight [O, C, kh, kw]`, `bias [O]`.
 * Output: `[N, O, floor((H + 2p - kh) / s) + 1, floor((W + 2p - kw) / s) + 1]`.
 * @module
 */

import type { Add, FloorDiv, IsLiteral, Lt, Mul, Sub } from "../graph/shape_math.ts";
import type {
  DimsAgree,
  DimStr,
  DynamicRank,
  ShapeErrorType,
  ShapeStr,
  SizeFault,
  TDim,
  TShape,
} from "../graph/shape_types.ts";
import { type Dim, isConcrete, type Shape, ShapeError, sizeFault } from "../graph/shape.ts";
import type { OpDef } from "./op.ts";
import type { AddConst, FloorDivDim } from "../graph/dim_expr_types.ts";
import { addConst, floorDivDim } from "../graph/dim_expr.ts";

/**
 * Options a user passes to `g.conv2d`.
 *
 * @example
 * ```ts
 * import type { Conv2dOptions } from "./conv2d.ts";
 * const o: Conv2dOptions = { out: 768, kernel: 16, stride: 16, name: "patch_embed.proj" };
 * ```
 */
export interface Conv2dOptions {
  /** Output channels. */
  readonly out: number;
  /** Square kernel size. */
  readonly kernel: number;
  /** Stride; defaults to 1 like PyTorch. */
  readonly stride?: number;
  /** Zero padding on every side; defaults to 0. */
  readonly padding?: number;
  /** Parameter prefix: creates `<name>.weight` and `<name>.bias`. */
  readonly name: string;
  /** Whether to add a bias; defaults to true. */
  readonly bias?: boolean;
}

/**
 * The IR attributes of a conv2d node.
 *
 * @example
 * ```ts
 * import type { Conv2dAttrs } from "./conv2d.ts";
 * const a: Conv2dAttrs = { stride: 16, padding: 0 };
 * ```
 */
export interface Conv2dAttrs {
  /** Stride in both spatial dims. */
  readonly stride: number;
  /** Zero padding on every side. */
  readonly padding: number;
}

/** @ignore */
type Opt<O, K extends string, Default extends number> = O extends
  { readonly [P in K]: infer V extends number } ? V : Default;

/**
 * One spatial output dim of a convolution: `floor((H + 2p - k) / s) + 1`.
 *
 * @example
 * ```ts
 * import type { ConvDim } from "./conv2d.ts";
 * type H = ConvDim<224, 16, 16, 0>; // 14
 * ```
 */
export type ConvDim<H extends TDim, K extends number, S extends number, P extends number> =
  H extends number ? (IsLiteral<H> extends true ? (
        Lt<Add<H, Mul<2, P>>, K> extends true ? number
          : Add<FloorDiv<Sub<Add<H, Mul<2, P>>, K>, S>, 1>
      )
      : number)
    // Symbolic: floor((H + 2P - K) / S) + 1 = floor((H + 2P - K + S) / S), e.g. "H/16".
    : SignedDiff<Add<Mul<2, P>, S>, K> extends infer C extends number
      ? (AddConst<H, C> extends infer X extends TDim ? FloorDivDim<X, S> : number)
    : number;

/**

 * `A - B` as a possibly negative literal.

 * @ignore

 */
type SignedDiff<A extends number, B extends number> = Lt<A, B> extends true
  ? `-${Sub<B, A>}` extends `${infer N extends number}` ? N : number
  : Sub<A, B>;

/**
 * Output shape of `conv2d` on input `S` with options `O`.
 *
 * @example
 * ```ts
 * import type { Conv2dShape } from "./conv2d.ts";
 * type Y = Conv2dShape<["B", 3, 224, 224], { out: 768; kernel: 16; stride: 16; name: "p" }>;
 * // ["B", 768, 14, 14]
 * ```
 */
export type Conv2dShape<S extends TShape, O extends Conv2dOptions> = S extends
  readonly [infer N, TDim, infer H extends TDim, infer W extends TDim] ? [
    N,
    O["out"],
    ConvDim<H, O["kernel"], Opt<O, "stride", 1>, Opt<O, "padding", 0>>,
    ConvDim<W, O["kernel"], Opt<O, "stride", 1>, Opt<O, "padding", 0>>,
  ]
  : TShape;

/** @ignore */
type KernelFits<H, K extends number, P extends number> = H extends number
  ? (IsLiteral<H> extends true ? (Lt<Add<H, Mul<2, P>>, K> extends true ? false : true) : true)
  : true;

/**
 * The first fault among `conv2d`'s integer options, in the order the runtime checks them
 * (`out`, `kernel`, `stride` >= 1, `padding` >= 0), or `""`. Only literal options are judged.
 * @ignore
 */
type OptionsFault<O extends Conv2dOptions> = SizeFault<"out", O["out"], 1> extends
  infer F extends string ? (F extends "" ? KernelFault<O> : F) : "";

/** @ignore */
type KernelFault<O extends Conv2dOptions> = SizeFault<"kernel", O["kernel"], 1> extends
  infer F extends string ? (F extends "" ? StrideFault<O> : F) : "";

/** @ignore */
type StrideFault<O extends Conv2dOptions> = SizeFault<"stride", Opt<O, "stride", 1>, 1> extends
  infer F extends string ? (F extends "" ? SizeFault<"padding", Opt<O, "padding", 0>, 0> : F)
  : "";

/**
 * The compile-time check of `conv2d`: `unknown` when valid, else a readable error. Literal
 * `out`, `kernel` and `stride` must be positive integers and `padding` a non-negative one.
 *
 * @example
 * ```ts
 * import type { Conv2dCheck } from "./conv2d.ts";
 * type E = Conv2dCheck<[1, 3, 8, 8], { out: 3; kernel: 16; name: "c" }>; // error text
 * type S = Conv2dCheck<[1, 3, 8, 8], { out: 3; kernel: 2; stride: 0; name: "c" }>;
 * // "conv2d c: stride must be a positive integer, got 0"
 * ```
 */
export type Conv2dCheck<S extends TShape, O extends Conv2dOptions> = OptionsFault<O> extends
  infer F extends string
  ? (F extends "" ? Conv2dShapeCheck<S, O> : ShapeErrorType<`conv2d ${O["name"]}: ${F}`>)
  : Conv2dShapeCheck<S, O>;

/** @ignore */
type Conv2dShapeCheck<S extends TShape, O extends Conv2dOptions> = DynamicRank<S> extends true
  ? unknown
  : S extends readonly [TDim, TDim, infer H, infer W] ? (
      KernelFits<H, O["kernel"], Opt<O, "padding", 0>> extends false ? ShapeErrorType<
          `conv2d ${O["name"]}: kernel ${O["kernel"]} is larger than the padded height ${DimStr<
            H
          >} + 2*${Opt<O, "padding", 0>}`
        >
        : KernelFits<W, O["kernel"], Opt<O, "padding", 0>> extends false ? ShapeErrorType<
            `conv2d ${O["name"]}: kernel ${O["kernel"]} is larger than the padded width ${DimStr<
              W
            >} + 2*${Opt<O, "padding", 0>}`
          >
        : unknown
    )
  : ShapeErrorType<`conv2d ${O["name"]}: input ${ShapeStr<S>} must be 4-D [N, C, H, W]`>;

/**
 * `unknown` when the input's channel dim equals the declared `in` channels, else an error.
 *
 * @example
 * ```ts
 * import type { ChannelCheck } from "./conv2d.ts";
 * type Ok = ChannelCheck<[1, 3, 8, 8], 3, "c">; // unknown
 * ```
 */
export type ChannelCheck<S extends TShape, C extends number, Name extends string> = S extends
  readonly [TDim, infer X, ...TDim[]] ? (DimsAgree<X, C> extends true ? unknown
    : ShapeErrorType<`conv2d ${Name}: input has ${DimStr<X>} channels but the weight expects ${C}`>)
  : unknown;

/**
 * The runtime check of `conv2d`'s integer options, in the order and words of the type-level
 * check: the first fault, or `undefined` when `out`, `kernel` and `stride` are positive
 * integers and `padding` a non-negative one.
 *
 * @example
 * ```ts
 * import { conv2dOptionsFault } from "./conv2d.ts";
 * conv2dOptionsFault({ out: 8, kernel: 0 }); // "kernel must be a positive integer, got 0"
 * conv2dOptionsFault({ out: 8, kernel: 3, padding: 1 }); // undefined
 * ```
 */
export function conv2dOptionsFault(
  options: Pick<Conv2dOptions, "out" | "kernel" | "stride" | "padding">,
): string | undefined {
  return sizeFault("out", options.out, 1) ?? sizeFault("kernel", options.kernel, 1) ??
    sizeFault("stride", options.stride ?? 1, 1) ?? sizeFault("padding", options.padding ?? 0, 0);
}

function outDim(h: Dim, k: number, s: number, p: number): Dim {
  // floor((h + 2p - k) / s) + 1, written so a symbolic h reads as the type rule writes it.
  if (!isConcrete(h)) return floorDivDim(addConst(h, 2 * p - k + s), s);
  return Math.floor((h + 2 * p - k) / s) + 1;
}

/**
 * The runtime rule and reference semantics of `conv2d`.
 *
 * @example
 * ```ts
 * import { conv2dOp } from "./conv2d.ts";
 * conv2dOp.inferShape([[1, 3, 224, 224], [768, 3, 16, 16], [768]], { stride: 16, padding: 0 }, "proj");
 * // [1, 768, 14, 14]
 * ```
 */
export const conv2dOp: OpDef<Conv2dAttrs> = {
  kind: "conv2d",
  inferShape(inputs: readonly Shape[], attrs: Conv2dAttrs, node: string): Dim[] {
    const [x, w, b] = inputs;
    const fail = (why: string): never => {
      throw new ShapeError("conv2d", node, inputs, why);
    };
    if (x.length !== 4) fail(`input must be 4-D [N, C, H, W], got rank ${x.length}`);
    if (w.length !== 4) fail(`weight must be 4-D [O, C, kh, kw], got rank ${w.length}`);
    const { stride, padding } = attrs;
    const optionFault = sizeFault("stride", stride, 1) ?? sizeFault("padding", padding, 0);
    if (optionFault) fail(optionFault);
    if (isConcrete(w[0]) && w[0] < 1) fail(`out channels must be a positive integer, got ${w[0]}`);
    if (isConcrete(x[1]) && isConcrete(w[1]) && x[1] !== w[1]) {
      fail(`input has ${x[1]} channels but the weight expects ${w[1]}`);
    }
    const [kh, kw] = [w[2], w[3]];
    if (!isConcrete(kh) || !isConcrete(kw) || kh < 1 || kw < 1) {
      fail(`kernel must be concrete and positive`);
    }
    const [kH, kW] = [kh as number, kw as number];
    if (isConcrete(x[2]) && x[2] + 2 * padding < kH) {
      fail(`kernel ${kH} is larger than the padded height ${x[2]} + 2*${padding}`);
    }
    if (isConcrete(x[3]) && x[3] + 2 * padding < kW) {
      fail(`kernel ${kW} is larger than the padded width ${x[3]} + 2*${padding}`);
    }
    if (b && (b.length !== 1 || b[0] !== w[0])) {
      fail(`bias must be [${w[0]}], got [${b.join(", ")}]`);
    }
    return [x[0], w[0], outDim(x[2], kH, stride, padding), outDim(x[3], kW, stride, padding)];
  },
  evaluate(inputs, attrs, outShape): Float32Array {
    const [x, w, b] = inputs;
    const [n, o, oh, ow] = outShape;
    const [, c, h, wd] = x.shape;
    const [kh, kw] = [w.shape[2], w.shape[3]];
    const { stride, padding } = attrs;
    const out = new Float32Array(n * o * oh * ow);
    for (let bi = 0; bi < n; bi++) {
      for (let oc = 0; oc < o; oc++) {
        for (let y = 0; y < oh; y++) {
          for (let xo = 0; xo < ow; xo++) {
            // float64 accumulation: the oracle should be more exact than what it judges.
            let acc = b ? b.data[oc] : 0;
            for (let ic = 0; ic < c; ic++) {
              for (let ky = 0; ky < kh; ky++) {
                const iy = y * stride - padding + ky;
                if (iy < 0 || iy >= h) continue;
                for (let kx = 0; kx < kw; kx++) {
                  const ix = xo * stride - padding + kx;
                  if (ix < 0 || ix >= wd) continue;
                  acc += x.data[((bi * c + ic) * h + iy) * wd + ix] *
                    w.data[((oc * c + ic) * kh + ky) * kw + kx];
                }
              }
            }
            out[((bi * o + oc) * oh + y) * ow + xo] = acc;
          }
        }
      }
    }
    return out;
  },
};
