/**
 * Transcendental functions as WebAssembly SIMD loops, for the JavaScript kernels' outputs: a
 * kernel whose value is `exp(a)` or the exact GELU `0.5 a (1 + erf(a / sqrt 2))` computes `a`
 * into its output, and the output range is then mapped in place four lanes at a time. In
 * JavaScript `Math.exp` costs ~10 ns an element on these machines; here it is about one.
 *
 * `exp` is Cody-Waite range reduction (`x = k ln 2 + r`, `|r| <= ln 2 / 2`), a degree-7 Taylor
 * polynomial for `e^r` and the scale `2^k` applied as two halves (so results near the overflow
 * and subnormal ends are still right); it is within 2 ulp of the correctly rounded value,
 * gives `+Infinity` past overflow, 0 past underflow, and keeps NaN. `erf` spells the same
 * approximation as the other renderers (`erfSpelling`: the series below 0.5, Abramowitz and
 * Stegun 7.1.26 above, absolute error below 1.5e-7). The exp and erf emitters are exported for
 * the WebAssembly loop nests (`loop_nest.ts`), so both compute the same values.
 * @module
 */

import { Code, encodeModule, I32, V128, type WasmFunction } from "./encoder.ts";
import { ERF_SERIES, ERF_TAIL } from "../../../ops/gelu.ts";

/** Functions the module exports, each `(ptr, n)` mapping `n` floats at byte `ptr` in place. */
export type VectorFunction = "exp" | "gelu";

/** Floats the scratch memory holds: what one call maps (the wrapper feeds longer ranges in pieces). */
export const VECTOR_CHUNK = 16384;

/** Pages of the memory the module imports (64 KiB each): the chunk plus rounding to 4 lanes. */
export const VECTOR_PAGES = 2;

// SIMD opcodes (after 0xfd) used here that the encoder has no named method for.
const F32X4_ABS = 0xe0;
const F32X4_NEG = 0xe1;
const F32X4_DIV = 0xe7;
const F32X4_MIN = 0xe8;
const F32X4_MAX = 0xe9;
const F32X4_LT = 0x43;
const I32X4_ADD = 0xae;
const I32X4_SUB = 0xb1;
const I32X4_SHL = 0xab;
const I32X4_SHR_S = 0xac;
const V128_AND = 0x4e;
const V128_XOR = 0x51;
const V128_BITSELECT = 0x52;
const I32_AND = 0x71;

const LOG2E = 1.4426950408889634;
// ln 2 split so that k * LN2_HI is exact for the k that occur.
const LN2_HI = 0.693359375;
const LN2_LO = -2.1219444005469057e-4;
// Past these, e^x is 0 or +Infinity in float32 whatever the polynomial says.
const EXP_LOW = -104;
const EXP_HIGH = 89;
const ROUNDER = 12582912; // 1.5 * 2^23
const ROUNDER_BITS = 0x4b400000;

/**
 * Vector constants as locals set once before the loop (V8 rebuilds a `v128.const` from
 * immediates at each use): `f` and `i` push, onto the code given, the local holding four lanes
 * of the value; the locals belong to the function's `Code` passed to the constructor, and
 * `prologue()` is what sets them (the caller places it before the first use).
 *
 * @example
 * ```ts
 * import { Code, I32 } from "./encoder.ts";
 * import { VectorConstants } from "./vector_math.ts";
 * const fn = new Code([I32]);
 * const k = new VectorConstants(fn);
 * k.f(fn, 0.5).f32x4Mul(); // the 0.5 splat times what is on the stack
 * k.prologue().length > 0; // true
 * ```
 */
