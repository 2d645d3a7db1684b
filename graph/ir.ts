/**
 * The IR: a small, plain-data graph in the spirit of torch.fx. Nodes are topologically ordered
 * (every input id is smaller than the node's id), carry their op, attributes and resolved shape,
 * and print as a summary table.
 * @module
 */

import type { TShape } from "./shape_types.ts";
import { type Dim, formatShape } from "./shape.ts";
import type { AttrsOfOp, ComputeKind } from "../ops/registry.ts";

/**
 * How a parameter is initialized when no weights are loaded, following PyTorch's defaults.
 *
 * @example
 * ```ts
 * import type { ParamInit } from "./ir.ts";
 * const convWeight: ParamInit = { kind: "kaiming_uniform", fanIn: 3 * 16 * 16 };
 * ```
 */
export type ParamInit =
  // `fanIn` is symbolic only inside a block's sub-graph; inlining binds it to a size.
  | { readonly kind: "kaiming_uniform"; readonly fanIn: Dim }
  | { readonly kind: "bias_uniform"; readonly fanIn: Dim }
  | { readonly kind: "randn" }
  | { readonly kind: "zeros" }
  | { readonly kind: "ones" };

/**
 * Attributes of every IR op, leaves included.
 *
 * @example
 * ```ts
 * import type { AttrsOf } from "./ir.ts";
 * const a: AttrsOf["param"] = { name: "cls_token", init: { kind: "randn" } };
 * ```
 */
export type AttrsOf =
  & { input: { readonly name: string }; param: { readonly name: string; readonly init: ParamInit } }
  & { [K in ComputeKind]: AttrsOfOp<K> };

/**
 * Every IR op kind.
 *
 * @example
 * ```ts
 * import type { OpKind } from "./ir.ts";
 * const k: OpKind = "input";
 * ```
 */
export type OpKind = keyof AttrsOf;

/**
 * One IR node of op kind `K`.
 *
 * @example
 * ```ts
 * import type { Node } from "./ir.ts";
 * const n: Node<"flatten"> = {
 *   id: 2, op: "flatten", name: "flatten_2", inputs: [1], attrs: { start: 2, end: 3 },
 *   shape: ["B", 3, 196],
 * };
 * ```
 */
export interface Node<K extends OpKind = OpKind> {
  /** Position in `Graph.nodes`. */
  readonly id: number;
  /** The op. */
  readonly op: K;
  /** Unique name: the parameter or input name for leaves, `<op>_<id>` otherwise. */
  readonly name: string;
  /** Ids of the input nodes, in the op's argument order. */
  readonly inputs: readonly number[];
  /** The op's attributes. */
  readonly attrs: AttrsOf[K];
  /** The output shape; may hold symbolic dims until the graph is specialized. */
  readonly shape: readonly Dim[];
  /** A stage name (e.g. `"patches"`) so the value can be asked for by name. */
  readonly label?: string;
  /** More stage names for the same value (timm's `features` is the last block's output when
   * its final norm is the identity). */
  readonly aliases?: readonly string[];
}

/**
 * A node of any kind, as a union that narrows on `op`.
 *
 * @example
 * ```ts
 * import type { AnyNode } from "./ir.ts";
 * function describe(n: AnyNode): string {
 *   return n.op === "param" ? n.attrs.name : n.op;
 * }
 * ```
 */
export type AnyNode = { [K in OpKind]: Node<K> }[OpKind];

/**
 * A built graph: nodes in topological order and one output. `Out` is the output's shape as
 * the type checker computed it.
 *
 * @example
 * ```ts
 * import { graph } from "./builder.ts";
 * const g = graph("double-flatten", (b) => b.flatten(b.input("x", [2, 3, 4]), 1, 2));
 * g.outShape; // [2, 12], typed as [2, 12]
 * console.log(g.summary());
 * ```
 */
export class Graph<Out extends TShape = TShape> {
  /** The graph's name. */
  readonly name: string;
  /** Nodes in topological order. */
  readonly nodes: readonly AnyNode[];
  /** Id of the output node. */
  readonly output: number;

  /** Wraps already-validated nodes; use `graph()` to build one. */
  constructor(name: string, nodes: readonly AnyNode[], output: number) {
    this.name = name;
    this.nodes = nodes;
    this.output = output;
  }

  /** The output shape (symbolic dims stay symbolic). */
  get outShape(): Out {
    return this.nodes[this.output].shape as unknown as Out;
  }

  /** The input nodes, in declaration order. */
  inputs(): Node<"input">[] {
    return this.nodes.filter((n): n is Node<"input"> => n.op === "input");
  }

  /** The parameter nodes, in declaration order (PyTorch `state_dict` order for the builders). */
  params(): Node<"param">[] {
    return this.nodes.filter((n): n is Node<"param"> => n.op === "param");
  }

  /** The node labelled `label` (or aliased so), or the node named `label`. */
  find(label: string): AnyNode | undefined {
    return this.nodes.find((n) => n.label === label || n.aliases?.includes(label)) ??
      this.nodes.find((n) => n.name === label);
  }

  /** The stage labels (aliases included) in node order. */
  labels(): string[] {
    return this.nodes.flatMap((n) => (n.label ? [n.label, ...(n.aliases ?? [])] : []));
  }

  /** A torchinfo-like table: one row per node with its op, inputs, shape and attributes. */
  summary(): string {
    const rows = this.nodes.map((n) => [
      `%${n.id}`,
      n.label ? `${n.name} (${[n.label, ...(n.aliases ?? [])].join(", ")})` : n.name,
      n.op,
      n.inputs.map((i) => `%${i}`).join(", "),
      formatShape(n.shape),
      formatAttrs(n),
    ]);
    const header = ["id", "name", "op", "inputs", "shape", "attrs"];
    const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)));
    const line = (r: string[]): string => r.map((v, c) => v.padEnd(widths[c])).join("  ").trimEnd();
    const params = this.params().reduce((s, p) => s + countOf(p.shape), 0);
    return [
      `graph ${this.name}`,
      line(header),
      line(widths.map((w) => "-".repeat(w))),
      ...rows.map(line),
      `output: %${this.output} ${formatShape(this.outShape)}; parameters: ${params}`,
    ].join("\n");
  }

  /** Same as `summary()`. */
  toString(): string {
    return this.summary();
  }
}

function countOf(shape: readonly Dim[]): number {
  return shape.reduce<number>((s, d) => s * (typeof d === "number" ? d : 1), 1);
}

function formatAttrs(n: AnyNode): string {
  if (n.op === "input") return "";
  if (n.op === "param") return `init=${n.attrs.init.kind}`;
  return Object.entries(n.attrs)
    .map(([k, v]) => `${k}=${Array.isArray(v) ? formatShape(v) : String(v)}`)
    .join(" ");
}
