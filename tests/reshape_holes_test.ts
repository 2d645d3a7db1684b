// Runtime side of reshape's holes, as a JS caller meets them: the types are bypassed through
// `unknown`. One `-1` is inferred with torch semantics (symbols cancel), the stored target is
// resolved, counts are exact past 2^53, and each bad call throws one `ShapeError` whose
// one-line message names reshape, the node and both shapes, leaving the graph unchanged. The
// compile-time side is in `reshape_holes_types_test.ts`.
import assert from "node:assert/strict";
import { formatShape, interpret, type Shape, ShapeError, specialize } from "../mod.ts";
import { looseGraph } from "./helpers.ts";
import { reshapeOp, resolveReshape } from "../ops/reshape.ts";

const build = looseGraph;

/** Asserts `fn` throws one ShapeError from reshape with exactly this node, input and reason. */
function throwsExactly(fn: () => unknown, node: string, input: Shape, reason: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ShapeError, `expected ShapeError, got ${e}`);
    assert.equal(e.name, "ShapeError");
    assert.equal(e.op, "reshape", e.message);
    assert.equal(e.node, node, e.message);
    assert.deepEqual(e.shapes, [input], e.message);
    assert.equal(e.message, `reshape (node ${node}, input ${formatShape(input)}): ${reason}`);
    assert.ok(!e.message.includes("\n"), e.message);
    return true;
  });
}

/** Reshapes an input of shape `from` to `to` with the types bypassed (node `reshape_1`). */
const reshape = (from: Shape, to: unknown) => () => build((u) => u.reshape(u.input("x", from), to));

Deno.test("reshape -1: inferred from the element count (torch semantics)", () => {
  assert.deepEqual(resolveReshape([2, 197, 768], [2, -1, 12, 64]), [2, 197, 12, 64]);
  assert.deepEqual(resolveReshape([2, 197, 768], [-1]), [302592]);
  assert.deepEqual(resolveReshape([6], [-1, 1, 1]), [6, 1, 1]);
  assert.deepEqual(resolveReshape(["B", 197, 768], ["B", -1, 64]), ["B", 2364, 64]);
  assert.deepEqual(resolveReshape(["B", 197, 768], ["B", -1, 12, 64]), ["B", 197, 12, 64]);
  assert.deepEqual(resolveReshape(["B", 197, 768], [-1, 197, 768]), ["B", 197, 768]);
  assert.deepEqual(resolveReshape(["B", 197, 768], [-1, 768]), ["B*197", 768]);
  assert.deepEqual(resolveReshape(["T", "B", 6], [-1, 6]), ["B*T", 6]);
  assert.deepEqual(resolveReshape(["B*3", 4], ["B", -1]), ["B", 12]); // products factor
  assert.deepEqual(resolveReshape([0, 5], [-1, 5]), [0, 5]);
  assert.deepEqual(resolveReshape(["B", 0], [-1, 7]), [0, 7]);
  assert.deepEqual(resolveReshape([2, 3], [3, 2]), [3, 2]);
  assert.deepEqual(resolveReshape(["B", 3, 196], ["B", 196, 3]), ["B", 196, 3]);
  assert.deepEqual(resolveReshape([0, "B"], ["C", 0]), ["C", 0]);
  // The rule itself accepts -1, so it reads the same when called directly.
  assert.deepEqual(
    reshapeOp.inferShape([["B", 197, 768]], { shape: ["B", -1, 12, 64] }, "r"),
    ["B", 197, 12, 64],
  );
});

Deno.test("reshape -1: the node stores the resolved shape; specialize and run agree", () => {
  const g = build((u) => u.reshape(u.input("x", ["B", 2, 6]), [-1, 3]));
  const node = g.nodes[1];
  assert.equal(node.op, "reshape");
  assert.deepEqual(node.attrs, { shape: ["B*4", 3] });
  assert.deepEqual(node.shape, ["B*4", 3]);
  const { graph: concrete } = specialize(g, { x: [5, 2, 6] });
  assert.deepEqual(concrete.outShape, [20, 3]);
  assert.deepEqual(concrete.nodes[1].attrs, { shape: [20, 3] });
  const data = Float32Array.from({ length: 60 }, (_, i) => i);
  const [, out] = interpret(concrete, { x: { shape: [5, 2, 6], data } }, new Map());
  assert.deepEqual(out.shape, [20, 3]);
  assert.deepEqual([...out.data], [...data]);
});

