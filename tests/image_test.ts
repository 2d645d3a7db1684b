import assert from "node:assert/strict";
import { deflateSync } from "node:zlib";
import { encode as encodePngRaw } from "npm:fast-png@8.0.0";
import { encode as encodeJpeg } from "npm:jpeg-js@0.4.4";
import {
  type DecodedImage,
  decodeImage,
  encodePng,
  ImageError,
  imageToTensorData,
  loadImage,
  MAX_IMAGE_FILE_BYTES,
  MAX_IMAGE_PIXELS,
  saveImage,
} from "../io/image.ts";
import { loadSafetensors, requireTensor } from "../io/safetensors.ts";

const FIXTURES = new URL("./fixtures/", import.meta.url);
const IMAGE_MODULE = new URL("../io/image.ts", import.meta.url).href;

/** Asserts `fn` throws a one-line ImageError naming `file` (and matching `pattern`). */
function assertImageError(fn: () => unknown, file: string, pattern?: RegExp): ImageError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  return checkImageError(caught, file, pattern);
}

async function assertImageErrorAsync(
  fn: () => Promise<unknown>,
  file: string,
  pattern?: RegExp,
): Promise<ImageError> {
  let caught: unknown;
  try {
    await fn();
  } catch (e) {
    caught = e;
  }
  return checkImageError(caught, file, pattern);
}

function checkImageError(caught: unknown, file: string, pattern?: RegExp): ImageError {
  assert.ok(caught !== undefined, "expected an ImageError, nothing was thrown");
  assert.ok(caught instanceof ImageError, `expected ImageError, got ${String(caught)}`);
  assert.equal(caught.name, "ImageError");
  assert.equal(caught.file, file);
  assert.ok(caught.message.startsWith(`${file}: `), caught.message);
  assert.ok(!caught.message.includes("\n"), `multi-line message: ${caught.message}`);
  if (pattern) assert.match(caught.message, pattern);
  return caught;
}

// --- hand-built PNGs (test data only: IHDR/PLTE/IDAT framing with node:zlib) ---

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  out.set(new TextEncoder().encode(type), 4);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

type Ihdr = { width: number; height: number; depth: number; colorType: number; interlace?: number };

/** A PNG whose IDAT holds `raw` (filter bytes included) deflated. */
function pngFromRaw(ihdr: Ihdr, raw: Uint8Array, extra: Uint8Array[] = []): Uint8Array {
  const head = new Uint8Array(13);
  const view = new DataView(head.buffer);
  view.setUint32(0, ihdr.width);
  view.setUint32(4, ihdr.height);
  head.set([ihdr.depth, ihdr.colorType, 0, 0, ihdr.interlace ?? 0], 8);
  return concat([
    new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", head),
    ...extra,
    chunk("IDAT", new Uint8Array(deflateSync(raw, { level: 9 }))),
    chunk("IEND", new Uint8Array(0)),
  ]);
}

/** A PNG from unfiltered scanlines (each row gets filter byte 0). */
function handPng(ihdr: Ihdr, rows: Uint8Array[], extra: Uint8Array[] = []): Uint8Array {
  return pngFromRaw(ihdr, concat(rows.flatMap((r) => [new Uint8Array([0]), r])), extra);
}

/** MSB-first packing of `depth`-bit samples into one scanline (PNG sub-byte layout). */
function packRow(values: number[], depth: number): Uint8Array {
  const out = new Uint8Array(Math.ceil((values.length * depth) / 8));
  values.forEach((v, i) => {
    const bit = i * depth;
    out[bit >> 3] |= v << (8 - depth - (bit % 8));
  });
  return out;
}

/** The Adam7 stream of a one-sample-per-pixel image (`values[y][x]`), rows unfiltered. */
function adam7Raw(values: number[][], depth: number): Uint8Array {
  const passes = [[0, 0, 8, 8], [4, 0, 8, 8], [0, 4, 4, 8], [2, 0, 4, 4], [0, 2, 2, 4], [
    1,
    0,
    2,
    2,
  ], [0, 1, 1, 2]];
  const height = values.length, width = values[0].length;
  const parts: Uint8Array[] = [];
  for (const [x0, y0, dx, dy] of passes) {
    for (let y = y0; y < height; y += dy) {
      const row: number[] = [];
      for (let x = x0; x < width; x += dx) row.push(values[y][x]);
      if (row.length > 0) parts.push(new Uint8Array([0]), packRow(row, depth));
    }
  }
  return concat(parts);
}

/** Deterministic pseudo-random bytes. */
function bytes(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s >>> 24;
  }
  return out;
}

function pick(data: Uint8Array, stride: number, offsets: number[]): Uint8Array {
  const pixels = data.length / stride;
  const out = new Uint8Array(pixels * offsets.length);
  for (let p = 0; p < pixels; p++) {
    offsets.forEach((o, k) => out[p * offsets.length + k] = data[p * stride + o]);
  }
  return out;
}

/** PIL's Convert.c `L24` luma, written independently of the module. */
function pilLuma(r: number, g: number, b: number): number {
  return Math.floor((r * 19595 + g * 38470 + b * 7471 + 32768) / 65536);
}

// --- fixture: PIL + torchvision ToTensor ---

Deno.test("fixture PNG decodes to exactly PIL/torchvision's to_tensor values", async () => {
  const path = new URL("image_300x200.png", FIXTURES);
  const img = await loadImage(path);
  assert.deepEqual([img.width, img.height, img.channels], [300, 200, 3]);
  assert.ok(img.source?.endsWith("image_300x200.png"));
  const file = await loadSafetensors(new URL("preprocess_300x200.safetensors", FIXTURES));
  const ref = requireTensor(file, "to_tensor", [1, 3, 200, 300]).data;
  const { width: W, height: H } = img;
  let mismatches = 0;
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        const ours = Math.fround(img.data[(y * W + x) * 3 + c] / 255);
        if (ours !== ref[(c * H + y) * W + x]) mismatches++;
      }
    }
  }
  assert.equal(mismatches, 0);

  const t = imageToTensorData(img);
  assert.deepEqual(t.shape, [1, 200, 300, 3]);
  assert.ok(t.data instanceof Float32Array);
  assert.deepEqual(t.data, Float32Array.from(img.data));
});

