// Preprocessing parity on every backend: the seed's ToTensor + Resize as graph ops, against
// torchvision's outputs for tests/fixtures/image_300x200.png.
import assert from "node:assert/strict";
import {
  type BackendName,
  compile,
  imageToTensorData,
  loadImage,
  loadSafetensors,
  probeWebGpu,
  seedPipeline,
  type TensorData,
} from "../mod.ts";
import { maxError } from "./helpers.ts";

const FIXTURES = new URL("./fixtures/", import.meta.url);
const expected = (await loadSafetensors(new URL("preprocess_300x200.safetensors", FIXTURES)))
  .tensors;
const pixels = imageToTensorData(await loadImage(new URL("image_300x200.png", FIXTURES)));
const hasAdapter = (await probeWebGpu()) !== null;

const CASES: { backend: BackendName; tolerance: number }[] = [
  { backend: "reference", tolerance: 1e-5 },
  { backend: "js", tolerance: 1e-5 },
  { backend: "cpu", tolerance: 1e-5 },
  { backend: "webasm", tolerance: 1e-5 },
  { backend: "webgpu", tolerance: 1e-4 },
  { backend: "wgsl", tolerance: 1e-4 },
];

for (const { backend, tolerance } of CASES) {
  Deno.test({
    name: `${backend}: to_tensor exact, resize within ${tolerance} (antialias off and on)`,
    ignore: (backend === "webgpu" || backend === "wgsl") && !hasAdapter,
    async fn() {
      for (const antialias of [false, true]) {
        const graph = seedPipeline({
          imageHeight: 200,
          imageWidth: 300,
          size: 224,
          patch: 16,
          embedding: 8,
          antialias,
        });
        const model = await compile(graph, { backend, onWarning: () => {} });
        const { stages } = await model.run({ pixels }, { stages: ["to_tensor", "resized"] });
        model.dispose();
        assert.equal(model.backend, backend);
        const toTensor = expected.get("to_tensor") as TensorData;
        assert.deepEqual(stages.to_tensor.shape, [1, 3, 200, 300]);
        assert.equal(maxError(stages.to_tensor.data, toTensor.data), 0, "to_tensor");
        const want = expected.get(antialias ? "resized_antialias" : "resized_no_antialias");
        const err = maxError(stages.resized.data, (want as TensorData).data);
        assert.ok(err <= tolerance, `resized (antialias ${antialias}): ${err} > ${tolerance}`);
      }
    },
  });
}

Deno.test("the seed's Resize default (torchvision 0.14, tensors) is antialias off", () => {
  const resized = (expected.get("resized") as TensorData).data;
  const off = (expected.get("resized_no_antialias") as TensorData).data;
  assert.equal(maxError(resized, off), 0);
});
