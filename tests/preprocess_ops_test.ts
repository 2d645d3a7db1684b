// Preprocessing ops (`to_tensor`, `resize`) against the PyTorch fixture, their shape rules at
// run time and in the type checker, and properties of the shared resize weights.
import assert from "node:assert/strict";
import fc from "npm:fast-check@4.3.0";
import { loadSafetensors } from "../io/safetensors.ts";
import type { TensorData } from "../graph/tensor_data.ts";
import { type Dim, type Shape, ShapeError } from "../graph/shape.ts";
import type { ShapeErrorType, TShape } from "../graph/shape_types.ts";
import { toTensorOp, type ToTensorShape } from "../ops/to_tensor.ts";
import { type ResizeAttrs, resizeOp, type ResizeShape, resizeTaps } from "../ops/resize.ts";

/** Exact type equality (tells `number` from literals, `readonly` from mutable, `never`). */
type Equal<X, Y> = (<T>() => T extends X ? 1 : 2) extends (<T>() => T extends Y ? 1 : 2) ? true
  : false;
/** Fails to compile unless `T` is `true`. */
type Expect<T extends true> = T;

const FIXTURE = new URL("./fixtures/preprocess_300x200.safetensors", import.meta.url);

function tensor(shape: readonly number[], values: ArrayLike<number>): TensorData {
  return { shape, data: Float32Array.from(values) };
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

/** Runs the reference resize with the output shape its own rule gives. */
function resize(x: TensorData, height: number, width: number, antialias: boolean): TensorData {
  const attrs: ResizeAttrs = { height, width, antialias };
  const shape = resizeOp.inferShape([x.shape], attrs, "resize_test") as number[];
  return { shape, data: resizeOp.evaluate([x], attrs, shape) };
}

function toTensor(x: TensorData): TensorData {
  const shape = toTensorOp.inferShape([x.shape], {}, "to_tensor_test") as number[];
  return { shape, data: toTensorOp.evaluate([x], {}, shape) };
}

/** Dense `[out, in]` matrix of one resized axis, read off the taps. */
function denseFromTaps(inSize: number, outSize: number, antialias: boolean): Float64Array {
  const { start, weights, taps } = resizeTaps(inSize, outSize, antialias);
  const m = new Float64Array(outSize * inSize);
  for (let i = 0; i < outSize; i++) {
    for (let k = 0; k < taps; k++) m[i * inSize + start[i] + k] += weights[i * taps + k];
  }
  return m;
}

/** Textbook bilinear (align_corners=False, edge clamp) and PIL-style antialias, in float64. */
function denseTextbook(inSize: number, outSize: number, antialias: boolean): Float64Array {
  const m = new Float64Array(outSize * inSize);
  const scale = inSize / outSize;
  for (let i = 0; i < outSize; i++) {
    const row = m.subarray(i * inSize, (i + 1) * inSize);
    if (inSize === outSize) {
      row[i] = 1;
    } else if (!antialias) {
      const src = Math.max((i + 0.5) * scale - 0.5, 0);
      const i0 = Math.floor(src);
      const i1 = Math.min(i0 + 1, inSize - 1);
      const l = src - i0;
      row[i0] += 1 - l;
      row[i1] += l;
    } else {
      // Triangle of half-width max(scale, 1) around the centre, over every source pixel.
      const support = Math.max(scale, 1);
      const center = (i + 0.5) * scale;
      let total = 0;
      for (let j = 0; j < inSize; j++) {
        row[j] = Math.max(0, 1 - Math.abs((j + 0.5 - center) / support));
        total += row[j];
      }
      for (let j = 0; j < inSize; j++) row[j] /= total;
    }
  }
  return m;
}

function rejects(run: () => unknown, op: string, text: RegExp): void {
  assert.throws(run, (e: unknown) => {
    assert.ok(e instanceof ShapeError, `expected ShapeError, got ${e}`);
    assert.equal(e.op, op);
    assert.match(e.message, text);
    return true;
  });
}

// ---------------------------------------------------------------------------------------------
// The PyTorch fixture
// ---------------------------------------------------------------------------------------------

Deno.test("to_tensor reproduces ToTensor() on the 300x200 image exactly", async () => {
  const file = await loadSafetensors(FIXTURE);
  const expected = file.tensors.get("to_tensor");
  assert.ok(expected);
  assert.deepEqual(expected.shape, [1, 3, 200, 300]);
  // Rebuild the decoder's raw HWC bytes: to_tensor * 255 must be integral.
  const [, c, h, w] = expected.shape;
  const raw = new Float32Array(h * w * c);
  for (let ch = 0; ch < c; ch++) {
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const v = expected.data[(ch * h + y) * w + x] * 255;
        const byte = Math.round(v);
        assert.ok(Math.abs(v - byte) < 1e-4 && byte >= 0 && byte <= 255, `not a byte: ${v}`);
        raw[(y * w + x) * c + ch] = byte;
      }
    }
  }
  const got = toTensor({ shape: [1, h, w, c], data: raw });
  assert.deepEqual(got.shape, [1, 3, 200, 300]);
  assert.equal(maxAbsDiff(got.data, expected.data), 0);
  assert.ok(got.data.every((v, i) => Object.is(v, expected.data[i])), "not bit-identical");
});

