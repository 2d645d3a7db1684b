// Property tests (fast-check) of the runtime shape rules and the reference semantics:
// random valid tokenizer configs give the closed-form shapes at every node, reshape round-trips,
// conv with kernel = stride is patchify + matmul, and random invalid configs throw ShapeError
// (never another exception, never a wrongly shaped result). Sizes are plain `number`s, so the
// type checker leaves every decision to the runtime rules.
import assert from "node:assert/strict";
import fc from "npm:fast-check@4.3.0";
import {
  bindShape,
  compile,
  type Dim,
  type Graph,
  graph,
  initParams,
  interpret,
  numel,
  patchEmbedding,
  seedTokenizer,
  ShapeError,
  specialize,
  type TDim,
  type TensorData,
} from "../mod.ts";

/** A small deterministic PRNG (mulberry32): values in [-1, 1). */
function randomData(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((t ^ (t >>> 14)) >>> 0) / 2 ** 31 - 1;
  }
  return out;
}

/** Reads `t[index]` of a concrete row-major tensor. */
function at(t: TensorData, ...index: number[]): number {
  let flat = 0;
  for (let i = 0; i < index.length; i++) flat = flat * t.shape[i] + index[i];
  return t.data[flat];
}

// ---------------------------------------------------------------------------------------------
// Valid tokenizer configs: shapes at every node, and the stage semantics.

const validConfig = fc.record({
  batch: fc.integer({ min: 1, max: 3 }),
  symbolic: fc.boolean(),
  channels: fc.integer({ min: 1, max: 4 }),
  patch: fc.integer({ min: 1, max: 8 }),
  h: fc.integer({ min: 1, max: 6 }),
  w: fc.integer({ min: 1, max: 6 }),
  embedding: fc.integer({ min: 1, max: 24 }),
  standard: fc.boolean(),
  seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
});
type ValidConfig = typeof validConfig extends fc.Arbitrary<infer T> ? T : never;

function buildTokenizer(c: ValidConfig): Graph {
  const sizes = {
    height: c.h * c.patch,
    width: c.w * c.patch,
    patch: c.patch,
    embedding: c.embedding,
    channels: c.channels,
    batch: (c.symbolic ? "B" : c.batch) as TDim,
  };
  if (c.standard) return patchEmbedding(sizes);
  // The seed's Linear hard-codes 3 in-features: other channel counts need `generalized`.
  return c.channels === 3 ? seedTokenizer(sizes) : seedTokenizer({ ...sizes, generalized: true });
}