Deno.test("reshape: bad targets throw one-line ShapeErrors naming both shapes", () => {
  throwsExactly(
    reshape([2, 3], [-1, -1]),
    "reshape_1",
    [2, 3],
    "cannot reshape [2, 3] to [-1, -1]: only one dim can be -1",
  );
  throwsExactly(
    reshape([2, 197, 768], [2, -1, 100]),
    "reshape_1",
    [2, 197, 768],
    "cannot infer -1 in [2, -1, 100] from [2, 197, 768]: 302592 elements are not a multiple of 200",
  );
  throwsExactly(
    reshape([5, 1], [2.5, 2]),
    "reshape_1",
    [5, 1],
    "cannot reshape [5, 1] to [2.5, 2]: target dim 2.5 is not a size or -1",
  );
  throwsExactly(
    reshape([2, 3], [-2, -3]),
    "reshape_1",
    [2, 3],
    "cannot reshape [2, 3] to [-2, -3]: target dim -2 is not a size or -1",
  );
  // An invalid dim is reported before a second -1, as in the types.
  throwsExactly(
    reshape([2, 3], [-1, -1, 0.5]),
    "reshape_1",
    [2, 3],
    "cannot reshape [2, 3] to [-1, -1, 0.5]: target dim 0.5 is not a size or -1",
  );
  for (const bad of [NaN, Infinity, 1e16, null]) {
    assert.throws(reshape([2, 3], [bad, 6]), ShapeError);
  }
  throwsExactly(
    reshape(["B", 6], ["C", -1]),
    "reshape_1",
    ["B", 6],
    "cannot infer -1 in [C, -1] from [B, 6]: B*6 elements are not a multiple of C",
  );
  throwsExactly(
    reshape([0, 5], [0, -1]),
    "reshape_1",
    [0, 5],
    "cannot infer -1 in [0, -1] from [0, 5]: the other dims hold 0 elements, so -1 is ambiguous",
  );
  throwsExactly(
    reshape([2, 3], [0, -1]),
    "reshape_1",
    [2, 3],
    "cannot infer -1 in [0, -1] from [2, 3]: 6 elements are not a multiple of 0",
  );
  throwsExactly(
    reshape([2, 3, 4], [5, 5]),
    "reshape_1",
    [2, 3, 4],
    "[2, 3, 4] has 24 elements but [5, 5] has 25",
  );
  throwsExactly(
    reshape(["B", 6], ["C", 6]),
    "reshape_1",
    ["B", 6],
    "[B, 6] has B*6 elements but [C, 6] has C*6",
  );
});

Deno.test("reshape: counts past 2^53 are exact at run time", () => {
  // 9007199254740994 vs 9007199254740993: equal as float64 products, different exactly.
  throwsExactly(
    reshape([2, 4503599627370497], [3, 3002399751580331]),
    "reshape_1",
    [2, 4503599627370497],
    "[2, 4503599627370497] has 9007199254740994 elements but [3, 3002399751580331] has 9007199254740993",
  );
  throwsExactly(
    reshape([4294967296, 4294967297], [4294967296, 4294967296]),
    "reshape_1",
    [4294967296, 4294967297],
    "[4294967296, 4294967297] has 18446744078004518912 elements but [4294967296, 4294967296] has 18446744073709551616",
  );
  throwsExactly(
    reshape([4294967296, 4294967296], [-1]),
    "reshape_1",
    [4294967296, 4294967296],
    "cannot infer -1 in [-1] from [4294967296, 4294967296]: the inferred dim 18446744073709551616 is above 2^53 - 1",
  );
  assert.deepEqual(
    resolveReshape([4294967296, 4294967297], [4294967297, -1]),
    [4294967297, 4294967296],
  );
});

Deno.test("reshape: a failed reshape leaves the graph unchanged", () => {
  const g = build((u) => {
    const x = u.input("x", [2, 3]);
    for (const bad of [[-1, -1], [-1, 4], [2.5, 2], [5, 5]]) {
      assert.throws(() => u.reshape(x, bad), ShapeError);
    }
    return u.reshape(x, [3, -1]);
  });
  assert.deepEqual(g.nodes.map((n) => [n.id, n.op, n.name]), [
    [0, "input", "x"],
    [1, "reshape", "reshape_1"],
  ]);
  assert.deepEqual(g.outShape, [3, 2]);
});
