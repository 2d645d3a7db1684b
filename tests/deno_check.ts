// Runs `deno check` on a generated file and reads its errors back: shared by the tests that
// prove type-level rules by writing one file of assertions.

const CONFIG = new URL("../deno.json", import.meta.url).pathname;

/** `deno check --quiet` of `file` with the project's config: its exit code and stderr. */
export async function denoCheck(file: string): Promise<{ code: number; stderr: string }> {
  const { code, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["check", "--quiet", "--config", CONFIG, file],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code, stderr: new TextDecoder().decode(stderr) };
}

/** `[code, first message line, line number]` of each error deno reports in file `name`. */
export function errorsIn(stderr: string, name: string): [string, string, number][] {
  const at = `at file:\\S*/${name.replace(".", "\\.")}:(\\d+):\\d+`;
  const re = new RegExp(`(TS\\d+) \\[ERROR\\]: (.*)\\n[\\s\\S]*?${at}`, "g");
  return [...stderr.matchAll(re)].map((m) => [m[1], m[2], Number(m[3])]);
}
