/**
 * Geometric transforms for images, label maps and instance targets: resize to the model's input
 * size (bilinear for images with PyTorch's `align_corners=False` convention, nearest neighbour
 * for masks with PyTorch's `mode="nearest"` convention, boxes scaled) and horizontal flip
 * (an augmentation, off by default in the dataset readers).
 *
 * @example
 * ```ts
 * import { resizeBilinear } from "./transforms.ts";
 * const img = { width: 2, height: 1, data: new Float32Array([0, 1]) };
 * console.log(Array.from(resizeBilinear(img, 4, 1).data)); // [0, 0.25, 0.75, 1]
 * ```
 * @module
 */

import type { GrayImage } from "./image_types.ts";

/** A box `[x1, y1, x2, y2]` in pixels, exclusive maximum (torchvision convention). */
export type Box = [number, number, number, number];

/** One object instance: box, full-image binary mask, class label and pixel area. */
export interface Instance {
  /** `[x1, y1, x2, y2]`, exclusive maximum. */
  box: Box;
  /** `height * width` binary mask (0/1) of the whole image. */
  mask: Uint8Array;
  /** Class label (1 = lesion for the segmentation sets). */
  label: number;
  /** Number of mask pixels. */
  area: number;
}

/** Bilinear resize with `align_corners=False` semantics (as `F.interpolate`, no antialias). */
export function resizeBilinear(img: GrayImage, width: number, height: number): GrayImage {
  const { width: w0, height: h0, data } = img;
  const out = new Float32Array(width * height);
  const sx = w0 / width, sy = h0 / height;
  const xi0 = new Int32Array(width), xi1 = new Int32Array(width), xf = new Float32Array(width);
  for (let x = 0; x < width; x++) {
    let s = (x + 0.5) * sx - 0.5;
    if (s < 0) s = 0;
    const i = Math.min(Math.floor(s), w0 - 1);
    xi0[x] = i;
    xi1[x] = Math.min(i + 1, w0 - 1);
    xf[x] = s - i;
  }
  for (let y = 0; y < height; y++) {
    let s = (y + 0.5) * sy - 0.5;
    if (s < 0) s = 0;
    const j0 = Math.min(Math.floor(s), h0 - 1);
    const j1 = Math.min(j0 + 1, h0 - 1);
    const fy = s - j0;
    const r0 = j0 * w0, r1 = j1 * w0;
    for (let x = 0; x < width; x++) {
      const a = data[r0 + xi0[x]], b = data[r0 + xi1[x]];
      const c = data[r1 + xi0[x]], d = data[r1 + xi1[x]];
      const fx = xf[x];
      const top = a + (b - a) * fx, bot = c + (d - c) * fx;
      out[y * width + x] = top + (bot - top) * fy;
    }
  }
  return { width, height, data: out };
}

/**
 * Nearest-neighbour resize of a `height0 * width0` label array with PyTorch's `mode="nearest"`
 * convention: output pixel `x` samples source `floor(x * width0 / width)`.
 */
export function resizeNearest<T extends Uint8Array | Int32Array | Float32Array>(
  data: T,
  width0: number,
  height0: number,
  width: number,
  height: number,
): T {
  const Ctor = data.constructor as new (n: number) => T;
  const out = new Ctor(width * height);
  const sx = width0 / width, sy = height0 / height;
  const xs = new Int32Array(width);
  for (let x = 0; x < width; x++) xs[x] = Math.min(Math.floor(x * sx), width0 - 1);
  for (let y = 0; y < height; y++) {
    const r = Math.min(Math.floor(y * sy), height0 - 1) * width0;
    for (let x = 0; x < width; x++) out[y * width + x] = data[r + xs[x]];
  }
  return out;
}

/** Scales boxes from a `width0 x height0` image to a `width x height` one. */
export function scaleBoxes(
  boxes: readonly Box[],
  width0: number,
  height0: number,
  width: number,
  height: number,
): Box[] {
  const rx = width / width0, ry = height / height0;
  return boxes.map((b) => [b[0] * rx, b[1] * ry, b[2] * rx, b[3] * ry]);
}

/** Mirrors a `height * width` row-major array left-right. */
export function flipArrayHorizontal<T extends Uint8Array | Int32Array | Float32Array>(
  data: T,
  width: number,
  height: number,
): T {
  const Ctor = data.constructor as new (n: number) => T;
  const out = new Ctor(data.length);
  for (let y = 0; y < height; y++) {
    const r = y * width;
    for (let x = 0; x < width; x++) out[r + x] = data[r + width - 1 - x];
  }
  return out;
}

/** Mirrors a box left-right in an image of the given width (exclusive max stays exclusive). */
export function flipBoxHorizontal(box: Box, width: number): Box {
  return [width - box[2], box[1], width - box[0], box[3]];
}

/** An image with its instances, as the transforms take and return it. */
export interface ImageTarget {
  /** The image. */
  image: GrayImage;
  /** Instances whose masks have the image's size. */
  instances: Instance[];
}

/**
 * Resizes an image (bilinear) and its instances (masks nearest, boxes scaled) to
 * `width x height`. Areas are recounted on the resized masks. Note that the dataset readers
 * instead resize the label map before finding components, so tiny components never appear.
 */
export function resizeTarget(t: ImageTarget, width: number, height: number): ImageTarget {
  const { width: w0, height: h0 } = t.image;
  const image = resizeBilinear(t.image, width, height);
  const instances = t.instances.map((inst) => {
    const mask = resizeNearest(inst.mask, w0, h0, width, height);
    let area = 0;
    for (let i = 0; i < mask.length; i++) area += mask[i];
    const [box] = scaleBoxes([inst.box], w0, h0, width, height);
    return { box, mask, label: inst.label, area };
  });
  return { image, instances };
}

/** Mirrors an image and its instances (boxes and masks) left-right. */
export function flipTargetHorizontal(t: ImageTarget): ImageTarget {
  const { width, height } = t.image;
  return {
    image: { width, height, data: flipArrayHorizontal(t.image.data, width, height) },
    instances: t.instances.map((inst) => ({
      box: flipBoxHorizontal(inst.box, width),
      mask: flipArrayHorizontal(inst.mask, width, height),
      label: inst.label,
      area: inst.area,
    })),
  };
}

/** Options of {@linkcode augment}. */
export interface AugmentOptions {
  /** Probability of a horizontal flip (default 0: augmentation off). */
  hflipProb?: number;
}

/**
 * Applies the enabled augmentations; `random` returns uniforms in [0, 1) (e.g. a seeded
 * generator's `next`). With the defaults the target is returned unchanged.
 */
export function augment(
  t: ImageTarget,
  random: () => number,
  options: AugmentOptions = {},
): ImageTarget {
  const p = options.hflipProb ?? 0;
  return p > 0 && random() < p ? flipTargetHorizontal(t) : t;
}
