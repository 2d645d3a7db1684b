/**
 * The two ViT tokenizers as typed graphs: the seed tutorial's (`seedTokenizer`) and timm's
 * standard patch embedding (`patchEmbedding`). Parameter names are PyTorch `state_dict` keys,
 * so PyTorch and timm weights load unchanged.
 * @module
 */

import type { Add, FloorDiv, Mod, Mul } from "../graph/shape_math.ts";
import type { ShapeErrorType, TDim, TShape } from "../graph/shape_types.ts";
import { graph, type GraphBuilder, type Tensor } from "../graph/builder.ts";
import type { Graph } from "../graph/ir.ts";
import { ShapeError } from "../graph/shape.ts";

/**
 * Sizes of the seed tokenizer. `generalized: true` uses `channels` for the Linear instead of the
 * seed's hard-coded 3.
 *
 * @example
 * ```ts
 * import type { SeedTokenizerConfig } from "./vit_tokenizer.ts";
 * const c: SeedTokenizerConfig = { height: 224, width: 224, patch: 16, embedding: 768 };
 * ```
 */
export interface SeedTokenizerConfig extends PatchEmbeddingConfig {
  /** Use `channels` (not 3) as the Linear's in-features; defaults to false, like the seed. */
  readonly generalized?: boolean;
}

/**
 * Sizes of timm's standard patch embedding (`PatchEmbed` + `cls_token` + `pos_embed`).
 *
 * @example
 * ```ts
 * import type { PatchEmbeddingConfig } from "./vit_tokenizer.ts";
 * const c: PatchEmbeddingConfig = { height: 224, width: 224, patch: 16, embedding: 768 };
 * ```
 */
export interface PatchEmbeddingConfig {
  /** Image height; must be divisible by `patch` (timm's `strict_img_size`). */
  readonly height: number;
  /** Image width; must be divisible by `patch`. */
  readonly width: number;
  /** Patch size P. */
  readonly patch: number;
  /** Embedding width D. */
  readonly embedding: number;
  /** Colour channels C; defaults to 3. */
  readonly channels?: number;
  /** Batch dim; defaults to `"B"`. */
  readonly batch?: TDim;
}

/**
 * `true` when `R` may equal `V`: equal literals, or `R` is plain `number` (runtime-checked).
 * @ignore
 */
type MayBe<R, V> = number extends R ? true : [R] extends [V] ? true : false;

/** @ignore */
type Get<C, K extends string, D> = C extends { readonly [P in K]: infer V } ? V : D;
/** @ignore */
type BatchOf<C> = Get<C, "batch", "B">;
/** @ignore */
type ChannelsOf<C> = Get<C, "channels", 3>;

/**
 * N, the number of patches: `(H / P) * (W / P)`.
 *
 * @example
 * ```ts
 * import type { NumPatches } from "./vit_tokenizer.ts";
 * type N = NumPatches<{ height: 224; width: 224; patch: 16; embedding: 768 }>; // 196
 * ```
 */
export type NumPatches<C extends { height: number; width: number; patch: number }> = Mul<
  FloorDiv<C["height"], C["patch"]>,
  FloorDiv<C["width"], C["patch"]>
>;

/**
 * The tokenizer output shape `[B, N + 1, D]`.
 *
 * @example
 * ```ts
 * import type { TokenizerShape } from "./vit_tokenizer.ts";
 * type Y = TokenizerShape<{ height: 224; width: 224; patch: 16; embedding: 768 }>;
 * // ["B", 197, 768]
 * ```
 */
export type TokenizerShape<C extends PatchEmbeddingConfig> = [
  BatchOf<C>,
  Add<NumPatches<C>, 1>,
  C["embedding"],
];

/**
 * The compile-time check shared by both builders: H and W divisible by P (timm's
 * `strict_img_size`).
 *
 * @example
 * ```ts
 * import type { DivisibleCheck } from "./vit_tokenizer.ts";
 * type E = DivisibleCheck<{ height: 225; width: 224; patch: 16; embedding: 8 }, "seedTokenizer">;
 * ```
 */
