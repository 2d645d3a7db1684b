/**
 * File plumbing shared by the readers and writers in `io/`: one-line messages for file-system
 * errors (naming the Deno flag that fixes a permission problem), regular-file checks, and atomic
 * writes of files and folders.
 *
 * Reading works in Deno and in Node 20+ (through `node:fs/promises`, imported only when Node is
 * detected at run time, so a browser bundle never loads it); in a browser, reading a path is a
 * one-line error saying to pass a URL or a `Response` instead. Writing needs Deno.
 *
 * Every temporary lies beside its target and has `.tessera-tmp-` in its name
 * (`.<name>.tessera-tmp-<random>` for a file, `<dir>/.tessera-tmp-<random>/` for a folder's
 * contents). It is removed on error and on SIGINT/SIGTERM; only a hard kill (SIGKILL, power
 * loss) can leave one, and any such leftover is safe to delete.
 * @module
 */

/** Deno's namespace when running in Deno; never touch the bare `Deno` global elsewhere. */
function denoRuntime(): typeof Deno | undefined {
  return (globalThis as { Deno?: typeof Deno }).Deno;
}

// Path pieces for the writers, as node:path's, written here so that a browser bundle imports
// nothing it cannot load. A backslash separates only on Windows, where a drive root is "C:\".
function isSeparator(c: string): boolean {
  return c === "/" || (c === "\\" && denoRuntime()?.build.os === "windows");
}

function trimSeparators(path: string): string {
  let end = path.length;
  while (end > 1 && isSeparator(path[end - 1])) end--;
  return path.slice(0, end);
}

function dirname(path: string): string {
  const p = trimSeparators(path);
  if (/^[A-Za-z]:$/.test(p)) return `${p}\\`;
  let i = p.length - 1;
  while (i >= 0 && !isSeparator(p[i])) i--;
  if (i < 0) return ".";
  const dir = trimSeparators(p.slice(0, i + 1));
  return /^[A-Za-z]:$/.test(dir) ? `${dir}\\` : dir;
}

function basename(path: string): string {
  const p = trimSeparators(path);
  let i = p.length - 1;
  while (i >= 0 && !isSeparator(p[i])) i--;
  return p.slice(i + 1);
}

function join(dir: string, name: string): string {
  if (dir === ".") return name;
  return isSeparator(dir[dir.length - 1]) ? dir + name : `${dir}/${name}`;
}

/** Whether this is Node (or a runtime with Node's built-ins) without Deno. */
function nodeRuntime(): boolean {
  const proc = (globalThis as { process?: { versions?: { node?: unknown } } }).process;
  return denoRuntime() === undefined && typeof proc?.versions?.node === "string";
}

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

type ErrorKind =
  | "NotCapable"
  | "PermissionDenied"
  | "NotFound"
  | "IsADirectory"
  | "AlreadyExists"
  | "NotADirectory";

/** Node's error codes for the kinds Deno has classes for. */
const NODE_CODES: Readonly<Record<string, ErrorKind>> = {
  EACCES: "PermissionDenied",
  EPERM: "PermissionDenied",
  ENOENT: "NotFound",
  EISDIR: "IsADirectory",
  EEXIST: "AlreadyExists",
  ENOTDIR: "NotADirectory",
};

