/**
 * COCO detection / instance-segmentation evaluation, equal to pycocotools' `COCOeval`
 * (`evaluate()`, `accumulate()`, `summarize()`) for `iouType` `segm` and `bbox`.
 *
 * Rules kept exactly as pycocotools has them:
 * - each image's dets are stable-sorted by score (earlier result first on a tie) and cut at
 *   `maxDets[-1]`; accumulation concatenates images in ascending id and stable-sorts again, so a
 *   cross-image tie goes to the lower image id;
 * - greedy matching per IoU threshold: a det takes the still-free gt with the highest IoU `>= thr`
 *   (an IoU equal to the threshold matches; an IoU tie goes to the later gt); crowd gts stay
 *   matchable and their union is the det area; a det matched to an ignored gt is ignored;
 * - area ranges are closed on both ends; an unmatched det outside the range is ignored;
 * - `iouThrs`/`recThrs` are numpy `linspace` values (e.g. `0.8999999999999999`), precision uses
 *   `tp / (tp + fp + eps)`, interpolated precision is read at `searchsorted(rc, recThrs, "left")`;
 * - -1 marks cells without non-ignored gt; a stat is the mean of the entries `> -1`, or -1.
 *
 * @example
 * ```ts
 * import { cocoEvaluate } from "./coco.ts";
 * const gt = {
 *   images: [{ id: 1, height: 32, width: 32 }],
 *   categories: [{ id: 1, name: "lesion" }],
 *   annotations: [{ id: 1, image_id: 1, category_id: 1, iscrowd: 0, area: 64, bbox: [4, 4, 8, 8] }],
 * };
 * const res = cocoEvaluate(gt, [{ image_id: 1, category_id: 1, score: 0.9, bbox: [4, 4, 8, 8] }], {
 *   iouType: "bbox",
 * });
 * res.stats[0]; // 1
 * console.log(res.summaryLines.join("\n"));
 * ```
 *
 * @module
 */

import {
  type CocoDataset,
  type CocoGroundTruth,
  type CocoInstance,
  type CocoResult,
  type IouType,
  loadCocoGroundTruth,
  loadCocoResults,
} from "./coco_data.ts";
import { bboxIou, type Rle, rleIou } from "./rle.ts";
import { summarizeDets } from "./coco_summary.ts";
import {
  apPerIouThreshold,
  cocoAccumulate,
  type CocoAccumulated,
  recallPerIouThreshold,
} from "./coco_accumulate.ts";

/** A dense float64 array in row-major (C) order. */
export interface NdArray {
  /** Dimensions. */
  shape: number[];
  /** Values, row-major. */
  data: Float64Array;
}

/** Evaluation parameters (pycocotools `Params` for detection). */
export interface CocoEvalParams {
  /** `segm` (mask IoU) or `bbox` (box IoU). */
  iouType: IouType;
  /** Evaluated image ids, sorted and unique. */
  imgIds: number[];
  /** Evaluated category ids, sorted and unique. */
  catIds: number[];
  /** IoU thresholds (default `linspace(0.5, 0.95, 10)`). */
  iouThrs: number[];
  /** Recall thresholds (default `linspace(0, 1, 101)`). */
  recThrs: number[];
  /** Detections per image, sorted ascending (default `[1, 10, 100]`). */
  maxDets: number[];
  /** Area ranges `[lo, hi]`, closed (default all, small, medium, large). */
  areaRng: [number, number][];
  /** Labels of the area ranges. */
  areaRngLbl: string[];
  /** Evaluate per category (true) or pool all categories (false). */
  useCats: boolean;
}

/** Options of {@link cocoEvaluate}; anything omitted takes pycocotools' default. */
export interface CocoEvalOptions {
  /** Default `"segm"`. */
  iouType?: IouType;
  /** Default `[1, 10, 100]` (the paper's setting is `[1, 10, 128]`). */
  maxDets?: number[];
  /** Default: all image ids of the ground truth. */
  imgIds?: number[];
  /** Default: all category ids of the ground truth. */
  catIds?: number[];
  /** Default `linspace(0.5, 0.95, 10)`. */
  iouThrs?: number[];
  /** Default `linspace(0, 1, 101)`. */
  recThrs?: number[];
  /** Default `[[0, 1e10], [0, 32**2], [32**2, 96**2], [96**2, 1e10]]`. */
  areaRng?: [number, number][];
  /** Default `["all", "small", "medium", "large"]`. */
  areaRngLbl?: string[];
  /** Default true. */
  useCats?: boolean;
  /** Name of the ground truth in error messages (e.g. its file path). Default "ground truth". */
  gtName?: string;
  /** Name of the results in error messages (e.g. its file path). Default "results". */
  resultsName?: string;
}

