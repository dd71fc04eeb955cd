/**
 * Box utilities with torchvision 0.14 semantics: areas, IoU, clipping, small-box removal,
 * NMS / batched NMS, the `BoxCoder`, the `Matcher` and the `BalancedPositiveNegativeSampler`.
 *
 * Boxes are `(x1, y1, x2, y2)` in pixels with **no +1**: width is `x2 - x1`. The typed-array API
 * takes flat row-major arrays (`boxesXYXY: Float32Array [N*4]`) and emulates torch's float32
 * arithmetic with `Math.fround` where a decision depends on it (NMS thresholds, small-box
 * removal, matcher thresholds), so the same boxes are kept as in torchvision. Image sizes are
 * `[height, width]`, as in torchvision.
 *
 * `BoxCoder.encode` / `BoxCoder.decode` also accept `tf.Tensor2D` arguments; that path is built
 * from differentiable tfjs ops and is what the losses and the proposal decoding use.
 *
 * @example
 * ```ts
 * import { BoxCoder, nms } from "./boxes.ts";
 * const boxes = new Float32Array([0, 0, 10, 10, 1, 1, 11, 11, 50, 50, 60, 60]);
 * const keep = nms(boxes, new Float32Array([0.9, 0.8, 0.7]), 0.5); // Int32Array [0, 2]
 * const coder = new BoxCoder([10, 10, 5, 5]);
 * const deltas = coder.encode(boxes, boxes); // zeros, [3*4]
 * ```
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Rng } from "./rng.ts";

const f32 = Math.fround;

/** Flat boxes `[N*4]` as `(x1, y1, x2, y2)` rows. */
export type BoxesLike = Float32Array | Float64Array;

function checkBoxes(boxes: BoxesLike, what: string): number {
  if (!(boxes instanceof Float32Array || boxes instanceof Float64Array)) {
    throw new Error(`${what}: boxes must be a Float32Array or Float64Array [N*4]`);
  }
  if (boxes.length % 4 !== 0) {
    throw new Error(`${what}: boxes length ${boxes.length} is not a multiple of 4`);
  }
  return boxes.length / 4;
}

/** Box areas `(x2-x1)*(y2-y1)` in float32: Float32Array [N]. */
export function boxArea(boxesXYXY: BoxesLike): Float32Array {
  const n = checkBoxes(boxesXYXY, "boxArea");
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const b = i * 4;
    out[i] = f32(f32(boxesXYXY[b + 2] - boxesXYXY[b]) * f32(boxesXYXY[b + 3] - boxesXYXY[b + 1]));
  }
  return out;
}

/**
 * Pairwise IoU like `torchvision.ops.box_iou`, in float32: Float32Array [N*M] (row-major `[N, M]`).
 * Two zero-area boxes give 0/0 = NaN, as in torchvision.
 */
export function boxIoU(boxes1XYXY: BoxesLike, boxes2XYXY: BoxesLike): Float32Array {
  const n = checkBoxes(boxes1XYXY, "boxIoU (boxes1)");
  const m = checkBoxes(boxes2XYXY, "boxIoU (boxes2)");
  const a1 = boxArea(boxes1XYXY), a2 = boxArea(boxes2XYXY);
  const out = new Float32Array(n * m);
  const b = boxes2XYXY;
  for (let i = 0; i < n; i++) {
    const ax1 = boxes1XYXY[i * 4], ay1 = boxes1XYXY[i * 4 + 1];
    const ax2 = boxes1XYXY[i * 4 + 2], ay2 = boxes1XYXY[i * 4 + 3];
    const ai = a1[i];
    for (let j = 0; j < m; j++) {
      const w = Math.max(f32(Math.min(ax2, b[j * 4 + 2]) - Math.max(ax1, b[j * 4])), 0);
      const h = Math.max(f32(Math.min(ay2, b[j * 4 + 3]) - Math.max(ay1, b[j * 4 + 1])), 0);
      const inter = f32(w * h);
      out[i * m + j] = f32(inter / f32(f32(ai + a2[j]) - inter));
    }
  }
  return out;
}

