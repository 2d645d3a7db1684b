// loadSafetensors and loadImage from a path, a URL and a Response (streamed, with progress,
// with and without Content-Length, gzip-encoded, cut short, too long, 404), in Deno, in Node 20
// (the browser bundle, reading paths through node:fs) and in headless Chromium, where
// imageFromPixels reads ImageData, canvases, an ImageBitmap and <img> elements.
import assert from "node:assert/strict";
import { chromium } from "npm:playwright-core@1.65.1";
import {
  type DecodedImage,
  decodeImage,
  encodePng,
  ImageError,
  imageFromPixels,
  imageFromRgba,
  loadImage,
  loadSafetensors,
  parseSafetensors,
  type SafetensorsFile,
  WeightsError,
} from "../mod.ts";
import {
  chunkedStream,
  MIXED,
  PNG,
  PNG_HEIGHT,
  PNG_WIDTH,
  startServer,
  type TestServer,
  WEIGHTS,
} from "./io_sources_fixtures.ts";
import { INDEX_HTML, PAGE_SCRIPT } from "./io_sources_browser.ts";
import {
  bundleForBrowser,
  CHROMIUM,
  CHROMIUM_FLAGS,
  HAVE_CHROMIUM,
  NODE_VERSION as NODE,
} from "./browser_env.ts";

type Call = [number, number | undefined];

/** Calls start at 0, never decrease, keep one total, and the last has loaded === total. */
function assertProgress(calls: Call[], size: number, declared: boolean, what: string): void {
  assert(calls.length >= 3, `${what}: ${calls.length} progress calls, expected one per chunk`);
  assert.deepEqual(calls[0], [0, declared ? size : undefined], `${what}: first call`);
  for (let i = 1; i < calls.length; i++) {
    assert(calls[i][0] >= calls[i - 1][0], `${what}: progress went back at call ${i}`);
    if (declared || i < calls.length - 1) {
      assert.equal(calls[i][1], declared ? size : undefined, `${what}: total at call ${i}`);
    }
  }
  assert.deepEqual(calls[calls.length - 1], [size, size], `${what}: last call`);
}

/** Same tensors (names in order, shapes, values) and metadata. */
function assertSameWeights(got: SafetensorsFile, want: SafetensorsFile, what: string): void {
  assert.deepEqual([...got.tensors.keys()], [...want.tensors.keys()], `${what}: names`);
  for (const [name, t] of want.tensors) {
    const g = got.tensors.get(name)!;
    assert.deepEqual(g.shape, t.shape, `${what}: ${name} shape`);
    assert.deepEqual(g.data, t.data, `${what}: ${name} values`);
  }
  assert.deepEqual(got.metadata, want.metadata, `${what}: metadata`);
}

function assertSameImage(got: DecodedImage, want: DecodedImage, what: string): void {
  assert.deepEqual(
    [got.width, got.height, got.channels],
    [want.width, want.height, want.channels],
    `${what}: size`,
  );
  assert.deepEqual(got.data, want.data, `${what}: pixels`);
}

/** Rejects with `type`, a message of one line that matches every pattern. */
async function assertOneLine(
  f: () => Promise<unknown>,
  type: typeof WeightsError | typeof ImageError,
  ...patterns: (string | RegExp)[]
): Promise<Error> {
  let caught: unknown;
  try {
    await f();
  } catch (e) {
    caught = e;
  }
  assert(caught instanceof type, `expected a ${type.name}, got ${String(caught)}`);
  assert(!caught.message.includes("\n"), `not one line: ${caught.message}`);
  for (const p of patterns) {
    if (typeof p === "string") {
      assert(caught.message.includes(p), `"${caught.message}" lacks "${p}"`);
    } else {
      assert.match(caught.message, p);
    }
  }
  return caught;
}

