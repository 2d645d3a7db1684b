/**
 * The JavaScript emitter behind the `js` backend: renders a lowered kernel as a specialized
 * loop nest. Output axes become nested loops in row-major order (so the output is written with
 * one running offset), selects whose condition depends only on outer loops become `if`
 * branches around the inner loops, and every piece of index arithmetic is hoisted to the
 * outermost scope where its variables are bound (loop-invariant code motion on `Lin` atoms).
 * @module
 */

import {
  type Atom,
  type Cond,
  exprKey,
  type Lin,
  lin,
  printLin,
  simplify,
  substitute,
  variable,
  type VExpr,
} from "../../ir/expr.ts";
import type { Kernel } from "../../ir/program.ts";
import {
  erfSpelling,
  hasLongSum,
  infixOps,
  jamLanes,
  type JamTarget,
  type OpSpelling,
  reductionSpelling,
  REPEATS_ARGUMENT,
  UNROLL,
  vectorMapRoot,
} from "../common.ts";

/**
 * A rendered kernel: the body of `function (out, ...args)` and the argument buffer names.
 *
 * @example
 * ```ts
 * import type { JsKernelSource } from "./loop_nest.ts";
 * function lines(k: JsKernelSource): number {
 *   return k.body.split("\n").length;
 * }
 * ```
 */
export interface JsKernelSource {
  /** Buffer names passed after `out`, in order (as `buf0`, `buf1`, ... in the body). */
  readonly args: readonly string[];
  /** The function body of `function (out, lo, hi, buf0, buf1, ...)`. */
  readonly body: string;
  /** The output axis whose loop runs over `[lo, hi)`, so threads can split the work. */
  readonly splitAxis: number;
}

/**
 * The axis to split a kernel's work along: the outermost axis with at least `4 * parts`
 * iterations, else the longest one.
 *
 * @example
 * ```ts
 * import { chooseSplitAxis } from "./loop_nest.ts";
 * chooseSplitAxis([1, 197, 768], 2); // 1
 * chooseSplitAxis([32, 197, 768], 2); // 0
 * ```
 */
export function chooseSplitAxis(shape: readonly number[], parts: number): number {
  const enough = shape.findIndex((d) => d >= 4 * parts);
  if (enough >= 0) return enough;
  let best = 0;
  shape.forEach((d, i) => (best = d > shape[best] ? i : best));
  return best;
}

const jsExp = (a: string): string => `Math.exp(${a})`;
const jsAbs = (a: string): string => `Math.abs(${a})`;
const jsSelect = (c: string, a: string, b: string): string => `(${c} ? ${a} : ${b})`;

/**
 * How the JavaScript loop nests spell every op of the IR (float64 arithmetic, stored as f32).
 *
 * @example
 * ```ts
 * import { JS_OPS } from "./loop_nest.ts";
 * JS_OPS.binary.max("a", "b"); // "Math.max(a, b)"
 * ```
 */
export const JS_OPS: OpSpelling = {
  unary: {
    neg: (a) => `(-${a})`,
    exp: jsExp,
    log: (a) => `Math.log(${a})`,
    sqrt: (a) => `Math.sqrt(${a})`,
    rsqrt: (a) => `(1 / Math.sqrt(${a}))`,
    erf: (a) => erfSpelling(a, { float: String, abs: jsAbs, exp: jsExp, select: jsSelect }),
    tanh: (a) => `Math.tanh(${a})`,
    abs: jsAbs,
    recip: (a) => `(1 / ${a})`,
  },
  binary: {
    ...infixOps((c) => `(${c} ? 1 : 0)`, "==="),
    max: (a, b) => `Math.max(${a}, ${b})`,
    min: (a, b) => `Math.min(${a}, ${b})`,
  },
  where: (c, a, b) => jsSelect(`${c} !== 0`, a, b),
  lowest: "-Infinity",
};

const { init: reduceStart, combine, accumulate } = reductionSpelling(JS_OPS, "0");

function opChildren(e: VExpr): readonly VExpr[] {
  return e.k === "unary"
    ? [e.a]
    : e.k === "binary"
    ? [e.a, e.b]
    : e.k === "where"
    ? [e.c, e.a, e.b]
    : [];
}

/** Floats a mapped kernel writes before it maps them in place (L1-sized, so still cached). */
const MAP_PIECE = 4096;

/** Outputs computed together by an unroll-and-jammed reduction loop. */
const JAM = 4;

