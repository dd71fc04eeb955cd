/**
 * Segmentation datasets in the CNCB-NCOV / MedSeg layout: a folder of CT slices (PNG, JPEG or
 * DICOM) and a folder of label masks (PNG) matched by file stem. The lesion labels come from
 * configuration (CNCB-NCOV: 2 GGO and 3 consolidation, see {@linkcode CNCB_LABELS}; MedSeg:
 * 1 GGO and 2 consolidation, see {@linkcode MEDSEG_LABELS}) and merge into one lesion class.
 *
 * **Instances are measured at the model's input size.** When `size` is set, the label map is
 * first resized to that size with nearest neighbour, then the merged lesion mask is split into
 * 8-connected components and only components with area > `minArea` (default 100 pixels) become
 * instances. This makes `minArea` mean the same thing whatever the native slice size, and the
 * instance masks are exactly the targets the model is trained on. With `size: null` everything
 * is measured at the native size. Each instance has a box `[x1, y1, x2, y2]` with exclusive max
 * (torchvision), a full-image binary mask, label 1 and its area. Slices with no instance are kept
 * with `hasLesions: false` (training skips them; evaluation counts them).
 *
 * Items are listed up front and decoded only by {@linkcode SegmentationDataset.get}, so a large
 * set never sits in memory.
 *
 * @example
 * ```ts ignore
 * import { CNCB_LABELS, SegmentationDataset } from "./segmentation.ts";
 * const ds = await SegmentationDataset.open({
 *   imagesDir: "data/seg/images", masksDir: "data/seg/masks", ...CNCB_LABELS, size: 512,
 * });
 * const sample = await ds.get(0);
 * console.log(sample.name, sample.instances.length, sample.hasLesions);
 * ```
 * @module
 */

import { join, parse } from "node:path";
import { connectedComponents } from "./components.ts";
import { type ImageReadOptions, readImage, readLabelMap } from "./image.ts";
import type { GrayImage, LabelMap } from "./image_types.ts";
import { type Instance, resizeBilinear, resizeNearest } from "./transforms.ts";

/** Which mask labels exist and which of them are lesions. */
export interface LabelScheme {
  /** Mask labels that are lesions (merged into one class). */
  lesionLabels: readonly number[];
  /** Every label a mask may contain; others are an error. Default `0..max(lesionLabels)`. */
  knownLabels?: readonly number[];
}

/** CNCB-NCOV masks: 0 background, 1 lung, 2 ground-glass opacity, 3 consolidation. */
export const CNCB_LABELS: LabelScheme = { lesionLabels: [2, 3], knownLabels: [0, 1, 2, 3] };

/** MedSeg masks: 0 background, 1 ground-glass opacity, 2 consolidation. */
export const MEDSEG_LABELS: LabelScheme = { lesionLabels: [1, 2], knownLabels: [0, 1, 2] };

/** Model input size: a square side, `[height, width]`, or null for the native size. */
export type ModelSize = number | readonly [number, number] | null;

/** Configuration of a {@linkcode SegmentationDataset}. */
export interface SegmentationConfig extends LabelScheme {
  /** Folder of CT slices. */
  imagesDir: string;
  /** Folder of label masks (PNG) with the same stems as the slices. */
  masksDir: string;
  /** Instances need area > minArea pixels at the model size (default 100). */
  minArea?: number;
  /** Size the image and mask are resized to before finding instances (default null: native). */
  size?: ModelSize;
  /** Optional split file: one slice name (stem or file name) per line. */
  splitFile?: string | null;
  /** Image reading options (DICOM window). */
  read?: ImageReadOptions;
}

/** One decoded slice with its lesion instances. */
export interface SegmentationSample {
  /** The slice stem. */
  name: string;
  /** Path of the slice file. */
  imagePath: string;
  /** Path of the mask file. */
  maskPath: string;
  /** The slice at the model size, [0, 1] grey. */
  image: GrayImage;
  /** Lesion instances at the model size (label 1). */
  instances: Instance[];
  /** True when at least one instance passed the area threshold. */
  hasLesions: boolean;
  /** Native slice size. */
  originalSize: { width: number; height: number };
}

/** A listed (not yet decoded) slice. */
export interface SegmentationItem {
  /** The slice stem. */
  name: string;
  /** Path of the slice file. */
  imagePath: string;
  /** Path of the mask file. */
  maskPath: string;
}

const IMAGE_EXTS = new Set(["", ".png", ".jpg", ".jpeg", ".dcm", ".dicom", ".ima"]);

async function listFiles(dir: string, what: string): Promise<string[]> {
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      if ((e.isFile || e.isSymlink) && !e.name.startsWith(".")) names.push(e.name);
    }
  } catch (err) {
    throw new Error(`${dir}: cannot list the ${what} folder (${(err as Error).message})`);
  }
  return names.sort((a, b) => a.localeCompare(b, "en", { numeric: true }));
}

/**
 * Reads a split file of names (one per line; blank lines and `#` comments ignored).
 * An empty file is an error.
 */
export async function readNameList(path: string): Promise<string[]> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    throw new Error(`${path}: cannot read split file (${(err as Error).message})`);
  }
  const names = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l && !l.startsWith("#"))
    .map((l) => l.split(/\s+/)[0]);
  if (names.length === 0) throw new Error(`${path}: split file is empty (no names)`);
  return names;
}

/** Resolves a {@linkcode ModelSize} to `[height, width]` for a native size. */
export function resolveSize(size: ModelSize, height: number, width: number): [number, number] {
  if (size === null) return [height, width];
  if (typeof size === "number") return [size, size];
  return [size[0], size[1]];
}

/**
 * Turns a label map into lesion instances: lesion labels merged, 8-connected components with
 * area > `minArea`. Labels outside `knownLabels` raise an error naming `name`.
 */
