/// <reference lib="dom" />
/**
 * The browser example's page logic (issue 15): pick an image, a backend and optionally a timm ViT
 * checkpoint, then run, in the page, either the seed tutorial's tokenizer (no checkpoint) or the
 * whole ViT, the same path `examples/vit.ts --image` takes. The library is a parameter, never an
 * import: this file imports only types, so its bundle holds no copy of Tessera and the served
 * `tessera.js` is the only one.
 *
 * The result is exposed for tests and tools, not only drawn: `#result` carries `data-status`
 * (`ready`, `running`, `done`, `error`), `data-run` (a counter, bumped when a run starts) and
 * `data-result` (the {@linkcode ExampleResult} as JSON); `window.__tesseraOutput` holds the full
 * output tensor's values.
 *
 * @module
 */

import type * as Tessera from "../../mod.ts";
import type {
  BackendName,
  DecodedImage,
  SafetensorsFile,
  SafetensorsReader,
  SafetensorsTensorInfo,
  TensorData,
  VitConfig,
} from "../../mod.ts";

// Re-exported so that this module's signatures reference only public types (deno doc --lint).
export type {
  BackendName,
  DecodedImage,
  SafetensorsFile,
  TDim,
  TensorData,
  VitConfig,
} from "../../mod.ts";

/**
 * The library as the served bundle exports it (`import * as tessera from "./tessera.js"`).
 *
 * @example
 * ```ts
 * import type { TesseraLibrary } from "./app.ts";
 * import * as tessera from "../../mod.ts";
 * const lib: TesseraLibrary = tessera;
 * ```
 */
export type TesseraLibrary = typeof Tessera;

/** The seed tutorial's sizes (examples/vit.ts uses the same without --weights). */
const SEED_SIZE = 224;
const SEED_PATCH = 16;
const SEED_EMBEDDING = 768;
/** How many classes the page lists, as the CLI's default `--top 5`. */
const TOP = 5;

/**
 * Min, max, mean and (population) standard deviation of a tensor's values.
 *
 * @example
 * ```ts
 * import type { Stats } from "./app.ts";
 * const s: Stats = { min: 0, max: 1, mean: 0.5, std: 0.5 };
 * ```
 */
export interface Stats {
  /** The smallest value. */
  readonly min: number;
  /** The largest value. */
  readonly max: number;
  /** The mean. */
  readonly mean: number;
  /** The population standard deviation. */
  readonly std: number;
}

/**
 * One class of the top-k: its index in the logits, its name and its softmax probability.
 *
 * @example
 * ```ts
 * import type { TopClass } from "./app.ts";
 * const t: TopClass = { index: 1, label: "goldfish", p: 0.93 };
 * ```
 */
export interface TopClass {
  /** Index into the logits. */
  readonly index: number;
  /** The class name, or `class N` without a class list. */
  readonly label: string;
  /** Softmax probability. */
  readonly p: number;
}

/**
 * What every run reports: which backend ran and why, the image, the shapes and timings.
 *
 * @example
 * ```ts
 * import type { CommonResult } from "./app.ts";
 * const r: CommonResult = {
 *   requested: "auto", backend: "wasm", reason: "auto: wasm, ...", fallbacks: [], warnings: [],
 *   crossOriginIsolated: false, cores: 8, version: "0.1.0",
 *   image: { source: "cat.png", width: 300, height: 200 },
 *   input: { shape: [1, 200, 300, 3], preprocessing: "ToTensor, Resize((224, 224))" },
 *   output: { shape: [1, 197, 768], stats: { min: -1, max: 1, mean: 0, std: 0.5 } },
 *   ms: { compile: 10, run: 5 },
 * };
 * ```
 */
