// Reusable typed blocks (issue 12 item 1): a block's body is checked over its named dims where it
// is written; each call binds the dims, checks the binding (compile error and the same
// `ShapeError` at run time) and inlines the sub-graph with prefixed parameter names.
import assert from "node:assert/strict";
// deno.json has no import map; npm deps are pinned by full specifier.
import fc from "npm:fast-check@4.3.0";
import {
  block,
  type BlockCheck,
  type BlockShape,
  encoderBlock,
  type EncoderBlockSignature,
  graph,
  ShapeError,
} from "../mod.ts";
import type { Equal, Expect, IsError, ShapeOf } from "./type_helpers.ts";

/** A pre-norm MLP over `[B, N, D]`: `D` from the call's `width`, hidden width `M` = 4D by default. */
const mlp = block(
  "mlp",
  { input: ["B", "N", "D"], sizes: { width: "D", hidden: "M" }, defaults: { M: "D*4" } },
  (g, x) => {
    const h = g.gelu(
      g.linear(g.layerNorm(x, { name: "norm" }), { in: "D", out: "M", name: "fc1" }),
    );
    return g.add(x, g.linear(h, { in: "M", out: "D", name: "fc2" }));
  },
);

type Enc<S extends readonly (string | number)[], O> = BlockCheck<
  "encoderBlock",
  EncoderBlockSignature,
  S,
  O
>;

export type BlockTypes = [
  Expect<
    IsError<
      Enc<["B", 197, 768], { heads: 5; name: "b" }>,
      "encoderBlock b: input dim 768 must be H*Dh, but H = 5 (heads) does not divide 768"
    >
  >,
  Expect<
    IsError<
      Enc<["B", 197], { heads: 12; name: "b" }>,
      "encoderBlock b: input has rank 2, expected 3 [B, N, H*Dh]"
    >
  >,
  Expect<
    IsError<
      Enc<["B", 197, "D"], { heads: 12; name: "b" }>,
      "encoderBlock b: input dim D must be a concrete size (it is H*Dh)"
    >
  >,
  Expect<
    IsError<
      Enc<["B", 197, 768], { heads: 0; name: "b" }>,
      "encoderBlock b: heads must be a positive integer, got 0"
    >
  >,
  Expect<Equal<Enc<["B", 197, 768], { heads: 12; name: "b" }>, unknown>>,
  Expect<Equal<BlockShape<["B", "N", "H*Dh"], { B: 8; N: 197; H: 12; Dh: 64 }>, [8, 197, 768]>>,
  Expect<Equal<BlockShape<["B", "N*2"], { B: "B"; N: 197 }>, ["B", 394]>>,
];

Deno.test("a block call binds its dims: exact output types, symbolic batch kept", () => {
  const g = graph("g", (b) => {
    const x = b.input("x", ["B", 17, 32]);
    const y = encoderBlock(b, x, { heads: 2, name: "blocks.0" });
    const z = mlp(b, y, { width: 32, name: "extra" }); // hidden defaults to 128
    return z;
  });
  const shape: Expect<Equal<ShapeOf<typeof g>, ["B", 17, 32]>> = true;
  assert.ok(shape);
  assert.deepEqual(g.outShape, ["B", 17, 32]);
  const names = g.params().map((p) => `${p.attrs.name} ${p.shape.join("x")}`);
  assert.deepEqual(names.slice(0, 4), [
    "blocks.0.norm1.weight 32",
    "blocks.0.norm1.bias 32",
    "blocks.0.attn.qkv.weight 96x32",
    "blocks.0.attn.qkv.bias 96",
  ]);
  assert.ok(names.includes("extra.fc1.weight 128x32"), names.join(", "));
  assert.deepEqual(g.labels(), ["blocks.0.attn", "blocks.0", "extra"]);
  // No node of the block's own input survives inlining: the caller's tensor is read directly.
  assert.equal(g.inputs().length, 1);
});

