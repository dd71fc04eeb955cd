/**
 * RoI heads of the SSM: the segmentation box branch, the optional classification box branch
 * (`box_head_s2` / `box_predictor_s2`), the mask branch, and detection post-processing.
 *
 * One RoIAlign pass over the proposals feeds both box branches. Post-processing follows
 * torchvision's `postprocess_detections` (softmax, decode with BoxCoder(10,10,5,5), clip, drop
 * background, `score > 0.75`, batched NMS 0.5, top 128); the `torchvision` proposal filter also
 * removes boxes smaller than 1e-2 before NMS, the authors' code (`reference`) does not.
 *
 * @example
 * ```ts
 * import { boxBranch, maskBranch, RoIHeads, ssmConfig } from "@covid-ssm/ssm";
 * const cfg = ssmConfig().roiHeads;
 * const heads = new RoIHeads(cfg, {
 *   boxBranch: boxBranch(256, cfg),
 *   maskBranch: maskBranch(256, cfg),
 *   classificationBranch: boxBranch(256, cfg),
 * });
 * console.log(heads.numParameters());
 * ```
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { Module } from "./nn/module.ts";
import type { FastRCNNPredictor, MaskHead, MaskRCNNPredictor, TwoMLPHead } from "./heads.ts";
import {
  BalancedPositiveNegativeSampler,
  batchedNms,
  BoxCoder,
  boxIoU,
  clipBoxesToImage,
  Matcher,
  removeSmallBoxes,
} from "./boxes.ts";
import type { Rng } from "./rng.ts";
import { inferScale, roiAlign } from "./roi_align.ts";
import type { ProposalFilter, RoIHeadsConfig } from "./config.ts";
import { profiler } from "./bench/profiler.ts";

/**
 * Detections of one image; all arrays have one entry (or 4 for boxes) per detection, in
 * decreasing score order.
 */
export interface Detections {
  /** `[N·4]` boxes (x1, y1, x2, y2). */
  boxes: Float32Array;
  /** `[N]` class probabilities. */
  scores: Float32Array;
  /** `[N]` class labels (1 = lesion). */
  labels: Int32Array;
  /** `[N]` index of the proposal each detection came from. */
  proposalIndex: Int32Array;
}

/** An empty {@linkcode Detections}. */
export function emptyDetections(): Detections {
  return {
    boxes: new Float32Array(0),
    scores: new Float32Array(0),
    labels: new Int32Array(0),
    proposalIndex: new Int32Array(0),
  };
}

/** Takes rows `keep` of every field of a {@linkcode Detections}. */
export function selectDetections(d: Detections, keep: ArrayLike<number>): Detections {
  const n = keep.length;
  const out: Detections = {
    boxes: new Float32Array(n * 4),
    scores: new Float32Array(n),
    labels: new Int32Array(n),
    proposalIndex: new Int32Array(n),
  };
  for (let i = 0; i < n; i++) {
    const k = keep[i];
    out.boxes.set(d.boxes.subarray(k * 4, k * 4 + 4), i * 4);
    out.scores[i] = d.scores[k];
    out.labels[i] = d.labels[k];
    out.proposalIndex[i] = d.proposalIndex[k];
  }
  return out;
}

/** Row-wise softmax of `[R·K]` logits in float64, returned as float32. */
export function softmaxRows(logits: Float32Array, k: number): Float32Array {
  const out = new Float32Array(logits.length);
  for (let r = 0; r < logits.length / k; r++) {
    let m = -Infinity;
    for (let j = 0; j < k; j++) m = Math.max(m, logits[r * k + j]);
    let s = 0;
    for (let j = 0; j < k; j++) s += Math.exp(logits[r * k + j] - m);
    for (let j = 0; j < k; j++) out[r * k + j] = Math.exp(logits[r * k + j] - m) / s;
  }
  return out;
}

/** Options of {@linkcode postprocessDetections}. */
export type PostprocessOptions =
  & Pick<RoIHeadsConfig, "boxCoderWeights" | "scoreThresh" | "nmsThresh" | "detectionsPerImage">
  & { proposalFilter: ProposalFilter };

/**
 * torchvision's `RoIHeads.postprocess_detections` for one image.
 *
 * @param classLogits `[P·K]` box-branch logits
 * @param boxRegression `[P·K·4]` box-branch deltas (class-major)
 * @param proposals `[P·4]` proposals
 * @param imageSize `[height, width]` of the resized image
 * @param opts thresholds
 */
