/**
 * Reading a body from a `URL` (with `fetch`) or from a `Response`, as a stream of chunks with a
 * progress callback, for the loaders in `io/` (`loadSafetensors`, `loadImage`). Works wherever
 * `fetch` does:
 * Deno, Node 18+ and browsers. A non-OK status, a body already read, and a connection cut in the
 * middle are one-line errors naming the caller and the URL.
 *
 * @module
 */

/**
 * Called as a body arrives: `loaded` bytes so far, of `total` when the size is known (the
 * `Content-Length` of an uncompressed response, or a file's size). It is called once with 0
 * before the first byte, then after every chunk, never decreasing; when `total` was unknown, a
 * last call once the body is complete passes `total = loaded`, so the last call always has
 * `loaded === total`.
 *
 * @example
 * ```ts
 * import type { ProgressCallback } from "./fetch_bytes.ts";
 * const onProgress: ProgressCallback = (loaded, total) =>
 *   console.log(total === undefined ? `${loaded} bytes` : `${Math.round(100 * loaded / total)}%`);
 * ```
 */
export type ProgressCallback = (loaded: number, total: number | undefined) => void;

/**
 * How {@linkcode openBody} reports: the calling function's name and its error type.
 *
 * @example
 * ```ts
 * import type { OpenBodyOptions } from "./fetch_bytes.ts";
 * const opts: OpenBodyOptions = { caller: "loadThing", error: (line) => new Error(line) };
 * ```
 */
export interface OpenBodyOptions {
  /** The public function reading the body, to start each message (`loadSafetensors`). */
  readonly caller: string;
  /**
   * Builds the error to throw from a complete one-line message; `url` is the source's
   * display name (the URL, or `Response` for a response without one).
   */
  readonly error: (message: string, url: string, cause?: unknown) => Error;
  /** Receives the bytes read so far; see {@linkcode ProgressCallback}. */
  readonly onProgress?: ProgressCallback;
  /** Aborts the fetch and the body read; the abort reason is rethrown as it is. */
  readonly signal?: AbortSignal;
}

/**
 * A response body being read: its declared length and its chunks, read once.
 *
 * @example
 * ```ts
 * import { openBody } from "./fetch_bytes.ts";
 * const body = await openBody(new Response("abc"), {
 *   caller: "demo",
 *   error: (line) => new Error(line),
 * });
 * for await (const chunk of body.chunks) console.log(chunk.length); // 3
 * ```
 */
export interface HttpBody {
  /** The URL, or `Response` for a response that has none; for messages. */
  readonly url: string;
  /**
   * The byte length the response declares (`Content-Length`), or undefined when it has none or
   * is content-encoded (its `Content-Length` then counts compressed bytes, not those read).
   */
  readonly length: number | undefined;
  /**
   * The body's bytes as they arrive, reporting progress; iterate it once. Stopping early (a
   * `break`, or an error thrown by the loop) cancels the rest of the download.
   */
  readonly chunks: AsyncIterable<Uint8Array>;
  /** An error `<caller>: GET <url> <detail>` (or `<caller>: <url> <detail>` for a Response). */
  fail(detail: string, cause?: unknown): Error;
  /** Cancels the download without reading it. */
  cancel(): Promise<void>;
}

/**
 * Whether `value` is a fetch `Response`: an instance, or one from another realm or polyfill
 * (checked by shape, since `instanceof` fails across realms).
 *
 * @example
 * ```ts
 * import { isResponse } from "./fetch_bytes.ts";
 * isResponse(new Response("x")); // true
 * isResponse(new URL("https://example.com")); // false
 * ```
 */
export function isResponse(value: unknown): value is Response {
  if (typeof Response === "function" && value instanceof Response) return true;
  if (typeof value !== "object" || value === null) return false;
  const r = value as Record<string, unknown>;
  return typeof r.status === "number" && typeof r.ok === "boolean" &&
    typeof r.headers === "object" && "body" in r && typeof r.bodyUsed === "boolean";
}

