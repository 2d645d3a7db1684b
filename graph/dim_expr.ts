/**
 * Symbolic dim arithmetic at run time: the dims ops derive from symbolic ones (`flatten` of
 * `["B", 3]` is `"B*3"`, a class token makes `"N+1"`, a stride-16 conv makes `"H/16"`), kept in
 * one canonical spelling so two derivations of the same dim print the same. The type level
 * (`dim_expr_types.ts`) computes the same strings, character for character.
 *
 * Grammar of a string dim: integers, names (`/^[A-Za-z_][A-Za-z0-9_]*$/`), `+ - * /` and
 * parentheses, with the usual precedence (`*` and `/` bind tighter, all left associative);
 * `/` is floor division. No spaces, no unary minus, no leading zeros, no integer beyond
 * 2^53 - 1, and not the name `Infinity` (it reads as a number); a string that is only an integer
 * (`"3"`) is a fault too: use the size. `parseDimFault` checks this grammar; evaluating also
 * needs every divisor and subtrahend to be an integer once bindings are substituted (`"H/W"` and
 * `"N-M"` parse, but throw unless `W` and `M` are bound to numbers).
 *
 * Canonical forms, built bottom up by the operations below:
 * - a number: any fully numeric result;
 * - a product: the symbolic factors in order of first appearance (left operand first, repeats
 *   kept), then the numeric coefficient when it is not 1 (`"B*H*3"`). A factor that is a sum or
 *   a quotient is kept whole and parenthesized (`"(N+1)*3"`); with coefficient 1 such a lone
 *   factor is itself (`"(N+1)"` is `"N+1"`);
 * - a sum: the symbolic terms in order (left operand first, nested sums flattened, repeats
 *   kept), then the constant when it is not 0 (`"B*3+1"`, `"H-13"`). Only integers are
 *   subtracted, since with the constant moved last `"N+5-M"` would go negative where the
 *   original does not;
 * - a quotient `"H/16"` (a name over an integer >= 2) or `"(H-13)/16"` (anything else, wrapped).
 *   A product whose coefficient the divisor divides is divided out instead: `"B*32"/16` is
 *   `"B*2"`. Nested quotients are not merged: `"(H/16)/2"`.
 *
 * Every numeric intermediate must be a safe integer; a fully numeric one must also be >= 0
 * (a symbolic sum may carry a negative constant, `"H-13"`). Otherwise the operation throws a
 * plain `Error` whose one-line message names the call and the offending arithmetic.
 *
 * @module
 */

import type { Dim } from "./shape.ts";

// ---------------------------------------------------------------------------
// Canonical forms
// ---------------------------------------------------------------------------

/** A symbolic factor of a product: a name, or a sum or quotient kept whole. */
type Factor = string | Sum | Quot;

/** Coefficient times symbolic factors; `factors` is never empty and `coeff` is >= 1. */
interface Prod {
  readonly kind: "prod";
  readonly factors: readonly Factor[];
  readonly coeff: number;
}

/** A symbolic term of a sum. */
type Term = Prod | Quot;

/** Symbolic terms plus a (possibly negative) constant; `terms` is never empty. */
interface Sum {
  readonly kind: "sum";
  readonly terms: readonly Term[];
  readonly constant: number;
}

/** `floor(num / den)` with `den` >= 2 and `num` symbolic. */
interface Quot {
  readonly kind: "quot";
  readonly num: Prod | Sum | Quot;
  readonly den: number;
}

/** A canonical dim before printing: a number or one of the symbolic forms. */
type Form = number | Prod | Sum | Quot;

const atom = (name: string): Prod => ({ kind: "prod", factors: [name], coeff: 1 });

/** Throws unless `n` is a safe integer (and >= 0 unless `signed`); `expr` names the arithmetic. */
function checked(n: number, expr: () => string, signed = false): number {
  if (!Number.isSafeInteger(n)) throw new Error(`${expr()} is beyond 2^53 - 1`);
  if (n < 0 && !signed) throw new Error(`${expr()} is negative`);
  return n + 0; // no -0 constants
}

// ---------------------------------------------------------------------------
// Operations on forms (the type level mirrors each one)
// ---------------------------------------------------------------------------