Deno.test("a binding that does not fit is a one-line ShapeError, the type rule's message, and leaves the graph unchanged", () => {
  const oneLine = (why: RegExp) => (e: unknown) => {
    assert.ok(e instanceof ShapeError);
    assert.ok(!e.message.includes("\n"), e.message);
    assert.match(e.message, why);
    return true;
  };
  graph("g", (b) => {
    const x = b.input("x", ["B", 17, 32]);
    const before = b.build("before", x).nodes.length;
    assert.throws(
      // @ts-expect-error mlp m: D is 16 but input dim 2 is 32
      () => mlp(b, x, { width: 16, name: "m" }),
      oneLine(/^mlp \(node m, .*\): D is 16 but input dim 2 is 32$/),
    );
    assert.throws(
      // @ts-expect-error encoderBlock b: input dim 32 must be H*Dh, but H = 5 (heads) ...
      () => encoderBlock(b, x, { heads: 5, name: "b" }),
      oneLine(/input dim 32 must be H\*Dh, but H = 5 \(heads\) does not divide 32$/),
    );
    assert.equal(b.build("after", x).nodes.length, before);
    return x;
  });
});

Deno.test("inlining that fails part way (a parameter on a symbolic dim) leaves the graph unchanged", () => {
  graph("g", (b) => {
    const x = b.input("x", ["B", 17, 32]);
    const sub = graph(
      "sub",
      (s) => s.linear(s.input("t", ["N", 32]), { in: 32, out: 8, name: "fc" }),
    );
    const before = b.build("before", x).nodes.length;
    // The sub-graph's input is [N, 32]; [B, 17, 32] does not fit it.
    assert.throws(() => b.inline(sub, [x], { prefix: "p" }), ShapeError);
    assert.equal(b.build("after", x).nodes.length, before);
    const ok = b.inline(sub, [b.input("t2", [5, 32])], { dims: { N: 5 }, prefix: "p" });
    assert.deepEqual(ok.shape, [5, 8]);
    assert.deepEqual(b.build("g", ok).params().map((p) => p.attrs.name), [
      "p.fc.weight",
      "p.fc.bias",
    ]);
    return ok;
  });
});

// ---- the README's example, verbatim ------------------------------------------------------------

const attention = block("attention", {
  input: ["B", "N", "H*Dh"], // batch, tokens, width = heads * head width
  sizes: { heads: "H" }, // the call's `heads` binds H; Dh is solved from the width
}, (g, x, { Dh }) => {
  const qkv = g.linear(x, { in: "H*Dh", out: "H*Dh*3", name: "qkv" }); // checked over the names
  const heads = g.permute(g.reshape(qkv, ["B", "N", 3, "H", "Dh"]), [2, 0, 3, 1, 4]);
  const q = g.mul(g.select(heads, 0, 0), Dh ** -0.5);
  const scores = g.matmul(q, g.transpose(g.select(heads, 0, 1), -2, -1)); // [B, H, N, N]
  const mixed = g.matmul(g.softmax(scores, -1), g.select(heads, 0, 2)); // [B, H, N, Dh]
  const merged = g.reshape(g.transpose(mixed, 1, 2), ["B", "N", "H*Dh"]);
  return g.linear(merged, { in: "H*Dh", out: "H*Dh", name: "proj" });
});

const vitB = graph("vit-b", (g) => {
  let x = g.input("embedded", ["B", 197, 768]);
  for (let i = 0; i < 12; i++) x = attention(g, x, { heads: 12, name: `blocks.${i}.attn` });
  return x; // Tensor<["B", 197, 768]>
  // attention(g, x, { heads: 5, name: "a" }) is a compile error:
  // "attention a: input dim 768 must be H*Dh, but H = 5 (heads) does not divide 768"
});

