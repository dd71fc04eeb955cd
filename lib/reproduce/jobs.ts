/**
 * The two kinds of work of a reproduction run, each self-contained so that it can run in a
 * worker thread or in the main process:
 *
 * - a **stage-I job** trains a segmentation-only Mask R-CNN for one backbone (shared by the
 *   `single` and `parallel` variants of that backbone) and writes `stage1.json`;
 * - a **variant job** builds the variant (from the stage-I weights for pretrained regimes),
 *   trains it with the single-shot loop, evaluates it on the test split (Tables 2 and 3) and
 *   writes `result.json`.
 *
 * Each job's folder holds the trainer's output (`checkpoints/` while it runs, `train_log.jsonl`,
 * `model.safetensors`). The result file is written atomically as the job's last step, so it
 * marks the job finished; an interrupted job resumes from its newest checkpoint.
 *
 * @module
 */

import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { writeTextFileAtomic } from "../data/atomic.ts";
import { buildSSM } from "../ssm.ts";
import { loadInitWeights } from "../cli/train.ts";
import { modelSummary } from "../summary.ts";
import { copySegmentationBranch, type IterationLog, Trainer } from "../train/trainer.ts";
import { type EvalDataSpec, openEvalData } from "../eval/data.ts";
import {
  type ClassificationReport,
  evalTasks,
  evaluateModel,
  evaluationReport,
} from "../eval/evaluate.ts";
import type { SegmentationMetrics } from "../eval/segmentation.ts";
import { modelConfigFor, type ReproProfile, stagePhases } from "./profiles.ts";
import type { VariantSpec } from "./variants.ts";

/** Name of a stage-I job's result file. */
export const STAGE1_RESULT = "stage1.json";
/** Name of a variant job's result file. */
export const VARIANT_RESULT = "result.json";

/** Stage-I pretraining of one backbone. */
export interface Stage1Job {
  /** Kind. */
  kind: "stage1";
  /** Backbone name, e.g. `r18-3`. */
  backbone: string;
  /** ResNet depth. */
  depth: 18 | 34;
  /** Backbone stages. */
  stages: 2 | 3;
  /** Output folder. */
  dir: string;
  /** Profile. */
  profile: ReproProfile;
  /** Data. */
  data: EvalDataSpec;
}

/** Training and evaluation of one variant. */
export interface VariantJob {
  /** Kind. */
  kind: "variant";
  /** The variant. */
  variant: VariantSpec;
  /** Output folder. */
  dir: string;
  /** Folder of the stage-I job it starts from (pretrained variants). */
  stage1Dir: string | null;
  /** Profile. */
  profile: ReproProfile;
  /** Data. */
  data: EvalDataSpec;
}

/** A job. */
export type ReproJob = Stage1Job | VariantJob;

/** Progress of a running job. */
export interface JobProgress {
  /** Job name (backbone or variant name). */
  job: string;
  /** `train` or `eval`. */
  phase: "train" | "eval";
  /** Steps done in this phase. */
  done: number;
  /** Steps in this phase. */
  total: number;
  /** Latest segmentation / classification loss (training). */
  segLoss?: number;
  /** Latest classification loss (training; null in stage I). */
  clsLoss?: number | null;
}

/** What a stage-I job writes to `stage1.json`. */
export interface Stage1Result {
  /** Backbone name. */
  backbone: string;
  /** Iterations trained. */
  iterations: number;
  /** Training seconds (sum of the iteration times). */
  seconds: number;
  /** Weights file. */
  weights: string;
  /** Completion time (ISO 8601). */
  finishedAt: string;
}

/** What a variant job writes to `result.json`. */
export interface VariantResult {
  /** Variant name. */
  model: string;
  /** ResNet depth. */
  depth: number;
  /** Backbone stages. */
  stages: number;
  /** Regime. */
  regime: string;
  /** Whether it started from a stage-I model. */
  pretrained: boolean;
  /** Seconds of that stage-I training (null: none). */
  stage1Seconds: number | null;
  /** Seconds of its own training (sum of the iteration times). */
  trainSeconds: number;
  /** Seconds of the evaluation. */
  evalSeconds: number;
  /** Iterations trained. */
  iterations: number;
  /** Trainable parameters. */
  totalParams: number;
  /** Parameters the classification step updates under the profile's update rule. */
  clsTrainableParams: number;
  /** Update rule. */
  updateRule: string;
  /** Table-2 metrics on the segmentation test split. */
  segmentation: SegmentationMetrics;
  /** Table-3 metrics on the classification test split. */
  classification: ClassificationReport;
  /** Weights file. */
  weights: string;
  /** Completion time (ISO 8601). */
  finishedAt: string;
}