Deno.test("property: every node's shape is the closed form, and matches interpret()", () => {
  fc.assert(
    fc.property(validConfig, (c) => {
      const g = buildTokenizer(c);
      const { batch: B, channels: C, embedding: D, h, w, patch: P } = c;
      const N = h * w;
      const batchDim: Dim = c.symbolic ? "B" : B;
      assert.deepEqual(g.outShape, [batchDim, N + 1, D]);

      const { graph: concrete, bindings } = specialize(g, { image: [B, C, h * P, w * P] });
      assert.deepEqual(bindings, c.symbolic ? { B } : {});
      // The symbolic graph's shapes, once bound, are the ones specialization re-infers.
      g.nodes.forEach((n, i) =>
        assert.deepEqual(bindShape(n.shape, bindings), concrete.nodes[i].shape)
      );

      const weights = initParams(g, c.seed % 1000);
      const image = {
        shape: [B, C, h * P, w * P],
        data: randomData(B * C * h * P * w * P, c.seed),
      };
      const values = interpret(concrete, { image }, weights);
      assert.equal(values.length, concrete.nodes.length);
      concrete.nodes.forEach((n, i) => {
        assert.ok(n.shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0), n.name);
        assert.deepEqual(values[i].shape, n.shape, n.name);
        assert.equal(values[i].data.length, numel(n.shape as number[]), n.name);
      });

      const stage = (label: string): TensorData => {
        const node = concrete.find(label);
        assert.ok(node, label);
        return values[node.id];
      };
      const expected: Record<string, number[]> = c.standard
        ? {
          patches: [B, D, h, w],
          tokens: [B, N, D],
          with_class_token: [B, N + 1, D],
          output: [B, N + 1, D],
        }
        : {
          patches: [B, C, h, w],
          tokens: [B, N, C],
          embeddings: [B, N, D],
          with_class_token: [B, N + 1, D],
          output: [B, N + 1, D],
        };
      assert.deepEqual(concrete.labels(), Object.keys(expected));
      for (const [label, shape] of Object.entries(expected)) {
        assert.deepEqual(stage(label).shape, shape, label);
      }

      // Stage semantics: the seed's reshape keeps the buffer, timm's transpose swaps axes; the
      // class token is row 0 of every batch; the positional embedding is broadcast over batch.
      const patches = stage("patches");
      const tokens = stage("tokens");
      if (c.standard) {
        for (let b = 0; b < B; b++) {
          for (let n = 0; n < N; n++) {
            for (let d = 0; d < D; d++) {
              assert.equal(at(tokens, b, n, d), at(patches, b, d, Math.floor(n / w), n % w));
            }
          }
        }
      } else {
        assert.deepEqual(tokens.data, patches.data);
      }
      const before = c.standard ? tokens : stage("embeddings");
      const withCls = stage("with_class_token");
      const output = stage("output");
      const cls = weights.get(
        c.standard ? "cls_token" : "class_token_prepender.class_token_vector",
      );
      const pos = weights.get(
        c.standard ? "pos_embed" : "positional_embedding.positional_embedding",
      );
      assert.ok(cls && pos);
      for (let b = 0; b < B; b++) {
        for (let t = 0; t <= N; t++) {
          for (let d = 0; d < D; d++) {
            const x: number = t === 0 ? cls.data[d] : at(before, b, t - 1, d);
            assert.equal(at(withCls, b, t, d), x);
            assert.equal(at(output, b, t, d), Math.fround(x + at(pos, 0, t, d)));
          }
        }
      }
    }),
    { numRuns: 300 },
  );
});

Deno.test("property: compile().run() agrees with interpret() and the closed-form shape", async () => {
  await fc.assert(
    fc.asyncProperty(validConfig, async (c) => {
      const g = buildTokenizer(c);
      const { batch: B, channels: C, patch: P } = c;
      const model = await compile(g, { backend: "reference", seed: c.seed % 1000 });
      const image = {
        shape: [B, C, c.h * P, c.w * P],
        data: randomData(B * C * c.h * P * c.w * P, c.seed),
      };
      const { output, stages } = await model.run({ image }, { stages: "all" });
      assert.deepEqual(output.shape, [B, c.h * c.w + 1, c.embedding]);
      const concrete = specialize(g, { image: image.shape }).graph;
      const values = interpret(concrete, { image }, initParams(g, c.seed % 1000));
      assert.deepEqual(output.data, values[concrete.output].data);
      for (const [label, value] of Object.entries(stages)) {
        const node = concrete.find(label);
        assert.ok(node);
        assert.deepEqual(value.shape, node.shape, label);
      }
      model.dispose();
    }),
    { numRuns: 100 },
  );
});

// ---------------------------------------------------------------------------------------------
// Reshape round trip.

/** Groups `factors` into dims, starting a new dim wherever `cuts[i]` is set. */
function grouped(factors: readonly number[], cuts: readonly boolean[]): number[] {
  const dims: number[] = [];
  factors.forEach((f, i) => {
    if (dims.length === 0 || cuts[i]) dims.push(f);
    else dims[dims.length - 1] *= f;
  });
  return dims;
}

const reshapePair = fc
  .record({
    factors: fc.array(fc.integer({ min: 1, max: 5 }), { maxLength: 7 }),
    order: fc.array(fc.nat(), { minLength: 7, maxLength: 7 }),
    cutsA: fc.array(fc.boolean(), { minLength: 7, maxLength: 7 }),
    cutsB: fc.array(fc.boolean(), { minLength: 7, maxLength: 7 }),
    batch: fc.option(fc.integer({ min: 1, max: 3 })),
    seed: fc.nat(),
  })
  .map(({ factors, order, cutsA, cutsB, batch, seed }) => {
    const shuffled = factors
      .map((f, i) => [order[i], f])
      .sort((x, y) => x[0] - y[0])
      .map(([, f]) => f);
    return { from: grouped(factors, cutsA), to: grouped(shuffled, cutsB), batch, seed };
  });

