/**
 * How long `deno check` takes cold on `examples/` and `models/` (issue 12: under 5 s on the
 * 2-core box), and on a generated 12-block ViT-B written with `encoderBlock`. "Cold" means no
 * type-check cache: each run gets a fresh `DENO_DIR` that links the downloaded npm and remote
 * modules but not the check cache. Prints one JSON line.
 *
 * Run: `deno run -A bench/type_check.ts [--runs 3]`
 * @module
 */

const ROOT = new URL("..", import.meta.url).pathname;
const runs = Number(Deno.args[Deno.args.indexOf("--runs") + 1] || 3);

async function denoDir(): Promise<string> {
  const out = await new Deno.Command(Deno.execPath(), { args: ["info", "--json"] }).output();
  return JSON.parse(new TextDecoder().decode(out.stdout)).denoDir;
}

/** Seconds for one cold `deno check` of `paths`. */
async function coldCheck(source: string, paths: string[]): Promise<number> {
  const dir = await Deno.makeTempDir({ prefix: "tessera_denodir_" });
  try {
    for (const sub of ["npm", "remote"]) {
      await Deno.symlink(`${source}/${sub}`, `${dir}/${sub}`).catch(() => {});
    }
    const start = performance.now();
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["check", ...paths],
      cwd: ROOT,
      env: { DENO_DIR: dir },
      stdout: "null",
      stderr: "piped",
    }).output();
    const seconds = (performance.now() - start) / 1000;
    if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
    return seconds;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const source = await denoDir();
const vitB = await Deno.makeTempFile({ dir: ROOT, prefix: ".vit_b_", suffix: ".ts" });
await Deno.writeTextFile(
  vitB,
  [
    `import { encoderBlock, graph } from "./mod.ts";`,
    `export const vitB = graph("vit-b", (g) => {`,
    `  let x = g.input("embedded", ["B", 197, 768]);`,
    `  for (let i = 0; i < 12; i++) x = encoderBlock(g, x, { heads: 12, name: \`blocks.\${i}\` });`,
    `  return g.layerNorm(x, { name: "norm", eps: 1e-6 });`,
    `});`,
    `export const shape: readonly ["B", 197, 768] = vitB.outShape;`,
  ].join("\n"),
);
try {
  const models: number[] = [];
  const block: number[] = [];
  for (let i = 0; i < runs; i++) {
    models.push(await coldCheck(source, ["examples/", "models/"]));
    block.push(await coldCheck(source, [vitB]));
  }
  console.log(JSON.stringify({
    bench: "type_check",
    runs,
    examples_models_cold_s: Number(median(models).toFixed(2)),
    vit_b_blocks_cold_s: Number(median(block).toFixed(2)),
    deno: Deno.version.deno,
    typescript: Deno.version.typescript,
  }));
} finally {
  await Deno.remove(vitB);
}