/**
 * A string that looks like a URL (`https://...`) rather than a path: loaders read strings as
 * paths, so they say to pass `new URL(...)` instead of reporting a missing file.
 *
 * @example
 * ```ts
 * import { looksLikeUrl } from "./fetch_bytes.ts";
 * looksLikeUrl("https://example.com/w.safetensors"); // true
 * looksLikeUrl("C:\\weights\\w.safetensors"); // false
 * ```
 */
export function looksLikeUrl(path: string): boolean {
  return /^[a-z][a-z0-9+.-]+:\/\//i.test(path);
}

function messageOf(err: unknown): string {
  const parts: string[] = [];
  let e: unknown = err;
  // fetch's TypeError says little; its cause (connection refused, DNS) says what happened.
  for (let depth = 0; e !== undefined && e !== null && depth < 3; depth++) {
    const msg = e instanceof Error ? e.message : String(e);
    if (msg.trim() !== "" && !parts.includes(msg.trim())) parts.push(msg.trim());
    e = e instanceof Error ? e.cause : undefined;
  }
  return (parts.join(": ") || "unknown error").replace(/\s+/g, " ");
}

/** The declared length, unless the body is content-encoded (then it counts other bytes). */
function declaredLength(headers: Headers): number | undefined {
  const encoding = headers.get("content-encoding");
  if (encoding !== null && encoding.trim().toLowerCase() !== "identity") return undefined;
  const text = headers.get("content-length")?.trim();
  if (text === undefined || !/^\d+$/.test(text)) return undefined;
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : undefined;
}

/**
 * Starts reading `source`: fetches a URL (GET), or takes a `Response` as it is, and checks that
 * it answered OK and its body is unread. The body is not read yet: iterate
 * {@linkcode HttpBody.chunks}, or call {@linkcode readBody}.
 *
 * @param source A URL to fetch, or a `Response` (from your own `fetch`, e.g. with headers).
 * @param options The caller's name and error type, progress, and an abort signal.
 * @returns The body, with its declared length.
 * @throws {Error} Built by `options.error`: the fetch failed (`<caller>: GET <url> failed:
 *   connection refused ...`), the status is not 2xx (`<caller>: GET <url> answered 404 Not
 *   Found ...`), or the body was already read.
 *
 * @example
 * ```ts
 * import { openBody, readBody } from "./fetch_bytes.ts";
 * const body = await openBody(new Response(new Uint8Array([1, 2, 3])), {
 *   caller: "demo",
 *   error: (line) => new Error(line),
 *   onProgress: (loaded, total) => console.log(loaded, total), // 0 undefined, 3 undefined, 3 3
 * });
 * await readBody(body, 1024); // Uint8Array [1, 2, 3]
 * ```
 */
