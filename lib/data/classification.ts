/**
 * Classification datasets in the COVIDx-CT style. Two layouts:
 *
 * - a split file whose lines are `filename class [xmin ymin xmax ymax]`, file names relative to
 *   an image folder; the optional box (pixel coordinates, exclusive max as in
 *   `image[ymin:ymax, xmin:xmax]`) can crop the slice to the body;
 * - a folder whose file names start with the class id (`0_...png`, `1_...`, `2_...`).
 *
 * Class ids index {@linkcode CLASS_NAMES}. Images are decoded lazily by
 * {@linkcode ClassificationDataset.get}.
 *
 * @example
 * ```ts ignore
 * import { ClassificationDataset, CLASS_NAMES } from "./classification.ts";
 * const ds = await ClassificationDataset.fromSplitFile("data/cls/train.txt", "data/cls", { crop: true, size: 512 });
 * const s = await ds.get(0);
 * console.log(s.name, CLASS_NAMES[s.label]);
 * ```
 * @module
 */

import { join } from "node:path";
import { type ImageReadOptions, readImage } from "./image.ts";
import type { GrayImage } from "./image_types.ts";
import { type ModelSize, resolveSize } from "./segmentation.ts";
import { type Box, resizeBilinear } from "./transforms.ts";

/** Class names by id: 0 Control, 1 Common Pneumonia, 2 COVID-19. */
export const CLASS_NAMES: readonly ["Control", "Common Pneumonia", "COVID-19"] = [
  "Control",
  "Common Pneumonia",
  "COVID-19",
];

/** One line of a classification split file. */
export interface ClassificationEntry {
  /** File name relative to the image folder. */
  file: string;
  /** Class id (index into {@linkcode CLASS_NAMES}). */
  label: number;
  /** Optional crop box `[xmin, ymin, xmax, ymax]` (exclusive max). */
  box: Box | null;
}

/** Options of a {@linkcode ClassificationDataset}. */
export interface ClassificationOptions {
  /** Crop each slice to its box when the split file gives one (default false). */
  crop?: boolean;
  /** Size the (cropped) slice is resized to (default null: unchanged). */
  size?: ModelSize;
  /** Image reading options (DICOM window). */
  read?: ImageReadOptions;
}

/** A decoded classification sample. */
export interface ClassificationSample {
  /** The file name. */
  name: string;
  /** Full path. */
  path: string;
  /** The slice (cropped and resized as configured). */
  image: GrayImage;
  /** Class id. */
  label: number;
  /** The split file's box, if any (native coordinates). */
  box: Box | null;
}

/** Parses the text of a split file; `path` is used in `file:line` error messages. */
export function parseClassificationSplit(
  text: string,
  path: string,
  numClasses: number = CLASS_NAMES.length,
): ClassificationEntry[] {
  const out: ClassificationEntry[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (!line || line.startsWith("#")) continue;
    const where = `${path}:${i + 1}`;
    const f = line.split(/\s+/);
    if (f.length !== 2 && f.length !== 6) {
      throw new Error(
        `${where}: expected 'filename class [xmin ymin xmax ymax]', got ${f.length} fields`,
      );
    }
    const label = Number(f[1]);
    if (!Number.isInteger(label) || label < 0 || label >= numClasses) {
      throw new Error(`${where}: class '${f[1]}' is not an integer in 0..${numClasses - 1}`);
    }
    let box: Box | null = null;
    if (f.length === 6) {
      const v = f.slice(2).map(Number);
      if (v.some((x) => !Number.isInteger(x) || x < 0)) {
        throw new Error(`${where}: box '${f.slice(2).join(" ")}' must be non-negative integers`);
      }
      if (v[2] <= v[0] || v[3] <= v[1]) {
        throw new Error(`${where}: empty box (need xmax > xmin and ymax > ymin)`);
      }
      box = [v[0], v[1], v[2], v[3]];
    }
    out.push({ file: f[0], label, box });
  }
  if (out.length === 0) throw new Error(`${path}: split file is empty (no entries)`);
  return out;
}

