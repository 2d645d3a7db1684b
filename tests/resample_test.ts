// io/resample.ts: torch's antialiased bicubic against an independent float64 2-D sum written
// from the formula (up- and downsampling, non-square, the ViT pos-embed cases), the identity and
// single-axis skips, weight normalization; Pillow's integer bicubic against a float64 two-pass
// model (within one level), its skip rules and its copy on an unchanged size.
import assert from "node:assert/strict";
import {
  pilBicubicTaps,
  resampleBicubicAA,
  resizeBicubicPIL,
  torchAATaps,
} from "../io/resample.ts";
import { lcgValues } from "./helpers.ts";

/** Keys' cubic, a = -0.5, in float64. */
function keys(x: number): number {
  const a = -0.5;
  const t = Math.abs(x);
  if (t < 1) return ((a + 2) * t - (a + 3)) * t * t + 1;
  if (t < 2) return ((a * t - 5 * a) * t + 8 * a) * t - 4 * a;
  return 0;
}

/** One axis's float64 weights from the formula: [first input, weights...] per output. */
function axisWeights(inSize: number, outSize: number): { first: number; w: number[] }[] {
  const scale = inSize / outSize;
  const stretch = Math.max(scale, 1);
  const support = 2 * stretch;
  const rows = [];
  for (let o = 0; o < outSize; o++) {
    const center = scale * (o + 0.5);
    const lo = Math.max(Math.trunc(center - support + 0.5), 0);
    const hi = Math.min(Math.trunc(center + support + 0.5), inSize);
    const w: number[] = [];
    for (let i = lo; i < hi; i++) w.push(keys((i - center + 0.5) / stretch));
    const sum = w.reduce((s, v) => s + v, 0);
    rows.push({ first: lo, w: w.map((v) => v / sum) });
  }
  return rows;
}

/** out[c, y, x] = sum_i sum_j wy[y][i] * wx[x][j] * in[c, i, j], all float64, not separable. */
function reference2d(
  data: Float32Array,
  [c, h, w]: [number, number, number],
  outH: number,
  outW: number,
): Float64Array {
  const wy = axisWeights(h, outH);
  const wx = axisWeights(w, outW);
  const out = new Float64Array(c * outH * outW);
  for (let ch = 0; ch < c; ch++) {
    for (let y = 0; y < outH; y++) {
      for (let x = 0; x < outW; x++) {
        let s = 0;
        for (let i = 0; i < wy[y].w.length; i++) {
          for (let j = 0; j < wx[x].w.length; j++) {
            s += wy[y].w[i] * wx[x].w[j] * data[(ch * h + wy[y].first + i) * w + wx[x].first + j];
          }
        }
        out[(ch * outH + y) * outW + x] = s;
      }
    }
  }
  return out;
}

