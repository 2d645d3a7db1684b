// What a user installs (issue 15): the root module reaches no heavy npm package statically (gpu.js,
// with its native `gl` build and Dawn binaries, loads only when a gpu.js backend is chosen; the
// pictures' Vega, Graphviz and resvg only through the "./viz" entry point), the helpers the root
// exports are callable values, and `deno publish` ships the library alone.
import assert from "node:assert/strict";
import { broadcastIndex, broadcastShapes, normalizePerm } from "../mod.ts";

const ROOT = new URL("../", import.meta.url);

/** npm packages (or specifier fragments) that must stay out of a static module graph. */
const HEAVY = ["gpu.js", "vega", "@resvg", "@viz-js", "playwright", "onnxruntime"];

interface InfoDependency {
  readonly specifier: string;
  readonly code?: { readonly specifier?: string };
  readonly type?: { readonly specifier?: string };
  readonly isDynamic?: boolean;
  readonly npmPackage?: string;
}

interface InfoModule {
  readonly specifier: string;
  readonly dependencies?: readonly InfoDependency[];
  readonly npmPackage?: string;
}

interface Info {
  readonly roots: readonly string[];
  readonly modules: readonly InfoModule[];
}

async function deno(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    stdin: "null",
    env: { NO_COLOR: "1" },
  }).output();
  const text = new TextDecoder();
  return { code, stdout: text.decode(stdout), stderr: text.decode(stderr) };
}

async function info(entry: string): Promise<Info> {
  const ran = await deno(["info", "--json", entry]);
  assert.equal(ran.code, 0, `deno info ${entry} failed:\n${ran.stderr}`);
  return JSON.parse(ran.stdout) as Info;
}

/**
 * What `entry` reaches: each module found with the chain that leads to it. `types` also follows
 * type-only imports (what type-checking a user's program loads); `dynamic` also follows literal
 * `import()`s (what Deno downloads before the program starts, without lazy-dynamic-imports).
 */
function reach(graph: Info, types: boolean, dynamic = false): Map<string, string[]> {
  const modules = new Map(graph.modules.map((m) => [m.specifier, m]));
  const reached = new Map<string, string[]>(graph.roots.map((r) => [r, [r]]));
  const queue = [...graph.roots];
  while (queue.length > 0) {
    const from = queue.shift() as string;
    for (const dep of modules.get(from)?.dependencies ?? []) {
      const targets = [dep.isDynamic && !dynamic ? undefined : dep.code?.specifier];
      if (types) targets.push(dep.type?.specifier);
      for (const to of targets) {
        if (to === undefined || reached.has(to)) continue;
        reached.set(to, [...(reached.get(from) as string[]), dep.npmPackage ?? to]);
        queue.push(to);
      }
    }
  }
  return reached;
}

function heavyIn(graph: Info, types: boolean, dynamic = false): string[] {
  const found: string[] = [];
  for (const [specifier, chain] of reach(graph, types, dynamic)) {
    const name = specifier.replace(/^npm:\/?/, "");
    if (specifier.startsWith("npm:") && HEAVY.some((h) => name.startsWith(h))) {
      found.push(chain.join(" -> "));
    }
  }
  return found;
}

function dynamicNpm(graph: Info): string[] {
  return graph.modules.flatMap((m) =>
    (m.dependencies ?? []).filter((d) => d.isDynamic && d.specifier.startsWith("npm:"))
      .map((d) => d.specifier)
  );
}

Deno.test("publish: mod.ts reaches no heavy npm package statically; gpu.js loads on demand", async () => {
  const graph = await info("mod.ts");
  assert.deepEqual(heavyIn(graph, true), [], "heavy packages in mod.ts's static graph");
  // mod.ts names gpu.js in a literal dynamic import, so deno bundle finds it (and Deno caches
  // it first, even on a fresh cache) and inlines it.
  assert.ok(
    dynamicNpm(graph).some((s) => s.startsWith("npm:gpu.js@")),
    `gpu.js is not a dynamic import of mod.ts's graph: ${dynamicNpm(graph)}`,
  );
});

Deno.test("publish: the zero-permission demo's graph names no heavy npm package, even lazily", async () => {
  // examples/vit.ts imports api.ts, not mod.ts, and the pictures (Vega, Graphviz, resvg) by
  // specifiers Deno cannot see, so nothing heavy is downloaded unless it is used.
  assert.deepEqual(heavyIn(await info("examples/vit.ts"), false, true), []);
});

Deno.test({
  name:
    "publish: on a fresh cache the demo downloads only small tarballs, and later runs download none",
  // Playwright-free, but it fetches from the npm registry, which CI reaches (it installs Deno so).
  sanitizeResources: false,
  fn: async () => {
    const cache = await Deno.makeTempDir({ prefix: "tessera_deno_dir_" });
    try {
      const demo = async (): Promise<{ code: number; output: string }> => {
        const ran = await new Deno.Command(Deno.execPath(), {
          args: ["run", "examples/vit.ts"],
          cwd: ROOT,
          stdin: "null",
          env: { NO_COLOR: "1", DENO_DIR: cache },
        }).output();
        const text = new TextDecoder();
        return { code: ran.code, output: text.decode(ran.stdout) + text.decode(ran.stderr) };
      };
      const first = await demo();
      assert.equal(first.code, 0, first.output);
      const tarballs = [...first.output.matchAll(/Download (\S+\.tgz)/g)].map((m) => m[1]);
      const heavy = tarballs.filter((t) =>
        HEAVY.some((h) => t.includes(`/${h}`)) || /\/(gl|webgpu|node-gyp)\//.test(t)
      );
      assert.deepEqual(heavy, [], `heavy downloads: ${tarballs.join(", ")}`);
      assert.ok(tarballs.length <= 8, `${tarballs.length} tarballs: ${tarballs.join(", ")}`);
      // A later run never downloads a package again. npm-lazy-caching may fetch a package's
      // registry metadata once more (seen in loaded runs, and on a CI machine on runs 2 to 4
      // alike), which costs a request and no install: print it so CI logs show
      // what it was, but do not fail on it.
      const refetched: string[] = [];
      for (let run = 2; run <= 3; run++) {
        const later = await demo();
        assert.equal(later.code, 0, later.output);
        assert.doesNotMatch(later.output, /Download \S+\.tgz/, `run ${run}`);
        for (const m of later.output.matchAll(/Download (\S+)/g)) {
          refetched.push(`run ${run}: ${m[1]}`);
        }
      }
      if (refetched.length > 0) console.warn(`metadata fetched again: ${refetched.join(", ")}`);
    } finally {
      await Deno.remove(cache, { recursive: true });
    }
  },
});

