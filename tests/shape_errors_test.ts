// Runtime shape rules, as a JS caller (or a graph built from a weights file) meets them: the
// types are bypassed through `unknown`, and every invalid input must throw `ShapeError` naming
// the op, the node and the shapes. `compile()` and `run()` reject bad weights and inputs with
// `WeightsError` / `InputError`, and a failed run leaves the model usable.
import assert from "node:assert/strict";
import {
  compile,
  formatShape,
  graph,
  type GraphBuilder,
  initParams,
  InputError,
  patchEmbedding,
  seedTokenizer,
  type Shape,
  ShapeError,
  specialize,
  type Tensor,
  type TensorData,
  type TShape,
  WeightsError,
} from "../mod.ts";
import { conv2dOp } from "../ops/conv2d.ts";

/** The builder as plain JS sees it: any arguments, no type rules. */
type Loose = Record<string, (...args: unknown[]) => Tensor<TShape>>;
const loose = (b: GraphBuilder): Loose => b as unknown as Loose;
/** Builds a graph from JS code that the type checker does not see. */
const build = (f: (u: Loose) => unknown) => graph("g", (b) => f(loose(b)) as Tensor<TShape>);
/** Calls a function with arguments its type forbids. */
const untyped = <A extends never[], R>(f: (...args: A) => R) =>
  f as unknown as (...args: unknown[]) => R;

interface Expected {
  op: string;
  node?: string;
  shapes?: Shape[];
  reason?: RegExp;
}

function checkShapeError(e: unknown, want: Expected): void {
  assert.ok(e instanceof ShapeError, `expected ShapeError, got ${e}`);
  assert.equal(e.name, "ShapeError");
  assert.equal(e.op, want.op, e.message);
  if (want.node !== undefined) assert.equal(e.node, want.node, e.message);
  if (want.shapes !== undefined) assert.deepEqual(e.shapes, want.shapes, e.message);
  // The message names the op, the node and every input shape.
  assert.ok(e.message.startsWith(`${e.op} (node ${e.node}`), e.message);
  for (const s of e.shapes) assert.ok(e.message.includes(formatShape(s)), e.message);
  if (want.reason) assert.match(e.message, want.reason);
}

function throwsShape(fn: () => unknown, want: Expected): void {
  assert.throws(fn, (e: unknown) => {
    checkShapeError(e, want);
    return true;
  });
}

Deno.test("reshape: element counts must agree", () => {
  throwsShape(() => build((u) => u.reshape(u.input("x", [2, 3, 4]), [5, 5])), {
    op: "reshape",
    node: "reshape_1",
    shapes: [[2, 3, 4]],
    reason: /\[2, 3, 4\] has 24 elements but \[5, 5\] has 25/,
  });
  throwsShape(
    () => build((u) => u.reshape(u.flatten(u.input("x", ["B", 3, 14, 14]), 2, 3), ["B", 196, 4])),
    {
      op: "reshape",
      node: "reshape_2",
      shapes: [["B", 3, 196]],
      reason: /has B\*588 elements but \[B, 196, 4\] has B\*784/,
    },
  );
  // A symbol cannot stand in for a number, nor a different symbol.
  throwsShape(() => build((u) => u.reshape(u.input("x", ["B", 6]), [6, 6])), { op: "reshape" });
  throwsShape(() => build((u) => u.reshape(u.input("x", ["B", 6]), ["C", 6])), { op: "reshape" });
  // Target dims must be sizes or one -1 (inferred, torch semantics); no fractions.
  throwsShape(() => build((u) => u.reshape(u.input("x", [2, 3]), [-2, 6])), {
    op: "reshape",
    reason: /target dim -2 is not a size or -1/,
  });
  throwsShape(() => build((u) => u.reshape(u.input("x", [2, 3]), [-1, 4])), {
    op: "reshape",
    reason: /cannot infer -1 in \[-1, 4\] from \[2, 3\]: 6 elements are not a multiple of 4/,
  });
  throwsShape(() => build((u) => u.reshape(u.input("x", [5, 1]), [2.5, 2])), { op: "reshape" });
});

