// The command line on whole timm ViT checkpoints (issue 13 item 3): sizes read from the tensor
// names and shapes, heads from --heads or --model, logits and every stage written under the
// fixtures' names, --dynamic-size for another patch grid, F16 checkpoints.
import assert from "node:assert/strict";
import { compile, loadSafetensors, saveSafetensors, type TensorData, vit } from "../mod.ts";
import { resamplePosEmbed } from "../models/vit_checkpoint.ts";
import { assertOneLineError, vit as runVit } from "./cli_helpers.ts";
import { exists, fixtureTensor, scaledError } from "./helpers.ts";

const MICRO = new URL("./fixtures/vit/vit_micro.safetensors", import.meta.url).pathname;
const TINY = new URL("../../shared/fixtures/vit/vit_tiny_patch16_224.safetensors", import.meta.url)
  .pathname;
const STAGES = ["tokens", "embedded", "blocks.0", "blocks.1", "features", "pooled", "logits"];

async function tempDir(): Promise<string> {
  return await Deno.makeTempDir({ prefix: "tessera_cli_vit_" });
}

Deno.test("cli: a timm ViT checkpoint writes logits and, with --intermediates, every stage as timm computes them", async () => {
  const dir = await tempDir();
  try {
    const out = `${dir}/out.safetensors`;
    const ran = await runVit(["-A"], [
      "--weights",
      MICRO,
      "--input",
      MICRO,
      "--output",
      out,
      "--heads",
      "2",
      "--intermediates",
      "--backend",
      "wasm",
    ]);
    assert.equal(ran.code, 0, ran.stderr);
    const want = (await loadSafetensors(MICRO)).tensors;
    const got = await loadSafetensors(out);
    assert.deepEqual([...got.tensors.keys()].sort(), [...STAGES].sort());
    for (const name of STAGES) {
      const err = scaledError(fixtureTensor(got.tensors, name), fixtureTensor(want, name));
      assert.ok(err <= 1e-4, `${name}: ${err}`);
    }
    assert.equal(got.metadata.backend, "wasm");
    // Without --intermediates only the logits.
    const only = `${dir}/logits.safetensors`;
    const again = await runVit(["-A"], [
      "--weights",
      MICRO,
      "--input",
      MICRO,
      "--output",
      only,
      "--heads",
      "2",
    ]);
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual([...(await loadSafetensors(only)).tensors.keys()], ["logits"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "cli: --model vit_tiny_patch16_224 gives the heads; the logits match timm",
  ignore: !exists(new URL(`file://${TINY}`)),
  async fn() {
    const dir = await tempDir();
    try {
      const out = `${dir}/out.safetensors`;
      const args = ["--weights", TINY, "--input", TINY, "--output", out, "--backend", "wasm"];
      const ran = await runVit(["-A"], [...args, "--model", "vit_tiny_patch16_224"]);
      assert.equal(ran.code, 0, ran.stderr);
      const want = fixtureTensor((await loadSafetensors(TINY)).tensors, "logits");
      const err = scaledError(fixtureTensor((await loadSafetensors(out)).tensors, "logits"), want);
      assert.ok(err <= 1e-4, `logits: ${err}`);
      // A preset whose sizes are not the checkpoint's is refused.
      const wrong = await runVit(["-A"], [...args, "--model", "vit_small_patch16_224"]);
      assertOneLineError(wrong, "--model vit_small_patch16_224", "384", "192");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("cli: a ViT checkpoint without --heads, or a bad --heads, is a one-line error", async () => {
  const args = ["--weights", MICRO, "--input", MICRO, "--output", "/nonexistent/x.safetensors"];
  assertOneLineError(await runVit(["-A"], args), "--heads", "--model");
  assertOneLineError(await runVit(["-A"], [...args, "--heads", "0"]), "--heads", '"0"');
  assertOneLineError(await runVit(["-A"], [...args, "--heads", "5"]), "dim 32", "heads 5");
  assertOneLineError(await runVit(["-A"], [...args, "--model", "vit_huge"]), "--model vit_huge");
});

Deno.test("cli: another patch grid needs --dynamic-size (one line, nothing written); with it pos_embed is resampled", async () => {
  const dir = await tempDir();
  try {
    // 40x40 images: a 5x5 grid against the checkpoint's 4x4.
    const image: TensorData = {
      shape: [2, 3, 40, 40],
      data: Float32Array.from({ length: 2 * 3 * 1600 }, (_, i) => Math.cos(i * 0.37) * 0.5 + 0.5),
    };
    const input = `${dir}/input.safetensors`;
    await saveSafetensors(input, { input: image });
    const out = `${dir}/out.safetensors`;
    const args = ["--weights", MICRO, "--input", input, "--output", out, "--heads", "2"];
    const refused = await runVit(["-A"], args);
    assertOneLineError(refused, "--dynamic-size", "5x5", "4x4");
    assert.ok(!exists(new URL(`file://${out}`)), "nothing is written");
    const ran = await runVit(["-A"], [...args, "--dynamic-size", "--backend", "reference"]);
    assert.equal(ran.code, 0, ran.stderr);
    // The same as the API: vit() for 40x40 with pos_embed resampled 4x4 -> 5x5.
    const weights = new Map((await loadSafetensors(MICRO)).tensors);
    weights.set("pos_embed", resamplePosEmbed(fixtureTensor(weights, "pos_embed"), [4, 4], [5, 5]));
    const g = vit({ image: 40, patch: 8, dim: 32, depth: 2, heads: 2, classes: 10 });
    const model = await compile(g, { backend: "reference", weights });
    const { output } = await model.run({ image });
    model.dispose();
    const got = fixtureTensor((await loadSafetensors(out)).tensors, "logits");
    assert.deepEqual(got.shape, [2, 10]);
    assert.ok(scaledError(got, output) <= 1e-6, "CLI and API agree");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** The checkpoint re-saved with every parameter as F16 (round to nearest even), `input` as F32. */
function toF16File(tensors: ReadonlyMap<string, TensorData>): Uint8Array {
  const header: Record<string, unknown> = {};
  const parts: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of tensors) {
    const half = name !== "input";
    const bytes = new Uint8Array(t.data.length * (half ? 2 : 4));
    const view = new DataView(bytes.buffer);
    t.data.forEach((v, i) =>
      half ? view.setFloat16(i * 2, v, true) : view.setFloat32(i * 4, v, true)
    );
    header[name] = {
      dtype: half ? "F16" : "F32",
      shape: t.shape,
      data_offsets: [offset, offset + bytes.length],
    };
    parts.push(bytes);
    offset += bytes.length;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let at = 8 + json.length;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

Deno.test("cli: an F16 checkpoint loads (widened exactly) and runs", async () => {
  const dir = await tempDir();
  try {
    const { tensors } = await loadSafetensors(MICRO);
    const params = vit({ image: 32, patch: 8, dim: 32, depth: 2, heads: 2, classes: 10 }).params();
    const kept = new Map([["input", fixtureTensor(tensors, "input")]]);
    for (const p of params) kept.set(p.attrs.name, fixtureTensor(tensors, p.attrs.name));
    const weightsPath = `${dir}/w16.safetensors`;
    await Deno.writeFile(weightsPath, toF16File(kept));
    const out = `${dir}/out.safetensors`;
    const args = [
      "--weights",
      weightsPath,
      "--input",
      weightsPath,
      "--output",
      out,
      "--heads",
      "2",
    ];
    const ran = await runVit(["-A"], [...args, "--backend", "reference"]);
    assert.equal(ran.code, 0, ran.stderr);
    // The reference on the same F16 values gives the same logits; timm's F32 logits are near.
    const half = (await loadSafetensors(weightsPath)).tensors;
    const g = vit({ image: 32, patch: 8, dim: 32, depth: 2, heads: 2, classes: 10 });
    const model = await compile(g, { backend: "reference", weights: half });
    const { output } = await model.run({ image: fixtureTensor(half, "input") });
    model.dispose();
    const got = fixtureTensor((await loadSafetensors(out)).tensors, "logits");
    assert.ok(scaledError(got, output) <= 1e-6);
    assert.ok(scaledError(got, fixtureTensor(tensors, "logits")) <= 1e-2, "F16 rounding only");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli: Hugging Face transformers names load into the same graph (q, k, v joined into qkv)", async () => {
  const dir = await tempDir();
  try {
    const { tensors } = await loadSafetensors(MICRO);
    const t = (name: string) => fixtureTensor(tensors, name);
    const hf = new Map<string, TensorData>([["input", t("input")]]);
    const e = "vit.embeddings.";
    hf.set(`${e}cls_token`, t("cls_token"));
    hf.set(`${e}position_embeddings`, t("pos_embed"));
    for (const p of ["weight", "bias"]) {
      hf.set(`${e}patch_embeddings.projection.${p}`, t(`patch_embed.proj.${p}`));
      for (let i = 0; i < 2; i++) {
        const l = `vit.encoder.layer.${i}.`;
        const b = `blocks.${i}.`;
        hf.set(`${l}layernorm_before.${p}`, t(`${b}norm1.${p}`));
        const qkv = t(`${b}attn.qkv.${p}`);
        const third = qkv.data.length / 3;
        const shape = p === "weight" ? [qkv.shape[0] / 3, qkv.shape[1]] : [qkv.shape[0] / 3];
        ["query", "key", "value"].forEach((k, j) =>
          hf.set(`${l}attention.attention.${k}.${p}`, {
            shape,
            data: qkv.data.slice(j * third, (j + 1) * third),
          })
        );
        hf.set(`${l}attention.output.dense.${p}`, t(`${b}attn.proj.${p}`));
        hf.set(`${l}layernorm_after.${p}`, t(`${b}norm2.${p}`));
        hf.set(`${l}intermediate.dense.${p}`, t(`${b}mlp.fc1.${p}`));
        hf.set(`${l}output.dense.${p}`, t(`${b}mlp.fc2.${p}`));
      }
      hf.set(`vit.layernorm.${p}`, t(`norm.${p}`));
      hf.set(`classifier.${p}`, t(`head.${p}`));
    }
    const weights = `${dir}/hf.safetensors`;
    await saveSafetensors(weights, hf);
    const out = `${dir}/out.safetensors`;
    const ran = await runVit(["-A"], [
      "--weights",
      weights,
      "--input",
      weights,
      "--output",
      out,
      "--heads",
      "2",
    ]);
    assert.equal(ran.code, 0, ran.stderr);
    const got = fixtureTensor((await loadSafetensors(out)).tensors, "logits");
    assert.ok(scaledError(got, t("logits")) <= 1e-4);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

const PHOTO = new URL("../../shared/fixtures/image_300x200.png", import.meta.url).pathname;
const PREPROCESS = new URL(
  "../../shared/fixtures/vit/timm_preprocess_300x200.safetensors",
  import.meta.url,
).pathname;

Deno.test({
  name:
    "cli: --image with a timm ViT runs timm's eval transform (both normalizations) and the logits match timm",
  ignore: !exists(new URL(`file://${TINY}`)) || !exists(new URL(`file://${PREPROCESS}`)),
  async fn() {
    const dir = await tempDir();
    try {
      const want = (await loadSafetensors(PREPROCESS)).tensors;
      const base = ["--image", PHOTO, "--weights", TINY, "--model", "vit_tiny_patch16_224"];
      const out = `${dir}/mean05.safetensors`;
      const ran = await runVit(["-A"], [...base, "--output", out, "--backend", "wasm"]);
      assert.equal(ran.code, 0, ran.stderr);
      // A 1000-class head names ImageNet's classes (these random weights rank Gila monster first).
      assert.match(ran.stdout, /^ {2}1\. +\d+\.\d\d% {2}Gila monster$/m);
      const got = (await loadSafetensors(out)).tensors;
      assert.deepEqual(fixtureTensor(got, "input").data, fixtureTensor(want, "input_mean05").data);
      const err = scaledError(fixtureTensor(got, "logits"), fixtureTensor(want, "logits_mean05"));
      assert.ok(err <= 1e-4, `logits: ${err}`);
      const imagenet = `${dir}/imagenet.safetensors`;
      const flags = ["--mean", "0.485,0.456,0.406", "--std", "0.229,0.224,0.225"];
      const again = await runVit(["-A"], [...base, ...flags, "--output", imagenet]);
      assert.equal(again.code, 0, again.stderr);
      const input = fixtureTensor((await loadSafetensors(imagenet)).tensors, "input");
      assert.deepEqual(input.data, fixtureTensor(want, "input_imagenet").data);
      // Class names from --labels, one a line.
      const labels = `${dir}/labels.txt`;
      await Deno.writeTextFile(
        labels,
        Array.from({ length: 1000 }, (_, i) => `name${i}`).join("\n"),
      );
      const named = await runVit(["-A"], [...base, "--labels", labels, "--top", "2"]);
      assert.equal(named.code, 0, named.stderr);
      assert.equal(
        named.stdout.trim().split("\n").filter((l) => /% {2}name\d+$/.test(l)).length,
        2,
      );
      const short = `${dir}/short.txt`;
      await Deno.writeTextFile(short, "a\nb\n");
      assertOneLineError(await runVit(["-A"], [...base, "--labels", short]), "2 lines", "1000");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("cli: --help lists every flag with its default", async () => {
  const ran = await runVit([], ["--help"]);
  assert.equal(ran.code, 0, ran.stderr);
  const flags = [
    "--weights",
    "--input",
    "--output",
    "--intermediates",
    "--heads",
    "--model",
    "--dynamic-size",
    "--image",
    "--mean",
    "--std",
    "--crop-pct",
    "--labels",
    "--top",
    "--out",
    "--antialias",
    "--max-image-pixels",
    "--backend",
    "--explain",
  ];
  for (const f of flags) {
    const line = ran.stdout.split("\n").find((l) =>
      /^ {2}--/.test(l) && l.trim().split(/[ [=]/)[0] === f
    );
    assert.ok(line, `--help has no line for ${f}`);
  }
  assert.match(ran.stdout, /--top K .*\[5\]/);
  assert.match(ran.stdout, /--crop-pct P .*\[0\.9\]/);
});

Deno.test({
  name:
    "cli: --image --out with a timm ViT writes the attention maps, rollout, top-k and report.html",
  ignore: !exists(new URL(`file://${TINY}`)),
  async fn() {
    const dir = await tempDir();
    try {
      const out = `${dir}/report`;
      const ran = await runVit(["-A"], [
        "--image",
        PHOTO,
        "--weights",
        TINY,
        "--model",
        "vit_tiny_patch16_224",
        "--out",
        out,
      ]);
      assert.equal(ran.code, 0, ran.stderr);
      const files = [...Deno.readDirSync(out)].map((e) => e.name).sort();
      assert.deepEqual(files, [
        "01_input.png",
        "02_top_k.png",
        "03_attention_block_11.png",
        "04_attention_rollout.png",
        "05_graph.svg",
        "report.html",
      ]);
      const html = await Deno.readTextFile(`${out}/report.html`);
      for (const text of [TINY, "300", "200", "resize the shorter side to 248", "0.1.0"]) {
        assert.ok(html.includes(text), `report.html lacks ${text}`);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("VERSION is deno.json's version", async () => {
  const { VERSION } = await import("../mod.ts");
  const config = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url)));
  assert.equal(VERSION, config.version);
});
