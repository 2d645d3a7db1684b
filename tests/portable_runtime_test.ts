// The browser bundle (`deno bundle --platform browser mod.ts`) outside Deno: in headless
// Chromium, on a plain page (no SharedArrayBuffer) and a cross-origin isolated one (COOP + COEP),
// each in the page and in a dedicated worker, and in Node. Every CPU backend must match the
// interpreter, log no error, and say in explain() how many threads ran and why; the isolated
// page and worker and Node must really split the js backend's conv across threads.
import assert from "node:assert/strict";
import { type BrowserContext, chromium, type Page } from "npm:playwright-core@1.65.1";
import { type BackendName, compile, initParams, seedTokenizer } from "../mod.ts";
import {
  planThreads,
  type RuntimeFeatures,
  runtimeFeatures,
} from "../codegen/backends/runtime_features.ts";
import { withMemory } from "../codegen/backends/wasm_plan.ts";
import { gemmModule } from "../codegen/render/wasm/gemm_kernel.ts";
import { PROBE_SIDE, probeImage, type ProbeResult } from "./portable_probe.ts";
import {
  bundleForBrowser,
  CHROMIUM,
  CHROMIUM_FLAGS,
  HAVE_CHROMIUM,
  NODE_VERSION as NODE,
} from "./browser_env.ts";

const BACKENDS: readonly BackendName[] = ["auto", "wasm", "js", "cpu", "reference"];
const TOLERANCE = 1e-4;

// What a page, a worker or Node sends back.
interface ContextReport {
  readonly isolated?: boolean;
  readonly cores: number;
  readonly results?: ProbeResult[];
  readonly error?: string;
}

// An empty icon, so Chromium does not ask for /favicon.ico (a 404 it would log as an error).
const INDEX_HTML = `<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,">
<title>tessera portable</title>`;
const WORKER_JS = `import * as tessera from "/tessera.js";
import { probe } from "/probe.js";
self.onmessage = async (event) => {
  try {
    const results = await probe(tessera, event.data);
    self.postMessage({ isolated: self.crossOriginIsolated, cores: navigator.hardwareConcurrency, results });
  } catch (e) {
    self.postMessage({ cores: 0, error: String((e && e.stack) || e) });
  }
};
`;
const NODE_JS = `import * as tessera from "./tessera.js";
import { probe } from "./probe.js";
import os from "node:os";
const results = await probe(tessera, JSON.parse(process.argv[2]));
process.stdout.write(JSON.stringify({ cores: os.availableParallelism(), results }));
`;

/** Bundles mod.ts and the probe into `dir` (in parallel), with the page, worker and Node glue. */
async function build(dir: string): Promise<void> {
  await Promise.all([
    bundleForBrowser("mod.ts", `${dir}/tessera.js`),
    bundleForBrowser("tests/portable_probe.ts", `${dir}/probe.js`),
  ]);
  await Deno.writeTextFile(`${dir}/index.html`, INDEX_HTML);
  await Deno.writeTextFile(`${dir}/worker.js`, WORKER_JS);
  await Deno.writeTextFile(`${dir}/node_probe.mjs`, NODE_JS);
  // Node reads the bundles' `export` syntax as ES modules only under "type": "module".
  await Deno.writeTextFile(`${dir}/package.json`, `{ "type": "module" }`);
}

/** The bundle, checked to import no Node built-in at the top level (no browser can load one). */
async function browserBundle(dir: string): Promise<string> {
  const code = await Deno.readTextFile(`${dir}/tessera.js`);
  const imports = [...code.matchAll(/^import [^;]*? from "(node:[^"]+)";$/gm)].map((m) => m[1]);
  assert.deepEqual(imports, [], "the browser bundle imports Node built-ins at the top level");
  return code;
}