/**
 * Removes a finished job's resumable training state (`checkpoints/`: weights, Adam moments, RNG
 * states); its `model.safetensors` and `train_log.jsonl` stay.
 */
export function dropTrainingState(dir: string): void {
  rmSync(join(dir, "checkpoints"), { recursive: true, force: true });
}

/** Reads a result file, or null when it does not exist. */
export function readResult<T>(path: string): T | null {
  if (!existsSync(path)) return null;
  try {
    return JSON.parse(readFileSync(path, "utf8")) as T;
  } catch (e) {
    throw new Error(
      `${path}: not a valid result file (${(e as Error).message}); delete it to redo`,
    );
  }
}

/** Training seconds of a run folder: the sum of its log's iteration times (last entry per iteration). */
export function loggedTrainSeconds(dir: string): number {
  const p = join(dir, "train_log.jsonl");
  if (!existsSync(p)) return 0;
  const byIter = new Map<number, number>();
  for (const line of readFileSync(p, "utf8").split("\n")) {
    if (!line.trim()) continue;
    const rec = JSON.parse(line) as IterationLog;
    byIter.set(rec.iteration, rec.seconds);
  }
  let s = 0;
  for (const v of byIter.values()) s += v;
  return s;
}

/** One phase of a job's training: up to `until` iterations at its learning rates. */
interface TrainPhase {
  until: number;
  lr: number;
  clsLr?: number | null;
  sLr?: number | null;
  /** Run the classification step (absent: true). */
  classify?: boolean;
  /** Copy the segmentation branch into the classification branch when the phase ends. */
  copyBranchAtEnd?: boolean;
}

/**
 * Trains (resuming from the newest checkpoint in `dir` if any), in phases: each phase runs up to
 * its iteration count at its learning rate.
 */
async function train(
  trainer: Trainer,
  dir: string,
  name: string,
  phases: TrainPhase[],
  onProgress?: (p: JobProgress) => void,
): Promise<void> {
  if (!trainer.resume()) rmSync(join(dir, "train_log.jsonl"), { force: true });
  const total = phases[phases.length - 1].until;
  for (const phase of phases) {
    if (trainer.iteration >= phase.until) continue;
    trainer.config.iterations = phase.until;
    trainer.optimizer.config.lr = phase.lr;
    trainer.config.lr = phase.lr;
    trainer.config.clsLr = phase.clsLr ?? null;
    trainer.config.sLr = phase.sLr ?? null;
    trainer.config.classify = phase.classify ?? true;
    await trainer.run((log) =>
      onProgress?.({
        job: name,
        phase: "train",
        done: log.iteration,
        total,
        segLoss: log.segLoss,
        clsLoss: log.clsLoss,
      })
    );
    if (phase.copyBranchAtEnd && trainer.iteration === phase.until) {
      copySegmentationBranch(trainer.model);
    }
  }
}

/** Runs a stage-I job (segmentation-only pretraining) and writes its result file. */
export async function runStage1(
  job: Stage1Job,
  onProgress?: (p: JobProgress) => void,
): Promise<Stage1Result> {
  const p = job.profile;
  const model = buildSSM(modelConfigFor(p, job.depth, job.stages, "single"));
  const data = await openEvalData(job.data, "train");
  if (!data.seg) throw new Error("stage-I pretraining needs segmentation data (--seg-data)");
  const trainer = new Trainer(model, {
    regime: "stage1",
    epochs: p.stage1.epochs,
    iterations: p.stage1.iterations,
    lr: p.stage1.lr,
    weightDecay: p.stage1.weightDecay,
    seed: p.seed,
    checkpointEvery: p.name === "paper" ? 500 : 0,
    outDir: job.dir,
    progress: false,
  }, { seg: data.seg, cls: null });
  try {
    await train(trainer, job.dir, `${job.backbone}-stage1`, [
      { until: trainer.totalIterations(), lr: p.stage1.lr },
    ], onProgress);
    const result: Stage1Result = {
      backbone: job.backbone,
      iterations: trainer.iteration,
      seconds: loggedTrainSeconds(job.dir),
      weights: join(job.dir, "model.safetensors"),
      finishedAt: new Date().toISOString(),
    };
    await writeTextFileAtomic(join(job.dir, STAGE1_RESULT), JSON.stringify(result, null, 2) + "\n");
    dropTrainingState(job.dir);
    return result;
  } finally {
    trainer.optimizer.dispose();
    model.dispose();
  }
}

