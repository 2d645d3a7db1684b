// Figures of a whole ViT run: class-token attention maps, attention rollout, top-k bars and the
// ViT report folder. Plotted SVGs are checked by structure (panels, titles, labels), never by
// pixel; the numeric parts (rollout, upsampling, overlay) exactly.
import assert from "node:assert/strict";
import { compile, type TensorData, vit } from "../mod.ts";
import { graphToDot } from "../viz/graph_diagram.ts";
import {
  attentionMapsFigure,
  attentionOverlay,
  attentionRollout,
  attentionRolloutFigure,
  classAttention,
  classTokenRollout,
  type OverlayImage,
  topKFigure,
  upsampleBilinear,
} from "../viz/vit_figures.ts";
import { saveVitReport, vitReportFiles, type VitReportInputs } from "../viz/vit_report.ts";

/** `[B, heads, n, n]` attention whose every row of every head is `row(b, h, i)`. */
function attention(
  batch: number,
  heads: number,
  n: number,
  row: (b: number, h: number, i: number) => number[],
): TensorData {
  const data = new Float32Array(batch * heads * n * n);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      for (let i = 0; i < n; i++) data.set(row(b, h, i), ((b * heads + h) * n + i) * n);
    }
  }
  return { shape: [batch, heads, n, n], data };
}

const eye = (n: number) => (_b: number, _h: number, i: number): number[] =>
  Array.from({ length: n }, (_, j) => (i === j ? 1 : 0));

function grey(width: number, height: number, v = 128): OverlayImage {
  return { width, height, data: new Uint8Array(width * height * 3).fill(v) };
}

/** The text of every `<text>` element, in document order. */
function texts(svg: string): string[] {
  return [...svg.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]);
}

function count(haystack: string, needle: string): number {
  return haystack.split(needle).length - 1;
}

Deno.test("classAttention is row 0 of one head without the class token's own entry", () => {
  const attn = attention(2, 2, 3, (b, h, i) => [i, 10 * b + h, 100 + 10 * b + h]);
  assert.deepEqual([...classAttention(attn, 1, 1)], [11, 111]);
  assert.deepEqual([...classAttention(attn, 0)], [0, 100]);
  assert.throws(() => classAttention(attn, 2), { name: "RangeError", message: /head 2/ });
  assert.throws(() => classAttention({ shape: [1, 3, 3], data: new Float32Array(27) }, 0), {
    name: "RangeError",
    message: /\[B, heads, N, N\]/,
  });
});

Deno.test("attentionRollout: identity stays identity, uniform stays uniform", () => {
  const n = 5;
  const r = attentionRollout([attention(1, 3, n, eye(n)), attention(1, 3, n, eye(n))]);
  assert.deepEqual([...r], [...attention(1, 1, n, eye(n)).data]);
  // The class token's row over the patches: all 0, a uniform map.
  assert.deepEqual([...r.subarray(1, n)], [0, 0, 0, 0]);
  assert.deepEqual([...classTokenRollout([attention(1, 3, n, eye(n))])], [0, 0, 0, 0]);
  const uniform = attention(1, 2, n, () => new Array(n).fill(1 / n));
  const u = attentionRollout([uniform, uniform, uniform]);
  const row = [...u.subarray(1, n)];
  for (const v of row) assert.ok(Math.abs(v - row[0]) < 1e-12, `${row}`);
  for (let i = 0; i < n; i++) {
    const s = u.subarray(i * n, (i + 1) * n).reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(s - 1) < 1e-12, `row ${i} sums to ${s}`);
  }
  const fast = classTokenRollout([uniform, uniform, uniform]);
  for (let j = 0; j < n - 1; j++) assert.ok(Math.abs(fast[j] - row[j]) < 1e-12);
});

