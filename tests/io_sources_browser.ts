// The page side of tests/io_sources_test.ts's Chromium test: the HTML that loads the browser
// bundle, and the script run in it.

/** The page: nothing but a title; the script imports /tessera.js itself. */
export const INDEX_HTML = `<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,">
<title>tessera io sources</title>`;

/**
 * Run in the page (as a string, so this Deno-typed file needs no DOM types): draws /img.png onto
 * a canvas and reads it back through imageFromPixels from every kind of source; loads the weights
 * and the PNG by URL (decoded in the page: its inflate is fflate, not node:zlib); collects the
 * one-line errors of a path and a 404.
 */
export const PAGE_SCRIPT = `(async () => {
  const t = await import("/tessera.js");
  const pixels = (r) => ({ width: r.width, height: r.height, channels: r.channels, data: Array.from(r.data) });
  const img = new Image();
  img.src = "/img.png";
  await img.decode();
  const w = img.naturalWidth, h = img.naturalHeight;
  const canvas = document.createElement("canvas");
  canvas.width = w;
  canvas.height = h;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(img, 0, 0);
  const imageData = ctx.getImageData(0, 0, w, h);
  const bitmap = await createImageBitmap(img);
  const offscreen = new OffscreenCanvas(w, h);
  offscreen.getContext("2d").drawImage(bitmap, 0, 0);
  const pending = new Image();
  pending.src = "/chunked/img.png"; // not awaited: imageFromPixels waits for it
  const sources = {
    imageData, canvas, bitmap, offscreen, img, pending,
    plain: { width: w, height: h, data: imageData.data },
  };
  const out = { features: { offscreen: typeof OffscreenCanvas, imageData: typeof ImageData } };
  for (const [name, source] of Object.entries(sources)) {
    out[name] = pixels(await t.imageFromPixels(source));
  }
  out.gray = pixels(await t.imageFromPixels(canvas, { channels: 1 }));
  out.loaded = pixels(await t.loadImage(new URL("/img.png", location.href)));
  const progress = [];
  const weights = await t.loadSafetensors(new URL("/chunked/w.safetensors", location.href), {
    onProgress: (loaded, total) => progress.push([loaded, total ?? null]),
  });
  out.weights = {
    source: weights.source,
    metadata: weights.metadata,
    tensors: [...weights.tensors].map(([name, v]) => [name, v.shape, Array.from(v.data)]),
    progress,
  };
  const errors = {};
  for (const [name, f] of [
    ["imagePath", () => t.loadImage("img.png")],
    ["weightsPath", () => t.loadSafetensors("w.safetensors")],
    ["notFound", () => t.loadSafetensors(new URL("/missing.safetensors", location.href))],
    ["notImage", () => t.imageFromPixels(42)],
  ]) {
    try {
      await f();
      errors[name] = "no error";
    } catch (e) {
      errors[name] = e.name + "|" + e.message;
    }
  }
  out.errors = errors;
  return out;
})()`;
