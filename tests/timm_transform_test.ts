// io/timm_transform.ts: timm 1.0's eval transform against timm's own output for
// tests/fixtures/image_300x200.png (../shared/fixtures/vit/timm_preprocess_300x200.safetensors,
// when present), torchvision's size and crop arithmetic on odd sizes, portrait and landscape,
// a 1x1 image, gray / gray+alpha / RGBA inputs, zero padding when cropPct > 1.
import assert from "node:assert/strict";
import { loadImage } from "../io/image.ts";
import { resizeBicubicPIL } from "../io/resample.ts";
import { loadSafetensors } from "../io/safetensors.ts";
import {
  centerCropBox,
  IMAGENET_MEAN,
  IMAGENET_STD,
  resizedSize,
  timmEvalCrop,
  timmEvalTransform,
  toRgb,
  type TransformImage,
} from "../io/timm_transform.ts";
import { exists } from "./helpers.ts";

const IMAGE = new URL("./fixtures/image_300x200.png", import.meta.url);
const TIMM = new URL(
  "../../shared/fixtures/vit/timm_preprocess_300x200.safetensors",
  import.meta.url,
);

Deno.test({
  name: "timmEvalTransform equals timm 1.0 exactly on the 300x200 fixture (both normalizations)",
  ignore: !exists(TIMM),
  fn: async () => {
    const { tensors, metadata } = await loadSafetensors(TIMM);
    assert.match(metadata.transform_imagenet, /Resize\(size=248, interpolation=bicubic/);
    const img = await loadImage(IMAGE);
    const crop = timmEvalCrop(img);
    const cases = [
      ["input_imagenet", IMAGENET_MEAN, IMAGENET_STD],
      ["input_mean05", [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]],
    ] as const;
    for (const [name, mean, std] of cases) {
      const want = tensors.get(name);
      assert.ok(want, name);
      assert.deepEqual(want.shape, [1, 3, 224, 224]);
      const got = timmEvalTransform(img, { mean, std });
      assert.deepEqual(got.shape, [1, 3, 224, 224]);
      let maxErr = 0;
      let bytesOff = 0;
      for (let i = 0; i < want.data.length; i++) {
        maxErr = Math.max(maxErr, Math.abs(got.data[i] - want.data[i]));
        // The fixture's 8-bit value before ToTensor/Normalize, recovered from the float.
        const c = Math.floor(i / (224 * 224));
        const byte = Math.round((want.data[i] * std[c] + mean[c]) * 255);
        if (byte !== crop.data[(i % (224 * 224)) * 3 + c]) bytesOff++;
      }
      assert.equal(bytesOff, 0, `${name}: 8-bit values that differ from PIL's`);
      assert.equal(maxErr, 0, `${name}: max |got - timm| = ${maxErr}`);
    }
  },
});

Deno.test("resizedSize: torchvision's shorter-side rule, the long side truncated", () => {
  assert.deepEqual(resizedSize(300, 200, 248), [372, 248]);
  assert.deepEqual(resizedSize(200, 300, 248), [248, 372]); // portrait
  assert.deepEqual(resizedSize(301, 199, 248), [375, 248]); // 375.12
  assert.deepEqual(resizedSize(199, 301, 248), [248, 375]);
  assert.deepEqual(resizedSize(300, 199, 248), [373, 248]); // 373.87: truncated, not 374
  assert.deepEqual(resizedSize(250, 250, 248), [248, 248]);
  assert.deepEqual(resizedSize(1, 1, 248), [248, 248]);
  assert.deepEqual(resizedSize(1000, 3, 248), [82666, 248]);
  assert.throws(() => resizedSize(0, 3, 248), RangeError);
});

Deno.test("centerCropBox: Python's round half to even, zero padding when too small", () => {
  const box = (left: number, top: number, width = 224, height = width) => ({
    left,
    top,
    width,
    height,
  });
  assert.deepEqual(centerCropBox(372, 248, 224), box(74, 12));
  assert.deepEqual(centerCropBox(373, 248, 224), box(74, 12)); // 74.5 -> 74
  assert.deepEqual(centerCropBox(375, 248, 224), box(76, 12)); // 75.5 -> 76
  assert.deepEqual(centerCropBox(248, 375, 224), box(12, 76)); // portrait
  assert.deepEqual(centerCropBox(225, 227, 224), box(0, 2)); // 0.5 -> 0, 1.5 -> 2
  assert.deepEqual(centerCropBox(224, 224, 224), box(0, 0));
  // Smaller than the crop: padded by (224 - w) // 2 before, (224 - w + 1) // 2 after.
  assert.deepEqual(centerCropBox(200, 100, 224), box(-12, -62));
  assert.deepEqual(centerCropBox(201, 99, 224), box(-11, -62));
  assert.deepEqual(centerCropBox(300, 100, 224), box(38, -62));
  assert.deepEqual(centerCropBox(10, 20, 4, 6), box(3, 7, 4, 6));
});

/** A deterministic 8-bit image with `channels` samples per pixel. */
function pattern(width: number, height: number, channels: 1 | 2 | 3 | 4): TransformImage {
  const data = new Uint8Array(width * height * channels);
  for (let i = 0; i < data.length; i++) data[i] = (i * 37 + (i >> 5) * 11) & 255;
  return { width, height, channels, data };
}

Deno.test("timmEvalCrop: resize of the shorter side to 248, then the centre 224 (landscape, portrait)", () => {
  for (const [w, h] of [[301, 199], [199, 301]]) {
    const img = pattern(w, h, 3);
    const [rw, rh] = resizedSize(w, h, 248);
    const resized = resizeBicubicPIL(img.data, w, h, 3, rw, rh);
    const { left, top } = centerCropBox(rw, rh, 224);
    const crop = timmEvalCrop(img);
    assert.deepEqual([crop.width, crop.height], [224, 224]);
    for (const [y, x] of [[0, 0], [223, 223], [100, 17]]) {
      const s = ((y + top) * rw + x + left) * 3;
      assert.deepEqual(
        crop.data.slice((y * 224 + x) * 3, (y * 224 + x) * 3 + 3),
        resized.slice(s, s + 3),
      );
    }
  }
});

Deno.test("timmEvalTransform: a 1x1 image becomes a constant 224x224 image", () => {
  const img: TransformImage = {
    width: 1,
    height: 1,
    channels: 3,
    data: new Uint8Array([10, 128, 250]),
  };
  const t = timmEvalTransform(img);
  const plane = 224 * 224;
  for (let c = 0; c < 3; c++) {
    const want = Math.fround(Math.fround(Math.fround(img.data[c] / 255) - 0.5) / 0.5);
    for (let p = 0; p < plane; p++) assert.equal(t.data[c * plane + p], want);
  }
});

Deno.test("timmEvalTransform: gray, gray+alpha and RGBA convert like PIL's convert('RGB')", () => {
  const gray = pattern(31, 20, 1);
  const rgbFromGray = toRgb(gray);
  for (let p = 0; p < 31 * 20; p++) {
    assert.deepEqual([...rgbFromGray.data.slice(p * 3, p * 3 + 3)], [
      gray.data[p],
      gray.data[p],
      gray.data[p],
    ]);
  }
  const opts = { size: 16, mean: IMAGENET_MEAN, std: IMAGENET_STD };
  assert.deepEqual(timmEvalTransform(gray, opts), timmEvalTransform(rgbFromGray, opts));

  // LA: alpha is dropped, the gray value replicated.
  const la = pattern(31, 20, 2);
  const laGray: TransformImage = {
    width: 31,
    height: 20,
    channels: 1,
    data: la.data.filter((_, i) => i % 2 === 0),
  };
  assert.deepEqual(timmEvalTransform(la, opts), timmEvalTransform(laGray, opts));

  // RGBA: alpha dropped, never composited (a fully transparent pixel keeps its colour).
  const rgba = pattern(31, 20, 4);
  rgba.data[3] = 0;
  const rgb: TransformImage = {
    width: 31,
    height: 20,
    channels: 3,
    data: rgba.data.filter((_, i) => i % 4 !== 3),
  };
  assert.deepEqual(timmEvalTransform(rgba, opts), timmEvalTransform(rgb, opts));

  // A gray source gives three equal planes.
  const g = timmEvalTransform(gray, { size: 16 }).data;
  assert.deepEqual(g.slice(0, 256), g.slice(256, 512));
  assert.deepEqual(g.slice(0, 256), g.slice(512, 768));
});

Deno.test("timmEvalTransform: cropPct 1 on an image already at size skips the resize", () => {
  const img = pattern(24, 24, 3);
  const t = timmEvalTransform(img, { size: 24, cropPct: 1 });
  for (let c = 0; c < 3; c++) {
    for (let p = 0; p < 24 * 24; p++) {
      const x = Math.fround(img.data[p * 3 + c] / 255);
      assert.equal(t.data[c * 576 + p], Math.fround(Math.fround(x - 0.5) / 0.5));
    }
  }
});

Deno.test("timmEvalTransform: cropPct > 1 pads the resized image with zeros", () => {
  const img: TransformImage = {
    width: 40,
    height: 30,
    channels: 3,
    data: new Uint8Array(3600).fill(200),
  };
  // floor(24 / 1.5) = 16: resized to 21x16, then zero-padded to the 24x24 crop.
  const crop = timmEvalCrop(img, { size: 24, cropPct: 1.5 });
  const box = centerCropBox(21, 16, 24);
  assert.deepEqual(box, { left: -1, top: -4, width: 24, height: 24 });
  for (let y = 0; y < 24; y++) {
    for (let x = 0; x < 24; x++) {
      const inside = y >= 4 && y < 20 && x >= 1 && x < 22;
      assert.equal(crop.data[(y * 24 + x) * 3], inside ? 200 : 0, `${x},${y}`);
    }
  }
  const t = timmEvalTransform(img, { size: 24, cropPct: 1.5 });
  assert.equal(t.data[0], -1); // (0 - 0.5) / 0.5
});

Deno.test("timmEvalTransform rejects bad options and data", () => {
  const img = pattern(4, 4, 3);
  assert.throws(() => timmEvalTransform(img, { std: [0.5, 0, 0.5] }), RangeError);
  assert.throws(() => timmEvalTransform(img, { size: 0 }), RangeError);
  assert.throws(() => timmEvalTransform(img, { cropPct: 0 }), RangeError);
  assert.throws(() => timmEvalTransform({ ...img, data: new Uint8Array(5) }), RangeError);
});
