// examples/vit.ts --image as a user runs it: the seed's whole pipeline on a PNG, its figures and
// report, its tensors against PyTorch's preprocessing, and its one-line errors.
import assert from "node:assert/strict";
import { loadSafetensors, type TensorData } from "../mod.ts";
import { maxError } from "./helpers.ts";
import { assertOneLineError, CAN_MKFIFO, CAN_UNSHARE, vit } from "./cli_helpers.ts";

const FIXTURES = new URL("./fixtures/", import.meta.url);
const IMAGE = "tests/fixtures/image_300x200.png";
const PREPROCESS = new URL("preprocess_300x200.safetensors", FIXTURES).pathname;
const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

const FIGURES = [
  "01_resized.png",
  "02_patch_grid.png",
  "03_patch_extraction.png",
  "04_token_strip.png",
  "05_embedding_heatmap.png",
  "06_positional_similarity.png",
  "07_graph.png",
];

const SEED_LINES = [
  "Number of Patches : 196",
  "Patch Size : (16, 16)",
  "Number of Patches per Column : 14",
  "Number of Patches per Row : 14",
  "to_tensor torch.Size([1, 3, 200, 300])",
  "resized torch.Size([1, 3, 224, 224])",
  "patches torch.Size([1, 3, 14, 14])",
  "tokens torch.Size([1, 196, 3])",
  "embeddings torch.Size([1, 196, 768])",
  "with_class_token torch.Size([1, 197, 768])",
  "output torch.Size([1, 197, 768])",
  "backend: js",
];

/** Runs `fn` with a fresh temporary directory, removed afterwards. */
async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** The tensors `--intermediates --output` writes for the test image with `antialias`. */
async function pipelineTensors(
  dir: string,
  antialias: "on" | "off",
): Promise<Map<string, TensorData>> {
  const out = `${dir}/o.safetensors`;
  const ran = await vit(["-A"], [
    "--image",
    IMAGE,
    "--intermediates",
    "--output",
    out,
    "--backend",
    "js",
    "--antialias",
    antialias,
  ]);
  assert.equal(ran.code, 0, ran.stderr);
  assert.ok(ran.stdout.includes(`antialias: ${antialias}`), ran.stdout);
  return (await loadSafetensors(out)).tensors;
}

function assertClose(got: TensorData, want: TensorData, name: string, tolerance: number): void {
  assert.deepEqual(got.shape, want.shape, `${name} shape`);
  const err = maxError(got.data, want.data);
  assert.ok(err <= tolerance, `${name}: max error ${err} > ${tolerance}`);
}

Deno.test("--image --out prints the seed's lines and writes the figures and report", async () => {
  await withTempDir(async (dir) => {
    const out = `${dir}/report`;
    const ran = await vit(["-A"], ["--image", IMAGE, "--out", out, "--backend", "js"]);
    assert.equal(ran.code, 0, ran.stderr);
    for (const line of [...SEED_LINES, "antialias: off", "torchvision >= 0.17"]) {
      assert.ok(ran.stdout.includes(line), `output lacks "${line}":\n${ran.stdout}`);
    }
    for (const file of FIGURES) {
      const bytes = await Deno.readFile(`${out}/${file}`);
      assert.deepEqual([...bytes.subarray(0, 8)], PNG_SIGNATURE, `${file} is not a PNG`);
      assert.ok(ran.stdout.includes(`${out}/${file}`), `${file} path not printed`);
    }
    const html = await Deno.readTextFile(`${out}/report.html`);
    assert.ok(html.length > 0 && html.includes("Patch grid: 196 patches of 16x16"));
    assert.ok(ran.stdout.includes(`${out}/report.html`), "report path not printed");
  });
});

Deno.test("--intermediates matches torchvision's preprocessing, antialias off", async () => {
  await withTempDir(async (dir) => {
    const got = await pipelineTensors(dir, "off");
    const want = (await loadSafetensors(PREPROCESS)).tensors;
    assert.deepEqual([...got.keys()].sort(), [
      "embeddings",
      "output",
      "patches",
      "resized",
      "to_tensor",
      "tokens",
      "with_class_token",
    ]);
    const toTensor = got.get("to_tensor")!;
    assert.deepEqual(toTensor.shape, want.get("to_tensor")!.shape);
    assert.deepEqual(toTensor.data, want.get("to_tensor")!.data, "to_tensor is not exact");
    assertClose(got.get("resized")!, want.get("resized")!, "resized", 1e-5);
  });
});

Deno.test("--antialias on matches torchvision's antialiased resize", async () => {
  await withTempDir(async (dir) => {
    const got = await pipelineTensors(dir, "on");
    const want = (await loadSafetensors(PREPROCESS)).tensors;
    assertClose(got.get("resized")!, want.get("resized_antialias")!, "resized", 1e-5);
  });
});

