/**
 * The single-shot training loop (paper §3, DESIGN §5). Each iteration takes one random
 * segmentation image with at least one lesion and one classification image (an epoch is one
 * pass over the classification set, in a seeded shuffled order):
 *
 * 1. segmentation step — Mask R-CNN losses in training mode; updates everything except module S
 *    and the classification branch;
 * 2. classification step — batch norm on running statistics; BCE-with-logits on the one-hot
 *    class; updates S plus the update rule's set (`s`, `s+backbone`, `s+bn`).
 *
 * Regimes: `stage1` (segmentation only: the Mask R-CNN pretraining), `single` (one shared box
 * branch), `parallel` (the classification branch copied once from the segmentation branch and
 * frozen), `scratch` (the copy is repeated whenever the segmentation loss reaches a new
 * minimum). `classify: false` skips the classification step of every iteration (a
 * segmentation-only warm-up of a two-branch model). One Adam state serves both steps.
 * Checkpoints hold weights, optimiser, RNG states and the iteration, so a resumed run continues
 * exactly; a NaN/Inf loss stops the run before the bad update, leaving the last checkpoint
 * intact.
 *
 * @example
 * ```ts
 * import { buildSSM, initBackend, Trainer } from "@covid-ssm/ssm";
 * await initBackend("wasm");
 * const model = buildSSM({ transform: { minSize: 128, maxSize: 256 }, variant: "scratch" });
 * const segData = { length: 0, get: () => Promise.reject(new Error("no data")) };
 * const trainer = new Trainer(model, { regime: "stage1", iterations: 0 }, { seg: segData, cls: null });
 * ```
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { join } from "node:path";
import type { SSM } from "../ssm.ts";
import { Rng } from "../rng.ts";
import { Adam } from "./adam.ts";
import { classificationLoss } from "../losses.ts";
import { segmentationLosses, type SegmentationTarget } from "./seg_losses.ts";
import {
  classificationStepParams,
  isSParam,
  segmentationStepParams,
  type UpdateRule,
} from "./param_groups.ts";
import type { Module, Parameter } from "../nn/module.ts";
import { latestCheckpoint, loadCheckpoint, type LoopState, saveCheckpoint } from "./checkpoint.ts";
import { ProgressBar } from "../progress.ts";
import { saveWeights, SSM_CONFIG_KEY } from "../nn/weights.ts";
import type { GreyImage } from "../transform.ts";
import { profiler } from "../bench/profiler.ts";

/** Training regimes. */
export type Regime = "stage1" | "single" | "parallel" | "scratch";

/** Training configuration (defaults: the paper's). */
export interface TrainConfig {
  /** Regime. */
  regime: Regime;
  /** Classification-step update rule. */
  updateRule: UpdateRule;
  /** Epochs over the classification set (segmentation set for `stage1`). */
  epochs: number;
  /** Stop after this many iterations whatever the epochs (null: no limit). */
  iterations: number | null;
  /** Adam learning rate. */
  lr: number;
  /**
   * Adam learning rate of the classification step (null: `lr`). Applies to every parameter the
   * step updates except module S (see `sLr`).
   */
  clsLr: number | null;
  /** Adam learning rate of module S in the classification step (null: `clsLr`, then `lr`). */
  sLr: number | null;
  /** Adam weight decay (added to the gradient). */
  weightDecay: number;
  /**
   * Run the classification step (false: segmentation steps only, for every regime; the
   * `scratch` copy rule still applies). The `stage1` regime never runs it.
   */
  classify: boolean;
  /** Seed of the trainer's RNG (data order, samplers). */
  seed: number;
  /** Write a checkpoint every N iterations (0: only at the end). */
  checkpointEvery: number;
  /** Output folder (checkpoints, `train_log.jsonl`, `model.safetensors`); null: nothing written. */
  outDir: string | null;
  /** Show progress on stderr. */
  progress: boolean;
}

