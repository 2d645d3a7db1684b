// Unit tests for graph/dim_expr.ts: the canonical forms of every operation, the grammar's
// faults, the error messages, and numbers at the edge of 2^53.
import assert from "node:assert/strict";
import {
  addConst,
  addDims,
  dimNames,
  evaluateDim,
  floorDivDim,
  mulDims,
  parseDimFault,
  productOf,
  sameDim,
} from "../graph/dim_expr.ts";

const MAX = Number.MAX_SAFE_INTEGER; // 9007199254740991

/** Asserts that `f` throws a plain one-line `Error` whose message matches `re`. */
function throwsLine(f: () => unknown, re: RegExp): void {
  assert.throws(f, (e: unknown) => {
    assert.ok(e instanceof Error);
    assert.equal(e.constructor, Error, "a plain Error");
    assert.ok(!e.message.includes("\n"), `one line: ${e.message}`);
    assert.match(e.message, re);
    return true;
  });
}

Deno.test("mulDims: factors in order of first appearance, coefficient last", () => {
  assert.equal(mulDims("B", 3), "B*3");
  assert.equal(mulDims(3, "B"), "B*3");
  assert.equal(mulDims("B*3", 4), "B*12");
  assert.equal(mulDims("H", "W"), "H*W");
  assert.equal(mulDims("W", "H"), "W*H");
  assert.equal(mulDims("B", "B"), "B*B");
  assert.equal(mulDims("B*2", "H*3"), "B*H*6");
  assert.equal(mulDims(6, 7), 42);
  assert.equal(mulDims("B", 1), "B");
  assert.equal(mulDims(1, 1), 1);
});

Deno.test("mulDims: a zero factor gives 0, even next to a symbolic one", () => {
  assert.equal(mulDims("B", 0), 0);
  assert.equal(mulDims(0, "N+1"), 0);
  assert.equal(mulDims("H-13", 0), 0);
  assert.equal(mulDims(0, MAX), 0);
});

Deno.test("mulDims: sums and quotients are parenthesized factors, never double wrapped", () => {
  assert.equal(mulDims("N+1", 3), "(N+1)*3");
  assert.equal(mulDims("(N+1)", 3), "(N+1)*3");
  assert.equal(mulDims("((N+1))", 3), "(N+1)*3");
  assert.equal(mulDims("H/16", "W/16"), "(H/16)*(W/16)");
  assert.equal(mulDims("(N+1)*3", "B"), "(N+1)*B*3");
  assert.equal(mulDims("H-13", "H-13"), "(H-13)*(H-13)");
  // Times 1, a sum or quotient is itself, not a one-factor product "(N+1)".
  assert.equal(mulDims(1, "N+1"), "N+1");
  assert.equal(mulDims("H/16", 1), "H/16");
  assert.equal(productOf(["N+1"]), "N+1");
});

Deno.test("mulDims: non-canonical inputs are canonicalized first", () => {
  assert.equal(mulDims("3*B", 1), "B*3");
  assert.equal(mulDims("2*B*3*H", 1), "B*H*6");
  assert.equal(mulDims("(B*3)", 2), "B*6");
});

Deno.test("productOf: a left fold of mulDims from 1", () => {
  assert.equal(productOf([]), 1);
  assert.equal(productOf([3, 14, 14]), 588);
  assert.equal(productOf(["B", 3, 196]), "B*588");
  assert.equal(productOf(["B", "N+1", 3]), "B*(N+1)*3");
  assert.equal(productOf(["B", 0, "H"]), 0);
  const many = productOf(Array.from({ length: 500 }, () => "B"));
  assert.equal(many, Array.from({ length: 500 }, () => "B").join("*"));
});

