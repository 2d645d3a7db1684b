// Tessera imported by URL, the way a user without a checkout would: the repository is served over
// HTTP on 127.0.0.1 and a script outside it imports `mod.ts` with no deno.json or import map.
import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url);

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  ts: "application/typescript",
  js: "application/javascript",
  mjs: "application/javascript",
  json: "application/json",
  md: "text/markdown",
};

const served: string[] = [];

/** Serves files under the repository root; 404 for anything else. */
async function serveRepo(request: Request): Promise<Response> {
  const path = decodeURIComponent(new URL(request.url).pathname).replace(/^\/+/, "");
  const file = new URL(path, ROOT);
  if (!file.href.startsWith(ROOT.href) || path.split("/").includes("..")) {
    return new Response("forbidden", { status: 403 });
  }
  try {
    const body = await Deno.readFile(file);
    served.push(path);
    const ext = path.slice(path.lastIndexOf(".") + 1);
    const type = CONTENT_TYPES[ext] ?? "application/octet-stream";
    return new Response(body, { headers: { "content-type": type } });
  } catch {
    return new Response("not found", { status: 404 });
  }
}

function script(base: string): string {
  return `import { compile, seedTokenizer } from "${base}/mod.ts";

const graph = seedTokenizer({ height: 32, width: 32, patch: 8, embedding: 16 });
const model = await compile(graph, { backend: "reference", seed: 0 });
const data = new Float32Array(3 * 32 * 32).map((_, i) => (i % 97) / 97);
const { output } = await model.run({ image: { shape: [1, 3, 32, 32], data } });
console.log(JSON.stringify(output.shape));
`;
}

Deno.test("mod.ts works imported over HTTP with no config", async () => {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, serveRepo);
  const dir = await Deno.makeTempDir();
  try {
    const host = `127.0.0.1:${server.addr.port}`;
    const main = `${dir}/main.ts`;
    await Deno.writeTextFile(main, script(`http://${host}`));
    const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--no-config",
        "--allow-net=127.0.0.1",
        `--allow-import=${host}`,
        main,
      ],
      cwd: dir,
      stdin: "null",
      env: { DENO_NO_PACKAGE_JSON: "1", NO_COLOR: "1" },
    }).output();
    const out = new TextDecoder().decode(stdout);
    const err = new TextDecoder().decode(stderr);
    assert.equal(code, 0, `exit ${code}\nstdout:\n${out}\nstderr:\n${err}`);
    assert.equal(out.trim().split("\n").at(-1), "[1,17,16]");
    assert.ok(served.includes("mod.ts") && served.length > 10, `served only ${served}`);
  } finally {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});
