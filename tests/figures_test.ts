// Figures: exact pixel sizes, patch-grid gaps, token cells, viridis, and the Graphviz diagram.
import assert from "node:assert/strict";
import { compile, initParams, seedTokenizer, type TensorData } from "../mod.ts";
import {
  embeddingHeatmapFigure,
  patchCellsFigure,
  patchExtractionFigure,
  patchGridFigure,
  type PixelImage,
  positionalSimilarityFigure,
  resizedImageFigure,
  tokenGridFigure,
  tokenStripFigure,
  viridis,
} from "../viz/figures.ts";
import { graphToDot, rasterizeSvg, renderGraphSvg } from "../viz/graph_diagram.ts";
import { formatShape } from "../graph/shape.ts";
import {
  embeddingHeatmapPlot,
  patchExtractionPlot,
  patchGridPlot,
  positionalSimilarityPlot,
  resizedImagePlot,
  tokenStripPlot,
} from "../viz/plots.ts";
import { type FigureInputs, saveReport } from "../viz/report.ts";

/** A [1, 3, H, W] image whose pixels all differ and none is white (values stay below 0.95). */
function testImage(height: number, width: number): TensorData {
  const data = new Float32Array(3 * height * width);
  for (let k = 0; k < 3; k++) {
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        data[(k * height + y) * width + x] = ((y * width + x) * (k + 1) * 7 % 97) / 102;
      }
    }
  }
  return { shape: [1, 3, height, width], data };
}

function pixel(img: PixelImage, x: number, y: number): number[] {
  const o = (y * img.width + x) * img.channels;
  return [...img.data.subarray(o, o + 3)];
}

function seq(n: number, c: number, f: (i: number) => number): TensorData {
  return { shape: [1, n, c], data: Float32Array.from({ length: n * c }, (_, i) => f(i)) };
}

Deno.test("viridis endpoints and clamping", () => {
  assert.deepEqual(viridis(0), [68, 1, 84]);
  assert.deepEqual(viridis(1), [253, 231, 37]);
  assert.deepEqual(viridis(-3), viridis(0));
  assert.deepEqual(viridis(7), viridis(1));
  assert.deepEqual(viridis(Number.NaN), viridis(0));
});

Deno.test("resizedImageFigure is the image as RGB bytes", () => {
  const image = testImage(6, 10);
  const img = resizedImageFigure(image);
  assert.deepEqual([img.width, img.height, img.channels, img.data.length], [10, 6, 3, 180]);
  for (const [x, y] of [[0, 0], [9, 5], [3, 4]]) {
    const want = [0, 1, 2].map((k) => Math.round(image.data[(k * 6 + y) * 10 + x] * 255));
    assert.deepEqual(pixel(img, x, y), want);
  }
});

Deno.test("patchGridFigure: white gaps exactly after every P source pixels", () => {
  for (const [patch, gap] of [[4, 2], [3, 1], [4, 3]]) {
    const [height, width] = [12, 24];
    const src = resizedImageFigure(testImage(height, width));
    const img = patchGridFigure(testImage(height, width), patch, gap);
    const rows = height / patch;
    const cols = width / patch;
    assert.deepEqual(img.width, cols * patch + (cols - 1) * gap);
    assert.deepEqual(img.height, rows * patch + (rows - 1) * gap);
    const isGapCol = (x: number): boolean => x % (patch + gap) >= patch;
    const isGapRow = (y: number): boolean => y % (patch + gap) >= patch;
    for (let y = 0; y < img.height; y++) {
      for (let x = 0; x < img.width; x++) {
        if (isGapRow(y) || isGapCol(x)) {
          assert.deepEqual(pixel(img, x, y), [255, 255, 255], `gap pixel (${x}, ${y})`);
        } else {
          // Tile (r, c) starts at r * (P + gap): subtract the gaps before it.
          const sx = x - Math.floor(x / (patch + gap)) * gap;
          const sy = y - Math.floor(y / (patch + gap)) * gap;
          assert.deepEqual(pixel(img, x, y), pixel(src, sx, sy), `tile pixel (${x}, ${y})`);
        }
      }
    }
  }
  assert.throws(() => patchGridFigure(testImage(12, 24), 5), {
    name: "RangeError",
    message: /must divide/,
  });
});