Deno.test("attentionRollout matches a hand-computed 2-block example, blocks in order", () => {
  // Block 1: heads [[1,0],[1,0]] and [[0,1],[1,0]]: mean [[.5,.5],[1,0]], + I, rows
  // renormalized: [[.75,.25],[.5,.5]]. Block 2: both heads [[0,1],[0,1]]: [[.5,.5],[0,1]].
  // R = Â2 · Â1 = [[.625,.375],[.5,.5]] (the other order would give [[.375,.625],[.25,.75]]).
  const heads1 = [[[1, 0], [1, 0]], [[0, 1], [1, 0]]];
  const block1 = attention(2, 2, 2, (b, h, i) => (b === 1 ? heads1[h][i] : [0.5, 0.5]));
  const block2 = attention(2, 2, 2, (b) => (b === 1 ? [0, 1] : [0.5, 0.5]));
  const r = attentionRollout([block1, block2], 1);
  const want = [0.625, 0.375, 0.5, 0.5];
  for (let i = 0; i < 4; i++) assert.ok(Math.abs(r[i] - want[i]) < 1e-7, `${[...r]}`);
  // The class token's row alone, from the last block down, agrees.
  const row = classTokenRollout([block1, block2], 1);
  assert.equal(row.length, 1);
  assert.ok(Math.abs(row[0] - 0.375) < 1e-7, `${row}`);
  assert.throws(() => attentionRollout([]), { name: "RangeError" });
  assert.throws(() => attentionRollout([block1, attention(2, 2, 3, eye(3))]), /block 1/);
});

Deno.test("classTokenRollout equals row 0 of the full rollout on random softmax attention", () => {
  let seed = 7;
  const rand = (): number => (seed = (seed * 16807) % 2147483647) / 2147483647;
  const n = 7;
  const softmaxRow = (): number[] => {
    const e = Array.from({ length: n }, () => Math.exp(3 * rand()));
    const s = e.reduce((a, b) => a + b, 0);
    return e.map((v) => v / s);
  };
  const blocks = [2, 3, 1].map((heads) => attention(2, heads, n, softmaxRow));
  const full = attentionRollout(blocks, 1);
  const row = classTokenRollout(blocks, 1);
  for (let j = 1; j < n; j++) assert.ok(Math.abs(row[j - 1] - full[j]) < 1e-6, `${j}`);
});

Deno.test("upsampleBilinear uses half-pixel centres, clamped at the edges", () => {
  assert.deepEqual([...upsampleBilinear([0, 1], 1, 2, 1, 4)], [0, 0.25, 0.75, 1]);
  const c = upsampleBilinear(new Array(6).fill(0.3), 2, 3, 5, 7);
  for (const v of c) assert.ok(Math.abs(v - 0.3) < 1e-6);
  // Rows of the map are rows of the image: a map hot in row 1 is hot at the bottom.
  const rows = upsampleBilinear([0, 0, 1, 1], 2, 2, 4, 4);
  assert.deepEqual([...rows.subarray(0, 4)], [0, 0, 0, 0]);
  assert.deepEqual([...rows.subarray(12, 16)], [1, 1, 1, 1]);
});

Deno.test("attentionOverlay: the hottest patch is where it is in the image", () => {
  // A 2x3 grid of 8x8 patches on a 24x16 (width x height) image.
  const [gh, gw, p] = [2, 3, 8];
  const image = grey(gw * p, gh * p, 0);
  for (let r = 0; r < gh; r++) {
    for (let c = 0; c < gw; c++) {
      const map = new Array(gh * gw).fill(0);
      map[r * gw + c] = 1;
      const img = attentionOverlay(image, map, [gh, gw], { alpha: 1 });
      let best = -1;
      let at = [0, 0];
      for (let y = 0; y < img.height; y++) {
        for (let x = 0; x < img.width; x++) {
          const o = 3 * (y * img.width + x);
          const v = img.data[o] + img.data[o + 1] + img.data[o + 2];
          if (v > best) [best, at] = [v, [x, y]];
        }
      }
      const [x, y] = at;
      assert.ok(x >= c * p && x < (c + 1) * p && y >= r * p && y < (r + 1) * p, `${r},${c}: ${at}`);
    }
  }
  // alpha 0 is the image itself.
  const photo = { width: 2, height: 1, data: Uint8Array.of(1, 2, 3, 4, 5, 6) };
  assert.deepEqual([...attentionOverlay(photo, [1], [1, 1], { alpha: 0 }).data], [
    1,
    2,
    3,
    4,
    5,
    6,
  ]);
});

