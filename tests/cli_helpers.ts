// Shared by the CLI tests: run examples/vit.ts as a user would, and check one-line errors.
import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url);

/** What a run printed and how it exited. */
export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `deno run <flags> examples/vit.ts <args>` from the repository root. */
export async function vit(flags: string[], args: string[]): Promise<Ran> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...flags, "examples/vit.ts", ...args],
    cwd: ROOT,
    stdin: "null",
    env: { NO_COLOR: "1" },
  }).output();
  const text = new TextDecoder();
  return { code, stdout: text.decode(stdout), stderr: text.decode(stderr) };
}

/** Asserts a failed run: exit code 1 and exactly one `error: ...` line on stderr. */
export function assertOneLineError(ran: Ran, ...mentions: string[]): void {
  assert.equal(ran.code, 1, `expected exit 1; stdout:\n${ran.stdout}\nstderr:\n${ran.stderr}`);
  const lines = ran.stderr.trim().split("\n");
  assert.equal(lines.length, 1, `expected one stderr line, got:\n${ran.stderr}`);
  assert.match(lines[0], /^error: /);
  for (const m of mentions) assert.ok(lines[0].includes(m), `"${lines[0]}" lacks "${m}"`);
}