function maxAbs(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

const CASES: { name: string; shape: [number, number, number]; out: [number, number] }[] = [
  { name: "pos-embed upsample (192, 14, 14) -> (16, 20)", shape: [192, 14, 14], out: [16, 20] },
  { name: "pos-embed downsample (768, 24, 24) -> (14, 14)", shape: [768, 24, 24], out: [14, 14] },
  { name: "non-square mixed (3, 7, 11) -> (13, 5)", shape: [3, 7, 11], out: [13, 5] },
  { name: "strong downsample (2, 40, 9) -> (3, 2)", shape: [2, 40, 9], out: [3, 2] },
  { name: "to and from one pixel (2, 1, 5) -> (4, 1)", shape: [2, 1, 5], out: [4, 1] },
];

for (const { name, shape, out } of CASES) {
  Deno.test(`resampleBicubicAA matches the float64 2-D sum: ${name}`, () => {
    const input = lcgValues(shape, 7 + shape[1]).data;
    const want = reference2d(input, shape, out[0], out[1]);
    for (const torch of ["1.13", "2"] as const) {
      const got = resampleBicubicAA(input, shape, out[0], out[1], { torch });
      assert.equal(got.length, shape[0] * out[0] * out[1]);
      // Inputs in [-1, 1), <= 8 x 8 taps: float32 sums and torch's float32 scale (14/20 is
      // 0.69999999) keep within ~1.5e-6 of the float64 sum.
      const err = maxAbs(got, want);
      assert.ok(err < 3e-6, `${torch}: max |float32 - float64| = ${err}`);
    }
  });
}

Deno.test("resampleBicubicAA: an unchanged size returns an equal copy (torch copies)", () => {
  const input = lcgValues([3, 5, 6], 1).data;
  const got = resampleBicubicAA(input, [3, 5, 6], 5, 6);
  assert.notEqual(got, input);
  assert.deepEqual(got, input);
});

Deno.test("resampleBicubicAA: an unchanged axis is not resampled (rows stay independent)", () => {
  const input = lcgValues([2, 4, 9], 3).data;
  const widthOnly = resampleBicubicAA(input, [2, 4, 9], 4, 6);
  for (let r = 0; r < 8; r++) {
    const row = resampleBicubicAA(input.slice(r * 9, r * 9 + 9), [1, 1, 9], 1, 6);
    assert.deepEqual(widthOnly.slice(r * 6, r * 6 + 6), row);
  }
  const heightOnly = resampleBicubicAA(input, [2, 4, 9], 7, 9);
  assert.ok(maxAbs(heightOnly, reference2d(input, [2, 4, 9], 7, 9)) < 2e-6);
});

Deno.test("torchAATaps: weights sum to 1 (float32), the PIL box, support 2*max(1, scale)", () => {
  for (const [n, m] of [[14, 16], [14, 20], [24, 14], [40, 3], [1, 7], [7, 1], [5, 5]]) {
    for (const torch of ["1.13", "2"] as const) {
      const taps = torchAATaps(n, m, torch);
      const scale = n / m;
      assert.equal(taps.stride, Math.ceil(2 * Math.max(1, scale)) * 2 + 1);
      const ref = axisWeights(n, m);
      for (let o = 0; o < m; o++) {
        assert.equal(taps.start[o], ref[o].first, `${n}->${m} output ${o} start`);
        assert.equal(taps.size[o], ref[o].w.length, `${n}->${m} output ${o} size`);
        let sum = 0;
        for (let j = 0; j < taps.size[o]; j++) {
          const w = taps.weights[o * taps.stride + j];
          // torch's float32 scale (14/20 -> 0.69999999) moves centers by ~1e-7 input pixels.
          assert.ok(Math.abs(w - ref[o].w[j]) < 1e-6, `${n}->${m} weight ${o},${j}`);
          sum += w;
        }
        assert.ok(Math.abs(sum - 1) < 1e-6, `${n}->${m} output ${o} sums to ${sum}`);
        for (let j = taps.size[o]; j < taps.stride; j++) {
          assert.equal(taps.weights[o * taps.stride + j], 0);
        }
      }
    }
  }
  // Downsampling 24 -> 14: 9 weights a row, the first output reads inputs 0..3.
  const t = torchAATaps(24, 14);
  assert.deepEqual([t.stride, t.start[0], t.size[0], t.start[13], t.size[13]], [9, 0, 4, 20, 4]);
});

Deno.test("resampleBicubicAA: a constant grid stays constant (normalized weights)", () => {
  const input = new Float32Array(2 * 14 * 14).fill(0.75);
  for (const [h, w] of [[16, 20], [5, 3], [14, 30]]) {
    const got = resampleBicubicAA(input, [2, 14, 14], h, w);
    for (const v of got) assert.ok(Math.abs(v - 0.75) < 1e-6, `${h}x${w}: ${v}`);
  }
});

Deno.test("resampleBicubicAA: torch 1.13 and 2.x weights differ at most in the last bits", () => {
  let differ = 0;
  for (const [n, m] of [[14, 16], [14, 20], [24, 14], [37, 11]]) {
    const a = torchAATaps(n, m, "1.13").weights;
    const b = torchAATaps(n, m, "2").weights;
    for (let i = 0; i < a.length; i++) {
      assert.ok(Math.abs(a[i] - b[i]) <= 2 ** -23, `${n}->${m} weight ${i}`);
      if (a[i] !== b[i]) differ++;
    }
  }
  // The two evaluation orders are genuinely different arithmetic.
  assert.ok(differ > 0);
});

Deno.test("resampleBicubicAA rejects bad sizes and mismatched data", () => {
  assert.throws(() => resampleBicubicAA(new Float32Array(4), [1, 2, 2], 0, 2), RangeError);
  assert.throws(() => resampleBicubicAA(new Float32Array(5), [1, 2, 2], 3, 3), RangeError);
  assert.throws(() => resampleBicubicAA(new Float32Array(4), [1, 2, 2], 2.5, 3), RangeError);
});

/** Pillow's two passes modelled in float64: exact weights, the intermediate clamped, not rounded. */
function pilFloatModel(
  src: Uint8Array,
  w: number,
  h: number,
  ch: number,
  ow: number,
  oh: number,
): Float64Array {
  const clamp = (v: number) => Math.min(255, Math.max(0, v));
  const wx = axisWeights(w, ow);
  const wy = axisWeights(h, oh);
  const mid = new Float64Array(h * ow * ch);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < ow; x++) {
      for (let c = 0; c < ch; c++) {
        let s = 0;
        wx[x].w.forEach((wt, j) => s += wt * src[(y * w + wx[x].first + j) * ch + c]);
        mid[(y * ow + x) * ch + c] = ow === w ? src[(y * w + x) * ch + c] : clamp(s);
      }
    }
  }
  const out = new Float64Array(oh * ow * ch);
  for (let y = 0; y < oh; y++) {
    for (let i = 0; i < ow * ch; i++) {
      let s = 0;
      wy[y].w.forEach((wt, j) => s += wt * mid[(wy[y].first + j) * ow * ch + i]);
      out[y * ow * ch + i] = oh === h ? mid[y * ow * ch + i] : clamp(s);
    }
  }
  return out;
}

