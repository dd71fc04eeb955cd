/**
 * Builders: one function per stage of the SSM (paper Fig. 2), each from a typed config whose
 * defaults are the paper's, returning a module that {@linkcode SSM} (or your own model)
 * composes. `buildSSM` assembles all of them.
 *
 * @example
 * ```ts
 * import {
 *   anchorGenerator, boxBranch, maskBranch, resnetFpnBackbone, RoIHeads, rpn, sModule, SSM,
 *   ssmConfig,
 * } from "@covid-ssm/ssm";
 * const config = ssmConfig({ backbone: { depth: 34, stages: 2 }, variant: "single" });
 * const backbone = resnetFpnBackbone(config.backbone);
 * const anchors = anchorGenerator(config.anchors);
 * const model = new SSM(config, {
 *   backbone,
 *   anchorGenerator: anchors,
 *   rpn: rpn(backbone.outChannels, anchors.numAnchorsPerLocation()[0], config.rpn),
 *   roiHeads: new RoIHeads(config.roiHeads, {
 *     boxBranch: boxBranch(backbone.outChannels, config.roiHeads),
 *     maskBranch: maskBranch(backbone.outChannels, config.roiHeads),
 *     classificationBranch: null, // single branch
 *   }),
 *   s: sModule(config.s),
 * });
 * ```
 *
 * @module
 */
import { SeedSequence } from "./nn/init.ts";
import { AnchorGenerator } from "./anchors.ts";
import { RegionProposalNetwork } from "./rpn.ts";
import type { BoxBranch, MaskBranch } from "./roi_heads.ts";
import { FastRCNNPredictor, MaskHead, MaskRCNNPredictor, TwoMLPHead } from "./heads.ts";
import { type RoIBatchSelection, selectRoIBatch, SModule } from "./s_module.ts";
import {
  type AnchorConfig,
  DEFAULT_SSM_CONFIG,
  type RoIHeadsConfig,
  type RPNConfig,
  type SModuleConfig,
} from "./config.ts";
import type { Rng } from "./rng.ts";

/** The anchor generator (one feature level; 5 sizes × 6 ratios by default). */
export function anchorGenerator(config: Partial<AnchorConfig> = {}): AnchorGenerator {
  const c = { ...DEFAULT_SSM_CONFIG.anchors, ...config };
  return new AnchorGenerator({ sizes: [c.sizes], aspectRatios: [c.aspectRatios] });
}

/** The RPN (head + proposal settings). */
export function rpn(
  inChannels = 256,
  numAnchors = 30,
  config: Partial<RPNConfig> = {},
  seeds: SeedSequence = new SeedSequence(0),
): RegionProposalNetwork {
  return new RegionProposalNetwork(
    inChannels,
    numAnchors,
    { ...DEFAULT_SSM_CONFIG.rpn, ...config },
    seeds,
  );
}

/** A box branch (TwoMLPHead 256·7·7 → 128 → 128 + predictor with 2 classes by default). */
export function boxBranch(
  inChannels = 256,
  config: Partial<RoIHeadsConfig> = {},
  seeds: SeedSequence = new SeedSequence(0),
): BoxBranch {
  const c = { ...DEFAULT_SSM_CONFIG.roiHeads, ...config };
  return {
    head: new TwoMLPHead(inChannels, c.boxPoolSize, c.representationSize, seeds),
    predictor: new FastRCNNPredictor(c.representationSize, c.numClasses, seeds),
  };
}

/** The classification box branch (`box_head_s2` / `box_predictor_s2`): same shape as a box branch. */
export function classificationBranch(
  inChannels = 256,
  config: Partial<RoIHeadsConfig> = {},
  seeds: SeedSequence = new SeedSequence(0),
): BoxBranch {
  return boxBranch(inChannels, config, seeds);
}

/** The mask branch (3×3 conv 256 → 128, ConvTranspose 2×2/2, 1×1 to class logits). */
export function maskBranch(
  inChannels = 256,
  config: Partial<RoIHeadsConfig> = {},
  seeds: SeedSequence = new SeedSequence(0),
): MaskBranch {
  const c = { ...DEFAULT_SSM_CONFIG.roiHeads, ...config };
  return {
    head: new MaskHead(inChannels, c.maskHeadChannels, seeds),
    predictor: new MaskRCNNPredictor(c.maskHeadChannels, c.maskHeadChannels, c.numClasses, seeds),
  };
}

/** Module S (640 → 512 → 512 → 3). */
export function sModule(
  config: Partial<SModuleConfig> = {},
  seeds: SeedSequence = new SeedSequence(0),
): SModule {
  const c = { ...DEFAULT_SSM_CONFIG.s, ...config };
  return new SModule(c.boxDetections, 5, c.representationSize, c.numImageClasses, seeds);
}

/** A RoI batch selection function with the given settings (see `selectRoIBatch`). */
export type RoIBatchSelector = (
  proposals: Float32Array,
  classProbs: Float32Array,
  boxRegression: Float32Array,
  imageSize: [number, number],
) => RoIBatchSelection;

/** The RoI batch selection (128 rows, NMS 0.75, area > 1e-5, BoxCoder(10,10,5,5)). */
export function roiBatchSelection(
  config: Partial<SModuleConfig> & {
    boxCoderWeights?: [number, number, number, number];
    rng?: Rng;
  } = {},
): RoIBatchSelector {
  const c = { ...DEFAULT_SSM_CONFIG.s, ...config };
  const weights = config.boxCoderWeights ?? DEFAULT_SSM_CONFIG.roiHeads.boxCoderWeights;
  return (proposals, probs, reg, imageSize) =>
    selectRoIBatch(proposals, probs, reg, imageSize, {
      boxDetections: c.boxDetections,
      nmsThresh: c.nmsThresh,
      minArea: c.minArea,
      boxCoderWeights: weights,
      rng: config.rng,
    });
}