/** Runs `f` with the fixtures written to a temp dir and served on 127.0.0.1. */
async function withFixtures(
  f: (dir: string, server: TestServer) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "tessera_io_sources_" });
  const server = await startServer();
  try {
    await Deno.writeFile(`${dir}/w.safetensors`, WEIGHTS);
    await Deno.writeFile(`${dir}/mixed.safetensors`, MIXED);
    await Deno.writeFile(`${dir}/img.png`, PNG);
    await f(dir, server);
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("loadSafetensors by URL and Response equals by path, with monotonic progress", async () => {
  await withFixtures(async (dir, server) => {
    const calls: Call[] = [];
    const byPath = await loadSafetensors(`${dir}/w.safetensors`, {
      onProgress: (l, t) => calls.push([l, t]),
    });
    assertProgress(calls, WEIGHTS.length, true, "path");
    assertSameWeights(byPath, parseSafetensors(WEIGHTS), "path");
    assertSameWeights(
      await loadSafetensors(new URL(`file://${dir}/w.safetensors`)),
      byPath,
      "file:",
    );

    for (const [route, declared] of [["/w.safetensors", true], ["/chunked/w.safetensors", false]]) {
      const url = server.url(route as string);
      const progress: Call[] = [];
      const got = await loadSafetensors(url, { onProgress: (l, t) => progress.push([l, t]) });
      assertSameWeights(got, byPath, route as string);
      assert.equal(got.source, url.href);
      assertProgress(progress, WEIGHTS.length, declared as boolean, route as string);

      const viaResponse: Call[] = [];
      const response = await fetch(url);
      const again = await loadSafetensors(response, {
        onProgress: (l, t) => viaResponse.push([l, t]),
      });
      assertSameWeights(again, byPath, `Response of ${route}`);
      assertProgress(viaResponse, WEIGHTS.length, declared as boolean, `Response of ${route}`);
    }

    // Gzip: fetch inflates it, so its Content-Length (compressed) is not the total.
    const gz: Call[] = [];
    assertSameWeights(
      await loadSafetensors(server.url("/gzip/w.safetensors"), {
        onProgress: (l, t) => gz.push([l, t]),
      }),
      byPath,
      "gzip",
    );
    assertProgress(gz, WEIGHTS.length, false, "gzip");
  });
});

Deno.test("loadSafetensors streams F16/BF16/F32 with gaps, split at every byte", async () => {
  await withFixtures(async (dir, server) => {
    const byPath = await loadSafetensors(`${dir}/mixed.safetensors`);
    assertSameWeights(byPath, parseSafetensors(MIXED), "path");
    assert.deepEqual([...byPath.tensors.get("half")!.data], [1, -2, 2 ** -24, 65504, -0]);
    for (const size of [1, 3, 7, 64]) {
      const got = await loadSafetensors(new Response(chunkedStream(MIXED, size)));
      assertSameWeights(got, byPath, `${size}-byte chunks`);
      assert.equal(got.source, "Response");
    }
    assertSameWeights(await loadSafetensors(server.url("/mixed.safetensors")), byPath, "URL");
  });
});

Deno.test("loadSafetensors: 404, refused connections, short, long and cut bodies are one line", async () => {
  await withFixtures(async (_dir, server) => {
    const missing = server.url("/missing.safetensors");
    const e = await assertOneLine(
      () => loadSafetensors(missing),
      WeightsError,
      `loadSafetensors: GET ${missing.href} answered 404 Not Found (check the URL`,
    );
    assert.equal((e as WeightsError).file, missing.href);
    await assertOneLine(
      async () => loadSafetensors(await fetch(missing)),
      WeightsError,
      `loadSafetensors: ${missing.href} answered 404 Not Found`,
    );

    for (const route of ["/truncated.safetensors", "/chunked/truncated.safetensors"]) {
      const url = server.url(route);
      await assertOneLine(
        () => loadSafetensors(url),
        WeightsError,
        `${url.href}: `,
        // With a Content-Length the header is checked against it before any data is read.
        /data section is truncated: the header describes \d+ bytes but only \d+ follow it/,
      );
    }
    for (const route of ["/long.safetensors", "/chunked/long.safetensors"]) {
      const url = server.url(route);
      const progress: Call[] = [];
      await assertOneLine(
        () => loadSafetensors(url, { onProgress: (l, t) => progress.push([l, t]) }),
        WeightsError,
        `${url.href}: the body is `,
        `past the ${WEIGHTS.length} its header describes`,
      );
      if (!route.includes("chunked")) {
        // Refused from the Content-Length as soon as the header is in: at the first chunk.
        assert(progress.length <= 3 && progress.at(-1)![0] < WEIGHTS.length, `${progress}`);
      }
    }

    const cut = server.url("/cut.safetensors");
    await assertOneLine(
      () => loadSafetensors(cut),
      WeightsError,
      `loadSafetensors: GET ${cut.href} failed after `,
      `of ${WEIGHTS.length} bytes`,
      "(the connection broke; retry)",
    );

    // A port nothing listens on: the fetch itself fails.
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const closed = new URL(`http://127.0.0.1:${listener.addr.port}/w.safetensors`);
    listener.close();
    await assertOneLine(
      () => loadSafetensors(closed),
      WeightsError,
      `loadSafetensors: GET ${closed.href} failed: `,
      "that the server is reachable)",
    );

    const used = await fetch(server.url("/w.safetensors"));
    await used.arrayBuffer();
    await assertOneLine(() => loadSafetensors(used), WeightsError, "already read");
    await assertOneLine(
      () => loadSafetensors(server.url("/w.safetensors").href),
      WeightsError,
      "a string is read as a file path; to download it, pass a URL: loadSafetensors(new URL(",
    );
  });
});

Deno.test("loadSafetensors refuses an absurd header length at byte 8 and stops reading", async () => {
  let pulled = 0;
  let cancelled = false;
  const head = new Uint8Array(8);
  new DataView(head.buffer).setBigUint64(0, 1n << 40n, true);
  // An endless body: only refusing early (and cancelling) lets the load finish.
  const endless = new ReadableStream<Uint8Array>({
    pull(controller) {
      controller.enqueue(pulled++ === 0 ? head : new Uint8Array(1024));
    },
    cancel() {
      cancelled = true;
    },
  }, { highWaterMark: 0 });
  await assertOneLine(
    () => loadSafetensors(new Response(endless)),
    WeightsError,
    "Response: header length 1099511627776 bytes is absurd",
  );
  assert(cancelled, "the body was cancelled");
  assert(pulled <= 2, `${pulled} chunks pulled`);

  // A header that promises more tensor bytes than the declared size: refused before the data.
  const head2 = WEIGHTS.slice(0, 8 + Number(new DataView(WEIGHTS.buffer).getBigUint64(0, true)));
  const short = new Response(chunkedStream(head2, 64), {
    headers: { "content-length": `${WEIGHTS.length - 4}` },
  });
  await assertOneLine(() => loadSafetensors(short), WeightsError, "data section is truncated");
});

Deno.test("loadImage by URL and Response equals by path; limits and errors are one line", async () => {
  await withFixtures(async (dir, server) => {
    const byPath = await loadImage(`${dir}/img.png`);
    assertSameImage(byPath, decodeImage(PNG), "path");
    for (const [route, declared] of [["/img.png", true], ["/chunked/img.png", false]]) {
      const url = server.url(route as string);
      const progress: Call[] = [];
      const got = await loadImage(url, { onProgress: (l, t) => progress.push([l, t]) });
      assertSameImage(got, byPath, route as string);
      assert.equal(got.source, url.href);
      if (PNG.length > 2 * 4096) assertProgress(progress, PNG.length, declared as boolean, "png");
      assertSameImage(await loadImage(await fetch(url)), byPath, `Response of ${route}`);
      await assertOneLine(
        () => loadImage(url, { maxFileBytes: 100 }),
        ImageError,
        `${url.href}: the file is ${declared ? PNG.length : "more than 100"} bytes, over the ` +
          "limit of 100 (maxFileBytes)",
      );
    }
    const pathCalls: Call[] = [];
    await loadImage(`${dir}/img.png`, { onProgress: (l, t) => pathCalls.push([l, t]) });
    assert.deepEqual(pathCalls[0], [0, PNG.length]);
    assert.deepEqual(pathCalls[pathCalls.length - 1], [PNG.length, PNG.length]);

    const missing = server.url("/missing.png");
    await assertOneLine(
      () => loadImage(missing),
      ImageError,
      `loadImage: GET ${missing.href} answered 404 Not Found`,
    );
    const truncated = server.url("/truncated.png");
    await assertOneLine(() => loadImage(truncated), ImageError, `${truncated.href}: `, "PNG");
  });
});

Deno.test("imageFromRgba and imageFromPixels drop alpha as decodeImage does for RGBA PNGs", async () => {
  const width = 5, height = 3;
  const rgba = new Uint8ClampedArray(width * height * 4);
  for (let i = 0; i < rgba.length; i++) rgba[i] = (i * 37 + 11) % 256;
  const png = encodePng({ width, height, channels: 4, data: new Uint8Array(rgba) });
  for (const channels of [3, 1] as const) {
    const want = decodeImage(png, { channels });
    assertSameImage(imageFromRgba({ width, height, data: rgba }, { channels }), want, "rgba");
    assertSameImage(await imageFromPixels({ width, height, data: rgba }, { channels }), want, "px");
  }
  assert.equal(imageFromRgba({ width, height, data: rgba }, { source: "x" }).source, "x");
  assert.throws(
    () => imageFromRgba({ width, height, data: rgba.subarray(4) }),
    /RGBA pixel data has 56 bytes, expected 5x3x4 = 60/,
  );
  await assertOneLine(
    () => imageFromPixels({ width: 2, height: 2 }),
    ImageError,
    "imageFromPixels: drawing this image needs a 2D canvas",
  );
});

Deno.test("imageFromPixels accepts the DOM's canvas, bitmap, ImageData and <img> types", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tessera_dom_types_" });
  try {
    await Deno.writeTextFile(
      `${dir}/deno.json`,
      JSON.stringify({ compilerOptions: { lib: ["deno.ns", "dom", "dom.iterable", "esnext"] } }),
    );
    const pixels = new URL("../io/pixels.ts", import.meta.url).href;
    const image = new URL("../io/image.ts", import.meta.url).href;
    await Deno.writeTextFile(
      `${dir}/check.ts`,
      `import { type CanvasLike, imageFromPixels, type PixelSource } from "${pixels}";
import type { RgbaPixels } from "${image}";
declare const canvas: HTMLCanvasElement;
declare const offscreen: OffscreenCanvas;
declare const bitmap: ImageBitmap;
declare const data: ImageData;
declare const img: HTMLImageElement;
const canvases: CanvasLike[] = [canvas, offscreen];
const rgba: RgbaPixels = data;
const all: PixelSource[] = [...canvases, rgba, bitmap, img];
for (const s of all) await imageFromPixels(s);
`,
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["check", "--no-lock", "--config", `${dir}/deno.json`, `${dir}/check.ts`],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert(out.success, new TextDecoder().decode(out.stderr));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** The browser bundle of mod.ts, built once for the Node and Chromium tests. */
let bundled: Promise<string> | undefined;
function bundle(): Promise<string> {
  bundled ??= (async () => {
    const dir = await Deno.makeTempDir({ prefix: "tessera_io_bundle_" });
    const out = `${dir}/tessera.mjs`;
    await bundleForBrowser("mod.ts", out);
    return out;
  })();
  return bundled;
}

const NODE_SCRIPT = `import * as t from "./tessera.mjs";
import { pathToFileURL } from "node:url";
const [dir, base] = process.argv.slice(2);
const b64 = (a) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString("base64");
const weights = (w) => ({
  source: w.source,
  metadata: w.metadata,
  tensors: [...w.tensors].map(([name, v]) => [name, v.shape, b64(v.data)]),
});
const image = (i) => ({ width: i.width, height: i.height, channels: i.channels, data: b64(i.data) });
const out = { deno: typeof Deno };
const progress = [];
out.path = weights(await t.loadSafetensors(dir + "/w.safetensors", {
  onProgress: (l, n) => progress.push([l, n]),
}));
out.progress = progress;
out.fileUrl = weights(await t.loadSafetensors(pathToFileURL(dir + "/mixed.safetensors")));
out.url = weights(await t.loadSafetensors(new URL("/chunked/w.safetensors", base)));
out.image = image(await t.loadImage(dir + "/img.png"));
out.imageUrl = image(await t.loadImage(new URL("/img.png", base)));
out.errors = [];
for (const f of [
  () => t.loadSafetensors(dir + "/missing.safetensors"),
  () => t.loadSafetensors(dir + "/fifo"),
  () => t.loadImage(dir),
  () => t.loadSafetensors(new URL("/missing.safetensors", base)),
  () => t.saveSafetensors(dir + "/out.safetensors", {}),
]) {
  try { await f(); out.errors.push("no error"); } catch (e) { out.errors.push(e.name + "|" + e.message); }
}
process.stdout.write(JSON.stringify(out));
`;

/** What Node's output holds for `file`, computed in Deno. */
function weightsSummary(file: SafetensorsFile): unknown {
  const b64 = (a: Float32Array): string => {
    let s = "";
    const bytes = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    for (let i = 0; i < bytes.length; i += 8192) {
      s += String.fromCharCode(...bytes.subarray(i, i + 8192));
    }
    return btoa(s);
  };
  return {
    source: file.source,
    metadata: file.metadata,
    tensors: [...file.tensors].map(([name, v]) => [name, v.shape, b64(v.data)]),
  };
}

Deno.test({
  name: "Node 20: the bundle's loadSafetensors and loadImage read paths via node:fs like Deno",
  ignore: NODE === undefined,
  sanitizeResources: false,
  fn: async () => {
    const major = Number(NODE?.match(/^v(\d+)/)?.[1]);
    assert(major >= 20, `node ${NODE} is older than 20`);
    const js = await bundle();
    await withFixtures(async (dir, server) => {
      await Deno.copyFile(js, `${dir}/tessera.mjs`);
      await Deno.writeTextFile(`${dir}/probe.mjs`, NODE_SCRIPT);
      const fifo = Deno.build.os !== "windows" &&
        (await new Deno.Command("mkfifo", { args: [`${dir}/fifo`] }).output()).success;
      const run = await new Deno.Command("node", {
        args: ["probe.mjs", dir, server.url("/").href],
        cwd: dir,
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stderr = new TextDecoder().decode(run.stderr);
      assert(run.success, `node failed: ${stderr}`);
      const out = JSON.parse(new TextDecoder().decode(run.stdout));
      assert.equal(out.deno, "undefined");
      const path = `${dir}/w.safetensors`;
      assert.deepEqual(out.path, weightsSummary(await loadSafetensors(path)));
      assertProgress(out.progress, WEIGHTS.length, true, "node path");
      const mixed = await loadSafetensors(`${dir}/mixed.safetensors`);
      assert.deepEqual(out.fileUrl, weightsSummary(mixed));
      const url = server.url("/chunked/w.safetensors");
      assert.deepEqual(out.url, weightsSummary(await loadSafetensors(url)));
      const img = await loadImage(`${dir}/img.png`);
      const b64 = (a: Uint8Array): string => btoa(String.fromCharCode(...a));
      const want = { width: img.width, height: img.height, channels: 3, data: b64(img.data) };
      assert.deepEqual(out.image, want);
      assert.deepEqual(out.imageUrl, want);
      const [missing, fifoError, directory, notFound, save] = out.errors as string[];
      assert.equal(
        missing,
        `WeightsError|${dir}/missing.safetensors: no such file (check the --weights path)`,
      );
      if (fifo) {
        assert.equal(
          fifoError,
          `WeightsError|${dir}/fifo: is a FIFO (named pipe), not a regular file ` +
            "(point --weights at a .safetensors file)",
        );
      }
      assert.match(directory, /^ImageError\|.*: is a directory, not a file/);
      assert.match(notFound, /^WeightsError\|loadSafetensors: GET http:.* answered 404 Not Found/);
      assert.match(save, /^WeightsError\|.*: cannot write the file: writing files needs Deno/);
      assert(!stderr.includes("Deno is not defined"), stderr);
    });
  },
});

Deno.test({
  name: "Chromium: imageFromPixels on ImageData, canvases, ImageBitmap, <img> equals decodeImage",
  ignore: !HAVE_CHROMIUM,
  // Playwright keeps pipes to the browser open until its process is reaped.
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const code = await Deno.readTextFile(await bundle());
    assert.doesNotMatch(code, /^import [^;]*? from "node:/m, "a top-level Node import");
    const profile = await Deno.makeTempDir({ prefix: "tessera_chromium_" });
    await withFixtures(async (_dir, server) => {
      server.extra.set("/index.html", { body: INDEX_HTML, type: "text/html" });
      server.extra.set("/tessera.js", { body: code, type: "text/javascript" });
      const context = await chromium.launchPersistentContext(profile, {
        executablePath: CHROMIUM,
        headless: true,
        args: [...CHROMIUM_FLAGS],
      });
      try {
        const page = await context.newPage();
        const errors: string[] = [];
        page.on("pageerror", (e) => errors.push(String(e)));
        page.on("console", (m) => {
          if (m.type() === "error") errors.push(m.text());
        });
        await page.goto(server.url("/index.html").href, { waitUntil: "load" });
        const out = await page.evaluate(PAGE_SCRIPT) as Record<string, unknown>;
        const want = decodeImage(PNG);
        const rgb = { width: PNG_WIDTH, height: PNG_HEIGHT, channels: 3, data: [...want.data] };
        assert.deepEqual(out.features, { offscreen: "function", imageData: "function" });
        for (const name of ["imageData", "canvas", "bitmap", "offscreen", "img", "pending"]) {
          assert.deepEqual(out[name], rgb, `${name}: pixels differ from decodeImage's`);
        }
        assert.deepEqual(out.plain, rgb);
        assert.deepEqual(out.loaded, rgb, "loadImage(URL) in the page differs from decodeImage");
        const gray = decodeImage(PNG, { channels: 1 });
        assert.deepEqual(out.gray, { ...rgb, channels: 1, data: [...gray.data] });
        const weights = out.weights as {
          source: string;
          metadata: Record<string, string>;
          tensors: [string, number[], number[]][];
          progress: [number, number | null][];
        };
        const expected = parseSafetensors(WEIGHTS);
        assert.equal(weights.source, server.url("/chunked/w.safetensors").href);
        assert.deepEqual(weights.metadata, expected.metadata);
        assert.deepEqual(
          weights.tensors,
          [...expected.tensors].map(([name, t]) => [name, t.shape, [...t.data]]),
        );
        assertProgress(
          weights.progress.map(([l, t]): Call => [l, t ?? undefined]),
          WEIGHTS.length,
          false,
          "browser",
        );
        const e = out.errors as Record<string, string>;
        assert.equal(
          e.imagePath,
          "ImageError|img.png: reading a file path needs Deno or Node; in a browser, pass a URL " +
            "(it is fetched) or a fetch() Response instead",
        );
        assert.match(e.weightsPath, /^WeightsError\|w\.safetensors: reading a file path needs/);
        assert.match(e.notFound, /^WeightsError\|loadSafetensors: GET .* answered 404 Not Found/);
        assert.match(e.notImage, /^ImageError\|imageFromPixels: expected ImageData, a canvas/);
        assert.deepEqual(errors.filter((m) => !m.includes("404")), []);
        await page.close();
      } finally {
        await context.close();
      }
    });
    await Deno.remove(profile, { recursive: true });
  },
});
