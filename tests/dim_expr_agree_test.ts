// Property tests for symbolic dim arithmetic (graph/dim_expr.ts and graph/dim_expr_types.ts).
//
// fast-check draws random expression trees from a fixed seed: names and small or large
// numbers, combined with mulDims / productOf / addDims / addConst / floorDivDim / evaluateDim.
//   1. Agreement: each tree runs at run time (a dim, or an Error), then becomes type-level
//      assertions in ONE generated file, checked by one `deno check`: the same tree of type
//      operations (`MulDims<AddConst<"H", -13>, 4>`) gives exactly the runtime dim, or `number`
//      where the runtime throws; the runtime string is a fixed point of `EvalDim`; evaluating it
//      under random bindings agrees; `SameDim` agrees with `sameDim`.
//   2. Soundness (run time only): evaluating the built dim under random numeric bindings is
//      plain integer arithmetic on the tree. A number the runtime returns is the exact value;
//      where every intermediate of the tree is a safe integer >= 0, the runtime returns it.
// TESSERA_SEED=<n> draws another sample (exploration only; the default seed is fixed).
import assert from "node:assert/strict";
import { denoCheck, errorsIn } from "./deno_check.ts";
// deno.json has no import map; npm deps are pinned by full specifier.
import fc from "npm:fast-check@4.3.0";
import type { Dim } from "../graph/shape.ts";
import {
  addConst,
  addDims,
  dimNames,
  evaluateDim,
  floorDivDim,
  mulDims,
  productOf,
  sameDim,
} from "../graph/dim_expr.ts";

/** The fast-check seed; printed so a failing run can be reproduced. */
const SEED = Number(Deno.env.get("TESSERA_SEED") ?? 0xd1e5);
const RUNS = 300;
const MAX = Number.MAX_SAFE_INTEGER;

const url = (path: string): string => new URL(path, import.meta.url).href;

// ---- random expression trees -------------------------------------------------------------------

/** One tree of runtime operations; leaves are names or sizes. */
type Expr =
  | { readonly k: "leaf"; readonly d: Dim }
  | { readonly k: "raw"; readonly s: string }
  | { readonly k: "mul" | "add"; readonly a: Expr; readonly b: Expr }
  | { readonly k: "addc"; readonly a: Expr; readonly c: number }
  | { readonly k: "div"; readonly a: Expr; readonly q: number }
  | { readonly k: "prod"; readonly xs: readonly Expr[] }
  | { readonly k: "eval"; readonly a: Expr; readonly env: readonly (readonly [string, Expr])[] };

const NAMES = ["B", "N", "H", "W", "Dh", "x_1"] as const;

const size = fc.oneof(
  { weight: 8, arbitrary: fc.integer({ min: 0, max: 20 }) },
  { weight: 2, arbitrary: fc.constantFrom(1, 2, 16, 32, 196, 224, 768) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 2 ** 26 }) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: MAX }) },
  { weight: 1, arbitrary: fc.integer({ min: MAX - 1000, max: MAX }) },
);
/**
 * A raw string in the grammar, not canonical (extra parentheses, any order, subtraction, which
 * throws for a symbolic subtrahend), sometimes with a character spliced in, mostly a fault.
 * Splices add no names, so the bindings cover every name.
 */
const { raw } = fc.letrec<{ raw: string }>((tie) => ({
  raw: fc.oneof(
    { maxDepth: 3, depthIdentifier: "raw" },
    fc.constantFrom(...NAMES),
    fc.integer({ min: 0, max: 30 }).map(String),
    fc.tuple(tie("raw"), fc.constantFrom("+", "-", "*", "*", "/"), tie("raw")).map((t) =>
      t.join("")
    ),
    tie("raw").map((r) => `(${r})`),
  ),
}));
const spliced = fc.tuple(raw, fc.nat(), fc.constantFrom(" ", "*", "(", ")", "-", "+", ".", "$"))
  .map(([r, i, c]) => r.slice(0, i % (r.length + 1)) + c + r.slice(i % (r.length + 1)));