/** The paper's training settings. */
export const DEFAULT_TRAIN_CONFIG: TrainConfig = {
  regime: "scratch",
  updateRule: "s+backbone",
  epochs: 50,
  iterations: null,
  lr: 1e-5,
  clsLr: null,
  sLr: null,
  weightDecay: 1e-3,
  classify: true,
  seed: 0,
  checkpointEvery: 0,
  outDir: null,
  progress: true,
};

/** A segmentation sample as the trainer needs it. */
export interface TrainSegSample {
  /** The slice (grey, [0, 1]). */
  image: GreyImage;
  /** Its lesion instances. */
  instances: { box: ArrayLike<number>; mask: Uint8Array; label: number }[];
  /** Whether it has at least one lesion instance. */
  hasLesions: boolean;
}

/** A classification sample as the trainer needs it. */
export interface TrainClsSample {
  /** The slice (grey, [0, 1]). */
  image: GreyImage;
  /** Class index (0 Control, 1 Common Pneumonia, 2 COVID-19). */
  label: number;
}

/** A random-access dataset. */
export interface SampleSource<T> {
  /** Number of samples. */
  readonly length: number;
  /** Sample `i`. */
  get(i: number): Promise<T>;
}

/** Training data: segmentation set and (except for `stage1`) classification set. */
export interface TrainData {
  /** Segmentation samples. */
  seg: SampleSource<TrainSegSample>;
  /** Classification samples (null for `stage1`). */
  cls: SampleSource<TrainClsSample> | null;
}

/** One iteration's log record (also a line of `train_log.jsonl`). */
export interface IterationLog {
  /** 1-based iteration number. */
  iteration: number;
  /** 0-based epoch. */
  epoch: number;
  /** Summed segmentation loss. */
  segLoss: number;
  /** RPN objectness loss. */
  lossObjectness: number;
  /** RPN box loss. */
  lossRpnBoxReg: number;
  /** RoI classification loss. */
  lossClassifier: number;
  /** RoI box loss. */
  lossBoxReg: number;
  /** Mask loss. */
  lossMask: number;
  /** Classification loss (null in `stage1`). */
  clsLoss: number | null;
  /** Whether the classification branch was refreshed from the segmentation branch. */
  copied: boolean;
  /** Seconds this iteration took. */
  seconds: number;
}

/** Raised when a loss becomes NaN or infinite; no update was applied for that iteration. */
export class NonFiniteLossError extends Error {
  /**
   * @param iteration the iteration whose loss was not finite
   * @param which the loss
   * @param lastCheckpoint the last checkpoint written, if any
   */
  constructor(readonly iteration: number, which: string, readonly lastCheckpoint: string | null) {
    super(
      `${which} loss is not finite at iteration ${iteration}; stopped before updating` +
        (lastCheckpoint ? ` (last good checkpoint: ${lastCheckpoint})` : ""),
    );
    this.name = "NonFiniteLossError";
  }
}

/** Copies the segmentation box head + predictor into the classification branch. */
export function copySegmentationBranch(model: SSM): void {
  const h = model.roiHeads;
  if (!h.boxHeadS2 || !h.boxPredictorS2) return;
  copyModule(h.boxHead, h.boxHeadS2);
  copyModule(h.boxPredictor, h.boxPredictorS2);
}

function copyModule(from: Module, to: Module): void {
  const src = new Map(from.namedParameters());
  for (const [n, p] of to.namedParameters()) {
    const s = src.get(n);
    if (!s) throw new Error(`copySegmentationBranch: no parameter '${n}' in the source branch`);
    p.variable.assign(s.variable);
  }
}

/** The single-shot training loop over a model and its data. */
export class Trainer {
  /** Full configuration. */
  readonly config: TrainConfig;
  /** The optimiser (one state for both steps). */
  readonly optimizer: Adam;
  /** The trainer's RNG. */
  readonly rng: Rng;
  /** Iterations completed. */
  iteration = 0;
  /** Current epoch. */
  epoch = 0;
  /** Best segmentation loss seen (scratch regime). */
  bestSegLoss = Infinity;
  /** Last checkpoint written or loaded. */
  lastCheckpoint: string | null = null;
  private clsOrder: number[] = [];
  private lesionIndex: number[] | null = null;
  private segParams: [string, Parameter][];
  private clsParams: [string, Parameter][];
  private stopRequested = false;

