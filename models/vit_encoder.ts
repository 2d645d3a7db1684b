/**
 * timm's Vision Transformer encoder as a typed graph: pre-norm blocks (`norm1`, multi-head
 * self-attention, `norm2`, MLP with exact GELU, each with a residual) and the final `norm`.
 * Parameter names are timm `state_dict` keys (`blocks.{i}.attn.qkv.weight`, `norm.bias`, ...),
 * so timm weights load unchanged.
 * @module
 */

import type { Mod } from "../graph/shape_math.ts";
import type { ShapeErrorType, TShape } from "../graph/shape_types.ts";
import { graph } from "../graph/builder.ts";
import { type Block, block } from "../graph/block.ts";
import type { Graph } from "../graph/ir.ts";
import { ShapeError } from "../graph/shape.ts";

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
export type EncoderShape<C extends VitEncoderConfig> = readonly ["B", C["tokens"], C["dim"]];

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
 * One timm ViT block (timm's `Block`), written once over its dims: `x = x + proj(attn(norm1(x)))`,
 * `x = x + fc2(gelu(fc1(norm2(x))))`. Attention is timm's: `qkv` Linear(D, 3D) reshaped to
 * `[B, N, 3, H, Dh]` and permuted to `[3, B, H, N, Dh]`; q, k, v in that order;
 * `softmax(q * Dh^-0.5 @ kᵀ) @ v`, back to `[B, N, D]`. GELU is exact (erf); LayerNorm eps
 * defaults to 1e-6 and the MLP width to `4 * D`. The width `D = H*Dh` is solved from the input and
 * `heads`, so heads that do not divide the width are a compile error at the call. Parameters are
 * `<name>.norm1.weight`, `<name>.attn.qkv.weight`, ...; the output (the input's shape) is
 * labelled `name`.
 *
 * @example
 * ```ts
 * import { graph } from "../graph/builder.ts";
 * import { encoderBlock } from "./vit_encoder.ts";
 * const g = graph("block", (b) => {
 *   const x = b.input("x", ["B", 17, 32]);
 *   return encoderBlock(b, x, { heads: 2, name: "blocks.0" }); // Tensor<["B", 17, 32]>
 * });
 * // encoderBlock(b, x, { heads: 5, name: "blocks.0" }) does not compile:
 * // "encoderBlock blocks.0: input dim 32 must be H*Dh, but H = 5 (heads) does not divide 32"
 * ```
 */
export const encoderBlock: Block<"encoderBlock", EncoderBlockSignature, ["B", "N", "H*Dh"]> = block(
  "encoderBlock",
  {
    input: ["B", "N", "H*Dh"],
    sizes: { heads: "H", mlpHidden: "M" },
    defaults: { M: "H*Dh*4" },
    settings: { eps: 1e-6 },
  },
  (g, x, { Dh }, { eps }) => {
    const h = g.layerNorm(x, { name: "norm1", eps });
    const qkv = g.linear(h, { in: "H*Dh", out: "H*Dh*3", name: "attn.qkv" });
    const split = g.permute(g.reshape(qkv, ["B", "N", 3, "H", "Dh"]), [2, 0, 3, 1, 4]);
    // timm's non-fused path (torch < 2.0 has no scaled_dot_product_attention) scales q first.
    const q = g.mul(g.select(split, 0, 0), Dh ** -0.5);
    const k = g.select(split, 0, 1);
    const v = g.select(split, 0, 2);
    // Labelled so the attention maps can be asked for (`blocks.{i}.attn`): [B, H, N, N].
    const attn = g.label(g.softmax(g.matmul(q, g.transpose(k, -2, -1)), -1), "attn");
    const mixed = g.reshape(g.transpose(g.matmul(attn, v), 1, 2), ["B", "N", "H*Dh"]);
    const afterAttn = g.add(x, g.linear(mixed, { in: "H*Dh", out: "H*Dh", name: "attn.proj" }));
    const h2 = g.layerNorm(afterAttn, { name: "norm2", eps });
    const fc1 = g.linear(h2, { in: "H*Dh", out: "M", name: "mlp.fc1" });
    const fc2 = g.linear(g.gelu(fc1), { in: "M", out: "H*Dh", name: "mlp.fc2" });
    return g.add(afterAttn, fc2);
  },
);

/**
 * The dims `encoderBlock` is written over: batch `B`, tokens `N`, width `H*Dh` (heads times head
 * width), MLP width `M`.
 *
 * @example
 * ```ts
 * import type { EncoderBlockSignature } from "./vit_encoder.ts";
 * type In = EncoderBlockSignature["input"]; // readonly ["B", "N", "H*Dh"]
 * ```
 */
export interface EncoderBlockSignature {
  /** Batch, tokens, width. */
  readonly input: readonly ["B", "N", "H*Dh"];
  /** `heads` binds H; `mlpHidden` binds M. */
  readonly sizes: { readonly heads: "H"; readonly mlpHidden: "M" };
  /** timm's `mlp_ratio` 4. */
  readonly defaults: { readonly M: "H*Dh*4" };
  /** timm's ViT LayerNorm epsilon. */
  readonly settings: { readonly eps: number };
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
): Graph<EncoderShape<C>>;
// Runtime sizes inside (the blocks' dims are `number` here); the signature above is the exact
// shape the config gives, which tests/encoder_test.ts asserts against `outShape`.
export function vitEncoder(config: VitEncoderConfig): Graph<readonly ["B", number, number]> {
  const { tokens, dim, depth, heads } = config;
  const eps = config.eps ?? 1e-6;
  const mlpRatio = config.mlpRatio ?? 4;
  const shape: TShape = ["B", tokens, dim];
  checkSize("vitEncoder", "vitEncoder", shape, "tokens", tokens);
  checkSize("vitEncoder", "vitEncoder", shape, "depth", depth, 0);
  checkHeads("vitEncoder", "vitEncoder", shape, dim, heads);
  // timm: mlp_hidden_dim = int(dim * mlp_ratio).
  const mlpHidden = Math.floor(dim * mlpRatio);
  checkSize("vitEncoder", "vitEncoder", shape, "int(dim * mlpRatio)", mlpHidden);
  return graph("vit-encoder", (g) => {
    let x = g.input("embedded", ["B", tokens, dim]);
    for (let i = 0; i < depth; i++) {
      x = encoderBlock(g, x, { heads, mlpHidden, eps, name: `blocks.${i}` });
    }
    return g.label(g.layerNorm(x, { name: "norm", eps }), "features");
  });
}
