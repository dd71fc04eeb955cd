/**
 * The region proposal network (torchvision's `RPNHead` + `RegionProposalNetwork`).
 *
 * Forward reads like the method: head → anchors → decode → filter proposals. Filtering follows
 * either the authors' code (`reference`: zero-size boxes kept, NMS ranked by raw logits) or
 * stock torchvision 0.14 (`torchvision`: boxes smaller than 1e-3 removed, probabilities); the
 * decisions are identical otherwise. `assignRpnTargets` labels and samples anchors for training.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { RPNHead } from "@covid-ssm/ssm";
 * const head = new RPNHead(256, 30);
 * const { objectness, deltas } = head.apply(tf.zeros([1, 32, 32, 256]));
 * // objectness [1, 32, 32, 30], deltas [1, 32, 32, 120]
 * ```
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs-core";
import { Module } from "./nn/module.ts";
import { Conv2d } from "./nn/layers.ts";
import { SeedSequence } from "./nn/init.ts";
import {
  BalancedPositiveNegativeSampler,
  BoxCoder,
  boxIoU,
  clipBoxesToImage,
  Matcher,
  nms,
  removeSmallBoxes,
} from "./boxes.ts";
import type { Rng } from "./rng.ts";
import type { ProposalFilter, RPNConfig } from "./config.ts";

/** Raw RPN head outputs. */
export interface RPNHeadOutput {
  /** `[1, H, W, A]` objectness logits (flat anchor index `(y·W + x)·A + a`). */
  objectness: tf.Tensor4D;
  /** `[1, H, W, 4A]` box deltas (channel `4a + k`, k = dx, dy, dw, dh). */
  deltas: tf.Tensor4D;
}

/** torchvision's `RPNHead`: 3×3 conv + ReLU, then 1×1 convs to objectness and deltas. */
export class RPNHead extends Module {
  /** Shared 3×3 conv (`conv`). */
  readonly conv: Conv2d;
  /** Objectness (`cls_logits`). */
  readonly clsLogits: Conv2d;
  /** Deltas (`bbox_pred`). */
  readonly bboxPred: Conv2d;

  /**
   * @param inChannels feature channels (256)
   * @param numAnchors anchors per location (30)
   * @param seeds init seeds (weights N(0, 0.01²), biases 0, as torchvision)
   */
  constructor(
    readonly inChannels: number,
    readonly numAnchors: number,
    seeds: SeedSequence = new SeedSequence(0),
  ) {
    super();
    const w = { kind: "normal", std: 0.01 } as const;
    const b = { kind: "constant", value: 0 } as const;
    this.conv = this.addModule(
      "conv",
      new Conv2d(inChannels, inChannels, 3, { padding: 1, seeds, weightInit: w, biasInit: b }),
    );
    this.clsLogits = this.addModule(
      "cls_logits",
      new Conv2d(inChannels, numAnchors, 1, { seeds, weightInit: w, biasInit: b }),
    );
    this.bboxPred = this.addModule(
      "bbox_pred",
      new Conv2d(inChannels, numAnchors * 4, 1, { seeds, weightInit: w, biasInit: b }),
    );
  }

  /** Features `[1, H, W, C]` → objectness and deltas (caller disposes). */
  apply(features: tf.Tensor4D): RPNHeadOutput {
    const t = this.conv.apply(features, "relu");
    const out = { objectness: this.clsLogits.apply(t), deltas: this.bboxPred.apply(t) };
    t.dispose();
    return out;
  }
}

/** Proposals of one image. */
export interface Proposals {
  /** `[P·4]` boxes (x1, y1, x2, y2) in the resized image frame, in NMS order. */
  boxes: Float32Array;
  /** `[P]` objectness logits. */
  logits: Float32Array;
  /** `[P]` objectness probabilities (sigmoid of the logits). */
  probs: Float32Array;
  /** `[P]` flat anchor index each proposal came from. */
  anchorIndex: Int32Array;
  /** Counts after each step: top-n, size filter, NMS, final. */
  counts: { preNms: number; afterSizeFilter: number; afterNms: number; kept: number };
}

