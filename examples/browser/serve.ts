/**
 * Serves the browser example on 127.0.0.1: bundles `mod.ts` (`deno bundle --platform browser`)
 * and `app.ts` into a temporary folder, then serves `index.html`, `tessera.js`, `app.js` and
 * `imagenet_classes.txt` (models/). `--isolated` adds `Cross-Origin-Opener-Policy: same-origin`
 * and `Cross-Origin-Embedder-Policy: require-corp`, which make the page cross-origin isolated:
 * then it has `SharedArrayBuffer` and the `js` and `wasm` backends run on worker threads.
 *
 *     deno run -A examples/browser/serve.ts [--port N] [--isolated]
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const HERE = new URL("./", import.meta.url);

/** What the server answers, by path, and the content type of each. */
const FILES: Readonly<
  Record<string, { readonly from: "build" | "source"; readonly type: string }>
> = {
  "index.html": { from: "source", type: "text/html; charset=utf-8" },
  "tessera.js": { from: "build", type: "text/javascript; charset=utf-8" },
  "app.js": { from: "build", type: "text/javascript; charset=utf-8" },
  "imagenet_classes.txt": { from: "source", type: "text/plain; charset=utf-8" },
};

/** Where each source file lives. */
const SOURCES: Readonly<Record<string, URL>> = {
  "index.html": new URL("index.html", HERE),
  "imagenet_classes.txt": new URL("../../models/imagenet_classes.txt", HERE),
};

/**
 * Options of {@linkcode startExampleServer}.
 *
 * @example
 * ```ts
 * import type { ExampleServerOptions } from "./serve.ts";
 * const options: ExampleServerOptions = { isolated: true, port: 0 };
 * ```
 */
export interface ExampleServerOptions {
  /** Send COOP same-origin and COEP require-corp, so the page is cross-origin isolated. */
  readonly isolated?: boolean;
  /** The port; 0 (the default) picks a free one. */
  readonly port?: number;
  /**
   * A folder {@linkcode buildExample} filled, shared between servers; without it the server
   * bundles into a temporary folder of its own and removes it on close.
   */
  readonly build?: string;
}

/**
 * A running example server.
 *
 * @example
 * ```ts
 * import type { ExampleServer } from "./serve.ts";
 * async function stop(server: ExampleServer): Promise<void> {
 *   console.log(`closing ${server.url}`);
 *   await server.close();
 * }
 * ```
 */
export interface ExampleServer {
  /** The page's URL, `http://127.0.0.1:PORT/`. */
  readonly url: string;
  /** Whether it sends the cross-origin isolation headers. */
  readonly isolated: boolean;
  /** Stops serving (and removes its own bundle folder). */
  close(): Promise<void>;
}

