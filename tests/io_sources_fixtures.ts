// Files and a local HTTP server for tests/io_sources_test.ts: a safetensors file, one of
// F16/BF16/F32 tensors with a gap between them, an opaque RGB PNG, and routes that serve them
// with and without Content-Length, gzip-encoded, cut short, too long, or not at all.
import { encodeSafetensors } from "../io/safetensors.ts";
import { encodePng } from "../io/image.ts";

/** A deterministic pseudo-random float32 array. */
function values(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

/** F32 tensors (about 130 KB, so a download takes many chunks), one empty, and metadata. */
export const WEIGHTS: Uint8Array = encodeSafetensors({
  "blocks.0.w": { shape: [128, 240], data: values(128 * 240, 1) },
  "blocks.0.b": { shape: [240], data: values(240, 2) },
  empty: { shape: [0, 3], data: new Float32Array(0) },
  "head.w": { shape: [16, 32], data: values(512, 3) },
}, { format: "pt", note: "io sources test" });

/**
 * F16, BF16 and F32 tensors whose header lists them out of file order, with a 6-byte gap the
 * header leaves between two of them: the streaming reader must skip it.
 */
export const MIXED: Uint8Array = (() => {
  const f16 = new Uint8Array(new Uint16Array([0x3c00, 0xc000, 0x0001, 0x7bff, 0x8000]).buffer);
  const bf16 = new Uint8Array(new Uint16Array([0x3f80, 0xc0a0, 0x0080]).buffer);
  const f32 = new Uint8Array(new Float32Array([1.5, -2.25, 1e-30, 3e38]).buffer);
  const header = {
    __metadata__: { kind: "mixed" },
    f32: { dtype: "F32", shape: [2, 2], data_offsets: [16 + 6, 16 + 6 + 16] },
    half: { dtype: "F16", shape: [5], data_offsets: [0, 10] },
    brain: { dtype: "BF16", shape: [3], data_offsets: [10, 16] },
  };
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + 16 + 6 + 16);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  const data = 8 + json.length;
  out.set(f16, data);
  out.set(bf16, data + 10);
  out.fill(0xee, data + 16, data + 22);
  out.set(f32, data + 22);
  return out;
})();

/** Opaque RGB pixels of {@linkcode PNG}: gradients and a diagonal, every value distinct-ish. */
export const PNG_WIDTH = 61;
/** Height of {@linkcode PNG}. */
export const PNG_HEIGHT = 37;
/** An RGB PNG with no colour chunks, so a browser's pixels equal the file's exactly. */
export const PNG: Uint8Array = (() => {
  const data = new Uint8Array(PNG_WIDTH * PNG_HEIGHT * 3);
  for (let y = 0; y < PNG_HEIGHT; y++) {
    for (let x = 0; x < PNG_WIDTH; x++) {
      const p = 3 * (y * PNG_WIDTH + x);
      data[p] = (x * 255) / (PNG_WIDTH - 1);
      data[p + 1] = (y * 255) / (PNG_HEIGHT - 1);
      data[p + 2] = x === y ? 0 : (x * 7 + y * 13) % 256;
    }
  }
  return encodePng({ width: PNG_WIDTH, height: PNG_HEIGHT, channels: 3, data });
})();

/** A body served in `size`-byte chunks, with no Content-Length (so it goes out chunked). */
export function chunkedStream(bytes: Uint8Array, size: number): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (at >= bytes.length) {
        controller.close();
        return;
      }
      controller.enqueue(bytes.slice(at, at + size));
      at += size;
    },
  }, { highWaterMark: 0 });
}

/** Gzip-compressed bytes. */
async function gzip(bytes: Uint8Array): Promise<Uint8Array<ArrayBuffer>> {
  const stream = new Blob([bytes.slice()]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** A running test server and what it has been asked. */
export interface TestServer {
  /** The server's URL for `path` (`/w.safetensors`). */
  url(path: string): URL;
  /** Extra routes, set after start (the bundle and page for the browser test). */
  readonly extra: Map<string, { body: string | Uint8Array<ArrayBuffer>; type: string }>;
  /** Stops the server. */
  close(): Promise<void>;
}

const CHUNK = 4096;

/** Serves the fixtures on 127.0.0.1 at a free port. */
export async function startServer(): Promise<TestServer> {
  const gzipped = await gzip(WEIGHTS);
  const extra = new Map<string, { body: string | Uint8Array<ArrayBuffer>; type: string }>();
  const octet = { "content-type": "application/octet-stream" };
  // Copies with their own ArrayBuffer, as Response bodies must be.
  const files: Record<string, Uint8Array<ArrayBuffer>> = {
    "w.safetensors": WEIGHTS.slice(),
    "mixed.safetensors": MIXED.slice(),
    "img.png": PNG.slice(),
    "truncated.safetensors": WEIGHTS.slice(0, WEIGHTS.length - 100),
    "long.safetensors": (() => {
      const out = new Uint8Array(WEIGHTS.length + 16);
      out.set(WEIGHTS);
      return out;
    })(),
    "truncated.png": PNG.slice(0, PNG.length >> 1),
  };
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    const path = new URL(req.url).pathname;
    const page = extra.get(path);
    if (page !== undefined) {
      return new Response(page.body, { headers: { "content-type": page.type } });
    }
    if (path === "/favicon.ico") return new Response(null, { status: 204 });
    if (path === "/gzip/w.safetensors") {
      return new Response(gzipped, {
        headers: { ...octet, "content-encoding": "gzip", "content-length": `${gzipped.length}` },
      });
    }
    if (path === "/cut.safetensors") {
      // Declares the whole file, sends half of it and ends: the connection breaks mid-body.
      return new Response(chunkedStream(WEIGHTS.subarray(0, WEIGHTS.length >> 1), CHUNK), {
        headers: { ...octet, "content-length": `${WEIGHTS.length}` },
      });
    }
    const chunked = path.startsWith("/chunked/");
    const bytes = files[path.slice(chunked ? "/chunked/".length : 1)];
    if (bytes === undefined) return new Response("no such file\n", { status: 404 });
    const type = path.endsWith(".png") ? "image/png" : octet["content-type"];
    return chunked
      ? new Response(chunkedStream(bytes, CHUNK), { headers: { "content-type": type } })
      : new Response(bytes, { headers: { "content-type": type } });
  });
  const base = `http://127.0.0.1:${server.addr.port}`;
  return {
    url: (path: string) => new URL(path, base),
    extra,
    close: () => server.shutdown(),
  };
}