/** Options of {@linkcode filterProposals}. */
export type FilterProposalsOptions = Pick<RPNConfig, "preNmsTopN" | "postNmsTopN" | "nmsThresh"> & {
  /** `reference` (authors) or `torchvision` (0.14). */
  proposalFilter: ProposalFilter;
};

const RPN_CODER = new BoxCoder([1, 1, 1, 1]);

/** Indices of the `k` largest values, in decreasing value (ties by lower index first). */
export function topK(values: Float32Array, k: number): Int32Array {
  const idx = new Int32Array(values.length);
  for (let i = 0; i < idx.length; i++) idx[i] = i;
  const sorted = Array.from(idx).sort((a, b) => values[b] - values[a] || a - b);
  return Int32Array.from(sorted.slice(0, Math.min(k, sorted.length)));
}

/**
 * torchvision's `RegionProposalNetwork.filter_proposals` for one image and one feature level:
 * top-n anchors by logit, decode, clip, size filter, NMS, keep the first `postNmsTopN`.
 *
 * @param anchors `[A·4]` all anchors
 * @param objectness `[A]` logits
 * @param deltas `[A·4]` deltas
 * @param imageSize `[height, width]` of the resized image
 * @param opts thresholds and the filtering behaviour
 */
export function filterProposals(
  anchors: Float32Array,
  objectness: Float32Array,
  deltas: Float32Array,
  imageSize: [number, number],
  opts: FilterProposalsOptions,
): Proposals {
  const top = topK(objectness, opts.preNmsTopN);
  const n = top.length;
  const selAnchors = new Float32Array(n * 4);
  const selDeltas = new Float32Array(n * 4);
  const logits = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const a = top[i];
    selAnchors.set(anchors.subarray(a * 4, a * 4 + 4), i * 4);
    selDeltas.set(deltas.subarray(a * 4, a * 4 + 4), i * 4);
    logits[i] = objectness[a];
  }
  const boxes = clipBoxesToImage(RPN_CODER.decode(selDeltas, selAnchors), imageSize);
  const minSize = opts.proposalFilter === "reference" ? 0 : 1e-3;
  const keepSize = removeSmallBoxes(boxes, minSize);
  const probs = logits.map((l) => 1 / (1 + Math.exp(-l)));
  const sb = new Float32Array(keepSize.length * 4);
  const sl = new Float32Array(keepSize.length);
  const sp = new Float32Array(keepSize.length);
  keepSize.forEach((k, i) => {
    sb.set(boxes.subarray(k * 4, k * 4 + 4), i * 4);
    sl[i] = logits[k];
    sp[i] = probs[k];
  });
  // The logit and the probability rank identically; both behaviours are kept explicit.
  const keepNms = nms(sb, opts.proposalFilter === "reference" ? sl : sp, opts.nmsThresh);
  const kept = Math.min(keepNms.length, opts.postNmsTopN);
  const out: Proposals = {
    boxes: new Float32Array(kept * 4),
    logits: new Float32Array(kept),
    probs: new Float32Array(kept),
    anchorIndex: new Int32Array(kept),
    counts: { preNms: n, afterSizeFilter: keepSize.length, afterNms: keepNms.length, kept },
  };
  for (let i = 0; i < kept; i++) {
    const j = keepNms[i];
    out.boxes.set(sb.subarray(j * 4, j * 4 + 4), i * 4);
    out.logits[i] = sl[j];
    out.probs[i] = sp[j];
    out.anchorIndex[i] = top[keepSize[j]];
  }
  return out;
}

/** The RPN as a module: holds the head (`rpn.head.*`) and the proposal settings. */
export class RegionProposalNetwork extends Module {
  /** The head. */
  readonly head: RPNHead;

