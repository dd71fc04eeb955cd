// COCOeval port: every case of ../shared/fixtures/coco (pycocotools output) plus hand-worked cases.
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { fixturesDir } from "./_util.ts";
import {
  type CocoEvalOptions,
  type CocoEvalResult,
  cocoEvaluate,
  linspace,
} from "../lib/metrics/coco.ts";
import type { CocoDataset, CocoResult } from "../lib/metrics/coco_data.ts";
import { numpyMean, pyFormatFixed, summarizeStat } from "../lib/metrics/coco_summary.ts";
import { rleEncode, rleToCoco } from "../lib/metrics/rle.ts";

const TOL = 1e-6;

function close(got: number, want: number, what: string): void {
  assert.ok(Math.abs(got - want) <= TOL, `${what}: got ${got}, want ${want}`);
}
function closeAll(got: ArrayLike<number>, want: ArrayLike<number>, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) close(got[i], want[i], `${what}[${i}]`);
}

// ---------------------------------------------------------------------------------------------
// Hand-worked cases (always run)

const BOX_GT: CocoDataset = {
  images: [{ id: 1, height: 100, width: 100 }],
  categories: [{ id: 1, name: "lesion" }],
  annotations: [
    { id: 1, image_id: 1, category_id: 1, iscrowd: 0, area: 100, bbox: [0, 0, 10, 10] },
    { id: 2, image_id: 1, category_id: 1, iscrowd: 0, area: 100, bbox: [20, 20, 10, 10] },
  ],
};

Deno.test("bbox AP of a TP, FP, TP ranking over two gts is (51 + 50*2/3)/101", () => {
  const res = cocoEvaluate(BOX_GT, [
    { image_id: 1, category_id: 1, score: 0.9, bbox: [0, 0, 10, 10] },
    { image_id: 1, category_id: 1, score: 0.8, bbox: [50, 50, 10, 10] },
    { image_id: 1, category_id: 1, score: 0.7, bbox: [20, 20, 10, 10] },
  ], { iouType: "bbox" });
  // recall 0.5 at precision 1, then recall 1 at precision 2/3: thresholds 0..0.50 read 1, the
  // 50 thresholds 0.51..1 read 2/3
  const ap = (51 + 50 * (2 / 3)) / 101;
  const want = [ap, ap, ap, ap, -1, -1, 0.5, 1, 1, 1, -1, -1];
  closeAll(res.stats, want, "stats");
  assert.equal(
    res.summaryLines[0],
    " Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 0.835",
  );
  assert.equal(
    res.summaryLines[1],
    " Average Precision  (AP) @[ IoU=0.50      | area=   all | maxDets=100 ] = 0.835",
  );
  assert.equal(
    res.summaryLines[5],
    " Average Precision  (AP) @[ IoU=0.50:0.95 | area= large | maxDets=100 ] = -1.000",
  );
  assert.equal(
    res.summaryLines[6],
    " Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets=  1 ] = 0.500",
  );
  assert.deepEqual(res.accumulateOrder, [[1, 2, 3]]);
  const e = res.evalImgs[0]!;
  assert.deepEqual(e.dtMatches[0], [1, 0, 2]);
  assert.deepEqual(e.gtMatches[9], [1, 3]);
});

Deno.test("an IoU equal to the threshold matches; thresholds are numpy linspace values", () => {
  assert.equal(linspace(0.5, 0.95, 10)[8], 0.8999999999999999);
  assert.equal(linspace(0, 1, 101)[35], 0.35000000000000003);
  const gt: CocoDataset = { ...BOX_GT, annotations: [BOX_GT.annotations[0]] };
  // det [0,0,10,20] vs gt [0,0,10,10]: IoU 100/200 = 0.5 exactly
  const res = cocoEvaluate(gt, [{ image_id: 1, category_id: 1, score: 1, bbox: [0, 0, 10, 20] }], {
    iouType: "bbox",
  });
  closeAll(res.apPerIouThreshold, [1, 0, 0, 0, 0, 0, 0, 0, 0, 0], "AP per threshold");
  close(res.stats[0], 0.1, "AP");
  close(res.stats[1], 1, "AP50");
  close(res.stats[2], 0, "AP75");
});

