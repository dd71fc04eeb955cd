import * as tf from "@tensorflow/tfjs-core";
import assert from "node:assert/strict";
import { initBackend } from "../lib/backend/mod.ts";
import {
  bceWithLogits,
  classificationLoss,
  fastrcnnLoss,
  maskrcnnLoss,
  projectMaskOnBox,
  rpnLoss,
  smoothL1,
} from "../lib/losses.ts";
import { readFixtureJson } from "./_util.ts";

interface Arr {
  shape: number[];
  data: number[];
}
interface Case {
  name: string;
  params: Record<string, number>;
  inputs: Record<string, Arr | Arr[]>;
  expected: Record<string, Arr | number>;
}

await initBackend("wasm");
const fx = readFixtureJson<{ cases: Case[] }>("components", "losses.json");
const byName = (n: string) => fx!.cases.find((c) => c.name === n)!;
const scalar = (t: tf.Tensor) => t.dataSync()[0];
const close = (a: number, b: number, rtol = 1e-5, what = "") =>
  assert.ok(Math.abs(a - b) <= rtol * Math.abs(b) + 1e-7, `${what}: ${a} vs ${b}`);

for (const name of ["fastrcnn_loss_2classes", "fastrcnn_loss_3classes"]) {
  Deno.test({
    name: `fastrcnnLoss matches torchvision (${name})`,
    ignore: !fx,
    fn() {
      const c = byName(name);
      const logits = c.inputs.class_logits as Arr, reg = c.inputs.box_regression as Arr;
      const labels = (c.inputs.labels_per_image as Arr[]).flatMap((a) => a.data);
      const targets = (c.inputs.regression_targets_per_image as Arr[]).flatMap((a) => a.data);
      const l = tf.tidy(() => {
        const out = fastrcnnLoss(
          tf.tensor2d(logits.data, logits.shape as [number, number]),
          tf.tensor2d(reg.data, reg.shape as [number, number]),
          labels,
          targets,
        );
        return [scalar(out.classifier), scalar(out.boxReg)];
      });
      close(l[0], (c.expected.classification_loss as Arr).data[0], 1e-5, "classification");
      close(l[1], (c.expected.box_loss as Arr).data[0], 1e-5, "box");
    },
  });
}

Deno.test({
  name: "rpnLoss matches torchvision with fixed sampling",
  ignore: !fx,
  fn() {
    const c = byName("rpn_loss_fixed_sampling");
    const obj = c.inputs.objectness as Arr, d = c.inputs.pred_bbox_deltas as Arr;
    const labels = (c.inputs.labels_per_image as Arr[]).flatMap((a) => a.data);
    const targets = (c.inputs.regression_targets_per_image as Arr[]).flatMap((a) => a.data);
    const [o, b] = tf.tidy(() => {
      const out = rpnLoss(
        tf.tensor2d(obj.data, obj.shape as [number, number]),
        tf.tensor2d(d.data, d.shape as [number, number]),
        labels,
        targets,
        (c.inputs.sampled_pos_inds as Arr).data,
        (c.inputs.sampled_neg_inds as Arr).data,
      );
      return [scalar(out.objectness), scalar(out.rpnBoxReg)];
    });
    close(o, (c.expected.objectness_loss as Arr).data[0], 1e-5, "objectness");
    close(b, (c.expected.box_loss as Arr).data[0], 1e-5, "box");
  },
});

