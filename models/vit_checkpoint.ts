/**
 * Reading a timm ViT checkpoint: every size from its tensor names and shapes (depth from
 * `blocks.N`, width, MLP width, patch, channels, classes, pooling from `fc_norm` vs `norm`), and
 * timm's `dynamic_img_size` resampling of `pos_embed` when the input's patch grid differs from
 * the checkpoint's. Only the heads cannot be read from the shapes: they come from the caller
 * (`--heads`, or a preset's name).
 * @module
 */

import {
  type SafetensorsFile,
  type SafetensorsReader,
  type SafetensorsTensorInfo,
  WeightsError,
} from "../io/safetensors.ts";
import type { TensorData } from "../graph/tensor_data.ts";
import { resampleBicubicAA } from "../io/resample.ts";
import type { VitConfig } from "./vit.ts";

/**
 * Tensor names and shapes, as a safetensors header gives them before any data is read.
 *
 * @example
 * ```ts
 * import type { TensorShapes } from "./vit_checkpoint.ts";
 * const s: TensorShapes = { tensors: new Map([["cls_token", { shape: [1, 1, 192] }]]) };
 * ```
 */
export interface TensorShapes {
  /** Shapes by tensor name. */
  readonly tensors: ReadonlyMap<string, { readonly shape: readonly number[] }>;
  /** The file, for messages. */
  readonly source?: string;
}

/**
 * Whether a checkpoint is a whole timm ViT (it has encoder blocks, a final norm or a head), not
 * just a patch embedding.
 *
 * @example
 * ```ts
 * import { isTimmVit } from "./vit_checkpoint.ts";
 * isTimmVit({ tensors: new Map([["blocks.0.attn.qkv.weight", { shape: [576, 192] }]]) }); // true
 * ```
 */
export function isTimmVit(file: TensorShapes): boolean {
  if (isHfVit(file)) return true;
  for (const name of file.tensors.keys()) {
    if (/^blocks\.\d+\./.test(name) || /^(norm|fc_norm|head)\.weight$/.test(name)) return true;
  }
  return false;
}

/**
 * A checkpoint's ViT config for an input of `height x width` with `channels`, and the patch grid
 * its `pos_embed` was trained on (timm's rule when the file does not say: square, the square root
 * of the patch-token count). Throws a one-line `WeightsError` naming the tensor at fault.
 *
 * @example
 * ```ts ignore
 * const file = await openSafetensors("vit_tiny_patch16_224.safetensors");
 * const { config, grid } = vitConfigFromCheckpoint(file, { heads: 3, height: 224, width: 224, channels: 3 });
 * ```
 */
export function vitConfigFromCheckpoint(
  file: TensorShapes,
  input: {
    readonly heads: number;
    readonly height: number;
    readonly width: number;
    channels: number;
  },
): { config: VitConfig; grid: readonly [number, number] } {
  const fail = (tensor: string, why: string): never => {
    throw new WeightsError(`tensor "${tensor}" ${why}`, { file: file.source, tensor });
  };
  const shape = (name: string, rank: number): readonly number[] => {
    const t = file.tensors.get(name);
    if (!t) {
      throw new WeightsError(
        `no tensor "${name}": a ViT checkpoint has timm's names (patch_embed.proj.weight, ` +
          "blocks.{i}.attn.qkv.weight, ...) or Hugging Face transformers' " +
          "(vit.embeddings.*, vit.encoder.layer.{i}.*, classifier.*)",
        { file: file.source, tensor: name },
      );
    }
    if (t.shape.length !== rank) fail(name, `has shape [${t.shape.join(", ")}], not rank ${rank}`);
    return t.shape;
  };
  const [dim, channels, patch, patchW] = shape("patch_embed.proj.weight", 4);
  if (patch !== patchW) {
    fail("patch_embed.proj.weight", `has a ${patch}x${patchW} kernel; patches must be square`);
  }
  if (channels !== input.channels) {
    fail(
      "patch_embed.proj.weight",
      `expects ${channels} channels but the input has ${input.channels}`,
    );
  }
  let depth = 0;
  while (file.tensors.has(`blocks.${depth}.attn.qkv.weight`)) depth++;
  for (const name of file.tensors.keys()) {
    const m = name.match(/^blocks\.(\d+)\./);
    if (m && Number(m[1]) >= depth) {
      fail(name, `belongs to block ${m[1]} but blocks.${depth}.attn.qkv.weight is missing`);
    }
  }
  const mlpHidden = depth > 0 ? shape("blocks.0.mlp.fc1.weight", 2)[0] : 4 * dim;
  const [classes] = shape("head.weight", 2);
  const pool = file.tensors.has("fc_norm.weight") ? "avg" : "token";
  shape(pool === "avg" ? "fc_norm.weight" : "norm.weight", 1);
  const [, tokens] = shape("pos_embed", 3);
  const side = Math.round(Math.sqrt(tokens - 1));
  const want = (input.height / patch) * (input.width / patch) + 1;
  // A pos_embed that fits the input needs no grid: rectangular checkpoints load as they are.
  const grid: readonly [number, number] = tokens === want
    ? [input.height / patch, input.width / patch]
    : [side, side];
  if (tokens !== want && side * side !== tokens - 1) {
    fail(
      "pos_embed",
      `has ${tokens - 1} patch tokens, not a square grid, and the input needs ${want - 1}`,
    );
  }
  return {
    config: {
      image: [input.height, input.width],
      patch,
      dim,
      depth,
      heads: input.heads,
      classes,
      mlpRatio: mlpHidden / dim,
      pool,
      channels,
    },
    grid,
  };
}