  /**
   * @param model the SSM to train (its variant must suit the regime)
   * @param config training settings (defaults: the paper's)
   * @param data segmentation and classification data
   */
  constructor(readonly model: SSM, config: Partial<TrainConfig>, readonly data: TrainData) {
    this.config = { ...DEFAULT_TRAIN_CONFIG, ...config };
    const c = this.config;
    if (c.regime !== "stage1" && !data.cls) {
      throw new Error(
        `regime '${c.regime}' needs classification data (only 'stage1' trains without)`,
      );
    }
    const twoBranch = model.roiHeads.boxHeadS2 !== null;
    if (c.regime === "single" && twoBranch) {
      throw new Error("regime 'single' needs a model built with variant 'single' (one box branch)");
    }
    if ((c.regime === "parallel" || c.regime === "scratch") && !twoBranch) {
      throw new Error(
        `regime '${c.regime}' needs a two-branch model (variant 'parallel' or 'scratch')`,
      );
    }
    this.optimizer = new Adam({ lr: c.lr, weightDecay: c.weightDecay });
    this.rng = new Rng(c.seed);
    this.segParams = segmentationStepParams(model);
    this.clsParams = classificationStepParams(model, c.updateRule);
    // The parallel regime starts from a pretrained segmentation model: its classification
    // branch is a frozen copy of the segmentation branch.
    if (c.regime === "parallel") copySegmentationBranch(model);
  }

  /** Iterations per epoch (classification set size; segmentation set for `stage1`). */
  iterationsPerEpoch(): number {
    return this.config.regime === "stage1" ? this.data.seg.length : this.data.cls!.length;
  }

  /** Total iterations of the run. */
  totalIterations(): number {
    const byEpochs = this.config.epochs * this.iterationsPerEpoch();
    return this.config.iterations === null ? byEpochs : Math.min(byEpochs, this.config.iterations);
  }

  /** Asks the loop to stop after the current iteration (a final checkpoint is written). */
  requestStop(): void {
    this.stopRequested = true;
  }

  private async lesionIndices(): Promise<number[]> {
    if (this.lesionIndex) return this.lesionIndex;
    const idx: number[] = [];
    for (let i = 0; i < this.data.seg.length; i++) {
      if ((await this.data.seg.get(i)).hasLesions) idx.push(i);
    }
    if (idx.length === 0) {
      throw new Error("the segmentation data has no slice with a lesion instance");
    }
    this.lesionIndex = idx;
    return idx;
  }

  private loopState(): LoopState {
    return {
      iteration: this.iteration,
      epoch: this.epoch,
      rng: this.rng.getState(),
      modelRng: this.model.rng.getState(),
      clsOrder: this.clsOrder,
      bestSegLoss: this.bestSegLoss,
      trainConfig: this.config,
    };
  }

  /** Writes a checkpoint now (needs `outDir`); returns its folder. */
  checkpoint(): string | null {
    if (!this.config.outDir) return null;
    const name = `iter-${String(this.iteration).padStart(7, "0")}`;
    this.lastCheckpoint = saveCheckpoint(
      join(this.config.outDir, "checkpoints"),
      name,
      this.model,
      this.optimizer,
      this.loopState(),
    );
    return this.lastCheckpoint;
  }

  /** Restores the newest checkpoint under `outDir/checkpoints` (or a given folder); true if found. */
  resume(path?: string): boolean {
    const p = path ??
      (this.config.outDir ? latestCheckpoint(join(this.config.outDir, "checkpoints")) : null);
    if (!p) return false;
    const s = loadCheckpoint(p, this.model, this.optimizer);
    this.iteration = s.iteration;
    this.epoch = s.epoch;
    this.rng.setState(s.rng);
    this.model.rng.setState(s.modelRng);
    this.clsOrder = s.clsOrder;
    this.bestSegLoss = s.bestSegLoss;
    this.lastCheckpoint = p;
    return true;
  }