Deno.test("property: reshape to a same-count shape and back is the identity on data", () => {
  fc.assert(
    fc.property(reshapePair, ({ from, to, batch, seed }) => {
      // Optionally lead with a symbolic batch dim, bound at specialization.
      const lead: Dim[] = batch === null ? [] : ["B"];
      const g = graph("round-trip", (b) => {
        const x = b.input("x", [...lead, ...from]);
        const y = b.label(b.reshape(x, [...lead, ...to]), "there");
        return b.reshape(y, [...lead, ...from]);
      });
      const shape = batch === null ? from : [batch, ...from];
      const x = { shape, data: randomData(numel(shape), seed) };
      const concrete = specialize(g, { x: shape }).graph;
      const values = interpret(concrete, { x }, new Map());
      const there = values[(concrete.find("there") ?? assert.fail()).id];
      assert.deepEqual(there.shape, batch === null ? to : [batch, ...to]);
      assert.deepEqual(there.data, x.data);
      assert.deepEqual(values[concrete.output].shape, shape);
      assert.deepEqual(values[concrete.output].data, x.data);
    }),
    { numRuns: 300 },
  );
});

// ---------------------------------------------------------------------------------------------
// conv (kernel = stride) is patchify + matmul.

const convCase = fc.record({
  batch: fc.integer({ min: 1, max: 2 }),
  channels: fc.integer({ min: 1, max: 4 }),
  out: fc.integer({ min: 1, max: 6 }),
  patch: fc.integer({ min: 1, max: 5 }),
  h: fc.integer({ min: 1, max: 4 }),
  w: fc.integer({ min: 1, max: 4 }),
  bias: fc.boolean(),
  seed: fc.nat(),
});

Deno.test("property: conv with kernel = stride equals im2col followed by matmul", () => {
  fc.assert(
    fc.property(convCase, (c) => {
      const { batch: B, channels: C, out: O, patch: P, h, w } = c;
      const [H, W, K] = [h * P, w * P, C * P * P];
      const g = graph("conv", (b) =>
        b.conv2d(b.input("x", [B, C, H, W]), {
          out: O,
          kernel: P,
          stride: P,
          bias: c.bias,
          name: "proj",
        }));
      const x = { shape: [B, C, H, W], data: randomData(B * C * H * W, c.seed) };
      const weight = { shape: [O, C, P, P], data: randomData(O * K, c.seed + 1) };
      const bias = { shape: [O], data: randomData(O, c.seed + 2) };
      const weights = new Map([["proj.weight", weight]]);
      if (c.bias) weights.set("proj.bias", bias);
      const conv = interpret(specialize(g, { x: x.shape }).graph, { x }, weights)[g.output];
      assert.deepEqual(conv.shape, [B, O, h, w]);

      // im2col: one row per patch, its C*P*P values in the weight's (c, ky, kx) order.
      const cols = new Float32Array(B * h * w * K);
      for (let b = 0; b < B; b++) {
        for (let i = 0; i < h; i++) {
          for (let j = 0; j < w; j++) {
            const row = ((b * h + i) * w + j) * K;
            for (let ch = 0; ch < C; ch++) {
              for (let ky = 0; ky < P; ky++) {
                for (let kx = 0; kx < P; kx++) {
                  cols[row + (ch * P + ky) * P + kx] = at(x, b, ch, i * P + ky, j * P + kx);
                }
              }
            }
          }
        }
      }
      // matmul with the weight reshaped to [O, C*P*P], in float64.
      for (let b = 0; b < B; b++) {
        for (let o = 0; o < O; o++) {
          for (let p = 0; p < h * w; p++) {
            let acc = c.bias ? bias.data[o] : 0;
            const row = (b * h * w + p) * K;
            for (let k = 0; k < K; k++) acc += cols[row + k] * weight.data[o * K + k];
            const got = at(conv, b, o, Math.floor(p / w), p % w);
            assert.ok(
              Math.abs(got - acc) <= 1e-5 * Math.max(1, Math.abs(acc)),
              `[${b}, ${o}, ${p}]: conv ${got} vs im2col ${acc}`,
            );
          }
        }
      }

      // The same matmul as a graph: linear on the patches, then back to [B, O, h, w].
      const mm = graph("im2col", (b) => {
        const p = b.input("cols", [B, h * w, K]);
        const y = b.linear(p, { in: K, out: O, bias: c.bias, name: "m" });
        return b.reshape(b.transpose(y, 1, 2), [B, O, h, w]);
      });
      const mmWeights = new Map([["m.weight", { shape: [O, K], data: weight.data }]]);
      if (c.bias) mmWeights.set("m.bias", bias);
      const viaLinear = interpret(
        specialize(mm, { cols: [B, h * w, K] }).graph,
        { cols: { shape: [B, h * w, K], data: cols } },
        mmWeights,
      )[mm.output];
      assert.deepEqual(viaLinear.shape, conv.shape);
      viaLinear.data.forEach((v, i) =>
        assert.ok(Math.abs(v - conv.data[i]) <= 1e-5 * Math.max(1, Math.abs(v)))
      );
    }),
    { numRuns: 300 },
  );
});

