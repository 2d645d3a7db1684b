/**
 * Tessera: a typed-graph DSL and compiler for tensor programs, starting with the Vision
 * Transformer tokenizer. TypeScript computes every shape, so a wrong shape is a compile error;
 * the same rules run at run time for JS callers and graphs built from weights files.
 *
 * @example
 * ```ts
 * import { compile, graph } from "./mod.ts";
 *
 * const tokenizer = graph("vit-tokenizer", (g) => {
 *   const image = g.input("image", ["B", 3, 32, 32]);
 *   const patches = g.conv2d(image, { out: 3, kernel: 8, stride: 8, name: "patch_extractor.patch_extractor" });
 *   const tokens = g.reshape(g.flatten(patches, 2, 3), ["B", 16, 3]); // ok: 3*16 == 16*3
 *   const emb = g.linear(tokens, { in: 3, out: 8, name: "token_embedding.embedding" });
 *   const withCls = g.classToken(emb, { name: "class_token_prepender.class_token_vector" });
 *   return g.addParam(withCls, { name: "positional_embedding.positional_embedding", shape: [1, 17, 8] });
 * }); // Graph<["B", 17, 8]>
 *
 * const model = await compile(tokenizer, { backend: "reference", seed: 0 });
 * const image = { shape: [1, 3, 32, 32], data: new Float32Array(3 * 32 * 32) };
 * const { output } = await model.run({ image });
 * console.log(output.shape); // [1, 17, 8]
 * ```
 * @module
 */

export * from "./api.ts";

import { provideGpuJs } from "./codegen/backends/gpujs.ts";
// A literal specifier, so that `deno bundle mod.ts` inlines gpu.js into its one file and Deno
// caches it for that; it is still loaded only when a gpu.js backend prepares a graph.
provideGpuJs(() => import("npm:gpu.js@2.24.1"));