Deno.test("crowd gts are ignored, absorb any number of dets, and use the det area as union", () => {
  const gt: CocoDataset = {
    ...BOX_GT,
    annotations: [
      BOX_GT.annotations[0],
      { id: 2, image_id: 1, category_id: 1, iscrowd: 1, area: 400, bbox: [40, 40, 20, 20] },
    ],
  };
  const res = cocoEvaluate(gt, [
    { image_id: 1, category_id: 1, score: 0.9, bbox: [40, 40, 5, 5] }, // inside the crowd: IoU 1
    { image_id: 1, category_id: 1, score: 0.8, bbox: [50, 50, 5, 5] }, // inside the crowd too
    { image_id: 1, category_id: 1, score: 0.7, bbox: [0, 0, 10, 10] },
  ], { iouType: "bbox" });
  const e = res.evalImgs[0]!;
  assert.deepEqual(e.gtIgnore, [0, 1]);
  assert.deepEqual(e.dtMatches[9], [2, 2, 1]);
  assert.deepEqual(e.dtIgnore[9], [1, 1, 0]);
  closeAll(res.stats.slice(0, 3), [1, 1, 1], "AP");
  assert.equal(res.ious[0].ious[0][1], 1); // 25 / det area 25
});

Deno.test("polygon and compressed RLE ground truth give the same segm result as uncompressed RLE", () => {
  const h = 40, w = 40;
  const box = (x: number, y: number, bw: number, bh: number) => {
    const m = new Uint8Array(h * w);
    for (let yy = y; yy < y + bh; yy++) for (let xx = x; xx < x + bw; xx++) m[yy * w + xx] = 1;
    return rleEncode(m, h, w);
  };
  const g1 = box(2, 3, 10, 6), g2 = box(20, 20, 8, 8);
  const mk = (segs: unknown[]): CocoDataset => ({
    images: [{ id: 1, height: h, width: w }],
    categories: [{ id: 1 }],
    annotations: segs.map((s, i) => ({
      id: i + 1,
      image_id: 1,
      category_id: 1,
      iscrowd: 0,
      area: i === 0 ? 60 : 64,
      segmentation: s as never,
    })),
  });
  const results: CocoResult[] = [
    { image_id: 1, category_id: 1, score: 0.5, segmentation: rleToCoco(box(2, 3, 10, 5)) },
    { image_id: 1, category_id: 1, score: 0.6, segmentation: rleToCoco(box(21, 20, 8, 8)) },
  ];
  const a = cocoEvaluate(mk([rleToCoco(g1, false), rleToCoco(g2, false)]), results);
  const b = cocoEvaluate(mk([rleToCoco(g1), rleToCoco(g2)]), results);
  const c = cocoEvaluate(
    mk([[[2, 3, 2, 9, 12, 9, 12, 3]], [[20, 20, 20, 28, 28, 28, 28, 20]]]),
    results,
  );
  for (const r of [b, c]) {
    assert.deepEqual(r.stats, a.stats);
    assert.deepEqual(r.ious, a.ious);
  }
  // IoUs: 50/60 for the first gt, 56/72 for the second
  assert.deepEqual(a.ious[0].dtIds, [2, 1]);
  assert.deepEqual(a.ious[0].ious, [[0, 56 / 72], [50 / 60, 0]]);
});

Deno.test("bad inputs raise errors that name the field", () => {
  assert.throws(
    () => cocoEvaluate({ images: [], categories: [] } as never, []),
    /"annotations" must be a list/,
  );
  assert.throws(
    () =>
      cocoEvaluate(BOX_GT, [{ image_id: 9, category_id: 1, score: 1, bbox: [0, 0, 1, 1] }], {
        iouType: "bbox",
      }),
    /results\[0\]: image_id 9 is not an image/,
  );
  assert.throws(
    () =>
      cocoEvaluate(BOX_GT, [{ image_id: 1, category_id: 1, bbox: [0, 0, 1, 1] } as never], {
        iouType: "bbox",
      }),
    /results\[0\]: "score" must be a number/,
  );
  assert.throws(
    () => cocoEvaluate(BOX_GT, [], { iouType: "segm" }),
    /annotations\[0\]: "segmentation" is missing/,
  );
});

Deno.test("Python-style number formatting and numpy-style means", () => {
  assert.equal(pyFormatFixed(0.0625, 3), "0.062"); // tie to even
  assert.equal(pyFormatFixed(0.1875, 3), "0.188");
  assert.equal(pyFormatFixed(-1, 3), "-1.000");
  assert.equal(pyFormatFixed(0.2446204620462046, 3), "0.245");
  assert.equal(pyFormatFixed(0.95, 2), "0.95");
  assert.equal(pyFormatFixed(0.5, 2), "0.50");
  // pairwise summation: 1e16 followed by ones; naive left-to-right summation loses all the ones
  const v = [1e16, ...new Array(15).fill(1)];
  let pairwise = 0;
  const r = [0, 0, 0, 0, 0, 0, 0, 0];
  for (let j = 0; j < 8; j++) r[j] = v[j] + v[j + 8];
  pairwise = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
  assert.equal(numpyMean(v), pairwise / 16);
});

// ---------------------------------------------------------------------------------------------
// pycocotools fixtures

