/**
 * The WebAssembly emitter for the CPU backends' elementwise and reduction kernels: the same loop
 * nest as the JavaScript renderer (`render/js/loop_nest.ts`: output axes as loops in row-major
 * order, the split axis over `[lo, hi)`, selects decided by outer axes as `if`/`else` around the
 * inner loops, reductions as loops, short ones unrolled), with the innermost output axis run four
 * lanes at a time in `f32x4` registers and a one-lane tail.
 *
 * Every value is a `v128`. In the four-lane loop lane `j` is output `iv + j`: a load contiguous
 * along the axis is one `v128.load`, one that does not move is a splat, any other is gathered
 * lane by lane; a reduction keeps one accumulator per lane, so each output sums in the JavaScript
 * renderer's order. Outside that loop, and in the tail, all four lanes hold the same value, so
 * values that do not depend on the innermost axis are computed once per outer iteration and
 * shared by both loops. Each index piece, load and loop-invariant value is hoisted into the
 * outermost enclosing block where its variables are bound; loads never move above a branch, and
 * inside a select whose condition differs between lanes they are gathered with a lane mask
 * (inactive lanes read the buffer's element 0), so every load stays inside its buffer wherever
 * the JavaScript kernel's do. Arithmetic is float32 throughout (the JavaScript kernels round only at the
 * store); exp and erf are the SIMD emitters of `vector_math.ts`, tanh is `tanhSpelling`'s
 * `1 - 2 / (e^{2x} + 1)` over that exp, log is Cephes' `logf`. A long max reduction keeps four
 * accumulators (a max does not depend on the order); a sum adds in the JavaScript order.
 * @module
 */

import {
  bounds,
  type Cond,
  condVars,
  exprKey,
  foldExpr,
  freeVars,
  type Lin,
  lin,
  linKey,
  linVars,
  loadsOf,
  type Ranges,
  type ReduceOp,
  simplify,
  substitute,
  type UnaryOp,
  v,
  variable,
  type VExpr,
} from "../../ir/expr.ts";
import type { Kernel } from "../../ir/program.ts";
import { UNROLL } from "../common.ts";
import { Code, I32, V128, type ValueType, type WasmFunction } from "./encoder.ts";
import { emitErf, emitExp, horner, VectorConstants } from "./vector_math.ts";

/**
 * A kernel rendered as a WebAssembly function over the one imported memory.
 *
 * @example
 * ```ts
 * import type { WasmKernel } from "./loop_nest.ts";
 * function parameterCount(k: WasmKernel): number {
 *   return 3 + k.args.length; // out, lo, hi, then one byte offset per buffer
 * }
 * ```
 */
export interface WasmKernel {
  /**
   * The function `(out, lo, hi, buf0, buf1, ...)`, all i32, no result: `out` and `buf<i>` are
   * byte offsets of element 0 of each buffer in `env.memory`; the split axis runs over
   * `[lo, hi)`.
   */
  readonly fn: WasmFunction;
  /** Buffer names in parameter order after `out`, `lo`, `hi` (sorted, as the JavaScript kernel's). */
  readonly args: readonly string[];
  /** The output axis whose loop runs over `[lo, hi)`. */
  readonly splitAxis: number;
  /** Whether the innermost output loop runs four lanes at a time. */
  readonly vectorized: boolean;
}

const LANES = 4;
/** Accumulators of a long max reduction. */
const MAX_WAYS = 4;
/** Indices past this (in elements) would overflow the i32 byte arithmetic: such kernels stay JS. */
const MAX_INDEX = 2 ** 29;
const MIN_NORMAL = 1.1754943508222875e-38;

/** Cephes `logf`: log(1 + f) = f - f²/2 + f³ P(f) for f in [√½ - 1, √2 - 1]. */
const LOG_SERIES = [
  3.3333331174e-1,
  -2.4999993993e-1,
  2.0000714765e-1,
  -1.6668057665e-1,
  1.4249322787e-1,
  -1.2420140846e-1,
  1.167699874e-1,
  -1.151461031e-1,
  7.0376836292e-2,
];
// ln 2 split so that e * LN2_HI is exact.
const LN2_HI = 0.693359375;
const LN2_LO = -2.12194440e-4;

