/**
 * Lesion-segmentation evaluation of a test set (paper Table 2): one compact record per image
 * (ground-truth and detected masks as COCO compressed RLE, and the image's AP under the paper's
 * protocol at each IoU threshold), and the metrics over a list of records:
 *
 * - the paper's protocol (`paperAp` semantics): AP@0.5, AP@0.75 and the mean over
 *   0.50:0.05:0.95, per-image APs averaged over **all** images (lesion-free ones included);
 * - COCO AP on masks (`segm`) and boxes (`bbox`), pycocotools-equivalent, with
 *   `maxDets = [1, 10, 128]` (the paper's 128 detections per image): AP@0.5, AP@0.75 and
 *   AP@[.5:.95], all at 128 detections.
 *
 * Records are independent of each other and of the order they are made in, so a test set can be
 * split over workers and the records merged by image index.
 *
 * @example
 * ```ts
 * import { segmentationMetrics, segmentationRecord } from "./segmentation.ts";
 * const gt = new Uint8Array(16).fill(0, 0, 16); gt[5] = gt[6] = 1;
 * const rec = segmentationRecord({
 *   index: 0, name: "a", width: 4, height: 4,
 *   gtInstances: [{ mask: gt, label: 1 }],
 *   detections: [{ mask: gt, score: 0.9, label: 1, box: [1, 1, 3, 2] }],
 * });
 * segmentationMetrics([rec]).paper.ap50; // 1
 * ```
 *
 * @module
 */

import {
  type BboxXYWH,
  type CocoDataset,
  type CocoEvalResult,
  cocoEvaluate,
  type CocoResult,
  PAPER_IOU_THRESHOLDS,
  paperImageAp,
  rleArea,
  rleEncode,
  rleToBbox,
  rleToString,
  summarizeStat,
} from "../metrics/mod.ts";

/** A ground-truth lesion instance of one record. */
export interface SegEvalGt {
  /** COCO compressed RLE counts of the instance mask over the whole image. */
  counts: string;
  /** Tight `[x, y, w, h]` box of the mask (pycocotools `toBbox`). */
  bbox: BboxXYWH;
  /** Mask area in pixels. */
  area: number;
  /** Class label (1 = lesion). */
  label: number;
}

/** A detection of one record. */
export interface SegEvalDet {
  /** COCO compressed RLE counts of the binary mask over the whole image. */
  counts: string;
  /** The predicted box as `[x, y, w, h]` (from `[x1, y1, x2, y2]`). */
  bbox: BboxXYWH;
  /** Detection score. */
  score: number;
  /** Class label (1 = lesion). */
  label: number;
  /** Mask area in pixels. */
  area: number;
}

/** The evaluation record of one segmentation test image. */
export interface SegEvalRecord {
  /** Position of the image in the test split (COCO image id = index + 1). */
  index: number;
  /** Slice name. */
  name: string;
  /** Image width (the evaluated size). */
  width: number;
  /** Image height. */
  height: number;
  /** Ground-truth instances. */
  gt: SegEvalGt[];
  /** Detections, in the model's order (best first). */
  dets: SegEvalDet[];
  /** The image's AP under the paper's protocol, one per {@linkcode PAPER_IOU_THRESHOLDS}. */
  paperAp: number[];
}

/** Inputs of {@linkcode segmentationRecord}. */
export interface SegmentationRecordInput {
  /** Position in the test split. */
  index: number;
  /** Slice name. */
  name: string;
  /** Image width. */
  width: number;
  /** Image height. */
  height: number;
  /** Ground-truth instances: full-image row-major binary masks. */
  gtInstances: readonly { mask: ArrayLike<number>; label: number }[];
  /** Detections: full-image row-major binary masks, `[x1, y1, x2, y2]` boxes, scores, labels. */
  detections: readonly {
    mask: ArrayLike<number>;
    score: number;
    label: number;
    box: ArrayLike<number>;
  }[];
  /** IoU thresholds of the paper's protocol (default {@linkcode PAPER_IOU_THRESHOLDS}). */
  thresholds?: readonly number[];
}

