/**
 * Opening training and evaluation data from the task flags: a segmentation folder
 * (`images/` + `masks/`, optional `train.txt` / `test.txt` name lists), a classification split
 * file or class-prefixed folder (optional `train.txt` / `test.txt` split files beside it), or,
 * when no data is given, the embedded synthetic CT data generated into a git-ignored cache
 * folder on first use.
 *
 * @example
 * ```ts
 * import { openData } from "@covid-ssm/ssm";
 * const data = await openData({ size: 128 }, "train"); // synthetic, cached under data/cache
 * console.log(data.source, data.seg.length, data.cls?.length);
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
import type { SampleSource, TrainClsSample, TrainSegSample } from "./trainer.ts";

/** Where the data comes from, and at which model size it is read. */
export interface DataOptions {
  /** Segmentation folder with `images/` and `masks/` (null: synthetic). */
  segData?: string | null;
  /** Mask labels that are lesions (CNCB: 2,3; MedSeg: 1,2). */
  segLesionLabels?: number[];
  /** Classification split file or folder (null: synthetic). */
  clsData?: string | null;
  /** Model input size (slices are resized to it). */
  size: number;
  /** Synthetic data size when no data is given. */
  synthetic?: { nCls?: number; nSeg?: number; seed?: number };
  /** Keep decoded samples in memory (default: true up to 256 px). */
  cache?: boolean;
}

/** Opened datasets. */
export interface OpenedData {
  /** Segmentation samples of the split. */
  seg: SampleSource<TrainSegSample & { name: string }>;
  /** Classification samples of the split (null when no classification data exists). */
  cls: SampleSource<TrainClsSample & { name: string }> | null;
  /** Human-readable description of the source. */
  source: string;
}

function cached<T>(
  src: { length: number; get(i: number): Promise<T> },
  on: boolean,
): SampleSource<T> {
  if (!on) return src;
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
 * Opens the segmentation and classification data of a split (`train`, `test` or `all`).
 * A split with no list file beside the data means all of it.
 */
export async function openData(
  opts: DataOptions,
  split: "train" | "test" | "all",
): Promise<OpenedData> {
  let segDir = opts.segData ?? null;
  let clsPath = opts.clsData ?? null;
  let source = "";
  let scheme: LabelScheme = opts.segLesionLabels
    ? { lesionLabels: opts.segLesionLabels }
    : CNCB_LABELS;
  if (!segDir && !clsPath) {
    const root = await ensureSyntheticData({
      nCls: opts.synthetic?.nCls ?? 300,
      nSeg: opts.synthetic?.nSeg ?? 100,
      seed: opts.synthetic?.seed ?? 0,
      size: opts.size,
    });
    segDir = join(root, "seg");
    clsPath = join(root, "cls");
    scheme = CNCB_LABELS;
    source = `synthetic (${root})`;
  } else {
    source = [segDir && `seg ${segDir}`, clsPath && `cls ${clsPath}`].filter(Boolean).join(", ");
  }
  const cache = opts.cache ?? opts.size <= 256;
  const listFor = (dir: string) => {
    if (split === "all") return null;
    const p = join(dir, `${split}.txt`);
    return existsSync(p) ? p : null;
  };
  if (!segDir) throw new Error("no segmentation data: pass --seg-data DIR (images/ and masks/)");
  for (const sub of ["images", "masks"]) {
    if (!existsSync(join(segDir, sub))) throw new Error(`${segDir}: missing the '${sub}' folder`);
  }
  const seg = await SegmentationDataset.open({
    imagesDir: join(segDir, "images"),
    masksDir: join(segDir, "masks"),
    ...scheme,
    size: opts.size,
    splitFile: listFor(segDir),
  });
  let cls: ClassificationDataset | null = null;
  if (clsPath) {
    if (!existsSync(clsPath)) throw new Error(`${clsPath}: classification data not found`);
    if (statSync(clsPath).isDirectory()) {
      const list = listFor(clsPath);
      cls = list
        ? await ClassificationDataset.fromSplitFile(list, clsPath, { size: opts.size })
        : await ClassificationDataset.fromFolder(clsPath, { size: opts.size });
    } else {
      cls = await ClassificationDataset.fromSplitFile(clsPath, dirname(clsPath), {
        size: opts.size,
      });
    }
  }
  return { seg: cached(seg, cache), cls: cls ? cached(cls, cache) : null, source };
}
