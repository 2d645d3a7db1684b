/**
 * A minimal WebAssembly binary writer: one imported shared memory, functions over `i32`,
 * `f32` and `v128` locals, and the handful of core and SIMD instructions the generated kernels
 * use. binaryen does this job in general, but loading it costs 110-150 ms here (measured), most
 * of the 200 ms compile budget, and a 94 MB download; the subset needed fits in this file.
 * @module
 */

/** Value types of locals and parameters. */
export const I32 = 0x7f;
/** `f32`. */
export const F32 = 0x7d;
/** `v128`. */
export const V128 = 0x7b;

/** A value type byte: `I32`, `F32` or `V128`. */
export type ValueType = typeof I32 | typeof F32 | typeof V128;

function unsignedLeb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

function signedLeb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const byte = n & 0x7f;
    n >>= 7;
    const done = (n === 0 && (byte & 0x40) === 0) || (n === -1 && (byte & 0x40) !== 0);
    out.push(done ? byte : byte | 0x80);
    if (done) return out;
  }
}

function vector(items: readonly number[][]): number[] {
  return [...unsignedLeb(items.length), ...items.flat()];
}

function section(id: number, body: number[]): number[] {
  return [id, ...unsignedLeb(body.length), ...body];
}

function utf8(s: string): number[] {
  const bytes = [...new TextEncoder().encode(s)];
  return [...unsignedLeb(bytes.length), ...bytes];
}

/** Natural alignment (log2 bytes) per access width. */
const ALIGN = { 4: 2, 16: 4 } as const;

/**
 * Emits one function body's instructions. Memory offsets are byte offsets folded into the
 * instruction's immediate, so a generated kernel's constant strides cost nothing at run time.
 *
 * @example
 * ```ts
 * import { Code, I32 } from "./encoder.ts";
 * const c = new Code([I32]);
 * c.localGet(0).i32Const(1).op(Code.I32_ADD);
 * c.bytes.length; // 5
 * ```
 */
export class Code {
  /** `i32.add`. */
  static readonly I32_ADD = 0x6a;
  /** `i32.sub`. */
  static readonly I32_SUB = 0x6b;
  /** `i32.mul`. */
  static readonly I32_MUL = 0x6c;
  /** `i32.lt_u`. */
  static readonly I32_LT_U = 0x49;
  /** `i32.ne`. */
  static readonly I32_NE = 0x47;

  /** The instruction bytes so far. */
  readonly bytes: number[] = [];
  /** Parameter types, then declared locals. */
  readonly locals: ValueType[];
  readonly #params: number;

  /** `params` are the function's parameter types; `local()` adds more locals. */
  constructor(params: readonly ValueType[]) {
    this.locals = [...params];
    this.#params = params.length;
  }

  /** Declares a local of `type` and returns its index. */
  local(type: ValueType): number {
    this.locals.push(type);
    return this.locals.length - 1;
  }

  /** Appends a one-byte opcode. */
  op(code: number): this {
    this.bytes.push(code);
    return this;
  }

  /** `local.get`. */
  localGet(i: number): this {
    this.bytes.push(0x20, ...unsignedLeb(i));
    return this;
  }

  /** `local.set`. */
  localSet(i: number): this {
    this.bytes.push(0x21, ...unsignedLeb(i));
    return this;
  }

  /** `i32.const`. */
  i32Const(n: number): this {
    this.bytes.push(0x41, ...signedLeb(n | 0));
    return this;
  }

  /** `f32.load` at `offset` bytes past the address on the stack. */
  f32Load(offset: number): this {
    this.bytes.push(0x2a, ALIGN[4], ...unsignedLeb(offset));
    return this;
  }

  /** `i32.load` at `offset` bytes past the address on the stack. */
  i32Load(offset: number): this {
    this.bytes.push(0x28, ALIGN[4], ...unsignedLeb(offset));
    return this;
  }

  /** `v128.load` at `offset` bytes past the address on the stack. */
  v128Load(offset: number): this {
    return this.#simd(0x00).#memarg(16, offset);
  }

  /** `v128.store` (address, then value, on the stack). */
  v128Store(offset: number): this {
    return this.#simd(0x0b).#memarg(16, offset);
  }

  /** `v128.const` of four zero lanes. */
  v128Zero(): this {
    this.#simd(0x0c);
    this.bytes.push(...new Array(16).fill(0));
    return this;
  }

  /** `f32x4.splat`. */
  f32x4Splat(): this {
    return this.#simd(0x13);
  }

  /** `f32x4.add`. */
  f32x4Add(): this {
    return this.#simd(0xe4);
  }

  /** `f32x4.mul`. */
  f32x4Mul(): this {
    return this.#simd(0xe6);
  }

  /** `f32x4.sub`. */
  f32x4Sub(): this {
    return this.#simd(0xe5);
  }