/** A block of code: a loop body or branch, with the hoisted computations it runs first. */
interface Block {
  readonly parent?: Block;
  /** The loop variable this block binds (none for the root and branches). */
  readonly binds?: string;
  /** Variables bound here and above (buffer bases included). */
  readonly bound: ReadonlySet<string>;
  /** The i32 local of each bound variable. */
  readonly locals: ReadonlyMap<string, number>;
  /** Ranges of the variables in scope. */
  readonly ranges: Ranges;
  /** 4 inside the vector loop (lane j is `laneVar + j`), else 1: every lane holds one value. */
  readonly lanes: 1 | 4;
  /** The innermost output variable, in four-lane blocks. */
  readonly laneVar?: string;
  /** A branch: loads inside may be invalid outside, so they are not hoisted above it. */
  readonly barrier: boolean;
  /** Hoisted computations, run at the start of the block (each iteration, for a loop). */
  readonly pre: Code;
  /** The block's own statements. */
  readonly body: Code;
  /** Locals holding hoisted values (`V` + exprKey) and indices (`L` + linKey). */
  readonly names: Map<string, number>;
}

/** Where value code goes: the block it runs in, the fragment it is appended to, a lane mask. */
interface Context {
  readonly block: Block;
  readonly frag: Code;
  /** An i32x4 local: the lanes for which the enclosing lane-dependent selects hold. */
  readonly guard?: number;
}

/**
 * Renders a kernel as a WebAssembly SIMD function `(out, lo, hi, buf0, ...) -> i32` (see
 * {@linkcode WasmKernel}; it returns 1 when it stored a value that is not finite, so that the
 * caller can redo the range in float64), or undefined for what it does not support: index variables other
 * than the output axes (scalars), a reduction variable that shadows one in scope, a buffer the
 * kernel does not list in `reads`, indices beyond 2^29 elements. Place it in a module with
 * `encodeModule` (and `withMemory` for a memory that is not shared).
 *
 * @example
 * ```ts
 * import { renderWasmKernel } from "./loop_nest.ts";
 * import { lin, v, variable } from "../../ir/expr.ts";
 * const index = lin.add(lin.scale(variable("i0"), 8), variable("i1"));
 * const expr = v.exp(v.load("x", index));
 * const kernel = {
 *   index: 0, out: "y", shape: [3, 8], size: 24, ops: [], expr, reads: ["x"],
 *   ranges: new Map([["i0", [0, 2] as const], ["i1", [0, 7] as const]]),
 * };
 * renderWasmKernel(kernel, 0, "k0")?.vectorized; // true
 * ```
 */