  /**
   * @param inChannels feature channels
   * @param numAnchors anchors per location
   * @param config RPN settings
   * @param seeds init seeds
   */
  constructor(
    inChannels: number,
    numAnchors: number,
    readonly config: RPNConfig,
    seeds: SeedSequence = new SeedSequence(0),
  ) {
    super();
    this.head = this.addModule("head", new RPNHead(inChannels, numAnchors, seeds));
  }

  /**
   * Runs the head and filters proposals (inference path).
   *
   * @param features `[1, H, W, C]` feature map
   * @param anchors `[H·W·A·4]` anchors for this map
   * @param imageSize `[height, width]` of the resized image
   * @param proposalFilter filtering behaviour
   */
  propose(
    features: tf.Tensor4D,
    anchors: Float32Array,
    imageSize: [number, number],
    proposalFilter: ProposalFilter,
  ): Proposals {
    const { objectness, deltas } = this.head.apply(features);
    const obj = objectness.dataSync() as Float32Array;
    const del = deltas.dataSync() as Float32Array;
    objectness.dispose();
    deltas.dispose();
    return this.filter(anchors, obj, del, imageSize, proposalFilter);
  }

  /** {@linkcode filterProposals} with this RPN's settings. */
  filter(
    anchors: Float32Array,
    objectness: Float32Array,
    deltas: Float32Array,
    imageSize: [number, number],
    proposalFilter: ProposalFilter,
  ): Proposals {
    return filterProposals(anchors, objectness, deltas, imageSize, {
      ...this.config,
      proposalFilter,
    });
  }
}

/** RPN training targets of one image. */
export interface RPNTargets {
  /** `[A]` 1 foreground, 0 background, −1 ignored. */
  labels: Float32Array;
  /** `[A·4]` encoded matched gt boxes (BoxCoder(1,1,1,1)); zero where no gt exists. */
  regressionTargets: Float32Array;
  /** Sampled positive anchors. */
  sampledPos: Int32Array;
  /** Sampled negative anchors. */
  sampledNeg: Int32Array;
}

/**
 * torchvision's `assign_targets_to_anchors` + sampling: Matcher(0.7, 0.3) with low-quality
 * matches, then the balanced sampler (256 anchors, 50% positive) drawing from `rng`.
 *
 * @param anchors `[A·4]` anchors
 * @param gtBoxes `[G·4]` gt boxes (resized-image frame)
 * @param config RPN thresholds and sampler settings
 * @param rng random source of the sampler
 */
export function assignRpnTargets(
  anchors: Float32Array,
  gtBoxes: Float32Array,
  config: Pick<RPNConfig, "fgIouThresh" | "bgIouThresh" | "batchSizePerImage" | "positiveFraction">,
  rng: Rng,
): RPNTargets {
  const a = anchors.length / 4, g = gtBoxes.length / 4;
  const labels = new Float32Array(a);
  const regressionTargets = new Float32Array(a * 4);
  if (g > 0) {
    const matcher = new Matcher(config.fgIouThresh, config.bgIouThresh, true);
    const matches = matcher.match(boxIoU(gtBoxes, anchors), g);
    const matched = new Float32Array(a * 4);
    for (let i = 0; i < a; i++) {
      const m = matches[i];
      labels[i] = m >= 0 ? 1 : m === Matcher.BETWEEN_THRESHOLDS ? -1 : 0;
      const j = Math.max(m, 0);
      matched.set(gtBoxes.subarray(j * 4, j * 4 + 4), i * 4);
    }
    regressionTargets.set(RPN_CODER.encode(matched, anchors));
  }
  const sampler = new BalancedPositiveNegativeSampler(
    config.batchSizePerImage,
    config.positiveFraction,
  );
  const [s] = sampler.sample([labels], rng);
  return { labels, regressionTargets, sampledPos: s.positive, sampledNeg: s.negative };
}
