// Segmentation records and metrics (paper protocol + COCO) on hand-checked cases, and their
// agreement with the metrics library's own whole-set paperAp on random masks.
import assert from "node:assert/strict";
import {
  cocoFromRecords,
  paperImageApPerThreshold,
  segmentationMetrics,
  segmentationRecord,
} from "../lib/eval/segmentation.ts";
import { classificationReport } from "../lib/eval/evaluate.ts";
import { paperAp } from "../lib/metrics/mod.ts";
import { Rng } from "../lib/rng.ts";

const W = 16, H = 12;

function rect(x1: number, y1: number, x2: number, y2: number): Uint8Array {
  const m = new Uint8Array(W * H);
  for (let y = y1; y < y2; y++) for (let x = x1; x < x2; x++) m[y * W + x] = 1;
  return m;
}

function record(
  index: number,
  gts: Uint8Array[],
  dets: { mask: Uint8Array; score: number }[],
) {
  return segmentationRecord({
    index,
    name: `s${index}`,
    width: W,
    height: H,
    gtInstances: gts.map((mask) => ({ mask, label: 1 })),
    detections: dets.map((d) => ({ ...d, label: 1, box: [0, 0, W, H] })),
  });
}

Deno.test("perfect detections give AP 1 under both protocols", () => {
  const a = rect(1, 1, 5, 4), b = rect(8, 6, 14, 11);
  const recs = [
    record(0, [a, b], [{ mask: a, score: 0.9 }, { mask: b, score: 0.8 }]),
    record(1, [], []), // lesion-free slice, nothing detected: AP 1 in the paper's protocol
  ];
  const m = segmentationMetrics(recs);
  assert.equal(m.paper.ap50, 1);
  assert.equal(m.paper.mAP, 1);
  assert.equal(m.segm.ap50, 1);
  assert.equal(m.segm.ap, 1);
  assert.equal(m.images, 2);
  assert.equal(m.imagesWithLesions, 1);
  assert.equal(m.gtInstances, 2);
  assert.equal(m.detections, 2);
});

Deno.test("one of two lesions found: paper AP 0.5, COCO AP 51/101; misses and false alarms", () => {
  const a = rect(1, 1, 5, 4), b = rect(8, 6, 14, 11);
  const m = segmentationMetrics([record(0, [a, b], [{ mask: a, score: 0.9 }])]);
  // paper: recalls [0, 0.5, 1], precisions [0, 1, 0] -> monotone [1, 1, 0] -> 0.5 * 1
  assert.equal(m.paper.ap50, 0.5);
  // COCO: precision 1 at the 51 recall thresholds 0..0.5, 0 after
  assert.ok(Math.abs(m.segm.ap50 - 51 / 101) < 1e-12, `${m.segm.ap50}`);
  assert.ok(Math.abs(m.segm.ap - 51 / 101) < 1e-12);
  // a detection on a lesion-free slice: AP 0 there (paper), a false positive (COCO)
  const m2 = segmentationMetrics([
    record(0, [a], [{ mask: a, score: 0.5 }]),
    record(1, [], [{ mask: b, score: 0.9 }]),
  ]);
  assert.equal(m2.paper.ap50, 0.5);
  // the false positive ranks first: precision 1/2 at recall 1
  assert.ok(Math.abs(m2.segm.ap50 - 0.5) < 1e-12, `${m2.segm.ap50}`);
  // nothing detected at all
  const m3 = segmentationMetrics([record(0, [a], []), record(1, [], [])]);
  assert.equal(m3.paper.ap50, 0.5);
  assert.equal(m3.segm.ap50, 0);
});

Deno.test("a half-overlapping detection counts at IoU 0.5 only in COCO (paper needs IoU > t)", () => {
  const g = rect(0, 0, 8, 4); // 32 px
  const d = rect(0, 0, 8, 4);
  for (let x = 0; x < 8; x++) d[2 * W + x] = d[3 * W + x] = 0; // 16 px, IoU exactly 0.5
  const m = segmentationMetrics([record(0, [g], [{ mask: d, score: 0.7 }])]);
  assert.equal(m.paper.perThreshold[0].meanAp, 0); // strict > 0.5 in the authors' code
  assert.ok(Math.abs(m.segm.ap50 - 1) < 1e-12); // pycocotools matches IoU >= 0.5
  assert.equal(m.paper.perThreshold[1].meanAp, 0);
});