  private nextClsIndex(): number {
    const n = this.data.cls!.length;
    const pos = this.iteration % n;
    if (pos === 0 || this.clsOrder.length !== n) this.clsOrder = Array.from(this.rng.randperm(n));
    return this.clsOrder[pos];
  }

  /**
   * The segmentation step on one random slice with lesions: returns the summed loss and its
   * five parts. Updates every parameter except module S and the classification branch.
   */
  async segmentationStep(): Promise<{ total: number; parts: number[] }> {
    const model = this.model;
    const lesions = await this.lesionIndices();
    const sample = await this.data.seg.get(lesions[this.rng.int(0, lesions.length)]);
    const target: SegmentationTarget = {
      boxes: Float32Array.from(sample.instances.flatMap((i) => Array.from(i.box))),
      labels: Int32Array.from(sample.instances.map((i) => i.label)),
      masks: sample.instances.map((i) => i.mask),
    };
    model.setTraining(true);
    const parts: number[] = [];
    let seg: { value: tf.Scalar; grads: tf.NamedTensorMap };
    let backwardStart = 0;
    try {
      seg = profiler.section("seg ", () =>
        tf.variableGrads(() => {
          const l = segmentationLosses(model, sample.image, target, this.rng);
          parts.push(
            ...[l.lossObjectness, l.lossRpnBoxReg, l.lossClassifier, l.lossBoxReg, l.lossMask]
              .map((t) => t.dataSync()[0]),
          );
          backwardStart = performance.now();
          return l.total;
        }, this.segParams.map(([, p]) => p.variable)));
    } finally {
      model.setTraining(false);
    }
    profiler.section("seg ", () =>
      profiler.backwardTimes(
        ["backbone", "fpn", "rpn", "roiAlign", "box heads", "mask roiAlign", "mask head", "loss"],
        backwardStart,
        performance.now(),
      ));
    const total = seg.value.dataSync()[0];
    try {
      if (!Number.isFinite(total)) {
        throw new NonFiniteLossError(this.iteration + 1, "segmentation", this.lastCheckpoint);
      }
      this.applyGrads(this.segParams, seg.grads);
    } finally {
      tf.dispose([seg.value, ...Object.values(seg.grads)]);
    }
    return { total, parts };
  }

  /**
   * The classification step on the next slice of the epoch's order: batch norm on running
   * statistics, BCE-with-logits on the one-hot class; updates S plus the update rule's set.
   * Returns the loss.
   */
  async classificationStep(): Promise<number> {
    const sample = await this.data.cls!.get(this.nextClsIndex());
    let backwardStart = 0;
    const cls = profiler.section("cls ", () =>
      tf.variableGrads(
        () => {
          const l = classificationLoss(this.model.classify(sample.image), sample.label);
          backwardStart = performance.now();
          return l;
        },
        this.clsParams.map(([, p]) => p.variable),
      ));
    profiler.section("cls ", () =>
      profiler.backwardTimes(
        ["backbone", "fpn", "roiAlign", "box heads", "loss"],
        backwardStart,
        performance.now(),
      ));
    const loss = cls.value.dataSync()[0];
    try {
      if (!Number.isFinite(loss)) {
        throw new NonFiniteLossError(this.iteration + 1, "classification", this.lastCheckpoint);
      }
      const c = this.config;
      const clsLr = c.clsLr ?? undefined;
      const sLr = c.sLr ?? clsLr;
      this.applyGrads(
        this.clsParams,
        cls.grads,
        clsLr === undefined && sLr === undefined
          ? undefined
          : (name) => (isSParam(name) ? sLr : clsLr),
      );
    } finally {
      tf.dispose([cls.value, ...Object.values(cls.grads)]);
    }
    return loss;
  }

