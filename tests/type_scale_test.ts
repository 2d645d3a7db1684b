// Type checking at model scale (issue 12 item 2): a generated 1000-op graph written the
// documented way (one statement per op, blocks for repeated structure) type-checks without a
// stack overflow, and its inferred output type is exact. `deno check` runs on the generated
// file, so the test proves what a user's editor sees.
import assert from "node:assert/strict";

const MOD = new URL("../mod.ts", import.meta.url).href;
const HELPERS = new URL("./type_helpers.ts", import.meta.url).href;
const CONFIG = new URL("../deno.json", import.meta.url).pathname;

/** Writes `source` to a temporary file, type-checks it and runs it (`deno run --check`). */
async function check(source: string): Promise<{ ok: boolean; output: string }> {
  const dir = await Deno.makeTempDir({ prefix: "tessera_scale_" });
  const file = `${dir}/probe.ts`;
  await Deno.writeTextFile(file, source);
  try {
    const { success, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--check", "--config", CONFIG, file],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
    return { ok: success, output: text };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * 1000 ops, one statement each (a cycle of shape-changing and shape-keeping ops), in either
 * documented form: statements on a `GraphBuilder` (`b.build` at the end), or a `graph()`
 * callback with its output type written. An unannotated callback makes the checker infer its
 * return type by walking the whole chain at once, which overflows its stack near 250 ops (so
 * does `export const g = b.build(...)`, which is resolved before the statements; `export { g }`
 * is not).
 */
function thousandOps(form: "builder" | "callback"): string {
  const indent = form === "builder" ? "" : "  ";
  const lines = [
    `import { graph, GraphBuilder, type Tensor } from "${MOD}";`,
    `import type { Equal, Expect, ShapeOf } from "${HELPERS}";`,
    form === "builder"
      ? `const b = new GraphBuilder();`
      : `const g = graph("deep", (b): Tensor<readonly ["B", 17, 32]> => {`,
    `${indent}const x0 = b.input("x", ["B", 17, 32]);`,
  ];
  let ops = 1;
  let i = 0;
  // Each round: 8 ops, ending at the shape it started from.
  while (ops + 8 <= 1000) {
    const at = (k: number): string => `x${i + k}`;
    lines.push(
      `const ${at(1)} = b.linear(${at(0)}, { in: 32, out: 64, name: "fc${i}" });`,
      `const ${at(2)} = b.gelu(${at(1)});`,
      `const ${at(3)} = b.reshape(${at(2)}, ["B", 17, 4, -1]);`,
      `const ${at(4)} = b.transpose(${at(3)}, 1, 2);`,
      `const ${at(5)} = b.softmax(${at(4)}, -1);`,
      `const ${at(6)} = b.reshape(b.transpose(${at(5)}, 1, 2), ["B", 17, 64]);`,
      `const ${at(7)} = b.linear(${at(6)}, { in: 64, out: 32, name: "proj${i}" });`,
    );
    i += 7;
    ops += 8;
  }
  while (ops < 1000) {
    lines.push(`const x${i + 1} = b.mul(x${i}, 2);`);
    i += 1;
    ops += 1;
  }
  const out = `b.layerNorm(x${i}, { name: "norm" })`;
  lines.push(form === "builder" ? `const g = b.build("deep", ${out});` : `  return ${out};\n});`);
  lines.push(
    `export { g };`,
    `type Mutable<T> = { -readonly [K in keyof T]: T[K] };`,
    `export type _ = Expect<Equal<Mutable<ShapeOf<typeof g>>, ["B", 17, 32]>>;`,
    // Run as well: the runtime rules agree on every op.
    `if (g.nodes.length < 1000) throw new Error("too few nodes: " + g.nodes.length);`,
    `if (String(g.outShape) !== "B,17,32") throw new Error(String(g.outShape));`,
  );
  return lines.map((l) => (l.startsWith("const x") ? indent + l : l)).join("\n");
}

for (const form of ["builder", "callback"] as const) {
  Deno.test(`a 1000-op graph (${form} form) type-checks without a stack overflow, to the exact output type`, async () => {
    const { ok, output } = await check(thousandOps(form));
    assert.ok(ok, output.slice(-3000));
  });
}

Deno.test("a 12-block ViT-B written with encoderBlock type-checks to [B, 197, 768]", async () => {
  const source = [
    `import { encoderBlock, graph } from "${MOD}";`,
    `import type { Equal, Expect, ShapeOf } from "${HELPERS}";`,
    `const vitB = graph("vit-b", (g) => {`,
    `  let x = g.input("embedded", ["B", 197, 768]);`,
    `  for (let i = 0; i < 12; i++) x = encoderBlock(g, x, { heads: 12, name: \`blocks.\${i}\` });`,
    `  return g.layerNorm(x, { name: "norm", eps: 1e-6 });`,
    `});`,
    `export type _ = Expect<Equal<ShapeOf<typeof vitB>, readonly ["B", 197, 768]>>;`,
    `if (String(vitB.outShape) !== "B,197,768") throw new Error(String(vitB.outShape));`,
    `let refused = false;`,
    `try {`,
    `  graph("bad", (g) => {`,
    `    const x = g.input("embedded", ["B", 197, 768]);`,
    `    // @ts-expect-error heads 5 do not divide 768`,
    `    return encoderBlock(g, x, { heads: 5, name: "blocks.0" });`,
    `  });`,
    `} catch { refused = true; }`,
    `if (!refused) throw new Error("heads 5 was accepted at run time");`,
  ].join("\n");
  const { ok, output } = await check(source);
  assert.ok(ok, output.slice(0, 2000));
});