/** Per-image, per-category, per-area-range matching result (pycocotools `evaluateImg`). */
export interface CocoEvalImage {
  /** Image id. */
  imageId: number;
  /** Category id (-1 when categories are pooled). */
  categoryId: number;
  /** Area range `[lo, hi]`. */
  aRng: [number, number];
  /** `maxDets[-1]`. */
  maxDet: number;
  /** Det ids in score order (cut at `maxDet`). */
  dtIds: number[];
  /** Gt ids, non-ignored first (stable). */
  gtIds: number[];
  /** `[T][D]`: id of the matched gt, 0 when unmatched. */
  dtMatches: number[][];
  /** `[T][G]`: id of the matched det, 0 when unmatched. */
  gtMatches: number[][];
  /** Scores of the dets. */
  dtScores: number[];
  /** `[G]`: 1 for ignored gts (crowd or out of the area range). */
  gtIgnore: number[];
  /** `[T][D]`: 1 for ignored dets. */
  dtIgnore: number[][];
}

/** IoU matrix of one image and category (pycocotools `self.ious[imgId, catId]`). */
export interface CocoImageIous {
  /** Image id. */
  imageId: number;
  /** Category id (-1 when categories are pooled). */
  categoryId: number;
  /** Row det ids: score order, cut at `maxDets[-1]`. */
  dtIds: number[];
  /** Column gt ids, in file order. */
  gtIds: number[];
  /** `D x G`; `[]` when the image has no det or no gt. */
  ious: number[][];
}

/** Everything {@link cocoEvaluate} returns. */
export interface CocoEvalResult extends CocoAccumulated {
  /** `[AP, AP50, AP75, APs, APm, APl, AR1, AR10, AR100, ARs, ARm, ARl]` (see `summarizeDets`). */
  stats: number[];
  /** The 12 lines pycocotools' `summarize()` prints. */
  summaryLines: string[];
  /** AP per IoU threshold: mean of `precision[t, :, :, area 0, last maxDets]` over entries > -1. */
  apPerIouThreshold: number[];
  /** Recall per IoU threshold, area 0, last maxDets (mean over categories with entries > -1). */
  recallPerIouThreshold: number[];
  /** `[K][A][I]` flattened as pycocotools (category, area range, image); null for empty images. */
  evalImgs: (CocoEvalImage | null)[];
  /** IoU matrices of the images that have gt or dets, by category then image id. */
  ious: CocoImageIous[];
}

/** numpy `linspace(start, stop, num)`: `i * step + start`, last element exactly `stop`. */
export function linspace(start: number, stop: number, num: number): number[] {
  if (num <= 0) return [];
  if (num === 1) return [start];
  const step = (stop - start) / (num - 1);
  const out = Array.from({ length: num }, (_, i) => i * step + start);
  out[num - 1] = stop;
  return out;
}

/** pycocotools' default detection parameters for a ground truth's image and category ids. */
export function cocoDefaultParams(
  iouType: IouType,
  imgIds: number[],
  catIds: number[],
): CocoEvalParams {
  return {
    iouType,
    imgIds: [...new Set(imgIds)].sort((a, b) => a - b),
    catIds: [...new Set(catIds)].sort((a, b) => a - b),
    iouThrs: linspace(0.5, 0.95, 10),
    recThrs: linspace(0, 1, 101),
    maxDets: [1, 10, 100],
    areaRng: [[0, 1e10], [0, 32 ** 2], [32 ** 2, 96 ** 2], [96 ** 2, 1e10]],
    areaRngLbl: ["all", "small", "medium", "large"],
    useCats: true,
  };
}

function byScore(dts: CocoInstance[]): CocoInstance[] {
  return dts.slice().sort((a, b) => b.score - a.score); // stable, like mergesort on -score
}

type Groups = Map<number, Map<number, CocoInstance[]>>;

function group(insts: CocoInstance[], imgs: Set<number>, cats: Set<number> | null): Groups {
  const g: Groups = new Map();
  for (const x of insts) {
    if (!imgs.has(x.imageId) || (cats && !cats.has(x.categoryId))) continue;
    let m = g.get(x.imageId);
    if (!m) g.set(x.imageId, m = new Map());
    const l = m.get(x.categoryId);
    if (l) l.push(x);
    else m.set(x.categoryId, [x]);
  }
  return g;
}

