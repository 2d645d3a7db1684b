/**
 * The IR as a diagram: DOT generated from `graph.nodes`, laid out by Graphviz (`@viz-js/viz`,
 * Graphviz compiled to WebAssembly) and rasterized to PNG by resvg (`@resvg/resvg-wasm`).
 * @module
 */

import { instance, type Viz } from "npm:@viz-js/viz@3.31.0";
import { initWasm, Resvg } from "npm:@resvg/resvg-wasm@2.6.2";
import type { AnyNode, Graph } from "../graph/ir.ts";
import { formatShape } from "../graph/shape.ts";

// Graphviz sizes boxes from its own metrics for the font it is told; Liberation Sans has Arial's
// metrics, so the text fits the boxes when resvg (and Chromium, via fontconfig) draw it.
const FONT = "Arial";

/**
 * Font files tried for the PNG, in order; the first that exists is used. resvg-wasm cannot
 * read system fonts itself, so they are passed as buffers. Debian: fonts-liberation (which
 * Chromium pulls in) or fonts-dejavu-core.
 */
const FONT_FILES: readonly { file: string; family: string }[] = [
  {
    file: "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    family: "Liberation Sans",
  },
  { file: "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", family: "DejaVu Sans" },
];

/**
 * Thrown by {@linkcode rasterizeSvg} when none of the fonts it draws text with is installed.
 *
 * @example
 * ```ts
 * import { NoFontError } from "./graph_diagram.ts";
 * new NoFontError("no font") instanceof Error; // true
 * ```
 */
export class NoFontError extends Error {
  /** The message names the font files looked for and the package that installs them. */
  constructor(message: string) {
    super(message);
    this.name = "NoFontError";
  }
}

const FILL: Readonly<Record<string, string>> = {
  input: "#d9f2d9",
  param: "#eeeeee",
};

/**
 * Options of the diagram functions.
 *
 * @example
 * ```ts
 * import type { DiagramOptions } from "./graph_diagram.ts";
 * const o: DiagramOptions = { collapseBlocks: true };
 * ```
 */
export interface DiagramOptions {
  /**
   * Draw a stack of repeated blocks (stages labelled `blocks.0`, `blocks.1`, ... as `vit` and
   * `vitEncoder` label them) as block 0 in full and one box for all the others, so a 12-block
   * ViT stays a readable picture (default false: every node).
   */
  readonly collapseBlocks?: boolean;
}

/**
 * The graph as Graphviz DOT: one box per node (its name, op and stage label), edges from each
 * input to its consumer labelled with the producer's shape, and a final `output` edge labelled
 * with the output shape. With `collapseBlocks`, blocks 1..L-1 of a stack of L >= 2 blocks
 * become one box (`blocks`) that every edge into or out of them goes through.
 *
 * @example
 * ```ts
 * import { graph } from "../mod.ts";
 * import { graphToDot } from "./graph_diagram.ts";
 * const g = graph("f", (b) => b.flatten(b.input("x", [2, 3, 4]), 1, 2));
 * graphToDot(g).includes('n0 -> n1 [label="[2, 3, 4]"]'); // true
 * ```
 */
export function graphToDot(graph: Graph, options: DiagramOptions = {}): string {
  const lines = [
    `digraph ${quote(graph.name)} {`,
    "  rankdir=TB;",
    `  graph [fontname=${quote(FONT)}, fontsize=12, bgcolor="white", nodesep=0.3, ranksep=0.45];`,
    `  node [shape=box, style="rounded,filled", fillcolor="#dde8f7", fontname=${
      quote(FONT)
    }, fontsize=11];`,
    `  edge [fontname=${quote(FONT)}, fontsize=10, color="#555555"];`,
  ];
  const stack = options.collapseBlocks ? blockStack(graph) : undefined;
  const hidden = (id: number): boolean =>
    stack !== undefined && id > stack.first && id <= stack.last;
  const key = (id: number): string => (hidden(id) ? "blocks" : `n${id}`);
  for (const n of graph.nodes) {
    if (hidden(n.id)) continue;
    lines.push(`  n${n.id} [label=${quote(nodeText(n))}, fillcolor=${quote(fillOf(n))}];`);
  }
  if (stack) {
    const inside = graph.nodes.filter((n) => hidden(n.id));
    const params = inside.filter((n) => n.op === "param").length;
    const { names } = stack;
    const text = names.length === 1
      ? `${names[0]}\n1 more block like ${stack.head}\n`
      : `${names[0]} … ${
        names[names.length - 1]
      }\n${names.length} more blocks like ${stack.head}\n`;
    const label = `${text}(${inside.length} nodes, ${params} parameters)`;
    lines.push(
      `  blocks [label=${quote(label)}, shape=box3d, style=filled, fillcolor="#f7e7c6"];`,
    );
  }
  const edges = new Set<string>();
  for (const n of graph.nodes) {
    for (const i of n.inputs) {
      const from = key(i);
      const to = key(n.id);
      if (from === to) continue; // inside the collapsed blocks
      const edge = `  ${from} -> ${to} [label=${quote(formatShape(graph.nodes[i].shape))}];`;
      if (!edges.has(edge)) lines.push(edge);
      edges.add(edge);
    }
  }
  // The output's shape has no consumer edge to sit on, so give it one.
  lines.push(`  output [shape=plaintext, style="", label="output"];`);
  lines.push(`  ${key(graph.output)} -> output [label=${quote(formatShape(graph.outShape))}];`);
  lines.push("}");
  return lines.join("\n") + "\n";
}

