// PyTorch parity: every stage of every fixture, on the reference backend.
import assert from "node:assert/strict";
import { compile, initParams, loadSafetensors, type TensorData } from "../mod.ts";
import { graphForFixture, maxError } from "./helpers.ts";

const FIXTURES = new URL("./fixtures/", import.meta.url);
const index = JSON.parse(await Deno.readTextFile(new URL("index.json", FIXTURES)));

for (const fixture of index.fixtures) {
  Deno.test(`reference parity: ${fixture.name}`, async () => {
    const file = await loadSafetensors(new URL(fixture.file, FIXTURES));
    const graph = graphForFixture(file.metadata);
    const model = await compile(graph, { backend: "reference", weights: file.tensors });
    const input = file.tensors.get("input") as TensorData;
    const { output, stages } = await model.run({ image: input }, { stages: "all" });
    const all: Record<string, TensorData> = { ...stages, output };
    for (const [name, value] of Object.entries(all)) {
      const expected = file.tensors.get(name);
      if (!expected) throw new Error(`fixture ${fixture.name} has no stage ${name}`);
      assert.deepEqual(value.shape, expected.shape, `${fixture.name}/${name} shape`);
      const err = maxError(value.data, expected.data);
      assert.ok(err <= 1e-5, `${fixture.name}/${name}: max error ${err} > 1e-5`);
    }
  });

  Deno.test(`PyTorch init reproduces ${fixture.name} parameters`, async () => {
    const file = await loadSafetensors(new URL(fixture.file, FIXTURES));
    const graph = graphForFixture(file.metadata);
    const weights = initParams(graph, Number(file.metadata.seed));
    for (const [name, value] of weights) {
      const expected = file.tensors.get(name) as TensorData;
      assert.equal(maxError(value.data, expected.data), 0, name);
    }
  });
}