Deno.test("linear: in_features must equal the last dim", () => {
  throwsShape(
    () => build((u) => u.linear(u.input("x", ["B", 196, 1]), { in: 3, out: 8, name: "e" })),
    {
      op: "linear",
      node: "linear_3", // x, e.weight, e.bias, then the op
      shapes: [["B", 196, 1], [8, 3], [8]],
      reason: /last dim 1 but in_features is 3/,
    },
  );
  throwsShape(
    () => build((u) => u.linear(u.input("x", [2, 4]), { in: 3, out: 8, name: "e", bias: false })),
    { op: "linear", node: "linear_2", shapes: [[2, 4], [8, 3]] },
  );
  throwsShape(() => build((u) => u.linear(u.input("x", [2, 3]), { in: -3, out: 8, name: "e" })), {
    op: "linear",
    node: "e",
  });
});

Deno.test("conv2d: kernel too large, channel mismatch, bad rank, bad stride", () => {
  throwsShape(
    () => build((u) => u.conv2d(u.input("x", [1, 3, 8, 8]), { out: 4, kernel: 9, name: "c" })),
    {
      op: "conv2d",
      node: "conv2d_3",
      shapes: [[1, 3, 8, 8], [4, 3, 9, 9], [4]],
      reason: /kernel 9 is larger than the padded height 8 \+ 2\*0/,
    },
  );
  throwsShape(
    () => build((u) => u.conv2d(u.input("x", [1, 3, 16, 4]), { out: 4, kernel: 9, name: "c" })),
    { op: "conv2d", reason: /padded width 4/ },
  );
  // Padding makes room: 8 + 2*1 >= 9 is fine, 8 + 2*0 is not.
  const padded = build((u) =>
    u.conv2d(u.input("x", [1, 3, 8, 8]), { out: 4, kernel: 9, padding: 1, name: "c" })
  );
  assert.deepEqual(padded.outShape, [1, 4, 2, 2]);
  // The builder derives the weight from the input's channels, so a channel mismatch comes from
  // a graph built elsewhere (a weights file): the runtime rule itself must catch it.
  throwsShape(
    () => conv2dOp.inferShape([[1, 3, 8, 8], [4, 2, 2, 2], [4]], { stride: 2, padding: 0 }, "c"),
    {
      op: "conv2d",
      node: "c",
      shapes: [[1, 3, 8, 8], [4, 2, 2, 2], [4]],
      reason: /input has 3 channels but the weight expects 2/,
    },
  );
  throwsShape(
    () => conv2dOp.inferShape([[1, 3, 8, 8], [4, 3, 2, 2], [5]], { stride: 2, padding: 0 }, "c"),
    { op: "conv2d", reason: /bias must be \[4\]/ },
  );
  throwsShape(
    () => build((u) => u.conv2d(u.input("x", [3, 8, 8]), { out: 4, kernel: 2, name: "c" })),
    {
      op: "conv2d",
      reason: /input must be 4-D/,
    },
  );
  throwsShape(
    () =>
      build((u) =>
        u.conv2d(u.input("x", [1, 3, 8, 8]), { out: 4, kernel: 2, stride: 0, name: "c" })
      ),
    { op: "conv2d", reason: /stride must be a positive integer/ },
  );
  throwsShape(
    () =>
      build((u) =>
        u.conv2d(u.input("x", [1, 3, 8, 8]), { out: 4, kernel: 2, padding: -1, name: "c" })
      ),
    { op: "conv2d", reason: /padding must be >= 0/ },
  );
  throwsShape(
    () => build((u) => u.conv2d(u.input("x", [1, "C", 8, 8]), { out: 4, kernel: 2, name: "c" })),
    {
      op: "conv2d",
      node: "c",
      reason: /must be concrete sizes/,
    },
  );
  throwsShape(
    () => build((u) => u.conv2d(u.input("x", [1, 3, 8, 8]), { out: 4, kernel: 0, name: "c" })),
    {
      op: "conv2d",
    },
  );
});

Deno.test("flatten: axes must be a valid range", () => {
  for (const [a, b] of [[2, 1], [0, 3], [0.5, 1], [1, -7], [-7, 1], [3, 3]]) {
    throwsShape(() => build((u) => u.flatten(u.input("x", [2, 3, 4]), a, b)), {
      op: "flatten",
      node: "flatten_1",
      shapes: [[2, 3, 4]],
      reason: /axes .* are not a valid range for rank 3/,
    });
  }
  throwsShape(() => build((u) => u.flatten(u.input("x", [2, 3, 4]), 2, 1)), {
    op: "flatten",
    reason: /axes 2\.\.1 are not a valid range for rank 3/,
  });
});

