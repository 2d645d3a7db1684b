/**
 * Seeded random numbers that reproduce PyTorch 1.13's CPU generator bit for bit for float32
 * tensors: `torch.manual_seed(s)` followed by `torch.rand`, `tensor.uniform_`, `torch.randn`
 * and the default `nn.Conv2d` / `nn.Linear` initialisation.
 *
 * Reproduced details (all verified against the reference fixtures):
 * - mt19937 seeded with the low 32 bits of the seed.
 * - float uniform: 24 bits of one 32-bit draw, `x * (to - from) + from` as one float32 FMA
 *   with `from`/`to` rounded to float32 first.
 * - `randn` with at least 16 elements: the AVX2 `normal_fill` kernel (uniforms first, then
 *   Box-Muller per block of 16 using the float32 cephes log/sincos of `avx_mathfun.h`,
 *   with the fused multiply-adds GCC emits; a ragged tail redraws and recomputes the last 16).
 * - `randn` with fewer than 16 elements: scalar double Box-Muller from 53-bit uniforms, the
 *   sine half cached in the generator for the next scalar draw.
 * @module
 */

import { hostFloats } from "./tensor_data.ts";

const F32_BUF = new Float32Array(1);
const U32_VIEW = new Uint32Array(F32_BUF.buffer);
const fr = Math.fround;

/** float32 fused multiply-add `a * b + c` with a single rounding (inputs are float32). */
function fmaf(a: number, b: number, c: number): number {
  const p = a * b; // exact: two 24-bit significands fit in 53 bits
  const s = p + c;
  // TwoSum residual: s + err is exactly p + c.
  const bv = s - p;
  const err = (p - (s - bv)) + (c - bv);
  const r = fr(s);
  if (err === 0 || r === s) return r;
  // Only an exact float32 tie in `s` can be resolved wrongly by double rounding.
  const other = 2 * s - r;
  if (other !== r && fr(other) === other) return err > 0 ? Math.max(r, other) : Math.min(r, other);
  return r;
}

// Constants of the cephes-derived avx_mathfun.h, rounded to float32 as the C code does.
const SQRT_HALF = fr(0.707106781186547524);
const LOG_P = [
  7.0376836292e-2,
  -1.1514610310e-1,
  1.1676998740e-1,
  -1.2420140846e-1,
  1.4249322787e-1,
  -1.6668057665e-1,
  2.0000714765e-1,
  -2.4999993993e-1,
  3.3333331174e-1,
].map(fr);
const LOG_Q1 = fr(-2.12194440e-4);
const LOG_Q2 = fr(0.693359375);
const FOUR_OVER_PI = fr(1.27323954473516);
const DP1 = fr(-0.78515625);
const DP2 = fr(-2.4187564849853515625e-4);
const DP3 = fr(-3.77489497744594108e-8);
const COS_P0 = fr(2.443315711809948e-5);
const COS_P1 = fr(-1.388731625493765e-3);
const COS_P2 = fr(4.166664568298827e-2);
const SIN_P0 = fr(-1.9515295891e-4);
const SIN_P1 = fr(8.3321608736e-3);
const SIN_P2 = fr(-1.6666654611e-1);
const TWO_PI_F32 = fr(2 * Math.PI);

/** log256_ps for one lane; `v` is a positive normal float32 (here in [2^-24, 1]). */
function logAvx(v: number): number {
  F32_BUF[0] = v;
  let e = fr((U32_VIEW[0] >>> 23) - 0x7f + 1);
  U32_VIEW[0] = (U32_VIEW[0] & 0x807fffff) | 0x3f000000; // mantissa in [0.5, 1)
  let x = F32_BUF[0];
  const small = x < SQRT_HALF;
  const extra = small ? x : 0;
  x = fr(x - 1);
  if (small) e = fr(e - 1);
  x = fr(x + extra);
  const z = fr(x * x);
  let y = LOG_P[0];
  for (let i = 1; i < LOG_P.length; i++) y = fmaf(y, x, LOG_P[i]);
  y = fr(y * x);
  y = fmaf(y, z, fr(e * LOG_Q1));
  y = fr(y - z * 0.5); // z * 0.5 is exact
  x = fr(x + y);
  return fmaf(e, LOG_Q2, x);
}