function select(g: Groups, imgId: number, catId: number, p: CocoEvalParams): CocoInstance[] {
  const m = g.get(imgId);
  if (!m) return [];
  if (p.useCats) return m.get(catId) ?? [];
  return p.catIds.flatMap((c) => m.get(c) ?? []);
}

function computeIou(gt: CocoInstance[], dt: CocoInstance[], p: CocoEvalParams): Float64Array[] {
  if (gt.length === 0 || dt.length === 0) return [];
  const crowd = gt.map((g) => g.iscrowd);
  if (p.iouType === "segm") {
    return rleIou(
      dt.map((d) => d.rle as Rle),
      gt.map((g) => g.rle as Rle),
      crowd,
    );
  }
  return bboxIou(dt.map((d) => d.bbox), gt.map((g) => g.bbox), crowd);
}

function evaluateImg(
  imgId: number,
  catId: number,
  gtAll: CocoInstance[],
  dtSorted: CocoInstance[],
  iousAll: Float64Array[],
  aRng: [number, number],
  maxDet: number,
  p: CocoEvalParams,
): CocoEvalImage | null {
  if (gtAll.length === 0 && dtSorted.length === 0) return null;
  const ign = gtAll.map((g) => (g.iscrowd || g.area < aRng[0] || g.area > aRng[1] ? 1 : 0));
  const gtind = [...gtAll.keys()].sort((a, b) => ign[a] - ign[b]); // stable
  const gt = gtind.map((i) => gtAll[i]);
  const gtIg = gtind.map((i) => ign[i]);
  const dt = dtSorted.slice(0, maxDet);
  const T = p.iouThrs.length, G = gt.length, D = dt.length;
  const gtm = Array.from({ length: T }, () => new Array<number>(G).fill(0));
  const dtm = Array.from({ length: T }, () => new Array<number>(D).fill(0));
  const dtIg = Array.from({ length: T }, () => new Array<number>(D).fill(0));
  if (iousAll.length > 0) {
    for (let t = 0; t < T; t++) {
      for (let d = 0; d < D; d++) {
        const row = iousAll[d];
        let iou = Math.min(p.iouThrs[t], 1 - 1e-10);
        let m = -1;
        for (let gi = 0; gi < G; gi++) {
          if (gtm[t][gi] > 0 && !gt[gi].iscrowd) continue;
          if (m > -1 && gtIg[m] === 0 && gtIg[gi] === 1) break;
          const v = row[gtind[gi]];
          if (v < iou) continue;
          iou = v;
          m = gi;
        }
        if (m === -1) continue;
        dtIg[t][d] = gtIg[m];
        dtm[t][d] = gt[m].id;
        gtm[t][m] = dt[d].id;
      }
    }
  }
  for (let d = 0; d < D; d++) {
    if (dt[d].area < aRng[0] || dt[d].area > aRng[1]) {
      for (let t = 0; t < T; t++) if (dtm[t][d] === 0) dtIg[t][d] = 1;
    }
  }
  return {
    imageId: imgId,
    categoryId: catId,
    aRng: [aRng[0], aRng[1]],
    maxDet,
    dtIds: dt.map((d) => d.id),
    gtIds: gt.map((g) => g.id),
    dtMatches: dtm,
    gtMatches: gtm,
    dtScores: dt.map((d) => d.score),
    gtIgnore: gtIg,
    dtIgnore: dtIg,
  };
}

/** Output of {@link cocoEvaluateImages}. */
export interface CocoImageEvaluation {
  /** Parameters used (maxDets sorted). */
  params: CocoEvalParams;
  /** `[K][A][I]` flattened; null for images without gt and dets. */
  evalImgs: (CocoEvalImage | null)[];
  /** IoU matrices of the images that have gt or dets. */
  ious: CocoImageIous[];
}