// --- encodePng round trips ---

Deno.test("encodePng/decodeImage round trip: RGB, gray and RGBA input", () => {
  const rgb = bytes(7 * 5 * 3, 2);
  const back = decodeImage(encodePng({ width: 7, height: 5, channels: 3, data: rgb }));
  assert.deepEqual(back, { width: 7, height: 5, channels: 3, data: rgb });

  const gray = bytes(7 * 5, 3);
  const g1 = decodeImage(encodePng({ width: 7, height: 5, channels: 1, data: gray }), {
    channels: 1,
  });
  assert.deepEqual(g1.data, gray);
  const g3 = decodeImage(encodePng({ width: 7, height: 5, channels: 1, data: gray }));
  assert.deepEqual(g3.data, pick(g3.data, 3, [0, 0, 0]));
  assert.deepEqual(pick(g3.data, 3, [0]), gray);

  const rgba = bytes(7 * 5 * 4, 4);
  const a = decodeImage(encodePng({ width: 7, height: 5, channels: 4, data: rgba }), {
    source: "rgba.png",
  });
  assert.equal(a.source, "rgba.png");
  assert.deepEqual(a.data, pick(rgba, 4, [0, 1, 2]));
});

Deno.test("encodePng rejects bad dimensions, channels and data lengths", () => {
  for (
    const img of [
      { width: 0, height: 1, channels: 3 as const, data: new Uint8Array(0) },
      { width: 2, height: 2, channels: 3 as const, data: new Uint8Array(11) },
      { width: 1, height: 1, channels: 2 as unknown as 3, data: new Uint8Array(2) },
    ]
  ) {
    assert.throws(() => encodePng(img), ImageError);
  }
});

// --- PIL conversions on generated PNGs ---

Deno.test("RGBA PNG: alpha is dropped exactly (not composited)", () => {
  const rgba = bytes(16 * 9 * 4, 5);
  for (let i = 3; i < 40; i += 4) rgba[i] = 0; // fully transparent pixels keep their RGB
  const png = encodePngRaw({ width: 16, height: 9, channels: 4, depth: 8, data: rgba });
  const img = decodeImage(png);
  assert.equal(img.channels, 3);
  assert.deepEqual(img.data, pick(rgba, 4, [0, 1, 2]));
});

Deno.test("grayscale PNGs: replicated to RGB, kept with channels: 1; LA drops alpha", () => {
  const gray = bytes(10 * 4, 6);
  const png = encodePngRaw({ width: 10, height: 4, channels: 1, depth: 8, data: gray });
  const rgb = decodeImage(png);
  assert.equal(rgb.channels, 3);
  for (let p = 0; p < gray.length; p++) {
    assert.deepEqual([...rgb.data.subarray(3 * p, 3 * p + 3)], [gray[p], gray[p], gray[p]]);
  }
  const l = decodeImage(png, { channels: 1 });
  assert.equal(l.channels, 1);
  assert.deepEqual(l.data, gray);

  const la = bytes(10 * 4 * 2, 7);
  const laPng = encodePngRaw({ width: 10, height: 4, channels: 2, depth: 8, data: la });
  assert.deepEqual(decodeImage(laPng, { channels: 1 }).data, pick(la, 2, [0]));
  assert.deepEqual(decodeImage(laPng).data, pick(la, 2, [0, 0, 0]));
});

Deno.test("channels: 1 on RGB uses PIL's rounded ITU-R 601-2 luma (L24)", () => {
  // Anchors from Pillow's tracker: (177,175,175) -> 176 (#5728), (0,1,2) -> 1 (#5824).
  const px = [[177, 175, 175], [0, 1, 2], [255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255]];
  const want = [176, 1, 76, 150, 29, 255];
  const data = new Uint8Array(px.flat());
  const img = decodeImage(encodePng({ width: 6, height: 1, channels: 3, data }), { channels: 1 });
  assert.deepEqual([...img.data], want);

  const rand = bytes(64 * 3, 8);
  const got = decodeImage(encodePng({ width: 64, height: 1, channels: 3, data: rand }), {
    channels: 1,
  });
  for (let p = 0; p < 64; p++) {
    assert.equal(got.data[p], pilLuma(rand[3 * p], rand[3 * p + 1], rand[3 * p + 2]));
  }
});

Deno.test("palette PNGs are expanded through PLTE; tRNS alpha is dropped", () => {
  const palette = [[0, 0, 0, 0], [10, 20, 30, 128], [200, 100, 50, 255], [1, 2, 3, 255]];
  const index = new Uint8Array([0, 1, 2, 3, 3, 2, 1, 0, 2, 2, 1, 1]);
  const png = encodePngRaw({ width: 4, height: 3, channels: 1, depth: 8, data: index, palette });
  assert.equal(png[25], 3, "test data should be an indexed-colour PNG");
  assert.ok(new TextDecoder().decode(png).includes("tRNS"));
  const img = decodeImage(png);
  assert.deepEqual(img.data, new Uint8Array([...index].flatMap((i) => palette[i].slice(0, 3))));
  const l = decodeImage(png, { channels: 1 });
  assert.deepEqual(
    [...l.data],
    [...index].map((i) => pilLuma(...palette[i].slice(0, 3) as [number, number, number])),
  );
});

