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
  /** `i32.eqz`. */
  static readonly I32_EQZ = 0x45;
  /** `i32.eq`. */
  static readonly I32_EQ = 0x46;
  /** `i32.lt_s`. */
  static readonly I32_LT_S = 0x48;
  /** `i32.gt_s`. */
  static readonly I32_GT_S = 0x4a;
  /** `i32.le_s`. */
  static readonly I32_LE_S = 0x4c;
  /** `i32.ge_s`. */
  static readonly I32_GE_S = 0x4e;
  /** `i32.div_s` (truncating). */
  static readonly I32_DIV_S = 0x6d;
  /** `i32.div_u`. */
  static readonly I32_DIV_U = 0x6e;
  /** `i32.rem_s` (the sign of the dividend). */
  static readonly I32_REM_S = 0x6f;
  /** `i32.rem_u`. */
  static readonly I32_REM_U = 0x70;
  /** `i32.and`. */
  static readonly I32_AND = 0x71;
  /** `i32.or`. */
  static readonly I32_OR = 0x72;
  /** `i32.xor`. */
  static readonly I32_XOR = 0x73;
  /** `i32.shl`. */
  static readonly I32_SHL = 0x74;
  /** `i32.shr_s`. */
  static readonly I32_SHR_S = 0x75;
  /** `i32.shr_u`. */
  static readonly I32_SHR_U = 0x76;
  /** `select`: the first operand when the i32 on top is non-zero, else the second. */
  static readonly SELECT = 0x1b;
  /** `drop`. */
  static readonly DROP = 0x1a;
  /** `f32.abs`. */
  static readonly F32_ABS = 0x8b;
  /** `f32.neg`. */
  static readonly F32_NEG = 0x8c;
  /** `f32.sqrt`. */
  static readonly F32_SQRT = 0x91;
  /** `f32.add`. */
  static readonly F32_ADD = 0x92;
  /** `f32.sub`. */
  static readonly F32_SUB = 0x93;
  /** `f32.mul`. */
  static readonly F32_MUL = 0x94;
  /** `f32.div`. */
  static readonly F32_DIV = 0x95;
  /** `f32.min` (NaN if either is). */
  static readonly F32_MIN = 0x96;
  /** `f32.max` (NaN if either is). */
  static readonly F32_MAX = 0x97;
  /** `f32.eq`. */
  static readonly F32_EQ = 0x5b;
  /** `f32.lt`. */
  static readonly F32_LT = 0x5d;
  /** `f32.le`. */
  static readonly F32_LE = 0x5f;

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

  /**
   * `local.tee`: sets local `i` and leaves the value on the stack.
   *
   * @example
   * ```ts
   * import { Code, I32 } from "./encoder.ts";
   * new Code([I32]).i32Const(7).localTee(0).bytes; // [0x41, 7, 0x22, 0]
   * ```
   */
  localTee(i: number): this {
    this.bytes.push(0x22, ...unsignedLeb(i));
    return this;
  }

  /**
   * `f32.const` (the value rounded to float32).
   *
   * @example
   * ```ts
   * import { Code } from "./encoder.ts";
   * new Code([]).f32Const(1).bytes; // [0x43, 0, 0, 0x80, 0x3f]
   * ```
   */
  f32Const(value: number): this {
    this.bytes.push(0x43, ...new Uint8Array(new Float32Array([value]).buffer));
    return this;
  }

  /**
   * Appends the instructions of another `Code` (a fragment built separately; its locals are
   * not copied, so it must use this function's local indices).
   *
   * @example
   * ```ts
   * import { Code, I32 } from "./encoder.ts";
   * const part = new Code([]).i32Const(1);
   * new Code([I32]).append(part).bytes; // [0x41, 1]
   * ```
   */
  append(code: Code): this {
    // A loop, not push(...spread): fragments can be long.
    for (const b of code.bytes) this.bytes.push(b);
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

  /**
   * `f32.store` at `offset` bytes past the address (address, then value, on the stack).
   *
   * @example
   * ```ts
   * import { Code, I32 } from "./encoder.ts";
   * new Code([I32]).localGet(0).f32Const(0).f32Store(8).bytes.length; // 10
   * ```
   */
  f32Store(offset: number): this {
    this.bytes.push(0x38, ALIGN[4], ...unsignedLeb(offset));
    return this;
  }

  /**
   * `v128.load32_splat`: the f32 (or i32) at `offset` bytes past the address, in all four lanes.
   *
   * @example
   * ```ts
   * import { Code, I32 } from "./encoder.ts";
   * new Code([I32]).localGet(0).v128Load32Splat(4).bytes; // [0x20, 0, 0xfd, 0x09, 2, 4]
   * ```
   */
  v128Load32Splat(offset: number): this {
    return this.#simd(0x09).#memarg(4, offset);
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

  /**
   * `f32x4.div`.
   *
   * @example
   * ```ts
   * import { Code } from "./encoder.ts";
   * new Code([]).f32x4Div().bytes; // [0xfd, 0xe7, 0x01]
   * ```
   */
  f32x4Div(): this {
    return this.#simd(0xe7);
  }

  /**
   * `f32x4.min`: NaN where either lane is, and -0 below +0 (as `Math.min`).
   *
   * @example
   * ```ts
   * import { Code } from "./encoder.ts";
   * new Code([]).f32x4Min().bytes; // [0xfd, 0xe8, 0x01]
   * ```
   */
  f32x4Min(): this {
    return this.#simd(0xe8);
  }

  /**
   * `f32x4.max`: NaN where either lane is, and +0 above -0 (as `Math.max`).
   *
   * @example
   * ```ts
   * import { Code } from "./encoder.ts";
   * new Code([]).f32x4Max().bytes; // [0xfd, 0xe9, 0x01]
   * ```
   */
  f32x4Max(): this {
    return this.#simd(0xe9);
  }

  /**
   * `f32x4.abs`.
   *
   * @example
   * ```ts
   * import { Code } from "./encoder.ts";
   * new Code([]).f32x4Abs().bytes; // [0xfd, 0xe0, 0x01]
   * ```
   */
  f32x4Abs(): this {
    return this.#simd(0xe0);
  }

  /**
   * `f32x4.neg`.
   *
   * @example
   * ```ts
   * import { Code } from "./encoder.ts";
   * new Code([]).f32x4Neg().bytes; // [0xfd, 0xe1, 0x01]
   * ```
   */
  f32x4Neg(): this {
    return this.#simd(0xe1);
  }

  /**
   * `f32x4.sqrt` (correctly rounded).
   *
   * @example
   * ```ts
   * import { Code } from "./encoder.ts";
   * new Code([]).f32x4Sqrt().bytes; // [0xfd, 0xe3, 0x01]
   * ```
   */
  f32x4Sqrt(): this {
    return this.#simd(0xe3);
  }

  /**
   * `f32x4.eq`: all ones in the lanes where a == b (false for NaN), else zero.
   *
   * @example
   * ```ts
   * import { Code } from "./encoder.ts";
   * new Code([]).f32x4Eq().bytes; // [0xfd, 0x41]
   * ```
   */
  f32x4Eq(): this {
    return this.#simd(0x41);
  }

  /**
   * `f32x4.ne`: all ones where a != b (true for NaN).
   *
   * @example
   * ```ts
   * import { Code } from "./encoder.ts";
   * new Code([]).f32x4Ne().bytes; // [0xfd, 0x42]
   * ```
   */
  f32x4Ne(): this {
    return this.#simd(0x42);
  }

  /**
   * `f32x4.lt`: all ones where a < b.
   *
   * @example
   * ```ts
   * import { Code } from "./encoder.ts";
   * new Code([]).f32x4Lt().bytes; // [0xfd, 0x43]
   * ```
   */
  f32x4Lt(): this {
    return this.#simd(0x43);
  }

  /**
   * `f32x4.gt`: all ones where a > b.
   *
   * @example
   * ```ts
   * import { Code } from "./encoder.ts";
   * new Code([]).f32x4Gt().bytes; // [0xfd, 0x44]
   * ```
   */
  f32x4Gt(): this {
    return this.#simd(0x44);
  }

  /**
   * `f32x4.le`: all ones where a <= b.
   *
   * @example
   * ```ts
   * import { Code } from "./encoder.ts";
   * new Code([]).f32x4Le().bytes; // [0xfd, 0x45]
   * ```
   */
  f32x4Le(): this {
    return this.#simd(0x45);
  }

  /**
   * `f32x4.convert_i32x4_s`: each signed integer lane as a float.
   *
   * @example
   * ```ts
   * import { Code } from "./encoder.ts";
   * new Code([]).f32x4ConvertI32x4S().bytes; // [0xfd, 0xfa, 0x01]
   * ```
   */
  f32x4ConvertI32x4S(): this {
    return this.#simd(0xfa);
  }

  /**
   * `f32x4.extract_lane`: lane `lane` (0-3) as an f32.
   *
   * @example
   * ```ts
   * import { Code } from "./encoder.ts";
   * new Code([]).f32x4ExtractLane(2).bytes; // [0xfd, 0x1f, 2]
   * ```
   */
  f32x4ExtractLane(lane: number): this {
    return this.#simd(0x1f).#lane(lane);
  }

  /**
   * `f32x4.replace_lane` (vector, then the f32, on the stack).
   *
   * @example
   * ```ts
   * import { Code } from "./encoder.ts";
   * new Code([]).f32x4ReplaceLane(3).bytes; // [0xfd, 0x20, 3]
   * ```
   */
  f32x4ReplaceLane(lane: number): this {
    return this.#simd(0x20).#lane(lane);
  }

  /**
   * `i32x4.splat`.
   *
   * @example
   * ```ts
   * import { Code } from "./encoder.ts";
   * new Code([]).i32Const(-1).i32x4Splat().bytes; // [0x41, 0x7f, 0xfd, 0x11]
   * ```
   */
  i32x4Splat(): this {
    return this.#simd(0x11);
  }

  /**
   * `i32x4.extract_lane`: lane `lane` (0-3) as an i32.
   *
   * @example
   * ```ts
   * import { Code } from "./encoder.ts";
   * new Code([]).i32x4ExtractLane(1).bytes; // [0xfd, 0x1b, 1]
   * ```
   */
  i32x4ExtractLane(lane: number): this {
    return this.#simd(0x1b).#lane(lane);
  }

  /**
   * `i32x4.replace_lane` (vector, then the i32, on the stack).
   *
   * @example
   * ```ts
   * import { Code } from "./encoder.ts";
   * new Code([]).i32x4ReplaceLane(1).bytes; // [0xfd, 0x1c, 1]
   * ```
   */
  i32x4ReplaceLane(lane: number): this {
    return this.#simd(0x1c).#lane(lane);
  }

  /**
   * `i32x4.add`.
   *
   * @example
   * ```ts
   * import { Code } from "./encoder.ts";
   * new Code([]).i32x4Add().bytes; // [0xfd, 0xae, 0x01]
   * ```
   */
  i32x4Add(): this {
    return this.#simd(0xae);
  }

  /**
   * `i32x4.sub`.
   *
   * @example
   * ```ts
   * import { Code } from "./encoder.ts";
   * new Code([]).i32x4Sub().bytes; // [0xfd, 0xb1, 0x01]
   * ```
   */
  i32x4Sub(): this {
    return this.#simd(0xb1);
  }

  /**
   * `i32x4.shl` by the i32 on top of the stack.
   *
   * @example
   * ```ts
   * import { Code } from "./encoder.ts";
   * new Code([]).i32Const(23).i32x4Shl().bytes; // [0x41, 23, 0xfd, 0xab, 0x01]
   * ```
   */
  i32x4Shl(): this {
    return this.#simd(0xab);
  }

  /**
   * `i32x4.shr_s` by the i32 on top of the stack.
   *
   * @example
   * ```ts
   * import { Code } from "./encoder.ts";
   * new Code([]).i32Const(1).i32x4ShrS().bytes; // [0x41, 1, 0xfd, 0xac, 0x01]
   * ```
   */
  i32x4ShrS(): this {
    return this.#simd(0xac);
  }

  /**
   * `i32x4.shr_u` by the i32 on top of the stack.
   *
   * @example
   * ```ts
   * import { Code } from "./encoder.ts";
   * new Code([]).i32Const(23).i32x4ShrU().bytes; // [0x41, 23, 0xfd, 0xad, 0x01]
   * ```
   */
  i32x4ShrU(): this {
    return this.#simd(0xad);
  }

  /**
   * `v128.and`.
   *
   * @example
   * ```ts
   * import { Code } from "./encoder.ts";
   * new Code([]).v128And().bytes; // [0xfd, 0x4e]
   * ```
   */
  v128And(): this {
    return this.#simd(0x4e);
  }

  /**
   * `v128.andnot`: a & ~b.
   *
   * @example
   * ```ts
   * import { Code } from "./encoder.ts";
   * new Code([]).v128AndNot().bytes; // [0xfd, 0x4f]
   * ```
   */
  v128AndNot(): this {
    return this.#simd(0x4f);
  }

  /**
   * `v128.not`.
   *
   * @example
   * ```ts
   * import { Code } from "./encoder.ts";
   * new Code([]).v128Not().bytes; // [0xfd, 0x4d]
   * ```
   */
  v128Not(): this {
    return this.#simd(0x4d);
  }

  /**
   * `v128.xor`.
   *
   * @example
   * ```ts
   * import { Code } from "./encoder.ts";
   * new Code([]).v128Xor().bytes; // [0xfd, 0x51]
   * ```
   */
  v128Xor(): this {
    return this.#simd(0x51);
  }

  /**
   * `v128.bitselect` (a, b, mask on the stack): the bits of a where the mask is set, else b.
   *
   * @example
   * ```ts
   * import { Code } from "./encoder.ts";
   * new Code([]).v128Bitselect().bytes; // [0xfd, 0x52]
   * ```
   */
  v128Bitselect(): this {
    return this.#simd(0x52);
  }

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

  /** `f32x4.relaxed_madd` (a * b + c, fused where the CPU has FMA). */
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

  /**
   * `block` with no result: `body` emits its instructions; `br` to it jumps past its end.
   *
   * @example
   * ```ts
   * import { Code } from "./encoder.ts";
   * new Code([]).block((b) => b.br(0)).bytes; // [0x02, 0x40, 0x0c, 0, 0x0b]
   * ```
   */
  block(body: (c: this) => void): this {
    this.bytes.push(0x02, 0x40);
    body(this);
    this.bytes.push(0x0b);
    return this;
  }

  /**
   * `if` on the i32 on the stack, with an `else` when `otherwise` is given, leaving a value of
   * type `result` when given (then both arms must).
   *
   * @example
   * ```ts
   * import { Code, I32 } from "./encoder.ts";
   * new Code([I32]).localGet(0).ifElse((t) => t.i32Const(1), (e) => e.i32Const(2), I32).bytes;
   * // [0x20, 0, 0x04, 0x7f, 0x41, 1, 0x05, 0x41, 2, 0x0b]
   * ```
   */
  ifElse(then: (c: this) => void, otherwise?: (c: this) => void, result?: ValueType): this {
    this.bytes.push(0x04, result ?? 0x40);
    then(this);
    if (otherwise) {
      this.bytes.push(0x05);
      otherwise(this);
    }
    this.bytes.push(0x0b);
    return this;
  }

  /**
   * `br` to enclosing label `depth` (0: the innermost block, loop or if).
   *
   * @example
   * ```ts
   * import { Code } from "./encoder.ts";
   * new Code([]).br(1).bytes; // [0x0c, 1]
   * ```
   */
  br(depth: number): this {
    this.bytes.push(0x0c, ...unsignedLeb(depth));
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

  #lane(lane: number): this {
    if (!Number.isInteger(lane) || lane < 0 || lane > 3) throw new Error(`wasm: lane ${lane}`);
    this.bytes.push(lane);
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