/** Which kind of file-system error `err` is: Deno's classes in Deno, Node's codes elsewhere. */
function errorKind(err: unknown): ErrorKind | undefined {
  const errors = denoRuntime()?.errors;
  if (errors !== undefined) {
    if (err instanceof errors.NotCapable) return "NotCapable";
    if (err instanceof errors.PermissionDenied) return "PermissionDenied";
    if (err instanceof errors.NotFound) return "NotFound";
    if (err instanceof errors.IsADirectory) return "IsADirectory";
    if (err instanceof errors.AlreadyExists) return "AlreadyExists";
    if (err instanceof errors.NotADirectory) return "NotADirectory";
  }
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" && Object.hasOwn(NODE_CODES, code) ? NODE_CODES[code] : undefined;
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
  const kind = errorKind(err);
  if (kind === "NotCapable") {
    const where = op === "write"
      ? " (it writes a temp file beside the target, so allow the directory)"
      : "";
    return `${op} access denied; run deno with ${flag}${where}`;
  }
  if (kind === "PermissionDenied") {
    const sandbox = denoRuntime() !== undefined
      ? `; if Deno's sandbox is the cause, run with ${flag}`
      : "";
    return `the operating system denied ${op} access (check the file and directory ` +
      `permissions${sandbox})`;
  }
  if (kind === "NotFound") {
    return op === "read"
      ? `no such file (check the ${hints.pathFlag} path)`
      : "cannot save: the directory does not exist (create it first)";
  }
  if (kind === "IsADirectory") {
    return `is a directory, not a file (point at a ${hints.kind})`;
  }
  if (kind === "AlreadyExists") {
    return "it exists and is not a directory (remove it or choose another path)";
  }
  if (kind === "NotADirectory") {
    return "a parent of the path is a file, not a directory (fix the path)";
  }
  const code = (err as { code?: unknown } | null)?.code;
  if (code === "ENOSPC" || code === "EDQUOT") {
    return "no space left on the device (free some space or save to another disk)";
  }
  if (code === "EROFS") return "the file system is read-only (save to a writable disk)";
  const why = err instanceof Error ? err.message : String(err);
  return `cannot ${op} the file: ${why.replace(/\s+/g, " ")}`;
}

/**
 * What kind of entry a path names, as `Deno.FileInfo` has it (Node's `Stats` are mapped to it).
 *
 * @example
 * ```ts
 * import type { FileKind } from "./files.ts";
 * const fifo: FileKind = { isFile: false, isDirectory: false, isFifo: true };
 * ```
 */
export interface FileKind {
  /** A regular file. */
  readonly isFile: boolean;
  /** A directory. */
  readonly isDirectory: boolean;
  /** A FIFO (named pipe); null or absent when unknown. */
  readonly isFifo?: boolean | null;
  /** A character device such as `/dev/zero`. */
  readonly isCharDevice?: boolean | null;
  /** A block device. */
  readonly isBlockDevice?: boolean | null;
  /** A Unix socket. */
  readonly isSocket?: boolean | null;
}

/**
 * Why `info` is not a regular file, with the fix (`is a FIFO (named pipe), not a regular file
 * (point --weights at a .safetensors file)`), or undefined when it is one. Stat a path before
 * opening it: `Deno.stat` never opens it, so a FIFO cannot block and `/dev/zero` is never read.
 *
 * @example
 * ```ts
 * import { notRegularReason } from "./files.ts";
 * const info = await Deno.stat("/dev/null");
 * notRegularReason(info, { pathFlag: "--weights", kind: ".safetensors file" });
 * // "is a character device, not a regular file (point --weights at a .safetensors file)"
 * ```
 */
export function notRegularReason(info: FileKind, hints: FileHints): string | undefined {
  if (info.isFile) return undefined;
  if (info.isDirectory) return `is a directory, not a file (point at a ${hints.kind})`;
  const what = info.isFifo
    ? "a FIFO (named pipe)"
    : info.isCharDevice
    ? "a character device"
    : info.isBlockDevice
    ? "a block device"
    : info.isSocket
    ? "a socket"
    : "not a file";
  return `is ${what}, not a regular file (point ${hints.pathFlag} at a ${hints.kind})`;
}

/**
 * A regular file open for reading, the same in Deno and in Node.
 *
 * @example
 * ```ts
 * import { openRegularFile, type RegularFile } from "./files.ts";
 * const path = await Deno.makeTempFile();
 * await Deno.writeFile(path, new Uint8Array([1, 2, 3]));
 * const f: RegularFile = await openRegularFile(path, { pathFlag: "x", kind: "file" }, Error);
 * const into = new Uint8Array(2);
 * await f.read(into, 1); // 2: into is [2, 3]
 * f.close();
 * ```
 */
export interface RegularFile {
  /** The size when it was opened, in bytes. */
  readonly size: number;
  /**
   * Reads up to `into.length` bytes starting at byte `position`; resolves how many were read,
   * 0 at the end of the file.
   */
  read(into: Uint8Array, position: number): Promise<number>;
  /** Closes the file; reads after this fail. */
  close(): void;
}

/** How a path-reading function is told that this runtime has no file system to read from. */
const NO_FILE_SYSTEM = "reading a file path needs Deno or Node; in a browser, pass a URL " +
  "(it is fetched) or a fetch() Response instead";