/** pycocotools `COCOeval.evaluate()` on loaded ground truth and detections. */
export function cocoEvaluateImages(
  gt: CocoGroundTruth,
  dts: CocoInstance[],
  params: CocoEvalParams,
): CocoImageEvaluation {
  const p: CocoEvalParams = {
    ...params,
    imgIds: [...new Set(params.imgIds)].sort((a, b) => a - b),
    catIds: [...new Set(params.catIds)].sort((a, b) => a - b),
    maxDets: params.maxDets.slice().sort((a, b) => a - b),
  };
  if (p.maxDets.length === 0) throw new Error("cocoEvaluate: maxDets must not be empty");
  const imgs = new Set(p.imgIds);
  const cats = p.useCats ? new Set(p.catIds) : null;
  const gts = group(gt.annotations, imgs, cats);
  const dtg = group(dts, imgs, cats);
  const catIds = p.useCats ? p.catIds : [-1];
  const maxDet = p.maxDets[p.maxDets.length - 1];
  const perPair: { gt: CocoInstance[]; dt: CocoInstance[]; ious: Float64Array[] }[][] = [];
  const ious: CocoImageIous[] = [];
  for (const catId of catIds) {
    const row: { gt: CocoInstance[]; dt: CocoInstance[]; ious: Float64Array[] }[] = [];
    for (const imgId of p.imgIds) {
      const g = select(gts, imgId, catId, p);
      const d = byScore(select(dtg, imgId, catId, p)).slice(0, maxDet);
      const m = computeIou(g, d, p);
      row.push({ gt: g, dt: d, ious: m });
      if (g.length || d.length) {
        ious.push({
          imageId: imgId,
          categoryId: catId,
          dtIds: d.map((x) => x.id),
          gtIds: g.map((x) => x.id),
          ious: m.map((r) => Array.from(r)),
        });
      }
    }
    perPair.push(row);
  }
  const evalImgs: (CocoEvalImage | null)[] = [];
  catIds.forEach((catId, k) => {
    for (const aRng of p.areaRng) {
      p.imgIds.forEach((imgId, i) => {
        const { gt: g, dt: d, ious: m } = perPair[k][i];
        evalImgs.push(evaluateImg(imgId, catId, g, d, m, aRng, maxDet, p));
      });
    }
  });
  return { params: p, evalImgs, ious };
}

function checkIouType(iouType: unknown): void {
  if (iouType !== undefined && iouType !== "segm" && iouType !== "bbox") {
    throw new Error(`cocoEvaluate: iouType must be "segm" or "bbox", got "${iouType}"`);
  }
}

/** Resolves {@link CocoEvalOptions} against a loaded ground truth. */
export function cocoParams(gt: CocoGroundTruth, options: CocoEvalOptions = {}): CocoEvalParams {
  checkIouType(options.iouType);
  const p = cocoDefaultParams(options.iouType ?? "segm", gt.imgIds, gt.catIds);
  if (options.maxDets) {
    if (!options.maxDets.length || !options.maxDets.every((m) => Number.isInteger(m) && m > 0)) {
      throw new Error(`cocoEvaluate: maxDets must be positive integers, got [${options.maxDets}]`);
    }
    p.maxDets = options.maxDets.slice().sort((a, b) => a - b);
  }
  if (options.imgIds) p.imgIds = [...new Set(options.imgIds)].sort((a, b) => a - b);
  if (options.catIds) p.catIds = [...new Set(options.catIds)].sort((a, b) => a - b);
  if (options.iouThrs) p.iouThrs = options.iouThrs.slice();
  if (options.recThrs) p.recThrs = options.recThrs.slice();
  if (options.areaRng) p.areaRng = options.areaRng.map(([lo, hi]) => [lo, hi]);
  if (options.areaRngLbl) p.areaRngLbl = options.areaRngLbl.slice();
  if (p.areaRng.length !== p.areaRngLbl.length) {
    throw new Error("cocoEvaluate: areaRng and areaRngLbl must have the same length");
  }
  if (options.useCats !== undefined) p.useCats = options.useCats;
  return p;
}

/**
 * COCO evaluation of a results list against a COCO ground truth, like
 * `COCOeval(coco_gt, coco_gt.loadRes(results), iouType)` followed by `evaluate()`,
 * `accumulate()` and `summarize()`. Returns the 12 stats, the printed summary lines, the
 * precision/recall arrays, AP and recall per IoU threshold, `evalImgs` and the IoU matrices.
 */
export function cocoEvaluate(
  gt: CocoDataset,
  results: readonly CocoResult[],
  options: CocoEvalOptions = {},
): CocoEvalResult {
  checkIouType(options.iouType);
  const iouType = options.iouType ?? "segm";
  const gtLoaded = loadCocoGroundTruth(gt, iouType, options.gtName);
  const dts = loadCocoResults(gtLoaded, results, iouType, options.resultsName);
  const params = cocoParams(gtLoaded, options);
  const ev = cocoEvaluateImages(gtLoaded, dts, params);
  const acc = cocoAccumulate(ev);
  const summary = params.maxDets.length >= 3
    ? summarizeDets(acc)
    : { stats: [] as number[], summaryLines: [] as string[] };
  return {
    ...acc,
    ...summary,
    apPerIouThreshold: apPerIouThreshold(acc),
    recallPerIouThreshold: recallPerIouThreshold(acc),
    evalImgs: ev.evalImgs,
    ious: ev.ious,
  };
}
