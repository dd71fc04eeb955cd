/**
 * The segmentation step's forward pass (paper eq. 1): Mask R-CNN in training mode on one image
 * with its lesion instances, returning the five torchvision losses. Proposals are computed
 * from the current RPN outputs without gradient, as in torchvision; gt boxes are appended to
 * them before sampling. Targets are built on the CPU, losses on tensors, so
 * `tf.variableGrads(() => segmentationLosses(...).total)` trains the model.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { buildSSM, initBackend, Rng, segmentationLosses } from "@covid-ssm/ssm";
 * await initBackend("wasm");
 * const model = buildSSM({ transform: { minSize: 64, maxSize: 128 } });
 * const image = { width: 64, height: 64, data: new Float32Array(64 * 64).fill(0.5) };
 * const mask = new Uint8Array(64 * 64);
 * for (let y = 20; y < 40; y++) for (let x = 10; x < 30; x++) mask[y * 64 + x] = 1;
 * const target = { boxes: new Float32Array([10, 20, 30, 40]), labels: new Int32Array([1]), masks: [mask] };
 * const loss = tf.tidy(() => segmentationLosses(model, image, target, new Rng(0)).total.dataSync()[0]);
 * ```
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { SSM } from "../ssm.ts";
import type { GreyImage } from "../transform.ts";
import { resizeBoxes } from "../transform.ts";
import { assignRpnTargets } from "../rpn.ts";
import { selectTrainingSamples } from "../roi_heads.ts";
import { fastrcnnLoss, maskrcnnLoss, projectMaskOnBox, rpnLoss } from "../losses.ts";
import type { Rng } from "../rng.ts";
import { profiler } from "../bench/profiler.ts";

/** Lesion instances of one image, in the image's own pixel frame. */
export interface SegmentationTarget {
  /** `[G·4]` boxes (x1, y1, x2, y2). */
  boxes: Float32Array;
  /** `[G]` labels (1 = lesion). */
  labels: Int32Array;
  /** `G` binary masks, each `height·width` row-major. */
  masks: Uint8Array[];
}

/** The segmentation losses (scalars; the caller disposes, or runs inside a tidy). */
export interface SegmentationLosses {
  /** RPN objectness BCE. */
  lossObjectness: tf.Scalar;
  /** RPN smooth-L1. */
  lossRpnBoxReg: tf.Scalar;
  /** RoI cross-entropy. */
  lossClassifier: tf.Scalar;
  /** RoI smooth-L1. */
  lossBoxReg: tf.Scalar;
  /** Mask BCE. */
  lossMask: tf.Scalar;
  /** Their unweighted sum. */
  total: tf.Scalar;
}

/**
 * Runs the segmentation step's forward pass on one image and returns the losses. The model
 * should be in training mode (batch norm on batch statistics), as the trainer sets it.
 *
 * @param model the SSM
 * @param image the slice (grey, [0, 1])
 * @param target its lesion instances (at least one)
 * @param rng random source of the anchor and RoI samplers
 */
export function segmentationLosses(
  model: SSM,
  image: GreyImage,
  target: SegmentationTarget,
  rng: Rng,
): SegmentationLosses {
  const cfg = model.config;
  return tf.tidy(() => {
    const t = profiler.stage("transform", () => model.transform.forward(image));
    const features = model.backboneForward(t.images);
    const [, ph, pw] = t.images.shape;
    const anchors = model.anchorsFor([ph, pw], [features.shape[1], features.shape[2]]);
    const gtBoxes = resizeBoxes(target.boxes, t.originalSize, t.imageSize);

    // RPN: head outputs (with gradient), proposals (without), targets and losses.
    const { proposals, rpnL } = profiler.stage("rpn", () => {
      const { objectness, deltas } = model.rpn.head.apply(features);
      const numAnchors = anchors.length / 4;
      const obj = tf.reshape(objectness, [numAnchors]);
      const del = tf.reshape(deltas, [numAnchors, 4]) as tf.Tensor2D;
      const proposals = filterFromTensors(model, anchors, obj, del, t.imageSize);
      const rpnT = assignRpnTargets(anchors, gtBoxes, cfg.rpn, rng);
      const rpnL = rpnLoss(
        obj,
        del,
        rpnT.labels,
        rpnT.regressionTargets,
        rpnT.sampledPos,
        rpnT.sampledNeg,
      );
      rpnL.objectness = profiler.mark("rpn", rpnL.objectness);
      return { proposals, rpnL };
    });

    // Box branch on the sampled RoIs.
    const samples = selectTrainingSamples(proposals, gtBoxes, target.labels, cfg.roiHeads, rng);
    profiler.note("rois", samples.labels.length);
    profiler.note("positives", samples.positiveRows.length);
    const pooled = profiler.mark(
      "roiAlign",
      profiler.stage("roiAlign", () =>
        model.roiHeads.pool(
          features,
          samples.proposals,
          t.imageSize,
          cfg.roiHeads.boxPoolSize,
        )),
    );
    const { seg, boxL } = profiler.stage("box heads", () => {
      const seg = model.roiHeads.segmentationBranch(pooled);
      const boxL = fastrcnnLoss(
        seg.classLogits,
        seg.boxRegression,
        samples.labels,
        samples.regressionTargets,
      );
      boxL.classifier = profiler.mark("box heads", boxL.classifier);
      return { seg, boxL };
    });

    // Mask branch on the positives: targets are the gt masks RoIAligned onto each proposal
    // (proposals mapped back to the mask's own frame).
    const pos = samples.positiveRows;
    const m = 2 * cfg.roiHeads.maskPoolSize;
    const posBoxes = new Float32Array(pos.length * 4);
    const posLabels = new Int32Array(pos.length);
    pos.forEach((r, i) => {
      posBoxes.set(samples.proposals.subarray(r * 4, r * 4 + 4), i * 4);
      posLabels[i] = samples.labels[r];
    });
    const boxesInMaskFrame = resizeBoxes(posBoxes, t.imageSize, t.originalSize);
    const maskTargets = new Float32Array(pos.length * m * m);
    pos.forEach((r, i) => {
      projectMaskOnBox(
        target.masks[samples.matchedGt[r]],
        image.height,
        image.width,
        boxesInMaskFrame.subarray(i * 4, i * 4 + 4),
        m,
        maskTargets.subarray(i * m * m, (i + 1) * m * m),
      );
    });
    const maskL = pos.length > 0
      ? profiler.mark(
        "mask head",
        maskrcnnLoss(
          model.roiHeads.maskLogits(features, posBoxes, posLabels, t.imageSize),
          maskTargets,
        ),
      )
      : tf.mul(tf.sum(seg.classLogits), 0) as tf.Scalar;

    const total = tf.addN([
      rpnL.objectness,
      rpnL.rpnBoxReg,
      boxL.classifier,
      boxL.boxReg,
      maskL,
    ]) as tf.Scalar;
    return {
      lossObjectness: rpnL.objectness,
      lossRpnBoxReg: rpnL.rpnBoxReg,
      lossClassifier: boxL.classifier,
      lossBoxReg: boxL.boxReg,
      lossMask: maskL,
      total,
    };
  });
}

/** Proposals from the RPN's current outputs (no gradient), as the inference path filters them. */
function filterFromTensors(
  model: SSM,
  anchors: Float32Array,
  objectness: tf.Tensor,
  deltas: tf.Tensor,
  imageSize: [number, number],
): Float32Array {
  return model.rpn.filter(
    anchors,
    objectness.dataSync() as Float32Array,
    deltas.dataSync() as Float32Array,
    imageSize,
    model.config.proposalFilter,
  ).boxes;
}
