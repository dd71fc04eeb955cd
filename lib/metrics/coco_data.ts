/**
 * COCO ground-truth and result formats, checked and turned into the instances that
 * {@link ./coco.ts} evaluates — what pycocotools' `COCO()`, `COCO.loadRes` and `COCOeval._prepare`
 * do.
 *
 * Results follow `loadRes`: det ids are the 1-based positions in the results list, `iscrowd` is 0,
 * and the branch is chosen by the **first** result: with a non-empty `bbox` every result takes the
 * box branch (`area = w*h`, a missing `segmentation` becomes the box polygon), otherwise the
 * segmentation branch (`area` = mask pixel count, `bbox = toBbox(mask)` unless given). So segm
 * results that also carry `bbox` get box areas for the small/medium/large ranges (Detectron2
 * drops `bbox` from segm results for this reason). Unlike `loadRes`, an empty results list is
 * accepted (it evaluates as "no detections"), and result segmentations may also be polygons or
 * uncompressed RLE.
 *
 * @example
 * ```ts
 * import { loadCocoGroundTruth, loadCocoResults } from "./coco_data.ts";
 * const gt = loadCocoGroundTruth({
 *   images: [{ id: 1, height: 8, width: 8 }],
 *   categories: [{ id: 1, name: "lesion" }],
 *   annotations: [{ id: 1, image_id: 1, category_id: 1, iscrowd: 0, area: 4, bbox: [1, 1, 2, 2] }],
 * }, "bbox");
 * const dets = loadCocoResults(gt, [{ image_id: 1, category_id: 1, score: 0.9, bbox: [1, 1, 2, 2] }], "bbox");
 * dets[0].id; // 1
 * ```
 *
 * @module
 */

import {
  type CocoSegmentation,
  type Rle,
  rleArea,
  rleFrBbox,
  rleToBbox,
  segmentationToRle,
} from "./rle.ts";

/** What the IoU is computed on: masks (`segm`) or boxes (`bbox`). */
export type IouType = "segm" | "bbox";

/** A COCO image entry. */
export interface CocoImage {
  /** Image id. */
  id: number;
  /** Height in pixels (needed to rasterise polygons). */
  height?: number;
  /** Width in pixels (needed to rasterise polygons). */
  width?: number;
  /** Other fields are kept but unused. */
  [key: string]: unknown;
}

/** A COCO ground-truth annotation. */
export interface CocoAnnotation {
  /** Annotation id (non-zero; 0 means "unmatched" in the evaluation). */
  id: number;
  /** Image id. */
  image_id: number;
  /** Category id. */
  category_id: number;
  /** 1 for crowd regions (ignored gts that any number of dets may match). Default 0. */
  iscrowd?: number;
  /** Area used for the small/medium/large ranges (for both segm and bbox evaluation). */
  area: number;
  /** `[x, y, w, h]` box (used by bbox evaluation). */
  bbox?: number[];
  /** Polygons or RLE (used by segm evaluation). */
  segmentation?: CocoSegmentation;
  /** Other fields are kept but unused. */
  [key: string]: unknown;
}

/** A COCO category. */
export interface CocoCategory {
  /** Category id. */
  id: number;
  /** Name. */
  name?: string;
  /** Other fields are kept but unused. */
  [key: string]: unknown;
}

/** A COCO-format ground-truth dataset. */
export interface CocoDataset {
  /** Images. */
  images: CocoImage[];
  /** Ground-truth annotations. */
  annotations: CocoAnnotation[];
  /** Categories. */
  categories: CocoCategory[];
  /** Other fields are kept but unused. */
  [key: string]: unknown;
}

/** One entry of a COCO results list (as written by detectors and read by `loadRes`). */
export interface CocoResult {
  /** Image id (must be an image of the ground truth). */
  image_id: number;
  /** Category id. */
  category_id: number;
  /** Confidence score. */
  score: number;
  /** `[x, y, w, h]` box. */
  bbox?: number[];
  /** Mask (compressed RLE, as in standard results; polygons and uncompressed RLE also accepted). */
  segmentation?: CocoSegmentation;
  /** Other fields are ignored (`id`, `area` and `iscrowd` are recomputed as `loadRes` does). */
  [key: string]: unknown;
}

/** A ground-truth annotation or detection, ready for evaluation. */
export interface CocoInstance {
  /** Annotation id, or for detections the 1-based position in the results list. */
  id: number;
  /** Image id. */
  imageId: number;
  /** Category id. */
  categoryId: number;
  /** Detection score (0 for ground truth). */
  score: number;
  /** Area used for range ignoring. */
  area: number;
  /** `[x, y, w, h]` box (bbox evaluation). */
  bbox: number[];
  /** 1 for crowd ground truth, else 0. */
  iscrowd: number;
  /** Mask (segm evaluation only; null for bbox evaluation). */
  rle: Rle | null;
}

/** Ground truth checked and indexed for evaluation. */
export interface CocoGroundTruth {
  /** Image ids, sorted ascending and unique. */
  imgIds: number[];
  /** Category ids, sorted ascending and unique. */
  catIds: number[];
  /** Image sizes by id. */
  images: Map<number, { height?: number; width?: number }>;
  /** Annotations in file order. */
  annotations: CocoInstance[];
}

const isNum = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);

function checkBox(v: unknown, what: string): number[] {
  if (!Array.isArray(v) || v.length !== 4 || !v.every(isNum)) {
    throw new Error(`${what}: "bbox" must be [x, y, w, h] (4 finite numbers)`);
  }
  return v as number[];
}

