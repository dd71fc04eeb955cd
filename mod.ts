/**
 * The SSM toolkit: a Deno/TypeScript implementation of the single-shot model (SSM) of
 * Ter-Sarkisov (2020), a lightweight Mask R-CNN with an extra RoI branch and an image
 * classifier ("module S") that segments lung lesions in a chest CT slice and predicts
 * Control / Common Pneumonia / COVID-19 in one forward pass.
 *
 * Models are composed from builders (`resnetFpnBackbone`, `anchorGenerator`, `rpn`,
 * `boxBranch`, `maskBranch`, `classificationBranch`, `sModule`, `roiBatchSelection`) or built in
 * one call with `buildSSM`; checkpoints are safetensors files (or the authors' `.pth` files) with
 * the authors' parameter names. Data readers live in `@covid-ssm/ssm/data`, metrics in
 * `@covid-ssm/ssm/metrics`.
 *
 * @example
 * ```ts
 * import { buildSSM, initBackend, modelSummary } from "@covid-ssm/ssm";
 * await initBackend("wasm");
 * const model = buildSSM({ backbone: { depth: 18, stages: 3 }, variant: "parallel" });
 * console.log(modelSummary(model));
 * ```
 *
 * @module
 */
export * from "./lib/backend/mod.ts";
export * from "./lib/config.ts";
export * from "./lib/nn/mod.ts";
export * from "./lib/rng.ts";
export * from "./lib/boxes.ts";
export * from "./lib/anchors.ts";
export * from "./lib/roi_align.ts";
export { roiAlignThreads, setRoIAlignThreads } from "./lib/roi_align_workers.ts";
export * from "./lib/transform.ts";
export * from "./lib/backbone.ts";
export * from "./lib/rpn.ts";
export * from "./lib/heads.ts";
export * from "./lib/roi_heads.ts";
export * from "./lib/paste_masks.ts";
export * from "./lib/s_module.ts";
export * from "./lib/builders.ts";
export * from "./lib/ssm.ts";
export * from "./lib/losses.ts";
export * from "./lib/train/adam.ts";
export * from "./lib/summary.ts";
export * from "./lib/train/param_groups.ts";
export * from "./lib/metrics/mod.ts";
export * from "./lib/viz/mod.ts";
export * from "./lib/progress.ts";
export * from "./lib/train/trainer.ts";
export * from "./lib/train/datasets.ts";
export * from "./lib/train/checkpoint.ts";
export * from "./lib/train/seg_losses.ts";
export * from "./lib/eval/mod.ts";
