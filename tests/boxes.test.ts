import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../lib/backend/mod.ts";
import {
  argsortDescending,
  BalancedPositiveNegativeSampler,
  batchedNms,
  BBOX_XFORM_CLIP,
  boxArea,
  BoxCoder,
  boxIoU,
  clipBoxesToImage,
  clipBoxesToImageTensor,
  Matcher,
  nms,
  removeSmallBoxes,
} from "../lib/boxes.ts";
import { Rng } from "../lib/rng.ts";
import { readFixtureJson } from "./_util.ts";

interface Arr {
  shape: number[];
  dtype: string;
  data: number[];
}
interface Case {
  name: string;
  params: Record<string, unknown> | null;
  inputs: Record<string, Arr>;
  expected: Record<string, Arr | number | number[]>;
}
interface Fixture {
  cases: Case[];
}

const f32 = (a: Arr) => Float32Array.from(a.data);
const getCase = (fx: Fixture, name: string) => {
  const c = fx.cases.find((c) => c.name === name);
  if (!c) throw new Error(`fixture case ${name} missing`);
  return c;
};
const boxOps = readFixtureJson<Fixture>("components", "box_ops.json");
const boxCoderFx = readFixtureJson<Fixture>("components", "box_coder.json");
const matcherFx = readFixtureJson<Fixture>("components", "matcher.json");

await initBackend("cpu");

// ---------------------------------------------------------------- small always-running tests

Deno.test("boxIoU matches hand-computed values (overlap, containment, touching, disjoint)", () => {
  const a = new Float32Array([0, 0, 10, 10]);
  const b = new Float32Array([5, 5, 15, 15, 0, 0, 5, 10, 10, 0, 20, 10, 30, 30, 40, 40]);
  const iou = boxIoU(a, b);
  assert.ok(Math.abs(iou[0] - 25 / 175) < 1e-7);
  assert.ok(Math.abs(iou[1] - 0.5) < 1e-7);
  assert.equal(iou[2], 0);
  assert.equal(iou[3], 0);
  assert.deepEqual([...boxArea(b)], [100, 50, 100, 100]);
  // Two zero-area boxes: 0/0 = NaN, as in torchvision.
  assert.ok(
    Number.isNaN(boxIoU(new Float32Array([1, 1, 1, 1]), new Float32Array([1, 1, 1, 1]))[0]),
  );
});

Deno.test("nms keeps the highest box per cluster, suppresses only on IoU > threshold", () => {
  const boxes = new Float32Array([
    0,
    0,
    10,
    10, // 0
    0,
    0,
    10,
    10.5, // 1: IoU with 0 is 0.952
    0,
    5,
    10,
    15, // 2: IoU with 0 is 1/3
    100,
    100,
    110,
    110, // 3
    0,
    0,
    10,
    20, // 4: IoU with 0 is 0.5, with 1 is 0.525
  ]);
  const scores = [0.9, 0.95, 0.5, 0.1, 0.3];
  // visit order 1, 0, 2, 4, 3: box 1 suppresses 0 (0.952) and 4 (0.525) but not 2 (0.367)
  assert.deepEqual([...nms(boxes, scores, 0.5)], [1, 2, 3]);
  assert.deepEqual([...nms(boxes, scores, 0.3)], [1, 3]);
  assert.deepEqual([...nms(boxes, scores, 0.96)], [1, 0, 2, 4, 3]);
  // IoU exactly at the threshold does not suppress (strict >)
  const pair = new Float32Array([0, 0, 10, 10, 0, 0, 10, 20]);
  assert.deepEqual([...nms(pair, [0.9, 0.8], 0.5)], [0, 1]);
  assert.deepEqual([...nms(pair, [0.9, 0.8], 0.49)], [0]);
  // zero-area boxes never suppress and are never suppressed
  const z = new Float32Array([5, 5, 9, 5, 5, 5, 9, 5]);
  assert.deepEqual([...nms(z, [0.9, 0.8], 0.1)], [0, 1]);
  assert.deepEqual([...nms(new Float32Array(0), [], 0.5)], []);
});