/**
 * Clamps x to `[0, width]` and y to `[0, height]` like `torchvision.ops.clip_boxes_to_image`
 * (the bound is the width, not width-1). Returns a new Float32Array [N*4].
 * @param sizeHW image size `[height, width]`
 */
export function clipBoxesToImage(
  boxesXYXY: BoxesLike,
  sizeHW: readonly [number, number],
): Float32Array {
  const n = checkBoxes(boxesXYXY, "clipBoxesToImage");
  const [h, w] = sizeHW;
  const out = new Float32Array(n * 4);
  for (let i = 0; i < n * 4; i += 4) {
    out[i] = Math.min(Math.max(boxesXYXY[i], 0), w);
    out[i + 1] = Math.min(Math.max(boxesXYXY[i + 1], 0), h);
    out[i + 2] = Math.min(Math.max(boxesXYXY[i + 2], 0), w);
    out[i + 3] = Math.min(Math.max(boxesXYXY[i + 3], 0), h);
  }
  return out;
}

/**
 * Tensor version of {@link clipBoxesToImage}: `[N, 4]` -> `[N, 4]` (not tidied; caller disposes).
 * @param sizeHW image size `[height, width]`
 */
export function clipBoxesToImageTensor(
  boxesXYXY: tf.Tensor2D,
  sizeHW: readonly [number, number],
): tf.Tensor2D {
  return tf.tidy(() => {
    const [h, w] = sizeHW;
    const upper = tf.tensor1d([w, h, w, h], "float32");
    return tf.minimum(tf.maximum(boxesXYXY, 0), upper) as tf.Tensor2D;
  });
}

/**
 * Indices (ascending) of boxes with `width >= minSize` and `height >= minSize`, compared in
 * float32 like `torchvision.ops.remove_small_boxes`: Int32Array [K].
 */
export function removeSmallBoxes(boxesXYXY: BoxesLike, minSize: number): Int32Array {
  const n = checkBoxes(boxesXYXY, "removeSmallBoxes");
  const thr = f32(minSize);
  const keep: number[] = [];
  for (let i = 0; i < n; i++) {
    const b = i * 4;
    const w = f32(boxesXYXY[b + 2] - boxesXYXY[b]);
    const h = f32(boxesXYXY[b + 3] - boxesXYXY[b + 1]);
    if (w >= thr && h >= thr) keep.push(i);
  }
  return Int32Array.from(keep);
}

/**
 * Indices sorted by score, descending; equal scores keep ascending index order (stable, as
 * torch's CPU sort); NaN scores first (torch treats NaN as the largest value).
 */
export function argsortDescending(scores: ArrayLike<number>): Int32Array {
  const n = scores.length;
  const idx = new Int32Array(n);
  for (let i = 0; i < n; i++) idx[i] = i;
  const key = new Float64Array(n);
  for (let i = 0; i < n; i++) key[i] = Number.isNaN(scores[i]) ? Infinity : scores[i];
  const arr = Array.from(idx);
  arr.sort((a, b) => {
    const ka = key[a], kb = key[b];
    if (ka === kb) {
      const na = Number.isNaN(scores[a]), nb = Number.isNaN(scores[b]);
      if (na !== nb) return na ? -1 : 1;
      return a - b;
    }
    return ka > kb ? -1 : 1;
  });
  return Int32Array.from(arr);
}