Deno.test("--image without --allow-write still runs and names the flag", async () => {
  await withTempDir(async (dir) => {
    const out = `${dir}/report`;
    const ran = await vit(["--allow-read"], ["--image", IMAGE, "--out", out, "--backend", "js"]);
    assert.equal(ran.code, 0, ran.stderr);
    for (const line of SEED_LINES) assert.ok(ran.stdout.includes(line), `lacks "${line}"`);
    assert.ok(`${ran.stdout}${ran.stderr}`.includes("--allow-write"), ran.stdout);
    await assert.rejects(Deno.stat(out), Deno.errors.NotFound);
    assert.deepEqual(await Array.fromAsync(Deno.readDir(dir)), []);
  });
});

Deno.test("--image without --allow-read is one line naming the flag", async () => {
  assertOneLineError(await vit([], ["--image", IMAGE]), IMAGE, "--allow-read");
});

Deno.test("a corrupt or missing image is one line naming the file", async () => {
  await withTempDir(async (dir) => {
    const corrupt = `${dir}/corrupt.png`;
    const bytes = await Deno.readFile(new URL("image_300x200.png", FIXTURES));
    await Deno.writeFile(corrupt, bytes.subarray(0, 200));
    assertOneLineError(await vit(["-A"], ["--image", corrupt, "--backend", "js"]), corrupt);
    const missing = `${dir}/no_such_image.png`;
    assertOneLineError(await vit(["-A"], ["--image", missing, "--backend", "js"]), missing);
  });
});

Deno.test("--image with seed --weights runs them; timm weights are one line", async () => {
  const seed = new URL("seed_224.safetensors", FIXTURES).pathname;
  await withTempDir(async (dir) => {
    const out = `${dir}/o.safetensors`;
    const args = ["--image", IMAGE, "--backend", "js", "--output", out];
    const ran = await vit(["-A"], [...args, "--weights", seed]);
    assert.equal(ran.code, 0, ran.stderr);
    const output = (await loadSafetensors(out)).tensors.get("output")!;
    assert.deepEqual(output.shape, [1, 197, 768]);
    // Token 0 is the class token plus position 0: both come from the checkpoint.
    const weights = (await loadSafetensors(seed)).tensors;
    const cls = weights.get("class_token_prepender.class_token_vector")!.data;
    const pos = weights.get("positional_embedding.positional_embedding")!.data;
    const want = cls.map((v, i) => v + pos[i]);
    assert.ok(maxError(output.data.subarray(0, 768), want) <= 1e-6, "token 0 != cls + pos[0]");
  });
  const timm = new URL("standard_vitb16.safetensors", FIXTURES).pathname;
  assertOneLineError(await vit(["-A"], ["--image", IMAGE, "--weights", timm]), timm, "timm");
});

/** Every name in `dir` (and below), sorted: what a run left behind. */
async function listing(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    names.push(e.name);
    if (e.isDirectory) {
      names.push(...(await listing(`${dir}/${e.name}`)).map((n) => `${e.name}/${n}`));
    }
  }
  return names.sort();
}

Deno.test("--output naming --image or --weights, or a link to one, is refused", async () => {
  const seed = new URL("seed_224.safetensors", FIXTURES).pathname;
  await withTempDir(async (dir) => {
    const image = `${dir}/in.png`;
    const weights = `${dir}/w.safetensors`;
    await Deno.copyFile(IMAGE, image);
    await Deno.copyFile(seed, weights);
    await Deno.symlink(image, `${dir}/link.png`);
    await Deno.link(weights, `${dir}/hard.safetensors`);
    const bytes = [await Deno.readFile(image), await Deno.readFile(weights)];
    const names = await listing(dir);
    for (
      const [output, flag] of [
        [image, "--image"],
        [`${dir}/link.png`, "--image"],
        [weights, "--weights"],
        [`${dir}/hard.safetensors`, "--weights"],
      ]
    ) {
      const args = ["--image", image, "--weights", weights, "--output", output, "--backend", "js"];
      const ran = await vit(["-A"], args);
      assertOneLineError(ran, `--output ${output}`, `${flag} `, "choose another --output");
      assert.deepEqual(await Deno.readFile(image), bytes[0], `${output}: the image changed`);
      assert.deepEqual(await Deno.readFile(weights), bytes[1], `${output}: the weights changed`);
      assert.deepEqual(await listing(dir), names, `${output}: files were left`);
    }
  });
});

Deno.test("an --image that is a device or a FIFO is one line, never opened", async () => {
  await withTempDir(async (dir) => {
    const opts = { timeoutMs: 30_000 };
    const ran = await vit(["-A"], ["--image", "/dev/null", "--backend", "js"], opts);
    assertOneLineError(ran, "/dev/null", "character device", "not a regular file", "--image");
    if (!CAN_MKFIFO) return;
    const fifo = `${dir}/pipe.png`;
    assert.equal((await new Deno.Command("mkfifo", { args: [fifo] }).output()).code, 0);
    const piped = await vit(["-A"], ["--image", fifo, "--backend", "js"], opts);
    assertOneLineError(piped, fifo, "FIFO", "not a regular file", "--image");
  });
});