Deno.test("nms on 2000 random boxes keeps a set where no pair overlaps above the threshold", () => {
  const rng = new Rng(9);
  const n = 2000;
  const boxes = new Float32Array(n * 4), scores = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const x = rng.uniform() * 480, y = rng.uniform() * 480;
    boxes.set([x, y, x + 4 + rng.uniform() * 40, y + 4 + rng.uniform() * 40], i * 4);
    scores[i] = rng.uniform();
  }
  const t0 = performance.now();
  const keep = nms(boxes, scores, 0.5);
  const ms = performance.now() - t0;
  console.log(`nms 2000 boxes: ${ms.toFixed(1)} ms, kept ${keep.length}`);
  const kept = new Float32Array([...keep].flatMap((i) => [...boxes.subarray(i * 4, i * 4 + 4)]));
  const iou = boxIoU(kept, kept);
  for (let a = 0; a < keep.length; a++) {
    for (let b = a + 1; b < keep.length; b++) assert.ok(iou[a * keep.length + b] <= 0.5);
    if (a > 0) assert.ok(scores[keep[a - 1]] >= scores[keep[a]]);
  }
  // every suppressed box overlaps a kept box with a higher score by more than the threshold
  const keptSet = new Set(keep);
  for (let i = 0; i < n; i++) {
    if (keptSet.has(i)) continue;
    const one = boxes.subarray(i * 4, i * 4 + 4);
    const o = boxIoU(one, kept);
    assert.ok(keep.some((k, j) => scores[k] > scores[i] && o[j] > 0.5), `box ${i}`);
  }
});

Deno.test("argsortDescending is stable for equal scores", () => {
  assert.deepEqual([...argsortDescending([0.5, 0.7, 0.5, 0.7, 0.1])], [1, 3, 0, 2, 4]);
});

Deno.test("batchedNms never suppresses across classes and sorts globally by score", () => {
  const boxes = new Float32Array([0, 0, 10, 10, 0, 0, 10, 10, 1, 1, 10, 10, 50, 50, 60, 60]);
  const scores = [0.9, 0.8, 0.85, 0.95];
  const idxs = [0, 1, 0, 1];
  for (const m of ["perClass", "coordinateTrick", "auto"] as const) {
    assert.deepEqual([...batchedNms(boxes, scores, idxs, 0.5, m)], [3, 0, 1], m);
  }
});

Deno.test("removeSmallBoxes uses >= in float32 and clipBoxesToImage clamps to (w, h)", () => {
  const boxes = new Float32Array([0, 0, 2, 2, 0, 0, 1.9999, 3, 6, 0, 6.001, 1, 5, 5, 4, 9]);
  assert.deepEqual([...removeSmallBoxes(boxes, 2)], [0]);
  assert.deepEqual([...removeSmallBoxes(boxes, 1e-3)], [0, 1]);
  const c = clipBoxesToImage(new Float32Array([-5, -5, 100, 100, 90, 70, 95, 80]), [60, 80]);
  assert.deepEqual([...c], [0, 0, 80, 60, 80, 60, 80, 60]);
});

Deno.test("Matcher reproduces float32 thresholds and the low-quality rescue (hand example)", () => {
  // 2 gt x 4 predictions
  const q = new Float32Array([
    0.7,
    0.2,
    0.5,
    0.0,
    0.1,
    0.6,
    0.29,
    0.0,
  ]);
  assert.deepEqual([...new Matcher(0.7, 0.3, false).match(q, 2)], [0, -2, -2, -1]);
  // gt 1's best is 0.6 at pred 1 -> rescued; gt 0's best is pred 0 (already matched).
  assert.deepEqual([...new Matcher(0.7, 0.3, true).match(q, 2)], [0, 1, -2, -1]);
  assert.throws(() => new Matcher(0.7, 0.3).match(new Float32Array(0), 0), /no ground-truth/);
  assert.throws(() => new Matcher(0.3, 0.7), /lowThreshold/);
});