/** Greedy NMS over the given ordered subset of boxes; returns kept indices in order. */
function nmsOrdered(boxes: BoxesLike, order: Int32Array, iouThreshold: number): Int32Array {
  const n = order.length;
  // Coordinates and float32 areas gathered in visiting order (contiguous inner loop).
  const x1 = new Float64Array(n), y1 = new Float64Array(n);
  const x2 = new Float64Array(n), y2 = new Float64Array(n), area = new Float64Array(n);
  for (let k = 0; k < n; k++) {
    const b = order[k] * 4;
    x1[k] = boxes[b];
    y1[k] = boxes[b + 1];
    x2[k] = boxes[b + 2];
    y2[k] = boxes[b + 3];
    area[k] = f32(f32(x2[k] - x1[k]) * f32(y2[k] - y1[k]));
  }
  const suppressed = new Uint8Array(n);
  const keep: number[] = [];
  // Disjoint boxes have IoU 0 (or NaN for two zero-area boxes): skippable unless thr < 0.
  const skipDisjoint = iouThreshold >= 0;
  for (let i = 0; i < n; i++) {
    if (suppressed[i]) continue;
    keep.push(order[i]);
    const ix1 = x1[i], iy1 = y1[i], ix2 = x2[i], iy2 = y2[i], iarea = area[i];
    for (let j = i + 1; j < n; j++) {
      if (suppressed[j]) continue;
      let w = f32(Math.min(ix2, x2[j]) - Math.max(ix1, x1[j]));
      let h = f32(Math.min(iy2, y2[j]) - Math.max(iy1, y1[j]));
      if (!(w > 0 && h > 0)) {
        if (skipDisjoint) continue;
        w = Math.max(0, w);
        h = Math.max(0, h);
      }
      const inter = f32(w * h);
      const ovr = f32(inter / f32(f32(iarea + area[j]) - inter));
      if (ovr > iouThreshold) suppressed[j] = 1;
    }
  }
  return Int32Array.from(keep);
}

/**
 * Non-maximum suppression like `torchvision.ops.nms` (CPU kernel): visit boxes by descending
 * score (stable for ties), keep a box unless an already kept box overlaps it with
 * `IoU > iouThreshold` (strict). IoU is computed in float32 without +1.
 * @param boxesXYXY Float32Array [N*4]
 * @param scores [N]
 * @returns kept indices in descending score order: Int32Array [K]
 */
export function nms(
  boxesXYXY: BoxesLike,
  scores: ArrayLike<number>,
  iouThreshold: number,
): Int32Array {
  const n = checkBoxes(boxesXYXY, "nms");
  if (scores.length !== n) throw new Error(`nms: ${n} boxes but ${scores.length} scores`);
  return nmsOrdered(boxesXYXY, argsortDescending(scores), iouThreshold);
}

/** How {@link batchedNms} separates classes. */
export type BatchedNmsMethod = "auto" | "coordinateTrick" | "perClass";

/**
 * Class-aware NMS like `torchvision.ops.batched_nms`: boxes of different `idxs` never suppress
 * each other. The result is one list in **descending score order across all classes**.
 *
 * `method`: `perClass` runs NMS per class and merges by score (torchvision's "vanilla" path);
 * `coordinateTrick` shifts each class by `idx * (maxCoordinate + 1)` in float32 and runs one NMS;
 * `auto` (default) does what torchvision 0.14 does on the CPU: the trick up to 1000 boxes,
 * per class above.
 * @returns kept indices: Int32Array [K]
 */
export function batchedNms(
  boxesXYXY: BoxesLike,
  scores: ArrayLike<number>,
  idxs: ArrayLike<number>,
  iouThreshold: number,
  method: BatchedNmsMethod = "auto",
): Int32Array {
  const n = checkBoxes(boxesXYXY, "batchedNms");
  if (scores.length !== n || idxs.length !== n) {
    throw new Error(`batchedNms: ${n} boxes, ${scores.length} scores, ${idxs.length} idxs`);
  }
  if (n === 0) return new Int32Array(0);
  const useTrick = method === "coordinateTrick" || (method === "auto" && n * 4 <= 4000);
  if (useTrick) {
    let maxC = -Infinity;
    for (let i = 0; i < n * 4; i++) if (boxesXYXY[i] > maxC) maxC = boxesXYXY[i];
    const step = f32(maxC + 1);
    const shifted = new Float32Array(n * 4);
    for (let i = 0; i < n; i++) {
      const off = f32(idxs[i] * step);
      for (let c = 0; c < 4; c++) shifted[i * 4 + c] = f32(boxesXYXY[i * 4 + c] + off);
    }
    return nms(shifted, scores, iouThreshold);
  }
  const order = argsortDescending(scores);
  const byClass = new Map<number, number[]>();
  for (const i of order) {
    const list = byClass.get(idxs[i]);
    if (list) list.push(i);
    else byClass.set(idxs[i], [i]);
  }
  const keepMask = new Uint8Array(n);
  for (const list of byClass.values()) {
    for (const k of nmsOrdered(boxesXYXY, Int32Array.from(list), iouThreshold)) keepMask[k] = 1;
  }
  return order.filter((i) => keepMask[i] === 1);
}

