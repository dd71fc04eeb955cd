import * as tf from "@tensorflow/tfjs-core";
import assert from "node:assert/strict";
import {
  anchorGenerator,
  boxBranch,
  buildSSM,
  classificationBranch,
  initBackend,
  maskBranch,
  modelSummary,
  resnetFpnBackbone,
  RoIHeads,
  rpn,
  sModule,
  SSM,
  ssmConfig,
} from "../mod.ts";
import { fixture } from "./_util.ts";

await initBackend("wasm");

function syntheticSlice(size: number) {
  const data = new Float32Array(size * size);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const r = Math.hypot(x - size / 2, y - size / 2) / size;
      data[y * size + x] = r < 0.4
        ? 0.3 + 0.5 * Math.exp(-((x - size / 3) ** 2 + (y - size / 2) ** 2) / 40)
        : 0;
    }
  }
  return { width: size, height: size, data };
}

Deno.test("builders compose a ResNet34 2-stage single-branch model and a ResNet18 3-stage parallel one", () => {
  const size = 128;
  const image = syntheticSlice(size);
  for (const [depth, stages, variant] of [[34, 2, "single"], [18, 3, "parallel"]] as const) {
    const config = ssmConfig({
      backbone: { depth, stages },
      variant,
      transform: { minSize: size, maxSize: 2 * size },
      seed: 3,
    });
    const backbone = resnetFpnBackbone({ ...config.backbone, seed: config.seed });
    const anchors = anchorGenerator(config.anchors);
    const c = backbone.outChannels;
    const model = new SSM(config, {
      backbone,
      anchorGenerator: anchors,
      rpn: rpn(c, anchors.numAnchorsPerLocation()[0], config.rpn),
      roiHeads: new RoIHeads(config.roiHeads, {
        boxBranch: boxBranch(c, config.roiHeads),
        maskBranch: maskBranch(c, config.roiHeads),
        classificationBranch: variant === "single"
          ? null
          : classificationBranch(c, config.roiHeads),
      }),
      s: sModule(config.s),
    });
    assert.equal(model.roiHeads.boxHeadS2 === null, variant === "single");
    const before = tf.memory().numTensors;
    const out = model.predict(image);
    assert.equal(tf.memory().numTensors, before, "predict leaked tensors");
    assert.equal(out.classLogits.length, 3);
    assert.ok(Math.abs(out.classProbs.reduce((a, b) => a + b, 0) - 1) < 1e-5);
    assert.equal(out.roiBatch.length, 128 * 5);
    const n = out.detections.scores.length;
    assert.equal(out.detections.boxes.length, 4 * n);
    assert.equal(out.detections.masks.length, n);
    const logits = tf.tidy(() => Array.from(model.classify(image).dataSync()));
    for (let i = 0; i < 3; i++) assert.ok(Math.abs(logits[i] - out.classLogits[i]) < 1e-4);
    const st = model.stages(image);
    assert.equal(st.features.shape[1], size / (stages === 2 ? 8 : 16));
    st.images.dispose();
    st.features.dispose();
    model.dispose();
  }
});

Deno.test("the paper's model has 8,267,759 parameters with the authors' names and shapes", () => {
  const model = buildSSM();
  const s = modelSummary(model);
  assert.equal(s.total, 8_267_759);
  assert.equal(s.classificationStepTrainable.s, 592_387);
  assert.equal(s.classificationStepTrainable["s+backbone"], 592_387 + 2_782_784 + 655_872);
  const path = fixture("ssm", "state_dict_shapes.txt");
  if (path) {
    const expected = Deno.readTextFileSync(path).split("\n").filter((l) =>
      l.trim() && !l.startsWith("#")
    )
      .map((l) => l.split("\t")).map(([n, shape]) => `${n} ${shape}`);
    const ours = model.namedParameters().map(([n, p]) => `${n} ${p.torchShape.join("x")}`);
    assert.deepEqual(ours.sort(), expected.sort());
  }
  model.dispose();
});
