/**
 * Tessera's public API, as `mod.ts` exports it, minus the one line that tells a bundler about
 * gpu.js. Importing this file instead of `mod.ts` keeps gpu.js (with its native `gl` build and
 * Dawn binaries) out of Deno's module graph entirely, so nothing of it is downloaded unless a
 * gpu.js backend (`cpu`, `webasm`, `webgpu`) is chosen; the command line does this.
 *
 * @example
 * ```ts
 * import { compile, seedTokenizer } from "./api.ts";
 * const model = await compile(seedTokenizer(), { backend: "js", seed: 0 });
 * model.backend; // "js"
 * ```
 * @module
 */

export { VERSION } from "./version.ts";
export { graph, GraphBuilder, Tensor } from "./graph/builder.ts";
export type {
  AddParamOptions,
  ExpandCheck,
  InlineOptions,
  KeepDim,
  PrependCheck,
  PrependShape,
} from "./graph/builder.ts";
export { block } from "./graph/block.ts";
export type {
  Block,
  BlockBinding,
  BlockCheck,
  BlockOptions,
  BlockSettings,
  BlockShape,
  BlockSignature,
  BlockSizes,
} from "./graph/block.ts";
export {
  addConst,
  addDims,
  dimNames,
  evaluateDim,
  floorDivDim,
  mulDims,
  productOf,
  sameDim,
} from "./graph/dim_expr.ts";
export type { AddConst, AddDims, FloorDivDim } from "./graph/dim_expr_types.ts";
export { Graph } from "./graph/ir.ts";
export type { AnyNode, AttrsOf, Node, OpKind, ParamInit } from "./graph/ir.ts";
export { bindShape, formatShape, ShapeError } from "./graph/shape.ts";
export type { Dim, Shape } from "./graph/shape.ts";
// The type-level shape rules: what the graph builder's signatures are written in (their
// operands' checks and result shapes). The digit arithmetic behind them stays internal.
export type {
  Checked,
  ClassTokenCheck,
  DimsAgree,
  DimsCheck,
  DimStr,
  DropAxis,
  DynamicRank,
  FirstError,
  InitDims,
  IsDynamic,
  LastDim,
  NonInteger,
  NormAxis,
  ParamDimOk,
  SetAxis,
  ShapeErrorType,
  ShapeStr,
  TDim,
  TShape,
  WidenUnionDims,
} from "./graph/shape_types.ts";
export type {
  ChannelCheck,
  Conv2dCheck,
  Conv2dOptions,
  Conv2dShape,
  ConvDim,
} from "./ops/conv2d.ts";
export type { FlattenShape } from "./ops/flatten.ts";
export type { ReshapeCheck, ReshapeRule, ReshapeShape } from "./ops/reshape.ts";
export { normalizePerm } from "./ops/permute.ts";
export type { PermuteShape, TransposeShape } from "./ops/permute.ts";
export type { LinearCheck, LinearOptions, LinearShape } from "./ops/linear.ts";
export type {
  ConcatAxisCheck,
  ConcatCheck,
  ConcatOperandCheck,
  ConcatShape,
} from "./ops/concat.ts";
export { broadcastIndex, broadcastShapes } from "./ops/broadcast.ts";
export type { BroadcastCheck, BroadcastShape } from "./ops/broadcast.ts";
export type { ToTensorShape } from "./ops/to_tensor.ts";
export type { ResizeShape, ResizeTaps } from "./ops/resize.ts";
export type { BinaryCheck, BinaryShape } from "./ops/binary.ts";
export type { LayerNormCheck, LayerNormOptions } from "./ops/layer_norm.ts";
export type { SoftmaxCheck } from "./ops/softmax.ts";
export type { GeluApproximate, GeluCheck, GeluOptions } from "./ops/gelu.ts";
export type { MatmulCheck, MatmulShape } from "./ops/matmul.ts";
export type { SelectShape } from "./ops/select.ts";
export type { SliceShape } from "./ops/slice.ts";
export type { MeanOptions, MeanShape } from "./ops/mean.ts";
export { resizeTaps } from "./ops/resize.ts";
export { OPS } from "./ops/registry.ts";
export type { AttrsOfOp, ComputeKind } from "./ops/registry.ts";
export type { OpDef } from "./ops/op.ts";
export { numel, stridesOf } from "./graph/tensor_data.ts";
export type { TensorData } from "./graph/tensor_data.ts";
export { initParams, validateWeights } from "./graph/params.ts";
export type { Weights } from "./graph/params.ts";
export { TorchGenerator } from "./graph/random.ts";
export { specialize } from "./graph/specialize.ts";
export { interpret } from "./codegen/backends/interpreter.ts";
export {
  ArgumentError,
  BACKEND_NAMES,
  batchAxisSymbol,
  compile,
  InputError,
} from "./codegen/compile.ts";
export { probeWebGpu } from "./codegen/backends/webgpu_device.ts";
export { BackendRejection } from "./codegen/backends/backend.ts";
export { GPU_GEMM_TILE } from "./codegen/render/wgsl/gemm.ts";
export type { GpuGemmTile } from "./codegen/render/wgsl/gemm.ts";
export type { GpuJsMode } from "./codegen/backends/gpujs.ts";
export type { AdapterProvider, AdapterReport } from "./codegen/backends/webgpu_device.ts";
export type {
  BackendName,
  CompiledGraph,
  CompileOptions,
  ResidentSession,
  RunOptions,
  RunResult,
} from "./codegen/compile.ts";
export {
  encodeSafetensors,
  loadSafetensors,
  openSafetensors,
  parseSafetensors,
  requireTensor,
  saveSafetensors,
  WeightsError,
} from "./io/safetensors.ts";
export type {
  LoadSafetensorsOptions,
  SafetensorsFile,
  SafetensorsReader,
  SafetensorsSource,
  SafetensorsTensorInfo,
} from "./io/safetensors.ts";
export {
  decodeImage,
  encodePng,
  ImageError,
  imageFromRgba,
  imageToTensorData,
  loadImage,
  MAX_IMAGE_FILE_BYTES,
  MAX_IMAGE_PIXELS,
  saveImage,
} from "./io/image.ts";
export type * from "./io/image.ts";
export { imageFromPixels } from "./io/pixels.ts";
export type * from "./io/pixels.ts";
export {
  addSeedTokenizer,
  patchEmbedding,
  seedPipeline,
  seedTokenizer,
} from "./models/vit_tokenizer.ts";
export type {
  DivisibleCheck,
  NumPatches,
  PatchEmbeddingConfig,
  PipelineSizes,
  SeedChannelCheck,
  SeedPipelineConfig,
  SeedTokenizerConfig,
  TokenizerShape,
} from "./models/vit_tokenizer.ts";
export { encoderBlock, vitEncoder } from "./models/vit_encoder.ts";
export { resolveVitConfig, vit, VIT_PRESETS } from "./models/vit.ts";
export { topK } from "./models/top_k.ts";
export type {
  ResolvedVitConfig,
  VitCheck,
  VitConfig,
  VitPresetName,
  VitShape,
} from "./models/vit.ts";
export {
  asTimmVit,
  isTimmVit,
  resamplePosEmbed,
  vitConfigFromCheckpoint,
} from "./models/vit_checkpoint.ts";
export type { TensorShapes } from "./models/vit_checkpoint.ts";
export { resampleBicubicAA, resizeBicubicPIL } from "./io/resample.ts";
export type { ResampleBicubicAAOptions, TorchAAVersion } from "./io/resample.ts";
export { IMAGENET_MEAN, IMAGENET_STD, timmEvalTransform } from "./io/timm_transform.ts";
export type { TimmEvalOptions, TimmTensor, TransformImage } from "./io/timm_transform.ts";
export type {
  EncoderBlockSignature,
  EncoderShape,
  HeadsCheck,
  VitEncoderConfig,
} from "./models/vit_encoder.ts";
