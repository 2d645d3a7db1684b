// Type-level assertions shared by the compile-time tests (`deno check` proves them).
import type { Graph, ShapeErrorType, Tensor } from "../mod.ts";

/** Exact type equality (tells `number` from literals, `readonly` from mutable, `never`). */
export type Equal<X, Y> = (<T>() => T extends X ? 1 : 2) extends (<T>() => T extends Y ? 1 : 2)
  ? true
  : false;
/** Fails to compile unless `T` is `true`. */
export type Expect<T extends true> = T;
/** `true` when `T` is `never`. */
export type IsNever<T> = [T] extends [never] ? true : false;
/** The static shape of a tensor or a graph. */
export type ShapeOf<T> = T extends Tensor<infer S> ? S : T extends Graph<infer S> ? S : never;
/** `true` when `C` is the failing check whose message is exactly `M`. */
export type IsError<C, M extends string> = Equal<C, ShapeErrorType<M>>;
/** A value-level `Expect`, usable inside graph callbacks. */
export function expectType<T extends true>(): void {}
