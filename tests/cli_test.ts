// examples/vit.ts as a user runs it: the permission-free demo, and the command-line tool on the
// PyTorch fixtures, including its one-line errors.
import assert from "node:assert/strict";
import { encodeSafetensors, loadSafetensors, type TensorData } from "../mod.ts";
import { maxError } from "./helpers.ts";
import { assertOneLineError, CAN_MKFIFO, vit } from "./cli_helpers.ts";

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

/** Every entry of `dir` with its bytes (links included, by name). */
async function snapshot(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for await (const e of Deno.readDir(dir)) {
    const bytes = e.isFile || e.isSymlink ? await Deno.readFile(`${dir}/${e.name}`) : undefined;
    out.set(e.name, bytes ? `${bytes.length}:${bytes.join(",")}` : "dir");
  }
  return out;
}

Deno.test("CLI: --output naming --weights or --input, or a link to one, is refused", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const weights = `${dir}/w.safetensors`;
    const input = `${dir}/i.safetensors`;
    await Deno.copyFile(fixture("seed_small"), weights);
    await Deno.copyFile(fixture("seed_small"), input);
    await Deno.symlink(weights, `${dir}/link_to_w.safetensors`);
    await Deno.link(input, `${dir}/hard_to_i.safetensors`);
    const before = await snapshot(dir);
    for (
      const [output, flag] of [
        [weights, "--weights"],
        [input, "--input"],
        [`${dir}/link_to_w.safetensors`, "--weights"],
        [`${dir}/hard_to_i.safetensors`, "--input"],
        // A different spelling of the same path is the same file too.
        [`${dir}/./w.safetensors`, "--weights"],
      ]
    ) {
      const ran = await vit(["-A"], ["--weights", weights, "--input", input, "--output", output]);
      assertOneLineError(ran, `--output ${output}`, `${flag} `, "choose another --output");
      assert.deepEqual(await snapshot(dir), before, `${output} changed the folder`);
    }
    // A file that is not an input this time may be replaced: the check compares files, not names.
    const ok = await vit(["-A"], ["--weights", weights, "--input", weights, "--output", input]);
    assert.equal(ok.code, 0, ok.stderr);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("CLI: a --weights or --input that is not a regular file is one line", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const out = `${dir}/o.safetensors`;
    const good = fixture("seed_small");
    // /dev/null first: before the fix /dev/zero would be read until memory ran out.
    for (const device of ["/dev/null", "/dev/zero"]) {
      const ran = await vit(["-A"], ["--weights", device, "--input", good, "--output", out], {
        timeoutMs: 30_000,
      });
      assertOneLineError(ran, device, "character device", "not a regular file", "--weights");
      const input = await vit(["-A"], ["--weights", good, "--input", device, "--output", out], {
        timeoutMs: 30_000,
      });
      assertOneLineError(input, device, "not a regular file", "--input");
    }
    assertOneLineError(
      await vit(["-A"], ["--weights", dir, "--input", good, "--output", out]),
      dir,
      "directory",
    );
    assert.deepEqual([...Deno.readDirSync(dir)], []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "CLI: a FIFO as --weights or --input is refused at once, never opened",
  ignore: !CAN_MKFIFO,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    try {
      const fifo = `${dir}/pipe.safetensors`;
      const made = await new Deno.Command("mkfifo", { args: [fifo] }).output();
      assert.equal(made.code, 0);
      const good = fixture("seed_small");
      const out = `${dir}/o.safetensors`;
      const opts = { timeoutMs: 30_000 };
      const ran = await vit(["-A"], ["--weights", fifo, "--input", good, "--output", out], opts);
      assertOneLineError(ran, fifo, "FIFO", "not a regular file", "--weights");
      const input = await vit(["-A"], ["--weights", good, "--input", fifo, "--output", out], opts);
      assertOneLineError(input, fifo, "FIFO", "--input");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

/** Peak RSS (VmHWM, bytes) of a child, polled from /proc until it exits. */
async function peakRss(child: Deno.ChildProcess): Promise<number> {
  let peak = 0;
  let done = false;
  const status = child.status.then((s) => {
    done = true;
    return s;
  });
  while (!done) {
    try {
      const text = await Deno.readTextFile(`/proc/${child.pid}/status`);
      const kb = Number(/VmHWM:\s+(\d+) kB/.exec(text)?.[1] ?? 0);
      peak = Math.max(peak, kb * 1024);
    } catch {
      // Exited between the check and the read.
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  assert.equal((await status).code, 0, "the CLI run failed");
  return peak;
}

Deno.test({
  name: "CLI: a 1 GiB checkpoint of which the graph needs 30 KiB is read only where needed",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    const dir = await Deno.makeTempDir();
    try {
      // A sparse file: an unused 1 GiB tensor first (no disk blocks), then the real weights.
      const source = await loadSafetensors(fixture("seed_small"));
      const unused = 2 ** 30;
      const header: Record<string, unknown> = {
        "unused.huge": { dtype: "F32", shape: [unused / 4], data_offsets: [0, unused] },
      };
      let at = unused;
      for (const [name, t] of source.tensors) {
        header[name] = { dtype: "F32", shape: t.shape, data_offsets: [at, at + t.data.byteLength] };
        at += t.data.byteLength;
      }
      const json = new TextEncoder().encode(JSON.stringify(header));
      const big = `${dir}/big.safetensors`;
      const f = await Deno.open(big, { write: true, createNew: true });
      const length = new Uint8Array(8);
      new DataView(length.buffer).setBigUint64(0, BigInt(json.length), true);
      await f.write(length);
      await f.write(json);
      await f.seek(8 + json.length + unused, Deno.SeekMode.Start);
      for (const t of source.tensors.values()) {
        await f.write(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
      }
      f.close();

      const out = `${dir}/o.safetensors`;
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "examples/vit.ts", "--weights", big, "--input", big, "--output", out],
        cwd: new URL("../", import.meta.url),
        stdout: "null",
        stderr: "null",
      }).spawn();
      const peak = await peakRss(child);
      // Reading the file whole would take over 1 GiB (before the fix: 2 GiB, file plus copies).
      assert.ok(peak < 512 * 2 ** 20, `peak RSS ${(peak / 2 ** 20).toFixed(0)} MiB`);
      const want = source.tensors.get("output") as TensorData;
      const got = (await loadSafetensors(out)).tensors.get("output") as TensorData;
      assert.ok(maxError(got.data, want.data) <= 1e-5);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
