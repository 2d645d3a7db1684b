// Shared by the CLI tests: run examples/vit.ts as a user would, and check one-line errors.
import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url);

/** What a run printed and how it exited. */
export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** How to run: a command to run deno under (e.g. `unshare ...`), and a time limit. */
export interface VitOptions {
  /** Runs `<prefix...> deno run ...` instead of `deno run ...`. */
  prefix?: string[];
  /** Kills the run after this long: a run that blocks (say, on a FIFO) fails instead of hanging. */
  timeoutMs?: number;
}

/** Runs `deno run <flags> examples/vit.ts <args>` from the repository root. */
export async function vit(flags: string[], args: string[], options: VitOptions = {}): Promise<Ran> {
  const deno = [Deno.execPath(), "run", ...flags, "examples/vit.ts", ...args];
  const argv = [...(options.prefix ?? []), ...deno];
  const { code, signal, stdout, stderr } = await new Deno.Command(argv[0], {
    args: argv.slice(1),
    cwd: ROOT,
    stdin: "null",
    env: { NO_COLOR: "1" },
    signal: options.timeoutMs === undefined ? undefined : AbortSignal.timeout(options.timeoutMs),
  }).output();
  const text = new TextDecoder();
  const killed = signal === null ? "" : `\n(killed by ${signal}: it ran past the time limit)`;
  return { code, stdout: text.decode(stdout), stderr: text.decode(stderr) + killed };
}

/** Asserts a failed run: exit code 1 and exactly one `error: ...` line on stderr. */
export function assertOneLineError(ran: Ran, ...mentions: string[]): void {
  assert.equal(ran.code, 1, `expected exit 1; stdout:\n${ran.stdout}\nstderr:\n${ran.stderr}`);
  const lines = ran.stderr.trim().split("\n");
  assert.equal(lines.length, 1, `expected one stderr line, got:\n${ran.stderr}`);
  assert.match(lines[0], /^error: /);
  for (const m of mentions) assert.ok(lines[0].includes(m), `"${lines[0]}" lacks "${m}"`);
}

/** Whether `command args...` runs and exits 0 (e.g. `unshare -r -m true`, `mkfifo path`). */
export async function succeeds(command: string, args: string[]): Promise<boolean> {
  try {
    const { code } = await new Deno.Command(command, { args, stdout: "null", stderr: "null" })
      .output();
    return code === 0;
  } catch {
    return false; // Not installed.
  }
}

/** Whether unprivileged namespaces work here: tiny tmpfs mounts and a non-root user. */
export const CAN_UNSHARE = Deno.build.os === "linux" &&
  await succeeds("unshare", ["-r", "-m", "true"]) &&
  await succeeds("unshare", ["--map-user=65534", "--map-group=65534", "true"]);

/** Whether named pipes can be made here (`mkfifo`). */
export const CAN_MKFIFO = Deno.build.os !== "windows" &&
  await succeeds("sh", ["-c", "command -v mkfifo"]);
