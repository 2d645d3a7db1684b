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
 * @module
 */

import { parseArgs } from "node:util";
import {
  type BackendName,
  compile,
  type CompiledGraph,
  type Graph,
  loadSafetensors,
  patchEmbedding,
  type SafetensorsFile,
  saveSafetensors,
  seedTokenizer,
  type TensorData,
  WeightsError,
} from "../mod.ts";

const USAGE = `usage:
  deno run examples/vit.ts [--backend NAME] [--explain[=source]]
  deno run -A examples/vit.ts --weights W.safetensors --input I.safetensors --output O.safetensors
      [--intermediates] [--backend NAME] [--explain[=source]]`;

/** The parsed command line. */
interface Options {
  weights?: string;
  input?: string;
  output?: string;
  intermediates: boolean;
  backend: BackendName;
  explain?: "kernels" | "source";
  help: boolean;
}

/** A checkpoint's variant and the graph its tensors describe. */
interface Inferred {
  variant: "seed" | "seed-generalized" | "standard";
  graph: Graph;
}

/** A usage mistake: reported as one line, like every other error. */
class UsageError extends Error {
  override name = "UsageError";
}

function parseOptions(args: readonly string[]): Options {
  // `--explain` alone means the kernel list; parseArgs wants a value for string options.
  const argv = args.map((a) => (a === "--explain" ? "--explain=kernels" : a));
  const { values } = parseArgs({
    args: argv,
    options: {
      weights: { type: "string" },
      input: { type: "string" },
      output: { type: "string" },
      intermediates: { type: "boolean", default: false },
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
  return {
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
  file: SafetensorsFile,
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

/** The image batch (B, C, H, W) stored under `input` in the --input file. */
function imageOf(file: SafetensorsFile): TensorData {
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
  return image;
}

/**
 * Reads the variant and every size from PyTorch tensor names and shapes: C, P and D from the
 * weights, H and W from the image. The full shape check is `compile()`'s weight validation.
 */
function inferConfig(weights: SafetensorsFile, image: TensorData, inputFile: string): Inferred {
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

/** Loads the --input file; its load errors point at --input rather than --weights. */
async function loadInput(path: string): Promise<SafetensorsFile> {
  try {
    return await loadSafetensors(path);
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
  const weights = await loadSafetensors(weightsPath);
  const inputs = inputPath === weightsPath ? weights : await loadInput(inputPath);
  const image = imageOf(inputs);
  const { variant, graph } = inferConfig(weights, image, inputPath);
  const model = await compile(graph, {
    backend: options.backend,
    weights: weights.tensors,
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

async function main(args: readonly string[]): Promise<number> {
  try {
    const options = parseOptions(args);
    if (options.help) {
      console.log(USAGE);
      return 0;
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
