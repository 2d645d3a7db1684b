// The layering of codegen/: every import of every source file is parsed and checked against the
// rules below, so a file that reaches up a layer (or across, backend to backend) fails CI.
//   ir/        expressions, programs: imports only ir/
//   passes/    lowering, fusion, folding, relayout, contraction, the pipeline: ir/, passes/,
//              and graph/ and ops/ (the emitters read op attributes)
//   render/    renderers: ir/, passes/, render/common.ts, and their own subfolder
//   backends/  ir/, passes/, render/, the shared backend modules; never another backend
//   compile.ts anything below it
// Outside codegen, graph/ and ops/ never import codegen/.
import assert from "node:assert/strict";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/** The backends proper; the other files in backends/ are modules they share. */
const BACKENDS = new Set(["reference.ts", "js.ts", "wgsl.ts", "gpujs.ts"]);

async function sources(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const entry of Deno.readDir(join(ROOT, dir))) {
    const path = join(dir, entry.name);
    if (entry.isDirectory) out.push(...await sources(path));
    else if (entry.name.endsWith(".ts")) out.push(path);
  }
  return out.sort();
}

/** Relative import targets of a file (static imports and re-exports; doc examples excluded). */
export function importsOf(source: string): string[] {
  const code = source.replace(/\/\*\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
  const found: string[] = [];
  for (const m of code.matchAll(/(?:^|\n)\s*(?:import|export)\b[^;]*?\bfrom\s*"([^"]+)"/g)) {
    found.push(m[1]);
  }
  for (const m of code.matchAll(/\bimport\(\s*"([^"]+)"\s*\)/g)) found.push(m[1]);
  return found;
}

/** Why `from` may not import `to` (paths relative to the repository root), or null. */
export function layerViolation(from: string, to: string): string | null {
  if (!to.startsWith("codegen/")) {
    if (to.startsWith("npm:gpu.js") && from !== "codegen/backends/gpujs.ts") {
      return "only backends/gpujs.ts loads gpu.js";
    }
    return null;
  }
  const [, layer, ...rest] = from.split("/");
  const [, toLayer, ...toRest] = to.split("/");
  if (!from.startsWith("codegen/")) {
    const top = from.split("/")[0];
    return ["graph", "ops"].includes(top) ? `${top}/ sits below codegen/` : null;
  }
  if (layer === "compile.ts") return null;
  if (toLayer === "compile.ts") return "only code above codegen/ imports compile.ts";
  const order = ["ir", "passes", "render", "backends"];
  const at = order.indexOf(layer);
  const target = order.indexOf(toLayer);
  if (target > at) return `${layer}/ may not import ${toLayer}/ (imports point downward)`;
  if (layer === "ir" && toLayer !== "ir") return "ir/ imports only ir/";
  if (layer === "render" && toLayer === "render") {
    const own = rest.length > 1 && toRest.length > 1 && rest[0] === toRest[0];
    if (!own && to !== "codegen/render/common.ts") {
      return "a renderer imports only render/common.ts and files of its own folder";
    }
  }
  if (layer === "backends" && toLayer === "backends") {
    if (BACKENDS.has(rest[0]) && BACKENDS.has(toRest[0]) && rest[0] !== toRest[0]) {
      return "no backend imports another backend";
    }
  }
  return null;
}

Deno.test("layout: every import in codegen/, graph/ and ops/ follows the layer rules", async () => {
  const files = [
    ...await sources("codegen"),
    ...await sources("graph"),
    ...await sources("ops"),
  ];
  assert.ok(files.length > 40, `found only ${files.length} source files`);
  const broken: string[] = [];
  let checked = 0;
  for (const file of files) {
    const text = await Deno.readTextFile(join(ROOT, file));
    for (const spec of importsOf(text)) {
      const to = spec.startsWith(".") ? relative(ROOT, resolve(ROOT, dirname(file), spec)) : spec;
      checked++;
      const why = layerViolation(file, to);
      if (why) broken.push(`${file} -> ${to}: ${why}`);
    }
  }
  assert.ok(checked > 100, `parsed only ${checked} imports`);
  assert.deepEqual(broken, []);
});

Deno.test("layout: the rules reject what they should", () => {
  assert.match(String(layerViolation("codegen/ir/expr.ts", "codegen/passes/lower.ts")), /downward/);
  assert.match(
    String(layerViolation("codegen/render/wgsl/gemm.ts", "codegen/render/js/loop_nest.ts")),
    /render\/common/,
  );
  assert.equal(
    layerViolation("codegen/render/wgsl/narrow.ts", "codegen/render/wgsl/gemm.ts"),
    null,
  );
  assert.match(
    String(layerViolation("codegen/backends/wgsl.ts", "codegen/backends/gpujs.ts")),
    /another backend/,
  );
  assert.equal(
    layerViolation("codegen/backends/wgsl.ts", "codegen/backends/webgpu_device.ts"),
    null,
  );
  assert.match(String(layerViolation("codegen/passes/lower.ts", "codegen/compile.ts")), /compile/);
  assert.match(String(layerViolation("graph/ir.ts", "codegen/ir/expr.ts")), /below codegen/);
  assert.match(String(layerViolation("codegen/backends/wgsl.ts", "npm:gpu.js@2.24.1")), /gpu\.js/);
  assert.deepEqual(
    importsOf('/**\n * import { x } from "./no.ts";\n */\nimport { y } from "./yes.ts";\n'),
    ["./yes.ts"],
  );
});
