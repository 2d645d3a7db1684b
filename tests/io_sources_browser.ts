// The page side of tests/io_sources_test.ts's Chromium test: the HTML that loads the browser
// bundle (its `node:` imports mapped to stubs by an import map, since no browser can load them
// and the page never calls them), and the script run in it.

/**
 * The browser bundle's top-level `node:` imports (node:path for io/files.ts's writers, node:zlib
 * for PNG inflate) as stub modules whose functions throw. The dynamic `import("node:fs/promises")`
 * of io/files.ts is not stubbed: a page never takes the Node path, and must not.
 */
export function nodeStubs(bundle: string): Map<string, string> {
  const stubs = new Map<string, string>();
  for (const m of bundle.matchAll(/^import \{([^}]*)\} from "(node:[a-z_/]+)";$/gm)) {
    const names = m[1].split(",").map((n) => n.trim().split(/\s+as\s+/)[0]).filter((n) => n);
    const body = names.map((n) =>
      `export const ${n} = () => { throw new Error("${m[2]} is not in browsers"); };`
    );
    stubs.set(m[2], [stubs.get(m[2]) ?? "", ...body].join("\n"));
  }
  return stubs;
}

/** The page: an import map sending each stubbed `node:` specifier to its stub. */
export function indexHtml(stubs: ReadonlyMap<string, string>): string {
  const imports = Object.fromEntries([...stubs.keys()].map((s) => [s, stubPath(s)]));
  return `<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,">
<script type="importmap">${JSON.stringify({ imports })}</script>
<title>tessera io sources</title>`;
}

/** Where the stub of `specifier` is served. */
export function stubPath(specifier: string): string {
  return `/stub/${specifier.replace(/[:/]/g, "_")}.js`;
}

/**
 * Run in the page (as a string, so this Deno-typed file needs no DOM types): draws /img.png onto
 * a canvas and reads it back through imageFromPixels from every kind of source; loads the weights
 * by URL; collects the one-line errors of a path and a 404. (loadImage is not run: decoding a PNG
 * needs node:zlib's inflate, which no browser has; the page maps it to a stub.)
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