/** Node's `Stats` as a {@linkcode FileKind}. */
function nodeKind(st: {
  isFile(): boolean;
  isDirectory(): boolean;
  isFIFO(): boolean;
  isCharacterDevice(): boolean;
  isBlockDevice(): boolean;
  isSocket(): boolean;
}): FileKind {
  return {
    isFile: st.isFile(),
    isDirectory: st.isDirectory(),
    isFifo: st.isFIFO(),
    isCharDevice: st.isCharacterDevice(),
    isBlockDevice: st.isBlockDevice(),
    isSocket: st.isSocket(),
  };
}

/**
 * Opens `path` for reading only if it is a regular file: it is stat-ed first (a stat never
 * opens it, so a FIFO cannot block and `/dev/zero` is never read), and the opened file is checked
 * again, since the path may have been replaced in between. Works in Deno (`Deno.open`) and in
 * Node (`node:fs/promises`, imported only then). A refusal, and a runtime with neither (a
 * browser), throw `refuse(reason)`; file-system errors are rethrown as they are (see
 * {@linkcode fileErrorReason}). Close the returned file when done.
 *
 * @example
 * ```ts
 * import { openRegularFile } from "./files.ts";
 * const file = await openRegularFile(
 *   await Deno.makeTempFile(),
 *   { pathFlag: "--weights", kind: ".safetensors file" },
 *   (why) => new Error(why),
 * );
 * file.size; // 0
 * file.close();
 * ```
 */
export async function openRegularFile(
  path: string | URL,
  hints: FileHints,
  refuse: (reason: string) => Error,
): Promise<RegularFile> {
  const deno = denoRuntime();
  if (deno !== undefined) return await openDeno(deno, path, hints, refuse);
  if (nodeRuntime()) return await openNode(path, hints, refuse);
  throw refuse(NO_FILE_SYSTEM);
}

async function openDeno(
  deno: typeof Deno,
  path: string | URL,
  hints: FileHints,
  refuse: (reason: string) => Error,
): Promise<RegularFile> {
  const before = notRegularReason(await deno.stat(path), hints);
  if (before !== undefined) throw refuse(before);
  const file = await deno.open(path, { read: true });
  let size: number;
  try {
    const info = await file.stat();
    const after = notRegularReason(info, hints);
    if (after !== undefined) throw refuse(after);
    size = info.size;
  } catch (err) {
    file.close();
    throw err;
  }
  // Reads share the file position: callers run them one at a time.
  return {
    size,
    async read(into: Uint8Array, position: number): Promise<number> {
      await file.seek(position, deno.SeekMode.Start);
      return (await file.read(into)) ?? 0;
    },
    close(): void {
      file.close();
    },
  };
}

async function openNode(
  path: string | URL,
  hints: FileHints,
  refuse: (reason: string) => Error,
): Promise<RegularFile> {
  // Imported here, not at the top: a browser bundle of this module must never load node:fs.
  const fs = await import("node:fs/promises");
  const before = notRegularReason(nodeKind(await fs.stat(path)), hints);
  if (before !== undefined) throw refuse(before);
  const handle = await fs.open(path, "r");
  let size: number;
  try {
    const info = await handle.stat();
    const after = notRegularReason(nodeKind(info), hints);
    if (after !== undefined) throw refuse(after);
    size = info.size;
  } catch (err) {
    await handle.close().catch(() => {});
    throw err;
  }
  return {
    size,
    async read(into: Uint8Array, position: number): Promise<number> {
      const { bytesRead } = await handle.read(into, 0, into.length, position);
      return bytesRead;
    },
    close(): void {
      // Nothing to report: the bytes were read, or the read already failed.
      handle.close().catch(() => {});
    },
  };
}

function randomSuffix(): string {
  return crypto.getRandomValues(new Uint32Array(2)).reduce((s, v) => s + v.toString(36), "");
}

/**
 * A fresh temporary name beside `path`: `<dir>/.<name>.tessera-tmp-<random>`. Hidden, and
 * recognizable as Tessera's in a listing, so a leftover from a killed process is easy to spot.
 *
 * @example
 * ```ts
 * import { tempSibling } from "./files.ts";
 * tempSibling("out/w.safetensors"); // e.g. "out/.w.safetensors.tessera-tmp-1x2y3z"
 * ```
 */