export function renderWasmKernel(
  kernel: Kernel,
  splitAxis: number,
  name: string,
): WasmKernel | undefined {
  const rank = kernel.shape.length;
  const args = [...kernel.reads].sort();
  const outputs = kernel.shape.map((_, a) => `i${a}`);
  if (rank > 0 && !(Number.isInteger(splitAxis) && splitAxis >= 0 && splitAxis < rank)) {
    return undefined;
  }
  const ranges = new Map(kernel.ranges);
  kernel.shape.forEach((d, a) => {
    if (!ranges.has(outputs[a])) ranges.set(outputs[a], [0, d - 1]);
  });
  if (!supported(kernel.expr, outputs, args, ranges)) return undefined;

  const params: ValueType[] = [I32, I32, I32, ...args.map((): ValueType => I32)];
  const fn = new Code(params);
  const K = new VectorConstants(fn);
  const [OUT, LO, HI] = [0, 1, 2];
  const base = (buf: string): string => `@${args.indexOf(buf)}`;
  const innermost = kernel.shape[rank - 1] ?? 1;
  const vectorized = rank > 0 && innermost >= LANES && kernel.size > 0;

  // Scratch for the transcendental emitters: each use is straight-line code between popping its
  // operand and pushing its result, so one set serves the whole function.
  let scratch: number[] | undefined;
  const temps = (): number[] => (scratch ??= Array.from({ length: 9 }, () => fn.local(V128)));
  let indexTemp: number | undefined;
  const intTemp = (): number => (indexTemp ??= fn.local(I32));

  const keys = new WeakMap<VExpr, string>();
  const keyOf = (e: VExpr): string => {
    let k = keys.get(e);
    if (k === undefined) keys.set(e, k = exprKey(e));
    return k;
  };
  const vars = new WeakMap<VExpr, Set<string>>();
  const varsOf = (e: VExpr): Set<string> => {
    let s = vars.get(e);
    if (!s) vars.set(e, s = freeVars(e));
    return s;
  };
  // Subexpressions that occur more than once are computed once per block (GELU reads its
  // pre-activation twice).
  const counts = foldExpr(
    kernel.expr,
    new Map<string, number>(),
    (m, n) => m.set(keyOf(n), (m.get(keyOf(n)) ?? 0) + 1),
  );

  const root: Block = {
    bound: new Set(["@out", ...args.map(base)]),
    locals: new Map([["@out", OUT], ...args.map((a, i) => [base(a), 3 + i] as const)]),
    ranges,
    lanes: 1,
    barrier: false,
    pre: new Code([]),
    body: new Code([]),
    names: new Map(),
  };
  const child = (
    parent: Block,
    o: {
      binds?: string;
      local?: number;
      range?: readonly [number, number];
      lanes?: 1 | 4;
      barrier?: boolean;
    },
  ): Block => {
    const lanes = o.lanes ?? parent.lanes;
    return {
      parent,
      binds: o.binds,
      bound: o.binds ? new Set([...parent.bound, o.binds]) : parent.bound,
      locals: o.binds && o.local !== undefined
        ? new Map(parent.locals).set(o.binds, o.local)
        : parent.locals,
      ranges: o.binds && o.range ? new Map(parent.ranges).set(o.binds, o.range) : parent.ranges,
      lanes,
      laneVar: lanes === LANES ? (o.lanes === LANES ? o.binds : parent.laneVar) : undefined,
      barrier: o.barrier ?? false,
      pre: new Code([]),
      body: new Code([]),
      names: new Map(),
    };
  };
  // The outermost block from `b` up where all of `names` are bound; values stop at branches.
  const homeOf = (names: Iterable<string>, b: Block, crossBranches: boolean): Block => {
    let target = b;
    for (;;) {
      const p = target.parent;
      if (!p || (!crossBranches && target.barrier)) return target;
      for (const n of names) if (!p.bound.has(n)) return target;
      target = p;
    }
  };
  const lookup = (key: string, b: Block): number | undefined => {
    for (let x: Block | undefined = b; x; x = x.parent) {
      const local = x.names.get(key);
      if (local !== undefined) return local;
    }
    return undefined;
  };
  const localOf = (name: string, b: Block): number => {
    const local = b.locals.get(name);
    if (local === undefined) throw new Error(`wasm loop nest: unbound ${name}`);
    return local;
  };

  // ---- Index arithmetic (i32): each linear form in a local of its home block. ----

  const linValue = (x: Lin, b: Block, frag: Code): void => {
    if (x.terms.length === 0) {
      frag.i32Const(x.c);
      return;
    }
    const only = x.terms[0];
    if (x.terms.length === 1 && x.c === 0 && only.coeff === 1 && only.atom.k === "var") {
      frag.localGet(localOf(only.atom.name, b));
      return;
    }
    const key = `L${linKey(x)}`;
    const known = lookup(key, b);
    if (known !== undefined) {
      frag.localGet(known);
      return;
    }
    // Integer arithmetic cannot trap, so it may move above branches too.
    const home = homeOf(linVars(x), b, true);
    const part = new Code([]);
    computeLin(x, home, part);
    const local = fn.local(I32);
    home.pre.append(part.localSet(local));
    home.names.set(key, local);
    frag.localGet(local);
  };
  // In the block that binds one of its variables: the terms without it come from further out.
  const computeLin = (x: Lin, home: Block, part: Code): void => {
    const v = home.binds;
    const moves = (t: Lin["terms"][number]): boolean =>
      v !== undefined && linVars({ c: 0, terms: [t] }).has(v);
    const moving = x.terms.filter(moves);
    const fixed: Lin = { c: x.c, terms: x.terms.filter((t) => !moves(t)) };
    if (moving.length > 0 && (fixed.terms.length > 0 || fixed.c !== 0)) {
      linValue(fixed, home, part);
      for (const t of moving) {
        termValue(t, home, part);
        part.op(Code.I32_ADD);
      }
      return;
    }
    x.terms.forEach((t, i) => {
      termValue(t, home, part);
      if (i > 0) part.op(Code.I32_ADD);
    });
    if (x.c !== 0) part.i32Const(x.c).op(Code.I32_ADD);
  };
  const termValue = (t: Lin["terms"][number], b: Block, part: Code): void => {
    const a = t.atom;
    if (a.k === "var") part.localGet(localOf(a.name, b));
    else {
      linValue(a.x, b, part);
      const nonNegative = bounds(a.x, b.ranges)[0] >= 0;
      if (nonNegative) part.i32Const(a.d).op(a.k === "div" ? Code.I32_DIV_U : Code.I32_REM_U);
      else if (a.k === "div") {
        // floor(x / d) = trunc((x - (x < 0 ? d - 1 : 0)) / d).
        const s = intTemp();
        part.localTee(s).localGet(s).i32Const(31).op(Code.I32_SHR_S).i32Const(a.d - 1)
          .op(Code.I32_AND).op(Code.I32_SUB).i32Const(a.d).op(Code.I32_DIV_S);
      } else {
        // x mod d = r + (r < 0 ? d : 0), r = rem(x, d).
        const s = intTemp();
        part.i32Const(a.d).op(Code.I32_REM_S).localTee(s).localGet(s).i32Const(31)
          .op(Code.I32_SHR_S).i32Const(a.d).op(Code.I32_AND).op(Code.I32_ADD);
      }
    }
    if (t.coeff !== 1) part.i32Const(t.coeff).op(Code.I32_MUL);
  };
  // A byte address `base + 4 * index`: pushes all but the constant, returned as the offset. The
  // offset is added without wrapping, so it is split off only when the rest cannot be negative.
  const address = (buf: string, index: Lin, b: Block, frag: Code, whole = false): number => {
    const terms: Lin = { c: 0, terms: index.terms };
    const scaled = lin.add(lin.scale(terms, 4), variable(buf));
    const offset = 4 * index.c;
    if (offset >= 0 && !whole && bounds(terms, b.ranges)[0] >= 0) {
      linValue(scaled, b, frag);
      return offset;
    }
    linValue(lin.offset(scaled, offset), b, frag);
    return 0;
  };
  // Lane j's copy of an index in a four-lane block: the lane variable advanced by j.
  const laneLin = (x: Lin, b: Block, j: number): Lin => {
    const lv = b.laneVar as string;
    if (j === 0) return x;
    const [lo, hi] = b.ranges.get(lv) ?? [0, 0];
    // The first lane's range, so that every lane stays in the axis.
    const r = new Map(b.ranges).set(lv, [lo, hi - (LANES - 1)]);
    const moved = substitute(v.load("", x), lv, lin.offset(variable(lv), j), r);
    return (moved as VExpr & { k: "load" }).index;
  };
  const condition = (c: Cond, b: Block, frag: Code): void => {
    switch (c.k) {
      case "bool":
        frag.i32Const(c.v ? 1 : 0);
        return;
      case "lt":
      case "ge":
        linValue(c.x, b, frag);
        frag.i32Const(c.c).op(c.k === "lt" ? Code.I32_LT_S : Code.I32_GE_S);
        return;
      case "and":
        condition(c.a, b, frag);
        condition(c.b, b, frag);
        frag.op(Code.I32_AND);
        return;
    }
  };
  // An i32x4 mask of the lanes where `c` holds.
  const laneMask = (c: Cond, b: Block, frag: Code): void => {
    const lv = b.laneVar as string;
    switch (c.k) {
      case "bool":
        K.i(frag, c.v ? -1 : 0);
        return;
      case "and":
        laneMask(c.a, b, frag);
        laneMask(c.b, b, frag);
        frag.v128And();
        return;
      case "lt":
      case "ge": {
        const op = c.k === "lt" ? Code.I32_LT_S : Code.I32_GE_S;
        const lanes = linVars(c.x).has(lv) ? LANES : 1;
        for (let j = 0; j < lanes; j++) {
          frag.i32Const(0);
          linValue(laneLin(c.x, b, j), b, frag);
          frag.i32Const(c.c).op(op).op(Code.I32_SUB);
          if (j === 0) frag.i32x4Splat();
          else frag.i32x4ReplaceLane(j);
        }
        return;
      }
    }
  };

  // ---- Values (v128). ----

  const value = (e: VExpr, ctx: Context): void => {
    if (e.k === "const") {
      K.f(ctx.frag, e.v);
      return;
    }
    const key = `V${keyOf(e)}`;
    const known = lookup(key, ctx.block);
    if (known !== undefined) {
      ctx.frag.localGet(known);
      return;
    }
    if (ctx.guard === undefined) {
      const home = homeOf(varsOf(e), ctx.block, false);
      const shared = e.k === "load" || e.k === "reduce" || home !== ctx.block ||
        (counts.get(keyOf(e)) ?? 0) > 1;
      if (shared) {
        const part = new Code([]);
        let local: number;
        if (e.k === "reduce") local = reduction(e, { block: home, frag: part });
        else {
          node(e, { block: home, frag: part });
          local = fn.local(V128);
          part.localSet(local);
        }
        home.pre.append(part);
        home.names.set(key, local);
        ctx.frag.localGet(local);
        return;
      }
    }
    // Under a lane mask nothing moves: the mask is computed where the select is.
    if (e.k === "reduce") ctx.frag.localGet(reduction(e, ctx));
    else node(e, ctx);
  };
  const node = (e: VExpr, ctx: Context): void => {
    const { frag } = ctx;
    switch (e.k) {
      case "const":
        value(e, ctx);
        return;
      case "reduce":
        frag.localGet(reduction(e, ctx));
        return;
      case "load":
        load(e, ctx);
        return;
      case "unary":
        value(e.a, ctx);
        unary(e.op, frag);
        return;
      case "binary":
        value(e.a, ctx);
        value(e.b, ctx);
        switch (e.op) {
          case "add":
            frag.f32x4Add();
            return;
          case "sub":
            frag.f32x4Sub();
            return;
          case "mul":
            frag.f32x4Mul();
            return;
          case "div":
            frag.f32x4Div();
            return;
          case "max":
            frag.f32x4Max();
            return;
          case "min":
            frag.f32x4Min();
            return;
          case "lt":
            frag.f32x4Lt();
            break;
          case "le":
            frag.f32x4Le();
            break;
          case "eq":
            frag.f32x4Eq();
            break;
        }
        // A comparison's mask as 1.0 or 0.0.
        K.f(frag, 1).v128And();
        return;
      case "where":
        // Both arms are loads at static indices, valid whatever `c` is.
        value(e.a, ctx);
        value(e.b, ctx);
        value(e.c, ctx);
        K.f(frag, 0).f32x4Ne().v128Bitselect();
        return;
      case "select":
        select(e, ctx);
        return;
    }
  };
  const select = (e: VExpr & { k: "select" }, ctx: Context): void => {
    const { block, frag } = ctx;
    if (block.lanes === 1 || !condVars(e.cond).has(block.laneVar as string)) {
      // One condition for all lanes: a branch, each arm its own block.
      condition(e.cond, block, frag);
      const arm = (x: VExpr) => (c: Code): void => {
        const b = child(block, { barrier: true });
        const part = new Code([]);
        value(x, { block: b, frag: part, guard: ctx.guard });
        c.append(b.pre).append(part);
      };
      frag.ifElse(arm(e.a), arm(e.b), V128);
      return;
    }
    // Lanes disagree: both arms, each under its mask, blended.
    const mask = fn.local(V128);
    laneMask(e.cond, block, frag);
    frag.localSet(mask);
    const guardA = ctx.guard === undefined ? mask : fn.local(V128);
    if (ctx.guard !== undefined) frag.localGet(ctx.guard).localGet(mask).v128And().localSet(guardA);
    const guardB = fn.local(V128);
    if (ctx.guard !== undefined) frag.localGet(ctx.guard).localGet(mask).v128AndNot();
    else frag.localGet(mask).v128Not();
    frag.localSet(guardB);
    value(e.a, { ...ctx, guard: guardA });
    value(e.b, { ...ctx, guard: guardB });
    frag.localGet(mask).v128Bitselect();
  };
  const load = (e: VExpr & { k: "load" }, ctx: Context): void => {
    const { block, frag, guard } = ctx;
    const buf = base(e.buf);
    const lv = block.laneVar;
    const moving = block.lanes === LANES && linVars(e.index).has(lv as string);
    if (!moving) {
      if (guard === undefined) frag.v128Load32Splat(address(buf, e.index, block, frag));
      else {
        // Read element 0 instead when no lane is active (the index may then be invalid).
        address(buf, e.index, block, frag, true);
        frag.localGet(localOf(buf, block)).localGet(guard).v128AnyTrue().op(Code.SELECT)
          .v128Load32Splat(0);
      }
      return;
    }
    const step = e.index.terms.filter((t) => linVars({ c: 0, terms: [t] }).has(lv as string));
    const contiguous = step.length === 1 && step[0].coeff === 1 && step[0].atom.k === "var";
    if (contiguous && guard === undefined) {
      frag.v128Load(address(buf, e.index, block, frag));
      return;
    }
    for (let j = 0; j < LANES; j++) {
      const index = laneLin(e.index, block, j);
      if (guard === undefined) frag.f32Load(address(buf, index, block, frag));
      else {
        address(buf, index, block, frag, true);
        frag.localGet(localOf(buf, block)).localGet(guard).i32x4ExtractLane(j).op(Code.SELECT)
          .f32Load(0);
      }
      if (j === 0) frag.f32x4Splat();
      else frag.f32x4ReplaceLane(j);
    }
  };
  // Emits the reduction into ctx.frag and returns the local holding its value.
  const reduction = (e: VExpr & { k: "reduce" }, ctx: Context): number => {
    const { block, frag } = ctx;
    const acc = fn.local(V128);
    const step = (c: Code): Code => (e.op === "sum" ? c.f32x4Add() : c.f32x4Max());
    if (e.extent <= UNROLL) {
      // As the JavaScript renderer: the terms with the variable pinned, combined left to right.
      if (e.extent <= 0) K.f(frag, start(e.op));
      for (let k = 0; k < e.extent; k++) {
        const pinned = new Map(block.ranges).set(e.v, [k, k] as const);
        value(simplify(e.body, pinned), ctx);
        if (k > 0) step(frag);
      }
      frag.localSet(acc);
      return acc;
    }
    // A max does not depend on the order (NaN wins, +0 is above -0), so long ones keep several
    // accumulators, out of one another's latency (f32x4.max is a chain of instructions on x64);
    // a sum adds in the JavaScript renderer's order.
    const ways = e.op === "max" && e.extent >= 2 * MAX_WAYS ? MAX_WAYS : 1;
    const main = e.extent - (e.extent % ways);
    const counter = fn.local(I32);
    const accs = [acc, ...Array.from({ length: ways - 1 }, () => fn.local(V128))];
    for (const a of accs) K.f(frag, start(e.op)).localSet(a);
    frag.i32Const(0).localSet(counter);
    // `for (v = from; v < to; v += ways)`, lane u of the body accumulating into accs[u].
    const emitLoop = (from: number, to: number, width: number): void => {
      const loop = child(block, { binds: e.v, local: counter, range: [from, to - width] });
      const part = new Code([]);
      for (let u = 0; u < width; u++) {
        const body = u === 0
          ? e.body
          : substitute(e.body, e.v, lin.offset(variable(e.v), u), loop.ranges);
        part.localGet(accs[u]);
        value(body, { block: loop, frag: part, guard: ctx.guard });
        step(part).localSet(accs[u]);
      }
      frag.loop((l) => {
        l.append(loop.pre).append(part);
        l.localGet(counter).i32Const(width).op(Code.I32_ADD).localTee(counter).i32Const(to)
          .op(Code.I32_LT_S).brIf(0);
      });
    };
    emitLoop(0, main, ways);
    if (main < e.extent) emitLoop(main, e.extent, 1);
    if (ways > 1) {
      frag.localGet(accs[0]).localGet(accs[1]).f32x4Max();
      frag.localGet(accs[2]).localGet(accs[3]).f32x4Max().f32x4Max().localSet(acc);
    }
    return acc;
  };
  const unary = (op: UnaryOp, frag: Code): void => {
    const [x, out, ...s] = temps();
    switch (op) {
      case "neg":
        frag.f32x4Neg();
        return;
      case "abs":
        frag.f32x4Abs();
        return;
      case "sqrt":
        frag.f32x4Sqrt();
        return;
      case "rsqrt":
        frag.f32x4Sqrt().localSet(x);
        K.f(frag, 1).localGet(x).f32x4Div();
        return;
      case "recip":
        frag.localSet(x);
        K.f(frag, 1).localGet(x).f32x4Div();
        return;
      case "exp":
        frag.localSet(x);
        emitExp(frag, K, x, x, s);
        frag.localGet(x);
        return;
      case "erf":
        frag.localSet(x);
        emitErf(frag, K, x, out, s);
        frag.localGet(out);
        return;
      case "tanh":
        // tanhSpelling: 1 - 2 / (e^{2x} + 1), finite for every input.
        K.f(frag, 2).f32x4Mul().localSet(x);
        emitExp(frag, K, x, x, s);
        K.f(frag, 1);
        K.f(frag, 2).localGet(x);
        K.f(frag, 1).f32x4Add().f32x4Div().f32x4Sub();
        return;
      case "log":
        frag.localSet(x);
        emitLog(frag, K, x, out, s);
        frag.localGet(out);
        return;
    }
  };

  // ---- The loop nest. ----

  const strides = kernel.shape.map((_, a) => kernel.shape.slice(a + 1).reduce((p, d) => p * d, 1));
  const outAddress: Lin = kernel.shape.reduce(
    (acc, _, a) => lin.add(acc, lin.scale(variable(outputs[a]), 4 * strides[a])),
    variable("@out"),
  );
  // Every stored value also goes into `bad` as v - v: zero bits unless it is not finite. The
  // function returns whether any was, and the caller then runs the float64 JavaScript kernel
  // over the same range (float32 intermediates overflow where float64 ones need not).
  const bad = fn.local(V128);
  const stored = fn.local(V128);
  const store = (e: VExpr, block: Block): void => {
    const c = block.body;
    linValue(outAddress, block, c);
    value(e, { block, frag: c });
    c.localTee(stored);
    if (block.lanes === LANES) c.v128Store(0);
    else {
      c.f32x4ExtractLane(0).f32Store(0);
      c.localGet(stored).f32x4ExtractLane(0).f32x4Splat().localSet(stored);
    }
    c.localGet(stored).localGet(stored).f32x4Sub().localGet(bad).v128Or().localSet(bad);
  };
  const axisLocals = kernel.shape.map(() => fn.local(I32));
  // `for (v = start; v + step <= end; v += step)`; `check`: the range may be empty.
  const loopOver = (
    into: Code,
    counter: number,
    body: Block,
    stepSize: number,
    end: (c: Code) => Code,
    check: boolean,
  ): void => {
    const more = (c: Code): Code =>
      end(c.localGet(counter).i32Const(stepSize - 1).op(Code.I32_ADD)).op(Code.I32_LT_S);
    const run = (c: Code): void => {
      c.loop((l) => {
        l.append(body.pre).append(body.body);
        l.localGet(counter).i32Const(stepSize).op(Code.I32_ADD).localSet(counter);
        more(l).brIf(0);
      });
    };
    if (!check) run(into);
    else {
      into.block((b) => {
        more(b).op(Code.I32_EQZ).brIf(0);
        run(b);
      });
    }
  };
  const emitAxes = (e: VExpr, axis: number, block: Block): void => {
    if (e.k === "select") {
      const needs = condVars(e.cond);
      if ([...needs].every((n) => block.bound.has(n) && n !== block.laneVar)) {
        condition(e.cond, block, block.body);
        const then = child(block, { barrier: true });
        const otherwise = child(block, { barrier: true });
        emitAxes(e.a, axis, then);
        emitAxes(e.b, axis, otherwise);
        block.body.ifElse(
          (c) => c.append(then.pre).append(then.body),
          (c) => c.append(otherwise.pre).append(otherwise.body),
        );
        return;
      }
    }
    if (axis === rank) {
      store(e, block);
      return;
    }
    const name = outputs[axis];
    const counter = axisLocals[axis];
    const extent = kernel.shape[axis];
    const split = axis === splitAxis;
    const end = (c: Code): Code => (split ? c.localGet(HI) : c.i32Const(extent));
    if (split) block.body.localGet(LO).localSet(counter);
    else block.body.i32Const(0).localSet(counter);
    if (axis === rank - 1 && vectorized) {
      const wide = child(block, { binds: name, local: counter, lanes: LANES });
      emitAxes(e, axis + 1, wide);
      const tail = child(block, { binds: name, local: counter, lanes: 1 });
      emitAxes(e, axis + 1, tail);
      loopOver(block.body, counter, wide, LANES, end, split);
      if (split || extent % LANES !== 0) loopOver(block.body, counter, tail, 1, end, split);
      return;
    }
    const loop = child(block, { binds: name, local: counter, lanes: 1 });
    emitAxes(e, axis + 1, loop);
    loopOver(block.body, counter, loop, 1, end, split);
  };

  if (kernel.size > 0) emitAxes(kernel.expr, 0, root);
  for (const b of K.prologue()) fn.bytes.push(b);
  fn.append(root.pre).append(root.body);
  fn.localGet(bad).v128AnyTrue();
  return { fn: { name, params, results: [I32], code: fn }, args, splitAxis, vectorized };
}