Deno.test("BoxCoder encode/decode round-trips on random boxes (float64 reference)", () => {
  const rng = new Rng(1);
  const n = 200;
  const props = new Float32Array(n * 4), gts = new Float32Array(n * 4);
  for (let i = 0; i < n; i++) {
    for (const arr of [props, gts]) {
      const x = rng.uniform() * 400, y = rng.uniform() * 400;
      // sizes 5..100, so |log(gw/pw)| < log(1000/16) and decode does not clamp
      arr.set([x, y, x + 5 + rng.uniform() * 95, y + 5 + rng.uniform() * 95], i * 4);
    }
  }
  for (const w of [[1, 1, 1, 1], [10, 10, 5, 5]] as const) {
    const coder = new BoxCoder(w);
    const t = coder.encode(gts, props);
    for (let i = 0; i < n; i++) {
      const p = props.subarray(i * 4, i * 4 + 4), g = gts.subarray(i * 4, i * 4 + 4);
      const pw = p[2] - p[0], ph = p[3] - p[1], gw = g[2] - g[0], gh = g[3] - g[1];
      const ref = [
        w[0] * ((g[0] + gw / 2) - (p[0] + pw / 2)) / pw,
        w[1] * ((g[1] + gh / 2) - (p[1] + ph / 2)) / ph,
        w[2] * Math.log(gw / pw),
        w[3] * Math.log(gh / ph),
      ];
      for (let c = 0; c < 4; c++) assert.ok(Math.abs(t[i * 4 + c] - ref[c]) < 1e-4);
    }
    const back = coder.decode(t, props);
    for (let i = 0; i < n * 4; i++) assert.ok(Math.abs(back[i] - gts[i]) < 2e-3, `${i}`);
  }
});

Deno.test("BalancedPositiveNegativeSampler draws the torchvision counts without repeats", () => {
  const rng = new Rng(3);
  const labels = new Int32Array(1000).fill(0);
  for (let i = 0; i < 40; i++) labels[i * 7] = 1;
  for (let i = 0; i < 100; i++) labels[i * 7 + 3] = -1;
  const s = new BalancedPositiveNegativeSampler(256, 0.5);
  const fewPos = new Int32Array(10).fill(1);
  const [a, b, c] = s.sample([labels, fewPos, new Int32Array([0, 0, -1, 1])], rng);
  assert.equal(a.positive.length, 40); // fewer positives than 128: all of them
  assert.equal(a.negative.length, 216); // the rest of 256 (860 negatives available)
  assert.equal(new Set(a.negative).size, 216);
  assert.ok([...a.positive].every((i) => labels[i] === 1));
  assert.ok([...a.negative].every((i) => labels[i] === 0));
  assert.deepEqual([...a.negative], [...a.negative].sort((x, y) => x - y));
  assert.equal(b.positive.length, 10);
  assert.equal(b.negative.length, 0);
  assert.deepEqual([...c.positive], [3]);
  assert.deepEqual([...c.negative], [0, 1]);
  // many positives: capped at 128, and every positive is drawn about equally often
  const many = new Int32Array(400).fill(1);
  const hits = new Float64Array(400);
  for (let t = 0; t < 200; t++) for (const i of s.sample([many], rng)[0].positive) hits[i]++;
  assert.equal(s.sample([many], rng)[0].positive.length, 128);
  const mean = hits.reduce((x, y) => x + y) / 400; // 64
  assert.ok(hits.every((h) => Math.abs(h - mean) < 40), "roughly uniform");
  // the RoI-head setting: 512 per image, 25% positive
  const roi = new BalancedPositiveNegativeSampler(512, 0.25).sample(
    [new Int32Array(2000).fill(1)],
    rng,
  );
  assert.equal(roi[0].positive.length, 128);
});

// ---------------------------------------------------------------- fixtures: box_ops.json

Deno.test({
  name: "boxIoU and clipBoxesToImage match torchvision (box_ops.json)",
  ignore: !boxOps,
  fn() {
    const c = getCase(boxOps!, "box_iou");
    const iou = boxIoU(f32(c.inputs.boxes1), f32(c.inputs.boxes2));
    const exp = (c.expected.iou as Arr).data;
    assert.equal(iou.length, exp.length);
    for (let i = 0; i < exp.length; i++) assert.ok(Math.abs(iou[i] - exp[i]) <= 1e-6, `iou[${i}]`);
    const cc = getCase(boxOps!, "clip_boxes_to_image");
    const clipped = clipBoxesToImage(f32(cc.inputs.boxes), cc.params!.size_hw as [number, number]);
    assert.deepEqual([...clipped], (cc.expected.clipped as Arr).data.map(Math.fround));
    const t = clipBoxesToImageTensor(
      tf.tensor2d(f32(cc.inputs.boxes), [12, 4]),
      cc.params!.size_hw as [number, number],
    );
    assert.deepEqual([...t.dataSync()], [...clipped]);
    t.dispose();
  },
});