/** `deno bundle --platform browser -o out entry`, `entry` relative to the repository root. */
async function bundle(entry: string, out: string): Promise<void> {
  const result = await new Deno.Command(Deno.execPath(), {
    args: ["bundle", "--quiet", "--platform", "browser", "-o", out, entry],
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!result.success) {
    const why = new TextDecoder().decode(result.stderr).trim().replace(/\s*\n\s*/g, " ");
    throw new Error(`deno bundle ${entry} failed: ${why}`);
  }
}

/**
 * Bundles the library (`tessera.js`, from mod.ts) and the page's logic (`app.js`, which imports
 * only types, so it holds no copy of the library) into `dir`, a new temporary folder when
 * omitted; returns the folder.
 *
 * @example
 * ```ts ignore
 * import { buildExample, startExampleServer } from "./serve.ts";
 * const build = await buildExample();
 * const plain = await startExampleServer({ build });
 * const isolated = await startExampleServer({ build, isolated: true });
 * ```
 */
export async function buildExample(dir?: string): Promise<string> {
  const out = dir ?? await Deno.makeTempDir({ prefix: "tessera_browser_example_" });
  await Promise.all([
    bundle("mod.ts", `${out}/tessera.js`),
    bundle("examples/browser/app.ts", `${out}/app.js`),
  ]);
  return out;
}

/**
 * Bundles (unless given a build) and serves the example on 127.0.0.1.
 *
 * @example
 * ```ts ignore
 * import { startExampleServer } from "./serve.ts";
 * const server = await startExampleServer({ isolated: true, port: 0 });
 * console.log(server.url); // http://127.0.0.1:PORT/
 * await server.close();
 * ```
 */
export async function startExampleServer(
  options: ExampleServerOptions = {},
): Promise<ExampleServer> {
  const isolated = options.isolated ?? false;
  const own = options.build === undefined;
  const dir = options.build ?? await buildExample();
  // Read once: the page, bundles and class list do not change while serving.
  const bodies = new Map<string, Uint8Array>();
  try {
    for (const [name, { from }] of Object.entries(FILES)) {
      bodies.set(
        name,
        await Deno.readFile(from === "build" ? `${dir}/${name}` : SOURCES[name]),
      );
    }
  } catch (err) {
    if (own) await Deno.remove(dir, { recursive: true });
    throw err;
  }
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: options.port ?? 0, onListen: () => {} },
    (request) => {
      const name = new URL(request.url).pathname.slice(1) || "index.html";
      const headers = new Headers({ "cache-control": "no-store" });
      if (isolated) {
        headers.set("cross-origin-opener-policy", "same-origin");
        headers.set("cross-origin-embedder-policy", "require-corp");
      }
      const body = bodies.get(name);
      if (body === undefined || !Object.hasOwn(FILES, name)) {
        return new Response("not found", { status: 404, headers });
      }
      if (request.method !== "GET" && request.method !== "HEAD") {
        return new Response("method not allowed", { status: 405, headers });
      }
      headers.set("content-type", FILES[name].type);
      return new Response(request.method === "HEAD" ? null : body.slice(), { headers });
    },
  );
  return {
    url: `http://127.0.0.1:${server.addr.port}/`,
    isolated,
    close: async () => {
      await server.shutdown();
      if (own) await Deno.remove(dir, { recursive: true });
    },
  };
}

async function main(args: readonly string[]): Promise<number> {
  let values: { port?: string; isolated: boolean; help: boolean };
  try {
    ({ values } = parseArgs({
      args: [...args],
      options: {
        port: { type: "string" },
        isolated: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    console.error(`error: ${err instanceof Error ? err.message : String(err)}`);
    return 2;
  }
  if (values.help) {
    console.log("usage: deno run -A examples/browser/serve.ts [--port N] [--isolated]");
    return 0;
  }
  const port = values.port === undefined ? 8000 : Number(values.port);
  if (!(Number.isSafeInteger(port) && port >= 0 && port < 65536)) {
    console.error(`error: --port takes a port number 0..65535, got "${values.port}"`);
    return 2;
  }
  let server: ExampleServer;
  try {
    server = await startExampleServer({ isolated: values.isolated, port });
  } catch (err) {
    console.error(`error: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
  console.log(
    `serving the Tessera browser example at ${server.url} ` +
      (values.isolated
        ? "(cross-origin isolated: COOP + COEP, so js and wasm run on worker threads)"
        : "(not cross-origin isolated: js and wasm run on one thread; --isolated for threads)"),
  );
  console.log("press Ctrl-C to stop");
  // Stop on Ctrl-C (and SIGTERM where there is one), removing the bundle folder.
  const stopped = Promise.withResolvers<void>();
  Deno.addSignalListener("SIGINT", () => stopped.resolve());
  if (Deno.build.os !== "windows") Deno.addSignalListener("SIGTERM", () => stopped.resolve());
  await stopped.promise;
  await server.close();
  return 0;
}

if (import.meta.main) {
  const code = await main(Deno.args);
  Deno.exit(code);
}
