/**
 * The single-shot model: builders that assemble backbone, RPN, RoI heads and module S for the
 * three variants, and the model's forward modes.
 *
 * - {@linkcode SSM.predict}: the single shot — one backbone pass gives lesion detections with
 *   masks (original-image coordinates) and the image-class logits.
 * - {@linkcode SSM.classify}: differentiable class logits (the classification training step).
 * - {@linkcode SSM.stages}: the raw stage outputs (features, proposals, the RoI batch) for
 *   notebooks and tests.
 *
 * @example
 * ```ts
 * import { buildSSM, initBackend } from "@covid-ssm/ssm";
 * await initBackend("wasm");
 * const model = buildSSM({ backbone: { depth: 18, stages: 3 }, variant: "parallel" });
 * const image = { width: 64, height: 64, data: new Float32Array(64 * 64) };
 * const out = model.predict(image);
 * console.log(out.classProbs, out.detections.scores.length);
 * ```
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { Module } from "./nn/module.ts";
import { SeedSequence } from "./nn/init.ts";
import {
  BasicBlock,
  Bottleneck,
  type ResNetBody,
  ResnetFpnBackbone,
  resnetFpnBackbone,
} from "./backbone.ts";
import { convBatchNormEval, maxPool2d } from "./nn/layers.ts";
import { profiler } from "./bench/profiler.ts";
import type { AnchorGenerator } from "./anchors.ts";
import {
  anchorGenerator,
  boxBranch,
  classificationBranch,
  maskBranch,
  rpn,
  sModule,
} from "./builders.ts";
import type { Proposals, RegionProposalNetwork } from "./rpn.ts";
import { type Detections, postprocessDetections, RoIHeads, softmaxRows } from "./roi_heads.ts";
import {
  gatherRoIBatch,
  type RoIBatchSelection,
  selectRoIBatch,
  type SModule,
} from "./s_module.ts";
import { GeneralizedRCNNTransform, postprocessBoxes, type TransformInput } from "./transform.ts";
import { type PastedMask, pasteMask } from "./paste_masks.ts";
import { hasSecondBranch, type SSMConfig, ssmConfig, type SSMConfigInput } from "./config.ts";
import { Rng } from "./rng.ts";

/** The backbone interface the SSM needs: NHWC image batch → one NHWC feature map. */
export interface FeatureExtractor extends Module {
  /** Feature channels. */
  readonly outChannels: number;
  /** `[1, H, W, 3]` normalised images → `[1, H/s, W/s, C]`. */
  forward(images: tf.Tensor4D): tf.Tensor4D;
}

/** Parts an {@linkcode SSM} is assembled from (see the builders in `builders.ts`). */
export interface SSMParts {
  /** Backbone + FPN (`backbone.*`). */
  backbone: FeatureExtractor;
  /** Region proposal network (`rpn.*`). */
  rpn: RegionProposalNetwork;
  /** RoI heads (`roi_heads.*`). */
  roiHeads: RoIHeads;
  /** Module S (`s2new.*`). */
  s: SModule;
  /** Anchor generator. */
  anchorGenerator: AnchorGenerator;
}

/** Lesion detections in original-image coordinates, with their masks. */
export interface SSMDetections extends Detections {
  /** Binary masks (box-local crops) pasted in the original image, one per detection. */
  masks: PastedMask[];
}

/** Output of {@linkcode SSM.predict}. */
export interface SSMPrediction {
  /** Lesion detections (original-image coordinates). */
  detections: SSMDetections;
  /** Image-class logits `[3]`. */
  classLogits: Float32Array;
  /** Softmax of the logits. */
  classProbs: Float32Array;
  /** Argmax of the logits (0 Control, 1 Common Pneumonia, 2 COVID-19). */
  predictedClass: number;
  /** The `[128·5]` RoI batch fed to S (row-major `[score, dx, dy, dw, dh]`). */
  roiBatch: Float32Array;
}

/** Raw stage outputs of one image (see {@linkcode SSM.stages}). */
export interface SSMStages {
  /** Normalised, resized, padded image batch `[1, H, W, 3]` (caller disposes). */
  images: tf.Tensor4D;
  /** Feature map `[1, h, w, C]` (caller disposes). */
  features: tf.Tensor4D;
  /** Resized image size (before padding) `[height, width]`. */
  imageSize: [number, number];
  /** Original image size `[height, width]`. */
  originalSize: [number, number];
  /** All anchors `[A·4]`. */
  anchors: Float32Array;
  /** RPN proposals (resized-image frame). */
  proposals: Proposals;
  /** Classification-branch class logits for every proposal `[P·K]`. */
  clsBranchLogits: Float32Array;
  /** Classification-branch box deltas for every proposal `[P·4K]`. */
  clsBranchRegression: Float32Array;
  /** Which rows form the RoI batch. */
  roiSelection: RoIBatchSelection;
  /** The RoI batch `[128·5]` before S. */
  roiBatch: Float32Array;
  /** Segmentation-branch detections (resized-image frame, before masks). */
  detections: Detections;
}

