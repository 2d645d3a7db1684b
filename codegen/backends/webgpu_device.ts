/**
 * The one WebGPU device module of the backends: the adapter probe `auto` uses, the process's
 * device, and the slice of the WebGPU API Tessera calls (typed here, so no DOM lib is needed).
 * @module
 */

/**
 * What a WebGPU adapter reported; `auto` uses it to decide whether the GPU is real.
 *
 * @example
 * ```ts
 * import type { AdapterReport } from "./webgpu_device.ts";
 * const r: AdapterReport = {
 *   description: "llvmpipe", isFallbackAdapter: true, maxStorageBufferBindingSize: 134217728,
 * };
 * ```
 */
export interface AdapterReport {
  /** Vendor, architecture and device, as far as the adapter tells. */
  readonly description: string;
  /** True for software adapters such as llvmpipe. */
  readonly isFallbackAdapter: boolean;
  /** The largest storage buffer a kernel may bind, in bytes. */
  readonly maxStorageBufferBindingSize: number;
}

/**
 * How the webgpu backend finds its adapter. Tests replace it to fake a missing adapter.
 *
 * @example
 * ```ts
 * import type { AdapterProvider } from "./webgpu_device.ts";
 * const none: AdapterProvider = () => Promise.resolve(null);
 * ```
 */
export type AdapterProvider = () => Promise<AdapterReport | null>;

/**
 * Asks Deno's `navigator.gpu` for an adapter and reports it, or `null` when there is none.
 *
 * @example
 * ```ts
 * import { probeWebGpu } from "./webgpu_device.ts";
 * const report = await probeWebGpu();
 * console.log(report?.description ?? "no adapter");
 * ```
 */
export async function probeWebGpu(): Promise<AdapterReport | null> {
  const gpu = navigatorGpu();
  if (!gpu) return null;
  const adapter = await gpu.requestAdapter();
  if (!adapter) return null;
  const info = adapter.info ?? {};
  const description = [info.vendor, info.architecture, info.device, info.description]
    .filter((s) => s)
    .join(" ") || "unknown adapter";
  return {
    description,
    isFallbackAdapter: Boolean(adapter.isFallbackAdapter ?? info.isFallbackAdapter),
    maxStorageBufferBindingSize: Math.min(
      adapter.limits.maxStorageBufferBindingSize,
      adapter.limits.maxBufferSize,
    ),
  };
}

// The slice of WebGPU the backends use, typed here so no DOM lib is needed.
/** A WebGPU buffer. */
export interface GpuBuffer {
  readonly size: number;
  mapAsync(mode: number): Promise<void>;
  getMappedRange(offset?: number, size?: number): ArrayBuffer;
  unmap(): void;
  destroy(): void;
}
export interface GpuPass {
  setPipeline(p: unknown): void;
  setBindGroup(i: number, g: unknown): void;
  dispatchWorkgroups(x: number, y?: number, z?: number): void;
  end(): void;
}
export interface GpuEncoder {
  beginComputePass(): GpuPass;
  copyBufferToBuffer(a: GpuBuffer, ao: number, b: GpuBuffer, bo: number, n: number): void;
  finish(): unknown;
}
/** The WebGPU device calls the `wgsl` backend makes. */
export interface GpuDevice {
  readonly limits: { maxStorageBufferBindingSize: number; maxBufferSize: number };
  readonly queue: {
    writeBuffer(b: GpuBuffer, offset: number, data: Float32Array): void;
    submit(cmds: unknown[]): void;
    onSubmittedWorkDone(): Promise<void>;
  };
  createBuffer(d: { size: number; usage: number }): GpuBuffer;
  createShaderModule(d: { code: string }): {
    getCompilationInfo(): Promise<{ messages: { type: string; message: string }[] }>;
  };
  createComputePipeline(d: unknown): { getBindGroupLayout(i: number): unknown };
  createBindGroup(d: unknown): unknown;
  createCommandEncoder(): GpuEncoder;
  destroy(): void;
}
// One adapter type for the probe and the device request.
interface GpuAdapter {
  readonly isFallbackAdapter?: boolean;
  readonly info?: {
    vendor?: string;
    architecture?: string;
    device?: string;
    description?: string;
    isFallbackAdapter?: boolean;
  };
  readonly limits: { maxStorageBufferBindingSize: number; maxBufferSize: number };
  requestDevice(d?: unknown): Promise<GpuDevice>;
}

function navigatorGpu(): { requestAdapter(): Promise<GpuAdapter | null> } | undefined {
  return (globalThis.navigator as { gpu?: { requestAdapter(): Promise<GpuAdapter | null> } })
    ?.gpu;
}

let devicePromise: Promise<GpuDevice> | undefined;

/**
 * The process's WebGPU device (one, like gpu.js: pipelines and resident weights live on it),
 * created with the adapter's full buffer limits.
 *
 * @example
 * ```ts
 * import { webgpuDevice } from "./webgpu_device.ts";
 * const device = await webgpuDevice().catch(() => undefined);
 * console.log(device ? "device" : "no device");
 * ```
 */
export function webgpuDevice(): Promise<GpuDevice> {
  devicePromise ??= (async () => {
    const adapter = await navigatorGpu()?.requestAdapter();
    if (!adapter) throw new Error("navigator.gpu.requestAdapter() returned null");
    return await adapter.requestDevice({
      requiredLimits: {
        maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
        maxBufferSize: adapter.limits.maxBufferSize,
      },
    });
  })();
  devicePromise.catch(() => (devicePromise = undefined));
  return devicePromise;
}