export function tempSibling(path: string): string {
  return join(dirname(path), `.${basename(path)}${TEMP_MARKER}${randomSuffix()}`);
}

/**
 * What every temporary name contains.
 *
 * @example
 * ```ts
 * import { TEMP_MARKER } from "./files.ts";
 * [".w.safetensors.tessera-tmp-ab12", "w.safetensors"].filter((n) => n.includes(TEMP_MARKER));
 * ```
 */
export const TEMP_MARKER = ".tessera-tmp-";

// Temporaries of the writes in progress; a signal removes them before the process exits.
const pending = new Set<string>();
const SIGNALS: readonly [Deno.Signal, number][] = [["SIGINT", 130], ["SIGTERM", 143]];
const listeners: [Deno.Signal, () => void][] = [];

function onSignal(code: number): void {
  for (const path of pending) {
    try {
      Deno.removeSync(path, { recursive: true });
    } catch {
      // Already gone, or not ours to remove: exit anyway.
    }
  }
  Deno.exit(code);
}

/**
 * Removes `path` (a file or a folder) if SIGINT or SIGTERM arrives before the returned function
 * is called; the process then exits with 130 or 143, as the signal would have. Deno's default
 * for these signals (exit at once) would leave the temporary behind.
 *
 * @example
 * ```ts
 * import { removeOnSignal } from "./files.ts";
 * const tmp = await Deno.makeTempFile();
 * const release = removeOnSignal(tmp);
 * try {
 *   await Deno.writeTextFile(tmp, "partial");
 * } finally {
 *   release();
 *   await Deno.remove(tmp);
 * }
 * ```
 */
export function removeOnSignal(path: string): () => void {
  pending.add(path);
  if (listeners.length === 0) {
    for (const [signal, code] of SIGNALS) {
      const listener = (): void => onSignal(code);
      try {
        Deno.addSignalListener(signal, listener);
        listeners.push([signal, listener]);
      } catch {
        // Windows has no SIGTERM: that temporary is then left to the error path alone.
      }
    }
  }
  return () => {
    pending.delete(path);
    if (pending.size > 0) return;
    for (const [signal, listener] of listeners.splice(0)) {
      Deno.removeSignalListener(signal, listener);
    }
  };
}

/** The permission bits of an existing regular file, to carry over to its replacement. */
async function existingMode(file: string): Promise<number | undefined> {
  if (Deno.build.os === "windows") return undefined;
  try {
    const info = await Deno.stat(file);
    return info.isFile && info.mode !== null ? info.mode & 0o777 : undefined;
  } catch {
    // Missing, or not statable (no --allow-read): the new file gets the default mode.
    return undefined;
  }
}

/** Writers use Deno's file API: elsewhere, fail in one line rather than on a bare `Deno`. */
function requireDenoToWrite(): void {
  if (denoRuntime() === undefined) {
    throw new Error(
      "writing files needs Deno; in Node or a browser, encode the bytes (encodeSafetensors, " +
        "encodePng) and write them with the platform's own API",
    );
  }
}

async function writeAll(out: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  for (let done = 0; done < bytes.length;) done += await out.write(bytes.subarray(done));
}

/**
 * Writes `data` (bytes, or chunks of them) to a fresh temporary beside `file` (see
 * {@linkcode tempSibling}), then renames it over `file`, so a failed or interrupted write never
 * leaves a half-written or clobbered file. Replacing a file keeps its permission bits. The
 * temporary is removed when the write fails (the error is rethrown) and on SIGINT/SIGTERM.
 *
 * @example
 * ```ts
 * import { writeFileAtomic } from "./files.ts";
 * await writeFileAtomic(await Deno.makeTempFile(), new Uint8Array([1, 2, 3]));
 * ```
 */
