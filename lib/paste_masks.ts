/**
 * Pastes the RoI mask head's `M x M` probabilities (M = 28) into the image frame exactly as
 * torchvision 0.14's `paste_masks_in_image` does, then binarises them (`prob > 0.5`, strict).
 *
 * Per detection: pad the mask with `padding` (1) zeros on every side; scale the box about its
 * centre by `(M + 2*padding) / M` in float32 and **truncate** the coordinates toward zero (not
 * floor); the integer box is inclusive, so the mask is resized (bilinear, `align_corners=False`,
 * no antialias) to `max(x2i - x1i + 1, 1)` x `max(y2i - y1i + 1, 1)` and the part inside the image
 * is pasted. (torchvision fails on a box lying entirely left of or above the image; here such a
 * box gives an empty crop.)
 *
 * Results are kept as box-local crops (`PastedMask`: a uint8 mask plus its offset in the image),
 * so 128 detections on a 512x512 slice never materialise 128 full-size float images; use
 * {@link pastedMaskToImage} / {@link pasteMasksInImageFull} for full-image uint8 masks. Pure
 * JavaScript on the CPU (post-processing).
 *
 * @example
 * ```ts
 * import { pasteMasksInImage } from "./paste_masks.ts";
 * const probs = new Float32Array(2 * 28 * 28).fill(0.9);            // [N=2, 28, 28]
 * const boxes = new Float32Array([10, 10, 50, 40, 100, 80, 160, 200]); // [N, 4]
 * const pasted = pasteMasksInImage(probs, boxes, 512, 512);
 * console.log(pasted[0].x0, pasted[0].y0, pasted[0].width, pasted[0].area);
 * ```
 *
 * @module
 */

const f32 = Math.fround;

/** Options of {@link pasteMask} and {@link pasteMasksInImage}. */
export interface PasteMasksOptions {
  /** Binarisation threshold; a pixel is set when `prob > threshold`. Default 0.5. */
  threshold?: number;
  /** Zero padding around the M x M mask before resizing. Default 1 (torchvision's). */
  padding?: number;
  /** Also return the pasted float probabilities of the crop (`probs`). Default false. */
  returnProbs?: boolean;
}

/** One detection's pasted mask, as a crop of the image. */
export interface PastedMask {
  /** The expanded integer box `[x1i, y1i, x2i, y2i]` (inclusive), torchvision's int64 box. */
  expandedBoxInt: [number, number, number, number];
  /** Column of the crop's left edge in the image. */
  x0: number;
  /** Row of the crop's top edge in the image. */
  y0: number;
  /** Crop width (0 when the box lies outside the image). */
  width: number;
  /** Crop height (0 when the box lies outside the image). */
  height: number;
  /** `prob > threshold`, row-major `[height * width]`, values 0/1. */
  mask: Uint8Array;
  /** Pasted probabilities `[height * width]`, only with `returnProbs`. */
  probs?: Float32Array;
  /** Number of set pixels in `mask`. */
  area: number;
  /** Sum of the pasted probabilities over the image (float64 accumulation). */
  probSum: number;
}

/**
 * torchvision's `expand_boxes` in float32: each box scaled by `scale` about its centre.
 * @param boxesXYXY [N*4]
 * @returns Float32Array [N*4]
 */
export function expandBoxes(boxesXYXY: Float32Array | Float64Array, scale: number): Float32Array {
  if (boxesXYXY.length % 4 !== 0) {
    throw new Error(`expandBoxes: boxes length ${boxesXYXY.length} is not a multiple of 4`);
  }
  const s = f32(scale);
  const out = new Float32Array(boxesXYXY.length);
  for (let i = 0; i < out.length; i += 4) {
    const b = boxesXYXY;
    const wHalf = f32(f32(f32(b[i + 2] - b[i]) * 0.5) * s);
    const hHalf = f32(f32(f32(b[i + 3] - b[i + 1]) * 0.5) * s);
    const xc = f32(f32(b[i + 2] + b[i]) * 0.5), yc = f32(f32(b[i + 3] + b[i + 1]) * 0.5);
    out[i] = f32(xc - wHalf);
    out[i + 1] = f32(yc - hHalf);
    out[i + 2] = f32(xc + wHalf);
    out[i + 3] = f32(yc + hHalf);
  }
  return out;
}

