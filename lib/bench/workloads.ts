/**
 * The model benchmark workloads: inference of one slice (with the detection count forced to
 * `detectionsPerImage` or to 0) and one training iteration (segmentation + classification step)
 * on synthetic data. Each runs a warm-up, then `reps` timed runs (min / median / max), then a few
 * profiled runs for the per-stage breakdown (see `profiler.ts`), and reports the peak resident
 * memory of the process. Run each workload in a fresh process (the CLI does) so that the peak
 * memory belongs to that workload alone.
 *
 * Forcing the detection count biases the segmentation `cls_score` so that every proposal scores
 * above (`sat`) or below (`zero`) the detection threshold; it is a benchmark device only.
 *
 * @example
 * ```ts
 * import { runInferenceWorkload } from "./workloads.ts";
 * const r = await runInferenceWorkload({ backend: "wasm", size: 128, detections: "zero", reps: 1 });
 * console.log(r.medianS, r.stages);
 * ```
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { type BackendName, initBackend } from "../backend/mod.ts";
import { buildSSM, type SSM } from "../ssm.ts";
import { openData } from "../train/datasets.ts";
import { Trainer } from "../train/trainer.ts";
import type { GreyImage } from "../transform.ts";
import { profiler, type StageTimes } from "./profiler.ts";
import { ssmStageFlops, type StageFlops } from "./flops.ts";

/** One stage of the breakdown. */
export interface StageStat {
  /** Stage name (`backbone`, `fpn`, `rpn`, `roiAlign`, ...; `... bwd` for backward parts). */
  name: string;
  /** Median milliseconds per run. */
  ms: number;
  /** GFLOPs per run (null where not counted). */
  gflop: number | null;
  /** Achieved GFLOP/s (null where not counted). */
  gflops: number | null;
}

/** Result of one workload. */
export interface WorkloadResult {
  /** Name, e.g. `inference_512_sat` or `train_iter_128`. */
  workload: string;
  /** Backend that ran it. */
  backend: string;
  /** Threads the backend used. */
  threads: number;
  /** Timed runs. */
  reps: number;
  /** Seconds of each timed run. */
  runsS: number[];
  /** Fastest run (s). */
  minS: number;
  /** Median run (s). */
  medianS: number;
  /** Slowest run (s). */
  maxS: number;
  /** Per-stage breakdown (medians of the profiled runs). */
  stages: StageStat[];
  /** Peak resident set size of the process (bytes). */
  peakRssBytes: number;
  /** Counters of the last profiled run (detections, RoIs, ...). */
  counts: Record<string, number>;
  /** Where the input came from. */
  input: string;
}

/** Common options. */
export interface WorkloadOptions {
  /** Backend (default `wasm`). */
  backend?: Exclude<BackendName, "auto">;
  /** Model input size (512 for the paper). */
  size: number;
  /** Timed runs (default 7). */
  reps?: number;
  /** Profiled runs for the breakdown (default min(reps, 3)). */
  profileReps?: number;
}

/** Options of {@linkcode runInferenceWorkload}. */
export interface InferenceWorkloadOptions extends WorkloadOptions {
  /** `sat`: every proposal passes the score threshold; `zero`: none does. */
  detections: "sat" | "zero";
  /** Input slice (default: the parity fixture's real CT slice when present, else synthetic). */
  image?: GreyImage;
  /** Description of `image`. */
  imageSource?: string;
}

/** Peak resident memory so far: VmHWM on Linux, else the current RSS. */
export function peakRssBytes(): number {
  try {
    const m = /VmHWM:\s+(\d+)\s+kB/.exec(Deno.readTextFileSync("/proc/self/status"));
    if (m) return Number(m[1]) * 1024;
  } catch {
    // not Linux
  }
  return Deno.memoryUsage().rss;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

function checkReps(reps: number, name: string): void {
  if (!Number.isInteger(reps) || reps < 1) {
    throw new Error(`${name} must be a positive integer, got ${reps}`);
  }
}

/** Default input: the SSM fixture's real CT slice beside the repository, else a synthetic one. */
export async function defaultSlice(size: number): Promise<{ image: GreyImage; source: string }> {
  const fixture = join(
    Deno.env.get("SSM_FIXTURES") ?? join(Deno.cwd(), "..", "shared", "fixtures"),
    "ssm",
    "input_u8.bin",
  );
  if (size === 512 && existsSync(fixture)) {
    return {
      image: { width: 512, height: 512, data: Deno.readFileSync(fixture) },
      source: `real CT slice (${fixture})`,
    };
  }
  const data = await openData({ size, synthetic: { nCls: 8, nSeg: 8, seed: 0 } }, "train");
  const s = await data.cls!.get(0);
  return { image: s.image, source: `synthetic slice (${data.source})` };
}

/** Per-run median of each stage over the profiled runs, with FLOPs where known. */
function summarise(runs: StageTimes[], flops: StageFlops): StageStat[] {
  const names = [...new Set(runs.flatMap((r) => Object.keys(r)))];
  return names.map((name) => {
    const ms = median(runs.map((r) => r[name]?.ms ?? 0));
    const f = flops[name];
    const gflop = f === undefined ? null : f / 1e9;
    return { name, ms, gflop, gflops: gflop === null || ms <= 0 ? null : gflop / (ms / 1e3) };
  });
}

async function timeRuns(
  reps: number,
  profileReps: number,
  once: () => Promise<void> | void,
): Promise<{ runsS: number[]; profiles: StageTimes[]; notes: Record<string, number> }> {
  await once(); // warm-up
  const runsS: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await once();
    runsS.push((performance.now() - t0) / 1e3);
  }
  const profiles: StageTimes[] = [];
  let notes: Record<string, number> = {};
  profiler.enable();
  try {
    for (let i = 0; i < profileReps; i++) {
      await once();
      profiles.push(profiler.take());
      notes = { ...profiler.notes };
    }
  } finally {
    profiler.disable();
  }
  return { runsS, profiles, notes };
}

