/**
 * The paper's segmentation AP protocol (Ter-Sarkisov 2020, Table 2: "AP@0.5", "AP@0.75" and the
 * mean over IoU 0.50:0.05:0.95), as the authors' `compute_ap` and evaluation script compute it.
 * It is **not** COCO AP (see `coco.ts` for that).
 *
 * For each IoU threshold `t` (float32 `arange(0.5, 1, 0.05)`) and each image:
 * - no gt and no detections: AP 1; exactly one of the two empty: AP 0;
 * - otherwise detections are ranked by score (descending), and each gt **in order** takes, among
 *   the detections of its class whose mask IoU with it is **strictly greater** than `t`, the one
 *   with the highest IoU. **Quirk kept on purpose:** the authors' code does not check whether that
 *   detection was already taken by an earlier gt, so one detection can absorb several gts (e.g. a
 *   detection covering two touching lesions can be the match of both). A detection is a true
 *   positive if any gt took it;
 * - `precision_k = TP_k / k`, `recall_k = TP_k / #gt`, padded with (recall 0, precision 0) in front
 *   and (recall 1, precision 0) behind; precision is made non-increasing from the right and the AP
 *   is `sum (r_i - r_{i-1}) * p_i` over the points where recall changes.
 *
 * The per-image AP is averaged over all images (empty ones included), then over the thresholds.
 * Arithmetic follows the authors' float32 tensors: mask IoU is
 * `intersection / (area1 + area2 - intersection)` rounded to float32 (0/0 = NaN never matches),
 * precision/recall/AP are float32. Score ties rank the later detection first and IoU ties prefer
 * the later detection (what `argsort().flip()` gives with a stable sort).
 *
 * @example
 * ```ts
 * import { paperAp } from "./paper_ap.ts";
 * const a = new Uint8Array([1, 1, 0, 0]), b = new Uint8Array([0, 0, 1, 1]);
 * const res = paperAp([
 *   { gtMasks: [a], detMasks: [a], detScores: [0.9] }, // perfect: AP 1
 *   { gtMasks: [b], detMasks: [], detScores: [] }, // missed: AP 0
 * ]);
 * res.ap50; // 0.5
 * ```
 *
 * @module
 */

/** One test image for the paper's protocol. */
export interface PaperApImage {
  /** Ground-truth binary masks (row-major, all the same size; non-zero = foreground). */
  gtMasks: readonly ArrayLike<number>[];
  /** Predicted binary masks (already thresholded), same size as the gt masks. */
  detMasks: readonly ArrayLike<number>[];
  /** Detection scores, one per predicted mask. */
  detScores: ArrayLike<number>;
  /** Gt class labels (default: all 1). */
  gtLabels?: ArrayLike<number>;
  /** Detection class labels (default: all 1). */
  detLabels?: ArrayLike<number>;
}

/** AP of one IoU threshold. */
export interface PaperApThreshold {
  /** The float32 IoU threshold. */
  threshold: number;
  /** Per-image AP (float32 values), in input order. */
  perImageAp: number[];
  /** Mean of `perImageAp` over all images. */
  meanAp: number;
}

/** Result of {@link paperAp}. */
export interface PaperApResult {
  /** One entry per threshold. */
  perThreshold: PaperApThreshold[];
  /** Mean AP at the threshold 0.5 (the paper's "AP@0.5"); NaN when 0.5 is not evaluated. */
  ap50: number;
  /** Mean AP at the float32 threshold 0.75 ("AP@0.75"); NaN when not evaluated. */
  ap75: number;
  /** Mean over the thresholds (the paper's "mAP"/"AP@[0.5:0.95]"). */
  mAP: number;
}

/** float32 `arange(0.5, 1, 0.05)`: 0.5, 0.550000011920929, ..., 0.949999988079071. */
export const PAPER_IOU_THRESHOLDS: readonly number[] = Array.from(
  { length: 10 },
  (_, i) => Math.fround(0.5 + 0.05 * i),
);

const f32 = Math.fround;

function foreground(mask: ArrayLike<number>): number[] {
  const idx: number[] = [];
  for (let i = 0; i < mask.length; i++) if (mask[i]) idx.push(i);
  return idx;
}

/**
 * Mask IoU matrix `[det][gt]` as the authors compute it (float32
 * `intersection / (area1 + area2 - intersection)`; NaN for two empty masks).
 */