/** A block of code: a loop or branch body, with its own hoisted constants. */
interface Block {
  /** Loop variables bound here and above. */
  readonly bound: readonly string[];
  /** The enclosing block, or undefined at the top. */
  readonly parent?: Block;
  /** Hoisted index pieces by canonical text. */
  readonly names: Map<string, string>;
  /** Hoisted constants, emitted before `body`. */
  readonly pre: string[];
  /** Statements and nested blocks. */
  readonly body: (string | { open: string; block: Block; close: string })[];
  /** Accumulators of the reductions computed in this block, by `exprKey`. */
  readonly reductions: Map<string, string>;
}

function child(parent: Block, newVar?: string): Block {
  return {
    bound: newVar ? [...parent.bound, newVar] : parent.bound,
    parent,
    names: new Map(),
    pre: [],
    body: [],
    reductions: new Map(),
  };
}

function print(block: Block, indent: string): string[] {
  const out = block.pre.map((l) => indent + l);
  for (const item of block.body) {
    if (typeof item === "string") out.push(indent + item);
    else out.push(indent + item.open, ...print(item.block, indent + "  "), indent + item.close);
  }
  return out;
}

/**
 * Renders one kernel as a JavaScript loop nest. `scalars` are extra numeric parameters (after the
 * buffers) that index expressions may use, bound outside every loop. With `vectorMath`, a
 * kernel whose value is `exp(a)` or the exact GELU of `a` stores `a` and then maps each range
 * it wrote in place through `rt.vmath` (WebAssembly SIMD; see `ThreadRuntime`).
 *
 * @example
 * ```ts
 * import { renderJsKernel } from "./loop_nest.ts";
 * typeof renderJsKernel; // "function"
 * ```
 */