Deno.test("palette PNGs with 1/2/4/8-bit indices; an index past PLTE reads (i, i, i) like PIL", () => {
  const plte = chunk("PLTE", new Uint8Array([9, 8, 7, 250, 251, 252, 40, 50, 60]));
  // 4-bit: 5 pixels per row -> 3 bytes; indices 0,1,2,1,0 / 2,2,0,0,1
  const four = handPng({ width: 5, height: 2, depth: 4, colorType: 3 }, [
    new Uint8Array([0x01, 0x21, 0x00]),
    new Uint8Array([0x22, 0x00, 0x10]),
  ], [plte]);
  const colors = [[9, 8, 7], [250, 251, 252], [40, 50, 60]];
  const want4 = [0, 1, 2, 1, 0, 2, 2, 0, 0, 1].flatMap((i) => colors[i]);
  assert.deepEqual([...decodeImage(four).data], want4);

  const one = handPng({ width: 3, height: 1, depth: 1, colorType: 3 }, [new Uint8Array([0xa0])], [
    plte,
  ]);
  assert.deepEqual([...decodeImage(one).data], [1, 0, 1].flatMap((i) => colors[i]));

  // Pillow 9.4's palette starts as a grayscale ramp and PLTE overwrites only its first entries,
  // so an index past PLTE reads as (i, i, i), not black.
  const two = handPng({ width: 4, height: 1, depth: 2, colorType: 3 }, [new Uint8Array([0x1b])], [
    plte,
  ]);
  assert.deepEqual([...decodeImage(two).data], [...colors[0], ...colors[1], ...colors[2], 3, 3, 3]);
  const eight = handPng({ width: 4, height: 1, depth: 8, colorType: 3 }, [
    new Uint8Array([2, 3, 200, 255]),
  ], [plte]);
  assert.deepEqual([...decodeImage(eight).data], [
    ...colors[2],
    3,
    3,
    3,
    200,
    200,
    200,
    255,
    255,
    255,
  ]);
  // convert("L") of a gray palette entry is that gray (L24 of (i, i, i) is i).
  assert.deepEqual([...decodeImage(eight, { channels: 1 }).data], [
    pilLuma(40, 50, 60),
    3,
    200,
    255,
  ]);
});

Deno.test("1/2/4-bit grayscale PNGs expand to 0..255 like PIL (1-bit -> 0/255)", () => {
  const cases: [1 | 2 | 4, number[]][] = [[1, [0, 1, 1, 0, 1]], [2, [0, 1, 2, 3, 2]], [
    4,
    [0, 5, 15, 9, 1],
  ]];
  for (const [depth, values] of cases) {
    const perByte = 8 / depth;
    const packed = new Uint8Array(Math.ceil(values.length / perByte));
    values.forEach((v, i) => {
      packed[Math.floor(i / perByte)] |= v << (8 - depth * (1 + (i % perByte)));
    });
    const png = encodePngRaw({ width: 5, height: 1, channels: 1, depth, data: packed });
    const scale = 255 / (2 ** depth - 1);
    const img = decodeImage(png, { channels: 1 });
    assert.deepEqual([...img.data], values.map((v) => v * scale), `depth ${depth}`);
    assert.deepEqual([...decodeImage(png).data], values.flatMap((v) => Array(3).fill(v * scale)));
  }
});

Deno.test("16-bit PNGs: RGB/RGBA/LA keep the high byte, gray is clipped like PIL mode I", () => {
  const rgb16 = new Uint16Array([0x12ab, 0xff00, 0x00ff, 0x8080, 0x0001, 0xffff]);
  const rgbPng = encodePngRaw({ width: 2, height: 1, channels: 3, depth: 16, data: rgb16 });
  assert.deepEqual([...decodeImage(rgbPng).data], [0x12, 0xff, 0x00, 0x80, 0x00, 0xff]);

  const rgba16 = new Uint16Array([0x1234, 0x5678, 0x9abc, 0x0000, 0xfedc, 0xba98, 0x7654, 0xffff]);
  const rgbaPng = encodePngRaw({ width: 2, height: 1, channels: 4, depth: 16, data: rgba16 });
  assert.deepEqual([...decodeImage(rgbaPng).data], [0x12, 0x56, 0x9a, 0xfe, 0xba, 0x76]);

  const la16 = new Uint16Array([0x4321, 0x0000, 0xabcd, 0xffff]);
  const laPng = encodePngRaw({ width: 2, height: 1, channels: 2, depth: 16, data: la16 });
  assert.deepEqual([...decodeImage(laPng, { channels: 1 }).data], [0x43, 0xab]);

  // PIL opens 16-bit gray as mode "I"; convert("RGB"/"L") clips to 0..255 (i2rgb / i2l).
  const gray16 = new Uint16Array([0, 100, 255, 256, 65535]);
  const grayPng = encodePngRaw({ width: 5, height: 1, channels: 1, depth: 16, data: gray16 });
  assert.deepEqual([...decodeImage(grayPng, { channels: 1 }).data], [0, 100, 255, 255, 255]);
  assert.deepEqual(
    [...decodeImage(grayPng).data],
    [0, 100, 255, 255, 255].flatMap((v) => [v, v, v]),
  );
});

Deno.test("Adam7-interlaced PNGs decode: 8-bit RGB, 1/2/4-bit gray and a 4-bit palette", () => {
  const rgb = bytes(13 * 11 * 3, 9);
  const png = encodePngRaw({ width: 13, height: 11, channels: 3, depth: 8, data: rgb }, {
    interlace: "Adam7",
  });
  assert.equal(png[28], 1, "test data should be interlaced");
  assert.deepEqual(decodeImage(png).data, rgb);

  // Sub-byte samples: each pass packs its own rows (fast-png 8.0.0 got these wrong).
  for (const depth of [1, 2, 4]) {
    const values = Array.from(
      { length: 11 },
      (_, y) => Array.from({ length: 13 }, (_, x) => (x * 7 + y * 3 + (x * y) % 5) % (1 << depth)),
    );
    const ihdr = { width: 13, height: 11, depth, colorType: 0, interlace: 1 };
    const img = decodeImage(pngFromRaw(ihdr, adam7Raw(values, depth)), { channels: 1 });
    const scale = 255 / (2 ** depth - 1);
    assert.deepEqual([...img.data], values.flat().map((v) => v * scale), `depth ${depth}`);
    // Same pixels, not interlaced.
    const flat = handPng({ ...ihdr, interlace: 0 }, values.map((r) => packRow(r, depth)));
    assert.deepEqual(decodeImage(flat, { channels: 1 }).data, img.data);
  }
  const plte = chunk("PLTE", new Uint8Array([10, 20, 30, 40, 50, 60]));
  const index = [[0, 1, 5, 1, 0], [1, 1, 0, 15, 0], [0, 0, 1, 1, 5]];
  const pal = decodeImage(
    pngFromRaw({ width: 5, height: 3, depth: 4, colorType: 3, interlace: 1 }, adam7Raw(index, 4), [
      plte,
    ]),
  );
  const lut = (i: number): number[] => i === 0 ? [10, 20, 30] : i === 1 ? [40, 50, 60] : [i, i, i];
  assert.deepEqual([...pal.data], index.flat().flatMap(lut));
});