Deno.test("permute and transpose: a permutation of the axes", () => {
  for (const perm of [[0, 0, 1], [0, 1], [0, 1, 3], [0, 1, 2, 3], [0, -3, 1]]) {
    throwsShape(() => build((u) => u.permute(u.input("x", ["B", 768, 196]), perm)), {
      op: "permute",
      node: "permute_1",
      shapes: [["B", 768, 196]],
      reason: /is not a permutation of 3 axes/,
    });
  }
  for (const [a, b] of [[1, 3], [-4, 1], [0.5, 1]]) {
    throwsShape(() => build((u) => u.transpose(u.input("x", ["B", 768, 196]), a, b)), {
      op: "transpose",
      shapes: [["B", 768, 196]],
      reason: /must lie in 0\.\.2/,
    });
  }
});

Deno.test("concat: other dims and ranks must agree, axis in range", () => {
  const two = (a: Shape, b: Shape, axis: number) => () =>
    build((u) => u.concat(u.param("a", a), u.param("b", b), axis));
  throwsShape(two([1, 1, 512], [1, 196, 768], 1), {
    op: "concat",
    node: "concat_2",
    shapes: [[1, 1, 512], [1, 196, 768]],
    reason: /dim 2 differs: 512 vs 768/,
  });
  throwsShape(two([1, 2], [1, 2, 3], 0), { op: "concat", reason: /ranks differ/ });
  throwsShape(two([1, 2], [1, 2], 2), { op: "concat", reason: /axis 2 is out of range/ });
  throwsShape(two([1, 2], [1, 2], -5), { op: "concat" });
});

Deno.test("expand: only dims of size 1 grow; add: shapes must broadcast", () => {
  throwsShape(() => build((u) => u.expand(u.param("p", [2, 3]), [4, 3])), {
    op: "expand",
    node: "expand_1",
    shapes: [[2, 3]],
    reason: /cannot expand to \[4, 3\]/,
  });
  throwsShape(() => build((u) => u.expand(u.param("p", [1, 2, 3]), [2, 3])), { op: "expand" });
  throwsShape(() => build((u) => u.expand(u.param("p", [2, 1, 768]), ["B", 1, 768])), {
    op: "expand",
  });
  throwsShape(() => build((u) => u.add(u.input("x", [2, 3]), u.input("y", [4, 3]))), {
    op: "add",
    node: "add_2",
    shapes: [[2, 3], [4, 3]],
    reason: /dims 2 and 4 at axis -2 do not match/,
  });
  throwsShape(() => build((u) => u.add(u.input("x", ["B", 3]), u.input("y", ["C", 3]))), {
    op: "add",
  });
  // Positional embedding with the wrong token count, class token with the wrong width.
  throwsShape(
    () =>
      build((u) =>
        u.addParam(u.input("x", ["B", 197, 768]), { name: "pos", shape: [1, 196, 768] })
      ),
    { op: "add", shapes: [["B", 197, 768], [1, 196, 768]] },
  );
  throwsShape(
    () => build((u) => u.prependToken(u.input("x", ["B", 196, 768]), u.param("cls", [1, 1, 512]))),
    {
      op: "prependToken",
      shapes: [["B", 196, 768], [1, 1, 512]],
      reason: /class token \[1, 1, width\]/,
    },
  );
  throwsShape(() => build((u) => u.classToken(u.input("x", [2, 3]), { name: "cls" })), {
    op: "classToken",
    reason: /must be \[batch, tokens, width\]/,
  });
});

Deno.test("leaves: bad dims, duplicate names, symbolic params", () => {
  for (const shape of [[-1, 3], [1.5, 3], [NaN], ["", 3], [Infinity]]) {
    throwsShape(() => build((u) => u.input("x", shape)), { op: "input", node: "x" });
  }
  throwsShape(() => build((u) => u.input("x", "B,3")), { op: "input", node: "x" });
  throwsShape(() => build((u) => (u.input("x", [1]), u.input("x", [2]))), {
    op: "input",
    reason: /already used/,
  });
  throwsShape(() => build((u) => u.param("p", ["B", 3])), { op: "param", node: "p" });
});