/** Serves `dir` on 127.0.0.1; `isolated` adds COOP same-origin and COEP require-corp. */
async function serve(dir: string, isolated: boolean): Promise<Deno.HttpServer<Deno.NetAddr>> {
  const code = await browserBundle(dir);
  const types: Record<string, string> = { js: "text/javascript", html: "text/html" };
  return Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (request) => {
    const name = new URL(request.url).pathname.slice(1) || "index.html";
    const headers = new Headers({ "content-type": types[name.split(".").pop() ?? ""] ?? "" });
    if (isolated) {
      headers.set("cross-origin-opener-policy", "same-origin");
      headers.set("cross-origin-embedder-policy", "require-corp");
    }
    if (name === "tessera.js") return new Response(code, { headers });
    if (!/^[a-z_]+\.(js|html)$/.test(name)) return new Response("not found", { status: 404 });
    try {
      return new Response(await Deno.readFile(`${dir}/${name}`), { headers });
    } catch {
      return new Response("not found", { status: 404 });
    }
  });
}

/** Runs the probe in the page and in a dedicated worker of it; collects every error logged. */
async function inBrowser(
  context: BrowserContext,
  origin: string,
): Promise<{ page: ContextReport; worker: ContextReport; errors: string[] }> {
  const page: Page = await context.newPage();
  const errors: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(`console: ${m.text()}`);
  });
  page.on("pageerror", (e) => errors.push(`pageerror: ${e}`));
  page.on("requestfailed", (r) => errors.push(`request failed: ${r.url()}`));
  try {
    await page.goto(`${origin}/index.html`, { waitUntil: "load" });
    const backends = JSON.stringify(BACKENDS);
    // Strings, so this Deno-typed file needs no DOM types.
    const inPage: ContextReport = await page.evaluate(`(async () => {
      const tessera = await import("/tessera.js");
      const { probe } = await import("/probe.js");
      const results = await probe(tessera, ${backends});
      return { isolated: crossOriginIsolated, cores: navigator.hardwareConcurrency, results };
    })()`);
    const inWorker: ContextReport = await page.evaluate(`new Promise((resolve) => {
      const worker = new Worker("/worker.js", { type: "module" });
      worker.onmessage = (event) => {
        resolve(event.data);
        worker.terminate();
      };
      worker.onerror = (event) => resolve({ cores: 0, error: "worker error: " + event.message });
      worker.postMessage(${backends});
    })`);
    return { page: inPage, worker: inWorker, errors };
  } finally {
    await page.close();
  }
}

function maxDifference(a: readonly number[], b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, "output sizes differ");
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

/** The explain() thread line ("2 threads: ...") and the most threads any kernel was split over. */
function threadsOf(explain: string): { summary: string; threads: number; widest: number } {
  const line = explain.split("\n").find((l) => /^\d+ threads?: /.test(l));
  assert(line, `explain() has a thread line:\n${explain}`);
  const widest = Math.max(
    0,
    ...[...explain.matchAll(/ over (\d+) threads?;/g)].map((m) => Number(m[1])),
  );
  return { summary: line, threads: Number(line.split(" ")[0]), widest };
}

/** Every backend ran as asked, without fallback, and matched this context's and Deno's reference. */
function checkOutputs(where: string, report: ContextReport, deno: Float32Array): ProbeResult[] {
  assert.equal(report.error, undefined, `${where}: ${report.error}`);
  const results = report.results ?? [];
  assert.deepEqual(results.map((r) => r.backend), BACKENDS, where);
  for (const r of results) {
    assert.equal(r.error, undefined, `${where} ${r.backend}: ${r.error}`);
    assert.deepEqual(r.fallbacks, [], `${where} ${r.backend} fell back`);
    assert.deepEqual(r.warnings, [], `${where} ${r.backend} warned`);
    if (r.backend !== "auto") assert.equal(r.ran, r.backend, `${where}: ${r.reason}`);
  }
  const reference = results.find((r) => r.backend === "reference") as ProbeResult;
  const referenceError = maxDifference(reference.output, deno);
  assert(referenceError <= TOLERANCE, `${where}: reference is ${referenceError} from Deno's`);
  for (const r of results) {
    for (const [run, output] of [["first", r.output], ["second", r.rerun]] as const) {
      const error = maxDifference(output, deno);
      assert(error <= TOLERANCE, `${where} ${r.backend} ${run} run: ${error} from reference`);
    }
  }
  return results;
}

