// Runtime side of four holes the probes found (conv2d's integer options, expand to a lower rank,
// classToken on a non-[B, N, D] input, invalid input dims), as a JS caller meets them: the types
// are bypassed through `unknown`, and each bad call must throw one `ShapeError` whose one-line
// message names the op, the node and the offending values. The compile-time side is in
// `shape_holes_types_test.ts`.
import assert from "node:assert/strict";
import {
  formatShape,
  graph,
  GraphBuilder,
  type Shape,
  ShapeError,
  type Tensor,
  type TShape,
} from "../mod.ts";
import { loose, type LooseBuilder, looseGraph } from "./helpers.ts";
import { dimFault, sizeFault } from "../graph/shape.ts";
import { conv2dOp, conv2dOptionsFault } from "../ops/conv2d.ts";
import { expandOp } from "../ops/expand.ts";

const build = looseGraph;

interface Expected {
  op: string;
  node: string;
  shapes: Shape[];
  /** The message's text after `op (node ..., inputs ...): `, exactly. */
  reason: string;
}

/** Asserts `fn` throws one ShapeError with exactly the expected op, node, shapes and reason. */
function throwsExactly(fn: () => unknown, want: Expected): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ShapeError, `expected ShapeError, got ${e}`);
    assert.equal(e.name, "ShapeError");
    assert.equal(e.op, want.op, e.message);
    assert.equal(e.node, want.node, e.message);
    assert.deepEqual(e.shapes, want.shapes, e.message);
    const plural = want.shapes.length === 1 ? "input" : "inputs";
    const inputs = want.shapes.map(formatShape).join(", ");
    assert.equal(e.message, `${want.op} (node ${want.node}, ${plural} ${inputs}): ${want.reason}`);
    assert.ok(!e.message.includes("\n"), "one line");
    assert.ok(e.message.length < 200, `short: ${e.message.length} chars`);
    return true;
  });
}

const image = (u: LooseBuilder) => u.input("x", ["B", 3, 8, 8]);
const conv = (options: Record<string, unknown>) => () =>
  build((u) => u.conv2d(image(u), { out: 4, kernel: 2, name: "c", ...options }));

Deno.test("conv2d: stride, padding, kernel and out must be valid integers", () => {
  const cases: [Record<string, unknown>, string][] = [
    [{ stride: 0 }, "stride must be a positive integer, got 0"],
    [{ stride: -2 }, "stride must be a positive integer, got -2"],
    [{ stride: 1.5 }, "stride must be a positive integer, got 1.5"],
    [{ stride: 1e16 }, "stride must be at most 2^53 - 1, got 10000000000000000"],
    [{ stride: "2" }, 'stride must be a positive integer, got "2"'],
    [{ padding: -1 }, "padding must be >= 0 and an integer, got -1"],
    [{ padding: 0.5 }, "padding must be >= 0 and an integer, got 0.5"],
    [{ padding: NaN }, "padding must be >= 0 and an integer, got NaN"],
    [{ kernel: 0 }, "kernel must be a positive integer, got 0"],
    [{ kernel: -3 }, "kernel must be a positive integer, got -3"],
    [{ kernel: 2.5 }, "kernel must be a positive integer, got 2.5"],
    [{ kernel: undefined }, "kernel must be a positive integer, got undefined"],
    [{ out: 0 }, "out must be a positive integer, got 0"],
    [{ out: 1.5 }, "out must be a positive integer, got 1.5"],
    [{ out: 1e21 }, "out must be a positive integer, got 1e+21"],
    // The first fault wins, in the compile-time rule's order: out, kernel, stride, padding.
    [{ out: 0, kernel: 0, stride: 0, padding: -1 }, "out must be a positive integer, got 0"],
    [{ kernel: 0, stride: 0 }, "kernel must be a positive integer, got 0"],
  ];
  for (const [options, reason] of cases) {
    throwsExactly(conv(options), { op: "conv2d", node: "c", shapes: [["B", 3, 8, 8]], reason });
  }
  // Valid options still work, including the defaults.
  assert.deepEqual(conv({ stride: 2, padding: 1 })().outShape, ["B", 4, 5, 5]);
  assert.deepEqual(conv({ kernel: 1, out: 1 })().outShape, ["B", 1, 8, 8]);
  assert.equal(conv2dOptionsFault({ out: 8, kernel: 3 }), undefined);
});

Deno.test("conv2d: a failed call adds no parameters", () => {
  const b = new GraphBuilder();
  const x = b.input("x", ["B", 3, 8, 8]);
  assert.throws(() => loose(b).conv2d(x, { out: 4, kernel: 2, stride: 0, name: "c" }), ShapeError);
  // `c.weight` was never registered, so the name is still free.
  b.param("c.weight", [4, 3, 2, 2]);
});

Deno.test("conv2d: the IR rule rejects bad attrs and a zero-channel weight", () => {
  const shapes: Shape[] = [[1, 3, 8, 8], [4, 3, 2, 2], [4]];
  throwsExactly(() => conv2dOp.inferShape(shapes, { stride: 0, padding: 0 }, "conv2d_3"), {
    op: "conv2d",
    node: "conv2d_3",
    shapes,
    reason: "stride must be a positive integer, got 0",
  });
  throwsExactly(() => conv2dOp.inferShape(shapes, { stride: 1, padding: -1 }, "conv2d_3"), {
    op: "conv2d",
    node: "conv2d_3",
    shapes,
    reason: "padding must be >= 0 and an integer, got -1",
  });
  const empty: Shape[] = [[1, 3, 8, 8], [0, 3, 2, 2], [0]];
  throwsExactly(() => conv2dOp.inferShape(empty, { stride: 1, padding: 0 }, "conv2d_3"), {
    op: "conv2d",
    node: "conv2d_3",
    shapes: empty,
    reason: "out channels must be a positive integer, got 0",
  });
});