/** Crops a grey image to `[x1, y1, x2, y2)`; the box must lie inside the image. */
export function cropImage(img: GrayImage, box: Box, name = "<image>"): GrayImage {
  const [x1, y1, x2, y2] = box;
  if (x1 < 0 || y1 < 0 || x2 > img.width || y2 > img.height || x2 <= x1 || y2 <= y1) {
    throw new Error(
      `${name}: crop box [${box.join(", ")}] does not fit the ${img.width}x${img.height} image`,
    );
  }
  const w = x2 - x1, h = y2 - y1;
  const out = new Float32Array(w * h);
  for (let y = 0; y < h; y++) {
    out.set(img.data.subarray((y + y1) * img.width + x1, (y + y1) * img.width + x2), y * w);
  }
  return { width: w, height: h, data: out };
}

/** A lazily decoded classification dataset. */
export class ClassificationDataset {
  /** Folder the file names are relative to. */
  readonly root: string;
  /** The entries in file order. */
  readonly entries: readonly ClassificationEntry[];
  /** Options with defaults filled in. */
  readonly options: Readonly<ClassificationOptions>;

  /** Wraps already parsed entries (see the static constructors). */
  constructor(root: string, entries: ClassificationEntry[], options: ClassificationOptions = {}) {
    this.root = root;
    this.entries = entries;
    this.options = { crop: false, size: null, ...options };
  }

  /** Opens a split file (`filename class [xmin ymin xmax ymax]` lines). */
  static async fromSplitFile(
    splitFile: string,
    root: string,
    options: ClassificationOptions = {},
  ): Promise<ClassificationDataset> {
    let text: string;
    try {
      text = await Deno.readTextFile(splitFile);
    } catch (err) {
      throw new Error(`${splitFile}: cannot read split file (${(err as Error).message})`);
    }
    return new ClassificationDataset(root, parseClassificationSplit(text, splitFile), options);
  }

  /** Lists a folder whose image file names start with the class id and `_` (`2_0007.png`). */
  static async fromFolder(
    dir: string,
    options: ClassificationOptions = {},
  ): Promise<ClassificationDataset> {
    const entries: ClassificationEntry[] = [];
    try {
      for await (const e of Deno.readDir(dir)) {
        if (!e.isFile && !e.isSymlink) continue;
        const m = /^(\d+)_/.exec(e.name);
        if (!m || !/\.(png|jpe?g|dcm|dicom)$/i.test(e.name)) continue;
        const label = Number(m[1]);
        if (label >= CLASS_NAMES.length) {
          throw new Error(
            `${join(dir, e.name)}: class prefix ${label} is not in 0..${CLASS_NAMES.length - 1}`,
          );
        }
        entries.push({ file: e.name, label, box: null });
      }
    } catch (err) {
      if ((err as Error).message.startsWith(dir)) throw err;
      throw new Error(`${dir}: cannot list the folder (${(err as Error).message})`);
    }
    if (entries.length === 0) {
      throw new Error(`${dir}: no class-prefixed images (0_*, 1_*, 2_*) found`);
    }
    entries.sort((a, b) => a.file.localeCompare(b.file, "en", { numeric: true }));
    return new ClassificationDataset(dir, entries, options);
  }

  /** Number of samples. */
  get length(): number {
    return this.entries.length;
  }

  /** Number of samples per class id. */
  classCounts(): number[] {
    const c: number[] = CLASS_NAMES.map(() => 0);
    for (const e of this.entries) c[e.label]++;
    return c;
  }

  /** Decodes sample `i` (cropped to its box if `crop`, then resized if `size`). */
  async get(i: number): Promise<ClassificationSample> {
    const e = this.entries[i];
    if (!e) throw new RangeError(`ClassificationDataset.get: index ${i} out of range`);
    const path = join(this.root, e.file);
    let image = await readImage(path, this.options.read);
    if (this.options.crop && e.box) image = cropImage(image, e.box, path);
    const [h, w] = resolveSize(this.options.size ?? null, image.height, image.width);
    if (h !== image.height || w !== image.width) image = resizeBilinear(image, w, h);
    return { name: e.file, path, image, label: e.label, box: e.box };
  }
}