// --- JPEG ---

Deno.test("JPEG (jpeg-js, quality 95) decodes close to the smooth source image", () => {
  const W = 64, H = 48;
  const rgba = new Uint8Array(W * H * 4);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const i = (y * W + x) * 4;
      rgba[i] = Math.round((255 * x) / (W - 1));
      rgba[i + 1] = Math.round((255 * y) / (H - 1));
      rgba[i + 2] = Math.round(128 + 100 * Math.sin((x + y) / 10));
      rgba[i + 3] = 255;
    }
  }
  const jpeg = new Uint8Array(encodeJpeg({ width: W, height: H, data: rgba }, 95).data);
  const img = decodeImage(jpeg, { source: "smooth.jpg" });
  assert.deepEqual([img.width, img.height, img.channels], [W, H, 3]);
  // JPEG is lossy (quantised DCT) and decoders differ in IDCT/rounding by a few levels, so
  // exact equality is meaningless: on a smooth image at q95, every sample should be within
  // 8 levels of the source and the mean error under 2 levels.
  const src = pick(rgba, 4, [0, 1, 2]);
  let max = 0, sum = 0;
  for (let i = 0; i < src.length; i++) {
    const d = Math.abs(img.data[i] - src[i]);
    max = Math.max(max, d);
    sum += d;
  }
  assert.ok(max <= 8, `max abs diff ${max}`);
  assert.ok(sum / src.length < 2, `mean abs diff ${sum / src.length}`);

  const gray = decodeImage(jpeg, { channels: 1 });
  assert.equal(gray.channels, 1);
  for (let p = 0; p < W * H; p++) {
    const d = img.data.subarray(3 * p, 3 * p + 3);
    assert.equal(gray.data[p], pilLuma(d[0], d[1], d[2]));
  }
});

/**
 * JPEGs written and decoded by libjpeg-turbo 2.1.5 (the library of PIL 9.4 on Debian bookworm),
 * decoded with libjpeg's defaults, which are PIL's (`JpegDecode.c` sets no DCT method and keeps
 * fancy upsampling): the reference pixels PIL's `convert("RGB")` gives. Saturated 3x3 colour
 * patches at odd sizes, so chroma edges and the image edges are both exercised.
 */