export function renderJsKernel(
  kernel: Kernel,
  splitAxis = 0,
  scalars: readonly string[] = [],
  options: { readonly vectorMath?: boolean } = {},
): JsKernelSource {
  const args = [...kernel.reads].sort();
  const mapped = options.vectorMath && kernel.shape.length > 0
    ? vectorMapRoot(kernel.expr)
    : undefined;
  // Buffers are `buf<i>`; loop variables never start with "buf".
  const safe = new Map(args.map((a, i) => [a, `buf${i}`]));
  let temps = 0;

  const atomVars = (a: Atom, into: Set<string>): Set<string> => {
    if (a.k === "var") into.add(a.name);
    else for (const t of a.x.terms) atomVars(t.atom, into);
    return into;
  };
  const linVars = (x: Lin): Set<string> => {
    const s = new Set<string>();
    for (const t of x.terms) atomVars(t.atom, s);
    return s;
  };
  // The outermost enclosing block where all of `vars` are bound.
  const home = (vars: Set<string>, block: Block): Block => {
    let target = block;
    for (let b = block.parent; b; b = b.parent) {
      if ([...vars].every((v) => b.bound.includes(v))) target = b;
      else break;
    }
    return target;
  };
  const hoist = (text: string, vars: Set<string>, block: Block, prefix: string): string => {
    const target = home(vars, block);
    const known = target.names.get(text);
    if (known) return known;
    const name = `${prefix}${temps++}`;
    target.pre.push(`const ${name} = ${text};`);
    target.names.set(text, name);
    return name;
  };
  const atomText = (a: Atom, block: Block): string => {
    if (a.k === "var") return a.name;
    const inner = linText(a.x, block);
    const text = a.k === "div"
      ? `Math.floor((${inner}) / ${a.d})`
      : `(${inner}) - ${a.d} * Math.floor((${inner}) / ${a.d})`;
    return hoist(text, atomVars(a, new Set()), block, a.k === "div" ? "q" : "r");
  };
  const linText = (x: Lin, block: Block): string => printLin(x, (a) => atomText(a, block));
  // An index: the part fixed by outer loops is hoisted out; the rest is added in place.
  const indexText = (x: Lin, block: Block): string => {
    const innermost = block.bound[block.bound.length - 1];
    const moves = (t: Lin["terms"][number]): boolean => atomVars(t.atom, new Set()).has(innermost);
    const fixed: Lin = { c: x.c, terms: x.terms.filter((t) => !moves(t)) };
    const moving: Lin = { c: 0, terms: x.terms.filter(moves) };
    if (moving.terms.length === 0) return hoist(linText(x, block), linVars(x), block, "o");
    if (fixed.terms.length === 0 && fixed.c === 0) return linText(moving, block);
    const base = hoist(linText(fixed, block), linVars(fixed), block, "o");
    return `${base} + ${linText(moving, block)}`;
  };
  const condVars = (c: Cond, into = new Set<string>()): Set<string> => {
    if (c.k === "lt" || c.k === "ge") linVars(c.x).forEach((v) => into.add(v));
    else if (c.k === "and") {
      condVars(c.a, into);
      condVars(c.b, into);
    }
    return into;
  };
  const condText = (c: Cond, block: Block): string => {
    switch (c.k) {
      case "bool":
        return String(c.v);
      case "lt":
        return `${linText(c.x, block)} < ${c.c}`;
      case "ge":
        return `${linText(c.x, block)} >= ${c.c}`;
      case "and":
        return `(${condText(c.a, block)} && ${condText(c.b, block)})`;
    }
  };
  // A unary, binary or where node from its operands' texts; an argument used several times by
  // its spelling is bound to a name first.
  const spell = (
    e: VExpr & { k: "unary" | "binary" | "where" },
    operands: readonly string[],
    block: Block,
  ): string => {
    if (e.k === "unary") {
      if (!REPEATS_ARGUMENT.has(e.op)) return JS_OPS.unary[e.op](operands[0]);
      const name = `t${temps++}`;
      block.body.push(`const ${name} = ${operands[0]};`);
      return JS_OPS.unary[e.op](name);
    }
    if (e.k === "binary") return JS_OPS.binary[e.op](operands[0], operands[1]);
    return JS_OPS.where(operands[0], operands[1], operands[2]);
  };
  const valueText = (e: VExpr, block: Block): string => {
    switch (e.k) {
      case "const":
        return String(Math.fround(e.v));
      case "load": {
        // Read once per block where its index is fixed: hoisted out of loops it does not depend
        // on, and shared by the lanes of a jammed loop body.
        const load = `${safe.get(e.buf)}[${indexText(e.index, block)}]`;
        return block.bound.length === 0 ? load : hoist(load, linVars(e.index), block, "v");
      }
      case "select":
        return `(${condText(e.cond, block)} ? ${valueText(e.a, block)} : ${valueText(e.b, block)})`;
      case "unary":
      case "binary":
      case "where":
        return spell(e, opChildren(e).map((c) => valueText(c, block)), block);
      case "reduce": {
        // A reduction already computed in this block or an enclosing one is reused (GELU reads
        // its input twice).
        const key = exprKey(e);
        for (let b: Block | undefined = block; b; b = b.parent) {
          const known = b.reductions.get(key);
          if (known) return known;
        }
        if (e.extent <= UNROLL) {
          // Short reductions (the seed's 3-wide Linear) are unrolled, so each term's loads
          // become loop-invariant for the output loop around them and get hoisted.
          const terms = Array.from(
            { length: e.extent },
            (_, k) => valueText(simplify(e.body, new Map(kernel.ranges).set(e.v, [k, k])), block),
          );
          return combine(e.op, terms);
        }
        const acc = `acc${temps++}`;
        block.body.push(`let ${acc} = ${reduceStart(e.op)};`);
        const loop = child(block, e.v);
        const value = valueText(e.body, loop);
        loop.body.push(accumulate(e.op, acc, value));
        block.body.push({
          open: `for (let ${e.v} = 0; ${e.v} < ${e.extent}; ${e.v}++) {`,
          block: loop,
          close: "}",
        });
        block.reductions.set(key, acc);
        return acc;
      }
    }
  };
  // Lanes that share one loop skeleton (unroll-and-jam): one loop nest, one accumulator per
  // lane, shared loads (hoisted per block). Selects do not jam here.
  const jamTarget: JamTarget<Block> = {
    ranges: kernel.ranges,
    leaf: (e, block) => valueText(e, block),
    spell: (e, operands, block) => spell(e, operands, block),
    select: () => undefined,
    combine,
    loop: (first, count, block, body) => {
      const accs = Array.from({ length: count }, () => `acc${temps++}`);
      const start = reduceStart(first.op);
      block.body.push(`let ${accs.join(` = ${start}, `)} = ${start};`);
      const loop = child(block, first.v);
      const bodies = body(loop);
      if (!bodies) return undefined;
      bodies.forEach((x, j) => loop.body.push(accumulate(first.op, accs[j], x)));
      block.body.push({
        open: `for (let ${first.v} = 0; ${first.v} < ${first.extent}; ${first.v}++) {`,
        block: loop,
        close: "}",
      });
      return accs;
    },
  };
  const jamText = (lanes: readonly VExpr[], block: Block): string[] | undefined =>
    jamLanes(lanes, block, jamTarget);
  // The last output axis of a reduction kernel, JAM outputs per iteration sharing their loads.
  const emitJammed = (e: VExpr, axis: number, block: Block): boolean => {
    const v = `i${axis}`;
    const extent = kernel.shape[axis];
    // As many lanes as divide the axis: JAM, else 2 (the seed conv's 14-wide patch rows).
    const width = [JAM, 2].find((w) => extent % w === 0);
    if (axis !== kernel.shape.length - 1 || axis === splitAxis || !width) return false;
    if (!hasLongSum(e)) return false;
    const ranges = new Map(kernel.ranges).set(v, [0, extent - width] as const);
    const lanes = Array.from(
      { length: width },
      (_, j) => substitute(e, v, lin.offset(variable(v), j), ranges),
    );
    const loop = child(block, v);
    const texts = jamText(lanes, loop);
    if (!texts) return false;
    texts.forEach((t) => loop.body.push(`out[o++] = ${t};`));
    block.body.push({
      open: `for (let ${v} = 0; ${v} < ${extent}; ${v} += ${width}) {`,
      block: loop,
      close: "}",
    });
    return true;
  };
  // Output axes `axis..` as loops; a select decided by outer axes becomes an if/else.
  const emitAxes = (e: VExpr, axis: number, block: Block): void => {
    if (e.k === "select" && [...condVars(e.cond)].every((v) => block.bound.includes(v))) {
      const then = child(block);
      const otherwise = child(block);
      emitAxes(e.a, axis, then);
      emitAxes(e.b, axis, otherwise);
      block.body.push({ open: `if (${condText(e.cond, block)}) {`, block: then, close: "}" });
      block.body.push({ open: "else {", block: otherwise, close: "}" });
      return;
    }
    if (axis === kernel.shape.length) {
      block.body.push(`out[o++] = ${valueText(e, block)};`);
      return;
    }
    // A failed jam attempt may have hoisted names into its scratch block, so it is discarded.
    const jamBlock = child(block);
    if (emitJammed(e, axis, jamBlock)) {
      block.body.push({ open: "{", block: jamBlock, close: "}" });
      return;
    }
    const v = `i${axis}`;
    const loop = child(block, v);
    if (axis === splitAxis) {
      // Each iteration of the split loop starts at its own output offset.
      let prefix = "i0";
      for (let a = 1; a <= axis; a++) prefix = `(${prefix}) * ${kernel.shape[a]} + i${a}`;
      const inner = kernel.shape.slice(axis + 1).reduce((p, d) => p * d, 1);
      loop.body.push(`o = (${prefix}) * ${inner};`);
    }
    // A mapped kernel maps what it wrote every MAP_PIECE floats or so, while it is in cache.
    const pending = mapped && axis === splitAxis ? `vs${temps++}` : undefined;
    const map = (start: string): string => `rt.vmath.${mapped?.fn}(out, ${start}, o);`;
    emitAxes(e, axis + 1, loop);
    if (pending) {
      loop.body.push(`if (o - ${pending} >= ${MAP_PIECE}) { ${map(pending)} ${pending} = o; }`);
    }
    if (pending) {
      // The split loop's iterations write one contiguous range, from lo's offset up to `o`.
      let start = axis === 0 ? "lo" : "i0";
      for (let a = 1; a <= axis; a++) {
        start = `(${start}) * ${kernel.shape[a]} + ${a === axis ? "lo" : `i${a}`}`;
      }
      const inner = kernel.shape.slice(axis + 1).reduce((p, d) => p * d, 1);
      block.body.push(`let ${pending} = (${start}) * ${inner};`);
    }
    const range = axis === splitAxis ? ["lo", "hi"] : ["0", String(kernel.shape[axis])];
    block.body.push({
      open: `for (let ${v} = ${range[0]}; ${v} < ${range[1]}; ${v}++) {`,
      block: loop,
      close: "}",
    });
    if (pending) block.body.push(map(pending));
  };
  const root: Block = {
    bound: scalars,
    names: new Map(),
    pre: [],
    body: [],
    reductions: new Map(),
  };
  emitAxes(mapped?.arg ?? kernel.expr, 0, root);
  return { args, body: ["let o = 0;", ...print(root, "")].join("\n"), splitAxis };
}