/**
 * Indices/weights of a half-pixel bilinear resize `nIn -> nOut`, for output indices
 * `first .. first+count-1` only.
 */
function axisWeights(nIn: number, nOut: number, first: number, count: number) {
  const i0 = new Int32Array(count), i1 = new Int32Array(count), l = new Float64Array(count);
  const scale = nIn / nOut;
  for (let k = 0; k < count; k++) {
    const src = Math.max(scale * (first + k + 0.5) - 0.5, 0);
    const lo = Math.min(Math.floor(src), nIn - 1);
    i0[k] = lo;
    i1[k] = Math.min(lo + 1, nIn - 1);
    l[k] = src - lo;
  }
  return { i0, i1, l };
}

/**
 * Pastes one `M x M` probability mask into an `imageH x imageW` image like torchvision's
 * `paste_mask_in_image` (after `expand_masks` / `expand_boxes`), returning the in-image crop.
 * @param maskProbs Float32Array [M*M], row-major probabilities
 * @param maskSize M
 * @param boxXYXY the detection box `(x1, y1, x2, y2)` in image pixels (float32 values)
 * @param imageH image height
 * @param imageW image width
 */
export function pasteMask(
  maskProbs: Float32Array,
  maskSize: number,
  boxXYXY: ArrayLike<number>,
  imageH: number,
  imageW: number,
  options: PasteMasksOptions = {},
): PastedMask {
  const m = maskSize;
  const pad = options.padding ?? 1;
  const threshold = options.threshold ?? 0.5;
  if (!Number.isInteger(m) || m < 1 || maskProbs.length !== m * m) {
    throw new Error(`pasteMask: mask has ${maskProbs.length} values, expected ${m}x${m}`);
  }
  if (!Number.isInteger(pad) || pad < 0) throw new Error(`pasteMask: bad padding ${pad}`);
  if (!Number.isInteger(imageH) || !Number.isInteger(imageW) || imageH < 1 || imageW < 1) {
    throw new Error(`pasteMask: bad image size ${imageH}x${imageW}`);
  }
  const mp = m + 2 * pad;
  const exp = expandBoxes(
    Float32Array.from([boxXYXY[0], boxXYXY[1], boxXYXY[2], boxXYXY[3]]),
    mp / m,
  );
  // int64 cast: truncation toward zero (+ 0 turns -0 into 0)
  const bx1 = Math.trunc(exp[0]) + 0, by1 = Math.trunc(exp[1]) + 0;
  const bx2 = Math.trunc(exp[2]) + 0, by2 = Math.trunc(exp[3]) + 0;
  const w = Math.max(bx2 - bx1 + 1, 1), h = Math.max(by2 - by1 + 1, 1);
  const x0 = Math.max(bx1, 0), x1 = Math.min(bx2 + 1, imageW);
  const y0 = Math.max(by1, 0), y1 = Math.min(by2 + 1, imageH);
  const cw = Math.max(x1 - x0, 0), ch = Math.max(y1 - y0, 0);
  const result: PastedMask = {
    expandedBoxInt: [bx1, by1, bx2, by2],
    x0,
    y0,
    width: cw,
    height: ch,
    mask: new Uint8Array(cw * ch),
    area: 0,
    probSum: 0,
  };
  if (options.returnProbs) result.probs = new Float32Array(cw * ch);
  if (cw === 0 || ch === 0) return result;

  // Padded mask [mp, mp].
  const padded = new Float64Array(mp * mp);
  for (let y = 0; y < m; y++) {
    for (let x = 0; x < m; x++) padded[(y + pad) * mp + x + pad] = maskProbs[y * m + x];
  }
  // Crop rows/cols in resized-mask coordinates start at (y0 - by1, x0 - bx1).
  const ax = axisWeights(mp, w, x0 - bx1, cw);
  const ay = axisWeights(mp, h, y0 - by1, ch);
  const row = new Float64Array(mp);
  const { mask, probs } = result;
  let area = 0, sum = 0;
  for (let r = 0; r < ch; r++) {
    const ra = ay.i0[r] * mp, rb = ay.i1[r] * mp, ly = ay.l[r];
    for (let x = 0; x < mp; x++) row[x] = (1 - ly) * padded[ra + x] + ly * padded[rb + x];
    const o = r * cw;
    for (let c = 0; c < cw; c++) {
      const lx = ax.l[c];
      const v = (1 - lx) * row[ax.i0[c]] + lx * row[ax.i1[c]];
      sum += v;
      if (v > threshold) {
        mask[o + c] = 1;
        area++;
      }
      if (probs) probs[o + c] = v;
    }
  }
  result.area = area;
  result.probSum = sum;
  return result;
}