/** sincos256_ps for one lane: returns `[sin, cos]` of a float32 angle. */
function sinCosAvx(angle: number): [number, number] {
  let sinNeg = angle < 0;
  let x = Math.abs(angle);
  const j = ((Math.trunc(fr(x * FOUR_OVER_PI)) | 0) + 1) & ~1;
  const y0 = fr(j);
  if ((j & 4) !== 0) sinNeg = !sinNeg;
  const cosNeg = (~(j - 2) & 4) !== 0;
  const cosPolyIsCos = (j & 2) === 0;
  x = fmaf(y0, DP1, x);
  x = fmaf(y0, DP2, x);
  x = fmaf(y0, DP3, x);
  const z = fr(x * x);
  let c = fmaf(COS_P0, z, COS_P1);
  c = fmaf(c, z, COS_P2);
  c = fr(c * z);
  c = fmaf(c, z, -fr(z * 0.5));
  c = fr(c + 1);
  let s = fmaf(SIN_P0, z, SIN_P1);
  s = fmaf(s, z, SIN_P2);
  s = fr(s * z);
  s = fmaf(s, x, x);
  let sin = cosPolyIsCos ? s : c;
  let cos = cosPolyIsCos ? c : s;
  if (sinNeg) sin = -sin;
  if (cosNeg) cos = -cos;
  return [sin, cos];
}

/** Box-Muller on 16 uniforms in place: lanes 0..7 give u1, lanes 8..15 give u2. */
function normalFill16(d: Float32Array, off: number): void {
  for (let j = 0; j < 8; j++) {
    const u1 = fr(1 - d[off + j]);
    const u2 = d[off + j + 8];
    const radius = fr(Math.sqrt(fr(-2 * logAvx(u1))));
    const [sin, cos] = sinCosAvx(fr(TWO_PI_F32 * u2));
    d[off + j] = fr(radius * cos);
    d[off + j + 8] = fr(radius * sin);
  }
}

/**
 * A CPU random generator equivalent to `torch.manual_seed(seed)` on PyTorch 1.13, for
 * contiguous float32 tensors. Each method consumes the stream exactly as the matching
 * PyTorch call on a tensor of `n` elements does.
 *
 * @example
 * ```ts
 * import { TorchGenerator } from "./random.ts";
 * const g = new TorchGenerator(0);
 * const x = g.rand(4); // == torch.manual_seed(0); torch.rand(4)
 * const n = g.randn(32); // continues the same stream, like a following torch.randn(32)
 * ```
 */
export class TorchGenerator {
  #state = new Uint32Array(624);
  #index = 624;
  #cachedNormal: number | null = null;

  /**
   * Seeds the mt19937 engine like `torch.manual_seed`: only the low 32 bits matter
   * (negative seeds wrap as two's complement).
   */
  constructor(seed: number | bigint) {
    if (typeof seed === "number" && !Number.isSafeInteger(seed)) {
      throw new RangeError(`seed must be an integer, got ${seed}`);
    }
    const s = this.#state;
    s[0] = Number(BigInt.asUintN(32, BigInt(seed)));
    for (let i = 1; i < 624; i++) {
      const prev = s[i - 1] ^ (s[i - 1] >>> 30);
      s[i] = Math.imul(1812433253, prev) + i;
    }
  }

  /** Next raw 32-bit draw (`random()` of the C++ generator). */
  #next32(): number {
    if (this.#index >= 624) this.#twist();
    let y = this.#state[this.#index++];
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  #twist(): void {
    const s = this.#state;
    for (let k = 0; k < 624; k++) {
      const y = (s[k] & 0x80000000) | (s[(k + 1) % 624] & 0x7fffffff);
      s[k] = s[(k + 397) % 624] ^ (y >>> 1) ^ (y & 1 ? 0x9908b0df : 0);
    }
    this.#index = 0;
  }

