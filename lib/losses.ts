/**
 * Losses of the SSM (paper eq. 1-3), computed as torchvision computes them.
 *
 * - RPN: BCE-with-logits over the sampled anchors, smooth-L1 (β = 1/9, sum) over the sampled
 *   positives divided by the number of sampled anchors.
 * - Fast R-CNN: cross-entropy over the sampled RoIs, smooth-L1 (β = 1/9, sum) of the
 *   positives' class-specific deltas divided by the number of sampled RoIs.
 * - Mask: BCE-with-logits between the label channel's 28×28 logits and the RoIAligned gt mask
 *   ({@linkcode projectMasksOnBoxes}, soft targets), averaged over all pixels.
 * - Classification (module S): BCE-with-logits on the one-hot 3-class label, averaged.
 *
 * Rows that do not take part are selected out with 0/1 weights on finite values (targets of
 * unsampled rows are zeroed on the CPU first), so no gather gradient is needed on any backend.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { classificationLoss } from "@covid-ssm/ssm";
 * const loss = classificationLoss(tf.tensor2d([[2, -1, 0]]), 0); // scalar
 * ```
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";

/** torchvision's smooth-L1 β for the box losses. */
export const SMOOTH_L1_BETA: number = 1 / 9;

/** Elementwise smooth-L1 of `diff`: `0.5·d²/β` where `|d| < β`, else `|d| − 0.5β`. */
export function smoothL1(diff: tf.Tensor, beta: number = SMOOTH_L1_BETA): tf.Tensor {
  // 0.5·min(|d|, β)²/β + (|d| − min(|d|, β)): the same function, written without a select
  // (whose condition would need a gradient).
  return tf.tidy(() => {
    const a = tf.abs(diff);
    const m = tf.minimum(a, beta);
    return tf.add(tf.div(tf.mul(tf.square(m), 0.5), beta), tf.sub(a, m));
  });
}

/** Elementwise BCE-with-logits: `max(x, 0) − x·y + log(1 + exp(−|x|))`. */
export function bceWithLogits(logits: tf.Tensor, targets: tf.Tensor): tf.Tensor {
  return tf.tidy(() =>
    tf.add(
      tf.sub(tf.relu(logits), tf.mul(logits, targets)),
      tf.log1p(tf.exp(tf.neg(tf.abs(logits)))),
    )
  );
}

/** RPN losses. */
export interface RPNLosses {
  /** `loss_objectness`. */
  objectness: tf.Scalar;
  /** `loss_rpn_box_reg`. */
  rpnBoxReg: tf.Scalar;
}

/**
 * torchvision's `RegionProposalNetwork.compute_loss` for given sampled anchors.
 *
 * @param objectness `[A]` or `[A, 1]` logits of all anchors
 * @param predDeltas `[A, 4]` predicted deltas
 * @param labels `[A]` 1 foreground / 0 background / −1 ignored
 * @param regressionTargets `[A·4]` encoded gt boxes of each anchor (may hold inf/NaN for
 *   anchors that are not sampled positives)
 * @param sampledPos indices of the sampled positives
 * @param sampledNeg indices of the sampled negatives
 */
export function rpnLoss(
  objectness: tf.Tensor,
  predDeltas: tf.Tensor2D,
  labels: ArrayLike<number>,
  regressionTargets: ArrayLike<number>,
  sampledPos: ArrayLike<number>,
  sampledNeg: ArrayLike<number>,
  beta: number = SMOOTH_L1_BETA,
): RPNLosses {
  const a = predDeltas.shape[0];
  const numSampled = sampledPos.length + sampledNeg.length;
  const wObj = new Float32Array(a);
  const y = new Float32Array(a);
  const wBox = new Float32Array(a * 4);
  const tgt = new Float32Array(a * 4);
  for (let i = 0; i < sampledNeg.length; i++) wObj[sampledNeg[i]] = 1;
  for (let i = 0; i < sampledPos.length; i++) {
    const k = sampledPos[i];
    wObj[k] = 1;
    y[k] = labels[k];
    for (let c = 0; c < 4; c++) {
      wBox[k * 4 + c] = 1;
      tgt[k * 4 + c] = regressionTargets[k * 4 + c];
    }
  }
  return tf.tidy(() => {
    const logits = tf.reshape(objectness, [a]);
    const denom = Math.max(numSampled, 1);
    const obj = tf.div(
      tf.sum(tf.mul(bceWithLogits(logits, tf.tensor1d(y)), tf.tensor1d(wObj))),
      denom,
    );
    const diff = tf.sub(predDeltas, tf.tensor2d(tgt, [a, 4]));
    const box = tf.div(tf.sum(tf.mul(smoothL1(diff, beta), tf.tensor2d(wBox, [a, 4]))), denom);
    return { objectness: obj as tf.Scalar, rpnBoxReg: box as tf.Scalar };
  });
}

/** Fast R-CNN losses. */
export interface FastRCNNLosses {
  /** `loss_classifier`. */
  classifier: tf.Scalar;
  /** `loss_box_reg`. */
  boxReg: tf.Scalar;
}

/**
 * torchvision's `fastrcnn_loss` over the sampled RoIs of all images (concatenated).
 *
 * @param classLogits `[R, K]`
 * @param boxRegression `[R, 4K]`
 * @param labels `[R]` class of each sampled RoI (0 = background)
 * @param regressionTargets `[R·4]` encoded targets (used where the label is > 0)
 */