/** Weights `(wx, wy, ww, wh)` of a {@link BoxCoder}. */
export type BoxCoderWeights = readonly [number, number, number, number];

/** `log(1000 / 16)`: the largest dw/dh that `BoxCoder.decode` lets through. */
export const BBOX_XFORM_CLIP: number = Math.log(1000 / 16);

function isTensor(x: unknown): x is tf.Tensor {
  return x instanceof tf.Tensor;
}

/**
 * torchvision's `BoxCoder`: encodes boxes as deltas `(dx, dy, dw, dh)` relative to reference
 * boxes and decodes them back. `(1,1,1,1)` for the RPN, `(10,10,5,5)` for the RoI box heads.
 *
 * Typed arrays in, typed arrays out (float32 arithmetic emulated); `tf.Tensor2D` in, tensors out
 * (differentiable tfjs ops; the caller disposes the result).
 */
export class BoxCoder {
  /** `(wx, wy, ww, wh)`. */
  readonly weights: BoxCoderWeights;
  /** Upper clamp of dw/dh in `decode` (default `log(1000/16)`). */
  readonly bboxXformClip: number;

  /**
   * Creates a coder with the given delta weights.
   * @param weights `(wx, wy, ww, wh)`
   * @param bboxXformClip clamp for dw/dh before `exp` in decode
   */
  constructor(weights: BoxCoderWeights, bboxXformClip: number = BBOX_XFORM_CLIP) {
    if (weights.length !== 4 || weights.some((w) => !Number.isFinite(w) || w === 0)) {
      throw new Error(`BoxCoder: weights must be 4 finite non-zero numbers, got ${weights}`);
    }
    this.weights = [...weights] as unknown as BoxCoderWeights;
    this.bboxXformClip = bboxXformClip;
  }

  /**
   * Regression targets of `referenceBoxes` (the ground truth) relative to `proposals`, like
   * torchvision's `encode_single`: `dx = wx*(gcx-pcx)/pw`, `dw = ww*log(gw/pw)`, ... No clamping;
   * a zero-height proposal gives inf/NaN, so losses must gather rows rather than mask them.
   * @param referenceBoxes gt boxes `[N*4]` (or `tf.Tensor2D [N, 4]`)
   * @param proposals boxes the deltas are relative to, same shape
   * @returns targets `[N*4]` (or `tf.Tensor2D [N, 4]`)
   */
  encode(referenceBoxes: BoxesLike, proposals: BoxesLike): Float32Array;
  /** Tensor overload: `[N, 4]`, `[N, 4]` -> `[N, 4]`. */
  encode(referenceBoxes: tf.Tensor2D, proposals: tf.Tensor2D): tf.Tensor2D;
  encode(
    referenceBoxes: BoxesLike | tf.Tensor2D,
    proposals: BoxesLike | tf.Tensor2D,
  ): Float32Array | tf.Tensor2D {
    if (isTensor(referenceBoxes) || isTensor(proposals)) {
      if (!isTensor(referenceBoxes) || !isTensor(proposals)) {
        throw new Error("BoxCoder.encode: pass two tensors or two typed arrays, not a mix");
      }
      return this.#encodeTensor(referenceBoxes, proposals);
    }
    const n = checkBoxes(referenceBoxes, "BoxCoder.encode (referenceBoxes)");
    if (checkBoxes(proposals, "BoxCoder.encode (proposals)") !== n) {
      throw new Error(
        `BoxCoder.encode: ${n} reference boxes but ${proposals.length / 4} proposals`,
      );
    }
    const [wx, wy, ww, wh] = this.weights.map(f32);
    const out = new Float32Array(n * 4);
    const g = referenceBoxes, p = proposals;
    for (let i = 0; i < n * 4; i += 4) {
      const pw = f32(p[i + 2] - p[i]), ph = f32(p[i + 3] - p[i + 1]);
      const pcx = f32(p[i] + f32(0.5 * pw)), pcy = f32(p[i + 1] + f32(0.5 * ph));
      const gw = f32(g[i + 2] - g[i]), gh = f32(g[i + 3] - g[i + 1]);
      const gcx = f32(g[i] + f32(0.5 * gw)), gcy = f32(g[i + 1] + f32(0.5 * gh));
      out[i] = f32(f32(wx * f32(gcx - pcx)) / pw);
      out[i + 1] = f32(f32(wy * f32(gcy - pcy)) / ph);
      out[i + 2] = f32(ww * f32(Math.log(f32(gw / pw))));
      out[i + 3] = f32(wh * f32(Math.log(f32(gh / ph))));
    }
    return out;
  }