const factorsOf = (x: Form): readonly Factor[] =>
  typeof x === "number" ? [] : x.kind === "prod" ? x.factors : [x];
const coeffOf = (x: Form): number => typeof x === "number" ? x : x.kind === "prod" ? x.coeff : 1;

/** A product, collapsed to a number, or to its one factor when that is a sum or quotient. */
function prodOf(factors: readonly Factor[], coeff: number): Form {
  if (factors.length === 0) return coeff;
  const [f] = factors;
  // 1 * (N+1) is N+1 itself, not a product "(N+1)".
  if (factors.length === 1 && coeff === 1 && typeof f !== "string") return f;
  return { kind: "prod", factors, coeff };
}

function mulForms(x: Form, y: Form): Form {
  // A zero factor wins even over a symbolic one: 0 * (N+1) is 0 for every N.
  if (x === 0 || y === 0) return 0;
  const cx = coeffOf(x);
  const cy = coeffOf(y);
  const coeff = checked(cx * cy, () => `${cx}*${cy}`);
  return prodOf([...factorsOf(x), ...factorsOf(y)], coeff);
}

const termsOf = (x: Form): readonly Term[] =>
  typeof x === "number" ? [] : x.kind === "sum" ? x.terms : [x];
const constOf = (x: Form): number => typeof x === "number" ? x : x.kind === "sum" ? x.constant : 0;

/** A sum of `terms` and `constant`, collapsed to a number or a lone term where it is one. */
function sumOf(terms: readonly Term[], constant: number, expr: () => string): Form {
  if (terms.length === 0) return checked(constant, expr);
  checked(constant, expr, true);
  if (terms.length === 1 && constant === 0) return terms[0];
  return { kind: "sum", terms, constant: constant + 0 };
}

function addForms(x: Form, y: Form): Form {
  const cx = constOf(x);
  const cy = constOf(y);
  return sumOf([...termsOf(x), ...termsOf(y)], cx + cy, () => `${cx}+${cy}`);
}

function addConstForm(x: Form, c: number): Form {
  const cx = constOf(x);
  return sumOf(termsOf(x), cx + c, () => `${cx}${c < 0 ? "-" : "+"}${Math.abs(c)}`);
}

function divForm(x: Form, k: number): Form {
  if (k === 1) return x;
  // Exact for safe integers: a non-integral x / k is >= 1/k from an integer, and the rounding
  // error of the division is below (x / k) * 2^-53 < 1/k.
  if (typeof x === "number") return Math.floor(x / k);
  if (x.kind === "prod" && x.coeff % k === 0) return prodOf(x.factors, x.coeff / k);
  return { kind: "quot", num: x, den: k };
}

// ---------------------------------------------------------------------------
// Printing
// ---------------------------------------------------------------------------

function text(x: Prod | Sum | Quot): string {
  switch (x.kind) {
    case "prod": {
      const fs = x.factors.map((f) => (typeof f === "string" ? f : `(${text(f)})`)).join("*");
      return x.coeff === 1 ? fs : `${fs}*${x.coeff}`;
    }
    case "sum": {
      const ts = x.terms.map(text).join("+");
      return x.constant === 0 ? ts : `${ts}${x.constant > 0 ? "+" : ""}${x.constant}`;
    }
    case "quot": {
      const n = x.num;
      const bare = n.kind === "prod" && n.coeff === 1 && n.factors.length === 1 &&
        typeof n.factors[0] === "string";
      return bare ? `${n.factors[0]}/${x.den}` : `(${text(n)})/${x.den}`;
    }
  }
}

const show = (x: Form): Dim => (typeof x === "number" ? x : text(x));

// ---------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------

type Op = "+" | "-" | "*" | "/";
type Token = { readonly num: number } | { readonly name: string } | Op | "(" | ")";
type Ast =
  | { readonly num: number }
  | { readonly name: string }
  | { readonly op: Op; readonly l: Ast; readonly r: Ast };

/** Thrown for a malformed expression; its message is what `parseDimFault` reports. */
class Fault extends Error {}

const NAME_START = /[A-Za-z_]/;
const NAME_CHAR = /[A-Za-z0-9_]/;

