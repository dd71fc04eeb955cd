/**
 * Evaluation metrics of the SSM toolkit:
 * - COCO AP for masks and boxes, equal to pycocotools (`cocoEvaluate`, RLE utilities);
 * - the paper's per-image AP protocol (`paperAp`);
 * - 3-class classification metrics with the paper's fixed-weight F1 (`classificationMetrics`).
 *
 * @example
 * ```ts
 * import { classificationMetrics, cocoEvaluate, paperAp } from "./mod.ts";
 * const m = classificationMetrics([[9322, 123, 5], [174, 7139, 82], [27, 277, 4042]]);
 * console.log((m.paperF1! * 100).toFixed(2)); // "96.76"
 * ```
 *
 * @module
 */

export {
  bboxIou,
  type BboxXYWH,
  type CocoRleObject,
  type CocoSegmentation,
  type Rle,
  rleArea,
  rleDecode,
  rleEncode,
  rleFrBbox,
  rleFromCoco,
  rleFrPoly,
  rleFrString,
  rleIou,
  rleMerge,
  rleToBbox,
  rleToCoco,
  rleToString,
  segmentationToRle,
} from "./rle.ts";
export {
  type CocoAnnotation,
  type CocoCategory,
  type CocoDataset,
  type CocoGroundTruth,
  type CocoImage,
  type CocoInstance,
  type CocoResult,
  type IouType,
  loadCocoGroundTruth,
  loadCocoResults,
} from "./coco_data.ts";
export {
  apPerIouThreshold,
  cocoAccumulate,
  type CocoAccumulated,
  recallPerIouThreshold,
} from "./coco_accumulate.ts";
export {
  cocoDefaultParams,
  type CocoEvalImage,
  type CocoEvalOptions,
  type CocoEvalParams,
  type CocoEvalResult,
  cocoEvaluate,
  cocoEvaluateImages,
  type CocoImageEvaluation,
  type CocoImageIous,
  cocoParams,
  linspace,
  type NdArray,
} from "./coco.ts";
export {
  type CocoAccumulation,
  type CocoSummary,
  numpyMean,
  pyFormatFixed,
  summarizeDets,
  type SummarizeSpec,
  summarizeStat,
  type SummaryStat,
} from "./coco_summary.ts";
export {
  PAPER_IOU_THRESHOLDS,
  paperAp,
  type PaperApImage,
  type PaperApResult,
  type PaperApThreshold,
  paperImageAp,
  paperMaskIou,
} from "./paper_ap.ts";
export {
  type ClassificationMetrics,
  classificationMetrics,
  classificationMetricsFromLabels,
  type ClassificationOptions,
  confusionMatrix,
  PAPER_CLASS_NAMES,
  PAPER_F1_WEIGHTS,
  paperF1,
} from "./classification.ts";