Deno.test("resize matches TF.resize on the fixture (antialias false and true)", async () => {
  const file = await loadSafetensors(FIXTURE);
  const get = (name: string): TensorData => {
    const t = file.tensors.get(name);
    assert.ok(t, `missing ${name}`);
    return t;
  };
  const input = get("to_tensor");
  const noAa = get("resized_no_antialias");
  const aa = get("resized_antialias");
  // The seed's Resize (torchvision 0.14) is the no-antialias one, bit for bit.
  assert.equal(maxAbsDiff(get("resized").data, noAa.data), 0);

  const plain = resize(input, 224, 224, false);
  assert.deepEqual(plain.shape, [1, 3, 224, 224]);
  const errPlain = maxAbsDiff(plain.data, noAa.data);
  // Measured: 6.0e-8 (11 of 150528 values one ulp off, where PyTorch reads the last row twice).
  assert.ok(errPlain <= 1e-5, `antialias=false max error ${errPlain}`);
  assert.ok(errPlain <= 1.2e-7, `antialias=false regressed: max error ${errPlain}`);

  const smooth = resize(input, 224, 224, true);
  const errAa = maxAbsDiff(smooth.data, aa.data);
  // Measured: 0 (bit-identical).
  assert.ok(errAa <= 1e-5, `antialias=true max error ${errAa}`);
  assert.ok(errAa <= 1.2e-7, `antialias=true regressed: max error ${errAa}`);

  // The two modes really differ on this image (≈ 0.32), so the flag is not a no-op.
  assert.ok(maxAbsDiff(plain.data, smooth.data) > 0.1);
});

// ---------------------------------------------------------------------------------------------
// Reference semantics on small cases
// ---------------------------------------------------------------------------------------------

Deno.test("to_tensor permutes HWC to CHW and divides by 255 per batch", () => {
  // B=2, H=1, W=2, C=3: pixel (b, 0, x) has channels [base, base + 1, base + 2].
  const raw = tensor([2, 1, 2, 3], [0, 1, 2, 3, 4, 5, 255, 254, 253, 10, 20, 30]);
  const y = toTensor(raw);
  assert.deepEqual(y.shape, [2, 3, 1, 2]);
  const expected = [0, 3, 1, 4, 2, 5, 255, 10, 254, 20, 253, 30].map((v) => Math.fround(v / 255));
  assert.deepEqual([...y.data], expected);
  assert.equal(y.data[6], 1);
});