const leaf: fc.Arbitrary<Expr> = fc.oneof(
  // Few raw strings: one fault anywhere makes the whole tree throw.
  { weight: 24, arbitrary: fc.constantFrom(...NAMES).map((d): Expr => ({ k: "leaf", d })) },
  { weight: 16, arbitrary: size.map((d): Expr => ({ k: "leaf", d })) },
  { weight: 3, arbitrary: raw.map((s): Expr => ({ k: "raw", s })) },
  { weight: 1, arbitrary: spliced.map((s): Expr => ({ k: "raw", s })) },
);
const constant = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: -40, max: 40 }) },
  { weight: 1, arbitrary: fc.integer({ min: -MAX, max: MAX }) },
);
const divisor = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(1, 2, 3, 4, 7, 16, 32) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 2 ** 20 }) },
  { weight: 1, arbitrary: fc.constantFrom(0, MAX) },
);

const { expr } = fc.letrec<{ expr: Expr }>((tie) => {
  const sub = tie("expr");
  return {
    expr: fc.oneof(
      { maxDepth: 4, depthIdentifier: "expr", depthSize: "small" },
      leaf,
      fc.record({ k: fc.constantFrom("mul" as const, "add" as const), a: sub, b: sub }),
      fc.record({ k: fc.constant("addc" as const), a: sub, c: constant }),
      fc.record({ k: fc.constant("div" as const), a: sub, q: divisor }),
      fc.record({ k: fc.constant("prod" as const), xs: fc.array(sub, { maxLength: 4 }) }),
      fc.record({
        k: fc.constant("eval" as const),
        a: sub,
        env: fc.uniqueArray(fc.tuple(fc.constantFrom(...NAMES), sub), {
          selector: ([n]) => n,
          maxLength: 3,
        }),
      }),
    ),
  };
});

/** Numeric bindings for every name, mostly small so that products stay safe. */
const bindings = fc.record(
  Object.fromEntries(
    NAMES.map((n) => [
      n,
      fc.oneof(
        { weight: 8, arbitrary: fc.integer({ min: 0, max: 40 }) },
        { weight: 1, arbitrary: fc.integer({ min: 0, max: 2 ** 20 }) },
      ),
    ]),
  ) as Record<(typeof NAMES)[number], fc.Arbitrary<number>>,
);

/** Every name in a tree, raw strings included. */
function namesIn(e: Expr, out = new Set<string>()): Set<string> {
  switch (e.k) {
    case "leaf":
      if (typeof e.d === "string") out.add(e.d);
      break;
    case "raw":
      for (const n of e.s.match(/[A-Za-z_]\w*/g) ?? []) out.add(n);
      break;
    case "mul":
    case "add":
      namesIn(e.a, out);
      namesIn(e.b, out);
      break;
    case "addc":
    case "div":
      namesIn(e.a, out);
      break;
    case "prod":
      e.xs.forEach((x) => namesIn(x, out));
      break;
    case "eval":
      namesIn(e.a, out);
      e.env.forEach(([n, x]) => namesIn(x, out.add(n)));
  }
  return out;
}

/** `env` plus a fixed small value for each other name in `trees` (a splice can split a name). */
function complete(env: Readonly<Record<string, number>>, ...trees: Expr[]): Record<string, number> {
  const out: Record<string, number> = { ...env };
  for (const e of trees) for (const n of namesIn(e)) out[n] ??= (n.charCodeAt(0) * n.length) % 23;
  return out;
}

/** A drawn case: a tree, bindings for the soundness check, and a second tree to compare with. */
const caseArb = fc.record({ expr, env: bindings, other: expr });
type Case = { readonly expr: Expr; readonly env: Readonly<Record<string, number>>; other: Expr };

// ---- the runtime side --------------------------------------------------------------------------

type Outcome = { ok: true; dim: Dim } | { ok: false; error: string };

function attempt(f: () => Dim): Outcome {
  try {
    return { ok: true, dim: f() };
  } catch (e) {
    if (!(e instanceof Error) || e.constructor !== Error) throw e; // only plain Errors
    assert.ok(!e.message.includes("\n"), `a one-line message: ${e.message}`);
    return { ok: false, error: e.message };
  }
}