export function labelMapToInstances(
  labels: LabelMap,
  scheme: LabelScheme,
  minArea = 100,
  name = "<mask>",
): Instance[] {
  const lesion = new Uint8Array(256);
  for (const l of scheme.lesionLabels) lesion[l] = 1;
  const known = new Uint8Array(256);
  const knownList = scheme.knownLabels ??
    Array.from({ length: Math.max(...scheme.lesionLabels) + 1 }, (_, i) => i);
  for (const l of knownList) known[l] = 1;
  const { width, height, data } = labels;
  const merged = new Uint8Array(width * height);
  for (let i = 0; i < merged.length; i++) {
    const v = data[i];
    if (!known[v]) {
      throw new Error(
        `${name}: unknown label ${v} at pixel (${i % width},${Math.floor(i / width)}); ` +
          `known labels are [${knownList.join(", ")}]`,
      );
    }
    merged[i] = lesion[v];
  }
  const { labels: ids, components } = connectedComponents(merged, width, height);
  const out: Instance[] = [];
  for (const c of components) {
    if (c.area <= minArea) continue;
    const mask = new Uint8Array(width * height);
    const [x1, y1, x2, y2] = c.box;
    for (let y = y1; y < y2; y++) {
      for (let x = x1; x < x2; x++) if (ids[y * width + x] === c.id) mask[y * width + x] = 1;
    }
    out.push({ box: [x1, y1, x2, y2], mask, label: 1, area: c.area });
  }
  return out;
}

/** A lazily decoded segmentation dataset (see the module documentation). */
export class SegmentationDataset {
  /** The listed slices, in natural name order (or split-file order). */
  readonly items: readonly SegmentationItem[];
  /** The configuration, with defaults filled in. */
  readonly config: Readonly<SegmentationConfig>;

  private constructor(items: SegmentationItem[], config: SegmentationConfig) {
    this.items = items;
    this.config = config;
  }

  /** Lists the slices and pairs each with its mask; decodes nothing. */
  static async open(config: SegmentationConfig): Promise<SegmentationDataset> {
    if (!config.lesionLabels?.length) {
      throw new Error(`${config.masksDir}: lesionLabels must name at least one label`);
    }
    const images = (await listFiles(config.imagesDir, "images"))
      .filter((f) => IMAGE_EXTS.has(parse(f).ext.toLowerCase()));
    const masks = await listFiles(config.masksDir, "masks");
    const maskByStem = new Map<string, string>();
    for (const m of masks) {
      const stem = parse(m).name;
      const prev = maskByStem.get(stem);
      if (prev) {
        throw new Error(`${join(config.masksDir, m)}: two masks share stem '${stem}' (${prev})`);
      }
      maskByStem.set(stem, m);
    }
    const imageByStem = new Map<string, string>();
    for (const f of images) {
      const stem = parse(f).name;
      const prev = imageByStem.get(stem);
      if (prev) {
        throw new Error(`${join(config.imagesDir, f)}: two slices share stem '${stem}' (${prev})`);
      }
      imageByStem.set(stem, f);
    }
    let stems = [...imageByStem.keys()];
    if (config.splitFile) {
      const wanted = await readNameList(config.splitFile);
      stems = wanted.map((w) => {
        const stem = imageByStem.has(w) ? w : parse(w).name;
        if (!imageByStem.has(stem)) {
          throw new Error(`${config.splitFile}: '${w}' is not a slice in ${config.imagesDir}`);
        }
        return stem;
      });
    }
    if (stems.length === 0) throw new Error(`${config.imagesDir}: no image files found`);
    const items = stems.map((stem) => {
      const img = imageByStem.get(stem)!;
      const mask = maskByStem.get(stem);
      if (!mask) {
        throw new Error(
          `${join(config.imagesDir, img)}: no mask with stem '${stem}' in ${config.masksDir}`,
        );
      }
      return {
        name: stem,
        imagePath: join(config.imagesDir, img),
        maskPath: join(config.masksDir, mask),
      };
    });
    return new SegmentationDataset(items, { minArea: 100, size: null, ...config });
  }

  /** Number of slices. */
  get length(): number {
    return this.items.length;
  }

  /** Decodes slice `i`: image and mask at the model size, and the lesion instances. */
  async get(i: number): Promise<SegmentationSample> {
    const item = this.items[i];
    if (!item) {
      throw new RangeError(
        `SegmentationDataset.get: index ${i} out of range (0..${this.length - 1})`,
      );
    }
    const [image, mask] = await Promise.all([
      readImage(item.imagePath, this.config.read),
      readLabelMap(item.maskPath),
    ]);
    if (image.width !== mask.width || image.height !== mask.height) {
      throw new Error(
        `${item.maskPath}: mask is ${mask.width}x${mask.height} but slice ${item.imagePath} is ` +
          `${image.width}x${image.height}`,
      );
    }
    const [h, w] = resolveSize(this.config.size ?? null, image.height, image.width);
    const same = h === image.height && w === image.width;
    const img = same ? image : resizeBilinear(image, w, h);
    const lm: LabelMap = same
      ? mask
      : { width: w, height: h, data: resizeNearest(mask.data, mask.width, mask.height, w, h) };
    const instances = labelMapToInstances(lm, this.config, this.config.minArea, item.maskPath);
    return {
      name: item.name,
      imagePath: item.imagePath,
      maskPath: item.maskPath,
      image: img,
      instances,
      hasLesions: instances.length > 0,
      originalSize: { width: image.width, height: image.height },
    };
  }

  /** Iterates the decoded samples in order, one at a time. */
  async *[Symbol.asyncIterator](): AsyncGenerator<SegmentationSample> {
    for (let i = 0; i < this.length; i++) yield await this.get(i);
  }
}
