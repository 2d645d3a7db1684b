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
 * What `entry` reaches without a dynamic `import()`: each module found with the chain that leads
 * to it. `types` also follows type-only imports (what type-checking a user's program loads);
 * without it, only the code `deno run` loads before the program starts.
 */
function staticReach(graph: Info, types: boolean): Map<string, string[]> {
  const modules = new Map(graph.modules.map((m) => [m.specifier, m]));
  const reached = new Map<string, string[]>(graph.roots.map((r) => [r, [r]]));
  const queue = [...graph.roots];
  while (queue.length > 0) {
    const from = queue.shift() as string;
    for (const dep of modules.get(from)?.dependencies ?? []) {
      const targets = [dep.isDynamic ? undefined : dep.code?.specifier];
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

function heavyIn(graph: Info, types: boolean): string[] {
  const found: string[] = [];
  for (const [specifier, chain] of staticReach(graph, types)) {
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
  // The lazily loaded gpu.js is still in the graph, as a dynamic import: deno check and
  // deno bundle see it (the bundle inlines it).
  assert.ok(
    dynamicNpm(graph).some((s) => s.startsWith("npm:gpu.js@")),
    `gpu.js is not a dynamic import of mod.ts's graph: ${dynamicNpm(graph)}`,
  );
});

Deno.test("publish: the zero-permission demo loads no heavy npm package before it runs", async () => {
  // examples/vit.ts imports the pictures (Vega, Graphviz, resvg) only for --image/--out.
  assert.deepEqual(heavyIn(await info("examples/vit.ts"), false), []);
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
  // Without these Deno downloads every npm package in deno.lock, and every statically analyzable
  // dynamic import, before the demo starts, so the lazy gpu.js import would save nothing.
  assert.ok(config.unstable?.includes("lazy-dynamic-imports"), "unstable: lazy-dynamic-imports");
  assert.ok(config.unstable?.includes("npm-lazy-caching"), "unstable: npm-lazy-caching");
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
  for (const f of ["LICENSE", "README.md", "mod.ts", "viz/mod.ts", "examples/vit.ts"]) {
    assert.ok(files.includes(f), `${f} is not published`);
  }
  // examples/vit.ts reads the class names relative to itself, also from a JSR URL.
  assert.ok(files.includes("models/imagenet_classes.txt"), "models/imagenet_classes.txt");
  assert.ok(!files.some((f) => f.startsWith("examples/") && f !== "examples/vit.ts"));
});
