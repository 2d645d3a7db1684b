/**
 * Can a system BLAS carry the ViT's matrix products? Calls OpenBLAS's `cblas_sgemm` through
 * `Deno.dlopen` on the products of ViT-Ti (B = 1) and ViT-B (B = 8), once on ordinary memory and
 * once on shared WebAssembly memory (where the `wasm` backend keeps its activations), checks one
 * value against a plain sum, and prints one JSON line per product. Needs `--allow-ffi` and a
 * `libopenblas.so.0` (Debian: `apt-get install libopenblas0-pthread`).
 *
 * Run: `deno run -A bench/blas_probe.ts [--threads 2] [--lib libopenblas.so.0]`
 * @module
 */

import { loadBlas } from "../codegen/backends/native_blas.ts";

const args = Deno.args;
const flag = (name: string, fallback: string): string => {
  const at = args.indexOf(name);
  return at >= 0 ? args[at + 1] : fallback;
};
const threads = Number(flag("--threads", "2"));
// The library the native backend loads (`TESSERA_BLAS` overrides the name).
if (args.includes("--lib")) Deno.env.set("TESSERA_BLAS", flag("--lib", ""));
const blas = loadBlas(threads);
if (typeof blas === "string") throw new Error(`no BLAS: ${blas}`);
const { sgemm: gemm } = blas;

function floats(length: number, shared: boolean): Float32Array {
  if (!shared) return new Float32Array(length);
  const pages = Math.ceil((length * 4) / 65536) + 1;
  const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
  return new Float32Array(memory.buffer, 0, length);
}

function probe(name: string, m: number, n: number, k: number, shared: boolean): void {
  const a = floats(m * k, shared);
  const b = floats(k * n, shared);
  const c = floats(m * n, shared);
  for (let i = 0; i < a.length; i++) a[i] = Math.sin(i);
  for (let i = 0; i < b.length; i++) b[i] = Math.cos(i);
  const sgemm = (): void => gemm(m, n, k, a, k, b, n, c, n);
  sgemm();
  let want = 0;
  for (let l = 0; l < k; l++) want += a[l] * b[l * n];
  const times: number[] = [];
  for (let r = 0; r < 9; r++) {
    const start = performance.now();
    sgemm();
    times.push(performance.now() - start);
  }
  times.sort((x, y) => x - y);
  const ms = times[4];
  console.log(JSON.stringify({
    bench: "blas_probe",
    product: name,
    m,
    n,
    k,
    memory: shared ? "shared wasm" : "ordinary",
    threads,
    ms: Number(ms.toFixed(3)),
    gflops: Number(((2 * m * n * k) / ms / 1e6).toFixed(1)),
    error_c00: Math.abs(c[0] - want),
  }));
}

for (const shared of [false, true]) {
  probe("ViT-Ti qkv, B=1", 197, 576, 192, shared);
  probe("ViT-Ti fc1, B=1", 197, 768, 192, shared);
  probe("ViT-B qkv, B=8", 1576, 2304, 768, shared);
  probe("ViT-B fc1, B=8", 1576, 3072, 768, shared);
}
