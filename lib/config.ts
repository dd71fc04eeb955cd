/**
 * The SSM's configuration: one typed object whose defaults are the paper's numbers
 * (Ter-Sarkisov 2020, and the authors' released code). Every builder takes the part it needs;
 * every CLI flag maps to a field here.
 *
 * @example
 * ```ts
 * import { ssmConfig } from "@covid-ssm/ssm";
 * const cfg = ssmConfig({ backbone: { depth: 34, stages: 2 }, variant: "single" });
 * console.log(cfg.rpn.nmsThresh); // 0.75
 * ```
 *
 * @module
 */

/** How proposals and detections are filtered (DESIGN §4). */
export type ProposalFilter = "reference" | "torchvision";

/** The three SSM variants: one shared box branch, or two branches (frozen / copied online). */
export type SSMVariant = "single" | "parallel" | "scratch";

/** Backbone configuration. */
export interface BackboneConfig {
  /** ResNet depth (18, 34 or 50). */
  depth: 18 | 34 | 50;
  /** Number of ResNet stages kept (2 → stride 8, 3 → stride 16, 4 → stride 32). */
  stages: 2 | 3 | 4;
  /** FPN output channels. */
  fpnChannels: number;
}

/** Image transform (torchvision's GeneralizedRCNNTransform). */
export interface ImageTransformConfig {
  /** Short side after resizing. */
  minSize: number;
  /** Long side cap. */
  maxSize: number;
  /** Per-channel mean. */
  imageMean: [number, number, number];
  /** Per-channel std. */
  imageStd: [number, number, number];
  /** Pad height and width to a multiple of this. */
  sizeDivisible: number;
}

/** Anchor generator. */
export interface AnchorConfig {
  /** Anchor sizes in pixels. */
  sizes: number[];
  /** Aspect ratios (h/w). */
  aspectRatios: number[];
}

/** Region proposal network. */
export interface RPNConfig {
  /** Top-n by objectness before NMS (training and testing). */
  preNmsTopN: number;
  /** Proposals kept after NMS. */
  postNmsTopN: number;
  /** NMS IoU threshold. */
  nmsThresh: number;
  /** IoU above which an anchor is foreground (training). */
  fgIouThresh: number;
  /** IoU below which an anchor is background (training). */
  bgIouThresh: number;
  /** Anchors sampled per image (training). */
  batchSizePerImage: number;
  /** Fraction of positives among them. */
  positiveFraction: number;
}

/** RoI heads (box branches, mask branch, detection post-processing). */
export interface RoIHeadsConfig {
  /** Box head hidden size (TwoMLPHead representation size). */
  representationSize: number;
  /** Classes including background. */
  numClasses: number;
  /** RoIAlign output for the box heads. */
  boxPoolSize: number;
  /** RoIAlign output for the mask head. */
  maskPoolSize: number;
  /** RoIAlign sampling ratio. */
  samplingRatio: number;
  /** Mask head conv channels. */
  maskHeadChannels: number;
  /** Box coder weights (wx, wy, ww, wh). */
  boxCoderWeights: [number, number, number, number];
  /** Detection score threshold (strict). */
  scoreThresh: number;
  /** Detection NMS IoU. */
  nmsThresh: number;
  /** Maximum detections per image. */
  detectionsPerImage: number;
  /** Mask binarisation threshold (strict). */
  maskThreshold: number;
  /** IoU for a foreground proposal (training). */
  fgIouThresh: number;
  /** IoU below which a proposal is background (training). */
  bgIouThresh: number;
  /** Proposals sampled per image (training). */
  batchSizePerImage: number;
  /** Fraction of positives among them. */
  positiveFraction: number;
}

/** RoI batch selection and module S. */
export interface SModuleConfig {
  /** Rows of the RoI batch fed to S. */
  boxDetections: number;
  /** NMS IoU of the RoI batch selection. */
  nmsThresh: number;
  /** Minimum decoded box area kept (strict). */
  minArea: number;
  /** Hidden size of S. */
  representationSize: number;
  /** Image classes. */
  numImageClasses: number;
}