Deno.test("addDims: symbolic terms in order, the constant last, sums flattened", () => {
  assert.equal(addDims("N", 1), "N+1");
  assert.equal(addDims(1, "N"), "N+1");
  assert.equal(addDims("N+1", 1), "N+2");
  assert.equal(addDims("N", "M"), "N+M");
  assert.equal(addDims("N+1", "M+2"), "N+M+3");
  assert.equal(addDims("N", "N"), "N+N");
  assert.equal(addDims("B*3", 1), "B*3+1");
  assert.equal(addDims("H/16", 1), "H/16+1");
  assert.equal(addDims(2, 3), 5);
  assert.equal(addDims("N", 0), "N");
  assert.equal(addDims("H-13", 13), "H");
});

Deno.test("addConst: negative constants stay symbolic, numbers must stay >= 0", () => {
  assert.equal(addConst("H", -13), "H-13");
  assert.equal(addConst("H-13", 13), "H");
  assert.equal(addConst("H-13", 14), "H+1");
  assert.equal(addConst("H+1", -14), "H-13");
  assert.equal(addConst("N", 0), "N");
  assert.equal(addConst(10, -3), 7);
  assert.equal(addConst(10, -10), 0);
  assert.equal(addConst("B*3", -1), "B*3-1");
  throwsLine(() => addConst(5, -6), /^addConst\(5, -6\): 5-6 is negative$/);
});

Deno.test("floorDivDim: names bare, other forms parenthesized, divisible coefficients divided", () => {
  assert.equal(floorDivDim("H", 1), "H");
  assert.equal(floorDivDim("H-13", 1), "H-13");
  assert.equal(floorDivDim(224, 16), 14);
  assert.equal(floorDivDim(223, 16), 13);
  assert.equal(floorDivDim(0, 16), 0);
  assert.equal(floorDivDim("H", 16), "H/16");
  assert.equal(floorDivDim("H-13", 16), "(H-13)/16");
  assert.equal(floorDivDim("B*3", 16), "(B*3)/16");
  assert.equal(floorDivDim("B*32", 16), "B*2");
  assert.equal(floorDivDim("B*16", 16), "B");
  assert.equal(floorDivDim("H*W*48", 16), "H*W*3");
  assert.equal(floorDivDim("(N+1)*16", 16), "N+1");
  assert.equal(floorDivDim("H/16", 2), "(H/16)/2");
  assert.equal(floorDivDim("N+1", 2), "(N+1)/2");
  throwsLine(() => floorDivDim("H", 0), /^floorDivDim\("H", 0\): divisor 0 is not a positive/);
  throwsLine(() => floorDivDim("H", 2.5), /divisor 2\.5 is not a positive integer/);
});

Deno.test("floorDivDim: exact near 2^53", () => {
  assert.equal(floorDivDim(MAX, 3), 3002399751580330);
  assert.equal(floorDivDim(MAX, 2), 4503599627370495);
  assert.equal(floorDivDim(MAX - 1, MAX), 0);
  assert.equal(floorDivDim(MAX, MAX), 1);
  assert.equal(floorDivDim(9 * 2 ** 49 - 1, 9), 2 ** 49 - 1);
  assert.equal(evaluateDim("H/7", { H: MAX }), 1286742750677284);
  for (let k = 2; k < 2000; k += 37) {
    const q = Math.floor(MAX / k);
    assert.equal(floorDivDim(q * k - 1, k), q - 1);
    assert.equal(floorDivDim(q * k, k), q);
  }
});

Deno.test("large numbers: exact up to 2^53 - 1, an Error beyond", () => {
  assert.equal(mulDims(MAX, 1), MAX);
  assert.equal(mulDims("B", MAX), `B*${MAX}`);
  assert.equal(addDims(MAX - 1, 1), MAX);
  assert.equal(addConst("N", MAX), `N+${MAX}`);
  assert.equal(addConst("N", -MAX), `N-${MAX}`);
  assert.equal(mulDims(94906265, 94906265), 9007199136250225); // just under 2^53
  throwsLine(() => mulDims(94906266, 94906266), /^mulDims\(94906266, 94906266\): .* beyond 2\^53/);
  throwsLine(() => mulDims(`B*${2 ** 30}`, 2 ** 30), /1073741824\*1073741824 is beyond 2\^53 - 1/);
  throwsLine(() => addDims(MAX, 1), /9007199254740991\+1 is beyond 2\^53 - 1/);
  throwsLine(() => addDims(`N+${MAX}`, 1), /beyond 2\^53 - 1/);
  throwsLine(() => addConst("N", 2 ** 53), /constant 9007199254740992 is not a safe integer/);
  throwsLine(() => mulDims(2 ** 53, 1), /9007199254740992 is not a safe integer >= 0/);
  throwsLine(() => mulDims(-1, 1), /-1 is not a safe integer >= 0/);
  throwsLine(() => mulDims(1.5, 1), /1\.5 is not a safe integer >= 0/);
});