  #encodeTensor(g: tf.Tensor2D, p: tf.Tensor2D): tf.Tensor2D {
    if (g.rank !== 2 || g.shape[1] !== 4 || p.rank !== 2 || p.shape[1] !== 4) {
      throw new Error(`BoxCoder.encode: tensors must be [N, 4], got [${g.shape}] and [${p.shape}]`);
    }
    if (g.shape[0] !== p.shape[0]) {
      throw new Error(`BoxCoder.encode: ${g.shape[0]} reference boxes but ${p.shape[0]} proposals`);
    }
    const [wx, wy, ww, wh] = this.weights;
    return tf.tidy(() => {
      const [px1, py1, px2, py2] = tf.split(p, 4, 1);
      const [gx1, gy1, gx2, gy2] = tf.split(g, 4, 1);
      const pw = tf.sub(px2, px1), ph = tf.sub(py2, py1);
      const pcx = tf.add(px1, tf.mul(pw, 0.5)), pcy = tf.add(py1, tf.mul(ph, 0.5));
      const gw = tf.sub(gx2, gx1), gh = tf.sub(gy2, gy1);
      const gcx = tf.add(gx1, tf.mul(gw, 0.5)), gcy = tf.add(gy1, tf.mul(gh, 0.5));
      const dx = tf.div(tf.mul(tf.sub(gcx, pcx), wx), pw);
      const dy = tf.div(tf.mul(tf.sub(gcy, pcy), wy), ph);
      const dw = tf.mul(tf.log(tf.div(gw, pw)), ww);
      const dh = tf.mul(tf.log(tf.div(gh, ph)), wh);
      return tf.concat([dx, dy, dw, dh], 1) as tf.Tensor2D;
    });
  }

  /**
   * Applies deltas to boxes like torchvision's `decode`: `relCodes [N, 4K]` (class k in columns
   * 4k..4k+3) against `boxes [N, 4]` gives `[N, K, 4]`. dw/dh are divided by the weights and
   * clamped from above at `bboxXformClip` (large negative values pass through).
   * @param relCodes deltas `[N*4K]` (or `tf.Tensor2D [N, 4K]`)
   * @param boxes reference boxes `[N*4]` (or `tf.Tensor2D [N, 4]`)
   * @returns decoded boxes `[N*K*4]` (or `tf.Tensor3D [N, K, 4]`)
   */
  decode(relCodes: BoxesLike, boxes: BoxesLike): Float32Array;
  /** Tensor overload: `[N, 4K]`, `[N, 4]` -> `[N, K, 4]`. */
  decode(relCodes: tf.Tensor2D, boxes: tf.Tensor2D): tf.Tensor3D;
  decode(
    relCodes: BoxesLike | tf.Tensor2D,
    boxes: BoxesLike | tf.Tensor2D,
  ): Float32Array | tf.Tensor3D {
    if (isTensor(relCodes) || isTensor(boxes)) {
      if (!isTensor(relCodes) || !isTensor(boxes)) {
        throw new Error("BoxCoder.decode: pass two tensors or two typed arrays, not a mix");
      }
      return this.#decodeTensor(relCodes, boxes);
    }
    const n = checkBoxes(boxes, "BoxCoder.decode (boxes)");
    checkBoxes(relCodes, "BoxCoder.decode (relCodes)");
    if (n === 0) {
      if (relCodes.length !== 0) throw new Error("BoxCoder.decode: relCodes given for 0 boxes");
      return new Float32Array(0);
    }
    if (relCodes.length % (n * 4) !== 0) {
      throw new Error(
        `BoxCoder.decode: relCodes length ${relCodes.length} is not N*4K for N=${n} boxes`,
      );
    }
    const k = relCodes.length / (n * 4);
    const [wx, wy, ww, wh] = this.weights.map(f32);
    const clip = f32(this.bboxXformClip);
    const out = new Float32Array(n * k * 4);
    for (let i = 0; i < n; i++) {
      const b = i * 4;
      const w = f32(boxes[b + 2] - boxes[b]), h = f32(boxes[b + 3] - boxes[b + 1]);
      const cx = f32(boxes[b] + f32(0.5 * w)), cy = f32(boxes[b + 1] + f32(0.5 * h));
      for (let c = 0; c < k; c++) {
        const r = (i * k + c) * 4;
        const dx = f32(relCodes[r] / wx), dy = f32(relCodes[r + 1] / wy);
        const dw = Math.min(f32(relCodes[r + 2] / ww), clip);
        const dh = Math.min(f32(relCodes[r + 3] / wh), clip);
        const pcx = f32(f32(dx * w) + cx), pcy = f32(f32(dy * h) + cy);
        const hw = f32(0.5 * f32(f32(Math.exp(dw)) * w));
        const hh = f32(0.5 * f32(f32(Math.exp(dh)) * h));
        out[r] = f32(pcx - hw);
        out[r + 1] = f32(pcy - hh);
        out[r + 2] = f32(pcx + hw);
        out[r + 3] = f32(pcy + hh);
      }
    }
    return out;
  }

  #decodeTensor(rel: tf.Tensor2D, boxes: tf.Tensor2D): tf.Tensor3D {
    if (boxes.rank !== 2 || boxes.shape[1] !== 4) {
      throw new Error(`BoxCoder.decode: boxes must be [N, 4], got [${boxes.shape}]`);
    }
    const n = boxes.shape[0];
    if (rel.rank !== 2 || rel.shape[0] !== n || rel.shape[1] % 4 !== 0) {
      throw new Error(`BoxCoder.decode: relCodes must be [${n}, 4K], got [${rel.shape}]`);
    }
    const k = rel.shape[1] / 4;
    const [wx, wy, ww, wh] = this.weights;
    const clip = f32(this.bboxXformClip);
    return tf.tidy(() => {
      const r = tf.reshape(rel, [n, k, 4]);
      const [rx, ry, rw, rh] = tf.split(r, 4, 2); // each [N, K, 1]
      const b = tf.reshape(boxes, [n, 1, 4]);
      const [x1, y1, x2, y2] = tf.split(b, 4, 2); // each [N, 1, 1]
      const w = tf.sub(x2, x1), h = tf.sub(y2, y1);
      const cx = tf.add(x1, tf.mul(w, 0.5)), cy = tf.add(y1, tf.mul(h, 0.5));
      const dx = tf.div(rx, wx), dy = tf.div(ry, wy);
      const dw = tf.minimum(tf.div(rw, ww), clip), dh = tf.minimum(tf.div(rh, wh), clip);
      const pcx = tf.add(tf.mul(dx, w), cx), pcy = tf.add(tf.mul(dy, h), cy);
      const hw = tf.mul(tf.mul(tf.exp(dw), w), 0.5), hh = tf.mul(tf.mul(tf.exp(dh), h), 0.5);
      return tf.concat(
        [tf.sub(pcx, hw), tf.sub(pcy, hh), tf.add(pcx, hw), tf.add(pcy, hh)],
        2,
      ) as tf.Tensor3D;
    });
  }
}