/** Builds the tree with the runtime functions (throws where one of them throws). */
function build(e: Expr): Dim {
  switch (e.k) {
    case "leaf":
      return e.d;
    case "raw":
      return evaluateDim(e.s, {});
    case "mul":
      return mulDims(build(e.a), build(e.b));
    case "add":
      return addDims(build(e.a), build(e.b));
    case "addc":
      return addConst(build(e.a), e.c);
    case "div":
      return floorDivDim(build(e.a), e.q);
    case "prod":
      return productOf(e.xs.map(build));
    case "eval": {
      const env = Object.fromEntries(e.env.map(([n, v]) => [n, build(v)]));
      return evaluateDim(build(e.a), env);
    }
  }
}

const lit = (d: Dim): string => (typeof d === "number" ? String(d) : JSON.stringify(d));

/** The call in readable form. */
function show(e: Expr): string {
  switch (e.k) {
    case "leaf":
      return lit(e.d);
    case "raw":
      return `evaluateDim(${JSON.stringify(e.s)}, {})`;
    case "mul":
      return `mulDims(${show(e.a)}, ${show(e.b)})`;
    case "add":
      return `addDims(${show(e.a)}, ${show(e.b)})`;
    case "addc":
      return `addConst(${show(e.a)}, ${e.c})`;
    case "div":
      return `floorDivDim(${show(e.a)}, ${e.q})`;
    case "prod":
      return `productOf([${e.xs.map(show).join(", ")}])`;
    case "eval":
      return `evaluateDim(${show(e.a)}, {${
        e.env.map(([n, v]) => ` ${n}: ${show(v)}`).join(",")
      } })`;
  }
}

/** The same tree as type operations. */
function typeOf(e: Expr): string {
  switch (e.k) {
    case "leaf":
      return lit(e.d);
    case "raw":
      return `EvalDim<${JSON.stringify(e.s)}>`;
    case "mul":
      return `MulDims<${typeOf(e.a)}, ${typeOf(e.b)}>`;
    case "add":
      return `AddDims<${typeOf(e.a)}, ${typeOf(e.b)}>`;
    case "addc":
      return `AddConst<${typeOf(e.a)}, ${e.c}>`;
    case "div":
      return `FloorDivDim<${typeOf(e.a)}, ${e.q}>`;
    case "prod":
      return `ProductOf<[${e.xs.map(typeOf).join(", ")}]>`;
    case "eval":
      return `EvalDim<${typeOf(e.a)}, { ${
        e.env.map(([n, v]) => `${n}: ${typeOf(v)}`).join("; ")
      } }>`;
  }
}

const envType = (env: Readonly<Record<string, Dim>>): string =>
  `{ ${Object.entries(env).map(([n, v]) => `${n}: ${lit(v)}`).join("; ")} }`;
const expected = (o: Outcome): string => (o.ok ? lit(o.dim) : "number");

// ---- the reference arithmetic ------------------------------------------------------------------

const BIG_MAX = BigInt(MAX);
const floorDiv = (a: bigint, q: bigint): bigint => (a >= 0n ? a / q : -((-a + q - 1n) / q));

/**
 * The tree's value under numeric bindings, in unbounded integers (`bounded`: undefined as soon
 * as an intermediate is negative or beyond 2^53 - 1). Undefined for a division by 0.
 */
