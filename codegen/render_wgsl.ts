/**
 * The WGSL emitter behind the `wgsl` backend: one compute shader per lowered kernel, one thread
 * per output element, with integer index math in `i32` (exact at any size, unlike gpu.js's f32
 * division) and every shape baked in as a literal.
 * @module
 */

import { type Atom, type Cond, type Lin, simplify, type VExpr } from "./expr.ts";
import type { Kernel } from "./lower.ts";
import { UNROLL } from "./render_js.ts";

/**
 * A rendered shader: its source, the buffers it binds (in binding order, the output last) and
 * the workgroup size.
 *
 * @example
 * ```ts
 * import type { WgslKernel } from "./render_wgsl.ts";
 * function bindings(k: WgslKernel): number {
 *   return k.reads.length + 1;
 * }
 * ```
 */
export interface WgslKernel {
  /** WGSL source with entry point `main`. */
  readonly source: string;
  /** Buffers bound read-only at bindings 0..n-1. */
  readonly reads: readonly string[];
  /** Threads per workgroup (x only). */
  readonly workgroupSize: number;
}

/**
 * Threads per workgroup: a multiple of every vendor's SIMD width (32 or 64).
 *
 * @example
 * ```ts
 * import { WORKGROUP_SIZE } from "./render_wgsl.ts";
 * WORKGROUP_SIZE; // 256
 * ```
 */
export const WORKGROUP_SIZE = 256;

/**
 * Renders one kernel as a WGSL compute shader. Large launches use a 2-D dispatch; `stride` is
 * the number of threads in one row of it (`x + y * stride` is the flat output index).
 *
 * @example
 * ```ts
 * import { renderWgslKernel } from "./render_wgsl.ts";
 * typeof renderWgslKernel; // "function"
 * ```
 */
export function renderWgslKernel(kernel: Kernel, stride: number): WgslKernel {
  const reads = [...kernel.reads].sort();
  // Buffers are `buf<i>`; reduction variables (c0, ky1, b1, ...) never start with "buf".
  const binding = new Map(reads.map((r, i) => [r, `buf${i}`]));
  let temps = 0;

  const atom = (a: Atom): string => {
    switch (a.k) {
      case "var":
        return a.name;
      case "div":
        return `(${linText(a.x)} / ${a.d})`;
      case "mod":
        return `(${linText(a.x)} % ${a.d})`;
    }
  };
  const linText = (x: Lin): string => {
    const parts = x.terms.map((
      t,
    ) => (t.coeff === 1 ? atom(t.atom) : `${atom(t.atom)} * ${t.coeff}`));
    if (x.c !== 0 || parts.length === 0) parts.push(String(x.c));
    return parts.length === 1 ? parts[0] : `(${parts.join(" + ").replaceAll("+ -", "- ")})`;
  };
  const condText = (c: Cond): string => {
    switch (c.k) {
      case "bool":
        return String(c.v);
      case "lt":
        return `(${linText(c.x)} < ${c.c})`;
      case "ge":
        return `(${linText(c.x)} >= ${c.c})`;
      case "and":
        return `(${condText(c.a)} && ${condText(c.b)})`;
    }
  };
  // Expression text; the loops of sums are appended to `lines` first.
  const valueText = (e: VExpr, lines: string[], indent: string): string => {
    switch (e.k) {
      case "const":
        return floatText(e.v);
      case "load":
        return `${binding.get(e.buf)}[${linText(e.index)}]`;
      case "add":
        return `(${valueText(e.a, lines, indent)} + ${valueText(e.b, lines, indent)})`;
      case "mul":
        return `(${valueText(e.a, lines, indent)} * ${valueText(e.b, lines, indent)})`;
      case "divc":
        return `(${valueText(e.a, lines, indent)} / ${floatText(e.c)})`;
      case "select": {
        // Both sides are evaluated; out-of-range loads are clamped by WebGPU's robust access.
        const a = valueText(e.a, lines, indent);
        const b = valueText(e.b, lines, indent);
        return `select(${b}, ${a}, ${condText(e.cond)})`;
      }
      case "sum": {
        if (e.extent <= UNROLL) {
          const terms = Array.from(
            { length: e.extent },
            (_, k) =>
              valueText(simplify(e.body, new Map(kernel.ranges).set(e.v, [k, k])), lines, indent),
          );
          return `(${terms.join(" + ")})`;
        }
        const acc = `acc${temps++}`;
        lines.push(`${indent}var ${acc}: f32 = 0.0;`);
        lines.push(`${indent}for (var ${e.v}: i32 = 0; ${e.v} < ${e.extent}; ${e.v}++) {`);
        const body = valueText(e.body, lines, indent + "  ");
        lines.push(`${indent}  ${acc} += ${body};`, `${indent}}`);
        return acc;
      }
    }
  };
  const statements = (e: VExpr, indent: string): string[] => {
    if (e.k === "select") {
      return [
        `${indent}if (${condText(e.cond)}) {`,
        ...statements(e.a, indent + "  "),
        `${indent}} else {`,
        ...statements(e.b, indent + "  "),
        `${indent}}`,
      ];
    }
    const lines: string[] = [];
    const value = valueText(e, lines, indent);
    return [...lines, `${indent}out[idx] = ${value};`];
  };

  // Output index variables from the flat thread index.
  const decompose: string[] = [];
  let inner = 1;
  for (let axis = kernel.shape.length - 1; axis >= 0; axis--) {
    const q = inner === 1 ? "flat" : `(flat / ${inner})`;
    decompose.unshift(
      axis === 0 ? `  let i0 = ${q};` : `  let i${axis} = ${q} % ${kernel.shape[axis]};`,
    );
    inner *= kernel.shape[axis];
  }
  const source = [
    ...reads.map((_, i) => `@group(0) @binding(${i}) var<storage, read> buf${i}: array<f32>;`),
    `@group(0) @binding(${reads.length}) var<storage, read_write> out: array<f32>;`,
    `@compute @workgroup_size(${WORKGROUP_SIZE})`,
    "fn main(@builtin(global_invocation_id) gid: vec3<u32>) {",
    `  let idx = gid.x + gid.y * ${stride}u;`,
    `  if (idx >= ${kernel.size}u) { return; }`,
    "  let flat = i32(idx);",
    ...decompose,
    ...statements(kernel.expr, "  "),
    "}",
  ].join("\n");
  return { source, reads, workgroupSize: WORKGROUP_SIZE };
}

function floatText(value: number): string {
  const f = Math.fround(value);
  const text = Number.isInteger(f) ? `${f}.0` : String(f);
  return f < 0 ? `(${text})` : text;
}