Deno.test({
  name: "removeSmallBoxes matches torchvision keep lists (box_ops.json)",
  ignore: !boxOps,
  fn() {
    const c = getCase(boxOps!, "remove_small_boxes");
    const boxes = f32(c.inputs.boxes);
    assert.deepEqual(
      [...removeSmallBoxes(boxes, 0.001)],
      (c.expected["keep_min_size_0.001"] as Arr).data,
    );
    assert.deepEqual(
      [...removeSmallBoxes(boxes, 2.0)],
      (c.expected["keep_min_size_2.0"] as Arr).data,
    );
  },
});

Deno.test({
  name: "nms and batchedNms match torchvision keep lists (box_ops.json)",
  ignore: !boxOps,
  fn() {
    const c = getCase(boxOps!, "nms_and_batched_nms");
    const boxes = f32(c.inputs.boxes), scores = f32(c.inputs.scores), idxs = c.inputs.idxs.data;
    for (const thr of ["0.7", "0.5"]) {
      const t = Number(thr);
      assert.deepEqual([...nms(boxes, scores, t)], (c.expected[`nms_keep_iou_${thr}`] as Arr).data);
      const exp = (c.expected[`batched_nms_keep_iou_${thr}`] as Arr).data;
      for (const m of ["auto", "perClass", "coordinateTrick"] as const) {
        assert.deepEqual([...batchedNms(boxes, scores, idxs, t, m)], exp, `${m} ${thr}`);
      }
    }
    const e = getCase(boxOps!, "nms_exact_threshold");
    const eb = f32(e.inputs.boxes);
    assert.deepEqual(
      [...nms(eb, f32(e.inputs.scores), e.params!.iou_threshold as number)],
      (e.expected.keep as Arr).data,
    );
    const iou = boxIoU(eb, eb), exp = (e.expected.iou_matrix as Arr).data;
    for (let i = 0; i < exp.length; i++) assert.ok(Math.abs(iou[i] - exp[i]) <= 1e-6);
  },
});

// ---------------------------------------------------------------- fixtures: box_coder.json

function assertClose(actual: ArrayLike<number>, expected: number[], what: string) {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i], b = expected[i];
    assert.ok(Math.abs(a - b) <= 1e-5 * Math.abs(b) + 1e-5, `${what}[${i}]: ${a} vs ${b}`);
  }
}

Deno.test({
  name: "BoxCoder.encode/decode on typed arrays match torchvision (box_coder.json, all cases)",
  ignore: !boxCoderFx,
  fn() {
    for (const c of boxCoderFx!.cases) {
      const coder = new BoxCoder(c.params!.weights as [number, number, number, number]);
      assert.equal(
        Math.fround(coder.bboxXformClip),
        Math.fround(c.params!.bbox_xform_clip as number),
      );
      if (c.name.startsWith("encode")) {
        const t = coder.encode(f32(c.inputs.reference_boxes), f32(c.inputs.proposals));
        assertClose(t, (c.expected.targets as Arr).data, c.name);
      } else {
        const d = coder.decode(f32(c.inputs.rel_codes), f32(c.inputs.boxes));
        assertClose(d, (c.expected.decoded as Arr).data, c.name);
      }
    }
  },
});

for (const backend of ["cpu", "wasm"] as const) {
  Deno.test({
    name: `BoxCoder.encode/decode on tensors match torchvision (box_coder.json, ${backend})`,
    ignore: !boxCoderFx,
    async fn() {
      await initBackend(backend);
      const before = tf.memory().numTensors;
      for (const c of boxCoderFx!.cases) {
        const coder = new BoxCoder(c.params!.weights as [number, number, number, number]);
        if (c.name.startsWith("encode")) {
          const g = tf.tensor2d(c.inputs.reference_boxes.data, [20, 4]);
          const p = tf.tensor2d(c.inputs.proposals.data, [20, 4]);
          const t = coder.encode(g, p);
          assert.deepEqual(t.shape, [20, 4]);
          assertClose(t.dataSync(), (c.expected.targets as Arr).data, c.name);
          tf.dispose([g, p, t]);
        } else {
          const rs = c.inputs.rel_codes.shape as [number, number];
          const rel = tf.tensor2d(c.inputs.rel_codes.data, rs);
          const b = tf.tensor2d(c.inputs.boxes.data, c.inputs.boxes.shape as [number, number]);
          const d = coder.decode(rel, b);
          assert.deepEqual(d.shape, (c.expected.decoded as Arr).shape);
          assertClose(d.dataSync(), (c.expected.decoded as Arr).data, c.name);
          tf.dispose([rel, b, d]);
        }
      }
      assert.equal(tf.memory().numTensors, before, "no leaked tensors");
      await initBackend("cpu");
    },
  });
}