export async function writeFileAtomic(
  file: string,
  data: Uint8Array | Iterable<Uint8Array> | AsyncIterable<Uint8Array>,
): Promise<void> {
  requireDenoToWrite();
  const mode = await existingMode(file);
  const tmp = tempSibling(file);
  const release = removeOnSignal(tmp);
  try {
    const out = await Deno.open(tmp, { write: true, createNew: true });
    try {
      const chunks = data instanceof Uint8Array ? [data] : data;
      for await (const chunk of chunks) await writeAll(out, chunk);
    } finally {
      out.close();
    }
    if (mode !== undefined) await Deno.chmod(tmp, mode);
    await Deno.rename(tmp, file);
  } catch (err) {
    await Deno.remove(tmp).catch(() => {});
    throw err;
  } finally {
    release();
  }
}

/** Creates `dir` and any missing parents; returns the topmost folder it created, if any. */
async function makeDirs(dir: string): Promise<string | undefined> {
  let top: string | undefined;
  for (let at = dir; at !== dirname(at); at = dirname(at)) {
    try {
      await Deno.stat(at);
      break;
    } catch (err) {
      // Not statable without --allow-read: treat it as existing, so it is never removed.
      if (!(err instanceof Deno.errors.NotFound)) break;
      top = at;
    }
  }
  await Deno.mkdir(dir, { recursive: true });
  const info = await Deno.stat(dir);
  if (!info.isDirectory) throw new Deno.errors.AlreadyExists(`not a directory: ${dir}`);
  return top;
}

/**
 * Writes a set of files into `dir` all together or not at all. `fill` writes them into a fresh
 * temporary folder inside `dir` (`<dir>/.tessera-tmp-<random>/`, on the same disk, so it works
 * under `--allow-write=<dir>` and when `dir` is a mount point); only when it has succeeded are
 * they renamed into place, replacing files of the same names, in one synchronous step that no
 * signal can split. On failure the temporary, and any folders this call created, are removed
 * and the error is rethrown; files already in `dir` are left as they were.
 *
 * @returns The names moved into `dir`, sorted.
 *
 * @example
 * ```ts
 * import { writeDirAtomic } from "./files.ts";
 * const dir = `${await Deno.makeTempDir()}/report`;
 * await writeDirAtomic(dir, async (tmp) => {
 *   await Deno.writeTextFile(`${tmp}/a.txt`, "a");
 *   await Deno.writeTextFile(`${tmp}/b.txt`, "b");
 * }); // ["a.txt", "b.txt"]
 * ```
 */
export async function writeDirAtomic(
  dir: string,
  fill: (tmp: string) => Promise<void>,
): Promise<string[]> {
  requireDenoToWrite();
  const created = await makeDirs(dir);
  const tmp = join(dir, `${TEMP_MARKER}${randomSuffix()}`);
  const release = removeOnSignal(created ?? tmp);
  let names: string[];
  try {
    await Deno.mkdir(tmp);
    await fill(tmp);
    names = [];
    for await (const entry of Deno.readDir(tmp)) names.push(entry.name);
    names.sort();
    commit(tmp, dir, names);
  } catch (err) {
    await Deno.remove(created ?? tmp, { recursive: true }).catch(() => {});
    throw err;
  } finally {
    release();
  }
  // In place: only the temporary, holding the files replaced, is left to remove.
  const releaseTmp = removeOnSignal(tmp);
  await Deno.remove(tmp, { recursive: true }).catch(() => {});
  releaseTmp();
  return names;
}

/**
 * Moves `names` from `tmp` into `dir`. The files they replace are first moved into `tmp` (as
 * `.old-<name>`), so a failed rename can put everything back. Synchronous on purpose.
 */
function commit(tmp: string, dir: string, names: readonly string[]): void {
  const done: [string, boolean][] = [];
  try {
    for (const name of names) {
      const target = join(dir, name);
      let replaced = false;
      try {
        replaced = !Deno.lstatSync(target).isDirectory;
      } catch (err) {
        if (!(err instanceof Deno.errors.NotFound)) throw err;
      }
      if (replaced) Deno.renameSync(target, join(tmp, `.old-${name}`));
      done.push([name, replaced]);
      Deno.renameSync(join(tmp, name), target);
    }
  } catch (err) {
    for (const [name, replaced] of done.reverse()) {
      const target = join(dir, name);
      try {
        Deno.renameSync(target, join(tmp, name));
      } catch {
        // This one never moved in.
      }
      if (replaced) Deno.renameSync(join(tmp, `.old-${name}`), target);
    }
    throw err;
  }
}