  /** `v128.or`. */
  v128Or(): this {
    return this.#simd(0x50);
  }

  /** `v128.any_true`: 1 when any bit is set. */
  v128AnyTrue(): this {
    return this.#simd(0x53);
  }

  /** `f32x4.relaxed_madd` (a * b + c, fused where the CPU has FMA). */
  /**
   * Any SIMD instruction without immediates, by its opcode after the 0xfd prefix (f32x4.min is
   * 0xe8, v128.bitselect 0x52, i32x4.shl 0xab, ...), for the kernels with no named method.
   *
   * @example
   * ```ts
   * import { Code } from "./encoder.ts";
   * new Code([]).simd(0xe8).bytes; // [0xfd, 0xe8, 0x01]
   * ```
   */
  simd(code: number): this {
    return this.#simd(code);
  }

  /**
   * `v128.const` of one f32 in all four lanes.
   *
   * @example
   * ```ts
   * import { Code } from "./encoder.ts";
   * new Code([]).f32x4Const(1).bytes.length; // 18
   * ```
   */
  f32x4Const(value: number): this {
    const lane = new Uint8Array(new Float32Array([value]).buffer);
    this.#simd(0x0c);
    for (let i = 0; i < 4; i++) this.bytes.push(...lane);
    return this;
  }

  /**
   * `v128.const` of one i32 in all four lanes.
   *
   * @example
   * ```ts
   * import { Code } from "./encoder.ts";
   * new Code([]).i32x4Const(127).bytes.length; // 18
   * ```
   */
  i32x4Const(value: number): this {
    const lane = new Uint8Array(new Int32Array([value]).buffer);
    this.#simd(0x0c);
    for (let i = 0; i < 4; i++) this.bytes.push(...lane);
    return this;
  }

  f32x4RelaxedMadd(): this {
    return this.#simd(0x105);
  }

  /** `loop` with no result: `body` emits the loop's instructions; `br 0` inside repeats it. */
  loop(body: (c: this) => void): this {
    this.bytes.push(0x03, 0x40);
    body(this);
    this.bytes.push(0x0b);
    return this;
  }

  /** `br_if` to enclosing label `depth`. */
  brIf(depth: number): this {
    this.bytes.push(0x0d, ...unsignedLeb(depth));
    return this;
  }

  /** The function's code entry: its local declarations, body and `end`. */
  encode(): number[] {
    const declared = this.locals.slice(this.#params);
    const groups: number[][] = [];
    for (let i = 0; i < declared.length;) {
      let j = i;
      while (j < declared.length && declared[j] === declared[i]) j++;
      groups.push([...unsignedLeb(j - i), declared[i]]);
      i = j;
    }
    const body = [...vector(groups), ...this.bytes, 0x0b];
    return [...unsignedLeb(body.length), ...body];
  }

  #simd(code: number): this {
    this.bytes.push(0xfd, ...unsignedLeb(code));
    return this;
  }

  #memarg(width: 4 | 16, offset: number): this {
    this.bytes.push(ALIGN[width], ...unsignedLeb(offset));
    return this;
  }
}

/** One exported function of a module. */
export interface WasmFunction {
  /** Export name. */
  readonly name: string;
  /** Parameter types. */
  readonly params: readonly ValueType[];
  /** Result types: what the body leaves on the stack; none by default. */
  readonly results?: readonly ValueType[];
  /** The body. */
  readonly code: Code;
}

/**
 * Encodes a module that imports `env.memory` (shared, `pages` 64 KiB pages, fixed size) and
 * exports `functions`.
 *
 * @example
 * ```ts
 * import { Code, encodeModule, I32 } from "./encoder.ts";
 * const bytes = encodeModule([{ name: "noop", params: [I32], code: new Code([I32]) }], 1);
 * WebAssembly.validate(bytes); // true
 * ```
 */
export function encodeModule(
  functions: readonly WasmFunction[],
  pages: number,
): Uint8Array<ArrayBuffer> {
  const types = functions.map((f) => [
    0x60,
    ...vector(f.params.map((p) => [p])),
    ...vector((f.results ?? []).map((r) => [r])),
  ]);
  // Limits flag 3: shared, with a maximum.
  const memory = [
    ...utf8("env"),
    ...utf8("memory"),
    0x02,
    0x03,
    ...unsignedLeb(pages),
    ...unsignedLeb(pages),
  ];
  const bytes = [
    0x00,
    0x61,
    0x73,
    0x6d,
    0x01,
    0x00,
    0x00,
    0x00,
    ...section(1, vector(types)),
    ...section(2, vector([memory])),
    ...section(3, vector(functions.map((_, i) => unsignedLeb(i)))),
    ...section(7, vector(functions.map((f, i) => [...utf8(f.name), 0x00, ...unsignedLeb(i)]))),
    ...section(10, vector(functions.map((f) => f.code.encode()))),
  ];
  return new Uint8Array(bytes);
}
