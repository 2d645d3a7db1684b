// What a user sees: `deno check` of a program with one shape mistake per op. The first line of
// each error must hold the op's message exactly once (no repeats from branding or
// intersections), stay short, and the squiggle must start at the argument at fault.
import assert from "node:assert/strict";

const MOD = new URL("../mod.ts", import.meta.url).href;

/** Each mistake, with the message its first error line must carry once. */
const CASES: readonly { code: string; message: string; at: string }[] = [
  {
    code: `b.add(y, b.param("pos", [1, 196, 768]));`,
    at: "b.param",
    message: "add: dims 197 and 196 do not match in [B, 197, 768] and [1, 196, 768]",
  },
  {
    code: `b.conv2d(x, { out: 8, kernel: 8, stride: 0, name: "c" });`,
    at: "out",
    message: "conv2d c: stride must be a positive integer, got 0",
  },
  {
    code: `b.linear(b.flatten(x, 2, 3), { in: 5, out: 8, name: "fc" });`,
    at: "in",
    message: "linear fc: input [B, 3, 1024] has last dim 1024 but in_features is 5",
  },
  {
    code: `b.reshape(y, ["B", 196, 768]);`,
    at: `["B", 196, 768]`,
    message: "reshape: [B, 197, 768] has B*151296 elements but [B, 196, 768] has B*150528",
  },
  {
    code: `b.matmul(y, b.input("w", [5, 7]));`,
    at: `b.input("w"`,
    message: "matmul: inner dims differ: 768 in [B, 197, 768] vs 5 in [5, 7]",
  },
  {
    code: `b.layerNorm(y, { name: "ln", eps: -1 });`,
    at: "name",
    message: "layerNorm ln: eps must be a finite number >= 0, got -1",
  },
  {
    code: `b.input("z", [-3, 4]);`,
    at: "[-3, 4]",
    message: "input z: dim -3 is not a size (a safe integer >= 0) or a name",
  },
  {
    code: `b.transpose(y, 0, 5);`,
    at: "5)",
    message: "transpose: axis 5 is out of range for [B, 197, 768]",
  },
];

Deno.test("deno check: each shape error's first line holds its message once, is short, and marks the argument at fault", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const lines = [
      `import { encoderBlock, graph } from ${JSON.stringify(MOD)};`,
      `graph("errors", (b) => {`,
      `  const x = b.input("x", ["B", 3, 32, 32]);`,
      `  const y = b.input("y", ["B", 197, 768]);`,
      ...CASES.map((c) => `  ${c.code}`),
      `  return y;`,
      `});`,
    ];
    const file = `${dir}/errors.ts`;
    await Deno.writeTextFile(file, lines.join("\n") + "\n");
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["check", file],
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout);
    assert.equal(out.success, false, "the program has errors");
    // One block per error: its first line, then the source line, the squiggle and `at file:L:C`.
    const blocks = text.split(/\n(?=TS\d+ \[ERROR\])/).filter((b) => /^TS\d+ \[ERROR\]/.test(b));
    assert.equal(blocks.length, CASES.length, text);
    for (const c of CASES) {
      const block = blocks.find((b) => b.split("\n")[0].includes(c.message));
      const firsts = blocks.map((b) => b.split("\n")[0]).join("\n");
      assert.ok(block, `no error line says "${c.message}":\n${firsts}`);
      const line = block.split("\n")[0];
      assert.equal(line.split(c.message).length - 1, 1, `repeated: ${line}`);
      assert.ok(line.length <= 240, `${line.length} characters: ${line}`);
      const [, row, col] = block.match(/errors\.ts:(\d+):(\d+)/) ?? [];
      const squiggled = lines[Number(row) - 1]?.slice(Number(col) - 1) ?? "";
      assert.ok(squiggled.startsWith(c.at), `"${c.message}" squiggles at "${squiggled}"`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