/**
 * timm's `resample_abs_pos_embed` (what `dynamic_img_size=True` does each forward): the class
 * token's row is kept, the patch rows are resampled from the `from` grid to the `to` grid as a
 * `(D, rows, cols)` image with torch's antialiased bicubic (`F.interpolate(mode="bicubic",
 * antialias=True, align_corners=False)`).
 *
 * @example
 * ```ts
 * import { resamplePosEmbed } from "./vit_checkpoint.ts";
 * const pos = { shape: [1, 5, 2], data: new Float32Array(10) };
 * resamplePosEmbed(pos, [2, 2], [3, 3]).shape; // [1, 10, 2]
 * ```
 */
export function resamplePosEmbed(
  pos: TensorData,
  from: readonly [number, number],
  to: readonly [number, number],
): TensorData {
  const [, tokens, dim] = pos.shape;
  const [fh, fw] = from;
  const [th, tw] = to;
  if (tokens !== fh * fw + 1) {
    throw new WeightsError(
      `tensor "pos_embed" has ${tokens} tokens, not ${fh}x${fw} patches and a class token`,
      { tensor: "pos_embed" },
    );
  }
  // (fh*fw, D) token-major -> (D, fh, fw) channel-major, as timm permutes before interpolating.
  const grid = new Float32Array(dim * fh * fw);
  for (let t = 0; t < fh * fw; t++) {
    for (let d = 0; d < dim; d++) grid[d * fh * fw + t] = pos.data[(t + 1) * dim + d];
  }
  const resized = resampleBicubicAA(grid, [dim, fh, fw], th, tw);
  const out = new Float32Array((th * tw + 1) * dim);
  out.set(pos.data.subarray(0, dim));
  for (let t = 0; t < th * tw; t++) {
    for (let d = 0; d < dim; d++) out[(t + 1) * dim + d] = resized[d * th * tw + t];
  }
  return { shape: [1, th * tw + 1, dim], data: out };
}

/** How one timm tensor is made from a Hugging Face `transformers` checkpoint's tensors. */
interface HfSource {
  /** The HF names, concatenated along dim 0 in this order (q, k, v for `qkv`). */
  readonly from: readonly string[];
}

/** timm names -> HF names for `ViTForImageClassification` / `ViTModel` (prefix `vit.` or none). */
function hfNames(prefix: string, depth: number): Map<string, HfSource> {
  const map = new Map<string, HfSource>();
  const one = (timm: string, hf: string): void => void map.set(timm, { from: [hf] });
  const e = `${prefix}embeddings.`;
  one("cls_token", `${e}cls_token`);
  one("pos_embed", `${e}position_embeddings`);
  for (const p of ["weight", "bias"]) {
    one(`patch_embed.proj.${p}`, `${e}patch_embeddings.projection.${p}`);
    for (let i = 0; i < depth; i++) {
      const l = `${prefix}encoder.layer.${i}.`;
      const b = `blocks.${i}.`;
      one(`${b}norm1.${p}`, `${l}layernorm_before.${p}`);
      map.set(`${b}attn.qkv.${p}`, {
        from: ["query", "key", "value"].map((k) => `${l}attention.attention.${k}.${p}`),
      });
      one(`${b}attn.proj.${p}`, `${l}attention.output.dense.${p}`);
      one(`${b}norm2.${p}`, `${l}layernorm_after.${p}`);
      one(`${b}mlp.fc1.${p}`, `${l}intermediate.dense.${p}`);
      one(`${b}mlp.fc2.${p}`, `${l}output.dense.${p}`);
    }
    one(`norm.${p}`, `${prefix}layernorm.${p}`);
    one(`head.${p}`, `classifier.${p}`);
  }
  return map;
}