export type DivisibleCheck<C extends PatchEmbeddingConfig, Op extends string> =
  MayBe<Mod<C["height"], C["patch"]>, 0> extends true ? (
      MayBe<Mod<C["width"], C["patch"]>, 0> extends true ? unknown
        : ShapeErrorType<
          `${Op}: image width ${C["width"]} is not divisible by patch size ${C[
            "patch"
          ]} (strict_img_size)`
        >
    )
    : ShapeErrorType<
      `${Op}: image height ${C["height"]} is not divisible by patch size ${C[
        "patch"
      ]} (strict_img_size)`
    >;

/**
 * The seed's latent bug as a compile error: its Linear always has 3 in-features.
 *
 * @example
 * ```ts
 * import type { SeedChannelCheck } from "./vit_tokenizer.ts";
 * type E = SeedChannelCheck<{ height: 32; width: 32; patch: 8; embedding: 8; channels: 1 }>;
 * ```
 */
export type SeedChannelCheck<C extends SeedTokenizerConfig> = C extends { generalized: true }
  ? unknown
  : MayBe<ChannelsOf<C>, 3> extends true ? unknown
  : ShapeErrorType<
    `seedTokenizer: linear token_embedding.embedding: tokens [B, N, ${
      & ChannelsOf<
        C
      >
      & number}] have last dim ${
      & ChannelsOf<
        C
      >
      & number} but the seed hard-codes in_features 3; pass generalized: true`
  >;

function checkSizes(op: string, cfg: PatchEmbeddingConfig): void {
  // JavaScript callers can leave the config out; say what is missing, not "cannot destructure".
  if (typeof cfg !== "object" || cfg === null) {
    throw new TypeError(
      `${op}: pass the sizes, e.g. { height: 224, width: 224, patch: 16, embedding: 768 } ` +
        `(got ${cfg === null ? "null" : typeof cfg})`,
    );
  }
  const { height, width, patch, embedding } = cfg;
  const channels = cfg.channels ?? 3;
  const fail = (why: string): never => {
    throw new ShapeError(op, op, [[cfg.batch ?? "B", channels, height, width]], why);
  };
  for (const [k, v] of Object.entries({ height, width, patch, embedding, channels })) {
    if (!Number.isSafeInteger(v) || v < 1) fail(`${k} must be a positive integer, got ${v}`);
  }
  if (height % patch !== 0) {
    fail(`image height ${height} is not divisible by patch size ${patch} (strict_img_size)`);
  }
  if (width % patch !== 0) {
    fail(`image width ${width} is not divisible by patch size ${patch} (strict_img_size)`);
  }
}

/**
 * The seed tutorial's tokenizer: `ImageTokenizer` + `ClassTokenPrepender` +
 * `PositionalEmbedding`. Conv C->C (kernel = stride = P), `Flatten(2, 3)`, then a **reshape**
 * (not a transpose) to `[B, N, C]`, Linear 3->D, class token, positional embedding.
 * Stages are labelled `patches`, `tokens`, `embeddings`, `with_class_token`, `output`.
 *
 * @example
 * ```ts
 * import { seedTokenizer } from "./vit_tokenizer.ts";
 * const g = seedTokenizer({ height: 224, width: 224, patch: 16, embedding: 768 });
 * g.outShape; // ["B", 197, 768]
 * ```
 */