/** The single-shot model. Parameter names are the authors' checkpoint keys. */
export class SSM extends Module {
  /** Backbone + FPN. */
  readonly backbone: FeatureExtractor;
  /** RPN. */
  readonly rpn: RegionProposalNetwork;
  /** RoI heads. */
  readonly roiHeads: RoIHeads;
  /** Module S. */
  readonly s: SModule;
  /** Anchor generator. */
  readonly anchorGenerator: AnchorGenerator;
  /** Image transform. */
  readonly transform: GeneralizedRCNNTransform;
  /** RNG for the RoI-batch padding. */
  readonly rng: Rng;
  private anchorCache = new Map<string, Float32Array>();

  /**
   * @param config the full configuration
   * @param parts the assembled parts
   */
  constructor(readonly config: SSMConfig, parts: SSMParts) {
    super();
    this.backbone = this.addModule("backbone", parts.backbone);
    this.rpn = this.addModule("rpn", parts.rpn);
    this.roiHeads = this.addModule("roi_heads", parts.roiHeads);
    this.s = this.addModule("s2new", parts.s);
    this.anchorGenerator = parts.anchorGenerator;
    this.transform = new GeneralizedRCNNTransform(config.transform);
    this.rng = new Rng(config.seed);
  }

  /** Anchors for a padded batch size and feature size (cached). */
  anchorsFor(padded: [number, number], feat: [number, number]): Float32Array {
    const key = `${padded}|${feat}`;
    let a = this.anchorCache.get(key);
    if (!a) {
      a = this.anchorGenerator.generate(padded, [feat]);
      this.anchorCache.set(key, a);
    }
    return a;
  }

  /**
   * Backbone + FPN on a normalised batch: the same result as `backbone.forward`, with the stage
   * timing of the benchmark profiler. In eval mode a ResNet-FPN backbone runs with its batch
   * norms folded into the convolutions (bias and ReLU fused); in training mode it runs as is.
   */
  backboneForward(images: tf.Tensor4D): tf.Tensor4D {
    const bb = this.backbone;
    if (!(bb instanceof ResnetFpnBackbone)) {
      return profiler.mark("backbone", profiler.stage("backbone", () => bb.forward(images)));
    }
    return tf.tidy(() => {
      const c = profiler.mark(
        "backbone",
        profiler.stage("backbone", () => bodyForward(bb.body, images)),
      );
      return profiler.mark("fpn", profiler.stage("fpn", () => bb.fpn.apply(c)));
    });
  }

  /** Transforms an image and runs the backbone (one pass). Caller disposes both tensors. */
  private features(image: TransformInput) {
    const t = profiler.stage("transform", () => this.transform.forward(image));
    const features = this.backboneForward(t.images);
    const [, ph, pw] = t.images.shape;
    const anchors = this.anchorsFor([ph, pw], [features.shape[1], features.shape[2]]);
    return { ...t, features, anchors };
  }

  /** RoI batch selection options from the config. */
  private selectionOptions() {
    return {
      boxDetections: this.config.s.boxDetections,
      nmsThresh: this.config.s.nmsThresh,
      minArea: this.config.s.minArea,
      boxCoderWeights: this.config.roiHeads.boxCoderWeights,
      rng: this.rng,
    };
  }

