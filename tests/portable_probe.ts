/**
 * What tests/portable_runtime_test.ts runs inside a browser page, a browser worker and Node: the
 * seed tokenizer on each backend, through a bundled `tessera.js` passed in (this file imports
 * only types, so its own bundle holds no second copy of the library).
 * @module
 */

import type { BackendName, compile, initParams, seedTokenizer } from "../mod.ts";

/** The part of the bundle the probe calls. */
export interface ProbeLibrary {
  /** `compile` from mod.ts. */
  readonly compile: typeof compile;
  /** `initParams` from mod.ts. */
  readonly initParams: typeof initParams;
  /** `seedTokenizer` from mod.ts. */
  readonly seedTokenizer: typeof seedTokenizer;
}

/**
 * One backend's run: what ran, why, its explain() text and the output (as plain numbers, so it
 * survives JSON and structured cloning), or the error.
 *
 * @example
 * ```ts
 * import type { ProbeResult } from "./portable_probe.ts";
 * const failed: ProbeResult = {
 *   backend: "js",
 *   ran: "",
 *   reason: "",
 *   fallbacks: [],
 *   warnings: [],
 *   explain: "",
 *   output: [],
 *   rerun: [],
 *   error: "js backend: a worker stopped during kernel 0",
 * };
 * ```
 */
export interface ProbeResult {
  /** The backend asked for. */
  readonly backend: string;
  /** `model.backend` after the runs. */
  readonly ran: string;
  /** `model.reason`. */
  readonly reason: string;
  /** `model.fallbacks`. */
  readonly fallbacks: readonly string[];
  /** Everything `onWarning` received. */
  readonly warnings: readonly string[];
  /** `model.explain()` after the first run. */
  readonly explain: string;
  /** The first run's output. */
  readonly output: readonly number[];
  /** A second run's output (it reuses the executable and, while warm, its workers). */
  readonly rerun: readonly number[];
  /** The error's first line, when compile or a run threw. */
  readonly error?: string;
}

/** The image side: 320x320 gives work enough that js splits its conv across threads. */
export const PROBE_SIDE = 320;

/**
 * A deterministic [1, 3, side, side] image, values in 0..1.
 *
 * @example
 * ```ts
 * import { probeImage } from "./portable_probe.ts";
 * probeImage(8).data.length; // 192
 * ```
 */
export function probeImage(side: number = PROBE_SIDE): { shape: number[]; data: Float32Array } {
  const data = new Float32Array(3 * side * side);
  for (let i = 0; i < data.length; i++) data[i] = ((i * 7919) % 1000) / 1000;
  return { shape: [1, 3, side, side], data };
}

/**
 * Runs the seed tokenizer (weights from `initParams(g, 0)`, `probeImage()`) on each backend in
 * turn, twice, and reports every run; never throws for a backend's failure.
 *
 * @example
 * ```ts
 * import * as tessera from "../mod.ts";
 * import { probe } from "./portable_probe.ts";
 * const [result] = await probe(tessera, ["reference"]);
 * result.output.length; // 25664
 * ```
 */
export async function probe(
  lib: ProbeLibrary,
  backends: readonly BackendName[],
): Promise<ProbeResult[]> {
  const graph = lib.seedTokenizer({
    height: PROBE_SIDE,
    width: PROBE_SIDE,
    patch: 16,
    embedding: 64,
  });
  const weights = lib.initParams(graph, 0);
  const image = probeImage();
  const results: ProbeResult[] = [];
  for (const backend of backends) {
    const warnings: string[] = [];
    let model: Awaited<ReturnType<typeof compile>> | undefined;
    try {
      model = await lib.compile(graph, { backend, weights, onWarning: (m) => warnings.push(m) });
      const first = await model.run({ image });
      const explain = model.explain();
      const second = await model.run({ image });
      results.push({
        backend,
        ran: model.backend,
        reason: model.reason,
        fallbacks: [...model.fallbacks],
        warnings,
        explain,
        output: Array.from(first.output.data),
        rerun: Array.from(second.output.data),
      });
    } catch (e) {
      results.push({
        backend,
        ran: model?.backend ?? "",
        reason: model?.reason ?? "",
        fallbacks: [...(model?.fallbacks ?? [])],
        warnings,
        explain: "",
        output: [],
        rerun: [],
        error: e instanceof Error ? (e.stack ?? e.message) : String(e),
      });
    } finally {
      model?.dispose();
    }
  }
  return results;
}