function start(op: ReduceOp): number {
  return op === "sum" ? 0 : -Infinity;
}

/**
 * Whether the renderer handles `e`: only output variables free, reductions that shadow nothing,
 * loads of listed buffers at indices within i32 byte arithmetic.
 */
function supported(
  e: VExpr,
  outputs: readonly string[],
  args: readonly string[],
  ranges: Ranges,
): boolean {
  if (![...freeVars(e)].every((n) => outputs.includes(n))) return false;
  if (![...loadsOf(e)].every((b) => args.includes(b))) return false;
  const ok = (x: VExpr, scope: ReadonlySet<string>, r: Ranges): boolean => {
    if (x.k === "load") {
      const [lo, hi] = bounds(x.index, r);
      return Math.abs(lo) < MAX_INDEX && Math.abs(hi) < MAX_INDEX;
    }
    if (x.k === "select" && condVars(x.cond).size > 0) {
      // Condition indices go through the same i32 arithmetic.
      const lins: Lin[] = [];
      const collect = (c: Cond): void => {
        if (c.k === "lt" || c.k === "ge") lins.push(c.x);
        else if (c.k === "and") [c.a, c.b].forEach(collect);
      };
      collect(x.cond);
      if (!lins.every((l) => bounds(l, r).every((b) => Math.abs(b) < MAX_INDEX))) return false;
    }
    if (x.k === "reduce") {
      if (scope.has(x.v) || x.v.startsWith("@") || !Number.isSafeInteger(x.extent)) return false;
      const inner = new Map(r).set(x.v, [0, Math.max(0, x.extent - 1)] as const);
      return ok(x.body, new Set(scope).add(x.v), inner);
    }
    const kids = x.k === "unary"
      ? [x.a]
      : x.k === "binary" || x.k === "select"
      ? [x.a, x.b]
      : x.k === "where"
      ? [x.c, x.a, x.b]
      : [];
    return kids.every((k) => ok(k, scope, r));
  };
  return ok(e, new Set(outputs), ranges);
}