function value(e: Expr, env: ReadonlyMap<string, bigint>, bounded: boolean): bigint | undefined {
  const ok = (v: bigint | undefined): bigint | undefined =>
    v === undefined || (bounded && (v < 0n || v > BIG_MAX)) ? undefined : v;
  const of = (x: Expr): bigint | undefined => value(x, env, bounded);
  switch (e.k) {
    case "leaf":
      return typeof e.d === "number" ? BigInt(e.d) : env.get(e.d);
    case "raw": {
      // Only valid strings reach here: the build throws on a fault.
      const o = oracle(e.s, Object.fromEntries([...env].map(([n, v]) => [n, Number(v)])));
      return o.outside && bounded ? undefined : o.v;
    }
    case "mul":
    case "add": {
      const a = of(e.a);
      const b = of(e.b);
      if (a === undefined || b === undefined) return undefined;
      return ok(e.k === "mul" ? a * b : a + b);
    }
    case "addc": {
      const a = of(e.a);
      return a === undefined ? undefined : ok(a + BigInt(e.c));
    }
    case "div": {
      const a = of(e.a);
      return a === undefined || e.q === 0 ? undefined : ok(floorDiv(a, BigInt(e.q)));
    }
    case "prod": {
      let acc: bigint | undefined = 1n;
      for (const x of e.xs) {
        const v = of(x);
        acc = acc === undefined || v === undefined ? undefined : ok(acc * v);
      }
      return acc;
    }
    case "eval": {
      // Bindings are values under the outer bindings, substituted simultaneously.
      const inner = new Map(env);
      for (const [n, x] of e.env) {
        const v = of(x);
        if (v === undefined) return undefined;
        inner.set(n, v);
      }
      return value(e.a, inner, bounded);
    }
  }
}

/**
 * A dim string evaluated in unbounded integers by an evaluator independent of dim_expr.ts (the
 * grammar's precedence, left associative, floor division), noting whether any intermediate left
 * [0, 2^53 - 1]: exactly where the spec lets the runtime throw.
 */
function oracle(d: Dim, env: Readonly<Record<string, number>>): { v: bigint; outside: boolean } {
  if (typeof d === "number") return { v: BigInt(d), outside: false };
  const toks = d.match(/\d+|[A-Za-z_]\w*|[-+*\/()]/g) ?? [];
  let at = 0;
  let outside = false;
  const note = (v: bigint): bigint => {
    if (v < 0n || v > BIG_MAX) outside = true;
    return v;
  };
  const operand = (): bigint => {
    const t = toks[at++];
    if (t !== "(") return /^\d/.test(t) ? BigInt(t) : BigInt(env[t]);
    const v = sum();
    at++; // ")"
    return v;
  };
  const product = (): bigint => {
    let v = operand();
    while (toks[at] === "*" || toks[at] === "/") {
      const op = toks[at++];
      const r = operand();
      v = note(op === "*" ? v * r : floorDiv(v, r));
    }
    return v;
  };
  const sum = (): bigint => {
    let v = product();
    while (toks[at] === "+" || toks[at] === "-") {
      const op = toks[at++];
      const r = product();
      v = note(op === "+" ? v + r : v - r);
    }
    return v;
  };
  return { v: sum(), outside };
}

// ---- the generated type-level file -------------------------------------------------------------

const HEADER = `// Generated by tests/dim_expr_agree_test.ts; one block per case.
import type {
  AddConst, AddDims, EvalDim, FloorDivDim, MulDims, ProductOf, SameDim,
} from "${url("../graph/dim_expr_types.ts")}";
type IsAny<T> = 0 extends 1 & T ? true : false;
/** Mutual assignability; \`any\` never passes, \`number\` is not a literal. */
type Exact<A, B> = IsAny<A> extends true ? false
  : [A] extends [B] ? ([B] extends [A] ? true : false)
  : false;
// The harness can fail: each of these wrong claims must be rejected.
// @ts-expect-error the factor order is not canonical
export const selfCheck0: Exact<MulDims<"B", 3>, "3*B"> = true;
// @ts-expect-error a throwing runtime call is \`number\`, not a literal
export const selfCheck1: Exact<AddConst<5, -6>, -1> = true;
// @ts-expect-error a literal is not \`number\`
export const selfCheck2: Exact<MulDims<"B", 3>, number> = true;
`;

interface Generated {
  readonly source: string;
  /** Generated line number -> the case and the claim on it. */
  readonly lines: Map<number, { c: number; what: string }>;
  /** Generated line number -> the type expression that line asserts on. */
  readonly exprs: Map<number, string>;
}

