// The browser example (examples/browser/) driven through its form in headless Chromium, served
// plain and cross-origin isolated by its own serve.ts: the seed tokenizer (no checkpoint) and the
// whole micro ViT (a checkpoint) on a fixture image with backend auto must match the same
// computation done here in Deno on the reference backend, say which backend ran and why (with the
// thread plan the page's isolation allows), log no error, and show a bad checkpoint's error as the
// library's one-line message.
import assert from "node:assert/strict";
import { type BrowserContext, chromium, type Page } from "npm:playwright-core@1.65.1";
import {
  BACKEND_NAMES,
  compile,
  type Graph,
  imageToTensorData,
  initParams,
  loadImage,
  loadSafetensors,
  parseSafetensors,
  type RunResult,
  seedPipeline,
  type TensorData,
  timmEvalTransform,
  vit,
  vitConfigFromCheckpoint,
  type Weights,
} from "../mod.ts";
import type { ExampleResult, TokenizerResult, VitResult } from "../examples/browser/app.ts";
import { buildExample, startExampleServer } from "../examples/browser/serve.ts";
import { CHROMIUM, CHROMIUM_FLAGS, HAVE_CHROMIUM } from "./browser_env.ts";

const IMAGE = new URL("./fixtures/image_300x200.png", import.meta.url);
const MICRO = new URL("./fixtures/vit/vit_micro.safetensors", import.meta.url);
/** The fixtures' tolerance for float32 backends, scaled by max(1, max |want|). */
const TOLERANCE = 1e-4;
/** One run in the page; the micro ViT and the 224 tokenizer take well under a second. */
const RUN_TIMEOUT_MS = 30_000;

/** What Deno computes on the reference backend, for the page to reproduce. */
interface Expected {
  readonly tokenizer: Float32Array;
  readonly logits: Float32Array;
  readonly top: readonly number[];
  readonly attention: Float32Array;
  /** parseSafetensors' message for the PNG read as a checkpoint. */
  readonly notCheckpoint: string;
}

async function reference(
  graph: Graph,
  weights: Weights,
  inputs: Record<string, TensorData>,
  stages: string[] = [],
): Promise<RunResult> {
  const model = await compile(graph, { backend: "reference", weights });
  try {
    return await model.run(inputs, { stages });
  } finally {
    model.dispose();
  }
}

/** The CLI's path (examples/vit.ts --image), on the reference backend. */
async function expected(): Promise<Expected> {
  const decoded = await loadImage(IMAGE);
  const seed = seedPipeline({
    imageHeight: decoded.height,
    imageWidth: decoded.width,
    size: 224,
    patch: 16,
    embedding: 768,
    antialias: false,
  });
  const tokenizer = await reference(seed, initParams(seed, 0), {
    pixels: imageToTensorData(decoded),
  });

  const file = await loadSafetensors(MICRO);
  const { config } = vitConfigFromCheckpoint(file, {
    heads: 2,
    height: 32,
    width: 32,
    channels: 3,
  });
  const graph = vit(config);
  const weights = new Map(
    graph.params().map((p) => [p.attrs.name, file.tensors.get(p.attrs.name) as TensorData]),
  );
  const image = timmEvalTransform(decoded, { size: 32, cropPct: 0.9 });
  const last = `blocks.${config.depth - 1}.attn`;
  const run = await reference(graph, weights, { image }, [last]);
  const logits = run.output.data;
  const top = [...logits.keys()].sort((a, b) => logits[b] - logits[a]).slice(0, 5);
  // The last block's class-token row over the patches, averaged over heads.
  const attn = run.stages[last];
  const [, heads, n] = attn.shape;
  const attention = new Float32Array(n - 1);
  for (let h = 0; h < heads; h++) {
    for (let p = 1; p < n; p++) attention[p - 1] += attn.data[h * n * n + p] / heads;
  }

  let notCheckpoint = "";
  try {
    parseSafetensors(await Deno.readFile(IMAGE), "image_300x200.png");
  } catch (e) {
    notCheckpoint = (e as Error).message;
  }
  assert(notCheckpoint !== "", "a PNG is not a safetensors file");
  return { tokenizer: tokenizer.output.data, logits, top, attention, notCheckpoint };
}

