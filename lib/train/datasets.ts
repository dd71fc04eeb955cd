/**
 * Opening training and evaluation data from the task flags: a segmentation folder
 * (`images/` + `masks/`, optional `train.txt` / `test.txt` name lists), a classification split
 * file or class-prefixed folder (optional `train.txt` / `test.txt` split files beside it, or an
 * explicit test split file), or, when no data is given, the embedded synthetic CT data generated
 * into a git-ignored cache folder on first use. The description ({@linkcode DataSpec}) is a
 * plain serialisable object, so worker threads can open the same split.
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

/** Where the data comes from, and at which model size it is read (JSON-serialisable). */
export interface DataSpec {
  /** Segmentation folder with `images/` and `masks/` (null with no classification data: synthetic). */
  segData?: string | null;
  /** Mask labels that are lesions (default CNCB: 2,3; MedSeg: 1,2). */
  segLesionLabels?: number[] | null;
  /** Classification split file or folder (null with no segmentation data: synthetic). */
  clsData?: string | null;
  /** Classification test split file (default: `test.txt` beside a folder, else `clsData`). */
  clsTestData?: string | null;
  /** Model input size: slices are resized to `size × size`. */
  size: number;
  /** Instances need an area > minArea pixels at the model size (default 100). */
  minArea?: number;
  /** Synthetic data size and seed when no paths are given. */
  synthetic?: { nCls?: number; nSeg?: number; seed?: number };
  /** Keep decoded samples in memory (default: true up to 256 px). */
  cache?: boolean;
}

/** Options of {@linkcode openData} (the same description). */
export type DataOptions = DataSpec;

/** A segmentation sample with its name. */
export type NamedSegSample = TrainSegSample & { name: string };
/** A classification sample with its name. */
export type NamedClsSample = TrainClsSample & { name: string };

/** One opened split; either part is null when that kind of data was not given. */
export interface DataSplit {
  /** Segmentation samples. */
  seg: SampleSource<NamedSegSample> | null;
  /** Classification samples. */
  cls: SampleSource<NamedClsSample> | null;
  /** Human-readable description of the source. */
  source: string;
}

/** An opened split for training: segmentation data is required. */
export interface OpenedData extends DataSplit {
  /** Segmentation samples. */
  seg: SampleSource<NamedSegSample>;
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
 * list file for the split means all of it.
 */
export async function openDataSplit(
  spec: DataSpec,
  split: "train" | "test" | "all",
): Promise<DataSplit> {
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
  const keep = spec.cache ?? spec.size <= 256;
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

/** Opens a split for training: like {@linkcode openDataSplit}, but segmentation data is required. */
export async function openData(
  spec: DataSpec,
  split: "train" | "test" | "all",
): Promise<OpenedData> {
  const d = await openDataSplit(spec, split);
  if (!d.seg) throw new Error("no segmentation data: pass --seg-data DIR (images/ and masks/)");
  return { seg: d.seg, cls: d.cls, source: d.source };
}
