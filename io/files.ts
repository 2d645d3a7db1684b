/**
 * File plumbing shared by the readers and writers in `io/`: one-line messages for file-system
 * errors (naming the Deno flag that fixes a permission problem), and atomic writes.
 * @module
 */

/**
 * Hints that make a message specific to the kind of file.
 *
 * @example
 * ```ts
 * import type { FileHints } from "./files.ts";
 * const h: FileHints = { pathFlag: "--weights", kind: ".safetensors file" };
 * ```
 */
export interface FileHints {
  /** Where the path came from, for "check the ... path" (e.g. `--weights`, `image`). */
  readonly pathFlag: string;
  /** What the file should be, for "point at a ..." (e.g. `.png or .jpg file`). */
  readonly kind: string;
}

/**
 * The one-line reason for a file-system error on `op`, with the fix.
 *
 * @example
 * ```ts
 * import { fileErrorReason } from "./files.ts";
 * fileErrorReason(new Deno.errors.NotFound("x"), "read", { pathFlag: "--weights", kind: "file" });
 * // "no such file (check the --weights path)"
 * ```
 */
export function fileErrorReason(err: unknown, op: "read" | "write", hints: FileHints): string {
  const flag = op === "read" ? "--allow-read" : "--allow-write";
  if (err instanceof Deno.errors.NotCapable) {
    const where = op === "write"
      ? " (it writes a temp file beside the target, so allow the directory)"
      : "";
    return `${op} access denied; run deno with ${flag}${where}`;
  }
  if (err instanceof Deno.errors.PermissionDenied) {
    return `the operating system denied ${op} access (check the file and directory permissions; ` +
      `if Deno's sandbox is the cause, run with ${flag})`;
  }
  if (err instanceof Deno.errors.NotFound) {
    return op === "read"
      ? `no such file (check the ${hints.pathFlag} path)`
      : "cannot save: the directory does not exist (create it first)";
  }
  if (err instanceof Deno.errors.IsADirectory) {
    return `is a directory, not a file (point at a ${hints.kind})`;
  }
  const why = err instanceof Error ? err.message : String(err);
  return `cannot ${op} the file: ${why.replace(/\s+/g, " ")}`;
}

/**
 * Writes `bytes` to a fresh temp file beside `file`, then renames it over `file`, so a failed
 * write never leaves a half-written or clobbered file. Rethrows the file-system error after
 * removing the temp file.
 *
 * @example
 * ```ts
 * import { writeFileAtomic } from "./files.ts";
 * await writeFileAtomic(await Deno.makeTempFile(), new Uint8Array([1, 2, 3]));
 * ```
 */
export async function writeFileAtomic(file: string, bytes: Uint8Array): Promise<void> {
  const suffix = crypto.getRandomValues(new Uint32Array(2)).reduce(
    (s, v) => s + v.toString(36),
    "",
  );
  const tmp = `${file}.tmp-${suffix}`;
  try {
    await Deno.writeFile(tmp, bytes, { createNew: true });
    await Deno.rename(tmp, file);
  } catch (err) {
    await Deno.remove(tmp).catch(() => {});
    throw err;
  }
}