const LIBJPEG_CASES: { name: string; width: number; height: number; jpeg: string; rgb: string }[] =
  [
    {
      name: "4:2:0 (2x2 luma, h2v2)",
      width: 27,
      height: 13,
      jpeg:
        "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAMCAgMCAgMDAwMEAwMEBQgFBQQEBQoHBwYIDAoMDAsKCwsNDhIQDQ4RDg" +
        "sLEBYQERMUFRUVDA8XGBYUGBIUFRT/2wBDAQMEBAUEBQkFBQkUDQsNFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQU" +
        "FBQUFBQUFBQUFBQUFBQUFBQUFBQUFBT/wAARCAANABsDASIAAhEBAxEB/8QAFwAAAwEAAAAAAAAAAAAAAAAAAQUGCP" +
        "/EAC4QAAEEAQIEBAQHAAAAAAAAAAIBAwQFBgcRCBIUIQATIjEVGCSUMkJVV4HU4//EABYBAQEBAAAAAAAAAAAAAAAA" +
        "AAQDBv/EACMRAAMAAgIABwEBAAAAAAAAAAECAwQFERIABhMUISIyByX/2gAMAwEAAhEDEQA/AFtHpRpvIyOJq7gV/b" +
        "3enVAJV9jczNm/IlmJB5fkky26SbSY/cQVPX79i2qdLdW14jrLM662KMxNwN4Y+DNVrTjXxRwidFpJauKSepY0buis" +
        "onOe+35YrSOxDhr4dcnt58cc2oItskiTjcleniyyc6ZkVMVRwdxJQNFUF7gPtsio71R6HRbSmJnOPVseul6o0r11Fb" +
        "rAGG5QmTAvNoDoJu6ray05TRG1RWt0RN+zM3VZGrzvYWAGVgSSOHlN9jTvRlYOqnsAUo4HKz4J5JI+PDaU2O52uw2W" +
        "vj/tQb29JMy+naa8UqxPIAoJUoWPqhWRFVF7/oaKNakafcYecZPcY/Bh3EyiGI+wrwOMin0SjyoDqruotiv4lTuv8K" +
        "et4P8A91sm+wkf0PF5w511jxB6AYtVOXUqmzNo5M6dmxEUmxsGgkvNiw65zA4QoJtInM4SIjAJt2Tlxv8ALe3+uj9j" +
        "/p4hi+SsT+n7LJ1tNi+Jma1ZSyAn4axDJRl5R/kvJyT2IPI48anyUNy1MvO8g0Jxm6TaAIQQaXYEKadQUJJEwCxVU+" +
        "zEkE//2Q==",
      rgb:
        "+gAA6AgssQ9yUgCOGQDNACKUK+JjGPEAQeYAt/8a5f8P/95m2Cilzxz0hUHWhb3/Kuf/LuvvACQvGg0XHBAU+O3x+e" +
        "33/9ri0xMS/gEA/gMA7w4A2xMWqBJcVwCBJQDCABuaI9RsFfAQQOMAsv803v8n/993zi2dyCHhiUHHkbH+Ud32Ttzm" +
        "ABs5FRAuFhoj4/Pp4PXi/+vPviEA6g8A7Q8AyyUAuB8AqitGUwBbUAC9EgyiKMuUEe1NNdczsP9x4f9p/9aOuDiNuS" +
        "69nk20uKThkrzMjMDVAQ9YAgxTABsrxv/muv/C4v+ilD4AwioAyiYA/9c0/9Fg/8K1tzyXtiLweT/sUuflHPmcSuqK" +
        "AEEAASIALBAA/9j//8f//8D/gDNdczVAaT9jHQ6DAxiLADJPUL+MPc9QYMkm//FQ/9w+/9Y8//AV/+VE/8uYxzd/3h" +
        "PeozP7U9X/HPnoRePKADYaACIHGBIE++Hs/9/4/83pryU8ySAnoRNLJwCdABW6ACtdN8eKFOE8N+YN1v8w//Qc/+0e" +
        "+vw//etb/9Gbsz9s2SrFqjDRhbHuZdTnfczrABE9CRlVCxs8zf3V6P/A/+qwlTIAwCEAuxosWQClGwDCACR1N8CiDu" +
        "1sGuYvwf9Z8vpF+/VFFxoAHBoAKBgA/+Ds/9T//9H/ni82mi85eSxyNgSBEQClACODRMxqQNsbZMQK4/9N//c7/8d7" +
        "0iG3wCn/ZkrDe9T+J+zYMu+3ACwAGxkAHhgAERErDxUlCRwa4Pjq4Pvq/+rNuCAA0xMIrRdfVwCDMgDPABecI9ZuE/" +
        "QUOuAEsP873P8e/+R02yKZ1xvhjUjFjbT5Utj1V9zrAB06Fg8xEhIuCwJrBQ1YAB4xxf/nuP/F4f+njToAuy0AqCBG" +
        "YwBkTQCzDQqZIdCVCvRVK9Q5rf932P9W/+ePry2FvjDEkUylua3bnLjOmbzaCg5XDglnBA1qFw65Ag+PAC5WTbOER9" +
        "hVW8Ud/+1S/8xo/7m4vjOWviruglPxON3NFv+eTveaADsAAyoALBcA/9n//8z//9b/bi5GdzQ7bzdeIQV8DQelBQur" +
        "AADfABS/ACxnQ8aQJd0xR+AA5/8t/+dG/8uhyzB83BTXnDjqUN34EvfMSuvMADEWASQGEQsA/+X4/935/9LfpDIxvB" +
        "4SqB9JMgCfDAHjDAHkLADrFwHFACWAQLunHeJeNOUnw/9E/+1g/9CmvUF1zCC0pzbCjcDfZdfPdcHYAB9MARFNDR1B" +
        "1P/l2/6+//GujDwAticAtyMjTACYMQDrNADqzhX/rSn2a1HWdcX/NuzfOee0AC0AHhUALA0L/9n2/+P//8r2mCopni" +
        "82hC1xNwB2GAWsAB59OMdvQeEpZssN2/9C/+4s/9SCxCu7zxT/0hP/",
    },
    {
      name: "4:2:2 (2x1 luma, h2v1)",
      width: 13,
      height: 7,
      jpeg:
        "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAMCAgMCAgMDAwMEAwMEBQgFBQQEBQoHBwYIDAoMDAsKCwsNDhIQDQ4RDg" +
        "sLEBYQERMUFRUVDA8XGBYUGBIUFRT/2wBDAQMEBAUEBQkFBQkUDQsNFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQU" +
        "FBQUFBQUFBQUFBQUFBQUFBQUFBQUFBT/wAARCAAHAA0DASEAAhEBAxEB/8QAFQABAQAAAAAAAAAAAAAAAAAABQb/xA" +
        "AhEAABAwQCAwEAAAAAAAAAAAACAwQFAQYHERMhCBIxIv/EABUBAQEAAAAAAAAAAAAAAAAAAAMF/8QAIBEAAgICAgID" +
        "AAAAAAAAAAAAAQIDEQQFBhIHIRQiI//aAAwDAQACEQMRAD8ANg8UY3cXG0y7YU/LzeOoASj5GZeaT4HZiQcfCSKapU" +
        "05b9iFafv70Wq7EeUIDyenLthMgvxhYOyXIMrccwaCoKvG6hKhU3HuKuy9WyFaaFPsz6+UEMcpDDp+Z5x65mpxlSVB" +
        "7jQSPLELAtnJaevzc16JFA3a3e+l4zyp/I6hfjSxKjuwJUZHd+8YRSJOojeNg1FbY/c0QP/Z",
      rgb:
        "+gAA5QooqhRuSwCQFgDYACKhHOloC/cAPuYAu/8c6f8H/9xe3yKi/wEF6QcssApsVwCQFwDSACGfINlXG/IAQuEAuv" +
        "8i8f8S/91e3iGX7wYB0gYhrx55PwCCHwLaACObKddRJ/MAS9wAyP8u4fsE/+Nl2yKZ//oE/+o0/8iT0zN55BLJny7g" +
        "Vd3/EPDmSOLiACwwAyIdDRcO4fnr//wA/+4w/8yM0DN28AzVsyz1VNT/G/b4Q9rhAC0zBB4VFxMQ8/L///8D/+0t/8" +
        "iLzzBz8RrZpyzvUMX/HvT+Se3mAC8nABkgGhEW9e/fHAoaGg8fFBsl5O746u32/9/k1RoV5gwkrxBsTgCMGwDVACel" +
        "FOFY",
    },
    {
      name: "4:4:0 (1x2 luma, h1v2)",
      width: 9,
      height: 10,
      jpeg:
        "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAMCAgMCAgMDAwMEAwMEBQgFBQQEBQoHBwYIDAoMDAsKCwsNDhIQDQ4RDg" +
        "sLEBYQERMUFRUVDA8XGBYUGBIUFRT/2wBDAQMEBAUEBQkFBQkUDQsNFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQU" +
        "FBQUFBQUFBQUFBQUFBQUFBQUFBQUFBT/wAARCAAKAAkDARIAAhEBAxEB/8QAFwAAAwEAAAAAAAAAAAAAAAAAAwUGCP" +
        "/EACgQAAEDAgQEBwAAAAAAAAAAAAIBBAUDBwAGERMJFyFWIjFBlJXS0//EABYBAQEBAAAAAAAAAAAAAAAAAAUDCP/E" +
        "ACsRAAIABAMECwAAAAAAAAAAAAECAwQGEQAFEgcTIUEUFhgiMVRVk6LS1P/aAAwDAQACEQMRAD8AWwdqLbuMxtLu5C" +
        "n5ebt1ACUfIzLzSnsOzEg29kqNOqSaOW/UQVPH59C0Jw5aQTOUnGXn4C+gHc25NzFOU3GtYhaUiFTpLqJKhACoqp0U" +
        "RX0TBtQT0bZhT8xR4PTZaYKxm33jcsihe5pFgYSsOdyeWEp/M4W0vMIdK1LCLiYXjHRtMdFTVECozK6AFk43RuDMBY" +
        "2ItOads+5K/tK35Y1byXt92Jln4dv9MZ964Zb6NL/P7Yt2ZKD8zO+9A/Jj/9k=",
      rgb:
        "+gAA/wMB9wIBBQT1AAf9BgD7D/8MA/kAAP8A7hEA6xIA4woAHQDxBgDtGgD4A/QcAPsbAPwfxScAtiYAyzEAPgDeRw" +
        "DdQQDuAO1SAP5QAPJV/9k8/9pE/9Y3vxz/vRn/sBn/Hf+xAP+eDv+t//US/+0g/+8Q5A3/7gX/5A//EP/oAv/lBf/m" +
        "8f8//+1E+fMv0hra6hzg0h3OWM3XW9veWdnaEBsAIhYAISQA/9D//83//97/qyovqCspoycnDBE7EhA1EhYi3frk5/" +
        "nh1//U5gkA6wwA6g4ACAVsBxFqDgtkrP+0u/+5t/+2viMAzisAxigAEguPARCFEw6MP89JTs9RScpL/8pS/8NM/8tI",
    },
    {
      name: "RGB, Adobe transform 0",
      width: 8,
      height: 8,
      jpeg:
        "/9j/7gAOQWRvYmUAZAAAAAAA/9sAQwADAgIDAgIDAwMDBAMDBAUIBQUEBAUKBwcGCAwKDAwLCgsLDQ4SEA0OEQ4LCx" +
        "AWEBETFBUVFQwPFxgWFBgSFBUU/8AAEQgACAAIA1IRAEcRAEIRAP/EABUAAQEAAAAAAAAAAAAAAAAAAAYF/8QAIxAA" +
        "AQQCAgICAwAAAAAAAAAAAQIDBAUGBwgSCREiMRQhMv/aAAwDUgBHAEIAAD8Aa8utC4H5D8FtdtacubjMs8pY8bHK2t" +
        "ZWiugvFuSl94OJmMtq7JZmOL7BxKT6QB7IIIrTertX6A5KYjvXXGRXF7x3xaPIjZHmF2Oz0GzfjyI6WBGSw1IcSfyo" +
        "PyQwsAvElXpKukrhVSa9tPGdteo25e2GLYPIzFKrGyq0FyQyAKss9Alp7+nktpPwV+lH6+x//9k=",
      rgb:
        "/wYB/wAA/wAFAwP/AAD/AAL/AP4CAf0A/wAA/gMA/wUAAAD6BAL/AgD/AP8AAv8D+wED/wQG/QAAAgD+AgP/AAP/AP" +
        "4AAP0A//8A//0A+v8E/wD//QL//wD6Cfv/AP////wG//sB/f8A/Qb//QD9/wj/AP//APj8/f8A//8A//8G+AD6/wL/" +
        "/wD/AP/9Af/9FBAZDhcWEhcS9ujx8fTx8vLr/AAF/wACEhUSHBcTDxEW9PHs6vPy8Or3/wQA/AED",
    },
  ];