function assertClose(got: ArrayLike<number>, want: ArrayLike<number>, what: string): void {
  assert.equal(got.length, want.length, `${what}: sizes differ`);
  let scale = 1, worst = 0;
  for (let i = 0; i < want.length; i++) {
    scale = Math.max(scale, Math.abs(want[i]));
    worst = Math.max(worst, Math.abs(got[i] - want[i]));
  }
  assert(worst <= TOLERANCE * scale, `${what}: max difference ${worst} (scale ${scale})`);
}

/** Presses Run and waits for run `n` to finish; its result, from `#result[data-result]`. */
async function run(page: Page, n: number): Promise<ExampleResult> {
  await page.click("#run");
  await page.waitForSelector(
    `#result[data-run="${n}"]:is([data-status="done"], [data-status="error"])`,
    { state: "attached", timeout: RUN_TIMEOUT_MS },
  );
  return JSON.parse(await page.getAttribute("#result", "data-result") ?? "null");
}

/** The backend auto picked is named, and the reason says why and how many threads ran. */
function checkBackend(r: TokenizerResult | VitResult, isolated: boolean, what: string): void {
  assert.equal(r.requested, "auto", what);
  assert(
    (BACKEND_NAMES as readonly string[]).includes(r.backend) && r.backend !== "auto",
    `${what}: ${r.backend}`,
  );
  assert(
    r.reason.startsWith(`auto: ${r.backend}`),
    `${what}: ran ${r.backend} (fallbacks ${r.fallbacks.join("; ")}), reason ${r.reason}`,
  );
  assert.deepEqual([r.fallbacks, r.warnings], [[], []], `${what}: fallbacks or warnings`);
  assert.equal(r.crossOriginIsolated, isolated, `${what}: crossOriginIsolated`);
  if (r.backend !== "js" && r.backend !== "wasm") return; // A GPU has no thread plan.
  if (!isolated) {
    assert(
      r.reason.endsWith("; 1 thread: no SharedArrayBuffer (page not cross-origin isolated)"),
      `${what}: reason ${r.reason}`,
    );
    return;
  }
  const threads = Number(r.reason.match(/; (\d+) threads?: /)?.[1]);
  assert(threads >= 1, `${what}: no thread plan in the reason ${r.reason}`);
  if (r.cores > 1) {
    assert(threads > 1, `${what}: ${r.cores} cores but ${r.reason}`);
    assert.match(r.reason, /workers? over SharedArrayBuffer memory/, what);
    // A page's main thread may not block on Atomics.wait.
    assert.match(r.reason, /Atomics\.waitAsync/, what);
  }
}

