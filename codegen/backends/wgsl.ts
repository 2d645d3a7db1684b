/**
 * The `wgsl` backend: Tessera's own WebGPU path, without gpu.js. Every lowered kernel becomes a
 * WGSL compute pipeline; weights and folded constants are uploaded once at prepare time and stay
 * resident; a run is one input upload, one command submission with every dispatch, and one
 * readback of the results through a staging buffer.
 * @module
 */

import { numel, type TensorData } from "../../graph/tensor_data.ts";
import {
  type Backend,
  BackendRejection,
  checkBufferLimit,
  type Executable,
  formatExplain,
  NonFiniteInput,
} from "./backend.ts";
import {
  type AdapterProvider,
  type GpuBuffer,
  type GpuEncoder,
  probeWebGpu,
  webgpuDevice,
} from "./webgpu_device.ts";
import {
  batchedWeights,
  type Contraction,
  findContraction,
  PRODUCT_BUFFER,
  wholeEpilogue,
} from "../passes/contraction.ts";
import type { Kernel } from "../ir/program.ts";
import { lowerProgram } from "../passes/pipeline.ts";
import { operandTables, packWeights } from "../render/js/contraction.ts";
import {
  renderWgslFiniteCheck,
  renderWgslKernel,
  WORKGROUP_SIZE,
} from "../render/wgsl/loop_nest.ts";
import { GPU_GEMM_TILE, type GpuGemmTile, renderWgslGemm } from "../render/wgsl/gemm.ts";
import { renderWgslRowReduction, ROW_THREADS } from "../render/wgsl/reduce.ts";
import {
  NARROW_MAX_COLUMNS,
  NARROW_THREADS_PER_ROW,
  renderWgslNarrow,
} from "../render/wgsl/narrow.ts";

/** Products at least this wide run as the tiled GEMM. */
const MIN_GEMM_COLUMNS = 32;
/**
 * Narrower products with a reduction at least this long run as the split-reduction shader (the
 * seed's 3-channel conv); shorter ones stay one thread per output.
 */
const MIN_NARROW_DEPTH = 256;
/** Column padding of a narrow product: one weight panel of whole `vec4`s. */
const NARROW_ALIGN = 4;

// WebGPU usage flags (numeric, so no DOM lib is needed).
const STORAGE = 0x80;
const COPY_SRC = 0x04;
const COPY_DST = 0x08;
const MAP_READ = 0x01;
const MAP_MODE_READ = 0x1;
const MAX_GROUPS_PER_DIM = 65535;
const FLAG_CLEAR = new Float32Array(1);
/** Elements read back per `getMappedRange` call (1 MiB). */
const READBACK_CHUNK = 2 ** 18;

/**
 * The direct WebGPU backend.
 *
 * @example
 * ```ts
 * import { wgslBackend } from "./wgsl.ts";
 * const backend = wgslBackend();
 * console.log(backend.name, await backend.unavailable());
 * ```
 */
