/**
 * Where a host-to-host WebGPU run spends its time, phase by phase, with raw WebGPU calls shaped
 * like the `wgsl` backend's run: upload, one submission, readback, copy out.
 *
 *     deno run -A bench/wgsl_phases.ts [--mb 154]
 * @module
 */

import { parseArgs } from "node:util";

const { values } = parseArgs({
  args: Deno.args,
  options: { mb: { type: "string", default: "154" } },
});
const bytes = Math.floor(Number(values.mb) * 2 ** 20 / 4) * 4;
interface Buffer {
  mapAsync(mode: number): Promise<void>;
  getMappedRange(offset?: number, size?: number): ArrayBuffer;
  unmap(): void;
}
interface Device {
  createBuffer(d: { size: number; usage: number }): Buffer;
  createCommandEncoder(): {
    copyBufferToBuffer(a: Buffer, ao: number, b: Buffer, bo: number, n: number): void;
    finish(): unknown;
  };
  queue: {
    writeBuffer(b: Buffer, o: number, d: Float32Array, from?: number, size?: number): void;
    submit(c: unknown[]): void;
  };
}
interface Adapter {
  limits: { maxStorageBufferBindingSize: number; maxBufferSize: number };
  requestDevice(d: unknown): Promise<Device>;
}
const gpu = (navigator as unknown as { gpu: { requestAdapter(): Promise<Adapter> } }).gpu;
const adapter = await gpu.requestAdapter();
const device = await adapter.requestDevice({
  requiredLimits: {
    maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
    maxBufferSize: adapter.limits.maxBufferSize,
  },
});
const host = new Float32Array(bytes / 4).fill(1);
const buf = device.createBuffer({ size: bytes, usage: 0x80 | 0x08 | 0x04 });
const staging = device.createBuffer({ size: bytes, usage: 0x01 | 0x08 });
const out = new Float32Array(bytes / 4);
const chunkSizes = [1, 4, 16].map((mb) => mb * 2 ** 20);
const phases: Record<string, number[]> = {
  write: [],
  write_chunks_4mb: [],
  submit_to_mapped: [],
  get_mapped_range: [],
  copy_out: [],
  ...Object.fromEntries(chunkSizes.map((c) => [`copy_out_chunks_${c / 2 ** 20}mb`, []])),
};
const readback = async (): Promise<void> => {
  const enc = device.createCommandEncoder();
  enc.copyBufferToBuffer(buf, 0, staging, 0, bytes);
  device.queue.submit([enc.finish()]);
  await staging.mapAsync(1);
};
for (let i = 0; i < 12; i++) {
  let t = performance.now();
  device.queue.writeBuffer(buf, 0, host);
  phases.write.push(performance.now() - t);
  t = performance.now();
  for (let at = 0; at < bytes / 4; at += 2 ** 20) {
    device.queue.writeBuffer(buf, at * 4, host, at, Math.min(2 ** 20, bytes / 4 - at));
  }
  phases.write_chunks_4mb.push(performance.now() - t);
  t = performance.now();
  await readback();
  phases.submit_to_mapped.push(performance.now() - t);
  t = performance.now();
  const whole = staging.getMappedRange();
  phases.get_mapped_range.push(performance.now() - t);
  out.set(new Float32Array(whole));
  staging.unmap();
  phases.copy_out.push(performance.now() - t);
  // Deno copies a read mapping into a fresh allocation per getMappedRange call, so smaller
  // ranges touch fewer new pages.
  for (const chunk of chunkSizes) {
    await readback();
    t = performance.now();
    for (let at = 0; at < bytes; at += chunk) {
      const size = Math.min(chunk, bytes - at);
      out.set(new Float32Array(staging.getMappedRange(at, size)), at / 4);
    }
    staging.unmap();
    phases[`copy_out_chunks_${chunk / 2 ** 20}mb`].push(performance.now() - t);
  }
}
const median = (xs: number[]) => xs.slice(2).sort((a, b) => a - b)[Math.floor((xs.length - 2) / 2)];
console.log(JSON.stringify({
  mb: bytes / 2 ** 20,
  ...Object.fromEntries(Object.entries(phases).map(([k, v]) => [`${k}_ms`, median(v)])),
}));