/** Drives the page once through its three cases: tokenizer, whole ViT, a file that is no checkpoint. */
async function drive(
  context: BrowserContext,
  url: string,
  isolated: boolean,
  want: Expected,
): Promise<void> {
  const mode = isolated ? "isolated" : "plain";
  const page = await context.newPage();
  const errors: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(`console: ${m.text()}`);
  });
  page.on("pageerror", (e) => errors.push(`pageerror: ${e}`));
  page.on("requestfailed", (r) => errors.push(`request failed: ${r.url()}`));
  page.on("response", (r) => {
    if (r.status() >= 400) errors.push(`${r.status()} for ${r.url()}`);
  });
  try {
    await page.goto(url, { waitUntil: "load" });
    await page.waitForSelector(`#result[data-status="ready"]`, { state: "attached" });
    assert.equal(await page.evaluate("crossOriginIsolated"), isolated, `${mode}: the page`);
    const listed = await page.evaluate(
      `Array.from(document.querySelectorAll("#backend option"), (o) => o.value)`,
    );
    assert.deepEqual(listed, BACKEND_NAMES, `${mode}: the backend list is compile()'s`);
    await page.selectOption("#backend", "auto");
    await page.setInputFiles("#image", IMAGE.pathname);

    const tokenizer = await run(page, 1);
    assert.equal(tokenizer.mode, "tokenizer", `${mode}: ${JSON.stringify(tokenizer)}`);
    const t = tokenizer as TokenizerResult;
    checkBackend(t, isolated, `${mode} tokenizer`);
    assert.deepEqual([t.image.width, t.image.height], [300, 200]);
    assert.deepEqual(t.input.shape, [1, 200, 300, 3]);
    assert.deepEqual(t.output.shape, [1, 197, 768]);
    const output: number[] = await page.evaluate("Array.from(window.__tesseraOutput)");
    assertClose(output, want.tokenizer, `${mode} tokenizer output`);
    assertClose(t.classToken, want.tokenizer.subarray(0, 8), `${mode} class token`);
    const mean = want.tokenizer.reduce((s, v) => s + v, 0) / want.tokenizer.length;
    assertClose([t.output.stats.mean], [mean], `${mode} tokenizer mean`);

    await page.setInputFiles("#checkpoint", MICRO.pathname);
    const whole = await run(page, 2);
    assert.equal(whole.mode, "vit", `${mode}: ${JSON.stringify(whole)}`);
    const v = whole as VitResult;
    checkBackend(v, isolated, `${mode} vit`);
    assert.equal(v.headsFrom, "metadata", "the fixture's metadata has timm's num_heads");
    assert.deepEqual([v.config.depth, v.config.dim, v.config.heads, v.config.classes], [
      2,
      32,
      2,
      10,
    ]);
    assert.deepEqual(v.input.shape, [1, 3, 32, 32]);
    assertClose(v.logits, want.logits, `${mode} logits`);
    assert.deepEqual(v.top.map((c) => c.index), want.top, `${mode}: top-5 classes`);
    assert.deepEqual(v.top.map((c) => c.label), want.top.map((i) => `class ${i}`));
    const probabilities = v.top.map((c) => c.p);
    assert(probabilities.every((p, i) => i === 0 || p <= probabilities[i - 1]), "best first");
    assert.deepEqual(v.attention.grid, [4, 4]);
    assertClose(v.attention.map, want.attention, `${mode} attention`);
    const shown = await page.evaluate(
      `[document.querySelectorAll("#top li").length, document.getElementById("attention").hidden]`,
    );
    assert.deepEqual(shown, [5, false], `${mode}: top-5 list and attention canvas shown`);

    // A PNG picked as the checkpoint: the page shows the library's one-line message.
    await page.setInputFiles("#checkpoint", IMAGE.pathname);
    const failed = await run(page, 3);
    assert.deepEqual(failed, { mode: "error", error: want.notCheckpoint }, mode);
    const status = await page.textContent("#status");
    assert.equal(status, `error: ${want.notCheckpoint}`);
    assert.doesNotMatch(status ?? "", /\n|\bat .*:\d+:\d+/, "no stack trace");

    assert.deepEqual(errors, [], `${mode}: no page error`);
  } finally {
    await page.close();
  }
}

let built: Promise<string> | undefined;
let want: Promise<Expected> | undefined;

for (const isolated of [false, true]) {
  Deno.test({
    name: `browser example: ${isolated ? "cross-origin isolated" : "plain"} page, tokenizer and ` +
      "micro ViT on auto match Deno's reference" +
      (HAVE_CHROMIUM ? "" : ` (skipped: ${CHROMIUM} is missing; apt-get install -y chromium)`),
    ignore: !HAVE_CHROMIUM,
    // Playwright keeps pipes to the browser open until its process is reaped.
    sanitizeResources: false,
    sanitizeOps: false,
    fn: async () => {
      built ??= buildExample();
      want ??= expected();
      const [build, expectedResults] = await Promise.all([built, want]);
      const server = await startExampleServer({ isolated, port: 0, build });
      const profile = await Deno.makeTempDir({ prefix: "tessera_chromium_" });
      const context = await chromium.launchPersistentContext(profile, {
        executablePath: CHROMIUM,
        headless: true,
        args: [...CHROMIUM_FLAGS],
      });
      try {
        await drive(context, server.url, isolated, expectedResults);
      } finally {
        await context.close();
        await server.close();
        await Deno.remove(profile, { recursive: true });
      }
    },
  });
}

// Last: removes the shared bundle once both pages are done with it.
Deno.test({
  name: "browser example: clean up the bundle",
  ignore: !HAVE_CHROMIUM,
  fn: async () => {
    if (built) await Deno.remove(await built, { recursive: true });
  },
});
