/**
 * The ViT tokenizer, end to end: a demo and a command-line tool.
 *
 * Demo (no permissions needed): builds the seed tutorial's tokenizer for 224x224 images, runs it
 * on a generated image with PyTorch-default weights and prints every stage's shape.
 *
 *     deno run examples/vit.ts [--backend NAME] [--explain[=source]]
 *
 * Tool: runs a PyTorch checkpoint (seed or timm names; every size is read from the tensors) on
 * the `input` tensor of a safetensors file and saves the result.
 *
 *     deno run -A examples/vit.ts --weights W.safetensors --input I.safetensors \
 *       --output O.safetensors [--intermediates] [--backend NAME] [--explain[=source]]
 *
 * Image: the seed's whole pipeline (decode, `ToTensor()`, `Resize((224, 224))`, tokenizer) on a
 * PNG or JPEG, with PyTorch-default weights (seed 0) or a seed checkpoint; `--out` saves the
 * seven figures and report.html, `--output` the output (and, with `--intermediates`, every
 * stage).
 *
 *     deno run -A examples/vit.ts --image PATH [--out DIR] [--antialias on|off] \
 *       [--backend NAME] [--weights W.safetensors] [--output O.safetensors [--intermediates]] \
 *       [--max-image-pixels N] [--explain[=source]]
 *
 * @module
 */

import { dirname, join } from "node:path";
import { parseArgs } from "node:util";
import {
  BACKEND_NAMES,
  type BackendName,
  compile,
  type CompiledGraph,
  type DecodedImage,
  type Graph,
  imageToTensorData,
  initParams,
  loadImage,
  MAX_IMAGE_PIXELS,
  openSafetensors,
  patchEmbedding,
  type RunResult,
  type SafetensorsReader,
  saveSafetensors,
  seedPipeline,
  seedTokenizer,
  type TensorData,
  topK,
  VERSION,
  vit,
  VIT_PRESETS,
  type VitPresetName,
  type Weights,
  WeightsError,
} from "../api.ts";
import {
  asTimmVit,
  isTimmVit,
  resamplePosEmbed,
  vitConfigFromCheckpoint,
} from "../models/vit_checkpoint.ts";
import { fileErrorReason, notRegularReason } from "../io/files.ts";
import { timmEvalCrop, timmEvalTransform } from "../io/timm_transform.ts";
import type { VitReportInputs } from "../viz/vit_report.ts";
import type { ReportProvenance } from "../viz/report_html.ts";

const USAGE = `usage:
  deno run examples/vit.ts [--backend NAME] [--explain[=source]]
  deno run -A examples/vit.ts --weights W.safetensors --input I.safetensors --output O.safetensors
      [--intermediates] [--heads H | --model NAME] [--dynamic-size] [--backend NAME]
  deno run -A examples/vit.ts --image PATH --weights W.safetensors (--heads H | --model NAME)
      [--mean a,b,c] [--std a,b,c] [--crop-pct 0.9] [--labels FILE] [--top 5] [--out DIR]
      [--output O.safetensors [--intermediates]] [--backend NAME]
  deno run -A examples/vit.ts --image PATH [--weights SEED.safetensors] [--out DIR]
      [--antialias on|off] [--output O.safetensors [--intermediates]] [--max-image-pixels N]

flags (defaults in brackets):
  --weights W        a checkpoint: a timm ViT (or Hugging Face transformers names; writes
                     logits), a timm patch embedding or the seed tokenizer (writes output);
                     every size is read from the tensors [none: the demo, or seed init]
  --input I          a safetensors file whose "input" tensor is the (B, C, H, W) batch [none]
  --output O         where the results go; never one of the input files [none]
  --intermediates    also write every stage (ViT: tokens, embedded, blocks.{i}, features,
                     pooled, logits; with --image also the preprocessed input) [off]
  --heads H          attention heads of a timm ViT checkpoint (not in its shapes) [none]
  --model NAME       a timm preset, for its heads and input size
                     (${Object.keys(VIT_PRESETS).join(", ")}) [none]
  --dynamic-size     resample pos_embed when the input's patch grid differs from the
                     checkpoint's, as timm's dynamic_img_size=True [off]
  --image PATH       a PNG or JPEG: classified by a timm ViT checkpoint, else run through the
                     seed tokenizer pipeline [none]
  --mean a,b,c       ViT image mode: Normalize mean [0.5,0.5,0.5]
  --std a,b,c        ViT image mode: Normalize std [0.5,0.5,0.5]
  --crop-pct P       ViT image mode: resize the shorter side to floor(size / P) [0.9]
  --labels FILE      ViT image mode: class names, one a line [ImageNet-1k for 1000 classes]
  --top K            ViT image mode: how many classes to print [5]
  --out DIR          with --image: figures and report.html (ViT: attention maps, rollout,
                     top-k; seed: the tutorial's seven figures) [none]
  --antialias on|off seed pipeline: torchvision Resize's antialias [off]
  --max-image-pixels N  refuse images above 2x this many pixels, warn above it
                     [${MAX_IMAGE_PIXELS}, PIL's limit]
  --backend NAME     ${BACKEND_NAMES.join(", ")} [auto]
  --explain[=source] print the kernels (or their source) [off]
  --help             this text`;

/** The seed resizes every image to this square size. */
const SEED_SIZE = 224;
/** The seed's patch size and embedding width, used when no --weights are given. */
const SEED_PATCH = 16;
const SEED_EMBEDDING = 768;
const POS_NAME = "positional_embedding.positional_embedding";

