/**
 * timm's Vision Transformer encoder as a typed graph: pre-norm blocks (`norm1`, multi-head
 * self-attention, `norm2`, MLP with exact GELU, each with a residual) and the final `norm`.
 * Parameter names are timm `state_dict` keys (`blocks.{i}.attn.qkv.weight`, `norm.bias`, ...),
 * so timm weights load unchanged.
 * @module
 */

import type { Mod } from "../graph/shape_math.ts";
import type { ShapeErrorType, TShape } from "../graph/shape_types.ts";
import { graph, type GraphBuilder, type Tensor } from "../graph/builder.ts";
import type { Graph } from "../graph/ir.ts";
import { formatShape, ShapeError } from "../graph/shape.ts";

/**
 * Sizes of one encoder block (timm's `Block`) and the name of its output.
 *
 * @example
 * ```ts
 * import type { EncoderBlockOptions } from "./vit_encoder.ts";
 * const o: EncoderBlockOptions = { dim: 192, heads: 3, name: "blocks.0" };
 * ```
 */
export interface EncoderBlockOptions {
  /** Token width D; must equal the input's last dim. */
  readonly dim: number;
  /** Attention heads; must divide `dim`. */
  readonly heads: number;
  /** Hidden width of the MLP; defaults to `4 * dim` (timm's `mlp_ratio` 4). */
  readonly mlpHidden?: number;
  /** LayerNorm epsilon; defaults to 1e-6, as timm's ViT. */
  readonly eps?: number;
  /** Parameter prefix and the label of the block's output, e.g. `"blocks.0"`. */
  readonly name: string;
}

/**
 * Sizes of timm's ViT encoder: `depth` blocks and the final `norm`.
 *
 * @example
 * ```ts
 * import type { VitEncoderConfig } from "./vit_encoder.ts";
 * const c: VitEncoderConfig = { tokens: 197, dim: 192, depth: 12, heads: 3 };
 * ```
 */
export interface VitEncoderConfig {
  /** Sequence length N (patches plus the class token). */
  readonly tokens: number;
  /** Token width D (timm's `embed_dim`). */
  readonly dim: number;
  /** Number of blocks (timm's `depth`). */
  readonly depth: number;
  /** Attention heads (timm's `num_heads`); must divide `dim`. */
  readonly heads: number;
  /** MLP hidden width over `dim`; defaults to 4. The hidden width is `int(dim * mlpRatio)`. */
  readonly mlpRatio?: number;
  /** LayerNorm epsilon; defaults to 1e-6. */
  readonly eps?: number;
}

/**
 * The encoder's input and output shape `[B, tokens, dim]`.
 *
 * @example
 * ```ts
 * import type { EncoderShape } from "./vit_encoder.ts";
 * type Y = EncoderShape<{ tokens: 197; dim: 192; depth: 12; heads: 3 }>; // ["B", 197, 192]
 * ```
 */
export type EncoderShape<C extends VitEncoderConfig> = ["B", C["tokens"], C["dim"]];

/**
 * The compile-time check that `heads` divides `dim` (only when both are literals; plain
 * `number`s are checked at run time).
 *
 * @example
 * ```ts
 * import type { HeadsCheck } from "./vit_encoder.ts";
 * type E = HeadsCheck<{ dim: 32; heads: 5 }, "vitEncoder">;
 * // "vitEncoder: dim 32 is not divisible by heads 5"
 * ```
 */
export type HeadsCheck<C extends { dim: number; heads: number }, Op extends string> = number extends
  Mod<C["dim"], C["heads"]> ? unknown
  : Mod<C["dim"], C["heads"]> extends 0 ? unknown
  : ShapeErrorType<`${Op}: dim ${C["dim"]} is not divisible by heads ${C["heads"]}`>;

/** Throws a one-line `ShapeError` unless `value` is an integer of at least `min`. */
function checkSize(
  op: string,
  node: string,
  input: TShape,
  key: string,
  value: number,
  min = 1,
): void {
  if (!Number.isSafeInteger(value) || value < min) {
    const what = min === 0 ? "a non-negative integer" : "a positive integer";
    throw new ShapeError(op, node, [input], `${key} must be ${what}, got ${value}`);
  }
}

/** Throws the one-line error for heads that do not divide dim. */
function checkHeads(op: string, node: string, input: TShape, dim: number, heads: number): void {
  checkSize(op, node, input, "dim", dim);
  checkSize(op, node, input, "heads", heads);
  if (dim % heads !== 0) {
    throw new ShapeError(op, node, [input], `dim ${dim} is not divisible by heads ${heads}`);
  }
}