  /**
   * All stages on one image, sharing one backbone pass and one RoIAlign of the proposals.
   * The returned `images` and `features` tensors belong to the caller.
   */
  stages(image: TransformInput): SSMStages {
    const cfg = this.config;
    const { images, features, imageSize, originalSize, anchors } = this.features(image);
    const proposals = profiler.stage(
      "rpn",
      () => this.rpn.propose(features, anchors, imageSize, cfg.proposalFilter),
    );
    profiler.note("proposals", proposals.boxes.length / 4);
    const pooled = profiler.stage("roiAlign", () =>
      this.roiHeads.pool(
        features,
        proposals.boxes,
        imageSize,
        cfg.roiHeads.boxPoolSize,
      ));
    const [seg, cls] = profiler.stage("box heads", () => {
      const seg = this.roiHeads.segmentationBranch(pooled);
      const cls = this.roiHeads.boxHeadS2 ? this.roiHeads.classificationBranch(pooled) : seg;
      return [seg, cls];
    });
    const segLogits = seg.classLogits.dataSync() as Float32Array;
    const segReg = seg.boxRegression.dataSync() as Float32Array;
    const clsLogits = cls === seg ? segLogits : cls.classLogits.dataSync() as Float32Array;
    const clsReg = cls === seg ? segReg : cls.boxRegression.dataSync() as Float32Array;
    pooled.dispose();
    const k = cfg.roiHeads.numClasses;
    const tPost = performance.now();
    const selection = selectRoIBatch(
      proposals.boxes,
      softmaxRows(clsLogits, k),
      clsReg,
      imageSize,
      this.selectionOptions(),
    );
    const batch = gatherRoIBatch(
      cls.classLogits,
      cls.boxRegression,
      selection,
      cfg.s.boxDetections,
    );
    const roiBatch = batch.dataSync() as Float32Array;
    batch.dispose();
    for (
      const t of new Set([seg.classLogits, seg.boxRegression, cls.classLogits, cls.boxRegression])
    ) {
      t.dispose();
    }
    const detections = postprocessDetections(segLogits, segReg, proposals.boxes, imageSize, {
      ...cfg.roiHeads,
      proposalFilter: cfg.proposalFilter,
    });
    if (profiler.enabled) profiler.add("postprocess", performance.now() - tPost);
    return {
      images,
      features,
      imageSize,
      originalSize,
      anchors,
      proposals,
      clsBranchLogits: clsLogits,
      clsBranchRegression: clsReg,
      roiSelection: selection,
      roiBatch,
      detections,
    };
  }

  /**
   * The single shot: detections with masks and class logits for one image (eval mode).
   *
   * @param image `[H, W, 3]` / `[1, H, W, 3]` float tensor in [0, 1], or a greyscale image
   */
  predict(image: TransformInput): SSMPrediction {
    const wasTraining = this.training;
    this.setTraining(false);
    try {
      const st = this.stages(image);
      const logits = profiler.stage(
        "S",
        () =>
          tf.tidy(() => this.s.apply(tf.tensor2d(st.roiBatch, [this.config.s.boxDetections, 5]))),
      );
      const classLogits = logits.dataSync() as Float32Array;
      logits.dispose();
      const det = st.detections;
      const n = det.scores.length;
      let probs: Float32Array = new Float32Array(0);
      if (n > 0) {
        const ml = this.roiHeads.maskLogits(st.features, det.boxes, det.labels, st.imageSize);
        const sig = profiler.stage("mask head", () => tf.sigmoid(ml));
        probs = sig.dataSync() as Float32Array;
        ml.dispose();
        sig.dispose();
      }
      st.images.dispose();
      st.features.dispose();
      const boxes = postprocessBoxes(det.boxes, st.imageSize, st.originalSize);
      const m = 2 * this.config.roiHeads.maskPoolSize;
      const masks: PastedMask[] = [];
      const tPaste = performance.now();
      for (let i = 0; i < n; i++) {
        masks.push(
          pasteMask(
            probs.subarray(i * m * m, (i + 1) * m * m),
            m,
            boxes.subarray(i * 4, i * 4 + 4),
            st.originalSize[0],
            st.originalSize[1],
            { threshold: this.config.roiHeads.maskThreshold },
          ),
        );
      }
      if (profiler.enabled) profiler.add("paste", performance.now() - tPaste);
      const classProbs = softmaxRows(classLogits, classLogits.length);
      let best = 0;
      for (let i = 1; i < classLogits.length; i++) if (classLogits[i] > classLogits[best]) best = i;
      return {
        detections: { ...det, boxes, masks },
        classLogits,
        classProbs,
        predictedClass: best,
        roiBatch: st.roiBatch,
      };
    } finally {
      this.setTraining(wasTraining);
    }
  }

