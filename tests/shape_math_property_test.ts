// Property test for graph/shape_math.ts: random operand pairs are written as
// type-level assertions into a temporary file, which must pass `deno check`.
// The runtime computes the expected literals; the type checker must agree.
import assert from "node:assert/strict";
// deno.json has no import map; the brief pins npm deps by full specifier.
import fc from "npm:fast-check@4.3.0";

const SHAPE_MATH_URL = new URL("../graph/shape_math.ts", import.meta.url).href;
const PAIRS = 150;

const HEADER = `import type { Add, FloorDiv, Lt, Mod, Mul, Sub } from "${SHAPE_MATH_URL}";
type Equal<X, Y> = (<T>() => T extends X ? 1 : 2) extends (<T>() => T extends Y ? 1 : 2) ? true
  : false;
type Expect<T extends true> = T;
`;

/** Assertions that `shape_math` agrees with JavaScript arithmetic on `a`, `b` (b > 0). */
function assertionsFor(i: number, a: number, b: number): string {
  const lines = [
    `Expect<Equal<Add<${a}, ${b}>, ${a + b}>>`,
    `Expect<Equal<Mul<${a}, ${b}>, ${a * b}>>`,
    `Expect<Equal<FloorDiv<${a}, ${b}>, ${Math.floor(a / b)}>>`,
    `Expect<Equal<Mod<${a}, ${b}>, ${a % b}>>`,
    `Expect<Equal<Lt<${a}, ${b}>, ${a < b}>>`,
    `Expect<Equal<Lt<${b}, ${a}>, ${b < a}>>`,
    // Sub is only defined for a >= b; otherwise the contract says `number`.
    `Expect<Equal<Sub<${a}, ${b}>, ${a >= b ? a - b : "number"}>>`,
  ];
  return `// a = ${a}, b = ${b}\nexport type Case${i} = [\n  ${lines.join(",\n  ")},\n];\n`;
}

/** Runs `deno check` on `source` (written into `dir` as `name`). */
async function denoCheck(
  dir: string,
  name: string,
  source: string,
): Promise<{ code: number; stderr: string }> {
  const file = `${dir}/${name}`;
  await Deno.writeTextFile(file, source);
  const { code, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["check", "--quiet", file],
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code, stderr: new TextDecoder().decode(stderr) };
}

Deno.test("shape_math agrees with runtime arithmetic on random pairs", async () => {
  const dir = await Deno.makeTempDir({ prefix: "shape_math_prop_" });
  try {
    const pair = fc.tuple(fc.integer({ min: 0, max: 1e6 }), fc.integer({ min: 1, max: 1e6 }));
    await fc.assert(
      fc.asyncProperty(
        fc.array(pair, { minLength: PAIRS, maxLength: PAIRS }),
        async (pairs) => {
          const good = HEADER + pairs.map(([a, b], i) => assertionsFor(i, a, b)).join("");
          // Same shape, one answer off by one: proves the harness can fail.
          const [a, b] = pairs[0];
          const bad = HEADER +
            `export type Wrong = Expect<Equal<Add<${a}, ${b}>, ${a + b + 1}>>;\n`;

          const [ok, wrong] = await Promise.all([
            denoCheck(dir, "good.ts", good),
            denoCheck(dir, "bad.ts", bad),
          ]);
          assert.equal(ok.code, 0, `deno check rejected true assertions:\n${ok.stderr}`);
          assert.notEqual(wrong.code, 0, "deno check accepted a false assertion");
          assert.match(wrong.stderr, /TS2344/);
        },
      ),
      // One run = one batch of PAIRS pairs. No shrinking: every step would cost a
      // `deno check`, and the failing file's errors already name the pair.
      { numRuns: 1, endOnFailure: true },
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