Deno.test("seedTokenizer / patchEmbedding: divisibility, sizes, the seed's 3 channels", () => {
  const seed = untyped(seedTokenizer);
  const timm = untyped(patchEmbedding);
  throwsShape(() => seed({ height: 225, width: 224, patch: 16, embedding: 768 }), {
    op: "seedTokenizer",
    node: "seedTokenizer",
    shapes: [["B", 3, 225, 224]],
    reason: /image height 225 is not divisible by patch size 16 \(strict_img_size\)/,
  });
  // A JavaScript caller that leaves the sizes out gets one line saying what to pass.
  assert.throws(() => seed(), /^TypeError: seedTokenizer: pass the sizes, e\.g\. \{ height: 224/);
  assert.throws(() => timm(null), /patchEmbedding: pass the sizes, .* \(got null\)$/);
  throwsShape(() => timm({ height: 224, width: 225, patch: 16, embedding: 768, batch: 2 }), {
    op: "patchEmbedding",
    shapes: [[2, 3, 224, 225]],
    reason: /image width 225 is not divisible/,
  });
  for (
    const bad of [{ patch: 0 }, { height: -16 }, { embedding: 0 }, { channels: 0 }, { width: 1.5 }]
  ) {
    const cfg = { height: 32, width: 32, patch: 8, embedding: 8, generalized: true, ...bad };
    throwsShape(() => seed(cfg), { op: "seedTokenizer", reason: /must be a positive integer/ });
    throwsShape(() => timm(cfg), { op: "patchEmbedding", reason: /must be a positive integer/ });
  }
  for (const channels of [1, 2, 4]) {
    throwsShape(() => seed({ height: 32, width: 32, patch: 8, embedding: 8, channels }), {
      op: "linear",
      node: "token_embedding.embedding",
      shapes: [["B", 16, channels]],
      reason: /hard-codes in_features 3.*pass generalized: true/,
    });
    // generalized: true and timm's embedding accept any channel count.
    assert.deepEqual(
      seed({ height: 32, width: 32, patch: 8, embedding: 8, channels, generalized: true }).outShape,
      ["B", 17, 8],
    );
    assert.deepEqual(timm({ height: 32, width: 32, patch: 8, embedding: 8, channels }).outShape, [
      "B",
      17,
      8,
    ]);
  }
});

Deno.test("specialize: rank, literal dims, symbol bindings", () => {
  const g = seedTokenizer({ height: 32, width: 32, patch: 8, embedding: 8 });
  throwsShape(() => specialize(g, { image: [1, 3, 32] }), {
    op: "input",
    node: "image",
    shapes: [["B", 3, 32, 32]],
    reason: /got \[1, 3, 32\]: rank 3 != 4/,
  });
  throwsShape(() => specialize(g, { image: [1, 3, 32, 33] }), {
    op: "input",
    node: "image",
    reason: /got \[1, 3, 32, 33\]: dim 3 must be 32/,
  });
  throwsShape(() => specialize(g, { image: [1, 1, 32, 32] }), {
    reason: /dim 1 must be 3/,
    op: "input",
  });
  throwsShape(() => specialize(g, { image: [-1, 3, 32, 32] }), {
    reason: /dim 0 is not a size/,
    op: "input",
  });
  throwsShape(() => specialize(g, { image: [1.5, 3, 32, 32] }), {
    reason: /dim 0 is not a size/,
    op: "input",
  });
  throwsShape(() => specialize(g, {}), { op: "input", reason: /no value given for input "image"/ });
  // One symbol, two sizes: within an input and across inputs.
  const square = build((u) => u.input("x", ["N", "N"]));
  throwsShape(() => specialize(square, { x: [2, 3] }), {
    op: "input",
    node: "x",
    reason: /N is already bound to 2, not 3/,
  });
  const pair = build((u) => u.add(u.input("x", ["B", 4]), u.input("y", ["B", 4])));
  throwsShape(() => specialize(pair, { x: [2, 4], y: [3, 4] }), {
    op: "input",
    node: "y",
    reason: /B is already bound to 2, not 3/,
  });
  assert.deepEqual(specialize(pair, { x: [3, 4], y: [3, 4] }).graph.outShape, [3, 4]);
  // A symbolic size that only fails once bound: the op's rule re-runs and names the op.
  const conv = build((u) =>
    u.conv2d(u.input("x", [1, 3, "H", 8]), { out: 2, kernel: 4, name: "c" })
  );
  throwsShape(() => specialize(conv, { x: [1, 3, 2, 8] }), {
    op: "conv2d",
    node: "conv2d_3",
    shapes: [[1, 3, 2, 8], [2, 3, 4, 4], [2]],
  });
  assert.deepEqual(specialize(conv, { x: [1, 3, 6, 8] }).graph.outShape, [1, 2, 3, 5]);
});

const image = (b: number, fill = 0.5): TensorData => ({
  shape: [b, 3, 16, 16],
  data: new Float32Array(b * 3 * 16 * 16).fill(fill),
});

Deno.test("run(): bad inputs throw InputError or ShapeError, and the model stays usable", async () => {
  const g = seedTokenizer({ height: 16, width: 16, patch: 8, embedding: 4 });
  const model = await compile(g, { backend: "reference", seed: 1 });
  const first = await model.run({ image: image(2) });
  assert.deepEqual(first.output.shape, [2, 5, 4]);

  const bad: [string, () => Promise<unknown>, new (...a: never[]) => Error, RegExp][] = [
    ["missing", () => model.run({}), InputError, /input "image" is missing/],
    ["wrong name", () => model.run({ img: image(2) }), InputError, /"image" is missing/],
    [
      "short data",
      () => model.run({ image: { shape: [2, 3, 16, 16], data: new Float32Array(10) } }),
      InputError,
      /holds 10 values but its shape \[2, 3, 16, 16\] needs 1536/,
    ],
    [
      "NaN",
      () => {
        const x = image(2);
        x.data[7] = NaN;
        return model.run({ image: x });
      },
      InputError,
      /has NaN at flat index 7/,
    ],
    [
      "Infinity",
      () => {
        const x = image(1);
        x.data[0] = -Infinity;
        return model.run({ image: x });
      },
      InputError,
      /-Infinity at flat index 0/,
    ],
    [
      "not float32",
      () => untyped(model.run)({ image: { shape: [1, 3, 16, 16], data: new Array(768).fill(0) } }),
      InputError,
      /Float32Array/,
    ],
    [
      "wrong rank",
      () => model.run({ image: { shape: [3, 16, 16], data: new Float32Array(768) } }),
      ShapeError,
      /rank 3 != 4/,
    ],
    [
      "wrong size",
      () => model.run({ image: { shape: [1, 3, 24, 16], data: new Float32Array(1152) } }),
      ShapeError,
      /dim 2 must be 16/,
    ],
    [
      "unknown stage",
      () => model.run({ image: image(2) }, { stages: ["nope"] }),
      Error,
      /no stage "nope"/,
    ],
  ];
  for (const [what, call, type, message] of bad) {
    await assert.rejects(call, (e: unknown) => {
      assert.ok(e instanceof type, `${what}: ${e}`);
      assert.match((e as Error).message, message, what);
      if (e instanceof InputError) assert.equal(e.input, "image");
      if (e instanceof ShapeError) checkShapeError(e, { op: "input", node: "image" });
      return true;
    });
    // Nothing half-done: the same model still runs, with the same result.
    const again = await model.run({ image: image(2) });
    assert.deepEqual(again.output.shape, [2, 5, 4], what);
    assert.deepEqual(again.output.data, first.output.data, what);
  }
  // A new shape after the failures compiles and runs too.
  const one = await model.run({ image: image(1) }, { stages: "all" });
  assert.deepEqual(one.output.shape, [1, 5, 4]);
  assert.deepEqual(one.output.data, first.output.data.subarray(0, 20));
  assert.deepEqual(Object.keys(one.stages), [
    "patches",
    "tokens",
    "embeddings",
    "with_class_token",
  ]);
  model.dispose();
});

Deno.test("compile(): weights missing a parameter or with a wrong shape throw WeightsError", async () => {
  const g = patchEmbedding({ height: 16, width: 16, patch: 8, embedding: 4 });
  const good = initParams(g, 0);
  const variants: [string, (w: Map<string, TensorData>) => void, RegExp][] = [
    ["missing", (w) => w.delete("pos_embed"), /parameter "pos_embed" \[1, 5, 4\] is missing/],
    [
      "wrong shape",
      (w) => w.set("cls_token", { shape: [1, 1, 5], data: new Float32Array(5) }),
      /"cls_token" has shape \[1, 1, 5\] but the graph needs \[1, 1, 4\]/,
    ],
    [
      "transposed weight",
      (w) => w.set("patch_embed.proj.weight", { shape: [3, 4, 8, 8], data: new Float32Array(768) }),
      /has shape \[3, 4, 8, 8\] but the graph needs \[4, 3, 8, 8\]/,
    ],
    [
      "short data",
      (w) => w.set("patch_embed.proj.bias", { shape: [4], data: new Float32Array(3) }),
      /holds 3 values but \[4\] needs 4/,
    ],
    [
      "NaN",
      (w) => w.set("cls_token", { shape: [1, 1, 4], data: new Float32Array([0, NaN, 0, 0]) }),
      /NaN at flat index 1/,
    ],
  ];
  for (const [what, mutate, message] of variants) {
    const weights = new Map(good);
    mutate(weights);
    await assert.rejects(
      compile(g, { weights, weightsSource: "vit.safetensors" }),
      (e: unknown) => {
        assert.ok(e instanceof WeightsError, `${what}: ${e}`);
        assert.match(e.message, message, what);
        assert.match(e.message, /vit\.safetensors/, what);
        return true;
      },
    );
  }
  // The graph is untouched by the failures: the good weights still compile and run.
  const model = await compile(g, { weights: good });
  const { output } = await model.run({ image: image(1) });
  assert.deepEqual(output.shape, [1, 5, 4]);
});

// Regression tests for bugs found while writing these tests, fixed since.
Deno.test({
  name: "expand rejects invalid target dims (negative, fractional, NaN, empty name)",

  fn() {
    for (const dim of [-1, 2.5, NaN, ""]) {
      throwsShape(() => build((u) => u.expand(u.param("p", [1, 3]), [dim, 3])), { op: "expand" });
    }
  },
});

Deno.test({
  name: "specialize binds symbol names that are Object.prototype keys",

  fn() {
    for (const sym of ["toString", "constructor", "valueOf"]) {
      const g = build((u) => u.input("x", [sym, 3]));
      assert.deepEqual(specialize(g, { x: [2, 3] }).graph.outShape, [2, 3]);
    }
  },
});

Deno.test({
  name: "linear/conv2d: a failed call leaves no orphan parameters in the graph",

  fn() {
    const g = build((u) => {
      const x = u.input("x", [2, 5]);
      assert.throws(() => u.linear(x, { in: 3, out: 4, name: "l" }), ShapeError);
      return u.linear(x, { in: 5, out: 4, name: "l" }); // the name is free again
    });
    assert.deepEqual(g.params().map((p) => p.attrs.name), ["l.weight", "l.bias"]);
  },
});

Deno.test({
  name: "flatten/concat: negative axes below -rank are rejected (normalized once)",

  fn() {
    // Normalizing twice once made flatten(x, -4, -1) on rank 3 flatten(2, 2), and concat on
    // axis -3 of rank-2 tensors join along axis 1.
    throwsShape(() => build((u) => u.flatten(u.input("x", [2, 3, 4]), -4, -1)), { op: "flatten" });
    throwsShape(() => build((u) => u.flatten(u.input("x", [2, 3, 4]), -6, -4)), { op: "flatten" });
    throwsShape(() => build((u) => u.flatten(u.input("x", [2, 3, 4]), 1, -5)), { op: "flatten" });
    throwsShape(() => build((u) => u.concat(u.param("a", [1, 2]), u.param("b", [1, 2]), -3)), {
      op: "concat",
    });
  },
});

Deno.test({
  name: "prependToken: the runtime rule rejects tokens that are not [1, 1, width]",

  fn() {
    // The type rule (PrependCheck) rejects both; at run time `expand` broadcasts them.
    throwsShape(
      () => build((u) => u.prependToken(u.input("x", [2, 4, 8]), u.param("cls", [1, 1, 1]))),
      { op: "prependToken" },
    );
    throwsShape(
      () => build((u) => u.prependToken(u.input("x", [2, 4, 8]), u.param("cls", [2, 1, 8]))),
      { op: "prependToken" },
    );
  },
});