/** The js and wasm backends' thread lines; the reason repeats them. */
function cpuThreads(
  where: string,
  results: readonly ProbeResult[],
): Record<string, ReturnType<typeof threadsOf>> {
  return Object.fromEntries(
    results.filter((r) => r.ran === "js" || r.ran === "wasm").map((r) => {
      const t = threadsOf(r.explain);
      assert(r.reason.endsWith(`; ${t.summary}`), `${where} ${r.backend}: reason ${r.reason}`);
      // The conv must run on the WebAssembly micro-kernel, over shared memory or not.
      if (r.ran === "wasm") assert.match(r.explain, /on WASM SIMD/, `${where} ${r.backend}`);
      return [r.backend, t];
    }),
  );
}

// The same run in Deno, from source: what every context must reproduce.
async function denoReference(): Promise<Float32Array> {
  const graph = seedTokenizer({ height: PROBE_SIDE, width: PROBE_SIDE, patch: 16, embedding: 64 });
  const model = await compile(graph, { backend: "reference", weights: initParams(graph, 0) });
  const { output } = await model.run({ image: probeImage() });
  model.dispose();
  return output.data;
}

// A Deno thread as features, changed one at a time to stand for the other runtimes.
const DENO_LIKE: RuntimeFeatures = {
  sharedMemory: true,
  sharedWasmMemory: true,
  crossOriginIsolated: undefined,
  canBlock: true,
  waitAsync: true,
  workers: "web",
  cores: 8,
};

Deno.test("portable: thread plans for each runtime, detected here as Deno's", () => {
  const here = runtimeFeatures();
  assert.equal(here.sharedMemory && here.canBlock && here.workers === "web", true);
  const plan = (features: Partial<RuntimeFeatures>, requested?: number, wasm = false) =>
    planThreads(requested, { ...DENO_LIKE, ...features }, { wasm });
  assert.deepEqual(
    [plan({}).threads, plan({}).wait, plan({}, 2).threads, plan({ cores: 1 }).why],
    [4, "block", 2, "one core here"],
  );
  const page = plan({ sharedMemory: false, crossOriginIsolated: false, canBlock: false });
  assert.deepEqual([page.threads, page.shared], [1, false]);
  assert.equal(page.why, "no SharedArrayBuffer (page not cross-origin isolated)");
  const isolated = plan({ crossOriginIsolated: true, canBlock: false });
  assert.deepEqual([isolated.threads, isolated.wait, isolated.shared], [4, "async", true]);
  assert.match(plan({ canBlock: false, waitAsync: false }).why, /no Atomics\.waitAsync/);
  assert.equal(plan({ workers: "node" }).workers, "node");
  assert.match(plan({ workers: "none" }).why, /no Worker here/);
  assert.equal(plan({ sharedWasmMemory: false }).threads, 4, "js needs no WebAssembly memory");
  assert.equal(plan({ sharedWasmMemory: false }, undefined, true).threads, 1);
  assert.equal(plan({ sharedMemory: false }, 1).why, "threads: 1 was requested");
});

Deno.test("portable: the micro-kernel module links to a non-shared memory once unshared", () => {
  const module = gemmModule([{ n: 8, runs: 1, runLength: 16, runStride: 1, fma: false }], 1);
  const memory = new WebAssembly.Memory({ initial: 1, maximum: 1 });
  assert.throws(() =>
    new WebAssembly.Instance(new WebAssembly.Module(module), { env: { memory } })
  );
  const unshared = withMemory(module, false);
  assert.equal(unshared.length, module.length);
  assert.equal(unshared.filter((b, i) => b !== module[i]).length, 1, "one byte changes");
  const instance = new WebAssembly.Instance(new WebAssembly.Module(unshared), { env: { memory } });
  assert.equal(typeof instance.exports.gemm0, "function");
  assert.equal(withMemory(module, true), module);
});

let built: Promise<string> | undefined;
const bundleDir = (): Promise<string> =>
  built ??= Deno.makeTempDir({ prefix: "tessera_portable_" }).then(async (dir) => {
    await build(dir);
    return dir;
  });