export interface CommonResult {
  /** The backend picked in the page. */
  readonly requested: BackendName;
  /** `model.backend`: the backend that actually ran. */
  readonly backend: string;
  /** `model.reason`: why it was chosen (with the CPU backends' thread plan). */
  readonly reason: string;
  /** `model.fallbacks`. */
  readonly fallbacks: readonly string[];
  /** Every warning `compile()` gave. */
  readonly warnings: readonly string[];
  /** The page's `crossOriginIsolated` (threads need it). */
  readonly crossOriginIsolated: boolean;
  /** `navigator.hardwareConcurrency` (1 when unknown). */
  readonly cores: number;
  /** Tessera's version. */
  readonly version: string;
  /** The picked image, as decoded. */
  readonly image: { readonly source: string; readonly width: number; readonly height: number };
  /** The model's input and how it was made. */
  readonly input: { readonly shape: readonly number[]; readonly preprocessing: string };
  /** The output's shape and statistics (the values are `window.__tesseraOutput`). */
  readonly output: { readonly shape: readonly number[]; readonly stats: Stats };
  /** Milliseconds to compile and to run. */
  readonly ms: { readonly compile: number; readonly run: number };
}

/**
 * The seed tokenizer's run: stage shapes and the first values of the class token's row.
 *
 * @example
 * ```ts
 * import type { TokenizerResult } from "./app.ts";
 * function describe(r: TokenizerResult): string {
 *   return `${r.output.shape.join("x")} on ${r.backend}`;
 * }
 * ```
 */
export interface TokenizerResult extends CommonResult {
  /** No checkpoint: the seed tutorial's pipeline with PyTorch-default weights (seed 0). */
  readonly mode: "tokenizer";
  /** Every stage's shape (`to_tensor`, `resized`, `patches`, `tokens`, ...). */
  readonly stages: Readonly<Record<string, readonly number[]>>;
  /** The first 8 values of output row 0 (the class token after the positional embedding). */
  readonly classToken: readonly number[];
}

/**
 * The whole ViT's run: its config, logits, top classes and the last block's class-token attention.
 *
 * @example
 * ```ts
 * import type { VitResult } from "./app.ts";
 * function best(r: VitResult): string {
 *   return `${r.top[0].label} (${(100 * r.top[0].p).toFixed(1)}%)`;
 * }
 * ```
 */
export interface VitResult extends CommonResult {
  /** A timm ViT checkpoint was picked. */
  readonly mode: "vit";
  /** The checkpoint's name. */
  readonly checkpoint: string;
  /** The ViT built from it (sizes from its tensors, heads as {@linkcode RunRequest.heads}). */
  readonly config: VitConfig;
  /** Where the head count came from. */
  readonly headsFrom: "page" | "metadata" | "preset";
  /** The logits of the image. */
  readonly logits: readonly number[];
  /** The most probable classes, best first. */
  readonly top: readonly TopClass[];
  /**
   * The last block's class-token attention over the patches, averaged over heads: `grid[0]` rows
   * of `grid[1]` patches, row-major (what the CLI's `--out` draws per head).
   */
  readonly attention: {
    readonly block: number;
    readonly grid: readonly [number, number];
    readonly map: readonly number[];
  };
}

/**
 * A run's result, or the one-line error it stopped with.
 *
 * @example
 * ```ts
 * import type { ExampleResult } from "./app.ts";
 * const failed: ExampleResult = { mode: "error", error: "compile: unknown backend \"gpu\"" };
 * ```
 */
export type ExampleResult = TokenizerResult | VitResult | {
  readonly mode: "error";
  readonly error: string;
};

/**
 * What to run: the decoded image, the backend, and optionally a checkpoint and its settings.
 *
 * @example
 * ```ts
 * import type { RunRequest } from "./app.ts";
 * const image = { width: 2, height: 2, channels: 3 as const, data: new Uint8Array(12) };
 * const request: RunRequest = { image, backend: "auto" };
 * ```
 */