/**
 * The stack of blocks `blocks.0` ... `blocks.{L-1}` (L >= 2) by their labelled outputs, when
 * the nodes of block i lie between block i-1's output and block i's (as the builders make them):
 * `first` is block 0's output id, `last` block L-1's, `names` the collapsed blocks' labels.
 */
function blockStack(
  graph: Graph,
): { first: number; last: number; head: string; names: string[] } | undefined {
  const outputs: number[] = [];
  for (const n of graph.nodes) {
    const m = n.label === undefined ? null : /^blocks\.(\d+)$/.exec(n.label);
    if (m) outputs[Number(m[1])] = n.id;
  }
  if (outputs.length < 2) return undefined;
  for (let i = 0; i < outputs.length; i++) {
    if (outputs[i] === undefined || (i > 0 && outputs[i] <= outputs[i - 1])) return undefined;
  }
  const names = outputs.slice(1).map((_, i) => `blocks.${i + 1}`);
  return { first: outputs[0], last: outputs[outputs.length - 1], head: "blocks.0", names };
}

/**
 * The graph laid out by Graphviz (`dot`) as an SVG document.
 *
 * @example
 * ```ts
 * import { graph } from "../mod.ts";
 * import { renderGraphSvg } from "./graph_diagram.ts";
 * const g = graph("f", (b) => b.flatten(b.input("x", [2, 3, 4]), 1, 2));
 * const svg = await renderGraphSvg(g); // "<?xml ...><svg ...>...</svg>"
 * ```
 */
export async function renderGraphSvg(graph: Graph, options: DiagramOptions = {}): Promise<string> {
  const dot = graphToDot(graph, options);
  return (await graphviz()).renderString(dot, { format: "svg", engine: "dot" });
}

/**
 * An SVG document rasterized to PNG bytes by resvg, on white, magnified `scale` times. Text
 * uses the first font of Liberation Sans / DejaVu Sans found under /usr/share/fonts; throws
 * a {@linkcode NoFontError} when neither is installed.
 *
 * @example
 * ```ts
 * import { rasterizeSvg } from "./graph_diagram.ts";
 * const svg = '<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"/>';
 * const png = await rasterizeSvg(svg, 2); // an 8x8 PNG
 * ```
 */
export async function rasterizeSvg(svg: string, scale = 2): Promise<Uint8Array> {
  const [, font] = await Promise.all([resvgReady(), loadFont()]);
  const resvg = new Resvg(svg, {
    background: "white",
    fitTo: { mode: "zoom", value: scale },
    font: {
      fontBuffers: [font.data],
      loadSystemFonts: false,
      defaultFontFamily: font.family,
      sansSerifFamily: font.family,
    },
  });
  try {
    const rendered = resvg.render();
    try {
      return rendered.asPng();
    } finally {
      rendered.free();
    }
  } finally {
    resvg.free();
  }
}

/**
 * The graph diagram as PNG bytes: `renderGraphSvg` rasterized by `rasterizeSvg`.
 *
 * @example
 * ```ts
 * import { graph } from "../mod.ts";
 * import { renderGraphPng } from "./graph_diagram.ts";
 * const g = graph("f", (b) => b.flatten(b.input("x", [2, 3, 4]), 1, 2));
 * await Deno.writeFile("graph.png", await renderGraphPng(g));
 * ```
 */
export async function renderGraphPng(
  graph: Graph,
  scale = 2,
  options: DiagramOptions = {},
): Promise<Uint8Array> {
  return rasterizeSvg(await renderGraphSvg(graph, options), scale);
}

function nodeText(n: AnyNode): string {
  const stage = n.label ? `\nstage: ${n.label}` : "";
  return `${n.name}\n${n.op} ${formatShape(n.shape)}${stage}`;
}

function fillOf(n: AnyNode): string {
  return FILL[n.op] ?? (n.label ? "#c6dbf5" : "#dde8f7");
}

// A DOT string literal: `\n` stays a DOT line break, quotes and backslashes are escaped.
function quote(s: string): string {
  return `"${s.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`;
}

// Both WASM modules are large: load each once, on first use.
let vizInstance: Promise<Viz> | undefined;
let resvgInit: Promise<void> | undefined;
let font: Promise<{ data: Uint8Array; family: string }> | undefined;

function graphviz(): Promise<Viz> {
  return vizInstance ??= instance();
}

function resvgReady(): Promise<void> {
  resvgInit ??= (async () => {
    // The wasm ships inside the npm package; resolve it next to the package's JS.
    const url = new URL(import.meta.resolve("npm:@resvg/resvg-wasm@2.6.2/index_bg.wasm"));
    await initWasm(await Deno.readFile(url));
  })();
  return resvgInit;
}

function loadFont(): Promise<{ data: Uint8Array; family: string }> {
  font ??= (async () => {
    for (const { file, family } of FONT_FILES) {
      try {
        return { data: await Deno.readFile(file), family };
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      }
    }
    font = undefined; // let a later call retry after the fonts are installed
    throw new NoFontError(
      `no font to draw the graph's text: install one of ${
        FONT_FILES.map((f) => f.file).join(", ")
      } (apt-get install -y fonts-liberation)`,
    );
  })();
  return font;
}