function noiseImage(w: number, h: number, ch: number, seed: number): Uint8Array {
  const v = lcgValues([w * h * ch], seed).data;
  // Smooth ramps plus noise, so both flat areas and overshooting edges occur.
  return Uint8Array.from(
    v,
    (r, i) => (i % 7 < 3 ? (r > 0 ? 255 : 0) : Math.floor((r + 1) * 127.5)),
  );
}

for (
  const [w, h, ch, ow, oh] of [
    [300, 200, 3, 372, 248],
    [300, 200, 3, 101, 67],
    [17, 9, 1, 5, 23],
    [9, 4, 4, 4, 9],
    [5, 7, 2, 13, 2],
  ] as const
) {
  Deno.test(`resizeBicubicPIL ${w}x${h}x${ch} -> ${ow}x${oh} is within one level of float64`, () => {
    const src = noiseImage(w, h, ch, w * h);
    const got = resizeBicubicPIL(src, w, h, ch, ow, oh);
    const want = pilFloatModel(src, w, h, ch, ow, oh);
    assert.equal(got.length, ow * oh * ch);
    // Intermediate 8-bit rounding (<= 0.5, times sum |w| < 1.2) plus the final rounding: < 1.1.
    assert.ok(maxAbs(got, want) < 1.1, `max |PIL - float64| = ${maxAbs(got, want)}`);
  });
}

Deno.test("resizeBicubicPIL: an unchanged size is a copy; one unchanged axis is skipped", () => {
  const src = noiseImage(6, 5, 3, 11);
  const same = resizeBicubicPIL(src, 6, 5, 3, 6, 5);
  assert.notEqual(same, src);
  assert.deepEqual(same, src);
  // Width only: every row is resized alone, as a 1-row image would be.
  const wide = resizeBicubicPIL(src, 6, 5, 3, 10, 5);
  for (let y = 0; y < 5; y++) {
    const row = resizeBicubicPIL(src.slice(y * 18, y * 18 + 18), 6, 1, 3, 10, 1);
    assert.deepEqual(wide.slice(y * 30, y * 30 + 30), row);
  }
  // Height only: every column alone.
  const tall = resizeBicubicPIL(src, 6, 5, 3, 6, 8);
  for (let x = 0; x < 6; x++) {
    const col = new Uint8Array(15);
    for (let y = 0; y < 5; y++) col.set(src.subarray((y * 6 + x) * 3, (y * 6 + x) * 3 + 3), y * 3);
    const out = resizeBicubicPIL(col, 1, 5, 3, 1, 8);
    for (let y = 0; y < 8; y++) {
      assert.deepEqual(
        tall.slice((y * 6 + x) * 3, (y * 6 + x) * 3 + 3),
        out.slice(y * 3, y * 3 + 3),
      );
    }
  }
});

Deno.test("resizeBicubicPIL: flat images stay flat; black and white never wrap", () => {
  for (const v of [0, 1, 128, 254, 255]) {
    const src = new Uint8Array(7 * 3 * 3).fill(v);
    for (const [ow, oh] of [[13, 5], [2, 1], [1, 1], [248, 100]]) {
      const out = resizeBicubicPIL(src, 7, 3, 3, ow, oh);
      assert.ok(out.every((x) => x === v), `${v} -> ${ow}x${oh}`);
    }
  }
  // A hard edge overshoots in float; clip8 saturates instead of wrapping.
  const edge = Uint8Array.from({ length: 8 }, (_, i) => (i < 4 ? 0 : 255));
  const up = resizeBicubicPIL(edge, 8, 1, 1, 29, 1);
  assert.equal(Math.min(...up), 0);
  assert.equal(Math.max(...up), 255);
});

Deno.test("pilBicubicTaps: float64 weights sum to 1 and match the formula", () => {
  for (const [n, m] of [[200, 248], [300, 372], [300, 101], [1, 248], [248, 1]]) {
    const taps = pilBicubicTaps(n, m);
    const ref = axisWeights(n, m);
    for (let o = 0; o < m; o++) {
      assert.equal(taps.start[o], ref[o].first);
      assert.equal(taps.size[o], ref[o].w.length);
      let sum = 0;
      for (let j = 0; j < taps.size[o]; j++) sum += taps.weights[o * taps.stride + j];
      assert.ok(Math.abs(sum - 1) < 1e-12);
    }
  }
});

Deno.test("resizeBicubicPIL rejects bad sizes and mismatched data", () => {
  assert.throws(() => resizeBicubicPIL(new Uint8Array(12), 2, 2, 3, 0, 1), RangeError);
  assert.throws(() => resizeBicubicPIL(new Uint8Array(11), 2, 2, 3, 3, 3), RangeError);
  assert.throws(() => resizeBicubicPIL(new Uint8Array(20), 2, 2, 5, 3, 3), RangeError);
});
