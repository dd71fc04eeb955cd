/**
 * Evaluation of a trained SSM on a test split, as in the paper's Tables 2 and 3: per-image
 * records (COCO RLE ground truth and detections, the paper's per-image AP), lesion AP under the
 * paper's protocol and COCO (maxDets 128), classification metrics with the paper's F1, a worker
 * pool that shares the images out over threads with identical results, and the tables rendered
 * as Markdown / CSV / JSON.
 *
 * @example
 * ```ts ignore
 * import { evaluateModel, evaluationReport, openEvalData } from "./mod.ts";
 * const data = await openEvalData({ size: 96, minArea: 22 }, "test");
 * const report = evaluationReport(await evaluateModel(model, data));
 * console.log(report.segmentation?.paper.ap50, report.classification?.metrics.paperF1);
 * ```
 *
 * @module
 */
export * from "./data.ts";
export * from "./segmentation.ts";
export * from "./evaluate.ts";
export * from "./pool.ts";
export * from "./tables.ts";