Deno.test("resize upsamples and downsamples like PyTorch on hand-checked rows", () => {
  // Upsample [0, 1] to 4: sources -0.25 (clamped to 0), 0.25, 0.75, 1.25 (clamped to 1).
  assert.deepEqual([...resize(tensor([1, 1, 1, 2], [0, 1]), 1, 4, false).data], [
    0,
    0.25,
    0.75,
    1,
  ]);
  // Antialias changes nothing when upsampling.
  assert.deepEqual([...resize(tensor([1, 1, 1, 2], [0, 1]), 1, 4, true).data], [
    0,
    0.25,
    0.75,
    1,
  ]);
  const ramp = tensor([1, 1, 1, 4], [0, 1, 2, 3]);
  // Downsample by 2, plain: averages of neighbours.
  assert.deepEqual([...resize(ramp, 1, 2, false).data], [0.5, 2.5]);
  // Antialias: a triangle of half-width 2: weights [3, 3, 1] / 7 and [1, 3, 3] / 7.
  const aa = resize(ramp, 1, 2, true).data;
  assert.ok(Math.abs(aa[0] - 5 / 7) < 1e-6 && Math.abs(aa[1] - 16 / 7) < 1e-6, `${aa}`);
  // Vertical and horizontal together, batch and channels kept apart.
  const x = tensor([2, 1, 2, 2], [0, 1, 2, 3, 10, 20, 30, 40]);
  assert.deepEqual([...resize(x, 1, 1, false).data], [1.5, 25]);
});

Deno.test("identity resize is an exact copy; one-sided resizes keep the other axis", () => {
  const x = tensor([1, 2, 3, 5], Array.from({ length: 30 }, (_, i) => Math.sin(i) * 1e3));
  for (const antialias of [false, true]) {
    const y = resize(x, 3, 5, antialias);
    assert.ok(y.data.every((v, i) => v === x.data[i]), `antialias=${antialias}`);
  }
  // Height only: each column resized on its own, so a constant-per-column image stays that way.
  const cols = tensor([1, 1, 4, 3], [1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3]);
  assert.deepEqual([...resize(cols, 7, 3, false).data], Array(7).fill([1, 2, 3]).flat());
});

Deno.test("antialias only matters when downsampling", () => {
  const x = tensor([1, 1, 5, 7], Array.from({ length: 35 }, (_, i) => (i * 37) % 11));
  const up = maxAbsDiff(resize(x, 9, 13, false).data, resize(x, 9, 13, true).data);
  assert.ok(up < 1e-5, `upsampling differs by ${up}`);
  const down = maxAbsDiff(resize(x, 2, 3, false).data, resize(x, 2, 3, true).data);
  assert.ok(down > 0.1, `downsampling differs by only ${down}`);
});

// ---------------------------------------------------------------------------------------------
// resizeTaps: the weights shared with the codegen
// ---------------------------------------------------------------------------------------------

Deno.test("resizeTaps agrees with a textbook float64 implementation", () => {
  const sizes = [1, 2, 3, 4, 5, 7, 8, 16, 31, 64, 200, 224, 300];
  for (const inSize of sizes) {
    for (const outSize of sizes) {
      for (const antialias of [false, true]) {
        const got = denseFromTaps(inSize, outSize, antialias);
        const want = denseTextbook(inSize, outSize, antialias);
        // PyTorch rounds the scale to float32, which moves source positions by up to
        // `in * 2^-24`; everything else is within a few float32 ulps.
        const tol = 1e-6 + inSize * 1.2e-7;
        const err = maxAbsDiff(Float32Array.from(got), Float32Array.from(want));
        assert.ok(err <= tol, `${inSize} -> ${outSize} aa=${antialias}: ${err} > ${tol}`);
      }
    }
  }
});