function imageSize(
  images: Map<number, { height?: number; width?: number }>,
  imageId: number,
  what: string,
): [number, number] {
  const im = images.get(imageId);
  if (!im || !isNum(im.height) || !isNum(im.width)) {
    throw new Error(`${what}: image ${imageId} needs "height" and "width" to rasterise polygons`);
  }
  return [im.height, im.width];
}

function toRle(
  segm: CocoSegmentation | undefined,
  images: Map<number, { height?: number; width?: number }>,
  imageId: number,
  what: string,
): Rle {
  if (segm === undefined || segm === null) throw new Error(`${what}: "segmentation" is missing`);
  if (Array.isArray(segm)) {
    const [h, w] = imageSize(images, imageId, what);
    return segmentationToRle(segm, h, w, `${what}.segmentation`);
  }
  return segmentationToRle(segm, 0, 0, `${what}.segmentation`);
}

/**
 * Checks a COCO ground-truth object and converts its annotations. For `segm` every annotation
 * needs a `segmentation`; for `bbox` a `bbox`. `source` names the input in error messages.
 */
export function loadCocoGroundTruth(
  dataset: CocoDataset,
  iouType: IouType,
  source = "ground truth",
): CocoGroundTruth {
  if (dataset === null || typeof dataset !== "object") {
    throw new Error(`${source}: expected a COCO object with images, annotations and categories`);
  }
  for (const key of ["images", "annotations", "categories"] as const) {
    if (!Array.isArray(dataset[key])) throw new Error(`${source}: "${key}" must be a list`);
  }
  const images = new Map<number, { height?: number; width?: number }>();
  dataset.images.forEach((im, i) => {
    if (!im || !isNum(im.id)) throw new Error(`${source}: images[${i}].id must be a number`);
    images.set(im.id, { height: im.height, width: im.width });
  });
  const catIds = [
    ...new Set(dataset.categories.map((c, i) => {
      if (!c || !isNum(c.id)) throw new Error(`${source}: categories[${i}].id must be a number`);
      return c.id;
    })),
  ].sort((a, b) => a - b);
  const annotations = dataset.annotations.map((a, i): CocoInstance => {
    const what = `${source}: annotations[${i}]`;
    if (!a || typeof a !== "object") throw new Error(`${what}: not an object`);
    for (const k of ["id", "image_id", "category_id", "area"] as const) {
      if (!isNum(a[k])) throw new Error(`${what}: "${k}" must be a number`);
    }
    if (a.id === 0) throw new Error(`${what}: "id" must not be 0 (0 means "unmatched")`);
    if (!images.has(a.image_id)) throw new Error(`${what}: image_id ${a.image_id} is not an image`);
    const iscrowd = a.iscrowd ? 1 : 0;
    const bbox = iouType === "bbox" ? checkBox(a.bbox, what) : (a.bbox ?? []);
    const rle = iouType === "segm" ? toRle(a.segmentation, images, a.image_id, what) : null;
    return {
      id: a.id,
      imageId: a.image_id,
      categoryId: a.category_id,
      score: 0,
      area: a.area,
      bbox,
      iscrowd,
      rle,
    };
  });
  return { imgIds: [...images.keys()].sort((a, b) => a - b), catIds, images, annotations };
}

/**
 * Turns a COCO results list into detections as `COCO.loadRes` does (see the module docs for the
 * box/segmentation branch rule). Masks are only decoded when `iouType` is `segm` or an area
 * must be computed from them.
 */
export function loadCocoResults(
  gt: CocoGroundTruth,
  results: readonly CocoResult[],
  iouType: IouType,
  source = "results",
): CocoInstance[] {
  if (!Array.isArray(results)) throw new Error(`${source}: expected a list of results`);
  if (results.length === 0) return [];
  const first = results[0];
  if (!first || typeof first !== "object") throw new Error(`${source}[0]: not an object`);
  const boxBranch = Array.isArray(first.bbox) && first.bbox.length > 0;
  if (!boxBranch && first.segmentation === undefined) {
    throw new Error(`${source}[0]: a result needs "bbox" or "segmentation"`);
  }
  return results.map((r, i): CocoInstance => {
    const what = `${source}[${i}]`;
    if (!r || typeof r !== "object") throw new Error(`${what}: not an object`);
    for (const k of ["image_id", "category_id", "score"] as const) {
      if (!isNum(r[k])) throw new Error(`${what}: "${k}" must be a number`);
    }
    if (!gt.images.has(r.image_id)) {
      throw new Error(`${what}: image_id ${r.image_id} is not an image of the ground truth`);
    }
    const base = { id: i + 1, imageId: r.image_id, categoryId: r.category_id, score: r.score };
    if (boxBranch) {
      const bbox = checkBox(r.bbox, what);
      let rle: Rle | null = null;
      if (iouType === "segm") {
        if (r.segmentation !== undefined) {
          rle = toRle(r.segmentation, gt.images, r.image_id, what);
        } else {
          const [h, w] = imageSize(gt.images, r.image_id, what);
          rle = rleFrBbox(bbox, h, w);
        }
      }
      return { ...base, area: bbox[2] * bbox[3], bbox, iscrowd: 0, rle };
    }
    const rle = toRle(r.segmentation, gt.images, r.image_id, what);
    const hasBox = r.bbox !== undefined && !(Array.isArray(r.bbox) && r.bbox.length === 0);
    const bbox = hasBox ? checkBox(r.bbox, what) : rleToBbox(rle);
    return { ...base, area: rleArea(rle), bbox, iscrowd: 0, rle: iouType === "segm" ? rle : null };
  });
}