export interface RunRequest {
  /** The image, decoded by the library (RGB). */
  readonly image: DecodedImage;
  /** The backend `compile()` is asked for. */
  readonly backend: BackendName;
  /** A timm ViT checkpoint (timm or Hugging Face transformers names); none: the tokenizer. */
  readonly checkpoint?: SafetensorsFile;
  /**
   * Attention heads (not in a checkpoint's shapes); default: the metadata's timm config
   * (`num_heads`), else the `VIT_PRESETS` entry of the same width and depth.
   */
  readonly heads?: number;
  /** timm's Normalize mean and std (default 0.5 each, timm's ViT config). */
  readonly mean?: readonly [number, number, number];
  /** See `mean`. */
  readonly std?: readonly [number, number, number];
  /** timm's `crop_pct` (default 0.9). */
  readonly cropPct?: number;
  /** Class names for a head of `classes` outputs, or undefined ("class N"). */
  readonly labels?: (classes: number) => Promise<readonly string[] | undefined>;
}

/**
 * A finished run: the result, the full output and, for a ViT, the crop the model saw (for the
 * attention overlay).
 *
 * @example
 * ```ts
 * import type { ExampleRun } from "./app.ts";
 * function values(run: ExampleRun): number {
 *   return run.output.length;
 * }
 * ```
 */
export interface ExampleRun {
  /** What the page shows and exposes as `data-result`. */
  readonly result: TokenizerResult | VitResult;
  /** The output's values (the logits for a ViT). */
  readonly output: Float32Array;
  /** The center crop the ViT saw, 8-bit RGB (undefined for the tokenizer). */
  readonly crop?: { readonly width: number; readonly height: number; readonly data: Uint8Array };
}

/**
 * Runs the tokenizer or, with a checkpoint, the whole ViT on `request.image`, as
 * `examples/vit.ts --image` does; needs no DOM. Throws the library's errors as they are.
 *
 * @example
 * ```ts
 * import * as tessera from "../../mod.ts";
 * import { runExample } from "./app.ts";
 * const image = { width: 32, height: 24, channels: 3 as const, data: new Uint8Array(32 * 24 * 3) };
 * const { result } = await runExample(tessera, { image, backend: "reference" });
 * result.output.shape; // [1, 197, 768]
 * ```
 */
export async function runExample(lib: TesseraLibrary, request: RunRequest): Promise<ExampleRun> {
  const { checkpoint } = request;
  if (checkpoint === undefined) return await runTokenizer(lib, request);
  const reader = readerOf(checkpoint);
  if (!lib.isTimmVit(reader)) {
    throw new Error(
      `${reader.source}: not a timm ViT checkpoint (no blocks.{i}.*, norm or head tensors); ` +
        "remove it to run the seed tokenizer",
    );
  }
  return await runVit(lib, request, lib.asTimmVit(reader));
}

/** What compile() and run() report, the same for both modes. */
async function compileAndRun(
  lib: TesseraLibrary,
  request: RunRequest,
  graph: Tessera.Graph,
  weights: Tessera.Weights,
  weightsSource: string,
  inputs: Record<string, TensorData>,
  stages: readonly string[] | "all",
): Promise<{ common: Omit<CommonResult, "input">; stages: Record<string, TensorData> }> {
  const warnings: string[] = [];
  const started = performance.now();
  const model = await lib.compile(graph, {
    backend: request.backend,
    weights,
    weightsSource,
    onWarning: (m) => warnings.push(m),
  });
  try {
    const compiled = performance.now();
    const result = await model.run(inputs, { stages });
    const ran = performance.now();
    return {
      common: {
        requested: request.backend,
        backend: model.backend,
        reason: model.reason,
        fallbacks: [...model.fallbacks],
        warnings,
        crossOriginIsolated: globalThis.crossOriginIsolated === true,
        cores: globalThis.navigator?.hardwareConcurrency ?? 1,
        version: lib.VERSION,
        image: {
          source: request.image.source ?? "image",
          width: request.image.width,
          height: request.image.height,
        },
        output: { shape: result.output.shape, stats: statsOf(result.output.data) },
        ms: { compile: Math.round(compiled - started), run: Math.round(ran - compiled) },
      },
      stages: { ...result.stages, output: result.output },
    };
  } finally {
    model.dispose();
  }
}

