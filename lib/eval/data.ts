/**
 * The data an evaluation or a reproduction run reads, described by a plain (serialisable) object
 * so that worker threads can open the same split: a segmentation folder (`images/`, `masks/`,
 * optional `train.txt` / `test.txt` name lists), a classification split file or folder (optional
 * `train.txt` / `test.txt` beside it, or an explicit test split file), or — with no paths — the
 * embedded synthetic CT data, generated once into `data/cache`.
 *
 * Unlike the training CLI's opener this one takes the instance area threshold (`minArea`,
 * pixels at the model size), so small model sizes can keep the small lesions.
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

import { existsSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import {
  ClassificationDataset,
  CNCB_LABELS,
  ensureSyntheticData,
  type LabelScheme,
  SegmentationDataset,
} from "../data/mod.ts";
import type { SampleSource, TrainClsSample, TrainSegSample } from "../train/trainer.ts";

/** Where the data comes from (JSON-serialisable: workers receive it as is). */
export interface EvalDataSpec {
  /** Segmentation folder with `images/` and `masks/` (null/absent with no cls data: synthetic). */
  segData?: string | null;
  /** Mask labels that are lesions (default CNCB: 2,3). */
  segLesionLabels?: number[] | null;
  /** Classification split file or folder (null/absent with no seg data: synthetic). */
  clsData?: string | null;
  /** Classification test split file (default: `test.txt` beside a folder, else `clsData`). */
  clsTestData?: string | null;
  /** Model input size: slices are resized to `size x size`. */
  size: number;
  /** Instances need area > minArea pixels at the model size (default 100). */
  minArea?: number;
  /** Synthetic data size and seed when no paths are given. */
  synthetic?: { nCls?: number; nSeg?: number; seed?: number };
}

/** A segmentation sample with its name. */
export type NamedSegSample = TrainSegSample & { name: string };
/** A classification sample with its name. */
export type NamedClsSample = TrainClsSample & { name: string };

/** Opened data of one split. */
export interface EvalData {
  /** Segmentation samples (null when no segmentation data was given). */
  seg: SampleSource<NamedSegSample> | null;
  /** Classification samples (null when no classification data was given). */
  cls: SampleSource<NamedClsSample> | null;
  /** Human-readable description of the source. */
  source: string;
}

function memoised<T>(src: SampleSource<T>): SampleSource<T> {
  const memo = new Map<number, Promise<T>>();
  return {
    length: src.length,
    get(i: number): Promise<T> {
      let p = memo.get(i);
      if (!p) {
        p = src.get(i);
        memo.set(i, p);
      }
      return p;
    },
  };
}

/**
 * Opens a split (`train`, `test` or `all`) of the data described by `spec`. A folder without a
 * list file for the split means all of it. Samples are kept in memory up to 256 px.
 */
export async function openEvalData(
  spec: EvalDataSpec,
  split: "train" | "test" | "all",
): Promise<EvalData> {
  let segDir = spec.segData ?? null;
  let clsPath = spec.clsData ?? null;
  let scheme: LabelScheme = spec.segLesionLabels?.length
    ? { lesionLabels: spec.segLesionLabels }
    : CNCB_LABELS;
  let source: string;
  if (!segDir && !clsPath) {
    const root = await ensureSyntheticData({
      nCls: spec.synthetic?.nCls ?? 300,
      nSeg: spec.synthetic?.nSeg ?? 100,
      seed: spec.synthetic?.seed ?? 0,
      size: spec.size,
    });
    segDir = join(root, "seg");
    clsPath = join(root, "cls");
    scheme = CNCB_LABELS;
    source = `synthetic (${root})`;
  } else {
    source = [segDir && `seg ${segDir}`, clsPath && `cls ${clsPath}`].filter(Boolean).join(", ");
  }
  const keep = spec.size <= 256;
  const listFor = (dir: string) => {
    if (split === "all") return null;
    const p = join(dir, `${split}.txt`);
    return existsSync(p) ? p : null;
  };
  let seg: SampleSource<NamedSegSample> | null = null;
  if (segDir) {
    for (const sub of ["images", "masks"]) {
      if (!existsSync(join(segDir, sub))) {
        throw new Error(`--seg-data ${segDir}: missing the '${sub}' folder`);
      }
    }
    const ds = await SegmentationDataset.open({
      imagesDir: join(segDir, "images"),
      masksDir: join(segDir, "masks"),
      ...scheme,
      minArea: spec.minArea ?? 100,
      size: spec.size,
      splitFile: listFor(segDir),
    });
    seg = keep ? memoised(ds) : ds;
  }
  let cls: SampleSource<NamedClsSample> | null = null;
  if (clsPath) {
    if (!existsSync(clsPath)) throw new Error(`--cls-data ${clsPath}: not found`);
    const opts = { size: spec.size };
    let ds: ClassificationDataset;
    if (split === "test" && spec.clsTestData) {
      if (!existsSync(spec.clsTestData)) {
        throw new Error(`--cls-test-data ${spec.clsTestData}: not found`);
      }
      const root = statSync(clsPath).isDirectory() ? clsPath : dirname(spec.clsTestData);
      ds = await ClassificationDataset.fromSplitFile(spec.clsTestData, root, opts);
    } else if (statSync(clsPath).isDirectory()) {
      const list = listFor(clsPath);
      ds = list
        ? await ClassificationDataset.fromSplitFile(list, clsPath, opts)
        : await ClassificationDataset.fromFolder(clsPath, opts);
    } else {
      ds = await ClassificationDataset.fromSplitFile(clsPath, dirname(clsPath), opts);
    }
    cls = keep ? memoised(ds) : ds;
  }
  return { seg, cls, source };
}