function fromBase64(text: string): Uint8Array {
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

Deno.test("JPEG 4:2:0, 4:2:2, 4:4:0 and Adobe RGB match libjpeg (PIL) within the IDCT's 3 levels", () => {
  for (const c of LIBJPEG_CASES) {
    const img = decodeImage(fromBase64(c.jpeg), { source: c.name });
    const want = fromBase64(c.rgb);
    assert.deepEqual([img.width, img.height, img.data.length], [c.width, c.height, want.length]);
    let max = 0, sum = 0;
    for (let i = 0; i < want.length; i++) {
      const d = Math.abs(img.data[i] - want[i]);
      max = Math.max(max, d);
      sum += d;
    }
    // The upsampling and colour conversion are libjpeg's; what is left is jpeg-js's IDCT (not
    // libjpeg's islow), off by up to 3 levels on some samples. Replicated chroma (jpeg-js's own
    // upsampler) was off by up to 141, mean 23, on these images.
    assert.ok(max <= 3, `${c.name}: max abs diff ${max}`);
    assert.ok(sum / want.length < 0.25, `${c.name}: mean abs diff ${sum / want.length}`);
  }
});

// --- errors ---

Deno.test("corrupt, unknown and too-large inputs raise one-line ImageErrors naming the file", () => {
  const good = encodePng({ width: 20, height: 10, channels: 3, data: bytes(600, 10) });

  assertImageError(
    () => decodeImage(good.slice(0, good.length >> 1), { source: "trunc.png" }),
    "trunc.png",
    /truncated PNG/,
  );
  assertImageError(
    () => decodeImage(good.slice(0, 20), { source: "header.png" }),
    "header.png",
    /corrupt PNG/,
  );
  const flipped = good.slice();
  flipped[good.length - 20] ^= 0xff; // inside IDAT: CRC mismatch
  assertImageError(() => decodeImage(flipped, { source: "flip.png" }), "flip.png", /CRC/);

  // Bad zlib data with a valid CRC, so the inflater itself must fail.
  const badZlib = handPng({ width: 2, height: 1, depth: 8, colorType: 2 }, [new Uint8Array(6)]);
  const idat = badZlib.indexOf(0x49, 33); // "I" of IDAT
  const len = new DataView(badZlib.buffer).getUint32(idat - 4);
  badZlib.fill(0xff, idat + 4, idat + 4 + len);
  new DataView(badZlib.buffer).setUint32(
    idat + 4 + len,
    crc32(badZlib.subarray(idat, idat + 4 + len)),
  );
  assertImageError(() => decodeImage(badZlib, { source: "zlib.png" }), "zlib.png", /corrupt PNG/);

  const rgba = new Uint8Array(32 * 32 * 4).fill(200);
  const jpeg = new Uint8Array(encodeJpeg({ width: 32, height: 32, data: rgba }, 90).data);
  assertImageError(
    () => decodeImage(jpeg.slice(0, jpeg.length >> 1), { source: "trunc.jpg" }),
    "trunc.jpg",
    /truncated JPEG/,
  );
  const garbage = new Uint8Array([0xff, 0xd8, ...bytes(200, 11)]);
  assertImageError(() => decodeImage(garbage, { source: "junk.jpg" }), "junk.jpg", /JPEG/);

  const gif = new TextEncoder().encode("GIF89a\x01\x00\x01\x00");
  assertImageError(
    () => decodeImage(gif, { source: "cat.gif" }),
    "cat.gif",
    /unsupported image format \(PNG and JPEG are supported\).*GIF/,
  );
  assertImageError(() => decodeImage(new Uint8Array(0), { source: "e.png" }), "e.png", /empty/);

  assertImageError(
    () => decodeImage(good, { source: "big.png", maxPixels: 99 }),
    "big.png",
    /20x10 = 200 pixels, over the limit of 198/,
  );
  assert.equal(decodeImage(good, { maxPixels: 200 }).width, 20);
  assertImageError(
    () => decodeImage(jpeg, { source: "big.jpg", maxPixels: 500 }),
    "big.jpg",
    /32x32 = 1024 pixels/,
  );
  // A header claiming a huge size is refused before anything is allocated.
  const huge = good.slice();
  new DataView(huge.buffer).setUint32(16, 1_000_000);
  new DataView(huge.buffer).setUint32(20, 1_000_000);
  assertImageError(() => decodeImage(huge, { source: "huge.png" }), "huge.png", /over the limit/);
});

Deno.test("loadImage: missing file and directories are ImageErrors", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const missing = `${dir}/nope.png`;
    await assertImageErrorAsync(() => loadImage(missing), missing, /no such file/);
    await assertImageErrorAsync(() => loadImage(dir), dir, /is a directory/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "loadImage refuses a FIFO and a device in one line, without blocking or reading them",
  ignore: Deno.build.os === "windows",
}, async () => {
  const dir = await Deno.makeTempDir();
  try {
    const fifo = `${dir}/pipe.png`;
    const made = await new Deno.Command("mkfifo", { args: [fifo] }).output();
    assert.equal(made.code, 0, "mkfifo failed");
    let timer: ReturnType<typeof setTimeout> | undefined;
    const blocked = new Promise<"blocked">((resolve) => {
      timer = setTimeout(() => resolve("blocked"), 5000);
    });
    const result = await Promise.race([loadImage(fifo).then(() => "decoded", (e) => e), blocked]);
    clearTimeout(timer);
    if (result === "blocked") {
      (await Deno.open(fifo, { write: true })).close(); // release the reader stuck in open()
      assert.fail("loadImage blocked on a FIFO");
    }
    checkImageError(result, fifo, /is a FIFO \(named pipe\), not a regular file/);
    // A character device: refused from its stat, never read (reading /dev/zero never ends).
    await assertImageErrorAsync(() => loadImage("/dev/zero"), "/dev/zero", /character device/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadImage bounds the bytes it reads: maxFileBytes, default 256 MiB", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/small.png`;
    const png = encodePng({ width: 4, height: 4, channels: 3, data: bytes(48, 13) });
    await Deno.writeFile(path, png);
    await assertImageErrorAsync(
      () => loadImage(path, { maxFileBytes: png.length - 1 }),
      path,
      new RegExp(
        `the file is ${png.length} bytes, over the limit of ${png.length - 1} .*maxFileBytes`,
      ),
    );
    assert.equal((await loadImage(path, { maxFileBytes: png.length })).width, 4);
    assert.equal(MAX_IMAGE_FILE_BYTES, 256 * 1024 * 1024);
    // A sparse file just over the default: refused from its size, without reading 256 MiB.
    const big = `${dir}/big.png`;
    await Deno.writeFile(big, png);
    await Deno.truncate(big, MAX_IMAGE_FILE_BYTES + 1);
    await assertImageErrorAsync(() => loadImage(big), big, /over the limit of 268435456/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// --- decompression bombs (PIL's Image.MAX_IMAGE_PIXELS) ---

/** Runs `fn` with a recording `onWarning`; returns the messages. */
function warningsOf(fn: (onWarning: (m: string) => void) => unknown): string[] {
  const seen: string[] = [];
  fn((m) => seen.push(m));
  return seen;
}

Deno.test("maxPixels: PIL's 89,478,485 by default; warns above it, refuses above twice it", () => {
  assert.equal(MAX_IMAGE_PIXELS, 89_478_485);
  const good = encodePng({ width: 20, height: 10, channels: 3, data: bytes(600, 14) });
  // Over maxPixels, up to twice it: decodes, with one one-line warning naming the file.
  let img: DecodedImage | undefined;
  const warned = warningsOf((onWarning) => {
    img = decodeImage(good, { source: "w.png", maxPixels: 150, onWarning });
  });
  assert.equal(img?.width, 20);
  assert.equal(warned.length, 1);
  assert.match(warned[0], /^w\.png: image is 20x10 = 200 pixels, over maxPixels 150 /);
  assert.match(warned[0], /DecompressionBombWarning.*maxPixels.*--max-image-pixels/);
  assert.ok(!warned[0].includes("\n"));
  assert.deepEqual(warningsOf((onWarning) => decodeImage(good, { maxPixels: 200, onWarning })), []);
  // The default goes to console.warn.
  const originalWarn = console.warn;
  const logged: unknown[] = [];
  console.warn = (...args: unknown[]) => logged.push(args.join(" "));
  try {
    decodeImage(good, { maxPixels: 199 });
  } finally {
    console.warn = originalWarn;
  }
  assert.equal(logged.length, 1);

  // The default limit: a 9500x9500 header (90.25 MP) warns (its tiny IDAT then fails as short,
  // long before 90 MP are allocated).
  const header = handPng({ width: 9500, height: 9500, depth: 1, colorType: 0 }, [
    new Uint8Array(2),
  ]);
  const seen: string[] = [];
  assertImageError(
    () => decodeImage(header, { source: "9500.png", onWarning: (m) => seen.push(m) }),
    "9500.png",
    /pixel data is short/,
  );
  assert.equal(seen.length, 1);
  assert.match(seen[0], /9500x9500 = 90250000 pixels, over maxPixels 89478485/);
});

Deno.test("a 20000x20000 PNG bomb (48 KB) and JPEG header are refused before inflating", () => {
  // 1-bit gray, all zero: 50 MB of scanlines deflate to about 48 KB, and would decode to 1.2 GB.
  const rowBytes = 20000 / 8;
  const bomb = pngFromRaw(
    { width: 20000, height: 20000, depth: 1, colorType: 0 },
    new Uint8Array(20000 * (rowBytes + 1)),
  );
  assert.ok(bomb.length < 100_000, `bomb is ${bomb.length} bytes`);
  const err = assertImageError(
    () => decodeImage(bomb, { source: "bomb.png", onWarning: () => assert.fail("warned") }),
    "bomb.png",
    /image is 20000x20000 = 400000000 pixels, over the limit of 178956970 \(twice maxPixels 89478485/,
  );
  assert.match(err.message, /raise the maxPixels option \(examples\/vit\.ts: --max-image-pixels\)/);
  // Raising the limit is the fix the message names (here it then fails on the bogus IDAT).
  assertImageError(
    () => decodeImage(bomb.slice(0, 33), { source: "b.png", maxPixels: 4e8, onWarning() {} }),
    "b.png",
    /truncated PNG/,
  );

  const small = new Uint8Array(
    encodeJpeg({ width: 8, height: 8, data: new Uint8Array(256) }, 90).data,
  );
  const sof = small.findIndex((b, i) => b === 0xff && small[i + 1] === 0xc0);
  const huge = small.slice();
  new DataView(huge.buffer).setUint16(sof + 5, 20000);
  new DataView(huge.buffer).setUint16(sof + 7, 20000);
  assertImageError(
    () => decodeImage(huge, { source: "bomb.jpg" }),
    "bomb.jpg",
    /20000x20000 = 400000000 pixels, over the limit of 178956970.*--max-image-pixels/,
  );
});

Deno.test("PNG inflate is bounded by the header's size: a lying header cannot inflate more", () => {
  // The header says 4x4 gray (4 rows of 1 + 4 bytes), the IDAT inflates to 5 MB.
  const liar = pngFromRaw({ width: 4, height: 4, depth: 8, colorType: 0 }, new Uint8Array(5e6));
  assertImageError(
    () => decodeImage(liar, { source: "liar.png" }),
    "liar.png",
    /corrupt PNG: image data inflates past the 20 bytes its header's size needs/,
  );
});

// --- saving ---

Deno.test("saveImage writes atomically; a missing directory leaves nothing behind", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const img: DecodedImage = { width: 3, height: 2, channels: 3, data: bytes(18, 12) };
    await saveImage(`${dir}/out.png`, img);
    assert.deepEqual((await loadImage(`${dir}/out.png`)).data, img.data);
    const names = [];
    for await (const e of Deno.readDir(dir)) names.push(e.name);
    assert.deepEqual(names, ["out.png"]);

    const target = `${dir}/missing/out.png`;
    await assertImageErrorAsync(() => saveImage(target, img), target, /directory does not exist/);
    const after = [];
    for await (const e of Deno.readDir(dir)) after.push(e.name);
    assert.deepEqual(after, ["out.png"]);

    // Invalid pixels: rejected before touching the disk, existing file intact.
    await assertImageErrorAsync(
      () => saveImage(`${dir}/out.png`, { ...img, data: new Uint8Array(5) }),
      `${dir}/out.png`,
    );
    assert.deepEqual((await loadImage(`${dir}/out.png`)).data, img.data);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("permission errors name --allow-read / --allow-write", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const script = `${dir}/probe.ts`;
    await Deno.writeTextFile(
      script,
      `import { loadImage, saveImage } from ${JSON.stringify(IMAGE_MODULE)};
const out: string[] = [];
for (const f of [() => loadImage("/x/in.png"), () => saveImage("/x/out.png", { width: 1, height: 1, channels: 1, data: new Uint8Array(1) })]) {
  try { await f(); out.push("no error"); } catch (e) { out.push(\`\${(e as Error).name}|\${(e as Error).message}\`); }
}
console.log(JSON.stringify(out));
`,
    );
    const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--no-prompt", "--no-lock", "--no-config", script],
      cwd: dir,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(stdout);
    assert.equal(code, 0, new TextDecoder().decode(stderr));
    const [read, write] = JSON.parse(text) as string[];
    assert.match(read, /^ImageError\|\/x\/in\.png: .*--allow-read/);
    assert.match(write, /^ImageError\|\/x\/out\.png: .*--allow-write/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