function generate(cases: readonly Case[]): Generated {
  const out = HEADER.split("\n");
  out.pop();
  const lines = new Map<number, { c: number; what: string }>();
  const exprs = new Map<number, string>();
  let n = 0;
  const claim = (c: number, what: string, type: string, want: string): void => {
    out.push(`export const a${n++}: Exact<${type}, ${want}> = true;`);
    lines.set(out.length, { c, what: `${type} is ${want}` + (what ? ` (${what})` : "") });
    exprs.set(out.length, type);
  };
  cases.forEach((k, c) => {
    out.push(`// case ${c}: ${show(k.expr)}`);
    const built = attempt(() => build(k.expr));
    claim(c, "the runtime result", typeOf(k.expr), expected(built));
    if (!built.ok) return;
    const d = lit(built.dim);
    const all = complete(k.env, k.expr);
    claim(c, "a fixed point", `EvalDim<${d}>`, d);
    const env = Object.fromEntries(
      dimNames(built.dim).filter((_, i) => i % 2 === 0).map((n) => [n, all[n]]),
    );
    claim(
      c,
      "bindings",
      `EvalDim<${d}, ${envType(env)}>`,
      expected(attempt(() => evaluateDim(built.dim, env))),
    );
    const other = attempt(() => build(k.other));
    if (other.ok) {
      claim(
        c,
        `vs ${show(k.other)}`,
        `SameDim<${d}, ${lit(other.dim)}>`,
        String(sameDim(built.dim, other.dim)),
      );
    }
    claim(c, "", `SameDim<${typeOf(k.expr)}, ${d}>`, "true");
  });
  return { source: out.join("\n") + "\n", lines, exprs };
}

/** The types the failing claims actually computed, read from a probe file's errors. */
async function probe(dir: string, types: readonly string[]): Promise<string[]> {
  const head = HEADER.split("\n").slice(0, 4);
  const src = [...head, ...types.map((t, i) => `export const p${i}: ${t} = Symbol("probe");`)];
  const file = `${dir}/probe.ts`;
  await Deno.writeTextFile(file, src.join("\n") + "\n");
  const seen = types.map(() => "(no error: accepts a symbol?)");
  for (const [, msg, line] of errorsIn((await denoCheck(file)).stderr, "probe.ts")) {
    const m = msg.match(/is not assignable to type '(.*)'\.$/);
    if (line - head.length - 1 in seen) seen[line - head.length - 1] = m ? m[1] : `(${msg})`;
  }
  return seen;
}

// ---- the tests ---------------------------------------------------------------------------------