Deno.test("resizeTaps hand-checked values and argument checks", () => {
  const t = resizeTaps(4, 2, false);
  assert.equal(t.taps, 2);
  assert.deepEqual([...t.start], [0, 2]);
  assert.deepEqual([...t.weights], [0.5, 0.5, 0.5, 0.5]);
  const id = resizeTaps(5, 5, true);
  assert.equal(id.taps, 1);
  assert.deepEqual([...id.start], [0, 1, 2, 3, 4]);
  assert.deepEqual([...id.weights], [1, 1, 1, 1, 1]);
  // One source pixel: a single tap.
  assert.equal(resizeTaps(1, 6, false).taps, 1);
  // 300 -> 224 with antialias: the triangle spans 2 * 300/224 ≈ 2.7 pixels, so 3 taps.
  assert.equal(resizeTaps(300, 224, true).taps, 3);
  assert.equal(resizeTaps(200, 224, true).taps, 2);
  for (const [a, b] of [[0, 3], [3, 0], [2.5, 3], [3, -1], [Number.NaN, 2]]) {
    assert.throws(() => resizeTaps(a, b, false), RangeError);
  }
});

Deno.test("resizeTaps properties: in range, non-negative, rows sum to 1 (fast-check)", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 600 }),
      fc.integer({ min: 1, max: 600 }),
      fc.boolean(),
      (inSize, outSize, antialias) => {
        const { start, weights, taps } = resizeTaps(inSize, outSize, antialias);
        assert.ok(Number.isInteger(taps) && taps >= 1 && taps <= inSize);
        assert.equal(start.length, outSize);
        assert.equal(weights.length, outSize * taps);
        for (let i = 0; i < outSize; i++) {
          assert.ok(start[i] >= 0 && start[i] + taps <= inSize, `window ${i} out of range`);
          let sum = 0;
          for (let k = 0; k < taps; k++) {
            const w = weights[i * taps + k];
            assert.ok(w >= 0 && w <= 1, `weight ${w}`);
            sum += w;
          }
          // Each weight is a float32 quotient: a row of `taps` weights carries up to half an ulp
          // (6e-8) of rounding per tap, e.g. 1 + 1.2e-6 for 198 antialiased taps.
          assert.ok(Math.abs(sum - 1) <= 1e-6 + taps * 6e-8, `row ${i} sums to ${sum}`);
        }
        // Plain bilinear never needs more than two taps.
        if (!antialias) assert.ok(taps <= 2);
      },
    ),
    { numRuns: 300 },
  );
});

// ---------------------------------------------------------------------------------------------
// Shape rules: run time
// ---------------------------------------------------------------------------------------------

Deno.test("runtime shape rules and ShapeErrors", () => {
  assert.deepEqual(toTensorOp.inferShape([["B", 200, 300, 3]], {}, "t"), ["B", 3, 200, 300]);
  rejects(() => toTensorOp.inferShape([[200, 300, 3]], {}, "to_tensor_4"), "to_tensor", /4-D/);
  rejects(
    () => toTensorOp.inferShape([[200, 300, 3]], {}, "to_tensor_4"),
    "to_tensor",
    /node to_tensor_4, input \[200, 300, 3\]/,
  );

  const attrs: ResizeAttrs = { height: 224, width: 224, antialias: true };
  assert.deepEqual(resizeOp.inferShape([["B", 3, 200, 300]], attrs, "r"), ["B", 3, 224, 224]);
  // Symbolic image sizes become concrete.
  assert.deepEqual(resizeOp.inferShape([["B", 3, "H", "W"]], attrs, "r"), ["B", 3, 224, 224]);
  rejects(() => resizeOp.inferShape([[3, 200, 300]], attrs, "resize_2"), "resize", /4-D/);
  rejects(
    () => resizeOp.inferShape([[3, 200, 300]], attrs, "resize_2"),
    "resize",
    /node resize_2, input \[3, 200, 300\]/,
  );
  const bad = (over: Partial<Record<keyof ResizeAttrs, unknown>>, text: RegExp): void =>
    rejects(
      () => resizeOp.inferShape([[1, 3, 8, 8]], { ...attrs, ...over } as ResizeAttrs, "r"),
      "resize",
      text,
    );
  bad({ height: 0 }, /height 0 must be a positive integer/);
  bad({ width: -4 }, /width -4 must be a positive integer/);
  bad({ width: 2.5 }, /width 2.5/);
  bad({ height: "H" }, /height H/);
  bad({ antialias: undefined }, /antialias must be true or false/);
  rejects(() => resizeOp.inferShape([[1, 3, 0, 8]], attrs, "r"), "resize", /empty 0x8/);
});