Deno.test("evaluateDim: substitutes, rebuilds, and folds numbers", () => {
  assert.equal(evaluateDim("(N+1)*3", { N: 196 }), 591);
  assert.equal(evaluateDim("H/16", { H: 224 }), 14);
  assert.equal(evaluateDim("B*N", { N: 197 }), "B*197");
  assert.equal(evaluateDim("B*N", {}), "B*N");
  assert.equal(evaluateDim("(H-13)/16+1", { H: 224 }), 14);
  assert.equal(evaluateDim("B*H*W", { H: 14, W: 14 }), "B*196");
  assert.equal(evaluateDim(224, { H: 1 }), 224);
  assert.equal(evaluateDim("N", { N: "M+1" }), "M+1");
  assert.equal(evaluateDim("N*2", { N: "M+1" }), "(M+1)*2");
  assert.equal(evaluateDim("B*N", { N: "B" }), "B*B");
});

Deno.test("evaluateDim: substitution is simultaneous (no capture)", () => {
  assert.equal(evaluateDim("A*B", { A: "B", B: 2 }), "B*2");
  assert.equal(evaluateDim("A+B", { A: "B", B: "A" }), "B+A");
  assert.equal(evaluateDim("X", { X: "X*2" }), "X*2");
});

Deno.test("evaluateDim: with no bindings it canonicalizes, and canonical forms are fixed", () => {
  const canon: [string, string | number][] = [
    ["3*B", "B*3"],
    ["1+N", "N+1"],
    ["(N+1)", "N+1"],
    ["H/16/2", "(H/16)/2"],
    ["B*3/16", "(B*3)/16"],
    ["B/16*3", "(B/16)*3"],
    ["B*32/16", "B*2"],
    ["N+M+N", "N+M+N"], // no collecting of symbolic terms
    ["N-(5-3)", "N-2"],
    ["N+5-3", "N+2"],
    ["(N-5)+5", "N"],
    ["(2+3)*B", "B*5"],
    ["(1-1)*B", 0],
    ["2*(3+4)", 14],
  ];
  for (const [d, want] of canon) {
    assert.equal(evaluateDim(d, {}), want, d);
    assert.equal(evaluateDim(want, {}), want, `${want} is a fixed point`);
  }
});

Deno.test("evaluateDim: errors name the call and the arithmetic", () => {
  throwsLine(
    () => evaluateDim("(H-13)*2", { H: 10 }),
    /^evaluateDim\("\(H-13\)\*2"\): 10-13 is negative$/,
  );
  throwsLine(() => evaluateDim("H/W", {}), /divisor W is not a number/);
  throwsLine(() => evaluateDim("H/0", {}), /division by 0/);
  throwsLine(() => evaluateDim("H/(2-2)", {}), /division by 0/);
  throwsLine(() => evaluateDim("a**b", {}), /^evaluateDim\("a\*\*b"\): expected a name/);
  throwsLine(() => evaluateDim("N", { N: -1 }), /binding N: -1 is not a safe integer >= 0/);
  throwsLine(() => evaluateDim("N", { M: "x y" }), /binding M: unexpected character " "/);
  throwsLine(() => evaluateDim("2-5+N", {}), /2-5 is negative/);
  // Only integers are subtracted: "N+5-M" as "N-M+5" would go negative where it does not.
  throwsLine(
    () => evaluateDim("N-M", {}),
    /^evaluateDim\("N-M"\): cannot subtract the symbolic dim M$/,
  );
  throwsLine(() => evaluateDim("5-N", {}), /cannot subtract the symbolic dim N/);
  throwsLine(() => evaluateDim("N-(M+1)", {}), /cannot subtract the symbolic dim M\+1/);
  assert.equal(evaluateDim("N-M", { M: 3 }), "N-3");
});