  /** Runs one iteration (both steps) and returns its log record. */
  async step(): Promise<IterationLog> {
    const t0 = performance.now();
    const c = this.config;
    this.epoch = Math.floor(this.iteration / this.iterationsPerEpoch());
    const seg = await this.segmentationStep();
    let copied = false;
    if (c.regime === "scratch" && seg.total < this.bestSegLoss) {
      this.bestSegLoss = seg.total;
      copySegmentationBranch(this.model);
      copied = true;
    }
    const clsLoss = c.regime === "stage1" || !c.classify ? null : await this.classificationStep();
    this.iteration += 1;
    const [lossObjectness, lossRpnBoxReg, lossClassifier, lossBoxReg, lossMask] = seg.parts;
    return {
      iteration: this.iteration,
      epoch: this.epoch,
      segLoss: seg.total,
      lossObjectness,
      lossRpnBoxReg,
      lossClassifier,
      lossBoxReg,
      lossMask,
      clsLoss,
      copied,
      seconds: (performance.now() - t0) / 1000,
    };
  }

  private applyGrads(
    params: [string, Parameter][],
    grads: tf.NamedTensorMap,
    lrOf?: (name: string) => number | undefined,
  ): void {
    const byVar = new Map<string, string>(params.map(([n, p]) => [p.variable.name, n]));
    const update = new Map<string, { variable: tf.Variable; grad: tf.Tensor }>();
    for (const [, p] of params) {
      const g = grads[p.variable.name];
      if (g) update.set(byVar.get(p.variable.name)!, { variable: p.variable, grad: g });
    }
    profiler.stage("adam", () => this.optimizer.step(update, lrOf));
  }

  /**
   * Runs until the configured number of iterations (or a stop request), writing the JSONL log,
   * periodic checkpoints and a final checkpoint + `model.safetensors` when `outDir` is set.
   *
   * @param onIteration called with every iteration's log record
   */
  async run(onIteration?: (log: IterationLog) => void): Promise<IterationLog[]> {
    const c = this.config;
    const total = this.totalIterations();
    const logs: IterationLog[] = [];
    let logFile: Deno.FsFile | null = null;
    if (c.outDir) {
      Deno.mkdirSync(c.outDir, { recursive: true });
      logFile = Deno.openSync(join(c.outDir, "train_log.jsonl"), { append: true, create: true });
    }
    const progress = c.progress
      ? new ProgressBar(total - this.iteration, `train ${c.regime}`)
      : null;
    const enc = new TextEncoder();
    const smooth: Record<string, number> = {};
    const ema = (
      k: string,
      v: number,
    ) => (smooth[k] = smooth[k] === undefined ? v : 0.9 * smooth[k] + 0.1 * v);
    try {
      while (this.iteration < total && !this.stopRequested) {
        // Let timers and signal handlers (Ctrl-C) run between iterations.
        await new Promise((resolve) => setTimeout(resolve, 0));
        if (this.stopRequested) break;
        const log = await this.step();
        logs.push(log);
        logFile?.writeSync(enc.encode(JSON.stringify(log) + "\n"));
        onIteration?.(log);
        const seg = ema("seg", log.segLoss);
        const cls = log.clsLoss === null ? null : ema("cls", log.clsLoss);
        progress?.tick(
          `epoch ${log.epoch + 1} seg ${seg.toFixed(3)}${
            cls === null ? "" : ` cls ${cls.toFixed(3)}`
          }`,
        );
        if (c.checkpointEvery > 0 && this.iteration % c.checkpointEvery === 0) this.checkpoint();
      }
    } finally {
      logFile?.close();
    }
    if (c.outDir) {
      this.checkpoint();
      saveWeights(this.model, join(c.outDir, "model.safetensors"), {
        [SSM_CONFIG_KEY]: JSON.stringify(this.model.config),
      });
    }
    return logs;
  }
}
