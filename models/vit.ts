/**
 * timm's Vision Transformer (`VisionTransformer`, timm 1.0) as one typed graph: patch embedding,
 * class token, positional embedding, `depth` encoder blocks, the final norm, token or average
 * pooling and the classifier head, under timm's `state_dict` names, so a timm checkpoint saved
 * as safetensors loads unchanged. Stages: `tokens`, `embedded`, `blocks.{i}`, `features`,
 * `pooled`, `logits`.
 * @module
 */

import type { Add, FloorDiv, Mod, Mul } from "../graph/shape_math.ts";
import type { ShapeErrorType, TDim, TShape } from "../graph/shape_types.ts";
import { graph } from "../graph/builder.ts";
import type { Graph } from "../graph/ir.ts";
import { ShapeError } from "../graph/shape.ts";
import { encoderBlock } from "./vit_encoder.ts";

/**
 * The sizes of a ViT, as timm's `VisionTransformer(img_size, patch_size, embed_dim, depth,
 * num_heads, mlp_ratio, num_classes, global_pool, in_chans)`.
 *
 * @example
 * ```ts
 * import type { VitConfig } from "./vit.ts";
 * const tiny: VitConfig = { image: 224, patch: 16, dim: 192, depth: 12, heads: 3, classes: 1000 };
 * ```
 */
export interface VitConfig {
  /** Input image size: square, or `[height, width]`; the patch must divide it. */
  readonly image: number | readonly [number, number];
  /** Patch size P (kernel and stride of `patch_embed.proj`). */
  readonly patch: number;
  /** Token width D (timm's `embed_dim`); `heads` must divide it. */
  readonly dim: number;
  /** Number of encoder blocks. */
  readonly depth: number;
  /** Attention heads. */
  readonly heads: number;
  /** Classifier outputs (the `head` Linear). */
  readonly classes: number;
  /** MLP hidden width over `dim`; defaults to 4 (the width is `int(dim * mlpRatio)`). */
  readonly mlpRatio?: number;
  /** `"token"` (the class token's row of `features`, timm's default) or `"avg"`. */
  readonly pool?: "token" | "avg";
  /** Image channels; defaults to 3. */
  readonly channels?: number;
  /** LayerNorm epsilon; defaults to 1e-6, as timm's ViT. */
  readonly eps?: number;
  /** The batch dim; defaults to `"B"`. */
  readonly batch?: TDim;
}

/** @ignore */
type Get<C, K extends string, D> = C extends { readonly [P in K]: infer V } ? V : D;
/** @ignore */
type HeightOf<C extends VitConfig> = C["image"] extends readonly [infer H extends number, number]
  ? H
  : C["image"] & number;
/** @ignore */
type WidthOf<C extends VitConfig> = C["image"] extends readonly [number, infer W extends number] ? W
  : C["image"] & number;

/**
 * The number of tokens a config gives: patches plus the class token.
 *
 * @example
 * ```ts
 * import type { VitTokens } from "./vit.ts";
 * type N = VitTokens<{ image: 224; patch: 16; dim: 192; depth: 12; heads: 3; classes: 1000 }>;
 * // 197
 * ```
 */
export type VitTokens<C extends VitConfig> = Add<
  Mul<FloorDiv<HeightOf<C>, C["patch"]>, FloorDiv<WidthOf<C>, C["patch"]>>,
  1
>;

/**
 * The output shape of `vit(C)`: `[batch, classes]`.
 *
 * @example
 * ```ts
 * import type { VitShape } from "./vit.ts";
 * type Y = VitShape<{ image: 224; patch: 16; dim: 192; depth: 12; heads: 3; classes: 1000 }>;
 * // readonly ["B", 1000]
 * ```
 */
export type VitShape<C extends VitConfig> = readonly [Get<C, "batch", "B">, C["classes"]];

/** @ignore */
type Divides<A extends number, B extends number> = number extends Mod<A, B> ? true
  : Mod<A, B> extends 0 ? true
  : false;

/**
 * The compile-time check of a ViT config: heads divide the width and the patch divides the
 * image (timm's `strict_img_size`). Plain `number` sizes are checked at run time.
 *
 * @example
 * ```ts
 * import type { VitCheck } from "./vit.ts";
 * type E = VitCheck<{ image: 224; patch: 16; dim: 192; depth: 12; heads: 5; classes: 10 }>;
 * // "vit: dim 192 is not divisible by heads 5"
 * ```
 */
export type VitCheck<C extends VitConfig> = C extends unknown ? VitCheckOne<C> : never;

/**
 * The check of one config (`VitCheck` distributes over a union of configs, such as a preset
 * picked at run time, so that sizes of different presets are never mixed).
 * @ignore
 */