/** The seed tutorial's pipeline (ToTensor, Resize((224, 224)), tokenizer), seed-0 weights. */
async function runTokenizer(lib: TesseraLibrary, request: RunRequest): Promise<ExampleRun> {
  const { image } = request;
  const graph = lib.seedPipeline({
    imageHeight: image.height,
    imageWidth: image.width,
    size: SEED_SIZE,
    patch: SEED_PATCH,
    embedding: SEED_EMBEDDING,
    antialias: false,
  });
  const pixels = lib.imageToTensorData(image);
  const { common, stages } = await compileAndRun(
    lib,
    request,
    graph,
    lib.initParams(graph, 0),
    "PyTorch-default init (seed 0)",
    { pixels },
    "all",
  );
  const output = stages.output.data;
  return {
    result: {
      ...common,
      mode: "tokenizer",
      input: {
        shape: pixels.shape,
        preprocessing: `ToTensor, Resize((${SEED_SIZE}, ${SEED_SIZE})) bilinear, antialias off`,
      },
      stages: Object.fromEntries(Object.entries(stages).map(([k, v]) => [k, v.shape])),
      classToken: Array.from(output.subarray(0, 8)),
    },
    output,
  };
}

/** The whole ViT on timm's eval transform of the image, as examples/vit.ts's classifyImage. */
async function runVit(
  lib: TesseraLibrary,
  request: RunRequest,
  checkpoint: SafetensorsReader,
): Promise<ExampleRun> {
  const { image } = request;
  // The model's input size: the square grid pos_embed was trained on (as the CLI without --model).
  const patch = checkpoint.tensors.get("patch_embed.proj.weight")?.shape[2] ?? 16;
  const tokens = checkpoint.tensors.get("pos_embed")?.shape[1] ?? 197;
  const size = Math.round(Math.sqrt(tokens - 1)) * patch;
  const mean = request.mean ?? [0.5, 0.5, 0.5];
  const std = request.std ?? [0.5, 0.5, 0.5];
  const cropPct = request.cropPct ?? 0.9;
  const { heads, from } = headsOf(lib, checkpoint, request.heads);
  const input = lib.timmEvalTransform(image, { size, cropPct, mean, std });
  const { config } = lib.vitConfigFromCheckpoint(checkpoint, {
    heads,
    height: size,
    width: size,
    channels: 3,
  });
  const graph = lib.vit(config);
  const { tensors: weights } = await checkpoint.read(graph.params().map((p) => p.attrs.name));
  const last = config.depth - 1;
  const { common, stages } = await compileAndRun(
    lib,
    request,
    graph,
    weights,
    checkpoint.source,
    { image: input },
    [`blocks.${last}.attn`],
  );
  const logits = stages.output.data;
  const labels = await request.labels?.(config.classes);
  const grid: [number, number] = [size / config.patch, size / config.patch];
  return {
    result: {
      ...common,
      mode: "vit",
      checkpoint: checkpoint.source,
      config,
      headsFrom: from,
      input: {
        shape: input.shape,
        preprocessing: `timm eval transform: resize the shorter side to ` +
          `${Math.floor(size / cropPct)} (PIL bicubic), center crop ${size}x${size}, ToTensor, ` +
          `Normalize(mean ${mean.join(",")}, std ${std.join(",")})`,
      },
      logits: Array.from(logits),
      top: lib.topK(logits, Math.min(TOP, logits.length)).map(({ index, p }) => ({
        index,
        label: labels?.[index] ?? `class ${index}`,
        p,
      })),
      attention: {
        block: last,
        grid,
        map: Array.from(meanClassAttention(stages[`blocks.${last}.attn`])),
      },
    },
    output: logits,
    crop: cropOf(input, mean, std),
  };
}