function result(
  workload: string,
  info: { name: string; threads: number },
  runsS: number[],
  stages: StageStat[],
  counts: Record<string, number>,
  input: string,
): WorkloadResult {
  return {
    workload,
    backend: info.name,
    threads: info.threads,
    reps: runsS.length,
    runsS,
    minS: Math.min(...runsS),
    medianS: median(runsS),
    maxS: Math.max(...runsS),
    stages,
    peakRssBytes: peakRssBytes(),
    counts,
    input,
  };
}

/** Sets the segmentation `cls_score` bias so every proposal scores ≈1 (`sat`) or ≈0 (`zero`). */
export function biasDetections(model: SSM, mode: "sat" | "zero"): void {
  const bias = model.roiHeads.boxPredictor.clsScore.bias;
  const k = bias.shape[0];
  const v = new Float32Array(k).fill(mode === "sat" ? -30 : 30);
  v[0] = mode === "sat" ? -30 : 30;
  for (let c = 1; c < k; c++) v[c] = mode === "sat" ? 30 : -30;
  const t = tf.tensor1d(v);
  bias.assign(t);
  t.dispose();
}

/** Inference of one slice with the paper's configuration (random weights). */
export async function runInferenceWorkload(
  opts: InferenceWorkloadOptions,
): Promise<WorkloadResult> {
  const reps = opts.reps ?? 7;
  checkReps(reps, "reps");
  const info = await initBackend(opts.backend ?? "wasm");
  const { image, source } = opts.image
    ? { image: opts.image, source: opts.imageSource ?? "given image" }
    : await defaultSlice(opts.size);
  const model = buildSSM({ transform: { minSize: opts.size, maxSize: 2 * opts.size } });
  biasDetections(model, opts.detections);
  let last = { detections: 0, proposals: 0 };
  const { runsS, profiles, notes } = await timeRuns(
    reps,
    opts.profileReps ?? Math.min(reps, 3),
    () => {
      const out = model.predict(image);
      last = { detections: out.detections.scores.length, proposals: 0 };
    },
  );
  const [ph, pw] = model.transform.paddedSize(model.transform.plan(image.height, image.width).size);
  const proposals = notes.proposals ?? 0;
  last.proposals = proposals;
  const flops = ssmStageFlops(model, [ph, pw], { proposals, maskRois: last.detections });
  return result(
    `inference_${opts.size}_${opts.detections}`,
    info,
    runsS,
    summarise(profiles, flops),
    { ...notes, ...last },
    source,
  );
}

/** One training iteration (segmentation step + classification step) on synthetic data. */
export async function runTrainWorkload(opts: WorkloadOptions): Promise<WorkloadResult> {
  const reps = opts.reps ?? 7;
  checkReps(reps, "reps");
  const info = await initBackend(opts.backend ?? "wasm");
  const data = await openData(
    { size: opts.size, synthetic: { nCls: 8, nSeg: 8, seed: 0 } },
    "train",
  );
  const model = buildSSM({
    transform: { minSize: opts.size, maxSize: 2 * opts.size },
    variant: "scratch",
  });
  const trainer = new Trainer(model, { regime: "scratch", progress: false, outDir: null }, data);
  const { runsS, profiles, notes } = await timeRuns(
    reps,
    opts.profileReps ?? Math.min(reps, 3),
    async () => {
      await trainer.step();
    },
  );
  const padded = model.transform.paddedSize([opts.size, opts.size]);
  // Backward FLOPs are counted as twice the forward ones (input and weight gradients).
  const flops: StageFlops = {};
  const add = (prefix: string, f: StageFlops) => {
    for (const [k, v] of Object.entries(f)) {
      flops[`${prefix}${k}`] = v;
      flops[`${prefix}${k} bwd`] = 2 * v;
    }
  };
  add(
    "seg ",
    ssmStageFlops(model, padded, {
      proposals: notes["seg rois"] ?? 0,
      maskRois: notes["seg positives"] ?? 0,
      boxBranches: 1,
    }),
  );
  // The classification step runs the branch forward on every proposal (ranking) and on the
  // selected ones (the differentiable rows); only the latter are backpropagated.
  const ranked = notes["cls proposals"] ?? 0, selected = notes["cls selected proposals"] ?? 0;
  const clsF = ssmStageFlops(model, padded, {
    proposals: ranked + selected,
    maskRois: 0,
    boxBranches: 1,
  });
  const clsB = ssmStageFlops(model, padded, { proposals: selected, maskRois: 0, boxBranches: 1 });
  for (const [k, v] of Object.entries(clsF)) {
    flops[`cls ${k}`] = v;
    flops[`cls ${k} bwd`] = 2 * (k === "box heads" ? clsB[k] : v);
  }
  return result(
    `train_iter_${opts.size}`,
    info,
    runsS,
    summarise(profiles, flops),
    notes,
    `synthetic training data (${data.source})`,
  );
}