type VitCheckOne<C extends VitConfig> = Divides<C["dim"], C["heads"]> extends false
  ? ShapeErrorType<`vit: dim ${C["dim"]} is not divisible by heads ${C["heads"]}`>
  : Divides<HeightOf<C>, C["patch"]> extends false ? ShapeErrorType<
      `vit: image height ${HeightOf<C>} is not divisible by patch ${C["patch"]}`
    >
  : Divides<WidthOf<C>, C["patch"]> extends false ? ShapeErrorType<
      `vit: image width ${WidthOf<C>} is not divisible by patch ${C["patch"]}`
    >
  : unknown;

/**
 * A config's sizes resolved: image height and width, the patch grid, the MLP width, the
 * defaults filled in. Throws a one-line `ShapeError` naming the bad size.
 *
 * @example
 * ```ts
 * import { resolveVitConfig } from "./vit.ts";
 * const r = resolveVitConfig({ image: [224, 160], patch: 16, dim: 192, depth: 12, heads: 3, classes: 1000 });
 * r.grid; // [14, 10]
 * ```
 */
export function resolveVitConfig(config: VitConfig): ResolvedVitConfig {
  const [height, width] = typeof config.image === "number"
    ? [config.image, config.image]
    : config.image;
  const channels = config.channels ?? 3;
  const mlpRatio = config.mlpRatio ?? 4;
  const pool = config.pool ?? "token";
  const fail = (why: string): never => {
    throw new ShapeError("vit", "vit", [[config.batch ?? "B", channels, height, width]], why);
  };
  const sizes = { height, width, patch: config.patch, dim: config.dim, heads: config.heads };
  for (const [k, v] of Object.entries({ ...sizes, channels, classes: config.classes })) {
    if (!Number.isSafeInteger(v) || v < 1) fail(`${k} must be a positive integer, got ${v}`);
  }
  if (!Number.isSafeInteger(config.depth) || config.depth < 0) {
    fail(`depth must be a non-negative integer, got ${config.depth}`);
  }
  if (config.dim % config.heads !== 0) {
    fail(`dim ${config.dim} is not divisible by heads ${config.heads}`);
  }
  if (height % config.patch !== 0) {
    fail(`image height ${height} is not divisible by patch ${config.patch}`);
  }
  if (width % config.patch !== 0) {
    fail(`image width ${width} is not divisible by patch ${config.patch}`);
  }
  if (pool !== "token" && pool !== "avg") fail(`pool must be "token" or "avg", got ${pool}`);
  // timm: mlp_hidden_dim = int(embed_dim * mlp_ratio).
  const mlpHidden = Math.floor(config.dim * mlpRatio);
  if (mlpHidden < 1) fail(`int(dim * mlpRatio) must be at least 1, got ${mlpHidden}`);
  return {
    ...config,
    height,
    width,
    channels,
    pool,
    mlpHidden,
    eps: config.eps ?? 1e-6,
    batch: config.batch ?? "B",
    grid: [height / config.patch, width / config.patch],
  };
}

/**
 * A ViT config with every default filled in and the derived sizes.
 *
 * @example
 * ```ts
 * import type { ResolvedVitConfig } from "./vit.ts";
 * type G = ResolvedVitConfig["grid"]; // [rows, columns] of patches
 * ```
 */
export interface ResolvedVitConfig extends VitConfig {
  /** Image height. */
  readonly height: number;
  /** Image width. */
  readonly width: number;
  /** Image channels. */
  readonly channels: number;
  /** Pooling. */
  readonly pool: "token" | "avg";
  /** MLP hidden width, `int(dim * mlpRatio)`. */
  readonly mlpHidden: number;
  /** LayerNorm epsilon. */
  readonly eps: number;
  /** The batch dim. */
  readonly batch: TDim;
  /** The patch grid `[height / patch, width / patch]`. */
  readonly grid: readonly [number, number];
}

/**
 * timm's `VisionTransformer` as a graph from `image [B, C, H, W]` to `logits [B, classes]`:
 * `patch_embed.proj` conv (kernel = stride = patch), `flatten(2).transpose(1, 2)` (`tokens`),
 * `cls_token` prepended and `pos_embed` added (`embedded`), `depth` pre-norm blocks
 * (`blocks.{i}`, see `encoderBlock`), then with `pool: "token"` the final `norm` (`features`) and
 * its class-token row (`pooled`); with `pool: "avg"` timm's `norm` is the identity (`features` is
 * the last block's output) and `pooled` is `fc_norm(mean(features[:, 1:]))`. `head` is a
 * Linear(dim, classes) (`logits`). A config whose heads do not divide the width, or whose patch
 * does not divide the image, is a compile error.
 *
 * @example
 * ```ts
 * import { vit } from "./vit.ts";
 * const g = vit({ image: 32, patch: 8, dim: 32, depth: 2, heads: 2, classes: 10 });
 * g.outShape; // ["B", 10]
 * // vit({ image: 32, patch: 8, dim: 32, depth: 2, heads: 5, classes: 10 }) does not compile:
 * // "vit: dim 32 is not divisible by heads 5"
 * ```
 */