Deno.test("evaluateDim: a binding named like an Object.prototype key is looked up safely", () => {
  assert.equal(evaluateDim("constructor*toString", {}), "constructor*toString");
  assert.equal(evaluateDim("constructor", { constructor: 3 }), 3);
});

Deno.test("dimNames: first appearance order, each once", () => {
  assert.deepEqual(dimNames("(H-13)/16*W+H"), ["H", "W"]);
  assert.deepEqual(dimNames("B*3"), ["B"]);
  assert.deepEqual(dimNames("B*0"), ["B"]); // mentioned, though the value is 0
  assert.deepEqual(dimNames(224), []);
  assert.deepEqual(dimNames("x_1+_y*Z9"), ["x_1", "_y", "Z9"]);
  throwsLine(() => dimNames("a b"), /^dimNames\("a b"\): unexpected character/);
  throwsLine(() => dimNames(-1), /-1 is not a safe integer/);
});

Deno.test("parseDimFault: the grammar", () => {
  const valid = ["B", "B*3", "N+1", "H-13", "(H-13)/16+1", "(N+1)*3", "_x9", "a-b-c", "((B))"];
  // "seq-len" is valid, but as seq minus len: names have no dashes.
  for (const ok of [...valid, "seq-len"]) {
    assert.equal(parseDimFault(ok), undefined, ok);
  }
  const faults: [string, RegExp][] = [
    ["", /^empty expression$/],
    ["3", /"3" is a number written as a name; use the size 3/],
    ["Infinity", /name Infinity reads as a number/],
    ["B*Infinity", /name Infinity reads as a number/],
    ["a**b", /expected a name, a number or "\(" at "\*" in "a\*\*b"/],
    ["-3", /expected a name, a number or "\(" at "-"/],
    ["N+", /expected a name, a number or "\(" at the end/],
    ["(a", /unbalanced "\("/],
    ["a)", /unbalanced "\)"/],
    ["()", /expected a name, a number or "\(" at "\)"/],
    ["a(b)", /missing operator before "\("/],
    ["(a)(b)", /missing operator before "\("/],
    ["a 1", /unexpected character " " at 1/],
    ["B * 3", /unexpected character " "/],
    ["1e3", /a number runs into a name/],
    ["3B", /a number runs into a name/],
    ["07", /number 07 has a leading zero/],
    ["B*9007199254740992", /number 9007199254740992 is beyond 2\^53 - 1/],
    ["B.x", /unexpected character "\."/],
  ];
  for (const [d, re] of faults) {
    assert.match(parseDimFault(d) ?? "(valid)", re, JSON.stringify(d));
  }
});

Deno.test("sameDim: products as multisets, other forms by canonical string", () => {
  assert.equal(sameDim("H*W*2", "2*W*H"), true);
  assert.equal(sameDim("B*B*H", "H*B*B"), true);
  assert.equal(sameDim("B*B*H", "H*B*H"), false);
  assert.equal(sameDim("B*3", "B*4"), false);
  assert.equal(sameDim("B", "B*1"), true);
  assert.equal(sameDim("(N+1)*B", "B*(N+1)"), true);
  assert.equal(sameDim("N+1", "1+N"), true);
  assert.equal(sameDim("N+M", "M+N"), false);
  assert.equal(sameDim("H/16", "H/16"), true);
  assert.equal(sameDim(3, 3), true);
  assert.equal(sameDim(3, "B"), false);
  assert.equal(sameDim("2*3", 6), true);
  assert.equal(sameDim(0, "B*0"), true);
  throwsLine(() => sameDim("B", "a b"), /^sameDim\("B", "a b"\): unexpected character/);
});