Deno.test("records agree with paperAp over the whole set, in any order (random masks)", () => {
  const rng = new Rng(42);
  const images = [];
  const recs = [];
  for (let i = 0; i < 12; i++) {
    const nG = rng.int(0, 4), nD = rng.int(0, 5);
    const blob = () => {
      const x = rng.int(0, W - 4), y = rng.int(0, H - 3);
      return rect(x, y, x + rng.int(2, 5), y + rng.int(2, 4));
    };
    const gts = Array.from({ length: nG }, blob);
    // detections near the gts so that some thresholds match
    const dets = Array.from({ length: nD }, (_, k) => ({
      mask: gts.length && k % 2 === 0 ? gts[k % gts.length].slice() : blob(),
      score: Math.fround(rng.uniform()),
    }));
    if (dets.length && gts.length) dets[0].mask[rng.int(0, W * H)] = 1; // perturb one mask
    images.push({
      gtMasks: gts,
      detMasks: dets.map((d) => d.mask),
      detScores: dets.map((d) => d.score),
    });
    recs.push(record(i, gts, dets));
  }
  const ref = paperAp(images);
  const m = segmentationMetrics([...recs].reverse());
  assert.equal(m.paper.ap50, ref.ap50);
  assert.equal(m.paper.ap75, ref.ap75);
  assert.equal(m.paper.mAP, ref.mAP);
  ref.perThreshold.forEach((t, k) => assert.equal(m.paper.perThreshold[k].meanAp, t.meanAp));
  // per-image values, the same as the library's per-image list
  recs.forEach((r, i) =>
    assert.deepEqual(r.paperAp, ref.perThreshold.map((t) => t.perImageAp[i]), `image ${i}`)
  );
  assert.deepEqual(segmentationMetrics(recs), m);
});

Deno.test("COCO ground truth and results carry ids, RLE, areas and boxes of the masks", () => {
  const a = rect(2, 3, 6, 5); // x 2..5, y 3..4: 8 px
  const rec = segmentationRecord({
    index: 4,
    name: "x",
    width: W,
    height: H,
    gtInstances: [{ mask: a, label: 1 }],
    detections: [{ mask: a, score: 0.25, label: 1, box: [1.5, 2.5, 6.5, 5.5] }],
  });
  assert.deepEqual(rec.gt[0].bbox, [2, 3, 4, 2]);
  assert.equal(rec.gt[0].area, 8);
  assert.deepEqual(rec.dets[0].bbox, [1.5, 2.5, 5, 3]);
  const coco = cocoFromRecords([rec]);
  assert.deepEqual(coco.gt.images, [{ id: 5, width: W, height: H }]);
  assert.equal(coco.gt.annotations[0].image_id, 5);
  assert.equal(coco.segm[0].bbox, undefined); // mask areas for segm results
  assert.deepEqual(coco.bbox[0].bbox, [1.5, 2.5, 5, 3]);
  assert.throws(
    () => segmentationMetrics([rec, rec]),
    /two records for image index 4/,
  );
  assert.throws(
    () =>
      segmentationRecord({
        index: 0,
        name: "bad",
        width: W,
        height: H,
        gtInstances: [{ mask: new Uint8Array(3), label: 1 }],
        detections: [],
      }),
    /bad.*gt instance 0 has 3 pixels/,
  );
});

Deno.test("paperImageApPerThreshold handles empty sides", () => {
  const a = rect(0, 0, 2, 2);
  assert.deepEqual(paperImageApPerThreshold([], [], [], [], []), new Array(10).fill(1));
  assert.deepEqual(paperImageApPerThreshold([a], [1], [], [], []), new Array(10).fill(0));
  assert.deepEqual(paperImageApPerThreshold([], [], [a], [0.5], [1]), new Array(10).fill(0));
});

Deno.test("classificationReport reproduces the paper's published matrix", () => {
  const cm = [[9322, 123, 5], [174, 7139, 82], [27, 277, 4042]];
  const recs = [];
  let i = 0;
  for (let t = 0; t < 3; t++) {
    for (let p = 0; p < 3; p++) {
      for (let k = 0; k < cm[t][p]; k++) {
        recs.push({ index: i++, name: "", label: t, predicted: p, probs: [] });
      }
    }
  }
  const r = classificationReport(recs);
  assert.deepEqual(r.metrics.confusionMatrix, cm);
  assert.equal((100 * r.metrics.paperF1!).toFixed(2), "96.76");
  assert.ok(Math.abs(r.metrics.recall[2] - 4042 / 4346) < 1e-15); // 93.005%
  assert.equal((100 * r.metrics.accuracy).toFixed(2), "96.75");
  assert.throws(() => classificationReport([]), /no test images/);
});