export function fastrcnnLoss(
  classLogits: tf.Tensor2D,
  boxRegression: tf.Tensor2D,
  labels: ArrayLike<number>,
  regressionTargets: ArrayLike<number>,
  beta: number = SMOOTH_L1_BETA,
): FastRCNNLosses {
  const [r, k] = classLogits.shape;
  const w = new Float32Array(r * 4 * k);
  const t = new Float32Array(r * 4 * k);
  for (let i = 0; i < r; i++) {
    const l = labels[i];
    if (l <= 0) continue;
    for (let c = 0; c < 4; c++) {
      w[i * 4 * k + 4 * l + c] = 1;
      t[i * 4 * k + 4 * l + c] = regressionTargets[i * 4 + c];
    }
  }
  return tf.tidy(() => {
    const onehot = tf.cast(tf.oneHot(tf.tensor1d(Int32Array.from(labels), "int32"), k), "float32");
    const logp = tf.logSoftmax(classLogits);
    const ce = tf.div(tf.neg(tf.sum(tf.mul(logp, onehot))), Math.max(r, 1));
    const diff = tf.sub(boxRegression, tf.tensor2d(t, [r, 4 * k]));
    const box = tf.div(
      tf.sum(tf.mul(smoothL1(diff, beta), tf.tensor2d(w, [r, 4 * k]))),
      Math.max(r, 1),
    );
    return { classifier: ce as tf.Scalar, boxReg: box as tf.Scalar };
  });
}

/**
 * torchvision's `maskrcnn_loss` given the label channel's logits and the targets.
 *
 * @param maskLogits `[R, M, M]` logits of each positive RoI's gt-label channel
 * @param maskTargets `[R·M·M]` soft targets from {@linkcode projectMasksOnBoxes}
 */
export function maskrcnnLoss(maskLogits: tf.Tensor3D, maskTargets: Float32Array): tf.Scalar {
  return tf.tidy(() => {
    if (maskLogits.shape[0] === 0) return tf.mul(tf.sum(maskLogits), 0) as tf.Scalar;
    const t = tf.tensor(maskTargets, maskLogits.shape);
    return tf.mean(bceWithLogits(maskLogits, t)) as tf.Scalar;
  });
}

/**
 * Classification loss of module S (paper eq. 2): BCE-with-logits between the logits and the
 * one-hot label, averaged over the classes (and batch).
 *
 * @param logits `[B, C]` image-class logits
 * @param label true class index (or one per row)
 */
export function classificationLoss(
  logits: tf.Tensor2D,
  label: number | ArrayLike<number>,
): tf.Scalar {
  return tf.tidy(() => {
    const [b, c] = logits.shape;
    const labels = typeof label === "number" ? new Array(b).fill(label) : Array.from(label);
    const y = tf.cast(tf.oneHot(tf.tensor1d(labels, "int32"), c), "float32");
    return tf.mean(bceWithLogits(logits, y)) as tf.Scalar;
  });
}

/**
 * torchvision's `project_masks_on_boxes` for one gt mask and box: RoIAlign (aligned=false,
 * spatial scale 1, adaptive sampling `ceil(roi/M)` per axis) of the binary mask onto an
 * `M×M` grid, giving soft targets in [0, 1]. Computed on the CPU in float64.
 *
 * @param mask `[H·W]` row-major binary mask (0/1)
 * @param height mask height
 * @param width mask width
 * @param box `[x1, y1, x2, y2]` proposal box
 * @param m output side (28)
 * @param out optional output buffer `[M·M]`
 */
export function projectMaskOnBox(
  mask: ArrayLike<number>,
  height: number,
  width: number,
  box: ArrayLike<number>,
  m = 28,
  out: Float32Array = new Float32Array(m * m),
): Float32Array {
  const x1 = box[0], y1 = box[1];
  const roiW = Math.max(box[2] - x1, 1), roiH = Math.max(box[3] - y1, 1);
  const binW = roiW / m, binH = roiH / m;
  const gridH = Math.ceil(roiH / m), gridW = Math.ceil(roiW / m);
  const count = gridH * gridW;
  // Separable bilinear weights: per output row/col, the (index, weight) pairs summed over samples.
  const axis = (start: number, bin: number, grid: number, size: number) => {
    const taps: { lo: number; hi: number; wl: number; wh: number }[][] = [];
    for (let p = 0; p < m; p++) {
      const list: { lo: number; hi: number; wl: number; wh: number }[] = [];
      for (let i = 0; i < grid; i++) {
        let v = start + p * bin + (i + 0.5) * bin / grid;
        if (v < -1 || v > size) {
          list.push({ lo: 0, hi: 0, wl: 0, wh: 0 });
          continue;
        }
        if (v <= 0) v = 0;
        let lo = Math.floor(v), hi: number;
        if (lo >= size - 1) {
          lo = hi = size - 1;
          v = lo;
        } else hi = lo + 1;
        const l = v - lo;
        list.push({ lo, hi, wl: 1 - l, wh: l });
      }
      taps.push(list);
    }
    return taps;
  };
  const ty = axis(y1, binH, gridH, height);
  const tx = axis(x1, binW, gridW, width);
  for (let py = 0; py < m; py++) {
    for (let px = 0; px < m; px++) {
      let s = 0;
      for (const a of ty[py]) {
        if (a.wl === 0 && a.wh === 0) continue;
        for (const b of tx[px]) {
          if (b.wl === 0 && b.wh === 0) continue;
          s += a.wl * (b.wl * mask[a.lo * width + b.lo] + b.wh * mask[a.lo * width + b.hi]) +
            a.wh * (b.wl * mask[a.hi * width + b.lo] + b.wh * mask[a.hi * width + b.hi]);
        }
      }
      out[py * m + px] = s / count;
    }
  }
  return out;
}