interface FxAnn {
  id: number;
  image_id: number;
  category_id: number;
  iscrowd?: number;
  score?: number;
  area: number;
  bbox: number[];
  rle: { size: number[]; counts: number[] };
  rle_compressed: { size: number[]; counts: string };
}
interface FxEvalImg {
  image_id: number;
  areaRngLbl: string;
  aRng: number[];
  maxDet: number;
  dtIds: number[];
  gtIds: number[];
  dtScores: number[];
  gtIgnore: number[];
  dtMatches: number[][];
  gtMatches: number[][];
  dtIgnore: number[][];
}
interface FxEval {
  name: string;
  iouType: "segm" | "bbox";
  maxDets: number[];
  det_result_fields: string[];
  stats: number[];
  summary_lines: string[];
  ap_per_iou_threshold: number[];
  recall_per_iou_threshold: number[];
  precision_area_all_last_maxdet: number[][];
  recall_T_A_M: number[][][];
  accumulate_order_area_all_det_ids: number[];
  precision_T_R_A_M?: number[][][][];
  ious?: { image_id: number; det_ids_rows: number[]; gt_ids_cols: number[]; ious: number[][] }[];
  eval_imgs?: FxEvalImg[];
  AP_at_maxdets_128?: number;
}
interface FxCase {
  case: string;
  categories: { id: number; name: string }[];
  images: { id: number; height: number; width: number }[];
  gts: FxAnn[];
  dets: FxAnn[];
  evaluations: FxEval[];
}

/** Ground truth exactly as the fixture generator built it for pycocotools. */
function groundTruth(c: FxCase): CocoDataset {
  return {
    images: c.images,
    categories: c.categories,
    annotations: c.gts.map((g) => ({
      id: g.id,
      image_id: g.image_id,
      category_id: g.category_id,
      iscrowd: g.iscrowd ?? 0,
      area: g.area,
      bbox: g.bbox,
      segmentation: g.rle,
    })),
  };
}

/** The results list handed to loadRes: only the fields the evaluation lists. */
function results(c: FxCase, e: FxEval): CocoResult[] {
  return c.dets.map((d) => {
    const r: Record<string, unknown> = {};
    for (const f of e.det_result_fields) {
      r[f] = f === "segmentation" ? d.rle_compressed : (d as unknown as Record<string, unknown>)[f];
    }
    return r as CocoResult;
  });
}

function checkEvaluation(c: FxCase, e: FxEval, res: CocoEvalResult): void {
  const w = `${c.case}/${e.name}`;
  closeAll(res.stats, e.stats, `${w} stats`);
  assert.deepEqual(res.summaryLines, e.summary_lines, `${w} summary lines`);
  closeAll(res.apPerIouThreshold, e.ap_per_iou_threshold, `${w} AP per IoU`);
  closeAll(res.recallPerIouThreshold, e.recall_per_iou_threshold, `${w} recall per IoU`);
  const [T, R, K, A, M] = res.precision.shape;
  assert.deepEqual([T, R, K, A, M], [10, 101, 1, 4, e.maxDets.length]);
  const P = (t: number, r: number, a: number, m: number) =>
    res.precision.data[(((t * R + r) * K + 0) * A + a) * M + m];
  for (let t = 0; t < T; t++) {
    for (let r = 0; r < R; r++) {
      close(
        P(t, r, 0, M - 1),
        e.precision_area_all_last_maxdet[t][r],
        `${w} precision[${t}][${r}]`,
      );
    }
    for (let a = 0; a < A; a++) {
      for (let m = 0; m < M; m++) {
        close(res.recall.data[((t * K) * A + a) * M + m], e.recall_T_A_M[t][a][m], `${w} recall`);
      }
    }
  }
  if (e.precision_T_R_A_M) {
    for (let t = 0; t < T; t++) {
      for (let r = 0; r < R; r++) {
        for (let a = 0; a < A; a++) {
          for (let m = 0; m < M; m++) {
            close(P(t, r, a, m), e.precision_T_R_A_M[t][r][a][m], `${w} P[${t},${r},${a},${m}]`);
          }
        }
      }
    }
  }
  assert.deepEqual(res.accumulateOrder[0], e.accumulate_order_area_all_det_ids, `${w} order`);
  if (e.ious) {
    assert.equal(res.ious.length, e.ious.length, `${w} ious count`);
    e.ious.forEach((x, i) => {
      const got = res.ious[i];
      assert.equal(got.imageId, x.image_id);
      assert.deepEqual(got.dtIds, x.det_ids_rows, `${w} iou rows image ${x.image_id}`);
      assert.deepEqual(got.gtIds, x.gt_ids_cols, `${w} iou cols image ${x.image_id}`);
      if (x.ious.length === 0) assert.deepEqual(got.ious, []);
      else got.ious.forEach((row, d) => closeAll(row, x.ious[d], `${w} ious ${x.image_id}`));
    });
  }
  if (e.eval_imgs) {
    const got = res.evalImgs.filter((x) => x !== null);
    assert.equal(got.length, e.eval_imgs.length, `${w} evalImgs count`);
    e.eval_imgs.forEach((x, i) => {
      const g = got[i]!;
      const wi = `${w} evalImg ${i} (image ${x.image_id}, ${x.areaRngLbl})`;
      assert.equal(g.imageId, x.image_id, wi);
      assert.deepEqual(g.aRng, x.aRng, wi);
      assert.equal(g.maxDet, x.maxDet, wi);
      assert.deepEqual(g.dtIds, x.dtIds, `${wi} dtIds`);
      assert.deepEqual(g.gtIds, x.gtIds, `${wi} gtIds`);
      assert.deepEqual(g.dtScores, x.dtScores, `${wi} dtScores`);
      assert.deepEqual(g.gtIgnore, x.gtIgnore, `${wi} gtIgnore`);
      assert.deepEqual(g.dtMatches, x.dtMatches, `${wi} dtMatches`);
      assert.deepEqual(g.gtMatches, x.gtMatches, `${wi} gtMatches`);
      assert.deepEqual(g.dtIgnore, x.dtIgnore, `${wi} dtIgnore`);
    });
  }
  if (e.AP_at_maxdets_128 !== undefined) {
    close(summarizeStat(res, { ap: true, maxDets: 128 }).value, e.AP_at_maxdets_128, `${w} AP@128`);
  }
}