/**
 * torchvision's `Matcher`: assigns each prediction (anchor / proposal) the gt with the highest
 * quality (IoU), or {@link Matcher.BELOW_LOW_THRESHOLD} / {@link Matcher.BETWEEN_THRESHOLDS}.
 * Thresholds are compared in float32 (`float32(0.7) >= 0.7` holds, as in torch). With
 * `allowLowQualityMatches`, every prediction that attains some gt's best quality (ties
 * included) gets back its own best gt, as torchvision's `set_low_quality_matches_` does
 * (including the quirk that a gt overlapping nothing rescues every zero-quality prediction).
 */
export class Matcher {
  /** Code for a prediction whose best quality is below the low threshold. */
  static readonly BELOW_LOW_THRESHOLD: -1 = -1;
  /** Code for a prediction whose best quality is in `[low, high)`. */
  static readonly BETWEEN_THRESHOLDS: -2 = -2;
  /** Quality at or above which a prediction is matched. */
  readonly highThreshold: number;
  /** Quality below which a prediction is {@link Matcher.BELOW_LOW_THRESHOLD}. */
  readonly lowThreshold: number;
  /** Whether predictions that are some gt's best match are always matched. */
  readonly allowLowQualityMatches: boolean;

  /**
   * Creates a matcher with torchvision's thresholds semantics.
   * @param highThreshold e.g. 0.7 (RPN) or 0.5 (RoI heads)
   * @param lowThreshold e.g. 0.3 (RPN) or 0.5 (RoI heads); must be <= highThreshold
   * @param allowLowQualityMatches true for the RPN
   */
  constructor(highThreshold: number, lowThreshold: number, allowLowQualityMatches = false) {
    if (!(lowThreshold <= highThreshold)) {
      throw new Error(`Matcher: lowThreshold ${lowThreshold} > highThreshold ${highThreshold}`);
    }
    this.highThreshold = highThreshold;
    this.lowThreshold = lowThreshold;
    this.allowLowQualityMatches = allowLowQualityMatches;
  }

