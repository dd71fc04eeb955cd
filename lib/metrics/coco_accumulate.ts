/**
 * `COCOeval.accumulate()`: interpolated precision and recall arrays from the per-image matches.
 *
 * For each category, area range and maxDets, the first `maxDets` dets of every image are
 * concatenated in ascending image id and stable-sorted by score (a cross-image tie goes to the
 * lower image id); `tp`/`fp` are cumulative counts over the non-ignored dets,
 * `rc = tp / npig`, `pr = tp / (tp + fp + eps)` (`eps = np.spacing(1)`), `pr` is made
 * non-increasing from the right and read at `searchsorted(rc, recThrs, "left")` (0 past the end).
 * Cells without non-ignored gt stay -1.
 *
 * @example
 * ```ts
 * import { cocoAccumulate } from "./coco_accumulate.ts";
 * import { cocoEvaluateImages, cocoParams } from "./coco.ts";
 * import { loadCocoGroundTruth, loadCocoResults } from "./coco_data.ts";
 * const gt = loadCocoGroundTruth({
 *   images: [{ id: 1 }],
 *   categories: [{ id: 1 }],
 *   annotations: [{ id: 1, image_id: 1, category_id: 1, area: 4, bbox: [0, 0, 2, 2] }],
 * }, "bbox");
 * const dts = loadCocoResults(gt, [{ image_id: 1, category_id: 1, score: 1, bbox: [0, 0, 2, 2] }], "bbox");
 * const acc = cocoAccumulate(cocoEvaluateImages(gt, dts, cocoParams(gt, { iouType: "bbox" })));
 * acc.recall.data[0]; // 1
 * ```
 *
 * @module
 */

import type { CocoEvalImage, CocoEvalParams, CocoImageEvaluation, NdArray } from "./coco.ts";
import { numpyMean } from "./coco_summary.ts";

const EPS = 2.220446049250313e-16; // np.spacing(1)

/** Output of {@link cocoAccumulate} (pycocotools `self.eval`). */
export interface CocoAccumulated {
  /** Parameters used. */
  params: CocoEvalParams;
  /** `[T, R, K, A, M]` interpolated precision, -1 where undefined. */
  precision: NdArray;
  /** `[T, K, A, M]` recall, -1 where undefined. */
  recall: NdArray;
  /** `[T, R, K, A, M]` score at each recall threshold. */
  scores: NdArray;
  /**
   * Per category: the det ids in the global order accumulation ranks them for area range 0 and
   * the last maxDets (empty when the category has no image with gt or dets).
   */
  accumulateOrder: number[][];
}

/** pycocotools `COCOeval.accumulate()`: precision/recall arrays from per-image results. */
export function cocoAccumulate(ev: CocoImageEvaluation): CocoAccumulated {
  const p = ev.params;
  const T = p.iouThrs.length, R = p.recThrs.length, K = p.useCats ? p.catIds.length : 1;
  const A = p.areaRng.length, M = p.maxDets.length, I0 = p.imgIds.length;
  const precision = new Float64Array(T * R * K * A * M).fill(-1);
  const recall = new Float64Array(T * K * A * M).fill(-1);
  const scores = new Float64Array(T * R * K * A * M).fill(-1);
  const accumulateOrder: number[][] = Array.from({ length: K }, () => []);
  for (let k = 0; k < K; k++) {
    for (let a = 0; a < A; a++) {
      const E: CocoEvalImage[] = [];
      for (let i = 0; i < I0; i++) {
        const e = ev.evalImgs[(k * A + a) * I0 + i];
        if (e) E.push(e);
      }
      if (E.length === 0) continue;
      for (let m = 0; m < M; m++) {
        const maxDet = p.maxDets[m];
        // concatenated (image, det) pairs, then a stable sort on -score
        const src: [CocoEvalImage, number][] = [];
        for (const e of E) {
          const n = Math.min(maxDet, e.dtScores.length);
          for (let j = 0; j < n; j++) src.push([e, j]);
        }
        const order = [...src.keys()].sort((x, y) =>
          src[y][0].dtScores[src[y][1]] - src[x][0].dtScores[src[x][1]]
        );
        if (a === 0 && m === M - 1) {
          accumulateOrder[k] = order.map((o) => src[o][0].dtIds[src[o][1]]);
        }
        let npig = 0;
        for (const e of E) for (const g of e.gtIgnore) if (g === 0) npig++;
        if (npig === 0) continue;
        const nd = order.length;
        const sortedScores = order.map((o) => src[o][0].dtScores[src[o][1]]);
        const rc = new Float64Array(nd);
        const pr = new Array<number>(nd);
        for (let t = 0; t < T; t++) {
          let tp = 0, fp = 0;
          for (let j = 0; j < nd; j++) {
            const [e, dj] = src[order[j]];
            const matched = e.dtMatches[t][dj] !== 0;
            if (!e.dtIgnore[t][dj]) {
              if (matched) tp++;
              else fp++;
            }
            rc[j] = tp / npig;
            pr[j] = tp / (fp + tp + EPS);
          }
          recall[((t * K + k) * A + a) * M + m] = nd ? rc[nd - 1] : 0;
          for (let j = nd - 1; j > 0; j--) if (pr[j] > pr[j - 1]) pr[j - 1] = pr[j];
          let pi = 0;
          for (let r = 0; r < R; r++) {
            const thr = p.recThrs[r];
            while (pi < nd && rc[pi] < thr) pi++; // searchsorted(rc, thr, side="left")
            const at = (((t * R + r) * K + k) * A + a) * M + m;
            if (pi >= nd) {
              // pycocotools stops at the first index past the end: the rest stay 0
              for (let r2 = r; r2 < R; r2++) {
                const at2 = (((t * R + r2) * K + k) * A + a) * M + m;
                precision[at2] = 0;
                scores[at2] = 0;
              }
              break;
            }
            precision[at] = pr[pi];
            scores[at] = sortedScores[pi];
          }
        }
      }
    }
  }
  return {
    params: p,
    precision: { shape: [T, R, K, A, M], data: precision },
    recall: { shape: [T, K, A, M], data: recall },
    scores: { shape: [T, R, K, A, M], data: scores },
    accumulateOrder,
  };
}

function perThreshold(acc: CocoAccumulated, recallToo: boolean): number[] {
  const [T, R, K, A, M] = acc.precision.shape;
  const out: number[] = [];
  for (let t = 0; t < T; t++) {
    const vals: number[] = [];
    if (recallToo) {
      for (let k = 0; k < K; k++) {
        const v = acc.recall.data[((t * K + k) * A + 0) * M + M - 1];
        if (v > -1) vals.push(v);
      }
    } else {
      for (let r = 0; r < R; r++) {
        for (let k = 0; k < K; k++) {
          const v = acc.precision.data[(((t * R + r) * K + k) * A + 0) * M + M - 1];
          if (v > -1) vals.push(v);
        }
      }
    }
    out.push(vals.length ? numpyMean(vals) : -1);
  }
  return out;
}

/**
 * AP per IoU threshold: the mean of `precision[t, :, :, area 0, last maxDets]` over the entries
 * `> -1` (-1 when there are none). With one category, `[0]` is AP@0.5 and `[5]` AP@0.75.
 */
export function apPerIouThreshold(acc: CocoAccumulated): number[] {
  return perThreshold(acc, false);
}

/** Recall per IoU threshold: mean of `recall[t, :, area 0, last maxDets]` over entries `> -1`. */
export function recallPerIouThreshold(acc: CocoAccumulated): number[] {
  return perThreshold(acc, true);
}