export function wgslBackend(
  options: { adapter?: AdapterProvider; gemmTile?: GpuGemmTile } = {},
): Backend {
  const tile = options.gemmTile ?? GPU_GEMM_TILE;
  return {
    name: "wgsl",
    async unavailable() {
      const report = await (options.adapter ?? probeWebGpu)().catch(() => null);
      return report ? null : "navigator.gpu.requestAdapter() returned null (no WebGPU adapter)";
    },
    async prepare(graph, weights, want): Promise<Executable> {
      const program = lowerProgram(graph, weights, want, { gpu: true });
      const dev = await webgpuDevice();
      const limit = Math.min(dev.limits.maxStorageBufferBindingSize, dev.limits.maxBufferSize);
      checkBufferLimit("wgsl", program, limit);
      // Resident buffers: constants written once; inputs and results reused across runs;
      // intermediates share the buffer plan's slots.
      const bytesOf = (name: string): number =>
        Math.max(4, numel(program.buffers.get(name)?.shape ?? []) * 4);
      const slotBytes: number[] = [];
      for (const [name, slot] of program.slots) {
        slotBytes[slot] = Math.max(slotBytes[slot] ?? 0, bytesOf(name));
      }
      const create = (size: number): GpuBuffer =>
        dev.createBuffer({ size, usage: STORAGE | COPY_DST | COPY_SRC });
      const slotBuffers = slotBytes.map(create);
      const buffers = new Map<string, GpuBuffer>();
      for (const b of program.buffers.values()) {
        const slot = program.slots.get(b.name);
        const buffer = slot === undefined ? create(bytesOf(b.name)) : slotBuffers[slot];
        if (b.data) dev.queue.writeBuffer(buffer, 0, b.data);
        buffers.set(b.name, buffer);
      }
      const resultOffsets: number[] = [];
      let staged = 0;
      for (const name of program.results) {
        resultOffsets.push(staged);
        staged += Math.ceil(numel(program.buffers.get(name)?.shape ?? []) / 64) * 256;
      }
      // The finite check's flag sits after the results; a readback looks at it before copying any.
      const flagOffset = staged;
      const staging = dev.createBuffer({ size: staged + 8, usage: MAP_READ | COPY_DST });
      const flag = create(4);
      // Buffers only the matrix multiplies use: packed weights, offset tables, products.
      const owned: GpuBuffer[] = [];
      // How a kernel's matrix multiply runs, if it has one worth a shader of its own.
      const productOf = (k: Kernel): { c: Contraction; narrow: boolean } | undefined => {
        const wide = findContraction(k, program, tile.bn);
        if (!wide) return undefined;
        const narrow = wide.n < MIN_GEMM_COLUMNS;
        // The split-reduction shader reads compile-time weights only.
        if (narrow && wide.runtimeWeights) return undefined;
        if (narrow && (wide.n > NARROW_MAX_COLUMNS || wide.k < MIN_NARROW_DEPTH)) return undefined;
        const c = narrow ? findContraction(k, program, NARROW_ALIGN) as Contraction : wide;
        const bytes = c.m * c.nPadded * 4;
        if (bytes > limit) {
          throw new BackendRejection(
            "wgsl",
            `the product of kernel ${k.index} needs ${bytes} bytes but the device allows ${limit} ` +
              `(maxStorageBufferBindingSize); use a smaller batch`,
            true,
          );
        }
        return { c, narrow };
      };
      type Groups = [number, number] | [number, number, number];
      const launches: { pipeline: unknown; bind: unknown; groups: Groups }[] = [];
      const described: { line: string; sources: string[] }[] = [];
      const kernelName = (k: Kernel): string => `kernel ${k.index} (${k.ops.join(", ")})`;
      const pipelineFor = async (what: string, code: string) => {
        const module = dev.createShaderModule({ code });
        const info = await module.getCompilationInfo();
        const errors = info.messages.filter((m) => m.type === "error");
        if (errors.length) {
          throw new BackendRejection(
            "wgsl",
            `${what} does not compile: ${errors[0].message}`,
          );
        }
        return dev.createComputePipeline({
          layout: "auto",
          compute: { module, entryPoint: "main" },
        });
      };
      const launch = (
        pipeline: { getBindGroupLayout(i: number): unknown },
        bound: GpuBuffer[],
        groups: Groups,
      ): void => {
        const bind = dev.createBindGroup({
          layout: pipeline.getBindGroupLayout(0),
          entries: bound.map((buffer, i) => ({ binding: i, resource: { buffer } })),
        });
        launches.push({ pipeline, bind, groups });
      };
      const spread = (threads: number, size: number): [number, number] => {
        const groups = Math.ceil(threads / size);
        const rows = Math.ceil(groups / MAX_GROUPS_PER_DIM);
        return [Math.ceil(groups / rows), rows];
      };
      const elementwise = async (k: Kernel, out: GpuBuffer, product?: GpuBuffer) => {
        const shader = renderWgslRowReduction(k) ?? renderWgslKernel(k);
        const pipeline = await pipelineFor(kernelName(k), shader.source);
        const bound = shader.reads.map((name) =>
          name === PRODUCT_BUFFER ? product as GpuBuffer : buffers.get(name) as GpuBuffer
        );
        const groups = spread(shader.threads, shader.workgroupSize);
        launch(pipeline, [...bound, out], groups);
        return { shader, groups };
      };
      for (const k of program.kernels) {
        const found = productOf(k);
        const out = buffers.get(k.out) as GpuBuffer;
        if (!found) {
          const { shader, groups } = await elementwise(k, out);
          described.push({
            line: `launch ${shader.threads} threads (${
              groups.join(" x ")
            } workgroups of ${shader.workgroupSize}${
              shader.workgroupSize === ROW_THREADS ? ", one per row" : ""
            })`,
            sources: [shader.source],
          });
          continue;
        }
        const { c, narrow } = found;
        const activation = program.buffers.get(c.operand.buffer);
        const tables = operandTables(c, numel(activation?.shape ?? []), 1, 1);
        if (!tables) {
          throw new BackendRejection(
            "wgsl",
            `kernel ${k.index}: no row of its product is in bounds`,
          );
        }
        const ints = (values: Int32Array): GpuBuffer => {
          const buffer = create(Math.max(4, values.byteLength));
          dev.queue.writeBuffer(buffer, 0, new Float32Array(values.map((v) => v / 4).buffer));
          return buffer;
        };
        const weightsBuffer = create(c.batches * c.k * c.nPadded * 4);
        let packLine = "";
        if (c.runtimeWeights) {
          // B is an activation: a loop-nest shader packs it per batch index, every run.
          const packing = await elementwise(batchedWeights(c), weightsBuffer);
          packLine = `, B packed per run from ${c.weights.reads.join(", ")} (${c.batches} ` +
            `batch${c.batches === 1 ? "" : "es"}, ${packing.shader.threads} threads)`;
        } else {
          const packed = new Float32Array(c.k * c.nPadded);
          packWeights(c, program, packed, 0);
          dev.queue.writeBuffer(weightsBuffer, 0, packed);
        }
        const product = create(c.m * c.nPadded * 4);
        owned.push(weightsBuffer, product);
        const rowsBuffer = ints(tables.rowOffsets);
        const runsBuffer = ints(tables.kOffsets);
        owned.push(rowsBuffer, runsBuffer);
        const shader = narrow ? renderWgslNarrow(c) : renderWgslGemm(c, tile);
        launch(
          await pipelineFor(kernelName(k), shader.source),
          [
            buffers.get(c.operand.buffer) as GpuBuffer,
            rowsBuffer,
            runsBuffer,
            weightsBuffer,
            product,
          ],
          shader.groups,
        );
        const epilogue = await elementwise(wholeEpilogue(c), out, product);
        const { bm, bn, tm, tn } = tile;
        const how = narrow
          ? `a split-reduction shader (${NARROW_THREADS_PER_ROW} threads a row, ` +
            `${WORKGROUP_SIZE / NARROW_THREADS_PER_ROW} rows a workgroup`
          : `a tiled WGSL GEMM (${bm}x${bn} blocks, ${tm}x${tn} outputs a thread`;
        described.push({
          line: `matrix multiply ${c.m}x${c.k} by ${c.k}x${c.n} as ${how}, ` +
            `${shader.groups.join(" x ")} workgroups${packLine}), then the epilogue ` +
            `(${epilogue.shader.threads} threads)`,
          sources: [shader.source, epilogue.shader.source],
        });
      }
      const inputs = [...program.buffers.values()].filter((b) => b.kind === "input");
      const checks: { pipeline: unknown; bind: unknown; groups: number }[] = [];
      for (const b of inputs) {
        const check = renderWgslFiniteCheck(numel(b.shape));
        const pipeline = await pipelineFor(`the finite check of ${b.source}`, check.source);
        const bind = dev.createBindGroup({
          layout: pipeline.getBindGroupLayout(0),
          entries: [buffers.get(b.name) as GpuBuffer, flag].map((buffer, i) => ({
            binding: i,
            resource: { buffer },
          })),
        });
        checks.push({ pipeline, bind, groups: check.groups });
      }
      let busy: Promise<unknown> = Promise.resolve();
      const upload = (values: Readonly<Record<string, TensorData>>): void => {
        for (const b of inputs) {
          const buffer = buffers.get(b.name) as GpuBuffer;
          dev.queue.writeBuffer(buffer, 0, values[b.source as string].data);
        }
      };
      // Every dispatch of one run, into an encoder.
      const record = (encoder: GpuEncoder): void => {
        const pass = encoder.beginComputePass();
        for (const l of launches) {
          pass.setPipeline(l.pipeline);
          pass.setBindGroup(0, l.bind);
          pass.dispatchWorkgroups(l.groups[0], l.groups[1], l.groups[2] ?? 1);
        }
        pass.end();
      };
      // Resident runs are recorded into one pending encoder and submitted together, so a burst
      // of runs pays one submission.
      let pending: GpuEncoder | undefined;
      const flush = (): void => {
        if (pending) dev.queue.submit([pending.finish()]);
        pending = undefined;
      };
      // One submission: (for host results) the input check, every dispatch, then the copies to
      // the staging buffer.
      const submit = (readback: boolean): void => {
        flush();
        const encoder = dev.createCommandEncoder();
        if (readback) {
          dev.queue.writeBuffer(flag, 0, FLAG_CLEAR);
          const pass = encoder.beginComputePass();
          for (const c of checks) {
            pass.setPipeline(c.pipeline);
            pass.setBindGroup(0, c.bind);
            pass.dispatchWorkgroups(c.groups);
          }
          pass.end();
        }
        record(encoder);
        if (readback) {
          encoder.copyBufferToBuffer(flag, 0, staging, flagOffset, 4);
          program.results.forEach((name, i) => {
            const bytes = numel(program.buffers.get(name)?.shape ?? []) * 4;
            const source = buffers.get(name) as GpuBuffer;
            encoder.copyBufferToBuffer(source, 0, staging, resultOffsets[i], bytes);
          });
        }
        dev.queue.submit([encoder.finish()]);
      };
      const readStaging = async (
        into?: readonly (Float32Array | undefined)[],
      ): Promise<TensorData[]> => {
        await staging.mapAsync(MAP_MODE_READ);
        try {
          if (new Uint32Array(staging.getMappedRange(flagOffset, 4))[0] !== 0) {
            throw new NonFiniteInput();
          }
          return program.results.map((name, i) => {
            const n = numel(program.buffers.get(name)?.shape ?? []);
            const data = into?.[i] ?? new Float32Array(n);
            // Deno copies a read mapping into a fresh allocation per getMappedRange call; small
            // ranges touch far fewer new pages (154 MB on the H100: 48-61 ms vs 108-127 whole).
            for (let at = 0; at < n; at += READBACK_CHUNK) {
              const count = Math.min(READBACK_CHUNK, n - at);
              const range = staging.getMappedRange(resultOffsets[i] + at * 4, count * 4);
              data.set(new Float32Array(range), at);
            }
            return { shape: program.buffers.get(name)?.shape as number[], data };
          });
        } finally {
          staging.unmap();
        }
      };
      const runOnce = (
        values: Readonly<Record<string, TensorData>>,
        into?: readonly (Float32Array | undefined)[],
      ): Promise<TensorData[]> => {
        upload(values);
        submit(true);
        return readStaging(into);
      };
      return {
        checksFinite: true,
        run(values, into) {
          // Runs share the staging buffer, so they go one at a time.
          const result = busy.then(() => runOnce(values, into));
          busy = result.catch(() => {});
          return result;
        },
        resident: {
          upload: (values) => {
            flush();
            upload(values);
          },
          run: () => record(pending ??= dev.createCommandEncoder()),
          finish: () => {
            flush();
            return dev.queue.onSubmittedWorkDone();
          },
          read: (into) => {
            submit(true);
            return readStaging(into);
          },
        },
        explain(opts = {}) {
          const sources = opts.source
            ? described.flatMap((d, i) =>
              d.sources.map((source, j) =>
                `--- kernel ${i} source${d.sources.length > 1 ? ` ${j + 1}` : ""} ---\n${source}`
              )
            )
            : [];
          return formatExplain({
            graph: graph.name,
            backend: "wgsl",
            program,
            how: (_, i) => `${described[i].line}; backend wgsl`,
            sources,
          });
        },
        dispose() {
          for (const b of new Set([...buffers.values(), ...owned, flag])) b.destroy();
          staging.destroy();
        },
      };
    },
  };
}