Deno.test({
  name: "mask targets and maskrcnnLoss match torchvision",
  ignore: !fx,
  fn() {
    const c = byName("maskrcnn_loss");
    const m = c.params.M;
    const props = c.inputs.proposals_per_image as Arr[];
    const gts = c.inputs.gt_masks_per_image as Arr[];
    const matched = c.inputs.mask_matched_idxs_per_image as Arr[];
    const gtLabels = c.inputs.gt_labels_per_image as Arr[];
    const targets: number[] = [];
    const labels: number[] = [];
    for (let img = 0; img < props.length; img++) {
      const [, h, w] = gts[img].shape;
      for (let r = 0; r < props[img].shape[0]; r++) {
        const gi = matched[img].data[r];
        const mask = gts[img].data.slice(gi * h * w, (gi + 1) * h * w);
        const box = props[img].data.slice(r * 4, r * 4 + 4);
        targets.push(...projectMaskOnBox(mask, h, w, box, m));
        labels.push(gtLabels[img].data[gi]);
      }
    }
    const expT = (c.expected.mask_targets as Arr).data;
    assert.equal(targets.length, expT.length);
    let maxErr = 0;
    for (let i = 0; i < expT.length; i++) maxErr = Math.max(maxErr, Math.abs(targets[i] - expT[i]));
    assert.ok(maxErr <= 1e-5, `mask targets max error ${maxErr}`);
    assert.deepEqual(labels, (c.expected.selected_labels as Arr).data);
    const ml = c.inputs.mask_logits as Arr;
    const loss = tf.tidy(() => {
      const logits = tf.tensor4d(ml.data, ml.shape as [number, number, number, number]);
      // Pick each RoI's label channel: [R, K, M, M] → [R, M, M].
      const k = ml.shape[1];
      const sel = tf.reshape(tf.cast(tf.oneHot(tf.tensor1d(labels, "int32"), k), "float32"), [
        -1,
        k,
        1,
        1,
      ]);
      const picked = tf.sum(tf.mul(logits, sel), 1) as tf.Tensor3D;
      return scalar(maskrcnnLoss(picked, Float32Array.from(targets)));
    });
    close(loss, (c.expected.mask_loss as Arr).data[0], 1e-5, "mask loss");
  },
});

Deno.test("smoothL1 and bceWithLogits match float64 formulas on random inputs", () => {
  const n = 257;
  const x = Array.from({ length: n }, () => (Math.random() - 0.5) * 0.6);
  const y = Array.from({ length: n }, () => Math.random());
  const beta = 1 / 9;
  const [s, b] = tf.tidy(() => [
    Array.from(smoothL1(tf.tensor1d(x), beta).dataSync()),
    Array.from(bceWithLogits(tf.tensor1d(x.map((v) => v * 30)), tf.tensor1d(y)).dataSync()),
  ]);
  for (let i = 0; i < n; i++) {
    const d = x[i];
    const ref = Math.abs(d) < beta ? 0.5 * d * d / beta : Math.abs(d) - 0.5 * beta;
    close(s[i], ref, 1e-5, `smoothL1[${i}]`);
    const z = x[i] * 30;
    const refB = Math.max(z, 0) - z * y[i] + Math.log1p(Math.exp(-Math.abs(z)));
    close(b[i], refB, 1e-5, `bce[${i}]`);
  }
});

Deno.test("classificationLoss is BCE-with-logits on the one-hot label, averaged", () => {
  const logits = [2.5, -1.25, 0.5];
  const got = tf.tidy(() => scalar(classificationLoss(tf.tensor2d([logits]), 2)));
  const y = [0, 0, 1];
  const ref = logits.reduce(
    (s, z, i) => s + Math.max(z, 0) - z * y[i] + Math.log1p(Math.exp(-Math.abs(z))),
    0,
  ) /
    3;
  close(got, ref, 1e-6, "classification loss");
});

Deno.test("losses keep gradients finite when unsampled anchors have non-finite targets", () => {
  const targets = new Float32Array([0.1, 0.2, 0.3, 0.4, Infinity, NaN, 0, 0]);
  const g = tf.tidy(() => {
    const d = tf.tensor2d([[0, 0, 0, 0], [0, 0, 0, 0]]);
    const grads = tf.grads((dd: tf.Tensor) =>
      rpnLoss(tf.zeros([2]), dd as tf.Tensor2D, [1, 0], targets, [0], []).rpnBoxReg
    );
    return Array.from(grads([d])[0].dataSync());
  });
  assert.ok(g.every(Number.isFinite), `gradient ${g}`);
  assert.ok(g.slice(0, 4).some((v) => v !== 0));
});