Deno.test("patchExtractionFigure: input beside the nearest-neighbour upscaled conv output", () => {
  const image = testImage(8, 12);
  // [1, 3, 2, 3]: cell 0 holds the global minimum in every channel, cell 5 the maximum.
  const patches: TensorData = {
    shape: [1, 3, 2, 3],
    data: Float32Array.from({ length: 18 }, (_, i) => (i % 6) * 2 - 5 + Math.floor(i / 6) * 0.1),
  };
  patches.data[0] = patches.data[6] = patches.data[12] = -10;
  patches.data[5] = patches.data[11] = patches.data[17] = 10;
  for (const scale of [1, 3]) {
    const img = patchExtractionFigure(image, patches, scale);
    assert.deepEqual([img.width, img.height], [2 * 12 * scale + 8, 8 * scale]);
    const src = resizedImageFigure(image);
    assert.deepEqual(pixel(img, 5 * scale, 7 * scale), pixel(src, 5, 7));
    const right = 12 * scale + 8;
    assert.deepEqual(pixel(img, 12 * scale + 3, 0), [255, 255, 255]); // the gap
    // Cell (0, 0) covers source rows 0..3, cols 0..3; cell (1, 2) rows 4..7, cols 8..11.
    for (const [sx, sy] of [[0, 0], [3, 3]]) {
      assert.deepEqual(pixel(img, right + sx * scale, sy * scale), [0, 0, 0]);
    }
    for (const [sx, sy] of [[8, 4], [11, 7]]) {
      assert.deepEqual(pixel(img, right + sx * scale, sy * scale), [255, 255, 255]);
    }
  }
  // C != 3: viridis of the channel mean.
  const one: TensorData = { shape: [1, 1, 2, 2], data: Float32Array.of(0, 1, 2, 3) };
  const img = patchExtractionFigure(testImage(4, 4), one, 1);
  assert.deepEqual(pixel(img, 4 + 8, 0), viridis(0));
  assert.deepEqual(pixel(img, 4 + 8 + 3, 3), viridis(1));
});

Deno.test("tokenStripFigure: exactly N cells separated by 1-px gap columns", () => {
  for (const [n, c, cell] of [[16, 3, 8], [196, 3, 4], [7, 16, 5]]) {
    const tokens = seq(n, c, (i) => Math.sin(i * 1.7) * 3);
    const img = tokenStripFigure(tokens, cell);
    assert.deepEqual([img.width, img.height], [n * cell + n - 1, cell]);
    // Count colour runs: maximal column ranges that are not gap columns.
    const isGap = (x: number): boolean =>
      Array.from({ length: cell }, (_, y) => pixel(img, x, y)).every((p) =>
        p.every((v) => v === 255)
      );
    let runs = 0;
    for (let x = 0; x < img.width; x++) {
      if (!isGap(x) && (x === 0 || isGap(x - 1))) runs++;
      if ((x + 1) % (cell + 1) === 0) assert(isGap(x), `column ${x} should be a gap`);
    }
    assert.deepEqual(runs, n);
    // Each cell is one uniform colour.
    for (let t = 0; t < n; t++) {
      const first = pixel(img, t * (cell + 1), 0);
      assert.deepEqual(pixel(img, t * (cell + 1) + cell - 1, cell - 1), first);
    }
  }
  // RGB: the token holding the minimum in all channels is black.
  const rgb = tokenStripFigure(seq(3, 3, (i) => (i < 3 ? -1 : i)), 2);
  assert.deepEqual(pixel(rgb, 0, 0), [0, 0, 0]);
});

Deno.test("embeddingHeatmapFigure: N x min(100, D), tokens along x, viridis", () => {
  const emb = seq(9, 150, (i) => i % 150);
  const img = embeddingHeatmapFigure(emb);
  assert.deepEqual([img.width, img.height], [9, 100]);
  assert.deepEqual(pixel(img, 4, 0), viridis(0)); // value 0 of every token is the minimum
  assert.deepEqual(pixel(img, 4, 99), viridis(1)); // value 99 is the largest shown
  const small = embeddingHeatmapFigure(seq(5, 16, (i) => i));
  assert.deepEqual([small.width, small.height], [5, 16]);
  assert.deepEqual(pixel(small, 0, 0), viridis(0));
  assert.deepEqual(pixel(small, 4, 15), viridis(1));
  assert.deepEqual(embeddingHeatmapFigure(emb, 20).height, 20);
});