/**
 * `paste_masks_in_image` for N detections, returning box-local crops.
 * @param masksProbs Float32Array [N*M*M] (M inferred, e.g. 28)
 * @param boxesXYXY Float32Array [N*4] in image pixels
 * @param imageH image height
 * @param imageW image width
 */
export function pasteMasksInImage(
  masksProbs: Float32Array,
  boxesXYXY: Float32Array | Float64Array,
  imageH: number,
  imageW: number,
  options: PasteMasksOptions = {},
): PastedMask[] {
  if (boxesXYXY.length % 4 !== 0) {
    throw new Error(`pasteMasksInImage: boxes length ${boxesXYXY.length} is not a multiple of 4`);
  }
  const n = boxesXYXY.length / 4;
  if (n === 0) {
    if (masksProbs.length !== 0) throw new Error("pasteMasksInImage: masks given for 0 boxes");
    return [];
  }
  const m = Math.round(Math.sqrt(masksProbs.length / n));
  if (m * m * n !== masksProbs.length) {
    throw new Error(
      `pasteMasksInImage: ${masksProbs.length} mask values are not N*M*M square masks for N=${n}`,
    );
  }
  const out: PastedMask[] = [];
  for (let i = 0; i < n; i++) {
    out.push(pasteMask(
      masksProbs.subarray(i * m * m, (i + 1) * m * m),
      m,
      boxesXYXY.subarray(i * 4, i * 4 + 4),
      imageH,
      imageW,
      options,
    ));
  }
  return out;
}

/**
 * A pasted crop as a full-image uint8 mask `[imageH * imageW]` (row-major `y * imageW + x`).
 * @param into optional output to fill (must be `imageH * imageW`; cleared first)
 */
export function pastedMaskToImage(
  pasted: PastedMask,
  imageH: number,
  imageW: number,
  into?: Uint8Array,
): Uint8Array {
  const out = into ?? new Uint8Array(imageH * imageW);
  if (out.length !== imageH * imageW) {
    throw new Error(`pastedMaskToImage: output has ${out.length} values, need ${imageH * imageW}`);
  }
  if (into) out.fill(0);
  if (pasted.width === 0 || pasted.height === 0) return out;
  if (pasted.x0 + pasted.width > imageW || pasted.y0 + pasted.height > imageH) {
    throw new Error("pastedMaskToImage: the crop does not fit the given image size");
  }
  for (let r = 0; r < pasted.height; r++) {
    const src = pasted.mask.subarray(r * pasted.width, (r + 1) * pasted.width);
    out.set(src, (pasted.y0 + r) * imageW + pasted.x0);
  }
  return out;
}

/**
 * `paste_masks_in_image` followed by `> threshold`, as full-image uint8 masks:
 * Uint8Array [N*imageH*imageW].
 */
export function pasteMasksInImageFull(
  masksProbs: Float32Array,
  boxesXYXY: Float32Array | Float64Array,
  imageH: number,
  imageW: number,
  options: PasteMasksOptions = {},
): Uint8Array {
  const crops = pasteMasksInImage(masksProbs, boxesXYXY, imageH, imageW, options);
  const hw = imageH * imageW;
  const out = new Uint8Array(crops.length * hw);
  crops.forEach((p, i) => pastedMaskToImage(p, imageH, imageW, out.subarray(i * hw, (i + 1) * hw)));
  return out;
}