/**
 * `log(x)` of the vector in local `x` into local `out` (Cephes `logf`: x = 2^e m with m in
 * [√½, √2), log m = f - f²/2 + f³ P(f) for f = m - 1, plus e ln 2 in two parts); subnormals
 * are scaled by 2^23 first. Within about an ulp; log 0 = -Infinity, log of a negative is NaN,
 * +Infinity and NaN stay.
 */
function emitLog(
  c: Code,
  K: VectorConstants,
  x: number,
  out: number,
  [m, e, f, z, s]: readonly number[],
): void {
  c.localGet(x);
  K.f(c, MIN_NORMAL).f32x4Lt().localSet(s);
  c.localGet(x);
  K.f(c, 8388608).f32x4Mul().localGet(x).localGet(s).v128Bitselect().localSet(m);
  // The exponent, less 23 where the input was scaled.
  c.localGet(m).i32Const(23).i32x4ShrU();
  K.i(c, 127).i32x4Sub().localGet(s);
  K.i(c, 23).v128And().i32x4Sub().localSet(e);
  // The mantissa as a float in [1, 2), halved above √2 (and the exponent one more).
  c.localGet(m);
  K.i(c, 0x7fffff).v128And();
  K.i(c, 0x3f800000).v128Or().localSet(m);
  c.localGet(m);
  K.f(c, Math.SQRT2).f32x4Gt().localSet(z);
  c.localGet(m);
  K.f(c, 0.5).f32x4Mul().localGet(m).localGet(z).v128Bitselect().localSet(m);
  c.localGet(e).localGet(z).i32x4Sub().f32x4ConvertI32x4S().localSet(e);
  c.localGet(m);
  K.f(c, 1).f32x4Sub().localSet(f);
  c.localGet(f).localGet(f).f32x4Mul().localSet(z);
  horner(c, K, f, LOG_SERIES);
  c.localGet(f).f32x4Mul().localGet(z).f32x4Mul();
  c.localGet(e);
  K.f(c, LN2_LO).f32x4Mul().f32x4Add();
  c.localGet(z);
  K.f(c, -0.5).f32x4Mul().f32x4Add();
  c.localGet(f).f32x4Add();
  c.localGet(e);
  K.f(c, LN2_HI).f32x4Mul().f32x4Add().localSet(out);
  // +Infinity and NaN return themselves, negatives (and -Infinity) NaN, zeros -Infinity.
  c.localGet(out).localGet(x).localGet(x);
  K.f(c, Infinity).f32x4Lt().v128Bitselect().localSet(out);
  K.f(c, NaN).localGet(out).localGet(x);
  K.f(c, 0).f32x4Lt().v128Bitselect().localSet(out);
  K.f(c, -Infinity).localGet(out).localGet(x);
  K.f(c, 0).f32x4Eq().v128Bitselect().localSet(out);
}
