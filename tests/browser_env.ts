// What the browser and Node tests share: Debian's headless Chromium with the flags that work on
// this closed network, whether it and Node are installed, and `deno bundle --platform browser`.
import assert from "node:assert/strict";

/** Debian's Chromium, which .ci/run installs. */
export const CHROMIUM = "/usr/bin/chromium";

/**
 * Chromium's flags: without the networking ones it keeps dialling Google's hosts, which this
 * closed network refuses; a fresh profile keeps runs independent.
 */
export const CHROMIUM_FLAGS: readonly string[] = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

async function isFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch {
    return false;
  }
}

async function nodeVersion(): Promise<string | undefined> {
  try {
    const out = await new Deno.Command("node", { args: ["--version"], stdout: "piped" }).output();
    return out.success ? new TextDecoder().decode(out.stdout).trim() : undefined;
  } catch {
    return undefined;
  }
}

/** Whether `CHROMIUM` is installed. */
export const HAVE_CHROMIUM: boolean = await isFile(CHROMIUM);

/** `node --version` (`v20.20.2`), or undefined without Node. */
export const NODE_VERSION: string | undefined = await nodeVersion();

const ROOT = new URL("..", import.meta.url).pathname;

/** `deno bundle --platform browser -o out entry`, `entry` relative to the repository root. */
export async function bundleForBrowser(entry: string, out: string): Promise<void> {
  const result = await new Deno.Command(Deno.execPath(), {
    args: ["bundle", "--platform", "browser", "-o", out, entry],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert(result.success, `deno bundle ${entry}: ${new TextDecoder().decode(result.stderr)}`);
}