/** The head count: asked for, else the checkpoint's timm config, else a preset of its sizes. */
function headsOf(
  lib: TesseraLibrary,
  checkpoint: SafetensorsReader,
  asked: number | undefined,
): { heads: number; from: VitResult["headsFrom"] } {
  if (asked !== undefined) return { heads: asked, from: "page" };
  // Checkpoints saved with their timm kwargs (as the fixtures) say it in the metadata.
  try {
    const heads = JSON.parse(checkpoint.metadata.config ?? "null")?.num_heads;
    if (Number.isSafeInteger(heads) && heads > 0) return { heads, from: "metadata" };
  } catch {
    // Not JSON: fall through to the presets.
  }
  const dim = checkpoint.tensors.get("patch_embed.proj.weight")?.shape[0];
  let depth = 0;
  while (checkpoint.tensors.has(`blocks.${depth}.attn.qkv.weight`)) depth++;
  const preset = Object.values(lib.VIT_PRESETS).find((p) => p.dim === dim && p.depth === depth);
  if (preset) return { heads: preset.heads, from: "preset" };
  throw new Error(
    `${checkpoint.source}: the head count is not in a checkpoint's shapes, its metadata has no ` +
      `timm config and no preset has width ${dim} and depth ${depth}: enter the heads`,
  );
}

/**
 * A loaded file as a reader, so that `asTimmVit` (which renames Hugging Face transformers
 * tensors) and `read` work on it as on `openSafetensors` in Deno, which a browser lacks.
 */
function readerOf(file: SafetensorsFile): SafetensorsReader {
  const source = file.source ?? "checkpoint";
  const tensors = new Map<string, SafetensorsTensorInfo>();
  let size = 0;
  for (const [name, t] of file.tensors) {
    tensors.set(name, { shape: t.shape, dtype: "F32", byteLength: t.data.byteLength });
    size += t.data.byteLength;
  }
  return {
    source,
    metadata: file.metadata,
    tensors,
    size,
    read: (names) => {
      const wanted = [...(names ?? tensors.keys())];
      const picked = new Map<string, TensorData>();
      for (const name of wanted) {
        const t = file.tensors.get(name);
        if (t === undefined) {
          return Promise.reject(new Error(`${source}: no tensor "${name}"`));
        }
        picked.set(name, t);
      }
      return Promise.resolve({ tensors: picked, metadata: file.metadata, source });
    },
    close: () => {},
  };
}

/** Min, max, mean and std, in float64. */
function statsOf(data: Float32Array): Stats {
  let min = Infinity, max = -Infinity, sum = 0, squares = 0;
  for (const v of data) {
    min = Math.min(min, v);
    max = Math.max(max, v);
    sum += v;
    squares += v * v;
  }
  const n = Math.max(1, data.length);
  const mean = sum / n;
  return { min, max, mean, std: Math.sqrt(Math.max(0, squares / n - mean * mean)) };
}

/** Row 0 of `attn[0, h]` without the class token itself, averaged over the heads. */
function meanClassAttention(attn: TensorData): Float32Array {
  const [, heads, n] = attn.shape;
  const map = new Float32Array(n - 1);
  for (let h = 0; h < heads; h++) {
    const row = h * n * n;
    for (let p = 1; p < n; p++) map[p - 1] += attn.data[row + p] / heads;
  }
  return map;
}

/** The normalized input back to 8-bit RGB: the center crop the model saw. */
function cropOf(
  input: TensorData,
  mean: readonly number[],
  std: readonly number[],
): NonNullable<ExampleRun["crop"]> {
  const [, , height, width] = input.shape;
  const plane = height * width;
  const data = new Uint8Array(plane * 3);
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < plane; i++) {
      data[3 * i + c] = Math.round((input.data[c * plane + i] * std[c] + mean[c]) * 255);
    }
  }
  return { width, height, data };
}

/** An error as the page shows it: the library's message, on one line, never a stack. */
function oneLine(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.replace(/\s*\n\s*/g, " ");
}

/** A few stops of matplotlib's inferno, interpolated: dark for 0, yellow for the maximum. */
const INFERNO: readonly (readonly [number, number, number])[] = [
  [0, 0, 4],
  [87, 16, 110],
  [188, 55, 84],
  [249, 142, 9],
  [252, 255, 164],
];

