/**
 * Analytic floating-point operation counts of the SSM's stages (2 FLOPs per multiply-add of the
 * convolutions and matrix products; element-wise work such as batch norm, ReLU and RoIAlign is
 * not counted). Used by the benchmark to report achieved GFLOP/s per stage.
 *
 * @example
 * ```ts
 * import { buildSSM } from "../ssm.ts";
 * import { ssmStageFlops } from "./flops.ts";
 * const f = ssmStageFlops(buildSSM(), [512, 512], { proposals: 1000, maskRois: 128 });
 * console.log(f.backbone / 1e9, f["mask head"] / 1e9); // ≈ 12.2, 18.1
 * ```
 *
 * @module
 */
import type { SSM } from "../ssm.ts";
import { ResnetFpnBackbone } from "../backbone.ts";
import type { Module } from "../nn/module.ts";
import { Conv2d } from "../nn/layers.ts";

/** FLOPs of a convolution on an `h x w` input, and its output size. */
function conv(c: Conv2d, h: number, w: number): { flops: number; h: number; w: number } {
  const k = c.kernelSize, s = c.stride, p = c.padding;
  const oh = Math.floor((h + 2 * p - k) / s) + 1, ow = Math.floor((w + 2 * p - k) / s) + 1;
  return { flops: 2 * oh * ow * k * k * c.inChannels * c.outChannels, h: oh, w: ow };
}

/** The convolutions of a module subtree in registration order. */
function convsOf(m: Module): Conv2d[] {
  const out: Conv2d[] = [];
  const walk = (x: Module) => {
    if (x instanceof Conv2d) out.push(x);
    for (const [, child] of x.namedChildren()) walk(child);
  };
  walk(m);
  return out;
}

/** Counts of the per-stage FLOPs (missing stages are 0). */
export type StageFlops = Record<string, number>;

/**
 * Forward FLOPs per stage for one padded image of `paddedHW`, `proposals` RoIs through each
 * box branch and `maskRois` RoIs through the mask head.
 */
export function ssmStageFlops(
  model: SSM,
  paddedHW: [number, number],
  counts: { proposals: number; maskRois: number; boxBranches?: number },
): StageFlops {
  const out: StageFlops = {};
  let [h, w] = paddedHW;
  const bb = model.backbone;
  if (bb instanceof ResnetFpnBackbone) {
    let body = 0;
    // Stem conv, then the 3x3/2 max pool.
    const stem = conv(bb.body.conv1, h, w);
    body += stem.flops;
    h = Math.floor((stem.h + 2 - 3) / 2) + 1;
    w = Math.floor((stem.w + 2 - 3) / 2) + 1;
    for (const layer of bb.body.layers) {
      for (const block of layer.blocks) {
        const down = (block as { downsample?: { conv: Conv2d } | null }).downsample?.conv;
        let bh = h, bw = w;
        for (const c of convsOf(block)) {
          if (c === down) continue;
          const r = conv(c, bh, bw);
          body += r.flops;
          bh = r.h;
          bw = r.w;
        }
        if (down) body += conv(down, h, w).flops;
        h = bh;
        w = bw;
      }
    }
    out.backbone = body;
    out.fpn = conv(bb.fpn.inner, h, w).flops + conv(bb.fpn.layer, h, w).flops;
  }
  const rh = model.rpn.head;
  out.rpn = conv(rh.conv, h, w).flops + conv(rh.clsLogits, h, w).flops +
    conv(rh.bboxPred, h, w).flops;
  const heads = model.roiHeads;
  const fc = (inF: number, outF: number) => 2 * inF * outF;
  const boxBranch = fc(heads.boxHead.fc6.inFeatures, heads.boxHead.fc6.outFeatures) +
    fc(heads.boxHead.fc7.inFeatures, heads.boxHead.fc7.outFeatures) +
    fc(heads.boxPredictor.clsScore.inFeatures, heads.boxPredictor.clsScore.outFeatures) +
    fc(heads.boxPredictor.bboxPred.inFeatures, heads.boxPredictor.bboxPred.outFeatures);
  const branches = counts.boxBranches ?? (heads.boxHeadS2 ? 2 : 1);
  out["box heads"] = branches * counts.proposals * boxBranch;
  const m = model.config.roiHeads.maskPoolSize;
  const mh = heads.maskHead.maskFcn1, up = heads.maskPredictor.conv5Mask;
  const logits = heads.maskPredictor.maskFcnLogits;
  out["mask head"] = counts.maskRois * (
    conv(mh, m, m).flops +
    2 * m * m * up.inChannels * up.outChannels * up.kernelSize * up.kernelSize +
    conv(logits, 2 * m, 2 * m).flops
  );
  const s = model.s;
  out.S = fc(s.fcScores.inFeatures, s.fcScores.outFeatures) +
    fc(s.fcScores2.inFeatures, s.fcScores2.outFeatures) +
    fc(s.fcScoresImg.inFeatures, s.fcScoresImg.outFeatures);
  return out;
}