function tokenize(s: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < s.length) {
    const c = s[i];
    if ("+-*/()".includes(c)) {
      out.push(c as Op | "(" | ")");
      i++;
    } else if (c >= "0" && c <= "9") {
      let j = i;
      while (j < s.length && s[j] >= "0" && s[j] <= "9") j++;
      const run = s.slice(i, j);
      if (j < s.length && NAME_START.test(s[j])) {
        throw new Fault(`a number runs into a name at "${s.slice(i)}"`);
      }
      if (run.length > 1 && run[0] === "0") throw new Fault(`number ${run} has a leading zero`);
      const n = Number(run);
      if (!Number.isSafeInteger(n)) throw new Fault(`number ${run} is beyond 2^53 - 1`);
      out.push({ num: n });
      i = j;
    } else if (NAME_START.test(c)) {
      let j = i;
      while (j < s.length && NAME_CHAR.test(s[j])) j++;
      const name = s.slice(i, j);
      // Number("Infinity") is a number: the one name that would read as a size.
      if (name === "Infinity") throw new Fault(`name Infinity reads as a number`);
      out.push({ name });
      i = j;
    } else {
      throw new Fault(`unexpected character ${JSON.stringify(c)} at ${i}`);
    }
  }
  return out;
}

const describe = (t: Token | undefined): string =>
  t === undefined ? "the end" : typeof t === "string" ? `"${t}"` : "num" in t ? `${t.num}` : t.name;

/** Recursive descent: `expr := term (("+"|"-") term)*`, `term := atom (("*"|"/") atom)*`. */
function parse(s: string): Ast {
  const toks = tokenize(s);
  if (toks.length === 0) throw new Fault("empty expression");
  if (toks.length === 1 && typeof toks[0] !== "string" && "num" in toks[0]) {
    throw new Fault(`"${s}" is a number written as a name; use the size ${s}`);
  }
  let at = 0;
  const operand = (): Ast => {
    const t = toks[at++];
    if (t === "(") {
      const inner = expr();
      if (toks[at++] !== ")") throw new Fault(`unbalanced "(" in "${s}"`);
      return inner;
    }
    if (t === undefined || typeof t === "string") {
      throw new Fault(`expected a name, a number or "(" at ${describe(t)} in "${s}"`);
    }
    return t;
  };
  const chain = (ops: readonly Op[], next: () => Ast): Ast => {
    let l = next();
    while (ops.includes(toks[at] as Op)) {
      const op = toks[at++] as Op;
      l = { op, l, r: next() };
    }
    return l;
  };
  const term = (): Ast => chain(["*", "/"], operand);
  const expr = (): Ast => chain(["+", "-"], term);
  const ast = expr();
  if (at < toks.length) {
    const t = toks[at];
    throw new Fault(
      t === ")" ? `unbalanced ")" in "${s}"` : `missing operator before ${describe(t)} in "${s}"`,
    );
  }
  return ast;
}

function namesOf(ast: Ast, out: string[]): string[] {
  if ("name" in ast) {
    if (!out.includes(ast.name)) out.push(ast.name);
  } else if ("op" in ast) {
    namesOf(ast.l, out);
    namesOf(ast.r, out);
  }
  return out;
}

/** Builds the canonical form of `ast`, each name replaced by its form in `env` if bound. */
function build(ast: Ast, env: ReadonlyMap<string, Form>): Form {
  if ("num" in ast) return ast.num;
  if ("name" in ast) return env.get(ast.name) ?? atom(ast.name);
  const l = build(ast.l, env);
  const r = build(ast.r, env);
  switch (ast.op) {
    case "*":
      return mulForms(l, r);
    case "+":
      return addForms(l, r);
    case "-":
      if (typeof r !== "number") throw new Error(`cannot subtract the symbolic dim ${text(r)}`);
      return addConstForm(l, -r);
    case "/":
      if (typeof r !== "number") throw new Error(`divisor ${text(r)} is not a number`);
      if (r === 0) throw new Error(`division by 0`);
      return divForm(l, r);
  }
}

const NO_ENV: ReadonlyMap<string, Form> = new Map();