export async function openBody(
  source: URL | Response,
  options: OpenBodyOptions,
): Promise<HttpBody> {
  const { caller, signal } = options;
  let response: Response;
  let url: string;
  // Messages say "GET <url>" for a request made here; a Response was requested elsewhere.
  let what: string;
  if (isResponse(source)) {
    response = source;
    url = what = response.url || "Response";
  } else {
    url = source.href;
    what = `GET ${url}`;
    try {
      response = await fetch(source, { signal });
    } catch (err) {
      if (signal?.aborted) throw err;
      throw options.error(
        `${caller}: GET ${url} failed: ${messageOf(err)} (check the URL and that the server ` +
          "is reachable)",
        url,
        err,
      );
    }
  }
  const fail = (detail: string, cause?: unknown): Error =>
    options.error(`${caller}: ${what} ${detail}`, url, cause);
  if (!response.ok) {
    await response.body?.cancel().catch(() => {});
    const status = `${response.status}${response.statusText ? ` ${response.statusText}` : ""}`;
    throw fail(`answered ${status} (check the URL, and any access token the server needs)`);
  }
  if (response.bodyUsed) {
    throw fail(
      "has a body that was already read (pass a fresh Response, or the URL to fetch it again)",
    );
  }
  const length = declaredLength(response.headers);
  const stream = response.body;
  const { onProgress } = options;
  let started = false;

  async function* read(): AsyncGenerator<Uint8Array, void, undefined> {
    if (started) throw fail("was read twice (a body can be read once; fetch it again)");
    started = true;
    onProgress?.(0, length);
    if (stream === null) {
      if (length === undefined) onProgress?.(0, 0);
      return;
    }
    const reader = stream.getReader();
    let loaded = 0;
    let finished = false;
    try {
      for (;;) {
        let next: ReadableStreamReadResult<Uint8Array>;
        try {
          next = await reader.read();
        } catch (err) {
          finished = true; // an errored stream has nothing left to cancel
          if (signal?.aborted) throw err;
          const of = length !== undefined ? ` of ${length}` : "";
          throw fail(
            `failed after ${loaded}${of} bytes: ${messageOf(err)} (the connection broke; retry)`,
            err,
          );
        }
        if (next.done) break;
        loaded += next.value.length;
        onProgress?.(loaded, length);
        yield next.value;
      }
      finished = true;
      if (length === undefined) onProgress?.(loaded, loaded);
    } finally {
      // The consumer stopped early (refused the bytes, or threw): free the connection.
      if (!finished) await reader.cancel().catch(() => {});
      reader.releaseLock();
    }
  }

  return {
    url,
    length,
    chunks: { [Symbol.asyncIterator]: read },
    fail,
    async cancel(): Promise<void> {
      started = true;
      await stream?.cancel().catch(() => {});
    },
  };
}

/**
 * Reads a whole body, refusing more than `maxBytes`. With a declared length the bytes go into one
 * buffer of that size, allocated once (a length over `maxBytes` is refused before any byte is
 * read); without one the chunks are kept and joined once at the end. A body shorter or longer
 * than its declared length is refused.
 *
 * @param body From {@linkcode openBody}.
 * @param maxBytes The most bytes accepted.
 * @param tooBig Builds the error for a body over `maxBytes`, given its size in words (`1000`
 *   or `more than 512`); by default `body.fail(...)`.
 * @returns The bytes.
 * @throws {Error} Built by `tooBig`, or by `body.fail` when the body ends early or breaks.
 *
 * @example
 * ```ts
 * import { openBody, readBody } from "./fetch_bytes.ts";
 * const body = await openBody(new Response("hello"), {
 *   caller: "demo",
 *   error: (line) => new Error(line),
 * });
 * (await readBody(body, 16)).length; // 5
 * ```
 */
export async function readBody(
  body: HttpBody,
  maxBytes: number,
  tooBig: (size: string) => Error = (size) =>
    body.fail(`is ${size} bytes, over the limit of ${maxBytes}`),
): Promise<Uint8Array> {
  const { length } = body;
  if (length !== undefined) {
    if (length > maxBytes) {
      await body.cancel();
      throw tooBig(String(length));
    }
    const out = new Uint8Array(length);
    let n = 0;
    for await (const chunk of body.chunks) {
      if (n + chunk.length > length) {
        throw body.fail(
          `sent more than the ${length} bytes its Content-Length declares (the server is ` +
            "misconfigured; fix its Content-Length)",
        );
      }
      out.set(chunk, n);
      n += chunk.length;
    }
    if (n < length) {
      throw body.fail(
        `ended after ${n} of the ${length} bytes its Content-Length declares (the download ` +
          "was cut short; retry)",
      );
    }
    return out;
  }
  const chunks: Uint8Array[] = [];
  let n = 0;
  for await (const chunk of body.chunks) {
    n += chunk.length;
    if (n > maxBytes) throw tooBig(`more than ${maxBytes}`);
    chunks.push(chunk);
  }
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(n);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}