function inferno(t: number): [number, number, number] {
  const x = Math.min(1, Math.max(0, t)) * (INFERNO.length - 1);
  const i = Math.min(INFERNO.length - 2, Math.floor(x));
  const f = x - i;
  const [a, b] = [INFERNO[i], INFERNO[i + 1]];
  return [0, 1, 2].map((c) => Math.round(a[c] + (b[c] - a[c]) * f)) as [number, number, number];
}

/** RGB bytes as a canvas of their size. */
function canvasOf(
  doc: Document,
  width: number,
  height: number,
  rgb: (i: number) => [number, number, number],
): HTMLCanvasElement {
  const canvas = doc.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext("2d") as CanvasRenderingContext2D;
  const pixels = ctx.createImageData(width, height);
  for (let i = 0; i < width * height; i++) {
    pixels.data.set([...rgb(i), 255], 4 * i);
  }
  ctx.putImageData(pixels, 0, 0);
  return canvas;
}

/**
 * Draws the crop the model saw with the attention map over it: the map coloured over [0, its
 * maximum], bilinearly upscaled by the canvas, blended at 50% (as the CLI's figures).
 */
function drawAttention(
  canvas: HTMLCanvasElement,
  crop: NonNullable<ExampleRun["crop"]>,
  attention: VitResult["attention"],
): void {
  const doc = canvas.ownerDocument;
  const [gh, gw] = attention.grid;
  const max = Math.max(...attention.map);
  const base = canvasOf(doc, crop.width, crop.height, (i) => [
    crop.data[3 * i],
    crop.data[3 * i + 1],
    crop.data[3 * i + 2],
  ]);
  const heat = canvasOf(doc, gw, gh, (i) => inferno(max > 0 ? attention.map[i] / max : 0));
  const side = 256;
  canvas.width = side;
  canvas.height = Math.round((side * crop.height) / crop.width);
  const ctx = canvas.getContext("2d") as CanvasRenderingContext2D;
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = "high";
  ctx.drawImage(base, 0, 0, canvas.width, canvas.height);
  ctx.globalAlpha = 0.5;
  ctx.drawImage(heat, 0, 0, canvas.width, canvas.height);
  ctx.globalAlpha = 1;
}

/**
 * Options of {@linkcode startApp}.
 *
 * @example
 * ```ts
 * import type { AppOptions } from "./app.ts";
 * const options: AppOptions = { labelsUrl: "/imagenet_classes.txt" };
 * ```
 */
export interface AppOptions {
  /** ImageNet-1k's class names, one a line, for a 1000-class head (default: beside the page). */
  readonly labelsUrl?: string | URL;
}

/**
 * What {@linkcode startApp} returns: the last run's result (undefined before the first).
 *
 * @example
 * ```ts
 * import type { App } from "./app.ts";
 * function backendOf(app: App): string | undefined {
 *   const r = app.last();
 *   return r && r.mode !== "error" ? r.backend : undefined;
 * }
 * ```
 */
export interface App {
  /** The last run's result. */
  last(): ExampleResult | undefined;
  /** Runs with what the form holds now, as the Run button does. */
  run(): Promise<ExampleResult>;
}

/** The page's elements, by id (index.html). */
interface Elements {
  readonly form: HTMLFormElement;
  readonly image: HTMLInputElement;
  readonly checkpoint: HTMLInputElement;
  readonly backend: HTMLSelectElement;
  readonly heads: HTMLInputElement;
  readonly normalize: HTMLSelectElement;
  readonly cropPct: HTMLInputElement;
  readonly drop: HTMLElement;
  readonly preview: HTMLImageElement;
  readonly run: HTMLButtonElement;
  readonly result: HTMLElement;
  readonly status: HTMLElement;
  readonly summary: HTMLElement;
  readonly top: HTMLOListElement;
  readonly attention: HTMLCanvasElement;
}

