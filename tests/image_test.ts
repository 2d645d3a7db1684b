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

/** A PNG from unfiltered scanlines (each row gets filter byte 0). */
function handPng(
  ihdr: { width: number; height: number; depth: number; colorType: number; interlace?: number },
  rows: Uint8Array[],
  extra: Uint8Array[] = [],
): Uint8Array {
  const head = new Uint8Array(13);
  const view = new DataView(head.buffer);
  view.setUint32(0, ihdr.width);
  view.setUint32(4, ihdr.height);
  head.set([ihdr.depth, ihdr.colorType, 0, 0, ihdr.interlace ?? 0], 8);
  const raw = concat(rows.flatMap((r) => [new Uint8Array([0]), r]));
  return concat([
    new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", head),
    ...extra,
    chunk("IDAT", new Uint8Array(deflateSync(raw))),
    chunk("IEND", new Uint8Array(0)),
  ]);
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

Deno.test("palette PNGs with 1/2/4-bit indices; indices past PLTE read as black", () => {
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

  const two = handPng({ width: 4, height: 1, depth: 2, colorType: 3 }, [new Uint8Array([0x1b])], [
    plte,
  ]);
  // 0b00_01_10_11: index 3 is past the 3-entry PLTE -> black (Pillow's zeroed palette).
  assert.deepEqual([...decodeImage(two).data], [...colors[0], ...colors[1], ...colors[2], 0, 0, 0]);
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

Deno.test("Adam7-interlaced 8-bit PNG decodes; interlaced sub-byte PNG is refused", () => {
  const rgb = bytes(13 * 11 * 3, 9);
  const png = encodePngRaw({ width: 13, height: 11, channels: 3, depth: 8, data: rgb }, {
    interlace: "Adam7",
  });
  assert.equal(png[28], 1, "test data should be interlaced");
  assert.deepEqual(decodeImage(png).data, rgb);

  const oneBit = handPng({ width: 8, height: 1, depth: 1, colorType: 0, interlace: 1 }, [
    new Uint8Array([0, 0]),
  ]);
  assertImageError(() => decodeImage(oneBit, { source: "adam7.png" }), "adam7.png", /interlac/);
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
    () => decodeImage(good, { source: "big.png", maxPixels: 199 }),
    "big.png",
    /20x10 = 200 pixels, over the limit of 199/,
  );
  assert.equal(decodeImage(good, { maxPixels: 200 }).width, 20);
  assertImageError(
    () => decodeImage(jpeg, { source: "big.jpg", maxPixels: 1000 }),
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
    await assertImageErrorAsync(() => loadImage(dir), dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
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