/** The canonical form of a dim; throws on a malformed string or an invalid number. */
function formOf(d: Dim, env: ReadonlyMap<string, Form> = NO_ENV): Form {
  if (typeof d === "number") {
    if (!Number.isSafeInteger(d) || d < 0) throw new Error(`${d} is not a safe integer >= 0`);
    return d;
  }
  if (typeof d !== "string") throw new Error(`${String(d as unknown)} is not a dim`);
  return build(parse(d), env);
}

const fmt = (d: unknown): string => (typeof d === "string" ? JSON.stringify(d) : String(d));

/** Runs `f`, prefixing any error with the call, so the one-line message names the expression. */
function named<T>(call: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    throw new Error(`${call}: ${e instanceof Error ? e.message : String(e)}`);
  }
}

// ---------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------

/**
 * The product `a * b` in canonical form: symbolic factors in order of first appearance (left
 * operand first), the numeric coefficient last; a sum or quotient is one parenthesized factor.
 * Any factor 0 gives 0; all-numeric gives a number.
 *
 * @example
 * ```ts
 * import { mulDims } from "./dim_expr.ts";
 * mulDims("B", 3); // "B*3"
 * mulDims(3, "B"); // "B*3"
 * mulDims("B*3", 4); // "B*12"
 * mulDims("N+1", 3); // "(N+1)*3"
 * mulDims("H/16", "W/16"); // "(H/16)*(W/16)"
 * ```
 */
export function mulDims(a: Dim, b: Dim): Dim {
  return named(`mulDims(${fmt(a)}, ${fmt(b)})`, () => show(mulForms(formOf(a), formOf(b))));
}

/**
 * The product of a list of dims, folded left with {@linkcode mulDims} from 1 (so `1` for the
 * empty list).
 *
 * @example
 * ```ts
 * import { productOf } from "./dim_expr.ts";
 * productOf(["B", 3, 196]); // "B*588"
 * productOf([]); // 1
 * ```
 */
export function productOf(dims: readonly Dim[]): Dim {
  return named(`productOf([${dims.map(fmt).join(", ")}])`, () => {
    let acc: Form = 1;
    for (const d of dims) acc = mulForms(acc, formOf(d));
    return show(acc);
  });
}

/**
 * The sum `a + b` in canonical form: symbolic terms in order (left first, nested sums
 * flattened), then the numeric constant.
 *
 * @example
 * ```ts
 * import { addDims } from "./dim_expr.ts";
 * addDims("N", 1); // "N+1"
 * addDims(1, "N"); // "N+1"
 * addDims("N+1", 1); // "N+2"
 * addDims("N", "M"); // "N+M"
 * addDims("B*3", 1); // "B*3+1"
 * ```
 */
export function addDims(a: Dim, b: Dim): Dim {
  return named(`addDims(${fmt(a)}, ${fmt(b)})`, () => show(addForms(formOf(a), formOf(b))));
}

/**
 * `a + c` for an integer constant `c`, which may be negative. A numeric result must be >= 0;
 * a symbolic one keeps a negative constant (`"H-13"`).
 *
 * @example
 * ```ts
 * import { addConst } from "./dim_expr.ts";
 * addConst("H", -13); // "H-13"
 * addConst("H-13", 13); // "H"
 * addConst("N", 0); // "N"
 * addConst(10, -3); // 7
 * ```
 */
export function addConst(a: Dim, c: number): Dim {
  return named(`addConst(${fmt(a)}, ${c})`, () => {
    if (!Number.isSafeInteger(c)) throw new Error(`constant ${c} is not a safe integer`);
    return show(addConstForm(formOf(a), c));
  });
}

/**
 * `floor(a / k)` for a positive integer `k`: `a` itself for k = 1, a number for a numeric `a`,
 * `"H/16"` for a name, `"(H-13)/16"` for anything else, except that a product whose coefficient
 * `k` divides is divided out (`"B*32"` / 16 is `"B*2"`).
 *
 * @example
 * ```ts
 * import { floorDivDim } from "./dim_expr.ts";
 * floorDivDim(224, 16); // 14
 * floorDivDim("H", 16); // "H/16"
 * floorDivDim("H-13", 16); // "(H-13)/16"
 * floorDivDim("B*3", 16); // "(B*3)/16"
 * floorDivDim("B*32", 16); // "B*2"
 * ```
 */