export function seedTokenizer<const C extends SeedTokenizerConfig>(
  config: C & DivisibleCheck<C, "seedTokenizer"> & SeedChannelCheck<C>,
): Graph<TokenizerShape<C>>;
// The implementation works on runtime sizes (its graph's dims are `number`); the signature above
// is the exact shape the config gives, which tests/types_test.ts asserts against `outShape`.
export function seedTokenizer(cfg: SeedTokenizerConfig): Graph<TShape> {
  checkSizes("seedTokenizer", cfg);
  const { height, width, patch } = cfg;
  const channels = cfg.channels ?? 3;
  const batch = cfg.batch ?? "B";
  const linearIn = cfg.generalized ? channels : 3;
  const patches = (height / patch) * (width / patch);
  if (linearIn !== channels) {
    throw new ShapeError(
      "linear",
      "token_embedding.embedding",
      [[batch, patches, channels]],
      `the seed hard-codes in_features 3 but the tokens have ${channels} channels; ` +
        `pass generalized: true`,
    );
  }
  return graph("seed-tokenizer", (g) => {
    const image = g.input("image", [batch, channels, height, width]);
    return addSeedTokenizer(g, image, cfg);
  });
}

/**
 * Appends the seed tokenizer's ops to a graph under construction, reading `image`
 * (`[B, C, H, W]`); for pipelines that put preprocessing in front. Sizes are checked by the
 * runtime rules; use `seedTokenizer` or `seedPipeline` for the statically typed entry points.
 *
 * @example
 * ```ts
 * import { graph, type GraphBuilder, type Tensor } from "../graph/builder.ts";
 * import { addSeedTokenizer } from "./vit_tokenizer.ts";
 * const cfg = { height: 32, width: 32, patch: 8, embedding: 16 };
 * const g = graph("t", (b) => addSeedTokenizer(b, b.input("image", ["B", 3, 32, 32]), cfg));
 * ```
 */
export function addSeedTokenizer(
  g: GraphBuilder,
  image: Tensor<TShape>,
  cfg: SeedTokenizerConfig,
): Tensor<TShape> {
  const { height, width, patch, embedding } = cfg;
  const channels = cfg.channels ?? 3;
  const batch = image.shape[0];
  const linearIn = cfg.generalized ? channels : 3;
  const patches = (height / patch) * (width / patch);
  const conv = g.label(
    g.conv2d(image, {
      out: channels,
      kernel: patch,
      stride: patch,
      name: "patch_extractor.patch_extractor",
    }),
    "patches",
  );
  const flat = g.flatten(conv, 2, 3);
  const tokens = g.label(g.reshape(flat, [batch, patches, channels]), "tokens");
  const emb = g.label(
    g.linear(tokens, { in: linearIn, out: embedding, name: "token_embedding.embedding" }),
    "embeddings",
  );
  const withCls = g.label(
    g.classToken(emb, { name: "class_token_prepender.class_token_vector" }),
    "with_class_token",
  );
  return g.label(
    g.addParam(withCls, {
      name: "positional_embedding.positional_embedding",
      shape: [1, patches + 1, embedding],
    }),
    "output",
  );
}

/**
 * Sizes of the seed's whole pipeline: raw pixels of an image of any size, `ToTensor()`,
 * `Resize((size, size))`, then the seed tokenizer.
 *
 * @example
 * ```ts
 * import type { SeedPipelineConfig } from "./vit_tokenizer.ts";
 * const c: SeedPipelineConfig = {
 *   imageHeight: 200, imageWidth: 300, size: 224, patch: 16, embedding: 768, antialias: false,
 * };
 * ```
 */
export interface SeedPipelineConfig {
  /** Height of the decoded image. */
  readonly imageHeight: number;
  /** Width of the decoded image. */
  readonly imageWidth: number;
  /** Square size the image is resized to (the seed uses 224). */
  readonly size: number;
  /** Patch size P. */
  readonly patch: number;
  /** Embedding width D. */
  readonly embedding: number;
  /** torchvision's antialias flag, explicit: 0.14 resized tensors without it, >= 0.17 with it. */
  readonly antialias: boolean;
  /** Batch dim; defaults to `"B"`. */
  readonly batch?: TDim;
}

/**
 * The tokenizer sizes of a pipeline config: the square resized image, patch, width and batch.
 *
 * @example
 * ```ts
 * import type { PipelineSizes } from "./vit_tokenizer.ts";
 * type S = PipelineSizes<{
 *   imageHeight: 200; imageWidth: 300; size: 224; patch: 16; embedding: 768; antialias: false;
 * }>; // { height: 224; width: 224; patch: 16; embedding: 768; batch: "B" }
 * ```
 */
