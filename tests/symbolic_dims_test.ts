// Symbolic arithmetic survives the ops (issue 12 item 3): "B*3", "N+1", "H/16" come out of
// flatten, classToken, concat, conv2d and reshape in the type and at run time, spelled the same,
// so the checks downstream stay on. `deno check` proves the type-level half.
import assert from "node:assert/strict";
import { graph, specialize } from "../mod.ts";
import type { Equal, Expect, ShapeOf } from "./type_helpers.ts";

const tokens = graph("tokens", (g) => {
  const image = g.input("image", ["B", 3, "H", "W"]);
  const patches = g.conv2d(image, { out: 8, kernel: 16, stride: 16, name: "proj" });
  const flat = g.transpose(g.flatten(patches, 2, 3), 1, 2); // [B, (H/16)*(W/16), 8]
  return g.classToken(flat, { name: "cls" });
});
const stacked = graph("stacked", (g) => {
  const x = g.input("x", ["B", "N", 4]);
  const y = g.input("y", ["B", "M", 4]);
  const both = g.concat(x, y, 1); // [B, N+M, 4]
  return g.flatten(both, 0, 1); // [B*(N+M), 4] -> reads "B*(N+M)"
});
const padded = graph("padded", (g) => {
  const image = g.input("image", ["B", 3, "H", 32]);
  return g.conv2d(image, { out: 4, kernel: 3, stride: 2, padding: 1, name: "c" });
});

export type SymbolicShapes = [
  Expect<Equal<ShapeOf<typeof tokens>, ["B", "(H/16)*(W/16)+1", 8]>>,
  Expect<Equal<ShapeOf<typeof stacked>, ["B*(N+M)", 4]>>,
  Expect<Equal<ShapeOf<typeof padded>, ["B", 4, "(H+1)/2", 16]>>,
];

Deno.test("symbolic dims print the same in the type and at run time", () => {
  const types: Record<string, readonly unknown[]> = {
    tokens: ["B", "(H/16)*(W/16)+1", 8],
    stacked: ["B*(N+M)", 4],
    padded: ["B", 4, "(H+1)/2", 16],
  };
  for (const g of [tokens, stacked, padded]) {
    assert.deepEqual(g.outShape, types[g.name], g.name);
  }
});

Deno.test("specializing symbolic dims evaluates the expressions the ops wrote", () => {
  const t = specialize(tokens, { image: [2, 3, 224, 160] }).graph;
  assert.deepEqual(t.outShape, [2, 14 * 10 + 1, 8]);
  const s = specialize(stacked, { x: [2, 5, 4], y: [2, 7, 4] }).graph;
  assert.deepEqual(s.outShape, [24, 4]);
  const p = specialize(padded, { image: [1, 3, 33, 32] }).graph;
  assert.deepEqual(p.outShape, [1, 4, 17, 16]); // floor((33 + 2 - 3) / 2) + 1
});

Deno.test("checks stay on downstream of a symbolic dim: a wrong token count is a compile error", () => {
  assert.throws(() =>
    graph("pos", (g) => {
      const x = g.input("x", ["B", "N", 8]);
      const withCls = g.classToken(x, { name: "cls" }); // [B, N+1, 8]
      // @ts-expect-error addParam: dims N+1 and N do not match
      return g.addParam(withCls, { name: "pos", shape: [1, "N", 8] });
    })
  );
  // The right count passes, in the type and at run time.
  const ok = graph("pos", (g) => {
    const x = g.input("x", ["B", "N", 8]);
    const y = g.reshape(g.classToken(x, { name: "cls" }), ["B", "N+1", 2, 4]);
    return g.reshape(y, ["B", -1, 8]);
  });
  const shape: readonly ["B", "N+1", 8] = ok.outShape;
  assert.deepEqual(shape, ["B", "N+1", 8]);
});