  /**
   * Differentiable image-class logits `[1, 3]` (the classification training step): batch norm
   * runs on its running statistics, the RoI batch is gathered from the classification branch so
   * gradients reach S, the branch and the backbone. Only what S needs is computed (no detection
   * post-processing, no masks). Call inside `tf.variableGrads` / `tf.tidy`.
   */
  classify(image: TransformInput): tf.Tensor2D {
    const cfg = this.config;
    const wasTraining = this.training;
    this.setTraining(false);
    try {
      return tf.tidy(() => {
        const { features, imageSize, anchors } = this.features(image);
        const proposals = profiler.stage(
          "rpn",
          () => this.rpn.propose(features, anchors, imageSize, cfg.proposalFilter),
        );
        profiler.note("proposals", proposals.boxes.length / 4);
        // Rank every proposal. Only the rows of the RoI batch reach the loss, so this pass is
        // dropped from the backward sweep; the batch rows are recomputed below from just the
        // selected proposals (same values: RoIAlign and the branch act row by row), so the
        // backward pass covers at most 128 proposals instead of all of them.
        const ranked = profiler.stage(
          "roiAlign",
          () => this.roiHeads.pool(features, proposals.boxes, imageSize, cfg.roiHeads.boxPoolSize),
        );
        const all = profiler.stage("box heads", () => this.roiHeads.classificationBranch(ranked));
        const selection = profiler.stage("postprocess", () =>
          selectRoIBatch(
            proposals.boxes,
            softmaxRows(all.classLogits.dataSync() as Float32Array, cfg.roiHeads.numClasses),
            all.boxRegression.dataSync() as Float32Array,
            imageSize,
            this.selectionOptions(),
          ));
        tf.dispose([ranked, all.classLogits, all.boxRegression]);
        const rows = cfg.s.boxDetections;
        if (selection.rowIndex.length === 0) {
          return profiler.stage("S", () => this.s.apply(tf.zeros([rows, 5])));
        }
        const { boxes, local } = selectedProposals(
          selection,
          proposals.boxes,
          cfg.roiHeads.numClasses,
        );
        profiler.note("selected proposals", boxes.length / 4);
        const pooled = profiler.mark(
          "roiAlign",
          profiler.stage(
            "roiAlign",
            () => this.roiHeads.pool(features, boxes, imageSize, cfg.roiHeads.boxPoolSize),
          ),
        );
        const cls = profiler.stage("box heads", () => this.roiHeads.classificationBranch(pooled));
        const classLogits = profiler.mark("box heads", cls.classLogits);
        const batch = gatherRoIBatch(classLogits, cls.boxRegression, local, rows);
        return profiler.stage("S", () => this.s.apply(batch));
      });
    } finally {
      this.setTraining(wasTraining);
    }
  }
}

/** Builds an {@linkcode SSM} from a (partial) configuration with the paper's defaults. */
export function buildSSM(input: SSMConfigInput | SSMConfig = {}): SSM {
  const config = ssmConfig(input);
  const seeds = new SeedSequence(config.seed);
  const backbone = resnetFpnBackbone({ ...config.backbone, seed: config.seed });
  const anchors = anchorGenerator(config.anchors);
  const c = backbone.outChannels;
  const rpnModule = rpn(c, anchors.numAnchorsPerLocation()[0], config.rpn, seeds);
  const roiHeads = new RoIHeads(config.roiHeads, {
    boxBranch: boxBranch(c, config.roiHeads, seeds),
    maskBranch: maskBranch(c, config.roiHeads, seeds),
    classificationBranch: hasSecondBranch(config.variant)
      ? classificationBranch(c, config.roiHeads, seeds)
      : null,
  });
  return new SSM(config, {
    backbone,
    rpn: rpnModule,
    roiHeads,
    s: sModule(config.s, seeds),
    anchorGenerator: anchors,
  });
}

/**
 * The distinct proposals of a RoI batch selection (ascending index) and the selection re-indexed
 * onto them.
 */
function selectedProposals(
  sel: RoIBatchSelection,
  proposals: Float32Array,
  numClasses: number,
): { boxes: Float32Array; local: RoIBatchSelection } {
  const fg = numClasses - 1;
  const uniq = [...new Set(sel.proposalIndex)].sort((a, b) => a - b);
  const at = new Map(uniq.map((p, i) => [p, i]));
  const boxes = new Float32Array(uniq.length * 4);
  uniq.forEach((p, i) => boxes.set(proposals.subarray(p * 4, p * 4 + 4), i * 4));
  const rowIndex = Int32Array.from(
    sel.proposalIndex,
    (p, r) => at.get(p)! * fg + sel.classIndex[r] - 1,
  );
  return { boxes, local: { ...sel, rowIndex } };
}

/**
 * The ResNet trunk; in eval mode every conv + batch norm (+ ReLU) runs as one fused convolution
 * with folded weights ({@linkcode convBatchNormEval}).
 */
function bodyForward(body: ResNetBody, x: tf.Tensor4D): tf.Tensor4D {
  if (body.training) return body.apply(x);
  return tf.tidy(() => {
    let h = maxPool2d(convBatchNormEval(body.conv1, body.bn1, x, "relu"), 3, 2, 1);
    for (const layer of body.layers) {
      for (const b of layer.blocks) {
        const input = h;
        let y: tf.Tensor4D;
        if (b instanceof BasicBlock) {
          y = convBatchNormEval(b.conv1, b.bn1, input, "relu");
          y = convBatchNormEval(b.conv2, b.bn2, y);
        } else if (b instanceof Bottleneck) {
          y = convBatchNormEval(b.conv1, b.bn1, input, "relu");
          y = convBatchNormEval(b.conv2, b.bn2, y, "relu");
          y = convBatchNormEval(b.conv3, b.bn3, y);
        } else {
          h = b.apply(input);
          continue;
        }
        const ds = b.downsample;
        const identity = ds ? convBatchNormEval(ds.conv, ds.bn, input) : input;
        h = tf.relu(tf.add(y, identity));
      }
    }
    return h;
  });
}