export type PipelineSizes<C extends SeedPipelineConfig> = {
  height: C["size"];
  width: C["size"];
  patch: C["patch"];
  embedding: C["embedding"];
  batch: Get<C, "batch", "B">;
};

/**
 * The seed tutorial end to end as one typed graph: `pixels [B, H, W, 3]` (raw 0..255 values,
 * as decoded) -> `to_tensor` -> `resized [B, 3, size, size]` -> the seed tokenizer. Stages:
 * `to_tensor`, `resized`, `patches`, `tokens`, `embeddings`, `with_class_token`, `output`.
 *
 * @example
 * ```ts
 * import { seedPipeline } from "./vit_tokenizer.ts";
 * const g = seedPipeline({
 *   imageHeight: 200, imageWidth: 300, size: 224, patch: 16, embedding: 768, antialias: false,
 * });
 * g.outShape; // ["B", 197, 768]
 * ```
 */
export function seedPipeline<const C extends SeedPipelineConfig>(
  config:
    & C
    & DivisibleCheck<PipelineSizes<C>, "seedPipeline">,
): Graph<TokenizerShape<PipelineSizes<C>>>;
// Runtime sizes inside, the exact shape in the signature above (asserted by tests/types_test.ts).
export function seedPipeline(cfg: SeedPipelineConfig): Graph<TShape> {
  const sizes = { height: cfg.size, width: cfg.size, patch: cfg.patch, embedding: cfg.embedding };
  checkSizes("seedPipeline", sizes);
  const batch = cfg.batch ?? "B";
  return graph("seed-pipeline", (g) => {
    const pixels = g.input("pixels", [batch, cfg.imageHeight, cfg.imageWidth, 3]);
    const tensor = g.label(g.toTensor(pixels), "to_tensor");
    const resized = g.label(
      g.resize(tensor, { height: cfg.size, width: cfg.size, antialias: cfg.antialias }),
      "resized",
    );
    return addSeedTokenizer(g, resized, sizes);
  });
}

/**
 * timm's standard ViT patch embedding: conv C->D (kernel = stride = P),
 * `flatten(2).transpose(1, 2)`, `cls_token`, `pos_embed`. Stages are labelled `patches`,
 * `tokens`, `with_class_token`, `output`.
 *
 * @example
 * ```ts
 * import { patchEmbedding } from "./vit_tokenizer.ts";
 * const g = patchEmbedding({ height: 224, width: 224, patch: 16, embedding: 768 });
 * g.outShape; // ["B", 197, 768]
 * ```
 */
export function patchEmbedding<const C extends PatchEmbeddingConfig>(
  config: C & DivisibleCheck<C, "patchEmbedding">,
): Graph<TokenizerShape<C>>;
// Runtime sizes inside, the exact shape in the signature above (asserted by tests/types_test.ts).
export function patchEmbedding(cfg: PatchEmbeddingConfig): Graph<TShape> {
  checkSizes("patchEmbedding", cfg);
  const { height, width, patch, embedding } = cfg;
  const channels = cfg.channels ?? 3;
  const batch = cfg.batch ?? "B";
  const patches = (height / patch) * (width / patch);
  return graph("patch-embedding", (g) => {
    const image = g.input("image", [batch, channels, height, width]);
    const conv = g.label(
      g.conv2d(image, { out: embedding, kernel: patch, stride: patch, name: "patch_embed.proj" }),
      "patches",
    );
    const tokens = g.label(g.transpose(g.flatten(conv, 2, 3), 1, 2), "tokens");
    const withCls = g.label(g.classToken(tokens, { name: "cls_token" }), "with_class_token");
    return g.label(
      g.addParam(withCls, { name: "pos_embed", shape: [1, patches + 1, embedding] }),
      "output",
    );
  });
}