export function postprocessDetections(
  classLogits: Float32Array,
  boxRegression: Float32Array,
  proposals: Float32Array,
  imageSize: [number, number],
  opts: PostprocessOptions,
): Detections {
  const p = proposals.length / 4;
  if (p === 0) return emptyDetections();
  const k = classLogits.length / p;
  const probs = softmaxRows(classLogits, k);
  const coder = new BoxCoder(opts.boxCoderWeights);
  const perClass: Float32Array[] = [];
  for (let c = 1; c < k; c++) {
    const d = new Float32Array(p * 4);
    for (let i = 0; i < p; i++) {
      for (let j = 0; j < 4; j++) d[i * 4 + j] = boxRegression[(i * k + c) * 4 + j];
    }
    perClass.push(clipBoxesToImage(coder.decode(d, proposals), imageSize));
  }
  // Candidates flattened proposal-major, as torchvision's reshape(-1) of [P, K-1].
  const cand: Detections = {
    boxes: new Float32Array(p * (k - 1) * 4),
    scores: new Float32Array(p * (k - 1)),
    labels: new Int32Array(p * (k - 1)),
    proposalIndex: new Int32Array(p * (k - 1)),
  };
  const keep: number[] = [];
  for (let i = 0; i < p; i++) {
    for (let c = 1; c < k; c++) {
      const f = i * (k - 1) + (c - 1);
      cand.boxes.set(perClass[c - 1].subarray(i * 4, i * 4 + 4), f * 4);
      cand.scores[f] = probs[i * k + c];
      cand.labels[f] = c;
      cand.proposalIndex[f] = i;
      if (cand.scores[f] > opts.scoreThresh) keep.push(f);
    }
  }
  let d = selectDetections(cand, keep);
  if (opts.proposalFilter === "torchvision") {
    d = selectDetections(d, removeSmallBoxes(d.boxes, 1e-2));
  }
  const nmsKeep = batchedNms(d.boxes, d.scores, d.labels, opts.nmsThresh);
  return selectDetections(d, nmsKeep.slice(0, opts.detectionsPerImage));
}

/** A box branch: TwoMLPHead + FastRCNNPredictor. */
export interface BoxBranch {
  /** `box_head` (or `box_head_s2`). */
  head: TwoMLPHead;
  /** `box_predictor` (or `box_predictor_s2`). */
  predictor: FastRCNNPredictor;
}

/** The mask branch: the one-conv head + MaskRCNNPredictor. */
export interface MaskBranch {
  /** `mask_head`. */
  head: MaskHead;
  /** `mask_predictor`. */
  predictor: MaskRCNNPredictor;
}

/** The RoI heads module: box branch(es) and mask branch, with torchvision's names. */
export class RoIHeads extends Module {
  /** Segmentation box head. */
  readonly boxHead: TwoMLPHead;
  /** Segmentation box predictor. */
  readonly boxPredictor: FastRCNNPredictor;
  /** Classification box head (two-branch variants), or null. */
  readonly boxHeadS2: TwoMLPHead | null;
  /** Classification box predictor (two-branch variants), or null. */
  readonly boxPredictorS2: FastRCNNPredictor | null;
  /** Mask head. */
  readonly maskHead: MaskHead;
  /** Mask predictor. */
  readonly maskPredictor: MaskRCNNPredictor;

  /**
   * @param config RoI head settings
   * @param parts the segmentation box branch, the mask branch and, for the two-branch variants,
   *   the classification box branch (null: the segmentation branch plays both roles)
   */
  constructor(
    readonly config: RoIHeadsConfig,
    parts: { boxBranch: BoxBranch; maskBranch: MaskBranch; classificationBranch: BoxBranch | null },
  ) {
    super();
    this.boxHead = this.addModule("box_head", parts.boxBranch.head);
    this.boxPredictor = this.addModule("box_predictor", parts.boxBranch.predictor);
    const c = parts.classificationBranch;
    this.boxHeadS2 = c ? this.addModule("box_head_s2", c.head) : null;
    this.boxPredictorS2 = c ? this.addModule("box_predictor_s2", c.predictor) : null;
    this.maskHead = this.addModule("mask_head", parts.maskBranch.head);
    this.maskPredictor = this.addModule("mask_predictor", parts.maskBranch.predictor);
  }

  /** RoIAlign of `boxes` (`[R·4]`, image frame) on the features at `outputSize`. */
  pool(
    features: tf.Tensor4D,
    boxes: Float32Array,
    imageSize: [number, number],
    outputSize: number,
  ): tf.Tensor4D {
    return tf.tidy(() => {
      const scale = inferScale(features.shape[1], imageSize[0]);
      const b = tf.tensor2d(boxes, [boxes.length / 4, 4]);
      return roiAlign(features, b, {
        outputSize: [outputSize, outputSize],
        spatialScale: scale,
        samplingRatio: this.config.samplingRatio,
        aligned: false,
      });
    });
  }

  /** Segmentation branch on pooled box features: logits `[R, K]`, deltas `[R, 4K]`. */
  segmentationBranch(
    pooled: tf.Tensor4D,
  ): { classLogits: tf.Tensor2D; boxRegression: tf.Tensor2D } {
    const h = this.boxHead.apply(pooled);
    const out = this.boxPredictor.apply(h);
    h.dispose();
    return out;
  }

  /** Classification branch (the `_s2` heads, or the segmentation heads in `single`). */
  classificationBranch(
    pooled: tf.Tensor4D,
  ): { classLogits: tf.Tensor2D; boxRegression: tf.Tensor2D } {
    if (!this.boxHeadS2 || !this.boxPredictorS2) return this.segmentationBranch(pooled);
    const h = this.boxHeadS2.apply(pooled);
    const out = this.boxPredictorS2.apply(h);
    h.dispose();
    return out;
  }