/** The parsed command line. */
interface Options {
  image?: string;
  out?: string;
  antialias?: "on" | "off";
  maxImagePixels?: number;
  weights?: string;
  input?: string;
  output?: string;
  intermediates: boolean;
  heads?: number;
  model?: VitPresetName;
  dynamicSize: boolean;
  mean?: readonly [number, number, number];
  std?: readonly [number, number, number];
  cropPct?: number;
  labels?: string;
  top: number;
  backend: BackendName;
  explain?: "kernels" | "source";
  help: boolean;
}

/** A checkpoint's variant and the graph its tensors describe. */
interface Inferred {
  variant: "seed" | "seed-generalized" | "standard";
  graph: Graph;
}

/** Input files by flag (`["--image", path]`): an output must never be one of them. */
type Inputs = readonly (readonly [string, string | undefined])[];

/** Tensor names and shapes, as a checkpoint's header gives them before any data is read. */
interface Shapes {
  readonly tensors: ReadonlyMap<string, { readonly shape: readonly number[] }>;
  readonly source?: string;
}

/** A usage mistake: reported as one line, like every other error. */
class UsageError extends Error {
  override name = "UsageError";
}

/**
 * A module of `viz/`, imported on demand by a specifier Deno's module graph cannot see: the
 * figures pull in Vega, Graphviz and resvg, which a run without --out or --report must not
 * even download. (Reading it needs --allow-read, which those flags need anyway.)
 */
function importViz<T>(path: string): Promise<T> {
  return import(new URL(path, import.meta.url).href) as Promise<T>;
}