// ---------------------------------------------------------------------------------------------
// Shape rules: compile time
// ---------------------------------------------------------------------------------------------

export type TypeCases = [
  Expect<Equal<ToTensorShape<["B", 200, 300, 3]>, ["B", 3, 200, 300]>>,
  Expect<Equal<ToTensorShape<readonly [1, "H", "W", 3]>, [1, 3, "H", "W"]>>,
  Expect<Equal<ToTensorShape<number[]>, TShape>>,
  Expect<
    Equal<
      ToTensorShape<[200, 300, 3]>,
      ShapeErrorType<"to_tensor: input [200, 300, 3] must be 4-D [B, H, W, C] (HWC images)">
    >
  >,
  Expect<Equal<ResizeShape<["B", 3, 200, 300], 224, 224>, ["B", 3, 224, 224]>>,
  Expect<Equal<ResizeShape<readonly [1, 3, "H", "W"], 32, 48>, [1, 3, 32, 48]>>,
  Expect<Equal<ResizeShape<["B", 3, 200, 300], number, 224>, ["B", 3, number, 224]>>,
  Expect<Equal<ResizeShape<number[], 224, 224>, TShape>>,
  Expect<
    Equal<
      ResizeShape<[3, 200, 300], 224, 224>,
      ShapeErrorType<"resize: input [3, 200, 300] must be 4-D [N, C, H, W]">
    >
  >,
  Expect<
    Equal<
      ResizeShape<[1, 3, 200, 300], 0, 224>,
      ShapeErrorType<"resize: height 0 must be a positive integer">
    >
  >,
  Expect<
    Equal<
      ResizeShape<[1, 3, 200, 300], 224, -2>,
      ShapeErrorType<"resize: width -2 must be a positive integer">
    >
  >,
  Expect<
    Equal<
      ResizeShape<[1, 3, 0, 300], 224, 224>,
      ShapeErrorType<"resize: input [1, 3, 0, 300] has an empty height">
    >
  >,
];

/** `unknown` when a rule passed, else its error: the pattern the builder uses. */
type Check<R> = R extends TShape ? unknown : R;

/** A typed front end over the runtime rules, as the builder will expose them. */
function typedResize<const S extends Shape, const H extends number, const W extends number>(
  shape: S & NoInfer<Check<ResizeShape<S, H, W>>>,
  height: H,
  width: W,
): Dim[] {
  return resizeOp.inferShape([shape], { height, width, antialias: false }, "typed_resize");
}

function typedToTensor<const S extends Shape>(shape: S & NoInfer<Check<ToTensorShape<S>>>): Dim[] {
  return toTensorOp.inferShape([shape], {}, "typed_to_tensor");
}

Deno.test("bad ranks and sizes are compile errors and runtime ShapeErrors", () => {
  assert.deepEqual(typedResize(["B", 3, 200, 300], 224, 224), ["B", 3, 224, 224]);
  assert.deepEqual(typedToTensor(["B", 200, 300, 3]), ["B", 3, 200, 300]);
  // @ts-expect-error resize: input [3, 200, 300] must be 4-D [N, C, H, W]
  rejects(() => typedResize([3, 200, 300], 224, 224), "resize", /4-D/);
  // @ts-expect-error resize: height 0 must be a positive integer
  rejects(() => typedResize([1, 3, 200, 300], 0, 224), "resize", /height 0/);
  // @ts-expect-error to_tensor: input [200, 300, 3] must be 4-D [B, H, W, C] (HWC images)
  rejects(() => typedToTensor([200, 300, 3]), "to_tensor", /4-D/);
});
