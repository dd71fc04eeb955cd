/**
 * The data an evaluation or a reproduction run reads: the toolkit's one data opener
 * (`lib/train/datasets.ts`) under the names the evaluation code uses. Its description is a plain
 * serialisable object, so worker threads open the same split; `minArea` (pixels at the model
 * size) lets small model sizes keep small lesions.
 *
 * @example
 * ```ts
 * import { openEvalData } from "./data.ts";
 * const data = await openEvalData({ size: 64, minArea: 10, synthetic: { nCls: 12, nSeg: 8 } }, "test");
 * console.log(data.source, data.seg?.length, data.cls?.length);
 * ```
 *
 * @module
 */
export {
  type DataSpec as EvalDataSpec,
  type DataSplit as EvalData,
  type NamedClsSample,
  type NamedSegSample,
  openDataSplit as openEvalData,
} from "../train/datasets.ts";