Deno.test("--out onto an existing file, or below one, is one line naming --out", async () => {
  await withTempDir(async (dir) => {
    const file = `${dir}/taken`;
    await Deno.writeTextFile(file, "keep me");
    for (const out of [file, `${file}/report`]) {
      const ran = await vit(["-A"], ["--image", IMAGE, "--out", out, "--backend", "js"]);
      assertOneLineError(ran, `--out ${out}:`, "not a directory", "nothing was saved");
      assert.equal(await Deno.readTextFile(file), "keep me");
      assert.deepEqual(await listing(dir), ["taken"]);
    }
  });
});

Deno.test({
  name: "--out in a read-only folder is one line naming --out, and leaves nothing",
  // Root ignores permission bits: run as an unprivileged user in a user namespace.
  ignore: !CAN_UNSHARE,
  fn: async () => {
    await withTempDir(async (dir) => {
      const ro = `${dir}/ro`;
      await Deno.mkdir(ro);
      await Deno.writeTextFile(`${ro}/old.txt`, "old");
      await Deno.chmod(ro, 0o555);
      const prefix = ["unshare", "--map-user=65534", "--map-group=65534"];
      for (const out of [ro, `${ro}/report`]) {
        const ran = await vit(["-A"], ["--image", IMAGE, "--out", out, "--backend", "js"], {
          prefix,
        });
        assertOneLineError(ran, `--out ${out}:`, "denied write access", "nothing was saved");
        assert.deepEqual(await listing(ro), ["old.txt"]);
      }
      await Deno.chmod(ro, 0o755);
    });
  },
});

Deno.test({
  name: "--out on a full or read-only disk saves no figure at all, in one line naming --out",
  // A tiny tmpfs, mounted in a private mount namespace: nothing outside the run sees it.
  ignore: !CAN_UNSHARE,
  fn: async () => {
    await withTempDir(async (dir) => {
      // The figures and report take about 1.7 MB; the first five about 350 kB.
      for (
        const [options, reason] of [
          ["size=400k", "no space left"],
          ["ro,size=400k", "read-only"],
        ]
      ) {
        const script = `mount -t tmpfs -o ${options} tmpfs "$0" || exit 99; "$@"; code=$?; ` +
          `echo "left: $(cd "$0" && ls -A | tr '\\n' ' ')"; exit $code`;
        const out = `${dir}/report`;
        const ran = await vit(["-A"], ["--image", IMAGE, "--out", out, "--backend", "js"], {
          prefix: ["unshare", "-r", "-m", "sh", "-c", script, dir],
        });
        assertOneLineError(ran, `--out ${out}:`, reason, "nothing was saved");
        assert.match(ran.stdout, /^left: *$/m, `files were left:\n${ran.stdout}`);
      }
    });
  },
});

Deno.test("--out into an existing folder replaces the report, keeps other files", async () => {
  await withTempDir(async (dir) => {
    const out = `${dir}/report`;
    await Deno.mkdir(out);
    await Deno.writeTextFile(`${out}/notes.txt`, "mine");
    await Deno.writeTextFile(`${out}/report.html`, "stale");
    await Deno.chmod(`${out}/report.html`, 0o600);
    const ran = await vit(["-A"], ["--image", IMAGE, "--out", out, "--backend", "js"]);
    assert.equal(ran.code, 0, ran.stderr);
    const names = await listing(out);
    assert.deepEqual(names, [...FIGURES, "07_graph.svg", "notes.txt", "report.html"].sort());
    assert.equal(await Deno.readTextFile(`${out}/notes.txt`), "mine");
    assert.ok((await Deno.readTextFile(`${out}/report.html`)).includes("Patch grid"));
  });
});

Deno.test("--out is refused where a figure would replace the --image file", async () => {
  await withTempDir(async (dir) => {
    const image = `${dir}/01_resized.png`;
    await Deno.copyFile(IMAGE, image);
    const bytes = await Deno.readFile(image);
    const ran = await vit(["-A"], ["--image", image, "--out", dir, "--backend", "js"]);
    assertOneLineError(ran, `--out ${image}`, `--image ${image}`, "choose another --out");
    assert.deepEqual(await Deno.readFile(image), bytes);
    assert.deepEqual(await listing(dir), ["01_resized.png"]);
  });
});

Deno.test("--max-image-pixels: above twice the limit is one line naming the flag; above it warns", async () => {
  // The test image is 300x200 = 60,000 pixels.
  const refused = await vit(["-A"], ["--image", IMAGE, "--max-image-pixels", "20000"]);
  assertOneLineError(refused, "--max-image-pixels", "60000");
  const warned = await vit(["-A"], [
    "--image",
    IMAGE,
    "--max-image-pixels",
    "40000",
    "--backend",
    "js",
  ]);
  assert.equal(warned.code, 0, warned.stderr);
  assert.match(warned.stderr, /60000|60,000/);
  assert.match(warned.stdout, /output torch\.Size\(\[1, 197, 768\]\)/);
  const bad = await vit(["-A"], ["--image", IMAGE, "--max-image-pixels", "many"]);
  assertOneLineError(bad, "--max-image-pixels", "many");
  const alone = await vit(["-A"], ["--max-image-pixels", "5"]);
  assertOneLineError(alone, "--max-image-pixels", "--image");
});