Deno.test("BoxCoder tensor decode is differentiable: gradient matches the analytic one", () => {
  tf.tidy(() => {
    const coder = new BoxCoder([10, 10, 5, 5]);
    const bx = [[10, 20, 50, 80], [0, 0, 30, 10]];
    const rel0 = [0.3, -0.2, 0.5, -0.4, -1, 2, 0.1, 0.2];
    const wts = [1, 2, 3, 4, -1, 0.5, 2, -3]; // d loss / d decoded box, [2, 1, 4]
    const boxes = tf.tensor2d(bx);
    const weights = tf.tensor3d(wts, [2, 1, 4]);
    const loss = (r: tf.Tensor) =>
      tf.sum(tf.mul(coder.decode(r as tf.Tensor2D, boxes), weights)) as tf.Scalar;
    const g = tf.grad(loss)(tf.tensor2d(rel0, [2, 4])).dataSync();
    for (let i = 0; i < 2; i++) {
      const [x1, y1, x2, y2] = bx[i], w = x2 - x1, h = y2 - y1;
      const [a, b, c, d] = wts.slice(i * 4, i * 4 + 4);
      const r = rel0.slice(i * 4, i * 4 + 4);
      const exp = [
        (a + c) * w / 10,
        (b + d) * h / 10,
        (c - a) * 0.5 * w * Math.exp(r[2] / 5) / 5,
        (d - b) * 0.5 * h * Math.exp(r[3] / 5) / 5,
      ];
      for (let k = 0; k < 4; k++) {
        const got = g[i * 4 + k];
        assert.ok(
          Math.abs(got - exp[k]) < 1e-4 * Math.max(1, Math.abs(exp[k])),
          `${got} vs ${exp[k]}`,
        );
      }
    }
  });
});

Deno.test("BoxCoder.decode clamps only large positive dw/dh", () => {
  const coder = new BoxCoder([1, 1, 1, 1]);
  const box = new Float32Array([0, 0, 10, 10]);
  const big = coder.decode(new Float32Array([0, 0, 10, -30]), box);
  const wMax = 10 * Math.exp(BBOX_XFORM_CLIP); // 625
  assert.ok(Math.abs(big[2] - big[0] - wMax) < 1e-2);
  assert.ok(big[3] - big[1] < 1e-9 && big[3] - big[1] >= 0);
  assert.throws(
    () => coder.decode(new Float32Array(12), new Float32Array(8)),
    /not N\*4K/,
  );
});

// ---------------------------------------------------------------- fixtures: matcher.json

Deno.test({
  name: "Matcher matches torchvision on all matcher.json cases and thresholds",
  ignore: !matcherFx,
  fn() {
    const settings: [string, number, number, boolean][] = [
      ["high0.7_low0.3_allowlow_true", 0.7, 0.3, true],
      ["high0.7_low0.3_allowlow_false", 0.7, 0.3, false],
      ["high0.5_low0.5_allowlow_false", 0.5, 0.5, false],
    ];
    for (const c of matcherFx!.cases) {
      const q = c.inputs.match_quality_matrix;
      for (const [key, hi, lo, allow] of settings) {
        const m = new Matcher(hi, lo, allow).match(f32(q), q.shape[0]);
        assert.deepEqual([...m], (c.expected[key] as Arr).data, `${c.name} ${key}`);
      }
      if (c.inputs.gt_boxes) {
        const iou = boxIoU(f32(c.inputs.gt_boxes), f32(c.inputs.anchors));
        for (let i = 0; i < q.data.length; i++) assert.ok(Math.abs(iou[i] - q.data[i]) <= 1e-6);
      }
    }
  },
});