Deno.test("positionalSimilarityFigure: gridH x gridW maps of gridH x gridW cells", () => {
  const [gridH, gridW, d, cell] = [2, 3, 8, 4];
  // Patch 1 is the negation of patch 0; the class token (row 0) is arbitrary.
  const pos = seq(gridH * gridW + 1, d, (i) => Math.cos(i * 0.9) + (i < d ? 50 : 0));
  for (let k = 0; k < d; k++) pos.data[2 * d + k] = -pos.data[d + k];
  const img = positionalSimilarityFigure(pos, gridH, gridW, cell);
  const mapW = gridW * cell;
  const mapH = gridH * cell;
  assert.deepEqual([img.width, img.height], [gridW * mapW + (gridW - 1) * 2, gridH * mapH + 2]);
  // Self-similarity is 1 in every map, at the map's own position.
  for (let i = 0; i < gridH * gridW; i++) {
    const x = (i % gridW) * (mapW + 2) + (i % gridW) * cell;
    const y = Math.floor(i / gridW) * (mapH + 2) + Math.floor(i / gridW) * cell;
    assert.deepEqual(pixel(img, x + cell - 1, y + cell - 1), viridis(1), `map ${i}`);
  }
  assert.deepEqual(pixel(img, cell, 0), viridis(0)); // map 0 vs patch 1: cosine -1
  assert.deepEqual(pixel(img, mapW, 0), [255, 255, 255]); // gap between maps
  assert.throws(() => positionalSimilarityFigure(pos, 3, 3), {
    name: "RangeError",
    message: /needs 10/,
  });
});

Deno.test("patchCellsFigure and tokenGridFigure: one pixel per patch or token, in order", () => {
  const patches: TensorData = { shape: [1, 1, 2, 3], data: Float32Array.of(0, 1, 2, 3, 4, 5) };
  const cells = patchCellsFigure(patches);
  assert.deepEqual([cells.width, cells.height], [3, 2]); // columns along x, rows along y
  assert.deepEqual(pixel(cells, 0, 0), viridis(0));
  assert.deepEqual(pixel(cells, 2, 1), viridis(1));
  const tokens = seq(10, 3, (i) => i);
  const grid = tokenGridFigure(tokens, 4);
  assert.deepEqual([grid.width, grid.height], [4, 3]);
  const strip = tokenStripFigure(tokens, 1);
  for (let t = 0; t < 10; t++) {
    assert.deepEqual(pixel(grid, t % 4, Math.floor(t / 4)), pixel(strip, 2 * t, 0), `token ${t}`);
  }
  assert.deepEqual(pixel(grid, 3, 2), [255, 255, 255]); // past the last token
});

/** The text of every `<text>` element of an SVG, in document order. */
function texts(svg: string): string[] {
  return [...svg.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]);
}

Deno.test("the plotted figures have titles, axis titles and colour bars", async () => {
  const image = testImage(32, 32);
  const patches: TensorData = {
    shape: [1, 5, 4, 4],
    data: Float32Array.from({ length: 80 }, Math.sin),
  };
  const cases: [string, Promise<string>, string[], number][] = [
    ["resized", resizedImagePlot(image), ["Resized input", "x (pixel column)", "y (pixel row)"], 0],
    ["grid", patchGridPlot(image, 8), ["Patch grid", "patch column", "patch row"], 0],
    ["extraction", patchExtractionPlot(image, patches), ["Patch extraction", "patch column"], 1],
    ["embeddings", embeddingHeatmapPlot(seq(9, 20, Math.cos)), ["token", "value"], 1],
    [
      "similarity",
      positionalSimilarityPlot(seq(17, 8, Math.cos), 4, 4),
      ["input patch column", "input patch row", "cosine similarity"],
      1,
    ],
  ];
  for (const [name, plot, want, legends] of cases) {
    const svg = await plot;
    assert.ok(svg.startsWith("<svg"), name);
    const t = texts(svg);
    for (const w of want) assert.ok(t.includes(w), `${name} lacks "${w}": ${t.join(" | ")}`);
    assert.equal(svg.split('aria-roledescription="legend"').length - 1, legends, name);
  }
  // Patch axes number the patches: 0..3 on each axis of a 4x4 grid.
  const grid = texts(await patchGridPlot(image, 8));
  for (const i of ["0", "1", "2", "3"]) assert.equal(grid.filter((x) => x === i).length, 2);
});