  /**
   * Matches every prediction (column) to a gt row, like torchvision's `Matcher.__call__`.
   * @param matchQualityMatrix row-major `[numGt, numPred]` (e.g. `boxIoU(gt, anchors)`)
   * @param numGt number of gt rows
   * @returns per prediction: gt index, -1 or -2: Int32Array [numPred]
   * @throws Error when there are no gt boxes or no predictions (as torchvision)
   */
  match(matchQualityMatrix: Float32Array | Float64Array, numGt: number): Int32Array {
    if (!Number.isInteger(numGt) || numGt < 0) throw new Error(`Matcher.match: bad numGt ${numGt}`);
    if (numGt === 0) {
      throw new Error("Matcher.match: no ground-truth boxes available for one of the images");
    }
    const q = matchQualityMatrix;
    if (q.length % numGt !== 0) {
      throw new Error(
        `Matcher.match: matrix length ${q.length} is not a multiple of numGt ${numGt}`,
      );
    }
    const numPred = q.length / numGt;
    if (numPred === 0) {
      throw new Error("Matcher.match: no proposal boxes available for one of the images");
    }
    const low = f32(this.lowThreshold), high = f32(this.highThreshold);
    const matches = new Int32Array(numPred);
    const allMatches = new Int32Array(numPred);
    for (let j = 0; j < numPred; j++) {
      let best = f32(q[j]), arg = 0;
      for (let i = 1; i < numGt; i++) {
        const v = f32(q[i * numPred + j]);
        // torch.max propagates NaN (and reports its index).
        if (!Number.isNaN(best) && (v > best || Number.isNaN(v))) {
          best = v;
          arg = i;
        }
      }
      allMatches[j] = arg;
      if (best < low) matches[j] = Matcher.BELOW_LOW_THRESHOLD;
      else if (best >= low && best < high) matches[j] = Matcher.BETWEEN_THRESHOLDS;
      else matches[j] = arg;
    }
    if (this.allowLowQualityMatches) {
      for (let i = 0; i < numGt; i++) {
        const row = i * numPred;
        let best = f32(q[row]);
        for (let j = 1; j < numPred; j++) {
          const v = f32(q[row + j]);
          if (!Number.isNaN(best) && (v > best || Number.isNaN(v))) best = v;
        }
        for (let j = 0; j < numPred; j++) if (f32(q[row + j]) === best) matches[j] = allMatches[j];
      }
    }
    return matches;
  }
}