  /**
   * Mask logits of each RoI for its label: `[R, 28, 28]`.
   *
   * @param features `[1, H, W, C]`
   * @param boxes `[R·4]` boxes in the resized image frame
   * @param labels `[R]` class of each box
   * @param imageSize `[height, width]` of the resized image
   */
  maskLogits(
    features: tf.Tensor4D,
    boxes: Float32Array,
    labels: Int32Array,
    imageSize: [number, number],
  ): tf.Tensor3D {
    return tf.tidy(() => {
      const r = labels.length;
      const pooled = profiler.mark(
        "mask roiAlign",
        profiler.stage(
          "roiAlign",
          () => this.pool(features, boxes, imageSize, this.config.maskPoolSize),
        ),
      );
      return profiler.stage("mask head", () => {
        const logits = this.maskPredictor.apply(this.maskHead.apply(pooled)); // [R, 28, 28, K]
        const k = logits.shape[3];
        const oneHot = tf.reshape(
          tf.cast(tf.oneHot(tf.tensor1d(labels, "int32"), k), "float32"),
          [r, 1, 1, k],
        );
        return tf.sum(tf.mul(logits, oneHot), 3) as tf.Tensor3D;
      });
    });
  }
}

/** Sampled RoIs of one image for the box and mask losses. */
export interface RoITrainingSamples {
  /** `[S·4]` sampled proposals (gt boxes appended to the proposals first, as torchvision). */
  proposals: Float32Array;
  /** `[S]` class label of each (0 = background). */
  labels: Int32Array;
  /** `[S·4]` encoded targets (BoxCoder(10,10,5,5)) of each sampled RoI's matched gt. */
  regressionTargets: Float32Array;
  /** `[S]` matched gt index of each (valid where the label is > 0). */
  matchedGt: Int32Array;
  /** Rows of the positives within the sample. */
  positiveRows: Int32Array;
}

/**
 * torchvision's `select_training_samples` for one image: append the gt boxes to the proposals,
 * match with Matcher(0.5, 0.5), sample 512 RoIs with 25% positives, encode the regression
 * targets.
 *
 * @param proposals `[P·4]` proposals
 * @param gtBoxes `[G·4]` gt boxes
 * @param gtLabels `[G]` gt class labels (≥ 1)
 * @param config thresholds, sampler settings, box coder weights
 * @param rng random source of the sampler
 */
export function selectTrainingSamples(
  proposals: Float32Array,
  gtBoxes: Float32Array,
  gtLabels: Int32Array,
  config: Pick<
    RoIHeadsConfig,
    "fgIouThresh" | "bgIouThresh" | "batchSizePerImage" | "positiveFraction" | "boxCoderWeights"
  >,
  rng: Rng,
): RoITrainingSamples {
  const g = gtBoxes.length / 4;
  const all = new Float32Array(proposals.length + gtBoxes.length);
  all.set(proposals);
  all.set(gtBoxes, proposals.length);
  const n = all.length / 4;
  const labels = new Int32Array(n);
  const matchedIdx = new Int32Array(n);
  if (g > 0) {
    const matches = new Matcher(config.fgIouThresh, config.bgIouThresh, false).match(
      boxIoU(gtBoxes, all),
      g,
    );
    for (let i = 0; i < n; i++) {
      const m = matches[i];
      matchedIdx[i] = Math.max(m, 0);
      labels[i] = m >= 0 ? gtLabels[m] : m === Matcher.BETWEEN_THRESHOLDS ? -1 : 0;
    }
  }
  const sampler = new BalancedPositiveNegativeSampler(
    config.batchSizePerImage,
    config.positiveFraction,
  );
  const [s] = sampler.sample([labels], rng);
  // torchvision keeps the sampled indices in ascending order (torch.where of pos | neg).
  const rows = Int32Array.from([...s.positive, ...s.negative]).sort();
  const k = rows.length;
  const out: RoITrainingSamples = {
    proposals: new Float32Array(k * 4),
    labels: new Int32Array(k),
    regressionTargets: new Float32Array(k * 4),
    matchedGt: new Int32Array(k),
    positiveRows: new Int32Array(0),
  };
  const matchedBoxes = new Float32Array(k * 4);
  const pos: number[] = [];
  rows.forEach((r, i) => {
    out.proposals.set(all.subarray(r * 4, r * 4 + 4), i * 4);
    out.labels[i] = Math.max(labels[r], 0);
    out.matchedGt[i] = matchedIdx[r];
    if (g > 0) matchedBoxes.set(gtBoxes.subarray(matchedIdx[r] * 4, matchedIdx[r] * 4 + 4), i * 4);
    if (labels[r] > 0) pos.push(i);
  });
  if (g > 0) {
    out.regressionTargets.set(
      new BoxCoder(config.boxCoderWeights).encode(matchedBoxes, out.proposals),
    );
  }
  out.positiveRows = Int32Array.from(pos);
  return out;
}
