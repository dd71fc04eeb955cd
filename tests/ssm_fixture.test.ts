// End-to-end parity with the torchvision/authors' SSM fixture (../shared/fixtures/ssm).
import * as tf from "@tensorflow/tfjs-core";
import assert from "node:assert/strict";
import { initBackend } from "../lib/backend/mod.ts";
import { buildSSM } from "../lib/ssm.ts";
import { loadWeights } from "../lib/nn/weights.ts";
import { fixture } from "./_util.ts";

// deno-lint-ignore no-explicit-any
type Any = any;

const dir = fixture("ssm");
const expected: Any = dir ? JSON.parse(Deno.readTextFileSync(`${dir}/expected.json`)) : null;
const pixels = dir ? Deno.readFileSync(`${dir}/input_u8.bin`) : null;
if (dir) await initBackend("wasm");

function maxAbs(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

for (
  const [variant, filter] of [["reference", "reference"], [
    "torchvision_0_14",
    "torchvision",
  ]] as const
) {
  Deno.test({
    name: `SSM stages match the fixture end to end (${variant})`,
    ignore: !dir,
    fn() {
      const exp = expected[variant];
      const model = buildSSM({ proposalFilter: filter, variant: "parallel" });
      const report = loadWeights(model, `${dir}/weights.safetensors`);
      assert.equal(report.missing.length + report.unexpected.length + report.mismatched.length, 0);
      const before = tf.memory().numTensors;
      const image = { width: 512, height: 512, data: pixels! };
      const st = model.stages(image);

      // Proposals: same set of anchors; boxes and logits matched by anchor.
      const p = st.proposals;
      assert.equal(p.anchorIndex.length, exp.rpn.num_proposals);
      const expByAnchor = new Map<number, number>();
      exp.rpn.proposals.anchor_index.forEach((a: number, i: number) => expByAnchor.set(a, i));
      let boxErr = 0, logitErr = 0;
      const ourRow = new Map<number, number>();
      p.anchorIndex.forEach((a, i) => {
        const j = expByAnchor.get(a);
        assert.ok(j !== undefined, `proposal from anchor ${a} is not in the fixture`);
        ourRow.set(a, i);
        boxErr = Math.max(
          boxErr,
          maxAbs(p.boxes.subarray(i * 4, i * 4 + 4), exp.rpn.proposals.boxes[j]),
        );
        logitErr = Math.max(
          logitErr,
          Math.abs(p.logits[i] - exp.rpn.proposals.objectness_logit[j]),
        );
      });
      assert.ok(boxErr <= 2e-3, `proposal boxes max error ${boxErr}`);
      assert.ok(logitErr <= 2e-4, `proposal logits max error ${logitErr}`);

      // Classification branch outputs per proposal, matched by anchor.
      let clsErr = 0;
      exp.rpn.proposals.anchor_index.forEach((a: number, j: number) => {
        const i = ourRow.get(a)!;
        clsErr = Math.max(
          clsErr,
          maxAbs(st.clsBranchLogits.subarray(i * 2, i * 2 + 2), exp.box_branch_s2.class_logits[j]),
          maxAbs(
            st.clsBranchRegression.subarray(i * 8, i * 8 + 8),
            exp.box_branch_s2.box_regression[j],
          ),
        );
      });
      assert.ok(clsErr <= 5e-4, `classification branch max error ${clsErr}`);

      // Detections: same anchors (as a set), same count, boxes and scores.
      const d = st.detections;
      assert.equal(d.scores.length, exp.detections.count);
      const detExp = new Map<number, number>();
      exp.detections.anchor_index.forEach((a: number, i: number) => detExp.set(a, i));
      let dBox = 0, dScore = 0;
      for (let i = 0; i < d.scores.length; i++) {
        const a = p.anchorIndex[d.proposalIndex[i]];
        const j = detExp.get(a);
        assert.ok(j !== undefined, `detection from anchor ${a} is not in the fixture`);
        assert.equal(d.labels[i], exp.detections.labels[j]);
        dBox = Math.max(dBox, maxAbs(d.boxes.subarray(i * 4, i * 4 + 4), exp.detections.boxes[j]));
        dScore = Math.max(dScore, Math.abs(d.scores[i] - exp.detections.scores[j]));
      }
      assert.ok(dBox <= 2e-3, `detection boxes max error ${dBox}`);
      assert.ok(dScore <= 5e-5, `detection scores max error ${dScore}`);

      // Mask probabilities per detection.
      const ml = model.roiHeads.maskLogits(st.features, d.boxes, d.labels, st.imageSize);
      const probs = tf.tidy(() => tf.sigmoid(ml).dataSync());
      ml.dispose();
      let mErr = 0;
      for (let i = 0; i < d.scores.length; i++) {
        const j = detExp.get(p.anchorIndex[d.proposalIndex[i]])!;
        mErr = Math.max(
          mErr,
          maxAbs(probs.subarray(i * 784, (i + 1) * 784), exp.masks.probs_28x28[j]),
        );
      }
      assert.ok(mErr <= 2e-4, `mask probs max error ${mErr}`);

      // RoI batch: survivors, the kept anchors in order, values; then S.
      const sel = st.roiSelection;
      assert.equal(sel.numAfterAreaFilter, exp.classifier.num_after_area_filter);
      assert.equal(sel.numSurvivors, exp.classifier.num_survivors_after_nms);
      const keptAnchors = Array.from(sel.proposalIndex, (i) => p.anchorIndex[i]);
      assert.deepEqual(keptAnchors, exp.classifier.kept_anchor_index);
      const rb = maxAbs(st.roiBatch, exp.classifier.roi_batch.flat());
      assert.ok(rb <= 2e-4, `roi batch max error ${rb}`);
      const logits = tf.tidy(() => model.s.apply(tf.tensor2d(st.roiBatch, [128, 5])).dataSync());
      const sErr = maxAbs(logits, exp.s_module.logits);
      assert.ok(sErr <= 2e-3, `S logits max error ${sErr}`);
      // S alone, fed the fixture's own RoI batch.
      const sOnly = tf.tidy(() => model.s.apply(tf.tensor2d(exp.classifier.roi_batch)).dataSync());
      assert.ok(maxAbs(sOnly, exp.s_module.logits) <= 1e-5);

      st.images.dispose();
      st.features.dispose();
      assert.equal(tf.memory().numTensors, before, "stages() leaked tensors");
      console.log(
        `${variant}: proposals ${boxErr.toExponential(2)} px, logits ${
          logitErr.toExponential(2)
        }, ` +
          `branch ${clsErr.toExponential(2)}, det boxes ${dBox.toExponential(2)}, scores ${
            dScore.toExponential(2)
          }, ` +
          `masks ${mErr.toExponential(2)}, roi batch ${rb.toExponential(2)}, S ${
            sErr.toExponential(2)
          }`,
      );
      model.dispose();
    },
  });
}

Deno.test({
  name: "SSM predict matches the fixture's pasted masks and class logits without leaking tensors",
  ignore: !dir,
  fn() {
    const exp = expected.reference;
    const model = buildSSM();
    loadWeights(model, `${dir}/weights.safetensors`);
    const image = { width: 512, height: 512, data: pixels! };
    const before = tf.memory().numTensors;
    const out = model.predict(image);
    assert.equal(tf.memory().numTensors, before, "predict() leaked tensors");
    assert.ok(maxAbs(out.classLogits, exp.s_module.logits) <= 2e-3);
    assert.equal(out.predictedClass, exp.s_module.argmax);
    assert.ok(maxAbs(out.classProbs, exp.s_module.softmax) <= 1e-3);
    const n = out.detections.scores.length;
    assert.equal(n, exp.detections.count);
    // Pasted masks: match detections by their box (same order is not pinned).
    let union = 0;
    const full = new Uint8Array(512 * 512);
    for (let i = 0; i < n; i++) {
      const m = out.detections.masks[i];
      let best = -1, bestErr = Infinity;
      exp.detections.boxes.forEach((b: number[], j: number) => {
        const e = maxAbs(out.detections.boxes.subarray(i * 4, i * 4 + 4), b);
        if (e < bestErr) [best, bestErr] = [j, e];
      });
      const pasted = exp.masks.pasted[best];
      assert.deepEqual(m.expandedBoxInt, pasted.expanded_box_int);
      assert.ok(
        Math.abs(m.area - pasted.area) <= Math.max(10, 0.005 * pasted.area),
        `mask ${i}: area ${m.area} vs ${pasted.area}`,
      );
      for (let y = 0; y < m.height; y++) {
        for (let x = 0; x < m.width; x++) {
          if (m.mask[y * m.width + x]) full[(m.y0 + y) * 512 + (m.x0 + x)] = 1;
        }
      }
    }
    for (const v of full) union += v;
    assert.ok(Math.abs(union - exp.masks.union_area) <= Math.max(10, 0.005 * exp.masks.union_area));
    model.dispose();
  },
});