function elementsOf(doc: Document): Elements {
  const get = <T extends HTMLElement>(id: string): T => {
    const el = doc.getElementById(id);
    if (el === null) throw new Error(`the page has no #${id} (index.html and app.ts disagree)`);
    return el as T;
  };
  return {
    form: get("form"),
    image: get("image"),
    checkpoint: get("checkpoint"),
    backend: get("backend"),
    heads: get("heads"),
    normalize: get("normalize"),
    cropPct: get("crop-pct"),
    drop: get("drop"),
    preview: get("preview"),
    run: get("run"),
    result: get("result"),
    status: get("status"),
    summary: get("summary"),
    top: get("top"),
    attention: get("attention"),
  };
}

/** ImageNet's class list for a 1000-class head, fetched once; undefined if it cannot be. */
function labelLoader(url: URL): (classes: number) => Promise<readonly string[] | undefined> {
  let names: Promise<string[] | undefined> | undefined;
  return (classes) => {
    if (classes !== 1000) return Promise.resolve(undefined);
    names ??= fetch(url)
      .then((r) => (r.ok ? r.text() : ""))
      .then((text) => {
        const lines = text.split(/\r?\n/).filter((l) => l !== "");
        return lines.length === 1000 ? lines : undefined;
      })
      .catch(() => undefined);
    return names;
  };
}

/** Reads the form into a request: the image and checkpoint through the library's decoders. */
async function requestOf(
  lib: TesseraLibrary,
  els: Elements,
  labels: RunRequest["labels"],
): Promise<RunRequest> {
  const imageFile = els.image.files?.[0];
  if (imageFile === undefined) throw new Error("pick an image (PNG or JPEG) first");
  const image = lib.decodeImage(new Uint8Array(await imageFile.arrayBuffer()), {
    source: imageFile.name,
  });
  const weightsFile = els.checkpoint.files?.[0];
  const checkpoint = weightsFile === undefined
    ? undefined
    : lib.parseSafetensors(new Uint8Array(await weightsFile.arrayBuffer()), weightsFile.name);
  const headsText = els.heads.value.trim();
  const heads = headsText === "" ? undefined : Number(headsText);
  if (heads !== undefined && !(Number.isSafeInteger(heads) && heads > 0)) {
    throw new Error(`heads takes a whole number above 0, got "${headsText}"`);
  }
  const cropPct = Number(els.cropPct.value);
  if (!(cropPct > 0 && Number.isFinite(cropPct))) {
    throw new Error(`crop pct takes a number above 0 such as 0.9, got "${els.cropPct.value}"`);
  }
  const imagenet = els.normalize.value === "imagenet";
  return {
    image,
    // compile() rejects a name it does not know, with the list.
    backend: els.backend.value as BackendName,
    checkpoint,
    heads,
    cropPct,
    mean: imagenet ? lib.IMAGENET_MEAN : undefined,
    std: imagenet ? lib.IMAGENET_STD : undefined,
    labels,
  };
}

/** Shows a finished run: summary lines, the top-k and the attention overlay. */
function render(els: Elements, run: ExampleRun): void {
  const r = run.result;
  const s = r.output.stats;
  const lines = [
    `backend: ${r.backend} (requested ${r.requested})`,
    `reason: ${r.reason}`,
    `cross-origin isolated: ${r.crossOriginIsolated} (${r.cores} cores)`,
    `image: ${r.image.source}, ${r.image.width}x${r.image.height}`,
    `input [${r.input.shape.join(", ")}]: ${r.input.preprocessing}`,
    r.mode === "vit"
      ? `model: ${r.checkpoint}, ViT depth ${r.config.depth}, width ${r.config.dim}, heads ` +
        `${r.config.heads} (${r.headsFrom}), patch ${r.config.patch}, ${r.config.classes} classes`
      : `model: the seed tokenizer, PyTorch-default init (seed 0); stages ${
        Object.entries(r.stages).map(([k, v]) => `${k} [${v.join(", ")}]`).join(", ")
      }`,
    `output [${r.output.shape.join(", ")}]: min ${s.min.toFixed(4)}, max ${s.max.toFixed(4)}, ` +
    `mean ${s.mean.toFixed(4)}, std ${s.std.toFixed(4)}`,
    ...(r.mode === "tokenizer"
      ? [`class token row: ${r.classToken.map((v) => v.toFixed(4)).join(", ")}, ...`]
      : []),
    ...r.warnings.map((w) => `warning: ${w}`),
    `compile ${r.ms.compile} ms, run ${r.ms.run} ms; Tessera ${r.version}`,
  ];
  els.summary.textContent = lines.join("\n");
  els.top.replaceChildren();
  els.attention.hidden = r.mode !== "vit";
  if (r.mode !== "vit") return;
  for (const t of r.top) {
    const li = els.top.ownerDocument.createElement("li");
    li.textContent = `${(100 * t.p).toFixed(2)}%  ${t.label}`;
    els.top.append(li);
  }
  if (run.crop) drawAttention(els.attention, run.crop, r.attention);
}

