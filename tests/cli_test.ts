// examples/vit.ts as a user runs it: the permission-free demo, and the command-line tool on the
// PyTorch fixtures, including its one-line errors.
import assert from "node:assert/strict";
import { encodeSafetensors, loadSafetensors, type TensorData } from "../mod.ts";
import { maxError } from "./helpers.ts";
import { assertOneLineError, vit } from "./cli_helpers.ts";

const FIXTURES = new URL("./fixtures/", import.meta.url);
const fixture = (name: string): string => new URL(`${name}.safetensors`, FIXTURES).pathname;

Deno.test("demo runs with no permissions and prints the seed's shapes", async () => {
  const ran = await vit([], []);
  assert.equal(ran.code, 0, ran.stderr);
  for (
    const line of [
      "Number of Patches : 196",
      "Patch Size : (16, 16)",
      "Number of Patches per Column : 14",
      "Number of Patches per Row : 14",
      "patches torch.Size([1, 3, 14, 14])",
      "tokens torch.Size([1, 196, 3])",
      "embeddings torch.Size([1, 196, 768])",
      "with_class_token torch.Size([1, 197, 768])",
      "output torch.Size([1, 197, 768])",
      "graph seed-tokenizer",
      "backend: ",
    ]
  ) {
    assert.ok(ran.stdout.includes(line), `demo output lacks "${line}":\n${ran.stdout}`);
  }
});

for (
  const [name, stages] of [
    ["seed_small", ["patches", "tokens", "embeddings", "with_class_token", "output"]],
    ["standard_small", ["patches", "tokens", "with_class_token", "output"]],
  ] as const
) {
  Deno.test(`CLI on ${name} with --intermediates matches PyTorch`, async () => {
    const dir = await Deno.makeTempDir();
    try {
      const out = `${dir}/out.safetensors`;
      const file = fixture(name);
      const ran = await vit(["-A"], [
        "--weights",
        file,
        "--input",
        file,
        "--output",
        out,
        "--intermediates",
      ]);
      assert.equal(ran.code, 0, ran.stderr);
      const expected = await loadSafetensors(file);
      const got = await loadSafetensors(out);
      assert.deepEqual([...got.tensors.keys()].sort(), [...stages].sort());
      for (const [stage, value] of got.tensors) {
        const want = expected.tensors.get(stage) as TensorData;
        assert.deepEqual(value.shape, want.shape, `${name}/${stage} shape`);
        const err = maxError(value.data, want.data);
        assert.ok(err <= 1e-5, `${name}/${stage}: max error ${err} > 1e-5`);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("CLI without --intermediates writes only the output", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const out = `${dir}/out.safetensors`;
    const file = fixture("seed_gray_rect");
    const ran = await vit(["-A"], ["--weights", file, "--input", file, "--output", out]);
    assert.equal(ran.code, 0, ran.stderr);
    assert.ok(ran.stdout.includes("seed-generalized"), ran.stdout);
    const got = await loadSafetensors(out);
    assert.deepEqual([...got.tensors.keys()], ["output"]);
    const want = (await loadSafetensors(file)).tensors.get("output") as TensorData;
    assert.ok(maxError(got.tensors.get("output")!.data, want.data) <= 1e-5);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("CLI: a missing weights file is one line naming the path", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const missing = `${dir}/no_such_weights.safetensors`;
    const out = `${dir}/out.safetensors`;
    const ran = await vit(["-A"], ["--weights", missing, "--input", missing, "--output", out]);
    assertOneLineError(ran, missing, "--weights");
    await assert.rejects(Deno.stat(out), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("CLI: a weights file missing a tensor is one line naming it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const source = await loadSafetensors(fixture("seed_small"));
    const lacking = `${dir}/lacking.safetensors`;
    const kept = new Map(source.tensors);
    kept.delete("class_token_prepender.class_token_vector");
    await Deno.writeFile(lacking, encodeSafetensors(kept));
    const out = `${dir}/out.safetensors`;
    const ran = await vit(["-A"], ["--weights", lacking, "--input", lacking, "--output", out]);
    assertOneLineError(ran, lacking, "class_token_prepender.class_token_vector");

    kept.delete("patch_extractor.patch_extractor.weight");
    await Deno.writeFile(lacking, encodeSafetensors(kept));
    const noConv = await vit(["-A"], ["--weights", lacking, "--input", lacking, "--output", out]);
    assertOneLineError(noConv, lacking, "patch_extractor.patch_extractor.weight");
    await assert.rejects(Deno.stat(out), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("CLI: an input that does not fit the weights is one line", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const ran = await vit(["-A"], [
      "--weights",
      fixture("seed_small"),
      "--input",
      fixture("seed_gray_rect"),
      "--output",
      `${dir}/out.safetensors`,
    ]);
    assertOneLineError(ran, "seed_gray_rect.safetensors", "channels");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("an unknown --backend is one line, in demo and CLI mode", async () => {
  assertOneLineError(await vit([], ["--backend", "no-such-backend"]), "no-such-backend");
  const dir = await Deno.makeTempDir();
  try {
    const file = fixture("seed_small");
    const ran = await vit(["-A"], [
      "--weights",
      file,
      "--input",
      file,
      "--output",
      `${dir}/out.safetensors`,
      "--backend",
      "no-such-backend",
    ]);
    assertOneLineError(ran, "no-such-backend");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("usage mistakes are one line", async () => {
  assertOneLineError(await vit([], ["--bogus"]), "--bogus");
  assertOneLineError(await vit([], ["--weights", "w.safetensors"]), "--input", "--output");
  assertOneLineError(await vit([], ["--explain=everything"]), "--explain");
  assertOneLineError(await vit([], ["--out", "figures"]), "--image");
  assertOneLineError(await vit([], ["--image", "x.png", "--antialias", "maybe"]), "--antialias");
  assertOneLineError(await vit([], ["--image", "x.png", "--intermediates"]), "--output");
  assertOneLineError(await vit([], ["--image", "x.png", "--input", "i.safetensors"]), "--input");
});

Deno.test("--explain prints what ran", async () => {
  const ran = await vit([], ["--explain"]);
  assert.equal(ran.code, 0, ran.stderr);
  const after = ran.stdout.slice(ran.stdout.indexOf("\nbackend: ")).trim().split("\n");
  assert.ok(after.length > 1, `no explain text after the backend line:\n${ran.stdout}`);
});