export function vit<const C extends VitConfig>(config: C & VitCheck<C>): Graph<VitShape<C>>;
// Runtime sizes inside (the graph's dims are `number` here); the signature above is the exact
// shape the config gives, which tests/vit_test.ts asserts against `outShape`.
export function vit(config: VitConfig): Graph<TShape> {
  const c = resolveVitConfig(config);
  return graph("vit", (g) => {
    const image = g.input("image", [c.batch, c.channels, c.height, c.width]);
    // Declared first: timm's state_dict lists the model's own parameters before its modules'.
    const cls = g.param("cls_token", [1, 1, c.dim]);
    const pos = g.param("pos_embed", [1, c.grid[0] * c.grid[1] + 1, c.dim]);
    const conv = g.conv2d(image, {
      out: c.dim,
      kernel: c.patch,
      stride: c.patch,
      name: "patch_embed.proj",
    });
    const tokens = g.label(g.transpose(g.flatten(conv, 2, 3), 1, 2), "tokens");
    let x = g.label(g.add(g.prependToken(tokens, cls), pos), "embedded");
    for (let i = 0; i < c.depth; i++) {
      x = encoderBlock(g, x, {
        heads: c.heads,
        mlpHidden: c.mlpHidden,
        eps: c.eps,
        name: `blocks.${i}`,
      });
    }
    let pooled;
    if (c.pool === "token") {
      const features = g.label(g.layerNorm(x, { name: "norm", eps: c.eps }), "features");
      pooled = g.select(features, 1, 0);
    } else {
      const features = g.label(x, "features");
      const mean = g.mean(g.slice(features, 1, 1), 1);
      pooled = g.layerNorm(mean, { name: "fc_norm", eps: c.eps });
    }
    g.label(pooled, "pooled");
    return g.label(g.linear(pooled, { in: c.dim, out: c.classes, name: "head" }), "logits");
  });
}

/**
 * timm's named ViT configurations (`vit_{tiny,small,base,large}_patch{16,32}_{224,384}`, the ones
 * timm registers): ImageNet-1k heads, token pooling, MLP ratio 4.
 *
 * @example
 * ```ts
 * import { VIT_PRESETS, vit } from "./vit.ts";
 * const g = vit(VIT_PRESETS.vit_base_patch16_224); // Graph<readonly ["B", 1000]>
 * ```
 */
export const VIT_PRESETS = {
  vit_tiny_patch16_224: { image: 224, patch: 16, dim: 192, depth: 12, heads: 3, classes: 1000 },
  vit_tiny_patch16_384: { image: 384, patch: 16, dim: 192, depth: 12, heads: 3, classes: 1000 },
  vit_small_patch32_224: { image: 224, patch: 32, dim: 384, depth: 12, heads: 6, classes: 1000 },
  vit_small_patch32_384: { image: 384, patch: 32, dim: 384, depth: 12, heads: 6, classes: 1000 },
  vit_small_patch16_224: { image: 224, patch: 16, dim: 384, depth: 12, heads: 6, classes: 1000 },
  vit_small_patch16_384: { image: 384, patch: 16, dim: 384, depth: 12, heads: 6, classes: 1000 },
  vit_base_patch32_224: { image: 224, patch: 32, dim: 768, depth: 12, heads: 12, classes: 1000 },
  vit_base_patch32_384: { image: 384, patch: 32, dim: 768, depth: 12, heads: 12, classes: 1000 },
  vit_base_patch16_224: { image: 224, patch: 16, dim: 768, depth: 12, heads: 12, classes: 1000 },
  vit_base_patch16_384: { image: 384, patch: 16, dim: 768, depth: 12, heads: 12, classes: 1000 },
  vit_large_patch32_224: { image: 224, patch: 32, dim: 1024, depth: 24, heads: 16, classes: 1000 },
  vit_large_patch32_384: { image: 384, patch: 32, dim: 1024, depth: 24, heads: 16, classes: 1000 },
  vit_large_patch16_224: { image: 224, patch: 16, dim: 1024, depth: 24, heads: 16, classes: 1000 },
  vit_large_patch16_384: { image: 384, patch: 16, dim: 1024, depth: 24, heads: 16, classes: 1000 },
} as const satisfies Record<string, VitConfig>;

/**
 * A preset's name, e.g. `"vit_tiny_patch16_224"`.
 *
 * @example
 * ```ts
 * import type { VitPresetName } from "./vit.ts";
 * const n: VitPresetName = "vit_base_patch16_224";
 * ```
 */
export type VitPresetName = keyof typeof VIT_PRESETS;