export class VectorConstants {
  readonly #fn: Code;
  readonly #locals = new Map<string, { local: number; set: (c: Code) => Code }>();
  /** `fn` is the function whose locals hold the constants. */
  constructor(fn: Code) {
    this.#fn = fn;
  }
  /** Pushes (onto `c`) four lanes of the float `value`. */
  f(c: Code, value: number): Code {
    return c.localGet(this.#get(`f${value}`, (p) => p.f32x4Const(value)));
  }
  /** Pushes (onto `c`) four lanes of the integer `value`. */
  i(c: Code, value: number): Code {
    return c.localGet(this.#get(`i${value}`, (p) => p.i32x4Const(value)));
  }
  /** The instructions that set every constant used so far. */
  prologue(): number[] {
    const c = new Code([]);
    for (const { local, set } of this.#locals.values()) set(c).localSet(local);
    return c.bytes;
  }
  #get(key: string, set: (c: Code) => Code): number {
    let entry = this.#locals.get(key);
    if (!entry) this.#locals.set(key, entry = { local: this.#fn.local(V128), set });
    return entry.local;
  }
}

/**
 * Horner's rule on the vector in local `x`: `c[0] + x (c[1] + x (...))`, left on the stack.
 *
 * @example
 * ```ts
 * import { Code, V128 } from "./encoder.ts";
 * import { horner, VectorConstants } from "./vector_math.ts";
 * const fn = new Code([V128]);
 * horner(fn, new VectorConstants(fn), 0, [1, 0.5]); // 1 + x / 2
 * ```
 */
export function horner(
  c: Code,
  K: VectorConstants,
  x: number,
  coefficients: readonly number[],
): void {
  const n = coefficients.length;
  K.f(c, coefficients[n - 1]);
  for (let i = n - 2; i >= 0; i--) {
    c.localGet(x).f32x4Mul();
    K.f(c, coefficients[i]).f32x4Add();
  }
}

/**
 * `e^x` of the vector in local `x` into local `out` (which may be `x`), appended to `c`; the
 * three `scratch` locals are clobbered. Within 2 ulp, IEEE overflow and underflow, NaN kept.
 *
 * @example
 * ```ts
 * import { Code, V128 } from "./encoder.ts";
 * import { emitExp, VectorConstants } from "./vector_math.ts";
 * const fn = new Code([V128]);
 * const scratch = [fn.local(V128), fn.local(V128), fn.local(V128)];
 * emitExp(fn, new VectorConstants(fn), 0, 0, scratch); // local 0 = e^(local 0)
 * ```
 */
export function emitExp(
  c: Code,
  K: VectorConstants,
  x: number,
  out: number,
  [k, r, h]: readonly number[],
): void {
  c.localGet(x);
  K.f(c, EXP_LOW).simd(F32X4_MAX);
  K.f(c, EXP_HIGH).simd(F32X4_MIN).localSet(r);
  // k = round(x log2 e) by the 1.5 * 2^23 trick: adding it rounds to an integer, and the sum's
  // low mantissa bits are then k itself (cheaper than nearest and trunc_sat on x86).
  c.localGet(r);
  K.f(c, LOG2E).f32x4Mul();
  K.f(c, ROUNDER).f32x4Add().localSet(h);
  c.localGet(h);
  K.f(c, ROUNDER).f32x4Sub().localSet(k);
  c.localGet(r).localGet(k);
  K.f(c, LN2_HI).f32x4Mul().f32x4Sub();
  c.localGet(k);
  K.f(c, LN2_LO).f32x4Mul().f32x4Sub().localSet(r);
  horner(c, K, r, [1, 1, 1 / 2, 1 / 6, 1 / 24, 1 / 120, 1 / 720, 1 / 5040]);
  c.localSet(out);
  // 2^k as 2^h * 2^(k - h), h = k >> 1: each half is a normal float for |k| <= 252.
  c.localGet(h);
  K.i(c, ROUNDER_BITS).simd(I32X4_SUB).localSet(k);
  c.localGet(k).i32Const(1).simd(I32X4_SHR_S).localSet(h);
  c.localGet(out).localGet(h);
  K.i(c, 127).simd(I32X4_ADD).i32Const(23).simd(I32X4_SHL).f32x4Mul();
  c.localGet(k).localGet(h).simd(I32X4_SUB);
  K.i(c, 127).simd(I32X4_ADD).i32Const(23).simd(I32X4_SHL).f32x4Mul().localSet(out);
}

/**
 * `erf(x)` of the vector in local `x` into local `out` (not `x`), appended to `c`: the formula
 * `erfSpelling` spells for the other renderers (the odd series below `|x| = 0.5`, Abramowitz
 * and Stegun 7.1.26 beyond, with `x`'s sign). The seven `scratch` locals are clobbered.
 *
 * @example
 * ```ts
 * import { Code, V128 } from "./encoder.ts";
 * import { emitErf, VectorConstants } from "./vector_math.ts";
 * const fn = new Code([V128]);
 * const [out, ...scratch] = Array.from({ length: 8 }, () => fn.local(V128));
 * emitErf(fn, new VectorConstants(fn), 0, out, scratch);
 * ```
 */
export function emitErf(
  c: Code,
  K: VectorConstants,
  x: number,
  out: number,
  [a, x2, small, u, ...scratch]: readonly number[],
): void {
  const [p, ...tail] = ERF_TAIL;
  c.localGet(x).simd(F32X4_ABS).localSet(a);
  c.localGet(x).localGet(x).f32x4Mul().localSet(x2);
  // Below 0.5: x (c0 + x^2 (c1 + ...)).
  horner(c, K, x2, ERF_SERIES);
  c.localGet(x).f32x4Mul().localSet(small);
  // Above: 1 - u (a1 + u (...)) e^(-x^2), u = 1 / (1 + p |x|), with x's sign.
  K.f(c, 1);
  K.f(c, 1).localGet(a);
  K.f(c, p).f32x4Mul().f32x4Add().simd(F32X4_DIV).localSet(u);
  c.localGet(x2).simd(F32X4_NEG).localSet(out);
  emitExp(c, K, out, out, scratch);
  c.localGet(out);
  horner(c, K, u, tail);
  c.localGet(u).f32x4Mul().f32x4Mul().localSet(out);
  K.f(c, 1).localGet(out).f32x4Sub().localGet(x);
  K.i(c, -0x80000000).simd(V128_AND).simd(V128_XOR).localSet(out);
  c.localGet(small).localGet(out).localGet(a);
  K.f(c, 0.5).simd(F32X4_LT).simd(V128_BITSELECT).localSet(out);
}

/**
 * The function `name` over `(ptr, n)`, n > 0: `lane` returns a body that maps local `v` in
 * place. (Unrolling two or four vectors an iteration measured no faster.)
 */
function mapFunction(
  name: VectorFunction,
  lane: (c: Code, k: VectorConstants) => (v: number) => void,
): WasmFunction {
  const c = new Code([I32, I32]);
  const k = new VectorConstants(c);
  const [PTR, N] = [0, 1];
  const end = c.local(I32);
  const v = c.local(V128);
  const body = lane(c, k);
  // Whole vectors: the scratch is padded, so the lanes past n are mapped too and ignored.
  c.localGet(N).i32Const(3).op(Code.I32_ADD).i32Const(-4).op(I32_AND);
  c.i32Const(4).op(Code.I32_MUL).localGet(PTR).op(Code.I32_ADD).localSet(end);
  const loopStart = c.bytes.length;
  c.loop((loop) => {
    loop.localGet(PTR).v128Load(0).localSet(v);
    body(v);
    loop.localGet(PTR).localGet(v).v128Store(0);
    loop.localGet(PTR).i32Const(16).op(Code.I32_ADD).localSet(PTR);
    loop.localGet(PTR).localGet(end).op(Code.I32_LT_U).brIf(0);
  });
  c.bytes.splice(loopStart, 0, ...k.prologue());
  return { name, params: [I32, I32], code: c };
}

function expFunction(): WasmFunction {
  return mapFunction("exp", (c, K) => {
    const scratch = [c.local(V128), c.local(V128), c.local(V128)];
    return (v) => emitExp(c, K, v, v, scratch);
  });
}

function geluFunction(): WasmFunction {
  return mapFunction("gelu", (c, K) => {
    const [t, a, t2, small, u, e, ...scratch] = Array.from({ length: 9 }, () => c.local(V128));
    return (v) => {
      c.localGet(v);
      K.f(c, Math.SQRT1_2).f32x4Mul().localSet(t);
      emitErf(c, K, t, e, [a, t2, small, u, ...scratch]);
      // 0.5 x (1 + erf).
      c.localGet(v);
      K.f(c, 0.5).f32x4Mul();
      K.f(c, 1).localGet(e).f32x4Add().f32x4Mul().localSet(v);
    };
  });
}

/**
 * The module: imports `env.memory` ({@linkcode VECTOR_PAGES} pages, shared flag set: pass it
 * through `withMemory(bytes, false)` for a thread's own memory) and exports `exp` and `gelu`.
 *
 * @example
 * ```ts
 * import { vectorMathModule } from "./vector_math.ts";
 * vectorMathModule().length > 0; // true
 * ```
 */
export function vectorMathModule(): Uint8Array<ArrayBuffer> {
  return encodeModule([expFunction(), geluFunction()], VECTOR_PAGES);
}