/**
 * A checkpoint with timm's names: the reader itself when it has them, or a view of a Hugging Face
 * `transformers` ViT checkpoint (`vit.embeddings.*`, `vit.encoder.layer.{i}.*`, `classifier.*`)
 * under timm's names, with `query`, `key` and `value` concatenated into `qkv`. Reads stay lazy:
 * only the HF tensors behind the timm names asked for. Throws a one-line `WeightsError` listing
 * the names expected when the file has neither layout.
 *
 * @example
 * ```ts ignore
 * const file = asTimmVit(await openSafetensors("google-vit-base-patch16-224.safetensors"));
 * file.tensors.get("blocks.0.attn.qkv.weight")?.shape; // [2304, 768]
 * ```
 */
export function asTimmVit(reader: SafetensorsReader): SafetensorsReader {
  if (reader.tensors.has("patch_embed.proj.weight") || !isHfVit(reader)) return reader;
  const prefix = reader.tensors.has("vit.embeddings.cls_token") ? "vit." : "";
  let depth = 0;
  while (reader.tensors.has(`${prefix}encoder.layer.${depth}.attention.attention.query.weight`)) {
    depth++;
  }
  const tensors = new Map<string, SafetensorsTensorInfo>();
  const plan = new Map<string, HfSource>();
  for (const [timm, source] of hfNames(prefix, depth)) {
    const infos = source.from.map((n) => reader.tensors.get(n));
    if (infos.some((i) => i === undefined)) continue;
    const [first] = infos as SafetensorsTensorInfo[];
    const rows = (infos as SafetensorsTensorInfo[]).reduce((s, i) => s + (i.shape[0] ?? 1), 0);
    const shape = source.from.length > 1 ? [rows, ...first.shape.slice(1)] : first.shape;
    const byteLength = (infos as SafetensorsTensorInfo[]).reduce((s, i) => s + i.byteLength, 0);
    tensors.set(timm, { shape, dtype: first.dtype, byteLength });
    plan.set(timm, source);
  }
  return {
    source: reader.source,
    metadata: reader.metadata,
    tensors,
    size: reader.size,
    async read(names?: Iterable<string>): Promise<SafetensorsFile> {
      const wanted = [...(names ?? tensors.keys())];
      for (const n of wanted) {
        if (!plan.has(n)) {
          throw new WeightsError(
            `no tensor "${n}" in this Hugging Face ViT checkpoint (it maps to timm's names ` +
              `${[...tensors.keys()].slice(0, 4).join(", ")}, ...)`,
            { file: reader.source, tensor: n },
          );
        }
      }
      const hf = await reader.read(wanted.flatMap((n) => (plan.get(n) as HfSource).from));
      const out = new Map<string, TensorData>();
      for (const n of wanted) {
        const parts = (plan.get(n) as HfSource).from.map((h) => hf.tensors.get(h) as TensorData);
        if (parts.length === 1) {
          out.set(n, parts[0]);
          continue;
        }
        const data = new Float32Array(parts.reduce((s, p) => s + p.data.length, 0));
        let at = 0;
        for (const p of parts) {
          data.set(p.data, at);
          at += p.data.length;
        }
        out.set(n, { shape: tensors.get(n)?.shape ?? [], data });
      }
      return { tensors: out, metadata: hf.metadata };
    },
    close: () => reader.close(),
  };
}

/** Whether a checkpoint has Hugging Face `transformers` ViT names. */
function isHfVit(file: TensorShapes): boolean {
  return file.tensors.has("vit.embeddings.patch_embeddings.projection.weight") ||
    file.tensors.has("embeddings.patch_embeddings.projection.weight");
}