Deno.test(`dim arithmetic: the type level prints exactly what the runtime does (seed ${SEED})`, async () => {
  const cases = fc.sample(caseArb, { seed: SEED, numRuns: RUNS }) as Case[];
  const built = cases.map((k) => attempt(() => build(k.expr)));
  const strings = built.filter((o) => o.ok && typeof o.dim === "string").length;
  const errors = built.filter((o) => !o.ok).length;
  console.log(`${cases.length} cases: ${strings} symbolic, ${errors} runtime errors`);
  // The sample must exercise the interesting forms, not just numbers.
  const text = built.map((o) => (o.ok ? String(o.dim) : "")).join(" ");
  for (const form of ["*", "+", "-", "/", "("]) {
    assert.ok(text.includes(form), `a dim with ${form}`);
  }
  assert.ok(strings >= RUNS / 3 && errors >= 5, "a mix of symbolic results and errors");

  const dir = await Deno.makeTempDir({ prefix: "dim_expr_agree_" });
  try {
    const { source, lines, exprs } = generate(cases);
    const file = `${dir}/cases.ts`;
    await Deno.writeTextFile(file, source);
    const t0 = performance.now();
    const { code, stderr } = await denoCheck(file);
    const ms = Math.round(performance.now() - t0);
    console.log(
      `deno check: ${lines.size} assertions in ${source.split("\n").length} lines, ${ms} ms`,
    );
    if (code === 0) return;
    const errs = errorsIn(stderr, "cases.ts");
    const failures: string[] = errs.length ? [] : [`deno check failed:\n${stderr}`];
    const bad = errs.filter(([, , n]) => lines.has(n));
    for (const [ts, msg, n] of errs) {
      if (!lines.has(n)) failures.push(`generated line ${n}: ${ts} ${msg}`);
    }
    const computed = await probe(dir, bad.map(([, , n]) => exprs.get(n)!));
    bad.forEach(([ts, msg, n], i) => {
      const { c, what } = lines.get(n)!;
      const why = msg.startsWith("Type 'true' is not assignable") ? "" : ` (${ts}: ${msg})`;
      failures.push(
        `case ${c} ${show(cases[c].expr)}:\n    claim ${what}${why}\n    computed ${computed[i]}`,
      );
    });
    assert.fail(`${failures.length} failures (seed ${SEED}):\n${failures.join("\n")}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test(`dim arithmetic: evaluating a built dim is integer arithmetic on the tree (seed ${SEED})`, () => {
  const tally = { checked: 0, exact: 0, buildErrors: 0, zeroOverflow: 0 };
  fc.assert(
    fc.property(caseArb, ({ expr: e, env: drawn }) => {
      const env = complete(drawn, e);
      const b = attempt(() => build(e));
      if (!b.ok) {
        tally.buildErrors++;
        return;
      }
      const names = new Map(Object.entries(env).map(([n, v]) => [n, BigInt(v)]));
      const r = attempt(() => evaluateDim(b.dim, env));
      const exact = value(e, names, false);
      const canon = oracle(b.dim, env);
      const where = `${show(e)} = ${lit(b.dim)} under ${envType(env)}`;
      tally.checked++;
      assert.equal(canon.v, exact, `${where}: the built dim has the tree's value`);
      if (r.ok) {
        // A number the runtime returns is the exact value of the tree ...
        assert.equal(BigInt(r.dim), exact, where);
        assert.ok(!canon.outside, `${where}: an out-of-range intermediate was missed`);
        tally.exact++;
        return;
      }
      // ... and it throws only where an intermediate of the built dim leaves [0, 2^53 - 1].
      assert.ok(canon.outside, `${where}: ${r.error}`);
      // Where the tree's own intermediates all stay in range, that is an overflow a zero factor
      // cancels later ("(B+C)*B*(B/38)" with B < 38): the spec checks every intermediate.
      if (value(e, names, true) !== undefined) {
        assert.match(r.error, /beyond 2\^53 - 1/, where);
        tally.zeroOverflow++;
      }
    }),
    { seed: SEED, numRuns: RUNS },
  );
  console.log(JSON.stringify(tally));
  assert.ok(tally.exact >= RUNS / 2, "most cases evaluate to a number");
});

Deno.test("dim arithmetic: binary operations are the arithmetic of their operands", () => {
  // The brief's form of soundness: evaluateDim(mulDims(a, b), env) is a * b, and so on.
  const operand = expr.filter((e) => attempt(() => build(e)).ok);
  fc.assert(
    fc.property(operand, operand, bindings, divisor, constant, (a, b, drawn, q, c) => {
      const env = complete(drawn, a, b);
      const names = new Map(Object.entries(env).map(([n, v]) => [n, BigInt(v)]));
      const va = value(a, names, false);
      const vb = value(b, names, false);
      assert.ok(va !== undefined && vb !== undefined, "built operands have values");
      const [da, db] = [build(a), build(b)];
      const run = (label: string, f: () => Dim, want: bigint): void => {
        const where = `${label} with a = ${lit(da)}, b = ${lit(db)} under ${envType(env)}`;
        const built = attempt(f);
        if (!built.ok) return; // a symbolic coefficient or constant out of range: checked above
        const canon = oracle(built.dim, env);
        assert.equal(canon.v, want, where);
        const o = attempt(() => evaluateDim(built.dim, env));
        // With every intermediate in range the result is exact; otherwise it throws.
        assert.deepEqual(o.ok, !canon.outside, `${where}: ${o.ok ? "" : o.error}`);
        if (o.ok) assert.equal(BigInt(o.dim), want, where);
      };
      run("mulDims", () => mulDims(da, db), va * vb);
      run("addDims", () => addDims(da, db), va + vb);
      run(`addConst ${c}`, () => addConst(da, c), va + BigInt(c));
      if (q > 0) run(`floorDivDim ${q}`, () => floorDivDim(da, q), floorDiv(va, BigInt(q)));
    }),
    { seed: SEED, numRuns: RUNS },
  );
});
