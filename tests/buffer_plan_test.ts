/**
 * The buffer plan (`planBuffers`): intermediates share memory slots only when their lifetimes
 * are apart, and large buffers do not lose their slots to small ones.
 */
import assert from "node:assert/strict";
import fc from "npm:fast-check@4.3.0";
import type { Kernel } from "../codegen/ir/program.ts";
import { planBuffers } from "../codegen/passes/lower.ts";

/** A kernel writing `out` (of `size` elements) from `reads`; its value does not matter here. */
function kernel(index: number, out: string, size: number, reads: string[]): Kernel {
  return {
    index,
    out,
    shape: [size],
    size,
    ops: [out],
    expr: { k: "const", v: 0 },
    ranges: new Map(),
    reads,
  };
}

function slotBytes(kernels: readonly Kernel[], slots: ReadonlyMap<string, number>): number {
  const sizes: number[] = [];
  for (const k of kernels) {
    const slot = slots.get(k.out);
    if (slot !== undefined) sizes[slot] = Math.max(sizes[slot] ?? 0, k.size);
  }
  return sizes.reduce((a, b) => a + (b ?? 0), 0);
}

Deno.test("buffer plan: a small buffer does not take the slot a later large one needs", () => {
  // A small buffer `s` made just after the large `h1` is freed, and read until the end, while
  // `h2` and `h3` (large) follow. Reusing the most recently freed slot whatever its size puts
  // `s` in h1's slot and needs three large slots (300 elements); two large and one small do.
  const ks = [
    kernel(0, "h1", 100, ["x"]),
    kernel(1, "a", 10, ["h1"]),
    kernel(2, "s", 10, ["a"]),
    kernel(3, "h2", 100, ["s"]),
    kernel(4, "h3", 100, ["h2"]),
    kernel(5, "y", 10, ["h3", "s"]),
  ];
  const slots = planBuffers(ks, ["y"], (b) => ks.find((k) => k.out === b)?.size ?? 0);
  assert.equal(slots.has("y"), false, "results get no slot");
  assert.equal(slots.get("h1"), slots.get("h2"));
  assert.notEqual(slots.get("h2"), slots.get("h3"), "h3 is written while h2 is read");
  assert.notEqual(slots.get("s"), slots.get("h1"));
  assert.equal(slotBytes(ks, slots), 210);
});

Deno.test("buffer plan: buffers sharing a slot never live at once (fast-check)", () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.record({
          size: fc.integer({ min: 1, max: 64 }),
          reads: fc.array(fc.nat(), { maxLength: 3 }),
        }),
        { minLength: 1, maxLength: 24 },
      ),
      fc.array(fc.nat(), { maxLength: 3 }),
      (specs, resultPicks) => {
        // Kernel i reads earlier kernels' outputs only (the program is in execution order).
        const ks = specs.map((s, i) =>
          kernel(
            i,
            `b${i}`,
            s.size,
            i === 0 ? ["x"] : [...new Set(s.reads.map((r) => `b${r % i}`))],
          )
        );
        const results = [
          ...new Set([`b${ks.length - 1}`, ...resultPicks.map((r) => `b${r % ks.length}`)]),
        ];
        const slots = planBuffers(ks, results, (b) => ks.find((k) => k.out === b)?.size ?? 0);
        const last = new Map<string, number>();
        for (const k of ks) for (const r of k.reads) last.set(r, k.index);
        const life = (
          k: Kernel,
        ): [number, number] => [k.index, Math.max(k.index, last.get(k.out) ?? k.index)];
        for (const k of ks) {
          assert.equal(slots.has(k.out), !results.includes(k.out));
          for (const other of ks) {
            if (
              other.index >= k.index || !slots.has(k.out) ||
              slots.get(k.out) !== slots.get(other.out)
            ) {
              continue;
            }
            const [a0, a1] = life(other);
            const [b0, b1] = life(k);
            assert.ok(
              a1 < b0 || b1 < a0,
              `${other.out} [${a0}, ${a1}] and ${k.out} [${b0}, ${b1}] share a slot`,
            );
          }
        }
        // Never more memory than one slot per intermediate.
        const own = ks.filter((k) => slots.has(k.out)).reduce((a, k) => a + k.size, 0);
        assert.ok(slotBytes(ks, slots) <= own);
      },
    ),
  );
});