/** Drop zone: image files go to the image input, `.safetensors` files to the checkpoint's. */
function acceptDrops(els: Elements): void {
  els.drop.addEventListener("dragover", (e) => e.preventDefault());
  els.drop.addEventListener("drop", (e) => {
    e.preventDefault();
    for (const file of e.dataTransfer?.files ?? []) {
      const target = file.name.endsWith(".safetensors") ? els.checkpoint : els.image;
      const list = new DataTransfer();
      list.items.add(file);
      target.files = list.files;
      target.dispatchEvent(new Event("change"));
    }
  });
}

/**
 * Wires the page (index.html's elements) to the library: fills the backend list with
 * `BACKEND_NAMES` (auto first), previews the picked image, and runs on submit; sets `#result`'s
 * `data-status` to `ready` once wired.
 *
 * @example
 * ```ts ignore
 * import * as tessera from "./tessera.js";
 * import { startApp } from "./app.js";
 * const app = startApp(tessera);
 * const result = await app.run();
 * ```
 */
export function startApp(
  lib: TesseraLibrary,
  doc: Document = document,
  options: AppOptions = {},
): App {
  const els = elementsOf(doc);
  const labels = labelLoader(new URL(options.labelsUrl ?? "imagenet_classes.txt", doc.baseURI));
  els.backend.replaceChildren(
    ...lib.BACKEND_NAMES.map((name) => new Option(name, name, name === "auto", name === "auto")),
  );
  let preview: string | undefined;
  els.image.addEventListener("change", () => {
    if (preview !== undefined) URL.revokeObjectURL(preview);
    const file = els.image.files?.[0];
    preview = file ? URL.createObjectURL(file) : undefined;
    els.preview.hidden = preview === undefined;
    if (preview !== undefined) els.preview.src = preview;
  });
  acceptDrops(els);
  let last: ExampleResult | undefined;
  let runs = 0;
  const run = async (): Promise<ExampleResult> => {
    runs++;
    els.result.dataset.run = String(runs);
    els.result.dataset.status = "running";
    els.run.disabled = true;
    els.status.textContent = "running...";
    let status: "done" | "error";
    try {
      const done = await runExample(lib, await requestOf(lib, els, labels));
      last = done.result;
      (globalThis as { __tesseraOutput?: Float32Array }).__tesseraOutput = done.output;
      render(els, done);
      els.status.textContent = `done on ${done.result.backend}`;
      status = "done";
    } catch (err) {
      last = { mode: "error", error: oneLine(err) };
      (globalThis as { __tesseraOutput?: Float32Array }).__tesseraOutput = undefined;
      els.status.textContent = `error: ${last.error}`;
      els.summary.textContent = "";
      els.top.replaceChildren();
      els.attention.hidden = true;
      status = "error";
    }
    // The result first: whoever waits for the status then reads this run's result.
    els.result.dataset.result = JSON.stringify(last);
    els.result.dataset.status = status;
    els.status.toggleAttribute("data-error", status === "error");
    els.run.disabled = false;
    return last;
  };
  els.form.addEventListener("submit", (e) => {
    e.preventDefault();
    void run();
  });
  els.result.dataset.status = "ready";
  return { last: () => last, run };
}