function parseOptions(args: readonly string[]): Options {
  // `--explain` alone means the kernel list; parseArgs wants a value for string options.
  const argv = args.map((a) => (a === "--explain" ? "--explain=kernels" : a));
  const { values } = parseArgs({
    args: argv,
    options: {
      image: { type: "string" },
      out: { type: "string" },
      antialias: { type: "string" },
      "max-image-pixels": { type: "string" },
      weights: { type: "string" },
      input: { type: "string" },
      output: { type: "string" },
      intermediates: { type: "boolean", default: false },
      heads: { type: "string" },
      model: { type: "string" },
      "dynamic-size": { type: "boolean", default: false },
      mean: { type: "string" },
      std: { type: "string" },
      "crop-pct": { type: "string" },
      labels: { type: "string" },
      top: { type: "string", default: "5" },
      backend: { type: "string", default: "auto" },
      explain: { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  const explain = values.explain;
  if (explain !== undefined && explain !== "kernels" && explain !== "source") {
    throw new UsageError(`--explain takes no value or "source", got "${explain}"`);
  }
  const antialias = values.antialias;
  if (antialias !== undefined && antialias !== "on" && antialias !== "off") {
    throw new UsageError(`--antialias takes "on" or "off", got "${antialias}"`);
  }
  const pixelsFlag = values["max-image-pixels"];
  const maxImagePixels = pixelsFlag === undefined ? undefined : Number(pixelsFlag);
  if (
    maxImagePixels !== undefined && !(Number.isSafeInteger(maxImagePixels) && maxImagePixels > 0)
  ) {
    throw new UsageError(
      `--max-image-pixels takes a whole number of pixels above 0, got "${pixelsFlag}" ` +
        `(default ${MAX_IMAGE_PIXELS})`,
    );
  }
  const heads = values.heads === undefined ? undefined : Number(values.heads);
  if (heads !== undefined && !(Number.isSafeInteger(heads) && heads > 0)) {
    throw new UsageError(`--heads takes a whole number above 0, got "${values.heads}"`);
  }
  const model = values.model;
  if (model !== undefined && !Object.hasOwn(VIT_PRESETS, model)) {
    throw new UsageError(
      `--model ${model} is not a preset (${Object.keys(VIT_PRESETS).join(", ")})`,
    );
  }
  const cropPct = values["crop-pct"] === undefined ? undefined : Number(values["crop-pct"]);
  if (cropPct !== undefined && !(cropPct > 0 && Number.isFinite(cropPct))) {
    throw new UsageError(
      `--crop-pct takes a number above 0 such as 0.9, got "${values["crop-pct"]}"`,
    );
  }
  const top = Number(values.top);
  if (!(Number.isSafeInteger(top) && top > 0)) {
    throw new UsageError(`--top takes a whole number above 0, got "${values.top}"`);
  }
  return {
    mean: triple("--mean", values.mean),
    std: triple("--std", values.std),
    cropPct,
    labels: values.labels,
    top,
    heads,
    model: model as VitPresetName | undefined,
    dynamicSize: values["dynamic-size"],
    image: values.image,
    out: values.out,
    antialias,
    maxImagePixels,
    weights: values.weights,
    input: values.input,
    output: values.output,
    intermediates: values.intermediates,
    // compile() rejects unknown names with the list of backends it knows.
    backend: values.backend as BackendName,
    explain,
    help: values.help,
  };
}

/** `a,b,c` as three numbers (a per-channel mean or std), or undefined when the flag is absent. */
function triple(flag: string, text: string | undefined): [number, number, number] | undefined {
  if (text === undefined) return undefined;
  const parts = text.split(",").map((v) => Number(v.trim()));
  if (parts.length !== 3 || parts.some((v) => !Number.isFinite(v))) {
    throw new UsageError(
      `${flag} takes three numbers a,b,c such as 0.485,0.456,0.406, got "${text}"`,
    );
  }
  if (flag === "--std" && parts.some((v) => v === 0)) {
    throw new UsageError(`--std must not be 0 (it divides), got "${text}"`);
  }
  return [parts[0], parts[1], parts[2]];
}

/** A shape the way PyTorch prints it: `torch.Size([1, 197, 768])`. */
function torchSize(shape: readonly (number | string)[]): string {
  return `torch.Size([${shape.join(", ")}])`;
}

/** A deterministic smooth test image: channel 0 ramps along x, 1 along y, 2 diagonally. */
function gradientImage(height: number, width: number): TensorData {
  const data = new Float32Array(3 * height * width);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const u = x / (width - 1);
      const v = y / (height - 1);
      const at = y * width + x;
      data[at] = u;
      data[height * width + at] = v;
      data[2 * height * width + at] = (u + v) / 2;
    }
  }
  return { shape: [1, 3, height, width], data };
}

function printExplain(model: CompiledGraph, explain: Options["explain"]): void {
  if (explain === undefined) return;
  console.log(model.explain({ source: explain === "source" }));
}

/** The seed tutorial, with generated weights and image: prints what the tutorial prints. */
async function runDemo(options: Options): Promise<void> {
  const height = 224, width = 224, patch = 16;
  const graph = seedTokenizer({ height, width, patch, embedding: 768 });
  const model = await compile(graph, { backend: options.backend, seed: 0 });
  console.log(graph.summary());
  console.log();
  console.log(`Number of Patches : ${(height / patch) * (width / patch)}`);
  console.log(`Patch Size : (${patch}, ${patch})`);
  console.log(`Number of Patches per Column : ${height / patch}`);
  console.log(`Number of Patches per Row : ${width / patch}`);
  console.log();

  const image = gradientImage(height, width);
  const { output, stages } = await model.run({ image }, { stages: "all" });
  console.log(`image ${torchSize(image.shape)}`);
  for (const [name, value] of Object.entries({ ...stages, output })) {
    console.log(`${name} ${torchSize(value.shape)}`);
  }
  console.log();
  console.log(`backend: ${model.backend} (${model.reason})`);
  printExplain(model, options.explain);
  model.dispose();
}

/** `tensor`'s shape if it exists in `file` with the given rank, else undefined. */
function shapeOf(
  file: Shapes,
  name: string,
  rank: number,
): readonly number[] | undefined {
  const t = file.tensors.get(name);
  if (!t) return undefined;
  if (t.shape.length !== rank) {
    throw new WeightsError(
      `tensor "${name}" has shape [${t.shape.join(", ")}] but rank ${rank} was expected ` +
        "(check the checkpoint is a ViT tokenizer)",
      { file: file.source, tensor: name },
    );
  }
  return t.shape;
}

/** The image batch (B, C, H, W) stored under `input` in the --input file; reads only it. */
async function imageOf(file: SafetensorsReader): Promise<TensorData> {
  const image = file.tensors.get("input");
  if (!image) {
    const have = [...file.tensors.keys()].slice(0, 8).join(", ") || "none";
    throw new WeightsError(
      `no tensor named "input" (have: ${have}); save the image batch (B, C, H, W) as "input"`,
      { file: file.source, tensor: "input" },
    );
  }
  if (image.shape.length !== 4) {
    throw new WeightsError(
      `tensor "input" has shape [${image.shape.join(", ")}] but an image batch (B, C, H, W) ` +
        "was expected",
      { file: file.source, tensor: "input" },
    );
  }
  return (await file.read(["input"])).tensors.get("input") as TensorData;
}

/**
 * Reads the variant and every size from PyTorch tensor names and shapes: C, P and D from the
 * weights, H and W from the image. The full shape check is `compile()`'s weight validation.
 */
function inferConfig(weights: Shapes, image: TensorData, inputFile: string): Inferred {
  const [, channels, height, width] = image.shape;
  const seedConv = shapeOf(weights, "patch_extractor.patch_extractor.weight", 4);
  const stdConv = shapeOf(weights, "patch_embed.proj.weight", 4);
  const conv = seedConv ?? stdConv;
  if (!conv) {
    throw new WeightsError(
      'no patch conv weight: expected "patch_extractor.patch_extractor.weight" (seed) or ' +
        '"patch_embed.proj.weight" (timm) (check the --weights path)',
      { file: weights.source },
    );
  }
  const convName = seedConv ? "patch_extractor.patch_extractor.weight" : "patch_embed.proj.weight";
  const [out, inC, patch, patchW] = conv;
  if (patch !== patchW) {
    throw new WeightsError(
      `tensor "${convName}" has a ${patch}x${patchW} kernel; only square patches are supported`,
      { file: weights.source, tensor: convName },
    );
  }
  if (inC !== channels) {
    throw new WeightsError(
      `image has ${channels} channels but "${convName}" expects ${inC} ` +
        "(the weights and the input do not match)",
      { file: inputFile, tensor: "input" },
    );
  }
  if (height % patch !== 0 || width % patch !== 0) {
    throw new WeightsError(
      `image ${height}x${width} is not divisible by the patch size ${patch} (resize it first)`,
      { file: inputFile, tensor: "input" },
    );
  }
  const posName = seedConv ? "positional_embedding.positional_embedding" : "pos_embed";
  const pos = shapeOf(weights, posName, 3);
  const tokens = (height / patch) * (width / patch) + 1;
  if (pos && pos[1] !== tokens) {
    throw new WeightsError(
      `image ${height}x${width} with patch ${patch} gives ${tokens} tokens but "${posName}" ` +
        `has ${pos[1]} (use images of the size the weights were trained on)`,
      { file: inputFile, tensor: "input" },
    );
  }
  const sizes = { height, width, patch, channels };
  if (!seedConv) {
    return { variant: "standard", graph: patchEmbedding({ ...sizes, embedding: out }) };
  }
  const linear = shapeOf(weights, "token_embedding.embedding.weight", 2);
  if (!linear) {
    throw new WeightsError(
      'tensor "token_embedding.embedding.weight" is missing (the seed tokenizer needs it)',
      { file: weights.source, tensor: "token_embedding.embedding.weight" },
    );
  }
  const [embedding, linearIn] = linear;
  if (linearIn === 3 && channels === 3) {
    return { variant: "seed", graph: seedTokenizer({ ...sizes, embedding }) };
  }
  if (linearIn === channels) {
    return {
      variant: "seed-generalized",
      graph: seedTokenizer({ ...sizes, embedding, generalized: true }),
    };
  }
  throw new WeightsError(
    `tensor "token_embedding.embedding.weight" has ${linearIn} in-features but the image has ` +
      `${channels} channels (the seed's Linear needs 3-channel images)`,
    { file: weights.source, tensor: "token_embedding.embedding.weight" },
  );
}

/** Opens the --input file; its errors point at --input rather than --weights. */
async function openInput(path: string): Promise<SafetensorsReader> {
  try {
    return await openSafetensors(path);
  } catch (err) {
    if (!(err instanceof WeightsError)) throw err;
    const detail = err.message.slice(err.file === undefined ? 0 : `${err.file}: `.length);
    const options = { file: err.file, tensor: err.tensor, cause: err };
    throw new WeightsError(detail.replaceAll("--weights", "--input"), options);
  }
}

/** Loads a checkpoint and an image, runs the tokenizer and saves the output (and stages). */
async function runCli(options: Options): Promise<void> {
  const missing = (["weights", "input", "output"] as const).filter((k) => !options[k]);
  if (missing.length > 0) {
    throw new UsageError(
      `missing ${missing.map((k) => `--${k}`).join(", ")} (the tool needs --weights, --input ` +
        "and --output; run without them for the demo)",
    );
  }
  const { weights: weightsPath, input: inputPath, output: outputPath } = options as Required<
    Options
  >;
  await refuseOverwrite(outputPath, [["--weights", weightsPath], ["--input", inputPath]]);
  const checkpoint = await openSafetensors(weightsPath);
  let image: TensorData, variant: Inferred["variant"], graph: Graph, weights: Weights;
  try {
    const inputs = inputPath === weightsPath ? checkpoint : await openInput(inputPath);
    try {
      image = await imageOf(inputs);
    } finally {
      if (inputs !== checkpoint) inputs.close();
    }
    if (isTimmVit(checkpoint)) {
      const vitFile = asTimmVit(checkpoint);
      return await runVitCli(
        { ...options, weights: weightsPath, output: outputPath },
        vitFile,
        image,
      );
    }
    ({ variant, graph } = inferConfig(checkpoint, image, inputPath));
    weights = await readParams(checkpoint, graph);
  } finally {
    checkpoint.close();
  }
  const model = await compile(graph, {
    backend: options.backend,
    weights,
    weightsSource: weightsPath,
  });
  const result = await model.run(
    { image },
    { stages: options.intermediates ? "all" : [] },
  );
  const tensors = { ...result.stages, output: result.output };
  await saveSafetensors(outputPath, tensors, { variant, backend: model.backend });
  console.log(
    `${variant} tokenizer ${torchSize(image.shape)} -> ${torchSize(result.output.shape)} ` +
      `on ${model.backend}; wrote ${Object.keys(tensors).join(", ")} to ${outputPath}`,
  );
  printExplain(model, options.explain);
  model.dispose();
}

/**
 * A whole timm ViT checkpoint on the --input batch: sizes from the tensors, heads from --heads or
 * --model, `pos_embed` resampled with --dynamic-size; writes `logits` (and every stage).
 */
async function runVitCli(
  options: Options & { weights: string; output: string },
  checkpoint: SafetensorsReader,
  image: TensorData,
): Promise<void> {
  const { preset, heads } = vitHeads(options);
  const [, channels, height, width] = image.shape;
  const { config, grid } = vitConfigFromCheckpoint(checkpoint, { heads, height, width, channels });
  if (preset && (preset.dim !== config.dim || preset.depth !== config.depth)) {
    throw new UsageError(
      `--model ${options.model} has width ${preset.dim} and depth ${preset.depth} but the ` +
        `checkpoint has ${config.dim} and ${config.depth} (pick the matching --model or --heads)`,
    );
  }
  const graph = vit(config);
  const inputGrid = [height / config.patch, width / config.patch] as const;
  const resample = grid[0] !== inputGrid[0] || grid[1] !== inputGrid[1];
  if (resample && !options.dynamicSize) {
    throw new UsageError(
      `--input ${height}x${width} gives a ${inputGrid[0]}x${inputGrid[1]} patch grid but the ` +
        `checkpoint's pos_embed is ${grid[0]}x${grid[1]}: pass --dynamic-size to resample ` +
        "pos_embed as timm's dynamic_img_size=True does (nothing was written)",
    );
  }
  const read = await readParams(checkpoint, graph);
  const weights = new Map(read);
  if (resample) {
    weights.set(
      "pos_embed",
      resamplePosEmbed(read.get("pos_embed") as TensorData, grid, inputGrid),
    );
  }
  const model = await compile(graph, {
    backend: options.backend,
    weights,
    weightsSource: options.weights,
  });
  try {
    const result = await model.run({ image }, {
      stages: options.intermediates ? vitStages(config.depth) : [],
    });
    const tensors = options.intermediates ? { ...result.stages } : { logits: result.output };
    await saveSafetensors(options.output, tensors, {
      variant: "vit",
      backend: model.backend,
      config: JSON.stringify(config),
      ...(resample ? { pos_embed_grid: `${grid[0]}x${grid[1]} -> ${inputGrid.join("x")}` } : {}),
    });
    console.log(
      `vit (depth ${config.depth}, width ${config.dim}, heads ${heads}, patch ${config.patch}, ` +
        `${config.pool} pool) ${torchSize(image.shape)} -> ${torchSize(result.output.shape)} on ` +
        `${model.backend}${
          resample ? `, pos_embed ${grid.join("x")} -> ${inputGrid.join("x")}` : ""
        }; ` +
        `wrote ${Object.keys(tensors).join(", ")} to ${options.output}`,
    );
    printExplain(model, options.explain);
  } finally {
    model.dispose();
  }
}

/** The --model preset (if any) and the heads, from --heads or the preset. */
function vitHeads(options: Options): { preset?: typeof VIT_PRESETS[VitPresetName]; heads: number } {
  const preset = options.model === undefined ? undefined : VIT_PRESETS[options.model];
  const heads = options.heads ?? preset?.heads;
  if (heads === undefined) {
    throw new UsageError(
      "the checkpoint is a timm ViT, whose head count is not in its tensor shapes: pass " +
        "--heads H or --model NAME (e.g. --model vit_tiny_patch16_224)",
    );
  }
  return { preset, heads };
}

/** Reads from the checkpoint only the tensors the graph's parameters need. */
async function readParams(checkpoint: SafetensorsReader, graph: Graph): Promise<Weights> {
  return (await checkpoint.read(graph.params().map((p) => p.attrs.name))).tensors;
}

/** Whether two stats are one file (hard links and symlinks included). */
async function sameFile(
  a: Deno.FileInfo,
  b: Deno.FileInfo,
  pa: string,
  pb: string,
): Promise<boolean> {
  if (a.ino !== null && b.ino !== null) return a.dev === b.dev && a.ino === b.ino;
  // No inode numbers (some Windows file systems): fall back to the resolved paths.
  return await Deno.realPath(pa) === await Deno.realPath(pb);
}

/**
 * Refuses an --output that is one of the input files (the same path, a symlink or a hard link
 * to it), comparing device and inode: writing it would replace the input. An output that does
 * not exist yet cannot be one.
 */
async function refuseOverwrite(
  output: string,
  inputs: Inputs,
  flag = "--output",
): Promise<void> {
  let out: Deno.FileInfo;
  try {
    out = await Deno.stat(output);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return;
    if (err instanceof Deno.errors.NotCapable) {
      throw new UsageError(
        `${flag} ${output}: no read permission to check it is not an input file ` +
          "(run deno with --allow-read)",
      );
    }
    return; // Not statable for another reason: the write itself will report it.
  }
  for (const [inputFlag, path] of inputs) {
    if (path === undefined) continue;
    let info: Deno.FileInfo;
    try {
      info = await Deno.stat(path);
    } catch {
      continue; // Reading it reports the problem.
    }
    if (await sameFile(out, info, output, path)) {
      throw new UsageError(
        `${flag} ${output} is the same file as ${inputFlag} ${path}; writing it would ` +
          `replace the input (choose another ${flag} path)`,
      );
    }
  }
}

/** Refuses an --image that is not a regular file before it is opened (a FIFO would block). */
async function refuseIrregularImage(path: string): Promise<void> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch {
    return; // loadImage reports a missing or unreadable file.
  }
  const why = notRegularReason(info, { pathFlag: "--image", kind: ".png or .jpg file" });
  if (why !== undefined) throw new UsageError(`${path}: ${why}`);
}

/**
 * Throws a one-line error naming `file` unless Deno already has `name` access to `path` (a
 * query, so it never prompts).
 */
async function requirePermission(
  name: "read" | "write",
  path: string,
  file = path,
): Promise<void> {
  const { state } = await Deno.permissions.query({ name, path });
  if (state === "granted") return;
  throw new UsageError(`${file}: no ${name} permission (run deno with --allow-${name})`);
}

/** The flags missing to save figures to `dir` (they are written, then read back for the page). */
async function missingFigureFlags(dir: string): Promise<string[]> {
  const missing: string[] = [];
  for (const name of ["write", "read"] as const) {
    const { state } = await Deno.permissions.query({ name, path: dir });
    if (state !== "granted") missing.push(`--allow-${name}`);
  }
  return missing;
}

/** Rejects flag combinations that mix the image mode with the other two. */
function checkImageFlags(options: Options): void {
  if (options.input !== undefined) {
    throw new UsageError("--image and --input both give the input; pass one of them");
  }
  if (options.intermediates && options.output === undefined) {
    throw new UsageError("--intermediates needs --output O.safetensors to write the stages to");
  }
}

/** The seed checkpoint's patch size and embedding width, from its tensor shapes. */
function seedSizesOf(weights: Shapes): { patch: number; embedding: number } {
  const convName = "patch_extractor.patch_extractor.weight";
  const conv = shapeOf(weights, convName, 4);
  if (!conv) {
    const why = weights.tensors.has("patch_embed.proj.weight")
      ? "it has timm names, but --image runs the seed pipeline"
      : "check the --weights path";
    throw new WeightsError(`no tensor "${convName}" (${why})`, { file: weights.source });
  }
  const [out, inC, patch, patchW] = conv;
  if (out !== 3 || inC !== 3 || patch !== patchW) {
    throw new WeightsError(
      `tensor "${convName}" has shape [${conv.join(", ")}] but the seed pipeline needs ` +
        "[3, 3, P, P] (RGB images, square patches)",
      { file: weights.source, tensor: convName },
    );
  }
  if (SEED_SIZE % patch !== 0) {
    throw new WeightsError(
      `patch size ${patch} does not divide the ${SEED_SIZE}x${SEED_SIZE} resize`,
      { file: weights.source, tensor: convName },
    );
  }
  const linearName = "token_embedding.embedding.weight";
  const linear = shapeOf(weights, linearName, 2);
  if (!linear || linear[1] !== 3) {
    throw new WeightsError(
      linear
        ? `tensor "${linearName}" has ${linear[1]} in-features but the seed's Linear has 3`
        : `tensor "${linearName}" is missing (the seed tokenizer needs it)`,
      { file: weights.source, tensor: linearName },
    );
  }
  return { patch, embedding: linear[0] };
}

/** The --weights checkpoint, header only (read permission checked first), or undefined. */
async function openImageWeights(path: string | undefined): Promise<SafetensorsReader | undefined> {
  if (path === undefined) return undefined;
  await requirePermission("read", path);
  return await openSafetensors(path);
}

/** The one line saying which resize was used, and what newer torchvision does. */
function antialiasLine(antialias: boolean): string {
  return antialias
    ? "antialias: on (torchvision >= 0.17's default; the seed's torchvision 0.14 resized " +
      "tensors without it: --antialias off)"
    : "antialias: off (torchvision 0.14's behavior for tensors, which the seed used; " +
      "torchvision >= 0.17 defaults to on: --antialias on)";
}

/** The seed's patch counts, as its `visualize_img_to_patch` prints them. */
function printPatchCounts(size: number, patch: number): void {
  console.log(`Number of Patches : ${(size / patch) ** 2}`);
  console.log(`Patch Size : (${patch}, ${patch})`);
  console.log(`Number of Patches per Column : ${size / patch}`);
  console.log(`Number of Patches per Row : ${size / patch}`);
}

/** Prints each stage's shape torch-style, the input pixels first. */
function printStages(pixels: TensorData, result: RunResult): void {
  console.log(`pixels ${torchSize(pixels.shape)}`);
  for (const [name, value] of Object.entries({ ...result.stages, output: result.output })) {
    console.log(`${name} ${torchSize(value.shape)}`);
  }
}

/** Saves the output (and, with --intermediates, every stage) to the --output file. */
async function saveImageTensors(
  options: Options & { output: string },
  result: RunResult,
  meta: Record<string, string>,
): Promise<void> {
  const tensors = options.intermediates
    ? { ...result.stages, output: result.output }
    : { output: result.output };
  await saveSafetensors(options.output, tensors, meta);
  console.log(`wrote ${Object.keys(tensors).join(", ")} to ${options.output}`);
}

/**
 * Writes a report folder (figures and report.html) with `write`, all files or none, refusing
 * to replace an input; says in one line which flags are missing to write it, and turns a
 * file-system error into one line naming --out.
 */
async function writeReportDir(
  dir: string,
  files: readonly string[],
  inputs: Inputs,
  write: () => Promise<string[]>,
): Promise<void> {
  const missing = await missingFigureFlags(dir);
  if (missing.length > 0) {
    console.log(`figures not saved: run deno with ${missing.join(" and ")} to save them to ${dir}`);
    return;
  }
  for (const file of files) await refuseOverwrite(join(dir, file), inputs, "--out");
  let written: string[];
  try {
    written = await write();
  } catch (err) {
    const fsError = Object.values(Deno.errors).some((kind) => err instanceof kind) ||
      typeof (err as { code?: unknown }).code === "string";
    if (!fsError) throw err;
    const why = fileErrorReason(err, "write", { pathFlag: "--out", kind: "directory" });
    throw new UsageError(`--out ${dir}: ${why}; nothing was saved`);
  }
  for (const file of written) console.log(`wrote ${join(dir, file)}`);
}

/** The seed pipeline's seven figures and report.html. */
async function reportFigures(
  dir: string,
  graph: Graph,
  result: RunResult,
  weights: Weights,
  patch: number,
  title: string,
  inputs: Inputs,
  provenance: ReportProvenance,
): Promise<void> {
  // Loaded on demand: the figures pull in Vega, Graphviz and resvg, which the other modes skip.
  const { REPORT_FILES, saveReport } = await importViz<typeof import("../viz/report.ts")>(
    "../viz/report.ts",
  );
  const pos = weights.get(POS_NAME) as TensorData; // compile() checked every parameter
  const { resized: image, patches, tokens, embeddings } = result.stages;
  const drawn = { image, patches, tokens, embeddings, pos, patch, graph };
  await writeReportDir(
    dir,
    REPORT_FILES,
    inputs,
    () => saveReport(dir, drawn, { title, provenance }),
  );
}

/**
 * A timm ViT on an image file: timm's eval transform (shorter side to floor(size / crop_pct)
 * with PIL's bicubic, center crop, ToTensor, Normalize), the model, then the top classes with
 * their probabilities; `--output` also writes the preprocessed `input` and the `logits` (and,
 * with --intermediates, every stage).
 */
async function classifyImage(
  options: Options & { image: string },
  checkpoint: SafetensorsReader,
  decoded: DecodedImage,
): Promise<void> {
  if (options.antialias !== undefined) {
    throw new UsageError(
      "--antialias applies to the seed pipeline; a timm ViT checkpoint gets timm's eval " +
        "transform (PIL bicubic, which antialiases)",
    );
  }
  const { preset, heads } = vitHeads(options);
  // The model's input size: the preset's, else the square grid pos_embed was trained on.
  const patch = checkpoint.tensors.get("patch_embed.proj.weight")?.shape[2] ?? 16;
  const tokens = checkpoint.tensors.get("pos_embed")?.shape[1] ?? 197;
  const size = typeof preset?.image === "number"
    ? preset.image
    : Math.round(Math.sqrt(tokens - 1)) * patch;
  const mean = options.mean ?? [0.5, 0.5, 0.5];
  const std = options.std ?? [0.5, 0.5, 0.5];
  const cropPct = options.cropPct ?? 0.9;
  const input = timmEvalTransform(decoded, { size, cropPct, mean, std });
  const { config } = vitConfigFromCheckpoint(checkpoint, {
    heads,
    height: size,
    width: size,
    channels: 3,
  });
  const labels = options.labels !== undefined
    ? await readLabels(options.labels, config.classes)
    : config.classes === 1000
    ? await imagenetLabels()
    : undefined;
  const graph = vit(config);
  const weights = await readParams(checkpoint, graph);
  const model = await compile(graph, {
    backend: options.backend,
    weights,
    weightsSource: options.weights,
  });
  try {
    const attention = Array.from({ length: config.depth }, (_, i) => `blocks.${i}.attn`);
    const result = await model.run({ image: input }, {
      stages: [
        ...(options.intermediates ? vitStages(config.depth) : []),
        ...(options.out !== undefined ? attention : []),
      ],
    });
    console.log(
      `${options.image}: ${decoded.width}x${decoded.height}, resized to ` +
        `${Math.floor(size / cropPct)} (shorter side, PIL bicubic), center crop ${size}x${size}, ` +
        `mean ${mean.join(",")}, std ${std.join(",")}; vit (depth ${config.depth}, width ` +
        `${config.dim}, heads ${heads}) on ${model.backend}`,
    );
    const top = topK(result.output.data, options.top).map(({ index, p }) => ({
      name: labels ? labels[index] : `class ${index}`,
      p,
    }));
    for (const [rank, { name, p }] of top.entries()) {
      console.log(`${String(rank + 1).padStart(3)}. ${(p * 100).toFixed(2).padStart(6)}%  ${name}`);
    }
    if (options.output !== undefined) {
      const kept = Object.entries(result.stages).filter(([k]) => !attention.includes(k));
      const tensors: Record<string, TensorData> = options.intermediates
        ? { input, ...Object.fromEntries(kept) }
        : { input, logits: result.output };
      await saveSafetensors(options.output, tensors, {
        variant: "vit-image",
        backend: model.backend,
        image: options.image,
        transform: `resize ${Math.floor(size / cropPct)} bicubic, crop ${size}, mean ` +
          `${mean.join(",")}, std ${std.join(",")}`,
      });
      console.log(`wrote ${Object.keys(tensors).join(", ")} to ${options.output}`);
    }
    if (options.out !== undefined) {
      const preprocessing = `timm eval transform: resize the shorter side to ` +
        `${Math.floor(size / cropPct)} (PIL bicubic), center crop ${size}x${size}, ToTensor, ` +
        `Normalize(mean ${mean.join(",")}, std ${std.join(",")})`;
      await saveVitFigures(
        options.out,
        {
          title: `ViT: ${options.image}`,
          image: timmEvalCrop(decoded, { size, cropPct }),
          attention: attention.map((s) => result.stages[s]),
          grid: [size / config.patch, size / config.patch],
          top,
          graph,
          provenance: {
            weights: options.weights ?? "random init",
            backend: `${model.backend} (${model.reason})`,
            preprocessing,
            originalSize: { width: decoded.width, height: decoded.height },
            version: VERSION,
          },
        },
        [["--image", options.image], ["--weights", options.weights]],
        config.depth,
      );
    }
    printExplain(model, options.explain);
  } finally {
    model.dispose();
  }
}

/** The ViT report: input, top-k, the last block's attention per head, rollout, report.html. */
async function saveVitFigures(
  dir: string,
  inputs: VitReportInputs,
  files: Inputs,
  depth: number,
): Promise<void> {
  const { saveVitReport, vitReportFiles } = await importViz<
    typeof import("../viz/vit_report.ts")
  >("../viz/vit_report.ts");
  await writeReportDir(dir, vitReportFiles(depth), files, () => saveVitReport(dir, inputs));
}

/** The stages --intermediates writes, as the fixtures name them (not the attention maps). */
function vitStages(depth: number): string[] {
  const blocks = Array.from({ length: depth }, (_, i) => `blocks.${i}`);
  return ["tokens", "embedded", ...blocks, "features", "pooled", "logits"];
}

/**
 * ImageNet-1k's class names in the standard index order (models/imagenet_classes.txt, the list
 * pytorch/hub ships), or undefined when the file cannot be read (names then print as "class N").
 */
async function imagenetLabels(): Promise<string[] | undefined> {
  try {
    const url = new URL("../models/imagenet_classes.txt", import.meta.url);
    const names = (await (await fetch(url)).text()).split("\n").filter((l) => l !== "");
    return names.length === 1000 ? names : undefined;
  } catch {
    return undefined;
  }
}

/** Class names, one a line; their count must be the head's. */
async function readLabels(path: string, classes: number): Promise<string[]> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    const why = fileErrorReason(err, "read", { pathFlag: "--labels", kind: "text file" });
    throw new UsageError(`--labels ${path}: ${why}`);
  }
  const names = text.split(/\r?\n/).map((l) => l.trim());
  while (names.length > 0 && names[names.length - 1] === "") names.pop();
  if (names.length !== classes) {
    throw new UsageError(
      `--labels ${path} has ${names.length} lines but the head has ${classes} classes ` +
        "(one class name a line, in the head's order)",
    );
  }
  return names;
}

