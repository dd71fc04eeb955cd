/**
 * Evaluating a trained SSM on a test split: `predict` on every segmentation test slice (COCO and
 * paper-protocol records, see `segmentation.ts`) and every classification test slice (true and
 * predicted class), then the Table-2 and Table-3 metrics.
 *
 * Each image is evaluated with the model's RoI-batch RNG set from (model seed, image kind, image
 * index), so an image's record does not depend on which images were evaluated before it — the
 * records, hence the metrics, are the same whether the split runs in one process or is shared
 * out over workers (`pool.ts`).
 *
 * @example
 * ```ts ignore
 * import { evaluateModel } from "./evaluate.ts";
 * import { openEvalData } from "./data.ts";
 * const data = await openEvalData({ size: 64, minArea: 10 }, "test");
 * const report = evaluationReport(await evaluateModel(model, data));
 * console.log(report.segmentation?.paper.ap50, report.classification?.metrics.accuracy);
 * ```
 *
 * @module
 */

import { mixSeed } from "../data/prng.ts";
import { Rng } from "../rng.ts";
import type { SSM } from "../ssm.ts";
import { pastedMaskToImage } from "../paste_masks.ts";
import {
  type ClassificationMetrics,
  classificationMetrics,
  confusionMatrix,
  PAPER_CLASS_NAMES,
} from "../metrics/mod.ts";
import type { EvalData } from "./data.ts";
import {
  type SegEvalRecord,
  type SegmentationMetrics,
  segmentationMetrics,
  segmentationRecord,
} from "./segmentation.ts";

/** One unit of evaluation work: a segmentation or a classification test image. */
export interface EvalTask {
  /** Which split the image belongs to. */
  kind: "seg" | "cls";
  /** Its position in that split. */
  index: number;
}

/** The evaluation record of one classification test image. */
export interface ClsEvalRecord {
  /** Position in the classification test split. */
  index: number;
  /** File name. */
  name: string;
  /** True class. */
  label: number;
  /** Predicted class (argmax of the logits). */
  predicted: number;
  /** Class probabilities. */
  probs: number[];
}

/** All records of an evaluation. */
export interface EvalRecords {
  /** Segmentation records, by index. */
  seg: SegEvalRecord[];
  /** Classification records, by index. */
  cls: ClsEvalRecord[];
}

/** Classification results of a test split. */
export interface ClassificationReport {
  /** Class names, in label order. */
  classNames: string[];
  /** Confusion matrix, metrics and the paper's F1. */
  metrics: ClassificationMetrics;
}

/** Metrics of an evaluation (null parts: no such test data). */
export interface EvalReport {
  /** Table-2 metrics. */
  segmentation: SegmentationMetrics | null;
  /** Table-3 metrics. */
  classification: ClassificationReport | null;
}

/** The seed of the RoI-batch RNG for one test image. */
export function imageRngSeed(modelSeed: number, task: EvalTask): number {
  return mixSeed(modelSeed, task.kind === "seg" ? 1 : 2, task.index);
}

/** Every task of the opened data: segmentation images, then classification images. */
export function evalTasks(data: EvalData): EvalTask[] {
  const tasks: EvalTask[] = [];
  for (let i = 0; i < (data.seg?.length ?? 0); i++) tasks.push({ kind: "seg", index: i });
  for (let i = 0; i < (data.cls?.length ?? 0); i++) tasks.push({ kind: "cls", index: i });
  return tasks;
}

/** Runs the model on one test image and returns its record. */
export async function evaluateTask(
  model: SSM,
  data: EvalData,
  task: EvalTask,
): Promise<SegEvalRecord | ClsEvalRecord> {
  const src = task.kind === "seg" ? data.seg : data.cls;
  if (!src) {
    throw new Error(
      `evaluateTask: no ${task.kind === "seg" ? "segmentation" : "classification"} data`,
    );
  }
  if (task.index < 0 || task.index >= src.length) {
    throw new RangeError(
      `evaluateTask: ${task.kind} index ${task.index} out of 0..${src.length - 1}`,
    );
  }
  model.rng.setState(new Rng(imageRngSeed(model.config.seed, task)).getState());
  if (task.kind === "cls") {
    const s = await data.cls!.get(task.index);
    const pred = model.predict(s.image);
    return {
      index: task.index,
      name: s.name,
      label: s.label,
      predicted: pred.predictedClass,
      probs: Array.from(pred.classProbs),
    };
  }
  const s = await data.seg!.get(task.index);
  const { width, height } = s.image;
  const pred = model.predict(s.image);
  const det = pred.detections;
  const detections = det.masks.map((m, i) => ({
    mask: pastedMaskToImage(m, height, width),
    score: det.scores[i],
    label: det.labels[i],
    box: det.boxes.subarray(4 * i, 4 * i + 4),
  }));
  return segmentationRecord({
    index: task.index,
    name: s.name,
    width,
    height,
    gtInstances: s.instances,
    detections,
  });
}

/**
 * Evaluates the given tasks (default: all) in this process, in order.
 *
 * @param onRecord called after each image (for progress)
 */
export async function evaluateModel(
  model: SSM,
  data: EvalData,
  tasks: readonly EvalTask[] = evalTasks(data),
  onRecord?: (task: EvalTask, record: SegEvalRecord | ClsEvalRecord) => void,
): Promise<EvalRecords> {
  const out: EvalRecords = { seg: [], cls: [] };
  const wasTraining = model.training;
  model.setTraining(false);
  const rngState = model.rng.getState();
  try {
    for (const t of tasks) {
      const r = await evaluateTask(model, data, t);
      if (t.kind === "seg") out.seg.push(r as SegEvalRecord);
      else out.cls.push(r as ClsEvalRecord);
      onRecord?.(t, r);
    }
  } finally {
    model.rng.setState(rngState);
    model.setTraining(wasTraining);
  }
  return sortRecords(out);
}

/** Records sorted by image index (merging the results of several workers). */
export function sortRecords(records: EvalRecords): EvalRecords {
  return {
    seg: [...records.seg].sort((a, b) => a.index - b.index),
    cls: [...records.cls].sort((a, b) => a.index - b.index),
  };
}

/** Table-3 metrics of classification records. */
export function classificationReport(
  records: readonly ClsEvalRecord[],
  classNames: readonly string[] = PAPER_CLASS_NAMES,
): ClassificationReport {
  if (records.length === 0) throw new Error("classificationReport: no test images");
  const k = classNames.length;
  const cm = confusionMatrix(records.map((r) => r.label), records.map((r) => r.predicted), k);
  return { classNames: [...classNames], metrics: classificationMetrics(cm) };
}

/** The metrics of an evaluation's records. */
export function evaluationReport(
  records: EvalRecords,
  options: { maxDets?: number } = {},
): EvalReport {
  return {
    segmentation: records.seg.length ? segmentationMetrics(records.seg, options) : null,
    classification: records.cls.length ? classificationReport(records.cls) : null,
  };
}
