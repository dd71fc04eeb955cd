/**
 * The learnable heads of the SSM's RoI stage, named as in the authors' checkpoints:
 * `TwoMLPHead` (fc6, fc7), `FastRCNNPredictor` (cls_score, bbox_pred), the one-conv mask head
 * (`mask_fcn1`) and `MaskRCNNPredictor` (conv5_mask, mask_fcn_logits).
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { TwoMLPHead, FastRCNNPredictor } from "@covid-ssm/ssm";
 * const head = new TwoMLPHead(256, 7, 128);
 * const pred = new FastRCNNPredictor(128, 2);
 * const { classLogits, boxRegression } = pred.apply(head.apply(tf.zeros([4, 7, 7, 256])));
 * ```
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { Module } from "./nn/module.ts";
import { blocksToImage, Conv2d, ConvTranspose2d, Linear } from "./nn/layers.ts";
import { SeedSequence } from "./nn/init.ts";

/**
 * torchvision's `TwoMLPHead`: flatten the pooled `[R, P, P, C]` RoI features, then
 * fc6 + ReLU, fc7 + ReLU. fc6 keeps PyTorch's NCHW-flatten weight layout in checkpoints.
 */
export class TwoMLPHead extends Module {
  /** First layer (`C·P·P → representation`). */
  readonly fc6: Linear;
  /** Second layer. */
  readonly fc7: Linear;

  /**
   * @param inChannels channels of the pooled features
   * @param poolSize side of the pooled features (7)
   * @param representationSize hidden size (128 in the SSM)
   * @param seeds init seeds
   */
  constructor(
    readonly inChannels: number,
    readonly poolSize: number,
    readonly representationSize: number,
    seeds: SeedSequence = new SeedSequence(0),
  ) {
    super();
    const n = inChannels * poolSize * poolSize;
    this.fc6 = this.addModule(
      "fc6",
      new Linear(n, representationSize, {
        seeds,
        layout: { kind: "linearFromNCHW", channels: inChannels, height: poolSize, width: poolSize },
      }),
    );
    this.fc7 = this.addModule("fc7", new Linear(representationSize, representationSize, { seeds }));
  }

  /** `[R, P, P, C]` → `[R, representation]`. */
  apply(pooledNHWC: tf.Tensor4D): tf.Tensor2D {
    return tf.tidy(() => {
      const r = pooledNHWC.shape[0];
      const x = tf.reshape(pooledNHWC, [r, -1]) as tf.Tensor2D;
      return this.fc7.apply(this.fc6.apply(x, "relu"), "relu");
    });
  }
}

/** Outputs of {@linkcode FastRCNNPredictor}. */
export interface BoxPredictions {
  /** `[R, numClasses]` class logits. */
  classLogits: tf.Tensor2D;
  /** `[R, numClasses·4]` class-major box deltas (dx, dy, dw, dh per class). */
  boxRegression: tf.Tensor2D;
}

/** torchvision's `FastRCNNPredictor`: `cls_score` and `bbox_pred` linear layers. */
export class FastRCNNPredictor extends Module {
  /** Class logits layer. */
  readonly clsScore: Linear;
  /** Box delta layer. */
  readonly bboxPred: Linear;

  /**
   * @param inChannels input features
   * @param numClasses classes including background
   * @param seeds init seeds
   */
  constructor(
    readonly inChannels: number,
    readonly numClasses: number,
    seeds: SeedSequence = new SeedSequence(0),
  ) {
    super();
    this.clsScore = this.addModule("cls_score", new Linear(inChannels, numClasses, { seeds }));
    this.bboxPred = this.addModule("bbox_pred", new Linear(inChannels, numClasses * 4, { seeds }));
  }

  /** `[R, in]` → class logits and box regression (caller disposes both). */
  apply(x: tf.Tensor2D): BoxPredictions {
    return { classLogits: this.clsScore.apply(x), boxRegression: this.bboxPred.apply(x) };
  }
}

/** The authors' mask head: one 3×3 conv (`mask_fcn1`, 256 → 128) + ReLU. */
export class MaskHead extends Module {
  /** The conv. */
  readonly maskFcn1: Conv2d;

  /**
   * @param inChannels feature channels (256)
   * @param channels output channels (128)
   * @param seeds init seeds
   */
  constructor(
    readonly inChannels: number,
    readonly channels: number,
    seeds: SeedSequence = new SeedSequence(0),
  ) {
    super();
    this.maskFcn1 = this.addModule(
      "mask_fcn1",
      new Conv2d(inChannels, channels, 3, {
        padding: 1,
        seeds,
        weightInit: { kind: "kaimingNormalFanOut" },
        biasInit: { kind: "constant", value: 0 },
      }),
    );
  }

  /** `[R, 14, 14, in]` → `[R, 14, 14, channels]`. */
  apply(x: tf.Tensor4D): tf.Tensor4D {
    return this.maskFcn1.apply(x, "relu");
  }
}

/** torchvision's `MaskRCNNPredictor`: ConvTranspose 2×2/2 + ReLU, then a 1×1 conv to class logits. */
export class MaskRCNNPredictor extends Module {
  /** Upsampling. */
  readonly conv5Mask: ConvTranspose2d;
  /** Per-class mask logits. */
  readonly maskFcnLogits: Conv2d;

  /**
   * @param inChannels input channels (128)
   * @param dimReduced upsampled channels (128)
   * @param numClasses classes including background
   * @param seeds init seeds
   */
  constructor(
    readonly inChannels: number,
    readonly dimReduced: number,
    readonly numClasses: number,
    seeds: SeedSequence = new SeedSequence(0),
  ) {
    super();
    const init = { kind: "kaimingNormalFanOut" } as const;
    const zero = { kind: "constant", value: 0 } as const;
    this.conv5Mask = this.addModule(
      "conv5_mask",
      new ConvTranspose2d(inChannels, dimReduced, 2, { seeds, weightInit: init, biasInit: zero }),
    );
    this.maskFcnLogits = this.addModule(
      "mask_fcn_logits",
      new Conv2d(dimReduced, numClasses, 1, { seeds, weightInit: init, biasInit: zero }),
    );
  }

  /** `[R, 14, 14, in]` → mask logits `[R, 28, 28, numClasses]`. */
  apply(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => {
      const [n, h, w] = x.shape;
      const up = this.conv5Mask, fc = this.maskFcnLogits;
      // The 1x1 logits conv runs per pixel on the upsampled rows in block order, so only the
      // small logits tensor is interleaved into the image layout.
      const blocks = up.applyBlocks(x, "relu");
      const wl = tf.reshape(fc.weight, [fc.inChannels, fc.outChannels]) as tf.Tensor2D;
      const logits = tf.fused.matMul({ a: blocks, b: wl, bias: fc.bias ?? undefined });
      return blocksToImage(logits as tf.Tensor2D, n, h, w, up.kernelSize);
    });
  }
}
