// The HTML reports in a real browser: Debian's headless Chromium, driven by Playwright over CDP,
// must load every embedded image of the seed report and of the ViT report, and log no console
// error.
import assert from "node:assert/strict";
import { type BrowserContext, chromium } from "npm:playwright-core@1.65.1";
import { compile, initParams, seedTokenizer, type TensorData, vit } from "../mod.ts";
import { writeFigures, writeReport } from "../viz/report.ts";
import { saveVitReport } from "../viz/vit_report.ts";
import { CHROMIUM, CHROMIUM_FLAGS, HAVE_CHROMIUM } from "./browser_env.ts";

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

/** Writes a small random-init ViT's report into `dir`; returns its figure count. */
async function vitReport(dir: string): Promise<number> {
  const graph = vit({ image: 32, patch: 8, dim: 16, depth: 3, heads: 2, classes: 10 });
  const model = await compile(graph, { backend: "reference" });
  const image = generatedImage(32, 32);
  const stages = [0, 1, 2].map((i) => `blocks.${i}.attn`);
  const run = await model.run({ image }, { stages });
  model.dispose();
  const pixels = new Uint8Array(32 * 32 * 3);
  for (let p = 0; p < 32 * 32; p++) {
    for (let c = 0; c < 3; c++) pixels[3 * p + c] = Math.round(image.data[c * 1024 + p] * 255);
  }
  const files = await saveVitReport(dir, {
    image: { width: 32, height: 32, data: pixels },
    attention: stages.map((s) => run.stages[s]),
    grid: [4, 4],
    blocks: [0, 2],
    top: [{ name: "class 3", p: 0.6 }, { name: "class 1", p: 0.3 }, { name: "class 9", p: 0.1 }],
    graph,
    provenance: {
      weights: "random init",
      backend: "reference",
      preprocessing: "none (a generated 32x32 test card)",
      originalSize: { width: 32, height: 32 },
      version: "test",
    },
  });
  return files.length - 1; // all but report.html
}

/** Loads `html` in a new page: every image's alt and whether it decoded, and the errors. */
async function load(
  context: BrowserContext,
  html: string,
): Promise<{ images: { alt: string; ok: boolean }[]; errors: string[] }> {
  const page = await context.newPage();
  const errors: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(m.text());
  });
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("requestfailed", (r) => errors.push(`request failed: ${r.url().slice(0, 80)}`));
  await page.goto(new URL(`file://${html}`).href, { waitUntil: "load" });
  // A string, so this Deno-typed file needs no DOM types. decode() rejects an image that
  // cannot be decoded.
  const images: { alt: string; ok: boolean }[] = await page.evaluate(
    `Promise.all([...document.images].map(async (i) => {
      const decoded = await i.decode().then(() => true, () => false);
      return { alt: i.alt, ok: decoded && i.complete && i.naturalWidth > 0 };
    }))`,
  );
  await page.close();
  return { images, errors };
}

Deno.test({
  name: "the seed and ViT report.html load every image in headless Chromium, no console error",
  // Playwright keeps pipes to the browser open until its process is reaped.
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    assert(
      HAVE_CHROMIUM,
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

      const vitDir = `${dir}/vit`;
      const vitFigures = await vitReport(vitDir);
      const vitHtml = await Deno.readTextFile(`${vitDir}/report.html`);
      assert(!/src="(?!data:)/.test(vitHtml), "every image of the ViT report is a data: URI");

      const context = await chromium.launchPersistentContext(profile, {
        executablePath: CHROMIUM,
        headless: true,
        args: [...CHROMIUM_FLAGS],
      });
      try {
        // The seed report: seven figures, the graph once (its SVG is linked, not shown).
        const seed = await load(context, `${dir}/report.html`);
        assert.equal(seed.images.length, 7);
        for (const img of seed.images) assert(img.ok, `image did not load: ${img.alt}`);
        assert.deepEqual(seed.errors, []);
        // The ViT report: input, top-k, two blocks' attention maps, rollout, graph (SVG).
        const vitPage = await load(context, `${vitDir}/report.html`);
        assert.equal(vitFigures, 6);
        assert.equal(vitPage.images.length, vitFigures);
        for (const img of vitPage.images) assert(img.ok, `image did not load: ${img.alt}`);
        assert.deepEqual(vitPage.errors, []);
      } finally {
        await context.close();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
      await Deno.remove(profile, { recursive: true });
    }
  },
});