/** Runs a variant job (training, then evaluation on the test split) and writes its result file. */
export async function runVariant(
  job: VariantJob,
  onProgress?: (p: JobProgress) => void,
): Promise<VariantResult> {
  const p = job.profile;
  const v = job.variant;
  let stage1: Stage1Result | null = null;
  if (v.pretrained) {
    if (!job.stage1Dir) throw new Error(`${v.name}: a pretrained variant needs its stage-I model`);
    stage1 = readResult<Stage1Result>(join(job.stage1Dir, STAGE1_RESULT));
    if (!stage1) throw new Error(`${v.name}: stage-I model ${job.stage1Dir} is not finished`);
  }
  const model = buildSSM(modelConfigFor(p, v.depth, v.stages, v.regime));
  if (stage1) loadInitWeights(model, stage1.weights);
  const summary = modelSummary(model);
  const data = await openEvalData(job.data, "train");
  if (!data.seg || !data.cls) {
    throw new Error(`${v.name}: training needs segmentation and classification data`);
  }
  const trainer = new Trainer(model, {
    regime: v.regime,
    updateRule: p.updateRule,
    epochs: p.train.epochs,
    iterations: p.train.iterations,
    lr: p.train.lr,
    clsLr: p.train.clsLr ?? null,
    sLr: p.train.sLr ?? null,
    weightDecay: p.train.weightDecay,
    seed: p.seed,
    checkpointEvery: p.name === "paper" ? 500 : 0,
    outDir: job.dir,
    progress: false,
  }, { seg: data.seg, cls: data.cls });
  try {
    const warm = v.regime === "scratch" ? p.scratchWarmup : null;
    const main = trainer.totalIterations();
    await train(
      trainer,
      job.dir,
      v.name,
      warm
        ? [
          { ...warm, until: warm.iterations, copyBranchAtEnd: true },
          ...stagePhases(p.train, warm.iterations, main),
        ]
        : stagePhases(p.train, 0, main),
      onProgress,
    );
    const test = await openEvalData(job.data, "test");
    if (!test.seg || !test.cls) throw new Error(`${v.name}: evaluation needs both test splits`);
    const tasks = evalTasks(test);
    let done = 0;
    const t0 = performance.now();
    const records = await evaluateModel(
      model,
      test,
      tasks,
      () => onProgress?.({ job: v.name, phase: "eval", done: ++done, total: tasks.length }),
    );
    const report = evaluationReport(records, { maxDets: p.maxDets });
    const result: VariantResult = {
      model: v.name,
      depth: v.depth,
      stages: v.stages,
      regime: v.regime,
      pretrained: v.pretrained,
      stage1Seconds: stage1 ? stage1.seconds : null,
      trainSeconds: loggedTrainSeconds(job.dir),
      evalSeconds: (performance.now() - t0) / 1000,
      iterations: trainer.iteration,
      totalParams: summary.total,
      clsTrainableParams: summary.classificationStepTrainable[p.updateRule],
      updateRule: p.updateRule,
      segmentation: report.segmentation!,
      classification: report.classification!,
      weights: join(job.dir, "model.safetensors"),
      finishedAt: new Date().toISOString(),
    };
    await writeTextFileAtomic(
      join(job.dir, VARIANT_RESULT),
      JSON.stringify(result, null, 2) + "\n",
    );
    dropTrainingState(job.dir);
    return result;
  } finally {
    trainer.optimizer.dispose();
    model.dispose();
  }
}

/** Runs a job of either kind. */
export function runJob(
  job: ReproJob,
  onProgress?: (p: JobProgress) => void,
): Promise<Stage1Result | VariantResult> {
  return job.kind === "stage1" ? runStage1(job, onProgress) : runVariant(job, onProgress);
}