  /** Double uniform in [0, 1) from 53 bits of `random64()` (first draw is the high word). */
  #uniform53(): number {
    const hi = this.#next32();
    const lo = this.#next32();
    return ((hi & 0x1fffff) * 4294967296 + lo) / 9007199254740992;
  }

  /**
   * `torch.rand(n)`: float32 uniforms in [0, 1).
   *
   * @example
   * ```ts
   * import { TorchGenerator } from "./random.ts";
   * const input = new TorchGenerator(1).rand(2 * 3 * 32 * 32);
   * ```
   */
  rand(n: number): Float32Array {
    return this.uniform(n, 0, 1);
  }

  /**
   * `t.uniform_(low, high)` on a float32 tensor of `n` elements.
   *
   * @example
   * ```ts
   * import { TorchGenerator } from "./random.ts";
   * const bias = new TorchGenerator(0).uniform(8, -0.25, 0.25);
   * ```
   */
  uniform(n: number, low: number, high: number): Float32Array {
    if (!(low <= high)) throw new RangeError(`uniform expects low <= high, got ${low}, ${high}`);
    const from = fr(low);
    const span = fr(fr(high) - from);
    const out = hostFloats(n); // weights are drawn straight into shareable memory
    for (let i = 0; i < n; i++) {
      // GCC contracts `x * (to - from) + from` into one float FMA.
      out[i] = fmaf((this.#next32() & 0xffffff) / 16777216, span, from);
    }
    return out;
  }

  /**
   * `torch.randn(n)`: float32 standard normals (vectorised `normal_fill` for n >= 16,
   * scalar double Box-Muller below that).
   *
   * @example
   * ```ts
   * import { TorchGenerator } from "./random.ts";
   * const pos = new TorchGenerator(0).randn(197 * 768);
   * ```
   */
  randn(n: number): Float32Array {
    if (n < 16) return this.#randnScalar(n);
    const d = this.uniform(n, 0, 1);
    for (let i = 0; i + 16 <= n; i += 16) normalFill16(d, i);
    if (n % 16 !== 0) {
      // PyTorch redraws the last 16 slots and transforms them again.
      d.set(this.uniform(16, 0, 1), n - 16);
      normalFill16(d, n - 16);
    }
    return d;
  }

  #randnScalar(n: number): Float32Array {
    const out = hostFloats(n);
    for (let i = 0; i < n; i++) {
      if (this.#cachedNormal !== null) {
        out[i] = this.#cachedNormal;
        this.#cachedNormal = null;
        continue;
      }
      const u1 = this.#uniform53();
      const u2 = this.#uniform53();
      const r = Math.sqrt(-2 * Math.log(1 - u2));
      const theta = 2 * Math.PI * u1;
      this.#cachedNormal = r * Math.sin(theta);
      out[i] = r * Math.cos(theta);
    }
    return out;
  }
}

/**
 * Bound of PyTorch's default weight init `kaiming_uniform_(w, a=sqrt(5))` for a given fan-in,
 * computed in double the way `torch.nn.init` does (mathematically `1 / sqrt(fanIn)`).
 *
 * @example
 * ```ts
 * import { kaimingUniformBound } from "./random.ts";
 * kaimingUniformBound(768); // ~0.0360844
 * ```
 */
export function kaimingUniformBound(fanIn: number): number {
  const gain = Math.sqrt(2 / (1 + Math.sqrt(5) ** 2));
  const std = gain / Math.sqrt(fanIn);
  return Math.sqrt(3) * std;
}

/** Weight and bias of a freshly initialised layer, row-major float32. */
export interface LayerParams {
  /** Conv2d: (outC, inC, kh, kw); Linear: (out, in). */
  weight: Float32Array;
  /** One value per output channel / feature. */
  bias: Float32Array;
}

function initWeightBias(
  gen: TorchGenerator,
  out: number,
  fanIn: number,
): LayerParams {
  const wb = kaimingUniformBound(fanIn);
  const weight = gen.uniform(out * fanIn, -wb, wb);
  const bb = 1 / Math.sqrt(fanIn);
  const bias = gen.uniform(out, -bb, bb);
  return { weight, bias };
}

/**
 * Default `nn.Conv2d(inC, outC, k)` parameters (weight then bias), drawn from `gen`.
 * `k` is a square size or `[kh, kw]`.
 *
 * @example
 * ```ts
 * import { initConv2d, TorchGenerator } from "./random.ts";
 * const { weight, bias } = initConv2d(new TorchGenerator(0), 768, 3, 16);
 * ```
 */
export function initConv2d(
  gen: TorchGenerator,
  outC: number,
  inC: number,
  k: number | readonly [number, number],
): LayerParams {
  const [kh, kw] = typeof k === "number" ? [k, k] : k;
  return initWeightBias(gen, outC, inC * kh * kw);
}

/**
 * Default `nn.Linear(inF, out)` parameters (weight (out, inF) then bias), drawn from `gen`.
 *
 * @example
 * ```ts
 * import { initLinear, TorchGenerator } from "./random.ts";
 * const { weight, bias } = initLinear(new TorchGenerator(0), 768, 3);
 * ```
 */
export function initLinear(gen: TorchGenerator, out: number, inF: number): LayerParams {
  return initWeightBias(gen, out, inF);
}
