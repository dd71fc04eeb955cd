/**
 * `modelSummary`: per-stage parameter counts of an SSM — total, and trainable in the
 * classification step under each update rule.
 *
 * @example
 * ```ts
 * import { buildSSM, modelSummary } from "@covid-ssm/ssm";
 * console.log(modelSummary(buildSSM()).text);
 * ```
 *
 * @module
 */
import type { Module } from "./nn/module.ts";
import {
  classificationStepParams,
  trainableParams,
  UPDATE_RULES,
  type UpdateRule,
} from "./train/param_groups.ts";

/** One stage's parameter counts. */
export interface StageCount {
  /** Stage name (state_dict prefix). */
  stage: string;
  /** Trainable scalars. */
  parameters: number;
  /** Buffer scalars (batch-norm running statistics). */
  buffers: number;
}

/** Result of {@linkcode modelSummary}. */
export interface ModelSummary {
  /** Per stage, in state_dict order. */
  stages: StageCount[];
  /** Total trainable scalars. */
  total: number;
  /** Scalars updated by the classification step under each update rule. */
  classificationStepTrainable: Record<UpdateRule, number>;
  /** A printable table. */
  text: string;
}

const STAGES = [
  "backbone.body",
  "backbone.fpn",
  "rpn",
  "roi_heads.box_head",
  "roi_heads.box_predictor",
  "roi_heads.box_head_s2",
  "roi_heads.box_predictor_s2",
  "roi_heads.mask_head",
  "roi_heads.mask_predictor",
  "s2new",
];

/** Counts parameters per stage and per update rule. */
export function modelSummary(model: Module): ModelSummary {
  const all = model.namedParameters();
  const stageOf = (n: string) => STAGES.find((s) => n.startsWith(s + ".")) ?? n.split(".")[0];
  const map = new Map<string, StageCount>();
  for (const [n, p] of all) {
    const s = stageOf(n);
    const c = map.get(s) ?? { stage: s, parameters: 0, buffers: 0 };
    if (p.isBuffer) c.buffers += p.variable.size;
    else c.parameters += p.variable.size;
    map.set(s, c);
  }
  const stages = [...map.values()];
  const total = trainableParams(model).reduce((s, [, p]) => s + p.variable.size, 0);
  const cls = Object.fromEntries(
    UPDATE_RULES.map((
      r,
    ) => [r, classificationStepParams(model, r).reduce((s, [, p]) => s + p.variable.size, 0)]),
  ) as Record<UpdateRule, number>;
  const fmt = (n: number) => n.toLocaleString("en-US");
  const w = Math.max(...stages.map((s) => s.stage.length), 34);
  const lines = [
    `${"stage".padEnd(w)}  ${"parameters".padStart(12)}  ${"buffers".padStart(9)}`,
    ...stages.map((s) =>
      `${s.stage.padEnd(w)}  ${fmt(s.parameters).padStart(12)}  ${fmt(s.buffers).padStart(9)}`
    ),
    `${"total".padEnd(w)}  ${fmt(total).padStart(12)}`,
    ...UPDATE_RULES.map((r) =>
      `${`trainable in cls step (${r})`.padEnd(w)}  ${fmt(cls[r]).padStart(12)}`
    ),
  ];
  return { stages, total, classificationStepTrainable: cls, text: lines.join("\n") };
}