/**
 * The per-image AP of the paper's protocol at each threshold: 1 for an image with neither gt nor
 * detections, 0 when exactly one side is empty, else the authors' `compute_ap`.
 */
export function paperImageApPerThreshold(
  gtMasks: readonly ArrayLike<number>[],
  gtLabels: readonly number[],
  detMasks: readonly ArrayLike<number>[],
  detScores: readonly number[],
  detLabels: readonly number[],
  thresholds: readonly number[] = PAPER_IOU_THRESHOLDS,
): number[] {
  const G = gtMasks.length, D = detMasks.length;
  if (G === 0 && D === 0) return thresholds.map(() => 1);
  if (G === 0 || D === 0) return thresholds.map(() => 0);
  const image = { gtMasks, detMasks, detScores, gtLabels, detLabels };
  return thresholds.map((t) => paperImageAp(image, t));
}

/** Builds the evaluation record of one image from its gt instances and detections. */
export function segmentationRecord(input: SegmentationRecordInput): SegEvalRecord {
  const { width, height } = input;
  const n = width * height;
  const check = (m: ArrayLike<number>, what: string) => {
    if (m.length !== n) {
      throw new Error(
        `segmentationRecord(${input.name}): ${what} has ${m.length} pixels, expected ` +
          `${width}x${height}`,
      );
    }
  };
  const gt: SegEvalGt[] = input.gtInstances.map((g, i) => {
    check(g.mask, `gt instance ${i}`);
    const rle = rleEncode(g.mask, height, width);
    return { counts: rleToString(rle), bbox: rleToBbox(rle), area: rleArea(rle), label: g.label };
  });
  const dets: SegEvalDet[] = input.detections.map((d, i) => {
    check(d.mask, `detection ${i}`);
    const rle = rleEncode(d.mask, height, width);
    const [x1, y1, x2, y2] = Array.from(d.box);
    return {
      counts: rleToString(rle),
      bbox: [x1, y1, x2 - x1, y2 - y1],
      score: d.score,
      label: d.label,
      area: rleArea(rle),
    };
  });
  const paperAp = paperImageApPerThreshold(
    input.gtInstances.map((g) => g.mask),
    input.gtInstances.map((g) => g.label),
    input.detections.map((d) => d.mask),
    input.detections.map((d) => d.score),
    input.detections.map((d) => d.label),
    input.thresholds,
  );
  return { index: input.index, name: input.name, width, height, gt, dets, paperAp };
}

/** COCO AP numbers of one IoU type. */
export interface CocoApSummary {
  /** AP@0.5 at `maxDets` detections per image (-1 when undefined: no gt at all). */
  ap50: number;
  /** AP@0.75 at `maxDets`. */
  ap75: number;
  /** AP@[.5:.95] at `maxDets`. */
  ap: number;
  /** The detections-per-image limit used. */
  maxDets: number;
  /** pycocotools' 12 stats with `maxDets = [1, 10, maxDets]` (stats[0] looks up 100: -1). */
  stats: number[];
  /** The lines pycocotools prints, plus the AP@[.5:.95] line at `maxDets`. */
  summaryLines: string[];
}

/** The paper's protocol over a test set. */
export interface PaperApSummary {
  /** Mean per-image AP at IoU 0.5. */
  ap50: number;
  /** Mean per-image AP at IoU 0.75. */
  ap75: number;
  /** Mean over the ten thresholds. */
  mAP: number;
  /** Mean per-image AP at each threshold. */
  perThreshold: { threshold: number; meanAp: number }[];
}

/** Segmentation metrics of a test set. */
export interface SegmentationMetrics {
  /** Test images. */
  images: number;
  /** Images with at least one gt instance. */
  imagesWithLesions: number;
  /** Ground-truth instances. */
  gtInstances: number;
  /** Detections. */
  detections: number;
  /** The paper's protocol. */
  paper: PaperApSummary;
  /** COCO AP on masks. */
  segm: CocoApSummary;
  /** COCO AP on boxes. */
  bbox: CocoApSummary;
}