Deno.test("the README's block example builds a 12-block graph of the exact type", () => {
  const typed: Expect<Equal<ShapeOf<typeof vitB>, readonly ["B", 197, 768]>> = true;
  assert.ok(typed);
  assert.equal(vitB.params().length, 12 * 4);
  assert.equal(vitB.params()[0].attrs.name, "blocks.0.attn.qkv.weight");
  assert.deepEqual(vitB.params()[0].shape, [2304, 768]);
  graph("bad", (g) => {
    const x = g.input("embedded", ["B", 197, 768]);
    assert.throws(
      // @ts-expect-error attention a: input dim 768 must be H*Dh, but H = 5 (heads) ...
      () => attention(g, x, { heads: 5, name: "a" }),
      /H = 5 \(heads\) does not divide 768/,
    );
    return x;
  });
});

// ---- the type rule and the runtime rule of a binding agree on random calls -------------------

const CONFIG = new URL("../deno.json", import.meta.url).pathname;
const MOD = new URL("../mod.ts", import.meta.url).href;
const HELPERS = new URL("./type_helpers.ts", import.meta.url).href;

interface BindCase {
  readonly shape: readonly (string | number)[];
  readonly heads: number;
}

Deno.test("property: block bindings agree in the type and at run time (fast-check)", async () => {
  const dim = fc.oneof(
    fc.integer({ min: 0, max: 4096 }),
    fc.constantFrom("B", "N", "D"),
  );
  const cases = fc.sample(
    fc.record({
      shape: fc.oneof(
        fc.array(dim, { minLength: 3, maxLength: 3 }),
        fc.array(dim, { maxLength: 4 }),
      ),
      heads: fc.oneof(fc.integer({ min: 1, max: 16 }), fc.constantFrom(0, 3, 12)),
    }),
    { numRuns: 80, seed: 0xb10c },
  ) as BindCase[];
  const lines = [
    `import type { BlockBinding, BlockCheck, BlockShape, EncoderBlockSignature, ShapeErrorType } from "${MOD}";`,
    `import type { Equal, Expect } from "${HELPERS}";`,
    `type Sig = EncoderBlockSignature;`,
  ];
  for (const [i, c] of cases.entries()) {
    const s = `[${c.shape.map((d) => JSON.stringify(d)).join(", ")}]`;
    const o = `{ heads: ${c.heads}; name: "b" }`;
    let outcome: string;
    try {
      const g = graph(
        "g",
        (b) =>
          encoderBlock(b, b.input("x", c.shape as never), { heads: c.heads, name: "b" } as never),
      );
      outcome =
        `Expect<Equal<BlockShape<["B", "N", "H*Dh"], BlockBinding<"encoderBlock", Sig, ${s}, ${o}>>, ${
          JSON.stringify(g.outShape)
        }>>`;
    } catch (e) {
      if (!(e instanceof ShapeError)) throw e;
      const why = e.message.slice(e.message.indexOf("): ") + 3);
      outcome = `Expect<Equal<BlockCheck<"encoderBlock", Sig, ${s}, ${o}>, ShapeErrorType<${
        JSON.stringify(`encoderBlock b: ${why}`)
      }>>>`;
    }
    lines.push(`export type Case${i} = ${outcome}; // ${JSON.stringify(c)}`);
  }
  const dir = await Deno.makeTempDir({ prefix: "tessera_block_" });
  try {
    const file = `${dir}/cases.ts`;
    await Deno.writeTextFile(file, lines.join("\n") + "\n");
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["check", "--config", CONFIG, file],
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    const failing = [...text.matchAll(/cases\.ts:(\d+):/g)].map((m) => lines[Number(m[1]) - 1]);
    assert.ok(out.success, `${failing.slice(0, 5).join("\n")}\n${text.slice(0, 1500)}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a block on a shape that is not a tuple literal compiles to honest number dims", () => {
  const dims: number[] = [2, 17, 32];
  const g = graph("g", (b) => encoderBlock(b, b.input("x", dims), { heads: 2, name: "b" }));
  const typed: Expect<Equal<ShapeOf<typeof g>, [number, number, number]>> = true;
  assert.ok(typed);
  assert.deepEqual(g.outShape, [2, 17, 32]);
});