Deno.test({
  // Skipped, with the reason in its name, only where Chromium is not installed.
  name: "portable: the browser bundle runs every CPU backend in Chromium, plain and isolated" +
    (HAVE_CHROMIUM ? "" : ` (skipped: ${CHROMIUM} is missing; apt-get install -y chromium)`),
  ignore: !HAVE_CHROMIUM,
  // Playwright keeps pipes to the browser open until its process is reaped.
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const [dir, deno] = await Promise.all([bundleDir(), denoReference()]);
    const plain = await serve(dir, false);
    const isolated = await serve(dir, true);
    const profile = await Deno.makeTempDir({ prefix: "tessera_chromium_" });
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: [...CHROMIUM_FLAGS],
    });
    try {
      const origin = (s: Deno.HttpServer<Deno.NetAddr>) => `http://127.0.0.1:${s.addr.port}`;
      const open = await inBrowser(context, origin(plain));
      assert.deepEqual(open.errors, [], "plain page: no console error");
      for (const [where, report] of [["plain page", open.page], ["plain worker", open.worker]]) {
        const r = report as ContextReport;
        assert.equal(r.isolated, false, `${where} is not cross-origin isolated`);
        const threads = cpuThreads(where as string, checkOutputs(where as string, r, deno));
        for (const backend of ["js", "wasm"]) {
          assert.equal(
            threads[backend]?.summary,
            "1 thread: no SharedArrayBuffer (page not cross-origin isolated)",
            `${where} ${backend}`,
          );
        }
      }

      const coi = await inBrowser(context, origin(isolated));
      assert.deepEqual(coi.errors, [], "isolated page: no console error");
      assert.equal(coi.page.isolated, true, "the COOP/COEP page is cross-origin isolated");
      assert.equal(coi.worker.isolated, true, "its worker is cross-origin isolated");
      const page = cpuThreads("isolated page", checkOutputs("isolated page", coi.page, deno));
      const worker = cpuThreads(
        "isolated worker",
        checkOutputs("isolated worker", coi.worker, deno),
      );
      if (coi.page.cores > 1) {
        // A page's main thread may not block: it must wait for the workers asynchronously.
        assert(page.js.threads > 1 && page.js.widest > 1, `isolated page js: ${page.js.summary}`);
        assert.match(page.js.summary, /Atomics\.waitAsync/);
        // Inside a worker Atomics.wait is allowed, and the pool's own workers must start.
        assert(worker.js.threads > 1 && worker.js.widest > 1, `worker js: ${worker.js.summary}`);
        assert.match(worker.js.summary, /waits with Atomics\.wait$/);
        assert(page.wasm.threads > 1 && worker.wasm.threads > 1, "wasm uses threads too");
      }
    } finally {
      await context.close();
      await plain.shutdown();
      await isolated.shutdown();
      await Deno.remove(profile, { recursive: true });
    }
  },
});

Deno.test({
  name: "portable: the same bundle runs every CPU backend in Node" +
    (NODE === undefined ? " (skipped: node is not installed)" : ""),
  ignore: NODE === undefined,
  fn: async () => {
    const [dir, deno] = await Promise.all([bundleDir(), denoReference()]);
    const out = await new Deno.Command("node", {
      args: ["node_probe.mjs", JSON.stringify(BACKENDS)],
      cwd: dir,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert(out.success, `node ${NODE}: ${stderr}`);
    assert.equal(stderr, "", "node wrote no warning or error");
    const report: ContextReport = JSON.parse(new TextDecoder().decode(out.stdout));
    const threads = cpuThreads("node", checkOutputs(`node ${NODE}`, report, deno));
    if (report.cores > 1) {
      assert(threads.js.threads > 1 && threads.js.widest > 1, `node js: ${threads.js.summary}`);
      assert.match(threads.js.summary, /node:worker_threads/);
    }
  },
});

// Last: removes the bundle once both tests are done with it.
Deno.test({
  name: "portable: clean up the bundle",
  ignore: !HAVE_CHROMIUM && NODE === undefined,
  fn: async () => {
    if (built) await Deno.remove(await built, { recursive: true });
  },
});
