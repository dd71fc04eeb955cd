// The paper's AP protocol: hand-worked cases (always run) and the authors' compute_ap fixture.
import assert from "node:assert/strict";
import { fixturesDir, readFixtureJson } from "./_util.ts";
import {
  PAPER_IOU_THRESHOLDS,
  paperAp,
  paperImageAp,
  paperMaskIou,
} from "../lib/metrics/paper_ap.ts";

/** 1-D "mask" of 10 pixels with the given foreground indices. */
const m = (...idx: number[]) => {
  const a = new Uint8Array(10);
  for (const i of idx) a[i] = 1;
  return a;
};

Deno.test("one detection can absorb several gts (the authors' quirk is kept)", () => {
  // gt1 = 0..3, gt2 = 4..5; det A (0..5) has IoU 4/6 with gt1 and 2/6 with gt2, det B (5..8) 1/5
  // with gt2. At t = 0.15 gt2 takes A again (highest IoU), so B stays a false positive:
  // ranking TP, FP, recall 1/2 -> AP = 0.5 (COCO-style exclusive matching would give 1).
  const image = {
    gtMasks: [m(0, 1, 2, 3), m(4, 5)],
    detMasks: [m(5, 6, 7, 8), m(0, 1, 2, 3, 4, 5)],
    detScores: [0.8, 0.9],
  };
  assert.equal(paperImageAp(image, 0.15), 0.5);
  // at t = 0.25 only gt1 matches A, B is below the threshold for gt2: same AP
  assert.equal(paperImageAp(image, 0.25), 0.5);
});

Deno.test("matches need IoU strictly greater than the threshold", () => {
  const image = { gtMasks: [m(0, 1)], detMasks: [m(0, 1, 2, 3)], detScores: [1] }; // IoU 0.5
  assert.equal(paperImageAp(image, 0.5), 0);
  assert.equal(paperImageAp(image, Math.fround(0.45)), 1);
});

Deno.test("ranking by score: FP then TP gives 0.5, TP then FP gives 1", () => {
  const gtMasks = [m(0, 1, 2)];
  const detMasks = [m(0, 1, 2), m(7, 8)];
  assert.equal(paperImageAp({ gtMasks, detMasks, detScores: [0.4, 0.6] }, 0.5), 0.5);
  assert.equal(paperImageAp({ gtMasks, detMasks, detScores: [0.6, 0.4] }, 0.5), 1);
  // TP, TP over three gts: precision 1, recall 2/3 -> AP 2/3 (float32)
  const three = {
    gtMasks: [m(0, 1), m(3, 4), m(6, 7)],
    detMasks: [m(0, 1), m(6, 7)],
    detScores: [0.9, 0.8],
  };
  assert.equal(paperImageAp(three, 0.5), Math.fround(2 / 3));
});

Deno.test("detections of another class are not matched", () => {
  const image = {
    gtMasks: [m(0, 1, 2)],
    detMasks: [m(0, 1, 2), m(0, 1)],
    detScores: [0.9, 0.5],
    gtLabels: [1],
    detLabels: [2, 1],
  };
  // the best-IoU det has the wrong class; the second (IoU 2/3) is taken: FP then TP
  assert.equal(paperImageAp(image, 0.5), 0.5);
});

Deno.test("empty images: neither side 1, one side 0; means over images then thresholds", () => {
  const res = paperAp([
    { gtMasks: [], detMasks: [], detScores: [] },
    { gtMasks: [m(1)], detMasks: [], detScores: [] },
    { gtMasks: [], detMasks: [m(1)], detScores: [0.3] },
    { gtMasks: [m(0, 1, 2, 3)], detMasks: [m(0, 1, 2)], detScores: [0.3] }, // IoU 0.75
  ]);
  // image 4 matches for thresholds < 0.75 (strict): 0.5 .. 0.7 (5 thresholds)
  assert.deepEqual(res.perThreshold[0].perImageAp, [1, 0, 0, 1]);
  assert.deepEqual(res.perThreshold[5].perImageAp, [1, 0, 0, 0]);
  assert.equal(res.ap50, 0.5);
  assert.equal(res.ap75, 0.25);
  assert.equal(res.mAP, (5 * 0.5 + 5 * 0.25) / 10);
  assert.equal(PAPER_IOU_THRESHOLDS[1], 0.550000011920929);
});

Deno.test("mask IoU is float32 inter / (a1 + a2 - inter) and rejects size mismatches", () => {
  const iou = paperMaskIou([m(0, 1, 2)], [m(1, 2, 3, 4), m()]);
  assert.equal(iou[0][0], Math.fround(2 / 5));
  assert.equal(iou[0][1], 0);
  assert.ok(Number.isNaN(paperMaskIou([m()], [m()])[0][0]));
  assert.throws(() => paperMaskIou([new Uint8Array(3)], [m(1)]), /detMasks\[0\] has 3 pixels/);
});

interface PaperFixture {
  height: number;
  width: number;
  images: { gt_masks: number[][]; pred_masks: number[][]; scores: number[] }[];
  thresholds: number[];
  per_threshold: { threshold: number; per_image_ap: number[]; mean_ap: number }[];
  AP50: number;
  AP75: number;
  mAP: number;
}

Deno.test({
  name: "paperAp equals the authors' compute_ap on paper_ap.json (1e-6)",
  ignore: !fixturesDir(),
  fn() {
    const fx = readFixtureJson<PaperFixture>("paper_ap", "paper_ap.json")!;
    const n = fx.height * fx.width;
    const toMask = (idx: number[]) => {
      const a = new Uint8Array(n);
      for (const i of idx) a[i] = 1;
      return a;
    };
    const images = fx.images.map((im) => ({
      gtMasks: im.gt_masks.map(toMask),
      detMasks: im.pred_masks.map(toMask),
      detScores: im.scores,
    }));
    assert.deepEqual([...PAPER_IOU_THRESHOLDS], fx.thresholds);
    const res = paperAp(images);
    fx.per_threshold.forEach((want, t) => {
      const got = res.perThreshold[t];
      assert.equal(got.threshold, want.threshold);
      want.per_image_ap.forEach((v, i) => {
        assert.ok(
          Math.abs(got.perImageAp[i] - v) <= 1e-6,
          `t=${t} image ${i}: ${got.perImageAp[i]} vs ${v}`,
        );
      });
      assert.ok(Math.abs(got.meanAp - want.mean_ap) <= 1e-6, `t=${t} mean`);
    });
    assert.ok(Math.abs(res.ap50 - fx.AP50) <= 1e-6);
    assert.ok(Math.abs(res.ap75 - fx.AP75) <= 1e-6);
    assert.ok(Math.abs(res.mAP - fx.mAP) <= 1e-6);
  },
});