/** The COCO ground truth and results (segm and bbox) of a list of records. */
export function cocoFromRecords(
  records: readonly SegEvalRecord[],
): { gt: CocoDataset; segm: CocoResult[]; bbox: CocoResult[] } {
  const gt: CocoDataset = {
    images: records.map((r) => ({ id: r.index + 1, width: r.width, height: r.height })),
    annotations: [],
    categories: [{ id: 1, name: "lesion" }],
  };
  const segm: CocoResult[] = [], bbox: CocoResult[] = [];
  let annId = 1;
  for (const r of records) {
    const size = [r.height, r.width];
    for (const g of r.gt) {
      gt.annotations.push({
        id: annId++,
        image_id: r.index + 1,
        category_id: g.label,
        iscrowd: 0,
        area: g.area,
        bbox: g.bbox,
        segmentation: { size, counts: g.counts },
      });
    }
    for (const d of r.dets) {
      // segm results carry no bbox, so pycocotools' loadRes takes mask areas (see coco_data.ts)
      segm.push({
        image_id: r.index + 1,
        category_id: d.label,
        score: d.score,
        segmentation: { size, counts: d.counts },
      });
      bbox.push({ image_id: r.index + 1, category_id: d.label, score: d.score, bbox: d.bbox });
    }
  }
  return { gt, segm, bbox };
}

function cocoSummary(ev: CocoEvalResult, maxDets: number): CocoApSummary {
  const ap = summarizeStat(ev, { ap: true, maxDets });
  return {
    ap50: ev.stats[1],
    ap75: ev.stats[2],
    ap: ap.value,
    maxDets,
    stats: ev.stats,
    summaryLines: [...ev.summaryLines, ap.line],
  };
}

/**
 * Metrics of a test set from its records (any order; they are sorted by index). `maxDets` is the
 * COCO detections-per-image limit (default 128, the paper's `box_detections`).
 */
export function segmentationMetrics(
  records: readonly SegEvalRecord[],
  options: { maxDets?: number; thresholds?: readonly number[] } = {},
): SegmentationMetrics {
  if (records.length === 0) throw new Error("segmentationMetrics: no test images");
  const maxDets = options.maxDets ?? 128;
  const thresholds = options.thresholds ?? PAPER_IOU_THRESHOLDS;
  const sorted = [...records].sort((a, b) => a.index - b.index);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i].index === sorted[i - 1].index) {
      throw new Error(`segmentationMetrics: two records for image index ${sorted[i].index}`);
    }
  }
  const perThreshold = thresholds.map((t, k) => {
    let sum = 0;
    for (const r of sorted) {
      if (r.paperAp.length !== thresholds.length) {
        throw new Error(
          `segmentationMetrics: record ${r.name} has ${r.paperAp.length} paper APs, ` +
            `expected ${thresholds.length}`,
        );
      }
      sum += r.paperAp[k];
    }
    return { threshold: Math.fround(t), meanAp: sum / sorted.length };
  });
  const at = (t: number) => perThreshold.find((p) => p.threshold === Math.fround(t))?.meanAp ?? NaN;
  const paper: PaperApSummary = {
    ap50: at(0.5),
    ap75: at(0.75),
    mAP: perThreshold.reduce((a, p) => a + p.meanAp, 0) / perThreshold.length,
    perThreshold,
  };
  const coco = cocoFromRecords(sorted);
  const md = [1, 10, maxDets];
  const segm = cocoSummary(
    cocoEvaluate(coco.gt, coco.segm, { iouType: "segm", maxDets: md }),
    maxDets,
  );
  const bbox = cocoSummary(
    cocoEvaluate(coco.gt, coco.bbox, { iouType: "bbox", maxDets: md }),
    maxDets,
  );
  return {
    images: sorted.length,
    imagesWithLesions: sorted.filter((r) => r.gt.length > 0).length,
    gtInstances: coco.gt.annotations.length,
    detections: coco.segm.length,
    paper,
    segm,
    bbox,
  };
}
