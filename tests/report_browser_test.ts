// The HTML report in a real browser: Debian's headless Chromium, driven by Playwright over CDP,
// must load every embedded image and log no console error.
import assert from "node:assert/strict";
import { chromium } from "npm:playwright-core@1.65.1";
import { compile, initParams, seedTokenizer, type TensorData } from "../mod.ts";
import { writeFigures, writeReport } from "../viz/report.ts";

const CHROMIUM = "/usr/bin/chromium";

// Without the networking flags Chromium keeps dialling Google's hosts, which this closed
// network refuses; a fresh profile keeps runs independent.
const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** A [1, 3, H, W] test card: colour gradients with a dark diagonal, values in 0..1. */
function generatedImage(height: number, width: number): TensorData {
  const data = new Float32Array(3 * height * width);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const p = y * width + x;
      const line = Math.abs(x - y) < 2 ? 0.2 : 1;
      data[p] = (x / (width - 1)) * line;
      data[height * width + p] = (y / (height - 1)) * line;
      data[2 * height * width + p] = (1 - x / (width - 1)) * 0.8 * line;
    }
  }
  return { shape: [1, 3, height, width], data };
}

async function chromiumInstalled(): Promise<boolean> {
  try {
    return (await Deno.stat(CHROMIUM)).isFile;
  } catch {
    return false;
  }
}

Deno.test({
  name: "report.html loads every image in headless Chromium with no console error",
  // Playwright keeps pipes to the browser open until its process is reaped.
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    assert(
      await chromiumInstalled(),
      `${CHROMIUM} is missing: .ci/run installs it (apt-get install -y chromium); ` +
        `install it the same way to run this test`,
    );
    const dir = await Deno.makeTempDir({ prefix: "tessera_report_" });
    const profile = await Deno.makeTempDir({ prefix: "tessera_chromium_" });
    try {
      const graph = seedTokenizer({ height: 32, width: 32, patch: 8, embedding: 16 });
      const model = await compile(graph, { backend: "reference" });
      const image = generatedImage(32, 32);
      const { stages } = await model.run({ image }, { stages: "all" });
      const pos = initParams(graph).get("positional_embedding.positional_embedding");
      assert(pos, "initParams has the positional embedding");
      const figures = await writeFigures(dir, {
        image,
        patches: stages.patches,
        tokens: stages.tokens,
        embeddings: stages.embeddings,
        pos,
        patch: 8,
        graph,
      });
      assert.deepEqual(figures.map((f) => f.file), [
        "01_resized.png",
        "02_patch_grid.png",
        "03_patch_extraction.png",
        "04_token_strip.png",
        "05_embedding_heatmap.png",
        "06_positional_similarity.png",
        "07_graph.png",
      ]);
      assert.equal(figures[1].caption, "Patch grid: 16 patches of 8x8 (4 per row, 4 per column)");
      await writeReport(dir, { title: "Tessera test report", summary: graph.summary(), figures });
      const html = await Deno.readTextFile(`${dir}/report.html`);
      assert(!/src="(?!data:)/.test(html), "every image is a data: URI");
      assert(html.includes("<pre>graph seed-tokenizer"));

      const context = await chromium.launchPersistentContext(profile, {
        executablePath: CHROMIUM,
        headless: true,
        args: FLAGS,
      });
      try {
        const page = await context.newPage();
        const errors: string[] = [];
        page.on("console", (m) => {
          if (m.type() === "error") errors.push(m.text());
        });
        page.on("pageerror", (e) => errors.push(String(e)));
        page.on("requestfailed", (r) => errors.push(`request failed: ${r.url().slice(0, 80)}`));
        await page.goto(new URL(`file://${dir}/report.html`).href, { waitUntil: "load" });
        // A string, so this Deno-typed file needs no DOM types.
        const images: { alt: string; ok: boolean }[] = await page.evaluate(
          "[...document.images].map((i) => ({ alt: i.alt, ok: i.complete && i.naturalWidth > 0 }))",
        );
        // Seven figures plus the graph's SVG version.
        assert.equal(images.length, 8);
        for (const img of images) assert(img.ok, `image did not load: ${img.alt}`);
        assert.deepEqual(errors, []);
      } finally {
        await context.close();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
      await Deno.remove(profile, { recursive: true });
    }
  },
});