Deno.test("expand: the target rank must be at least the input's", () => {
  throwsExactly(() => build((u) => u.expand(u.input("x", [1, 2, 3]), [2, 3])), {
    op: "expand",
    node: "expand_1",
    shapes: [[1, 2, 3]],
    reason: "cannot expand to [2, 3]: target rank 2 is below the input's rank 3",
  });
  throwsExactly(() => expandOp.inferShape([["B", 1, 768]], { shape: [] }, "cls"), {
    op: "expand",
    node: "cls",
    shapes: [["B", 1, 768]],
    reason: "cannot expand to []: target rank 0 is below the input's rank 3",
  });
  // Same rank and higher rank still work.
  assert.deepEqual(build((u) => u.expand(u.input("x", [1, 3]), [2, 3])).outShape, [2, 3]);
  assert.deepEqual(build((u) => u.expand(u.input("x", [1, 3]), ["B", 2, 3])).outShape, [
    "B",
    2,
    3,
  ]);
});

Deno.test("classToken: the input must be [batch, tokens, width] with a concrete width", () => {
  throwsExactly(() => build((u) => u.classToken(image(u), { name: "cls" })), {
    op: "classToken",
    node: "cls",
    shapes: [["B", 3, 8, 8]],
    reason: "input must be [batch, tokens, width]",
  });
  throwsExactly(() => build((u) => u.classToken(u.input("x", [4, 8]), { name: "cls" })), {
    op: "classToken",
    node: "cls",
    shapes: [[4, 8]],
    reason: "input must be [batch, tokens, width]",
  });
  throwsExactly(() => build((u) => u.classToken(u.input("x", ["B", 4, "D"]), { name: "cls" })), {
    op: "classToken",
    node: "cls",
    shapes: [["B", 4, "D"]],
    reason: "width D must be a concrete size",
  });
  // A failed call leaves no half-made token behind: the name is still free.
  const b = new GraphBuilder();
  const x = b.input("x", ["B", 3, 8, 8]);
  assert.throws(() => loose(b).classToken(x, { name: "cls" }), ShapeError);
  b.param("cls", [1, 1, 8]);
  // The valid case is unchanged.
  assert.deepEqual(
    build((u) => u.classToken(u.input("x", ["B", 4, 8]), { name: "cls" })).outShape,
    ["B", 5, 8],
  );
});

Deno.test("input: dims must be sizes (safe integers >= 0) or non-empty names", () => {
  const cases: [unknown[], string][] = [
    [[-3, 4], "-3"],
    [[2.5, 4], "2.5"],
    [[1e16, 4], "10000000000000000"],
    [[Number.MAX_SAFE_INTEGER + 1], "9007199254740992"],
    [[NaN], "NaN"],
    [[Infinity], "Infinity"],
    [["", 4], '""'],
  ];
  for (const [shape, dim] of cases) {
    throwsExactly(() => build((u) => u.input("x", shape)), {
      op: "input",
      node: "x",
      shapes: [shape as Shape],
      reason: `dim ${dim} is not a size (a safe integer >= 0) or a name`,
    });
  }
  const edge = build((u) => u.input("x", [0, Number.MAX_SAFE_INTEGER, "N"]));
  assert.deepEqual(edge.outShape, [0, Number.MAX_SAFE_INTEGER, "N"]);
});

Deno.test("sizeFault and dimFault: the shared runtime rules", () => {
  assert.equal(sizeFault("stride", 1, 1), undefined);
  assert.equal(sizeFault("padding", 0, 0), undefined);
  assert.equal(sizeFault("stride", 0, 1), "stride must be a positive integer, got 0");
  assert.equal(sizeFault("padding", -0.5, 0), "padding must be >= 0 and an integer, got -0.5");
  assert.equal(
    sizeFault("kernel", 2 ** 53, 1),
    "kernel must be at most 2^53 - 1, got 9007199254740992",
  );
  assert.equal(dimFault("B"), undefined);
  assert.equal(dimFault(0), undefined);
  assert.equal(dimFault(-1), "dim -1 is not a size (a safe integer >= 0) or a name");
});

Deno.test("a tensor from another graph() is refused, naming the op (its id would name another node)", () => {
  let foreign: Tensor<TShape> | undefined;
  graph("first", (b) => {
    foreign = b.input("x", [2, 3]);
    return foreign;
  });
  assert.ok(foreign);
  const other = foreign;
  let thrown: unknown;
  try {
    graph("second", (b) => {
      b.input("y", [4]);
      return b.add(other, 1);
    });
  } catch (e) {
    thrown = e;
  }
  assert.ok(thrown instanceof ShapeError, String(thrown));
  assert.equal(thrown.op, "add");
  assert.match(thrown.message, /a tensor from another graph\(\) was passed in/);
  assert.ok(!thrown.message.includes("\n"));
  // As the graph's output too.
  assert.throws(() => graph("third", (b) => (b.input("z", [1]), other)), /another graph/);
});