Deno.test("attentionMapsFigure: one titled panel per head, one colour bar", async () => {
  for (const heads of [3, 6]) {
    const n = 1 + 2 * 3;
    const attn = attention(
      1,
      heads,
      n,
      (_b, h) => Array.from({ length: n }, (_, j) => (j + h) / 50),
    );
    const svg = await attentionMapsFigure(attn, grey(24, 16), { grid: [2, 3], block: 7 });
    const t = texts(svg);
    for (let h = 0; h < heads; h++) {
      assert.equal(t.filter((s) => s === `block 7, head ${h}`).length, 1, `head ${h}`);
    }
    assert.equal(t.filter((s) => /^block \d+, head \d+$/.test(s)).length, heads);
    assert.ok(t.includes("input"));
    assert.ok(t.includes("Class-token attention, block 7"));
    assert.equal(count(svg, "<image "), heads + 1);
    assert.equal(count(svg, 'aria-roledescription="legend"'), 1);
    assert.ok(/Gradient legend titled 'attention'/.test(svg));
  }
  const attn = attention(1, 1, 5, () => [0.2, 0.2, 0.2, 0.2, 0.2]);
  await assert.rejects(
    () => attentionMapsFigure(attn, grey(8, 8), { grid: [3, 3], block: 0 }),
    { name: "RangeError", message: /needs N = 10 .* N = 5/ },
  );
});

Deno.test("attentionRolloutFigure: the input beside the rollout, with a colour bar", async () => {
  const n = 1 + 4;
  const attn = attention(
    1,
    2,
    n,
    (_b, _h, i) => Array.from({ length: n }, (_, j) => (i === j ? 0.6 : 0.1)),
  );
  const svg = await attentionRolloutFigure([attn, attn, attn], grey(16, 16), { grid: [2, 2] });
  const t = texts(svg);
  assert.ok(t.includes("Attention rollout over 3 blocks"));
  assert.ok(t.includes("attention rollout") && t.includes("input"));
  assert.equal(count(svg, "<image "), 2);
  assert.equal(count(svg, 'aria-roledescription="legend"'), 1);
});

Deno.test("topKFigure: bars sorted by probability, each labelled as a percentage", async () => {
  const top = [
    { name: "tabby, tabby cat", p: 0.31 },
    { name: "Egyptian cat", p: 0.52 },
    { name: "crane", p: 0.01 },
    { name: "crane", p: 0.001 }, // ImageNet-1k has two classes of this name
  ];
  const svg = await topKFigure(top);
  const t = texts(svg);
  const names = t.filter((s) => top.some((c) => c.name === s));
  assert.deepEqual(names, ["Egyptian cat", "tabby, tabby cat", "crane", "crane"]);
  const labels = t.filter((s) => /^[\d.]+%$/.test(s) && !/^\d+%$/.test(s));
  assert.deepEqual(labels, ["52.0%", "31.0%", "1.00%", "0.10%"]);
  assert.equal(count(svg, 'aria-roledescription="bar"'), 4);
  assert.ok(t.includes("Top-4 classes") && t.includes("probability"));
  await assert.rejects(() => topKFigure([{ name: "x", p: 1.5 }]), { name: "RangeError" });
});

Deno.test("graphToDot collapses blocks 1..L-1 of a ViT into one box", () => {
  const g = vit({ image: 16, patch: 8, dim: 8, depth: 3, heads: 2, classes: 4 });
  const dot = graphToDot(g, { collapseBlocks: true });
  assert.ok(dot.includes("blocks.1 … blocks.2\\n2 more blocks like blocks.0"), dot);
  assert.ok(dot.includes("blocks.0.attn.qkv.weight"));
  assert.ok(!dot.includes("blocks.1.") && !dot.includes("blocks.2."));
  assert.equal(count(dot, " -> blocks "), 1);
  assert.equal(count(dot, "  blocks -> "), 1);
  assert.ok(graphToDot(g).includes("blocks.2.mlp.fc2.weight"));
});