export function paperMaskIou(
  detMasks: readonly ArrayLike<number>[],
  gtMasks: readonly ArrayLike<number>[],
): Float32Array[] {
  const n = gtMasks.length ? gtMasks[0].length : detMasks.length ? detMasks[0].length : 0;
  for (const [name, list] of [["detMasks", detMasks], ["gtMasks", gtMasks]] as const) {
    list.forEach((m, i) => {
      if (m.length !== n) {
        throw new Error(`paperMaskIou: ${name}[${i}] has ${m.length} pixels, expected ${n}`);
      }
    });
  }
  const detFg = detMasks.map(foreground);
  const out = detMasks.map(() => new Float32Array(gtMasks.length));
  gtMasks.forEach((g, j) => {
    let ga = 0;
    for (let i = 0; i < n; i++) if (g[i]) ga++;
    detFg.forEach((fg, d) => {
      let inter = 0;
      for (const i of fg) if (g[i]) inter++;
      out[d][j] = f32(inter / (fg.length + ga - inter));
    });
  });
  return out;
}

/** Indices sorted by `key` descending; ties put the later index first. */
function descendingLaterFirst(keys: ArrayLike<number>, idx: number[]): number[] {
  return idx.slice().sort((a, b) => keys[b] - keys[a] || b - a);
}

/**
 * The authors' `compute_ap` for one image with at least one gt and one detection, at one IoU
 * threshold (see the module docs, including the quirk that a detection can absorb several gts).
 */
export function paperImageAp(image: PaperApImage, iouThreshold: number): number {
  const G = image.gtMasks.length, D = image.detMasks.length;
  if (image.detScores.length !== D) {
    throw new Error(`paperImageAp: ${D} detMasks but ${image.detScores.length} detScores`);
  }
  if (G === 0 || D === 0) throw new Error("paperImageAp: needs at least one gt and one detection");
  const gtLabels = image.gtLabels ?? new Array<number>(G).fill(1);
  const detLabels = image.detLabels ?? new Array<number>(D).fill(1);
  if (gtLabels.length !== G || detLabels.length !== D) {
    throw new Error("paperImageAp: gtLabels/detLabels must have one label per mask");
  }
  const order = descendingLaterFirst(image.detScores, [...Array(D).keys()]);
  const ious = paperMaskIou(order.map((d) => image.detMasks[d]), image.gtMasks);
  const thr = f32(iouThreshold);
  const predMatched = new Array<boolean>(D).fill(false);
  for (let g = 0; g < G; g++) {
    const col = ious.map((row) => row[g]);
    const cands = [...Array(D).keys()].filter((d) => col[d] > thr);
    for (const d of descendingLaterFirst(col, cands)) {
      if (detLabels[order[d]] === gtLabels[g]) {
        predMatched[d] = true; // not checked against earlier gts: the authors' behaviour
        break;
      }
    }
  }
  const precisions = [0];
  const recalls = [0];
  let tp = 0;
  for (let k = 0; k < D; k++) {
    if (predMatched[k]) tp++;
    precisions.push(f32(tp / (k + 1)));
    recalls.push(f32(tp / G));
  }
  precisions.push(0);
  recalls.push(1);
  for (let i = precisions.length - 2; i >= 0; i--) {
    precisions[i] = Math.max(precisions[i], precisions[i + 1]);
  }
  let ap = 0;
  for (let i = 1; i < recalls.length; i++) {
    if (recalls[i - 1] !== recalls[i]) {
      ap = f32(ap + f32(f32(recalls[i] - recalls[i - 1]) * precisions[i]));
    }
  }
  return ap;
}

/**
 * The paper's AP over a test set: per-image AP for each threshold (1 for an image with neither
 * gt nor detections, 0 when exactly one side is empty), averaged over all images, then over the
 * thresholds (default {@link PAPER_IOU_THRESHOLDS}).
 */
export function paperAp(
  images: readonly PaperApImage[],
  thresholds: readonly number[] = PAPER_IOU_THRESHOLDS,
): PaperApResult {
  const perThreshold = thresholds.map((t): PaperApThreshold => {
    const perImageAp = images.map((im) => {
      const G = im.gtMasks.length, D = im.detMasks.length;
      if (G === 0 && D === 0) return 1;
      if (G === 0 || D === 0) return 0;
      return paperImageAp(im, t);
    });
    const meanAp = perImageAp.length
      ? perImageAp.reduce((a, b) => a + b, 0) / perImageAp.length
      : NaN;
    return { threshold: f32(t), perImageAp, meanAp };
  });
  const at = (t: number) => perThreshold.find((p) => p.threshold === f32(t))?.meanAp ?? NaN;
  const mAP = perThreshold.length
    ? perThreshold.reduce((a, p) => a + p.meanAp, 0) / perThreshold.length
    : NaN;
  return { perThreshold, ap50: at(0.5), ap75: at(0.75), mAP };
}
