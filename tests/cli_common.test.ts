import assert from "node:assert/strict";
import { join } from "node:path";
import { buildSSM, initBackend, saveWeights, SSM_CONFIG_KEY } from "../mod.ts";
import { loadModelFromCheckpoint } from "../lib/cli/common.ts";

await initBackend("wasm");

Deno.test("checkpoint overrides reach the model's configuration (score threshold, size)", () => {
  const dir = Deno.makeTempDirSync();
  try {
    const model = buildSSM({
      transform: { minSize: 64, maxSize: 128 },
      variant: "single",
      seed: 4,
    });
    const path = join(dir, "m.safetensors");
    saveWeights(model, path, { [SSM_CONFIG_KEY]: JSON.stringify(model.config) });
    const plain = loadModelFromCheckpoint(path);
    assert.equal(plain.config.roiHeads.scoreThresh, 0.75);
    assert.equal(plain.config.variant, "single");
    const low = loadModelFromCheckpoint(path, { scoreThresh: 0.05, minSize: 96 });
    assert.equal(low.config.roiHeads.scoreThresh, 0.05);
    assert.equal(low.config.transform.minSize, 96);
    assert.equal(low.config.roiHeads.nmsThresh, 0.5, "other RoI settings keep their values");
    for (const m of [model, plain.model, low.model]) m.dispose();
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