export function floorDivDim(a: Dim, k: number): Dim {
  return named(`floorDivDim(${fmt(a)}, ${k})`, () => {
    if (!Number.isSafeInteger(k) || k < 1) {
      throw new Error(`divisor ${k} is not a positive integer`);
    }
    return show(divForm(formOf(a), k));
  });
}

/**
 * Substitutes the names bound in `env` into `d`, all at once (a bound value is not substituted
 * into again, so `{ A: "B", B: 2 }` maps `"A*B"` to `"B*2"`), and rebuilds the canonical form
 * with the operations above; unbound names stay symbolic. Every binding must be a valid dim,
 * used or not. With an empty `env` this canonicalizes `d`.
 *
 * @example
 * ```ts
 * import { evaluateDim } from "./dim_expr.ts";
 * evaluateDim("(N+1)*3", { N: 196 }); // 591
 * evaluateDim("H/16", { H: 224 }); // 14
 * evaluateDim("B*N", { N: 197 }); // "B*197"
 * evaluateDim("A*B", { A: "B", B: 2 }); // "B*2"
 * evaluateDim("3*B", {}); // "B*3"
 * ```
 */
export function evaluateDim(d: Dim, env: Readonly<Record<string, Dim>>): Dim {
  return named(`evaluateDim(${fmt(d)})`, () => {
    const bound = new Map<string, Form>();
    // Validated eagerly, like the type level, which gives `number` for any bad binding.
    for (const [name, v] of Object.entries(env)) {
      bound.set(name, named(`binding ${name}`, () => formOf(v)));
    }
    return show(formOf(d, bound));
  });
}

/**
 * The names an expression mentions, in order of first appearance, each once (`[]` for a
 * number). Throws on a malformed expression.
 *
 * @example
 * ```ts
 * import { dimNames } from "./dim_expr.ts";
 * dimNames("(H-13)/16*W+H"); // ["H", "W"]
 * dimNames(224); // []
 * ```
 */
export function dimNames(d: Dim): string[] {
  return named(`dimNames(${fmt(d)})`, () => {
    if (typeof d !== "number") return namesOf(parse(d), []);
    formOf(d); // throws unless a valid size
    return [];
  });
}

/**
 * Why `d` is not a valid dim expression (a short reason), or `undefined` when it is. Besides
 * syntax errors, a string that is just a number (`"3"`) is a fault: use the size itself.
 *
 * @example
 * ```ts
 * import { parseDimFault } from "./dim_expr.ts";
 * parseDimFault("(H-13)/16+1"); // undefined
 * parseDimFault("a**b"); // 'expected a name, a number or "(" at "*" in "a**b"'
 * parseDimFault("-3"); // 'expected a name, a number or "(" at "-" in "-3"'
 * ```
 */
export function parseDimFault(d: string): string | undefined {
  try {
    parse(d);
    return undefined;
  } catch (e) {
    if (e instanceof Fault) return e.message;
    throw e;
  }
}

/**
 * Whether two dims are provably equal: their canonical forms match, products compared as
 * multisets of factors with the coefficient (`"H*W"` and `"W*H"` are the same), other forms by
 * their canonical strings. `false` does not prove them different.
 *
 * @example
 * ```ts
 * import { sameDim } from "./dim_expr.ts";
 * sameDim("H*W*2", "2*W*H"); // true
 * sameDim("N+1", "1+N"); // true (both canonicalize to "N+1")
 * sameDim("N+M", "M+N"); // false: sums compare as strings
 * ```
 */
export function sameDim(a: Dim, b: Dim): boolean {
  return named(`sameDim(${fmt(a)}, ${fmt(b)})`, () => {
    const x = formOf(a);
    const y = formOf(b);
    if (typeof x === "number" || typeof y === "number") return x === y;
    if (x.kind === "prod" && y.kind === "prod") {
      const bag = (p: Prod): string[] =>
        p.factors.map((f) => (typeof f === "string" ? f : `(${text(f)})`)).sort();
      const bx = bag(x);
      const by = bag(y);
      return x.coeff === y.coeff && bx.length === by.length && bx.every((f, i) => f === by[i]);
    }
    return text(x) === text(y);
  });
}