// ---------------------------------------------------------------------------------------------
// Invalid configs: ShapeError, nothing else.

interface Invalid {
  readonly what: string;
  readonly build: () => Graph;
}

const base = fc.record({
  batch: fc.integer({ min: 1, max: 3 }),
  channels: fc.integer({ min: 1, max: 4 }),
  patch: fc.integer({ min: 1, max: 8 }),
  h: fc.integer({ min: 1, max: 6 }),
  w: fc.integer({ min: 1, max: 6 }),
  embedding: fc.integer({ min: 1, max: 24 }),
  standard: fc.boolean(),
});

/** The tokenizer written out with the builder, with hooks to break one step. */
function manualTokenizer(
  c: { batch: number; channels: number; patch: number; h: number; w: number; embedding: number },
  broken: { tokens?: Dim[]; linearIn?: number; posShape?: number[]; clsWidth?: number },
): Graph {
  const { batch: B, channels: C, patch: P, embedding: D } = c;
  const N = c.h * c.w;
  return graph("manual", (g) => {
    const x = g.input("image", [B, C, c.h * P, c.w * P]);
    const patches = g.conv2d(x, { out: C, kernel: P, stride: P, name: "conv" });
    const tokens = g.reshape(g.flatten(patches, 2, 3), broken.tokens ?? [B, N, C]);
    const emb = g.linear(tokens, { in: broken.linearIn ?? C, out: D, name: "emb" });
    const cls = g.param("cls", [1, 1, broken.clsWidth ?? D]);
    const withCls = g.prependToken(emb, cls);
    return g.addParam(withCls, { name: "pos", shape: broken.posShape ?? [1, N + 1, D] });
  });
}

/** A value other than `right`, and (when `notOne`) other than 1, which would broadcast. */
const wrong = (right: number, notOne = false) =>
  fc.integer({ min: 0, max: 30 }).filter((v) => v !== right && !(notOne && v === 1));

