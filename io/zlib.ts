/**
 * zlib for the PNG decoder without `node:zlib`, so the same code runs in pages: a bounded
 * inflate over fflate's streaming decoder, and the CRC-32 that PNG chunks carry.
 * @module
 */

import { Unzlib } from "npm:fflate@0.8.3";

/** Thrown by {@linkcode inflateBounded} when the stream holds more than its bound. */
export class InflateOverflow extends Error {
  /** The bound that was passed. */
  readonly limit: number;
  /**
   * @example
   * ```ts
   * import { InflateOverflow } from "./zlib.ts";
   * new InflateOverflow(16).limit; // 16
   * ```
   */
  constructor(limit: number) {
    super(`zlib stream inflates past ${limit} bytes`);
    this.name = "InflateOverflow";
    this.limit = limit;
  }
}

// Deflate expands at most ~1032:1, so feeding 4 KiB at a time keeps the decoder's own output
// (made before the bound can be checked) near 4 MiB whatever the stream claims.
const FEED = 4096;

/**
 * Inflates a zlib stream into at most `limit` bytes. Output past the bound throws
 * {@linkcode InflateOverflow} once the first piece over it appears, so a decompression bomb costs
 * `limit` plus a few MiB, never its full size. A damaged stream throws fflate's error.
 *
 * @returns The inflated bytes (possibly fewer than `limit`).
 *
 * @example
 * ```ts
 * import { inflateBounded } from "./zlib.ts";
 * import { zlibSync } from "npm:fflate@0.8.3";
 * inflateBounded(zlibSync(new Uint8Array(10)), 10).length; // 10
 * ```
 */
export function inflateBounded(compressed: Uint8Array, limit: number): Uint8Array {
  const out = new Uint8Array(limit);
  let length = 0;
  let ended = false;
  const stream = new Unzlib((piece, final) => {
    if (length + piece.length > limit) throw new InflateOverflow(limit);
    out.set(piece, length);
    length += piece.length;
    ended ||= final;
  });
  for (let at = 0; at < compressed.length && !ended; at += FEED) {
    const end = Math.min(compressed.length, at + FEED);
    stream.push(compressed.subarray(at, end), end === compressed.length);
  }
  return length === limit ? out : out.subarray(0, length);
}

let table: Uint32Array | undefined;

/**
 * The CRC-32 (ISO 3309, as in PNG and zlib's `crc32`) of `bytes`.
 *
 * @example
 * ```ts
 * import { crc32 } from "./zlib.ts";
 * crc32(new TextEncoder().encode("IEND")); // 0xae426082
 * ```
 */
export function crc32(bytes: Uint8Array): number {
  table ??= Uint32Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c;
  });
  let crc = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) crc = table[(crc ^ bytes[i]) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}