/** A small random-init ViT's report inputs (32x32 image, 4x4 patches, 2 blocks, 10 classes). */
async function smallVitRun(): Promise<VitReportInputs> {
  const graph = vit({ image: 32, patch: 8, dim: 16, depth: 2, heads: 2, classes: 10 });
  const model = await compile(graph, { backend: "reference" });
  const data = Float32Array.from({ length: 3 * 32 * 32 }, (_, i) => Math.sin(i / 37));
  const stages = ["blocks.0.attn", "blocks.1.attn"];
  const run = await model.run({ image: { shape: [1, 3, 32, 32], data } }, { stages });
  model.dispose();
  const pixels = new Uint8Array(32 * 32 * 3);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 7) % 256;
  return {
    image: { width: 32, height: 32, data: pixels },
    attention: stages.map((s) => run.stages[s]),
    grid: [4, 4],
    blocks: [0, 1],
    top: [{ name: "class <3> & co", p: 0.25 }, { name: "class 7", p: 0.5 }],
    graph,
    provenance: {
      weights: "random init (seed 0)",
      backend: "reference",
      preprocessing: "timm eval transform: resize 35 bicubic, center crop 32, mean 0.5, std 0.5",
      originalSize: { width: 48, height: 40 },
      version: "9.8.7-test",
    },
  };
}

Deno.test("saveVitReport: exactly its files, each linked once, and the provenance", async () => {
  const inputs = await smallVitRun();
  const dir = await Deno.makeTempDir({ prefix: "tessera_vit_report_" });
  try {
    const out = `${dir}/a/report`;
    // A write failing midway leaves nothing, not even the new folders.
    let n = 0;
    const failing = async (path: string, bytes: Uint8Array): Promise<void> => {
      if (++n === 3) throw Object.assign(new Error("No space left on device"), { code: "ENOSPC" });
      await Deno.writeFile(path, bytes);
    };
    await assert.rejects(() => saveVitReport(out, inputs, { writeFile: failing }), /No space/);
    assert.deepEqual([...Deno.readDirSync(dir)], []);

    const files = await saveVitReport(out, inputs);
    const want = [
      "01_input.png",
      "02_top_k.png",
      "03_attention_block_00.png",
      "03_attention_block_01.png",
      "04_attention_rollout.png",
      "05_graph.svg",
      "report.html",
    ];
    assert.deepEqual(files, want);
    assert.deepEqual(vitReportFiles(2, [1, 0]), want);
    assert.deepEqual([...Deno.readDirSync(out)].map((e) => e.name).sort(), want);
    const html = Deno.readTextFileSync(`${out}/report.html`);
    for (const f of want.slice(0, -1)) {
      assert.equal(count(html, `href="${f}"`), 1, `${f} is linked once`);
    }
    // Every figure, the graph included, is shown exactly once, as a data: URI.
    assert.equal(count(html, "<img "), want.length - 1);
    assert.equal(count(html, 'src="data:image/svg+xml;base64,'), 1);
    assert.ok(!/src="(?!data:)/.test(html), "every image is a data: URI");
    assert.ok(!html.includes("<script"));
    for (
      const s of [
        "random init (seed 0)",
        "<dd>reference</dd>",
        "timm eval transform: resize 35 bicubic, center crop 32, mean 0.5, std 0.5",
        "48×40 pixels",
        "9.8.7-test",
        "<pre>graph vit",
        "class 7 at 50.0%",
      ]
    ) {
      assert.ok(html.includes(s), `report lacks ${s}`);
    }
    const svg = Deno.readTextFileSync(`${out}/05_graph.svg`);
    assert.ok(svg.includes("1 more block like blocks.0"), "blocks after the first are collapsed");
    assert.throws(() => vitReportFiles(2, [2]), { name: "RangeError", message: /block 2/ });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