/** The seed's pipeline on an image file: prints every stage, saves figures and tensors. */
async function runImage(options: Options & { image: string }): Promise<void> {
  checkImageFlags(options);
  const { image: imagePath, out, output } = options;
  await requirePermission("read", imagePath);
  // The safetensors file is written beside itself first, then renamed: its folder needs access.
  const inputs: Inputs = [["--image", imagePath], ["--weights", options.weights]];
  if (output !== undefined) {
    await requirePermission("write", dirname(output), output);
    await refuseOverwrite(output, inputs);
  }
  await refuseIrregularImage(imagePath);
  const decoded = await loadImage(imagePath, { maxPixels: options.maxImagePixels });
  const pixels = imageToTensorData(decoded);
  const checkpoint = await openImageWeights(options.weights);
  if (checkpoint && isTimmVit(checkpoint)) {
    try {
      return await classifyImage(options, asTimmVit(checkpoint), decoded);
    } finally {
      checkpoint.close();
    }
  }
  const vitOnly = [
    ["--mean", options.mean],
    ["--std", options.std],
    ["--crop-pct", options.cropPct],
    ["--labels", options.labels],
    ["--heads", options.heads],
    ["--model", options.model],
  ].filter(([, v]) => v !== undefined).map(([k]) => k);
  if (vitOnly.length > 0) {
    checkpoint?.close();
    throw new UsageError(
      `${vitOnly.join(", ")} apply to a timm ViT checkpoint (--weights W with blocks.{i}.*); ` +
        "without one --image runs the seed tokenizer pipeline",
    );
  }
  const antialias = options.antialias === "on";
  let graph: Graph, weights: Weights, patch: number;
  try {
    const sizes = checkpoint
      ? seedSizesOf(checkpoint)
      : { patch: SEED_PATCH, embedding: SEED_EMBEDDING };
    patch = sizes.patch;
    graph = seedPipeline({
      imageHeight: decoded.height,
      imageWidth: decoded.width,
      size: SEED_SIZE,
      patch,
      embedding: sizes.embedding,
      antialias,
    });
    weights = checkpoint ? await readParams(checkpoint, graph) : initParams(graph, 0);
  } finally {
    checkpoint?.close();
  }
  const model = await compile(graph, {
    backend: options.backend,
    weights,
    weightsSource: options.weights ?? "PyTorch-default init (seed 0)",
  });
  try {
    printPatchCounts(SEED_SIZE, patch);
    console.log(antialiasLine(antialias));
    console.log();
    const result = await model.run({ pixels }, { stages: "all" });
    printStages(pixels, result);
    console.log();
    console.log(`backend: ${model.backend} (${model.reason})`);
    printExplain(model, options.explain);
    if (output !== undefined) {
      const meta = { variant: "seed-pipeline", backend: model.backend, antialias: `${antialias}` };
      await saveImageTensors({ ...options, output }, result, meta);
    }
    if (out !== undefined) {
      const title = `ViT tokenizer: ${imagePath}`;
      const provenance = {
        weights: options.weights ?? "PyTorch-default init (seed 0)",
        backend: `${model.backend} (${model.reason})`,
        preprocessing: `ToTensor, Resize((${SEED_SIZE}, ${SEED_SIZE})) bilinear, antialias ` +
          (antialias ? "on" : "off"),
        originalSize: { width: decoded.width, height: decoded.height },
        version: VERSION,
      };
      await reportFigures(out, graph, result, weights, patch, title, inputs, provenance);
    }
  } finally {
    model.dispose();
  }
}

async function main(args: readonly string[]): Promise<number> {
  try {
    const options = parseOptions(args);
    if (options.help) {
      console.log(USAGE);
      return 0;
    }
    if (options.image !== undefined) {
      await runImage({ ...options, image: options.image });
      return 0;
    }
    if (
      options.out !== undefined || options.antialias !== undefined ||
      options.maxImagePixels !== undefined
    ) {
      throw new UsageError("--out, --antialias and --max-image-pixels need --image PATH");
    }
    const cli = options.weights !== undefined || options.input !== undefined ||
      options.output !== undefined || options.intermediates;
    await (cli ? runCli(options) : runDemo(options));
    return 0;
  } catch (err) {
    // WeightsError, ShapeError, InputError, UsageError and compile() errors all carry a
    // one-line message that names the problem and the fix; never show a stack trace.
    const message = err instanceof Error ? err.message : String(err);
    console.error(`error: ${message.replace(/\s*\n\s*/g, " ")}`);
    return 1;
  }
}

if (import.meta.main) {
  const code = await main(Deno.args);
  if (code !== 0) Deno.exit(code);
}
