/**
 * A system BLAS (OpenBLAS) through `Deno.dlopen`, for the `native` backend's matrix multiplies.
 * Optional by design: without `--allow-ffi`, outside Deno, or without the library, `loadBlas`
 * says why and `compile()` picks another backend; the zero-permission demo and browsers keep
 * WebAssembly.
 * @module
 */

/**
 * `C = alpha A B + beta C` (row-major) on float32 matrices: m x k times k x n; with `transB`,
 * `b` holds Bᵀ (n x k, row stride `ldb`). `alpha` defaults to 1, `beta` to 0.
 */
export type Sgemm = (
  m: number,
  n: number,
  k: number,
  a: Float32Array,
  lda: number,
  b: Float32Array,
  ldb: number,
  c: Float32Array,
  ldc: number,
  transB?: boolean,
  alpha?: number,
  beta?: number,
) => void;

/**
 * A loaded BLAS: its `sgemm`, which library answered, and how many threads it uses.
 *
 * @example
 * ```ts
 * import type { Blas } from "./native_blas.ts";
 * function describe(b: Blas): string {
 *   return `${b.library} (${b.threads} threads)`;
 * }
 * ```
 */
export interface Blas {
  /** Row-major single-precision GEMM. */
  readonly sgemm: Sgemm;
  /** The library file that was opened. */
  readonly library: string;
  /** Threads the library was told to use. */
  readonly threads: number;
}

/** Library names tried in order; `TESSERA_BLAS` (a path or a name) goes first when set. */
const CANDIDATES = ["libopenblas.so.0", "libopenblas.so", "libopenblas.dylib", "libopenblas.dll"];
/**
 * The CBLAS enum values `sgemm` is called with (row-major storage, no transpose, transpose).
 *
 * @example
 * ```ts
 * import { CBLAS } from "./native_blas.ts";
 * CBLAS.rowMajor; // 101
 * ```
 */
export const CBLAS = { rowMajor: 101, noTrans: 111, trans: 112 } as const;

/**
 * `cblas_sgemm`'s foreign signature, for `Deno.dlopen` (here, and in the pool's workers, which
 * open the library again).
 *
 * @example
 * ```ts
 * import { SGEMM_SYMBOL } from "./native_blas.ts";
 * SGEMM_SYMBOL.parameters.length; // 14
 * ```
 */
export const SGEMM_SYMBOL = {
  parameters: [
    "i32",
    "i32",
    "i32",
    "i32",
    "i32",
    "i32",
    "f32",
    "buffer",
    "i32",
    "buffer",
    "i32",
    "f32",
    "buffer",
    "i32",
  ],
  result: "void",
} as const;

const SYMBOLS = {
  cblas_sgemm: SGEMM_SYMBOL,
  openblas_set_num_threads: { parameters: ["i32"], result: "void" },
} as const;

let loaded: Blas | string | undefined;
let setThreads: ((n: number) => void) | undefined;

/**
 * Opens OpenBLAS once per process (its own thread pool runs `threads` threads; a later call
 * with another count changes it, process-wide) and returns it, or
 * one line saying why it cannot: no `Deno.dlopen` here, `--allow-ffi` not granted, or no library
 * found (with the install hint).
 *
 * @example
 * ```ts
 * import { loadBlas } from "./native_blas.ts";
 * const blas = loadBlas(2);
 * typeof blas === "string" ? console.log(blas) : console.log(blas.library);
 * ```
 */
export function loadBlas(threads: number): Blas | string {
  if (loaded !== undefined) {
    if (typeof loaded !== "string" && loaded.threads !== threads) {
      setThreads?.(threads);
      loaded = { ...loaded, threads };
    }
    return loaded;
  }
  const deno = (globalThis as { Deno?: typeof Deno }).Deno;
  if (!deno || typeof deno.dlopen !== "function") {
    return loaded = "this runtime has no Deno.dlopen (FFI); native runs under Deno only";
  }
  if (deno.permissions.querySync?.({ name: "ffi" }).state !== "granted") {
    return loaded = "--allow-ffi is not granted (run deno with --allow-ffi or -A)";
  }
  const names = [deno.env.get("TESSERA_BLAS"), ...CANDIDATES].filter((n): n is string => !!n);
  for (const library of names) {
    let lib: Deno.DynamicLibrary<typeof SYMBOLS>;
    try {
      lib = deno.dlopen(library, SYMBOLS);
    } catch {
      continue;
    }
    setThreads = (n) => lib.symbols.openblas_set_num_threads(n);
    setThreads(threads);
    const gemm = lib.symbols.cblas_sgemm;
    const sgemm: Sgemm = (m, n, k, a, lda, b, ldb, c, ldc, transB = false, alpha = 1, beta = 0) =>
      gemm(
        CBLAS.rowMajor,
        CBLAS.noTrans,
        transB ? CBLAS.trans : CBLAS.noTrans,
        m,
        n,
        k,
        alpha,
        a,
        lda,
        b,
        ldb,
        beta,
        c,
        ldc,
      );
    return loaded = { sgemm, library, threads };
  }
  return loaded = `no OpenBLAS library found (tried ${names.join(", ")}; on Debian/Ubuntu: ` +
    "apt-get install libopenblas0-pthread, or set TESSERA_BLAS to the library's path)";
}