const dir = fixturesDir();
const cocoDir = dir ? join(dir, "coco") : null;
const cases = cocoDir
  ? readdirSync(cocoDir).filter((f) => f.startsWith("case") && f.endsWith(".json")).sort()
  : [];

Deno.test({
  name: "fixtures are present for every documented case",
  ignore: !cocoDir,
  fn() {
    assert.equal(cases.length, 13);
  },
});

for (const file of cases) {
  Deno.test(`cocoEvaluate equals pycocotools on ${file}`, () => {
    const c: FxCase = JSON.parse(Deno.readTextFileSync(join(cocoDir!, file)));
    for (const e of c.evaluations) {
      const opts: CocoEvalOptions = { iouType: e.iouType, maxDets: e.maxDets };
      const t0 = performance.now();
      const res = cocoEvaluate(groundTruth(c), results(c, e), opts);
      const ms = performance.now() - t0;
      assert.ok(ms < 1000, `${file}/${e.name} took ${ms.toFixed(0)} ms`);
      checkEvaluation(c, e, res);
    }
  });
}

Deno.test({
  name: "params.json thresholds equal numpy linspace",
  ignore: !cocoDir,
  fn() {
    const p = JSON.parse(Deno.readTextFileSync(join(cocoDir!, "params.json")));
    assert.deepEqual(linspace(0.5, 0.95, 10), p.iouThrs);
    assert.deepEqual(linspace(0, 1, 101), p.recThrs);
  },
});

Deno.test("categories are evaluated separately (useCats) or pooled (useCats: false)", () => {
  const gt: CocoDataset = {
    images: [{ id: 1 }, { id: 2 }],
    categories: [{ id: 2 }, { id: 1 }],
    annotations: [
      { id: 1, image_id: 1, category_id: 1, area: 100, bbox: [0, 0, 10, 10] },
      { id: 2, image_id: 2, category_id: 2, area: 100, bbox: [0, 0, 10, 10] },
    ],
  };
  const dets: CocoResult[] = [
    { image_id: 1, category_id: 2, score: 0.9, bbox: [0, 0, 10, 10] }, // right box, wrong class
    { image_id: 2, category_id: 2, score: 0.8, bbox: [0, 0, 10, 10] },
  ];
  const per = cocoEvaluate(gt, dets, { iouType: "bbox" });
  assert.deepEqual(per.params.catIds, [1, 2]);
  assert.deepEqual(per.precision.shape, [10, 101, 2, 4, 3]);
  // category 1: one gt, no det -> AP 0; category 2: FP (image 1) then TP -> AP 0.5
  closeAll(per.apPerIouThreshold, new Array(10).fill(0.25), "per-category mean");
  close(per.stats[0], 0.25, "AP");
  assert.equal(per.evalImgs.length, 2 * 4 * 2);
  assert.equal(per.evalImgs[0]!.categoryId, 1);
  assert.deepEqual(per.accumulateOrder, [[], [1, 2]]);
  const pooled = cocoEvaluate(gt, dets, { iouType: "bbox", useCats: false });
  assert.deepEqual(pooled.precision.shape, [10, 101, 1, 4, 3]);
  close(pooled.stats[0], 1, "pooled AP");
  assert.equal(pooled.evalImgs[0]!.categoryId, -1);
});