/** The whole SSM configuration. */
export interface SSMConfig {
  /** Variant: `single` (shared branch), `parallel` (two branches), `scratch` (two, copied online). */
  variant: SSMVariant;
  /** Proposal filtering behaviour (`reference` = the authors' code). */
  proposalFilter: ProposalFilter;
  /** Backbone. */
  backbone: BackboneConfig;
  /** Transform. */
  transform: ImageTransformConfig;
  /** Anchors. */
  anchors: AnchorConfig;
  /** RPN. */
  rpn: RPNConfig;
  /** RoI heads. */
  roiHeads: RoIHeadsConfig;
  /** Module S. */
  s: SModuleConfig;
  /** Seed for parameter initialisation and for the RoI-batch padding. */
  seed: number;
}

/** The paper's configuration (ResNet18, 3 stages, two branches, 512 px). */
export const DEFAULT_SSM_CONFIG: SSMConfig = {
  variant: "parallel",
  proposalFilter: "reference",
  backbone: { depth: 18, stages: 3, fpnChannels: 256 },
  transform: {
    minSize: 512,
    maxSize: 1024,
    imageMean: [0.485, 0.456, 0.406],
    imageStd: [0.229, 0.224, 0.225],
    sizeDivisible: 32,
  },
  anchors: { sizes: [2, 4, 8, 16, 32], aspectRatios: [0.1, 0.25, 0.5, 1, 1.5, 2] },
  rpn: {
    preNmsTopN: 2000,
    postNmsTopN: 1000,
    nmsThresh: 0.75,
    fgIouThresh: 0.7,
    bgIouThresh: 0.3,
    batchSizePerImage: 256,
    positiveFraction: 0.5,
  },
  roiHeads: {
    representationSize: 128,
    numClasses: 2,
    boxPoolSize: 7,
    maskPoolSize: 14,
    samplingRatio: 2,
    maskHeadChannels: 128,
    boxCoderWeights: [10, 10, 5, 5],
    scoreThresh: 0.75,
    nmsThresh: 0.5,
    detectionsPerImage: 128,
    maskThreshold: 0.5,
    fgIouThresh: 0.5,
    bgIouThresh: 0.5,
    batchSizePerImage: 512,
    positiveFraction: 0.25,
  },
  s: {
    boxDetections: 128,
    nmsThresh: 0.75,
    minArea: 1e-5,
    representationSize: 512,
    numImageClasses: 3,
  },
  seed: 0,
};

/** A partial configuration: every field optional, nested objects merged with the defaults. */
export type SSMConfigInput = {
  [K in keyof SSMConfig]?: SSMConfig[K] extends object ? Partial<SSMConfig[K]> : SSMConfig[K];
};

/** Builds a full configuration from the defaults and the given overrides (validated). */
export function ssmConfig(input: SSMConfigInput = {}): SSMConfig {
  const d = DEFAULT_SSM_CONFIG;
  const cfg: SSMConfig = {
    variant: input.variant ?? d.variant,
    proposalFilter: input.proposalFilter ?? d.proposalFilter,
    backbone: { ...d.backbone, ...input.backbone },
    transform: { ...d.transform, ...input.transform },
    anchors: { ...d.anchors, ...input.anchors },
    rpn: { ...d.rpn, ...input.rpn },
    roiHeads: { ...d.roiHeads, ...input.roiHeads },
    s: { ...d.s, ...input.s },
    seed: input.seed ?? d.seed,
  };
  if (![18, 34, 50].includes(cfg.backbone.depth)) {
    throw new Error(`config.backbone.depth must be 18, 34 or 50, got ${cfg.backbone.depth}`);
  }
  if (![2, 3, 4].includes(cfg.backbone.stages)) {
    throw new Error(`config.backbone.stages must be 2, 3 or 4, got ${cfg.backbone.stages}`);
  }
  if (!["single", "parallel", "scratch"].includes(cfg.variant)) {
    throw new Error(`config.variant must be single, parallel or scratch, got '${cfg.variant}'`);
  }
  if (!["reference", "torchvision"].includes(cfg.proposalFilter)) {
    throw new Error(
      `config.proposalFilter must be reference or torchvision, got '${cfg.proposalFilter}'`,
    );
  }
  return cfg;
}

/** Whether a variant has a separate classification box branch (`box_head_s2`). */
export function hasSecondBranch(variant: SSMVariant): boolean {
  return variant !== "single";
}