const invalidCase: fc.Arbitrary<Invalid> = fc.oneof(
  // Image size the patch does not divide.
  fc.tuple(base, fc.integer({ min: 1, max: 7 }), fc.boolean()).filter(([c, r]) => r < c.patch).map(
    ([c, r, inHeight]): Invalid => {
      const sizes = {
        height: c.h * c.patch + (inHeight ? r : 0),
        width: c.w * c.patch + (inHeight ? 0 : r),
        patch: c.patch,
        embedding: c.embedding,
        channels: c.channels,
      };
      return {
        what: `not divisible ${JSON.stringify(sizes)}`,
        build: () =>
          c.standard ? patchEmbedding(sizes) : seedTokenizer({ ...sizes, generalized: true }),
      };
    },
  ),
  // A zero, negative, fractional or non-finite size.
  fc.tuple(
    base,
    fc.constantFrom("height", "width", "patch", "embedding", "channels"),
    fc.constantFrom(0, -1, -8, 0.5, 2.5, NaN, Infinity, -Infinity, 2 ** 53),
  ).map(([c, key, value]): Invalid => {
    const sizes = {
      height: c.h * c.patch,
      width: c.w * c.patch,
      patch: c.patch,
      embedding: c.embedding,
      channels: c.channels,
      [key]: value,
    };
    return {
      what: `bad size ${key} = ${value}`,
      build: () =>
        c.standard ? patchEmbedding(sizes) : seedTokenizer({ ...sizes, generalized: true }),
    };
  }),
  // The seed with a channel count its Linear (3 in-features) cannot take.
  base.filter((c) => c.channels !== 3).map((c): Invalid => ({
    what: `seed with ${c.channels} channels`,
    build: () =>
      seedTokenizer({
        height: c.h * c.patch,
        width: c.w * c.patch,
        patch: c.patch,
        embedding: c.embedding,
        channels: c.channels,
      }),
  })),
  // Positional embedding with the wrong token count, width or leading dim.
  base.chain((c) => {
    const tokens = c.h * c.w + 1;
    // A dim of 1 in the tokens broadcasts against anything, so only dims > 1 can be wrong
    // (tokens = N + 1 >= 2 always): any value other than the right one or 1.
    const shapes = [wrong(tokens, true).map((t) => [1, t, c.embedding])];
    if (c.embedding > 1) shapes.push(wrong(c.embedding, true).map((d) => [1, tokens, d]));
    if (c.batch > 1) shapes.push(wrong(c.batch, true).map((l) => [l, tokens, c.embedding]));
    return fc.oneof(...shapes).map((posShape): Invalid => ({
      what: `pos embed ${JSON.stringify(posShape)} on [${c.batch}, ${tokens}, ${c.embedding}]`,
      build: () => manualTokenizer(c, { posShape }),
    }));
  }),
  // Class token of the wrong width. Width 1 is left out: the runtime rule wrongly broadcasts a
  // [1, 1, 1] token to [B, 1, D] (the type rule rejects it; see shape_errors_test.ts).
  base.chain((c) =>
    wrong(c.embedding, true).map((clsWidth): Invalid => ({
      what: `class token width ${clsWidth} vs ${c.embedding}`,
      build: () => manualTokenizer(c, { clsWidth }),
    }))
  ),
  // A reshape whose element count differs.
  base.chain((c) =>
    fc.tuple(wrong(c.h * c.w), wrong(c.channels)).chain(([n, ch]) =>
      fc.constantFrom<Dim[]>([c.batch, n, c.channels], [c.batch, c.h * c.w, ch], [c.batch, n, ch])
        .filter((t) => numel(t as number[]) !== c.batch * c.h * c.w * c.channels)
        .map((tokens): Invalid => ({
          what: `reshape to ${JSON.stringify(tokens)}`,
          build: () => manualTokenizer(c, { tokens }),
        }))
    )
  ),
  // A Linear whose in-features differ from the tokens' width.
  base.chain((c) =>
    wrong(c.channels).map((linearIn): Invalid => ({
      what: `linear in ${linearIn} on width ${c.channels}`,
      build: () => manualTokenizer(c, { linearIn }),
    }))
  ),
);

Deno.test("property: invalid configs throw ShapeError, never anything else or a result", () => {
  fc.assert(
    fc.property(invalidCase, ({ what, build }) => {
      let result: Graph | undefined;
      try {
        result = build();
      } catch (e) {
        assert.ok(e instanceof ShapeError, `${what}: threw ${e}`);
        assert.ok(e.op.length > 0 && e.node.length > 0, what);
        return;
      }
      assert.fail(
        `${what}: no error; built a graph with output ${JSON.stringify(result.outShape)}`,
      );
    }),
    { numRuns: 1000 },
  );
});

Deno.test("the manual tokenizer (no breakage) builds: the invalid cases break exactly one step", () => {
  fc.assert(
    fc.property(base, (c) => {
      const g = manualTokenizer(c, {});
      assert.deepEqual(g.outShape, [c.batch, c.h * c.w + 1, c.embedding]);
    }),
    { numRuns: 50 },
  );
});
