/**
 * Which parameters each training step updates (paper §3): the segmentation step trains
 * everything but module S and the classification branch; the classification step trains S plus
 * the update rule's set — `s` (S only), `s+backbone` (the paper's best, the default) or `s+bn`
 * (S plus the backbone's batch-norm scales and shifts).
 *
 * @example
 * ```ts
 * import { buildSSM, classificationStepParams } from "@covid-ssm/ssm";
 * const model = buildSSM();
 * console.log(classificationStepParams(model, "s").length); // S's 6 tensors
 * ```
 *
 * @module
 */
import type { Module, Parameter } from "../nn/module.ts";

/** Update rules of the classification step. */
export type UpdateRule = "s" | "s+backbone" | "s+bn";

/** All update rules, in the paper's order. */
export const UPDATE_RULES: readonly UpdateRule[] = ["s", "s+backbone", "s+bn"];

const S_PREFIX = "s2new.";
const CLS_BRANCH_PREFIXES = ["roi_heads.box_head_s2.", "roi_heads.box_predictor_s2."];
const BN_PARAM =
  /^backbone\.body\..*(\.bn\d+|\.downsample\.1)\.(weight|bias)$|^backbone\.body\.bn1\.(weight|bias)$/;

/** Trainable (non-buffer) named parameters of a model. */
export function trainableParams(model: Module): [string, Parameter][] {
  return model.namedParameters().filter(([, p]) => !p.isBuffer);
}

/** Whether a parameter name belongs to module S. */
export function isSParam(name: string): boolean {
  return name.startsWith(S_PREFIX);
}

/** Whether a parameter name belongs to the separate classification branch (`_s2` heads). */
export function isClassificationBranchParam(name: string): boolean {
  return CLS_BRANCH_PREFIXES.some((p) => name.startsWith(p));
}

/** Whether a parameter is a batch-norm scale or shift of the backbone. */
export function isBackboneBatchNormParam(name: string): boolean {
  return BN_PARAM.test(name);
}

/** Parameters the segmentation step updates: all but S and the classification branch. */
export function segmentationStepParams(model: Module): [string, Parameter][] {
  return trainableParams(model).filter(([n]) => !isSParam(n) && !isClassificationBranchParam(n));
}

/** Parameters the classification step updates under an update rule. */
export function classificationStepParams(model: Module, rule: UpdateRule): [string, Parameter][] {
  return trainableParams(model).filter(([n]) => {
    if (isSParam(n)) return true;
    if (rule === "s+backbone") return n.startsWith("backbone.");
    if (rule === "s+bn") return isBackboneBatchNormParam(n);
    return false;
  });
}