Deno.test("publish: broadcastShapes, broadcastIndex and normalizePerm are callable from mod.ts", () => {
  assert.deepEqual(broadcastShapes(["B", 197, 768], [1, 197, 768]), ["B", 197, 768]);
  assert.match(broadcastShapes([2, 3], [4, 3]) as string, /do not match/);
  assert.deepEqual([...broadcastIndex([1, 3], [2, 3])], [0, 1, 2, 0, 1, 2]);
  assert.deepEqual(normalizePerm([0, -1, 1], 3), [0, 2, 1]);
  assert.equal(normalizePerm([0, 0, 1], 3), undefined);
});

interface DenoJson {
  readonly name?: string;
  readonly exports?: Readonly<Record<string, string>>;
  readonly publish?: { readonly include?: readonly string[]; readonly exclude?: readonly string[] };
  readonly unstable?: readonly string[];
}

Deno.test("publish: deno.json's exports, publish.include/exclude and lazy loading settings", async () => {
  const config = JSON.parse(await Deno.readTextFile(new URL("deno.json", ROOT))) as DenoJson;
  assert.equal(config.name, "@tessera/tessera");
  assert.deepEqual(config.exports, {
    ".": "./mod.ts",
    "./viz": "./viz/mod.ts",
    "./cli": "./examples/vit.ts",
  });
  const include = config.publish?.include ?? [];
  for (const path of ["LICENSE", "README.md", "mod.ts", "viz/", "models/", "examples/vit.ts"]) {
    assert.ok(include.includes(path), `publish.include lacks ${path}`);
  }
  for (const path of include) {
    assert.ok(!/^(tests|bench)\b|fixtures/.test(path), `publish.include has ${path}`);
  }
  const exclude = config.publish?.exclude ?? [];
  for (const path of ["tests/", "bench/", "**/fixtures/"]) {
    assert.ok(exclude.includes(path), `publish.exclude lacks ${path}`);
  }
  // Without npm-lazy-caching Deno downloads every npm package in deno.lock before the demo
  // starts. lazy-dynamic-imports would hide mod.ts's literal gpu.js import from the graph, and
  // deno bundle then fails on a fresh cache (the package is never downloaded).
  assert.ok(config.unstable?.includes("npm-lazy-caching"), "unstable: npm-lazy-caching");
  assert.ok(!config.unstable?.includes("lazy-dynamic-imports"), "unstable: lazy-dynamic-imports");
  const license = await Deno.readTextFile(new URL("LICENSE", ROOT));
  assert.match(license, /^MIT License/);
  assert.match(license, /Copyright \(c\) 2026 The Tessera authors/);
});

Deno.test("publish: deno publish --dry-run succeeds (no slow types) and ships the library only", async () => {
  // Works offline: the package has no jsr: dependencies and a dry run uploads nothing; the npm
  // packages it type-checks against come from the local cache.
  const ran = await deno(["publish", "--dry-run", "--allow-dirty"]);
  const output = ran.stdout + ran.stderr;
  assert.equal(ran.code, 0, output);
  assert.match(output, /Dry run complete/);
  const files = [...output.matchAll(/^\s+(file:\/\/\S+)/gm)]
    .map((m) => new URL(m[1]).href.slice(ROOT.href.length));
  assert.ok(files.length > 50, `too few files listed:\n${output}`);
  const stray = files.filter((f) => /^(tests|bench)\/|fixtures\/|_test\.ts$/.test(f));
  assert.deepEqual(stray, [], "files that must not ship");
  // The only warnings: the dynamic imports that keep gpu.js and the pictures out of the graph.
  const warned = [...output.matchAll(/warning\[([a-z-]+)\][^]*?--> (\S+?):\d+:\d+/g)]
    .map((m) => `${m[1]} ${new URL(`file://${m[2]}`).href.slice(ROOT.href.length)}`);
  assert.deepEqual([...new Set(warned)].sort(), [
    "unanalyzable-dynamic-import codegen/backends/gpujs.ts",
    "unanalyzable-dynamic-import examples/vit.ts",
  ]);
  for (const f of ["LICENSE", "README.md", "mod.ts", "api.ts", "viz/mod.ts", "examples/vit.ts"]) {
    assert.ok(files.includes(f), `${f} is not published`);
  }
  // examples/vit.ts reads the class names relative to itself, also from a JSR URL.
  assert.ok(files.includes("models/imagenet_classes.txt"), "models/imagenet_classes.txt");
  assert.ok(!files.some((f) => f.startsWith("examples/") && f !== "examples/vit.ts"));
});