/**
 * Appends one timm ViT block to a graph under construction and labels its output `name`:
 * `x = x + proj(attn(norm1(x)))`, `x = x + fc2(gelu(fc1(norm2(x))))`. Attention is timm's:
 * `qkv` Linear(D, 3D) reshaped to `[B, N, 3, heads, D/heads]` and permuted to
 * `[3, B, heads, N, D/heads]`; q, k, v in that order; `softmax(q * (D/heads)^-0.5 @ kᵀ) @ v`,
 * back to `[B, N, D]`. GELU is exact (erf). The output has the input's shape.
 *
 * @example
 * ```ts
 * import { graph } from "../graph/builder.ts";
 * import { encoderBlock } from "./vit_encoder.ts";
 * const g = graph("block", (b) => {
 *   const x = b.input("x", ["B", 17, 32]);
 *   return encoderBlock(b, x, { dim: 32, heads: 2, name: "blocks.0" }); // ["B", 17, 32]
 * });
 * ```
 */
export function encoderBlock<S extends TShape, const O extends EncoderBlockOptions>(
  g: GraphBuilder,
  x: Tensor<S>,
  options: O & HeadsCheck<O, "encoderBlock">,
): Tensor<S> {
  const opts: EncoderBlockOptions = options;
  const { dim, heads, name } = opts;
  const eps = opts.eps ?? 1e-6;
  const hidden = opts.mlpHidden ?? 4 * dim;
  checkHeads("encoderBlock", name, x.shape, dim, heads);
  checkSize("encoderBlock", name, x.shape, "mlpHidden", hidden);
  const [batch, tokens, width] = x.shape;
  if (x.shape.length !== 3 || String(width) !== String(dim)) {
    throw new ShapeError(
      "encoderBlock",
      name,
      [x.shape],
      `input must be [batch, tokens, ${dim}], got ${formatShape(x.shape)}`,
    );
  }
  const headDim = dim / heads;
  // Inside the block the sizes are runtime values (rank-only types); the runtime rules check
  // every op, and the signature carries the static shape (a block keeps its input's shape).
  const input = x as Tensor<TShape>;

  const h = g.layerNorm(input, { name: `${name}.norm1`, eps });
  const qkv = g.linear(h, { in: dim, out: 3 * dim, name: `${name}.attn.qkv` });
  const split = g.permute(
    g.reshape(qkv, [batch, tokens, 3, heads, headDim] as TShape),
    [2, 0, 3, 1, 4],
  ); // [3, B, heads, N, D/heads]
  // timm's non-fused path (torch < 2.0 has no scaled_dot_product_attention) scales q first.
  const q = g.mul(g.select(split, 0, 0), headDim ** -0.5);
  const k = g.select(split, 0, 1);
  const v = g.select(split, 0, 2);
  const attn = g.softmax(g.matmul(q, g.transpose(k, -2, -1)), -1); // [B, heads, N, N]
  const mixed = g.reshape(g.transpose(g.matmul(attn, v), 1, 2), [batch, tokens, dim] as TShape);
  const afterAttn = g.add(input, g.linear(mixed, { in: dim, out: dim, name: `${name}.attn.proj` }));

  const h2 = g.layerNorm(afterAttn, { name: `${name}.norm2`, eps });
  const fc1 = g.linear(h2, { in: dim, out: hidden, name: `${name}.mlp.fc1` });
  const fc2 = g.linear(g.gelu(fc1), { in: hidden, out: dim, name: `${name}.mlp.fc2` });
  return g.label(g.add(afterAttn, fc2), name) as Tensor<TShape> as Tensor<S>;
}

/**
 * timm's ViT encoder (`blocks` then `norm`) as a graph: input `embedded` `[B, tokens, dim]`
 * (patch tokens with the class token and positional embedding), each block's output labelled
 * `blocks.{i}`, and the output, the final LayerNorm `norm`, labelled `features`.
 *
 * @example
 * ```ts
 * import { vitEncoder } from "./vit_encoder.ts";
 * const g = vitEncoder({ tokens: 197, dim: 192, depth: 12, heads: 3 });
 * g.outShape; // ["B", 197, 192]
 * ```
 */
export function vitEncoder<const C extends VitEncoderConfig>(
  config: C & HeadsCheck<C, "vitEncoder">,
): Graph<EncoderShape<C>> {
  const cfg: VitEncoderConfig = config;
  const { tokens, dim, depth, heads } = cfg;
  const eps = cfg.eps ?? 1e-6;
  const mlpRatio = cfg.mlpRatio ?? 4;
  const shape: TShape = ["B", tokens, dim];
  checkSize("vitEncoder", "vitEncoder", shape, "tokens", tokens);
  checkSize("vitEncoder", "vitEncoder", shape, "depth", depth, 0);
  checkHeads("vitEncoder", "vitEncoder", shape, dim, heads);
  // timm: mlp_hidden_dim = int(dim * mlp_ratio).
  const mlpHidden = Math.floor(dim * mlpRatio);
  checkSize("vitEncoder", "vitEncoder", shape, "int(dim * mlpRatio)", mlpHidden);
  return graph("vit-encoder", (g) => {
    let x = g.input("embedded", shape);
    for (let i = 0; i < depth; i++) {
      x = encoderBlock(g, x, { dim, heads, mlpHidden, eps, name: `blocks.${i}` });
    }
    return g.label(g.layerNorm(x, { name: "norm", eps }), "features");
  }) as Graph<TShape> as Graph<EncoderShape<C>>;
}
