/**
 * A WebAssembly SIMD check that a block of floats holds no NaN or ±Infinity: the `native`
 * backend's products look for float32 overflow after every `sgemm` (such values are summed again
 * in float64), and in JavaScript that pass cost a seventh of the product at ViT sizes.
 * @module
 */

import { Code, I32, V128, type WasmFunction } from "./encoder.ts";

/**
 * `(ptr, rows, width, ld) -> i32`: 1 when some float of `rows` rows of `width` floats, `ld`
 * floats apart, from byte `ptr` on, is not finite (`x - x` is then NaN), else 0. `rows` and
 * `width` must be at least 1.
 *
 * @example
 * ```ts
 * import { finiteCheckFunction } from "./finite_check.ts";
 * finiteCheckFunction("nonfinite").params.length; // 4
 * ```
 */
export function finiteCheckFunction(name: string): WasmFunction {
  const c = new Code([I32, I32, I32, I32]);
  const [PTR, ROWS, WIDTH, LD] = [0, 1, 2, 3];
  const p = c.local(I32);
  const vectorEnd = c.local(I32);
  const end = c.local(I32);
  const bad = c.local(V128);
  const badScalar = c.local(I32);
  const F32X4_SUB = 0xe5;
  c.loop((rows) => {
    rows.localGet(PTR).localSet(p);
    rows.localGet(PTR).localGet(WIDTH).i32Const(-4).op(Code.I32_AND).i32Const(4).op(Code.I32_MUL)
      .op(Code.I32_ADD).localSet(vectorEnd);
    rows.localGet(PTR).localGet(WIDTH).i32Const(4).op(Code.I32_MUL).op(Code.I32_ADD).localSet(end);
    // Four lanes at a time: bad |= v - v.
    rows.block((skip) => {
      skip.localGet(p).localGet(vectorEnd).op(Code.I32_GE_S).brIf(0);
      skip.loop((l) => {
        l.localGet(p).v128Load(0).localGet(p).v128Load(0).simd(F32X4_SUB);
        l.localGet(bad).v128Or().localSet(bad);
        l.localGet(p).i32Const(16).op(Code.I32_ADD).localSet(p);
        l.localGet(p).localGet(vectorEnd).op(Code.I32_LT_S).brIf(0);
      });
    });
    // The rest one by one: x - x == x - x fails only for NaN.
    rows.block((skip) => {
      skip.localGet(p).localGet(end).op(Code.I32_GE_S).brIf(0);
      skip.loop((l) => {
        l.localGet(p).f32Load(0).localGet(p).f32Load(0).op(Code.F32_SUB);
        l.localGet(p).f32Load(0).localGet(p).f32Load(0).op(Code.F32_SUB);
        l.op(Code.F32_EQ).op(Code.I32_EQZ).localGet(badScalar).op(Code.I32_OR).localSet(badScalar);
        l.localGet(p).i32Const(4).op(Code.I32_ADD).localSet(p);
        l.localGet(p).localGet(end).op(Code.I32_LT_S).brIf(0);
      });
    });
    rows.localGet(PTR).localGet(LD).i32Const(4).op(Code.I32_MUL).op(Code.I32_ADD).localSet(PTR);
    rows.localGet(ROWS).i32Const(1).op(Code.I32_SUB).localTee(ROWS).brIf(0);
  });
  c.localGet(bad).v128AnyTrue().localGet(badScalar).op(Code.I32_OR);
  return { name, params: [I32, I32, I32, I32], results: [I32], code: c };
}
