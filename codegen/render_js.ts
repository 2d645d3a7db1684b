/**
 * The JavaScript emitter behind the `js` backend: renders a lowered kernel as a specialized
 * loop nest. Output axes become nested loops in row-major order (so the output is written with
 * one running offset), selects whose condition depends only on outer loops become `if`
 * branches around the inner loops, and every piece of index arithmetic is hoisted to the
 * outermost scope where its variables are bound (loop-invariant code motion on `Lin` atoms).
 * @module
 */

import type { Atom, Cond, Lin, VExpr } from "./expr.ts";
import type { Kernel } from "./lower.ts";

/**
 * A rendered kernel: the body of `function (out, ...args)` and the argument buffer names.
 *
 * @example
 * ```ts
 * import type { JsKernelSource } from "./render_js.ts";
 * function lines(k: JsKernelSource): number {
 *   return k.body.split("\n").length;
 * }
 * ```
 */
export interface JsKernelSource {
  /** Buffer names passed after `out`, in order (as `b0`, `b1`, ... in the body). */
  readonly args: readonly string[];
  /** The function body. */
  readonly body: string;
}

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
}

function child(parent: Block, newVar?: string): Block {
  return {
    bound: newVar ? [...parent.bound, newVar] : parent.bound,
    parent,
    names: new Map(),
    pre: [],
    body: [],
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
 * Renders one kernel as a JavaScript loop nest.
 *
 * @example
 * ```ts
 * import { renderJsKernel } from "./render_js.ts";
 * typeof renderJsKernel; // "function"
 * ```
 */
export function renderJsKernel(kernel: Kernel): JsKernelSource {
  const args = [...kernel.reads].sort();
  const safe = new Map(args.map((a, i) => [a, `b${i}`]));
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
  const linText = (x: Lin, block: Block): string => {
    const parts = x.terms.map((t) => {
      const a = atomText(t.atom, block);
      return t.coeff === 1 ? a : `${t.coeff} * ${a}`;
    });
    if (x.c !== 0 || parts.length === 0) parts.push(String(x.c));
    return parts.join(" + ").replaceAll("+ -", "- ");
  };
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
  const valueText = (e: VExpr, block: Block): string => {
    switch (e.k) {
      case "const":
        return String(Math.fround(e.v));
      case "load":
        return `${safe.get(e.buf)}[${indexText(e.index, block)}]`;
      case "add":
        return `(${valueText(e.a, block)} + ${valueText(e.b, block)})`;
      case "mul":
        return `${valueText(e.a, block)} * ${valueText(e.b, block)}`;
      case "select":
        return `(${condText(e.cond, block)} ? ${valueText(e.a, block)} : ${valueText(e.b, block)})`;
      case "sum": {
        const acc = `acc${temps++}`;
        block.body.push(`let ${acc} = 0;`);
        const loop = child(block, e.v);
        const value = valueText(e.body, loop);
        loop.body.push(`${acc} += ${value};`);
        block.body.push({
          open: `for (let ${e.v} = 0; ${e.v} < ${e.extent}; ${e.v}++) {`,
          block: loop,
          close: "}",
        });
        return acc;
      }
    }
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
    const v = `i${axis}`;
    const loop = child(block, v);
    emitAxes(e, axis + 1, loop);
    block.body.push({
      open: `for (let ${v} = 0; ${v} < ${kernel.shape[axis]}; ${v}++) {`,
      block: loop,
      close: "}",
    });
  };
  const root: Block = { bound: [], names: new Map(), pre: [], body: [] };
  emitAxes(kernel.expr, 0, root);
  return { args, body: ["let o = 0;", ...print(root, "")].join("\n") };
}