/** Sampled indices of one image, both ascending. */
export interface SampledIndices {
  /** Indices of the sampled positives (label >= 1): Int32Array [P]. */
  positive: Int32Array;
  /** Indices of the sampled negatives (label == 0): Int32Array [Q]. */
  negative: Int32Array;
}

/**
 * torchvision's `BalancedPositiveNegativeSampler`: per image, draws up to
 * `floor(batchSizePerImage * positiveFraction)` positives (label >= 1) uniformly without
 * replacement and fills the rest of `batchSizePerImage` with negatives (label == 0); other labels
 * (-1, -2) are ignored. Draws come from the given {@link Rng}; torch's own random stream cannot
 * be reproduced, so only the counts and distribution match torchvision, not the indices.
 */
export class BalancedPositiveNegativeSampler {
  /** Samples per image (256 for the RPN, 512 for the RoI heads). */
  readonly batchSizePerImage: number;
  /** Target fraction of positives (0.5 for the RPN, 0.25 for the RoI heads). */
  readonly positiveFraction: number;

  /**
   * Creates a sampler drawing `batchSizePerImage` labels per image.
   * @param batchSizePerImage samples per image
   * @param positiveFraction target fraction of positives in [0, 1]
   */
  constructor(batchSizePerImage: number, positiveFraction: number) {
    if (!Number.isInteger(batchSizePerImage) || batchSizePerImage < 0) {
      throw new Error(
        `BalancedPositiveNegativeSampler: bad batchSizePerImage ${batchSizePerImage}`,
      );
    }
    if (!(positiveFraction >= 0 && positiveFraction <= 1)) {
      throw new Error(`BalancedPositiveNegativeSampler: bad positiveFraction ${positiveFraction}`);
    }
    this.batchSizePerImage = batchSizePerImage;
    this.positiveFraction = positiveFraction;
  }

  /**
   * Draws the balanced positive / negative subsets of each image.
   * @param labelsPerImage per image, one label per anchor/proposal: >= 1 positive, 0 negative,
   *   anything else ignored
   * @param rng random source
   * @returns per image, the sampled positive and negative indices (ascending)
   */
  sample(labelsPerImage: readonly ArrayLike<number>[], rng: Rng): SampledIndices[] {
    return labelsPerImage.map((labels) => {
      const pos: number[] = [], neg: number[] = [];
      for (let i = 0; i < labels.length; i++) {
        if (labels[i] >= 1) pos.push(i);
        else if (labels[i] === 0) neg.push(i);
      }
      const numPos = Math.min(
        pos.length,
        Math.trunc(this.batchSizePerImage * this.positiveFraction),
      );
      const numNeg = Math.min(neg.length, this.batchSizePerImage - numPos);
      const pick = (from: number[], k: number) => {
        const out = new Int32Array(k);
        const perm = rng.choice(from.length, k);
        for (let t = 0; t < k; t++) out[t] = from[perm[t]];
        return out.sort();
      };
      return { positive: pick(pos, numPos), negative: pick(neg, numNeg) };
    });
  }
}