Deno.test("tokenStripPlot: square cells wrapped into labelled rows", async () => {
  const n = 40;
  const svg = await tokenStripPlot(seq(n, 3, (i) => i), { perRow: 16 });
  // One square per token, in a rect mark.
  const cells = /role-mark"[^>]*aria-roledescription="rect mark container">(.*?)<\/g>/.exec(svg);
  assert.ok(cells, "no rect mark");
  const squares = [...cells[1].matchAll(/<path[^>]*d="M[-\d.e]+,[-\d.e]+h([\d.]+)v([\d.]+)h/g)];
  assert.equal(squares.length, n);
  for (const [, w, h] of squares) assert.ok(Math.abs(Number(w) - Number(h)) < 0.01, `${w}x${h}`);
  const t = texts(svg);
  for (const row of ["0–15", "16–31", "32–39"]) assert.ok(t.includes(row), `row ${row}`);
  assert.ok(t.includes("Token sequence") && t.includes("position in the row"));
  // The default wraps at 32 tokens a row.
  assert.ok(texts(await tokenStripPlot(seq(70, 3, (i) => i))).includes("64–69"));
});

Deno.test("graphToDot: every node, shape-labelled edges", () => {
  const g = seedTokenizer({ height: 32, width: 32, patch: 8, embedding: 16 });
  const dot = graphToDot(g);
  assert(dot.startsWith('digraph "seed-tokenizer" {'));
  for (const n of g.nodes) {
    assert(dot.includes(`  n${n.id} [label="${n.name}\\n${n.op} `), `node ${n.name}`);
    for (const i of n.inputs) {
      const edge = `  n${i} -> n${n.id} [label="${formatShape(g.nodes[i].shape)}"];`;
      assert(dot.includes(edge), edge);
    }
  }
  assert(dot.includes(`n${g.output} -> output [label="[B, 17, 16]"];`));
  assert(dot.includes("stage: patches"));
});

Deno.test("renderGraphSvg lays out every node; rasterizeSvg makes a PNG", async () => {
  const g = seedTokenizer({ height: 32, width: 32, patch: 8, embedding: 16 });
  const svg = await renderGraphSvg(g);
  assert(svg.includes("<svg"));
  for (const n of g.nodes) assert(svg.includes(`>${n.name}</text>`), n.name);
  assert(svg.includes("[B, 3, 32, 32]"));
  const png = await rasterizeSvg(svg, 1);
  assert.deepEqual([...png.subarray(1, 4)], [0x50, 0x4e, 0x47]); // "PNG"
  const width = new DataView(png.buffer, png.byteOffset).getUint32(16);
  // resvg sizes like a browser: 1pt = 4/3 px.
  assert.deepEqual(width, Math.round((Number(/<svg width="(\d+)pt"/.exec(svg)?.[1]) * 4) / 3));
});

/** The figure inputs of a small seed tokenizer run. */
async function smallRun(): Promise<FigureInputs> {
  const graph = seedTokenizer({ height: 32, width: 32, patch: 8, embedding: 16 });
  const model = await compile(graph, { backend: "reference" });
  const image = testImage(32, 32);
  const { stages } = await model.run({ image }, { stages: "all" });
  model.dispose();
  const pos = initParams(graph).get("positional_embedding.positional_embedding")!;
  const { patches, tokens, embeddings } = stages;
  return { image, patches, tokens, embeddings, pos, patch: 8, graph };
}

/** Every name below `dir`, sorted, folders as `name/`. */
function tree(dir: string): string[] {
  const out: string[] = [];
  for (const e of Deno.readDirSync(dir)) {
    out.push(e.isDirectory ? `${e.name}/` : e.name);
    if (e.isDirectory) out.push(...tree(`${dir}/${e.name}`).map((n) => `${e.name}/${n}`));
  }
  return out.sort();
}

/** A writer that fails like a full disk on its `n`th file. */
function failingOn(n: number): (path: string, bytes: Uint8Array) => Promise<void> {
  let count = 0;
  return async (path, bytes) => {
    if (++count === n) {
      throw Object.assign(new Error(`No space left on device (os error 28): ${path}`), {
        code: "ENOSPC",
      });
    }
    await Deno.writeFile(path, bytes);
  };
}

Deno.test("saveReport writes the figures and report all together or not at all", async () => {
  const inputs = await smallRun();
  const dir = await Deno.makeTempDir();
  try {
    // A new folder, two levels deep: a write failing midway leaves neither level behind.
    const fresh = `${dir}/a/report`;
    await assert.rejects(
      () => saveReport(fresh, inputs, { title: "t", writeFile: failingOn(5) }),
      /No space left/,
    );
    assert.deepEqual(tree(dir), []);

    const names = await saveReport(fresh, inputs, { title: "t" });
    assert.deepEqual(names, [
      "01_resized.png",
      "02_patch_grid.png",
      "03_patch_extraction.png",
      "04_token_strip.png",
      "05_embedding_heatmap.png",
      "06_positional_similarity.png",
      "07_graph.png",
      "07_graph.svg",
      "report.html",
    ]);
    assert.deepEqual(tree(dir), ["a/", "a/report/", ...names.map((n) => `a/report/${n}`)]);

    // Over an earlier report: a failure midway keeps every old file as it was.
    await Deno.writeTextFile(`${fresh}/notes.txt`, "mine");
    const before = new Map(names.map((n) => [n, Deno.readFileSync(`${fresh}/${n}`)]));
    for (const n of [1, 5, 9]) {
      const title = "a different title";
      await assert.rejects(() => saveReport(fresh, inputs, { title, writeFile: failingOn(n) }));
      assert.deepEqual(tree(fresh), [...names, "notes.txt"].sort());
      for (const [name, bytes] of before) {
        assert.deepEqual(Deno.readFileSync(`${fresh}/${name}`), bytes, name);
      }
    }
    const provenance = {
      weights: "seed_224.safetensors",
      backend: "reference",
      preprocessing: "ToTensor, Resize 32 (antialias off)",
      originalSize: { width: 300, height: 200 },
      version: "1.2.3-test",
    };
    await saveReport(fresh, inputs, { title: "a different title", provenance });
    assert.deepEqual(tree(fresh), [...names, "notes.txt"].sort());
    const html = Deno.readTextFileSync(`${fresh}/report.html`);
    assert.ok(html.includes("a different title"));
    for (
      const s of [
        "seed_224.safetensors",
        "<dd>reference</dd>",
        "Resize 32",
        "300×200",
        "1.2.3-test",
      ]
    ) {
      assert.ok(html.includes(s), `no provenance "${s}"`);
    }
    // Each figure once (the graph as its PNG, its SVG linked), each file linked once.
    assert.equal(html.split("<img ").length - 1, 7);
    assert.ok(!html.includes("data:image/svg+xml"));
    for (const n of names.filter((n) => n !== "report.html")) {
      assert.equal(html.split(`href="${n}"`).length - 1, 1, n);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "saveReport interrupted by SIGTERM leaves no folder and no temporary",
  ignore: Deno.build.os === "windows",
  fn: async () => {
    const dir = await Deno.makeTempDir();
    try {
      const here = (path: string): string => JSON.stringify(new URL(path, import.meta.url).href);
      // The fourth file never finishes: the run is caught with three figures written.
      const script = `import { compile, initParams, seedTokenizer } from ${here("../mod.ts")};
        import { saveReport } from ${here("../viz/report.ts")};
        const graph = seedTokenizer({ height: 32, width: 32, patch: 8, embedding: 16 });
        const model = await compile(graph, { backend: "reference" });
        const image = { shape: [1, 3, 32, 32], data: new Float32Array(3 * 32 * 32).fill(0.5) };
        const { stages } = await model.run({ image }, { stages: "all" });
        const pos = initParams(graph).get("positional_embedding.positional_embedding");
        let count = 0;
        const writeFile = async (path, bytes) => {
          if (++count === 4) {
            console.log("writing");
            await new Promise((r) => setTimeout(r, 60_000));
          }
          await Deno.writeFile(path, bytes);
        };
        await saveReport(${JSON.stringify(`${dir}/report`)}, {
          image, patches: stages.patches, tokens: stages.tokens, embeddings: stages.embeddings,
          pos, patch: 8, graph,
        }, { title: "t", writeFile });`;
      const child = new Deno.Command(Deno.execPath(), {
        args: ["eval", script],
        stdout: "piped",
        stderr: "inherit",
      }).spawn();
      const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
      let said = "";
      while (!said.includes("writing")) {
        const { value, done } = await lines.read();
        if (done) break;
        said += value;
      }
      const during = tree(dir);
      assert.ok(during.some((n) => /^report\/\.tessera-tmp-[0-9a-z]+\/$/.test(n)), `${during}`);
      child.kill("SIGTERM");
      const status = await child.status;
      await lines.cancel();
      assert.equal(status.code, 143);
      assert.deepEqual(tree(dir), []);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
