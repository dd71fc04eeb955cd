/**
 * A reproduction run (`deno task reproduce`): trains the stage-I models the selected pretrained
 * variants need (one per backbone, shared by its `single` and `parallel` variants), trains and
 * evaluates every selected variant, then writes the paper's three tables for all finished
 * variants of the run folder:
 *
 * ```
 * results/<run>/run.json                    profile and data of the run
 * results/<run>/stage1/<backbone>/          stage-I checkpoints, train_log.jsonl, stage1.json
 * results/<run>/variants/<variant>/         checkpoints, train_log.jsonl, model.safetensors, result.json
 * results/<run>/table{1,2,3}.{md,csv,json,png}
 * results/<run>/tables.md                   the three tables with the run's settings
 * results/<run>/reproduce.log               what this command printed
 * ```
 *
 * Jobs whose result file exists are skipped, so an interrupted run continues where it stopped.
 * With `jobs > 1` independent jobs run in parallel worker threads (each with its own backend;
 * the wasm and cpu backends compute on one thread), respecting the stage-I → variant order.
 *
 * @module
 */

import { existsSync, mkdirSync, readdirSync, readFileSync } from "node:fs";
import { appendFileSync } from "node:fs";
import { join } from "node:path";
import type { BackendName } from "../backend/backend.ts";
import { writeFileAtomic, writeTextFileAtomic } from "../data/atomic.ts";
import { type CliIo, consoleIo, formatDuration } from "../cli/common.ts";
import { type EvalDataSpec, openEvalData } from "../eval/data.ts";
import {
  type Table,
  table1,
  table2,
  table3,
  tableToCsv,
  tableToJson,
  tableToMarkdown,
  tableToText,
} from "../eval/tables.ts";
import { barChartPng, type BarChartSpec } from "../viz/charts.ts";
import {
  type JobProgress,
  readResult,
  type ReproJob,
  runJob,
  STAGE1_RESULT,
  type Stage1Result,
  VARIANT_RESULT,
  type VariantResult,
} from "./jobs.ts";
import { minAreaFor, type ReproProfile, sizeFor } from "./profiles.ts";
import { VARIANTS, type VariantSpec } from "./variants.ts";

/** Options of {@linkcode reproduce}. */
export interface ReproduceOptions {
  /** Settings. */
  profile: ReproProfile;
  /** Output folder (`results/<run>`). */
  runDir: string;
  /** Variants to train and evaluate. */
  variants: readonly VariantSpec[];
  /** Backend (already initialised in this process when `jobs` is 1). */
  backend: BackendName;
  /** Parallel worker threads (1: everything in this process). */
  jobs: number;
  /** The data. */
  data: EvalDataSpec;
  /** Where messages go (default the console). */
  io?: CliIo;
  /** Seconds between status lines when stderr is not a terminal (default 15). */
  statusInterval?: number;
}

/** What {@linkcode reproduce} did. */
export interface ReproduceSummary {
  /** Results of every finished variant in the run folder, in the canonical order. */
  results: VariantResult[];
  /** The three tables. */
  tables: Table[];
  /** Jobs run now. */
  ran: string[];
  /** Jobs skipped as already finished. */
  skipped: string[];
  /** Jobs that failed, with their error. */
  failed: { job: string; message: string }[];
  /** Files written for the tables. */
  files: string[];
  /** Wall-clock seconds. */
  seconds: number;
}

interface PlannedJob {
  name: string;
  job: ReproJob;
  deps: string[];
  cost: number;
}

/**
 * Relative cost of one training iteration of a backbone (measured on wasm, ResNet18-2 = 1),
 * growing with the square of the size ratio when 3-stage backbones run at a larger size.
 */
function iterationCost(profile: ReproProfile, depth: number, stages: 2 | 3): number {
  const r = sizeFor(profile, stages) / profile.size;
  return (depth === 34 ? 2 : 1) * (stages === 3 ? 1.6 : 1) * r * r;
}

/** The settings of a run as stored in `run.json` (a second run must use the same). */
export function runSettings(profile: ReproProfile, data: EvalDataSpec): Record<string, unknown> {
  return { profile, data };
}

/** Checks or writes `run.json`: a run folder holds results of one profile and data only. */
export async function checkRunFolder(
  runDir: string,
  profile: ReproProfile,
  data: EvalDataSpec,
): Promise<void> {
  mkdirSync(runDir, { recursive: true });
  const path = join(runDir, "run.json");
  const settings = runSettings(profile, data);
  if (existsSync(path)) {
    const prev = JSON.parse(readFileSync(path, "utf8"));
    if (JSON.stringify(prev) !== JSON.stringify(settings)) {
      throw new Error(
        `${path}: this run folder was made with other settings (profile or data); ` +
          "use another --run NAME or delete the folder",
      );
    }
    return;
  }
  await writeTextFileAtomic(path, JSON.stringify(settings, null, 2) + "\n");
}

/**
 * The data of a backbone's jobs: the run's data at the backbone's input size and minimum
 * instance area (3-stage backbones may run at a larger size, see `ReproProfile.size3`).
 */
export function jobData(profile: ReproProfile, data: EvalDataSpec, stages: 2 | 3): EvalDataSpec {
  const size = sizeFor(profile, stages);
  if (size === profile.size) return data;
  return { ...data, size, minArea: minAreaFor(profile, stages) };
}

/** The jobs still to do for `variants` in `runDir` (finished ones are listed as skipped). */
export function planJobs(
  runDir: string,
  profile: ReproProfile,
  data: EvalDataSpec,
  variants: readonly VariantSpec[],
): { jobs: PlannedJob[]; skipped: string[] } {
  const jobs: PlannedJob[] = [];
  const skipped: string[] = [];
  const dataFor = (stages: 2 | 3) => jobData(profile, data, stages);
  const stage1Dir = (b: string) => join(runDir, "stage1", b);
  const pendingVariants = variants.filter((v) => {
    const done = existsSync(join(runDir, "variants", v.name, VARIANT_RESULT));
    if (done) skipped.push(v.name);
    return !done;
  });
  const backbones = new Map<string, VariantSpec>();
  for (const v of pendingVariants) if (v.pretrained) backbones.set(v.backbone, v);
  const stage1Iters = profile.stage1.iterations ?? profile.stage1.epochs * 100;
  const trainIters = profile.train.iterations ?? profile.train.epochs * 100;
  // Segmentation-only iterations (stage I, a warm-up without the classification step) cost
  // about half of a single-shot iteration.
  const warm = profile.scratchWarmup;
  const warmupIters = warm ? warm.iterations * (warm.classify === false ? 0.5 : 1) : 0;
  for (const [b, v] of backbones) {
    const name = `${b}-stage1`;
    if (existsSync(join(stage1Dir(b), STAGE1_RESULT))) {
      skipped.push(name);
      continue;
    }
    jobs.push({
      name,
      job: {
        kind: "stage1",
        backbone: b,
        depth: v.depth,
        stages: v.stages,
        dir: stage1Dir(b),
        profile,
        data: dataFor(v.stages),
      },
      deps: [],
      cost: 0.5 * stage1Iters * iterationCost(profile, v.depth, v.stages),
    });
  }
  for (const v of pendingVariants) {
    const deps = v.pretrained && jobs.some((j) => j.name === `${v.backbone}-stage1`)
      ? [`${v.backbone}-stage1`]
      : [];
    jobs.push({
      name: v.name,
      job: {
        kind: "variant",
        variant: v,
        dir: join(runDir, "variants", v.name),
        stage1Dir: v.pretrained ? stage1Dir(v.backbone) : null,
        profile,
        data: dataFor(v.stages),
      },
      deps,
      cost: (trainIters + (v.regime === "scratch" ? warmupIters : 0)) *
        iterationCost(profile, v.depth, v.stages),
    });
  }
  return { jobs, skipped };
}

/** Every finished variant result in a run folder, in the canonical variant order. */
export function collectResults(runDir: string): VariantResult[] {
  const dir = join(runDir, "variants");
  if (!existsSync(dir)) return [];
  const present = new Set(readdirSync(dir));
  const out: VariantResult[] = [];
  for (const v of VARIANTS) {
    if (!present.has(v.name)) continue;
    const r = readResult<VariantResult>(join(dir, v.name, VARIANT_RESULT));
    if (r) out.push(r);
  }
  return out;
}

/** The settings lines printed under each table. */
export function tableNotes(profile: ReproProfile, source: string, backend: string): string[] {
  const p = profile;
  return [
    `profile '${p.name}': ${p.size} px${
      (p.size3 ?? p.size) !== p.size ? ` (3-stage backbones ${p.size3} px)` : ""
    }, update rule ${p.updateRule}, Adam (weight decay added to ` +
    `the gradient), seed ${p.seed}; backend ${backend}; data: ${source}`,
    ...(p.reduced.length
      ? [`reduced settings: ${p.reduced.join("; ")}`]
      : ["the paper's settings"]),
  ];
}

/** The three tables of a run's results. */
export function buildTables(results: readonly VariantResult[], notes: string[]): Table[] {
  return [
    table1(
      results.map((r) => ({
        model: r.model,
        totalParams: r.totalParams,
        clsTrainableParams: r.clsTrainableParams,
        stage1Seconds: r.stage1Seconds,
        trainSeconds: r.trainSeconds,
      })),
      [
        ...notes,
        "times are the sums of the training iterations' wall-clock times; pretrained variants " +
        "include their (shared) stage-I pretraining; jobs run in parallel share the CPU",
      ],
    ),
    table2(
      results.map((r) => ({ model: r.model, segmentation: r.segmentation })),
      [
        ...notes,
        "AP@…: the paper's protocol (per-image AP averaged over all test slices); COCO: " +
        `pycocotools segm AP with maxDets ${results[0]?.segmentation.segm.maxDets ?? 128}; ` +
        "rank by AP@[.5:.95]",
      ],
    ),
    table3(
      results.map((r) => ({ model: r.model, classification: r.classification })),
      [...notes, "F1 (paper): per-class F1 weighted 0.45/0.35/0.20; rank by it"],
    ),
  ];
}

/** Chart of a table: the table's main numbers as grouped bars per model. */
export function tableChart(t: Table): BarChartSpec {
  const models = t.rows.map((r) => String(r.model));
  const series = (keys: [string, string][], scale = 1) =>
    keys.map(([key, name]) => ({
      name,
      values: t.rows.map((r) => (typeof r[key] === "number" ? (r[key] as number) * scale : null)),
    }));
  if (t.id === "table1") {
    return {
      title: t.title,
      categories: models,
      series: series(
        [["total_params", "total"], ["cls_trainable_params", "classification step"]],
        1e-6,
      ),
      yLabel: "parameters (millions)",
      showValues: false,
    };
  }
  if (t.id === "table2") {
    return {
      title: t.title,
      categories: models,
      series: series([
        ["paper_ap50", "AP 0.5"],
        ["paper_ap75", "AP 0.75"],
        ["paper_map", "AP .5:.95"],
        ["coco_ap", "COCO AP .5:.95"],
      ]).map((s) => ({ ...s, values: s.values.map((v) => (v !== null && v < 0 ? null : v)) })),
      yMax: 1,
      yLabel: "average precision (paper protocol; COCO segm)",
      showValues: false,
    };
  }
  return {
    title: t.title,
    categories: models,
    series: series([
      ["sens_covid_19", "COVID-19 sensitivity"],
      ["accuracy", "accuracy"],
      ["paper_f1", "F1 (paper)"],
    ], 100),
    yMax: 100,
    yLabel: "%",
    format: (v) => v.toFixed(0),
    showValues: false,
  };
}

/** Writes each table as Markdown, CSV, JSON and a PNG chart, plus `tables.md`; returns the paths. */
export async function writeTables(runDir: string, tables: readonly Table[]): Promise<string[]> {
  const files: string[] = [];
  for (const t of tables) {
    const base = join(runDir, t.id);
    await writeTextFileAtomic(`${base}.md`, tableToMarkdown(t));
    await writeTextFileAtomic(`${base}.csv`, tableToCsv(t));
    await writeTextFileAtomic(`${base}.json`, tableToJson(t));
    files.push(`${base}.md`, `${base}.csv`, `${base}.json`);
    if (t.rows.length) {
      await writeFileAtomic(`${base}.png`, barChartPng(tableChart(t)));
      files.push(`${base}.png`);
    }
  }
  await writeTextFileAtomic(join(runDir, "tables.md"), tables.map(tableToMarkdown).join("\n"));
  files.push(join(runDir, "tables.md"));
  return files;
}

/** Runs a reproduction (see the module docs) and returns what it did. */
export async function reproduce(opts: ReproduceOptions): Promise<ReproduceSummary> {
  const io = opts.io ?? consoleIo();
  const t0 = performance.now();
  const logPath = join(opts.runDir, "reproduce.log");
  await checkRunFolder(opts.runDir, opts.profile, opts.data);
  const say = (s: string) => {
    io.err(s);
    appendFileSync(logPath, `${new Date().toISOString()} ${s}\n`);
  };
  // Open (and, for synthetic data, generate) the data of each input size once before any
  // worker does.
  const stageSet = [...new Set(opts.variants.map((v) => v.stages))].sort();
  const specs = new Map<number, EvalDataSpec>();
  for (const st of stageSet) {
    const spec = jobData(opts.profile, opts.data, st);
    specs.set(spec.size, spec);
  }
  let source = "";
  for (const spec of specs.values()) {
    const trainData = await openEvalData(spec, "train");
    const testData = await openEvalData(spec, "test");
    source ||= trainData.source;
    say(
      `data: ${trainData.source}: train ${trainData.seg?.length ?? 0} segmentation / ` +
        `${trainData.cls?.length ?? 0} classification slices, test ${testData.seg?.length ?? 0} / ${
          testData.cls?.length ?? 0
        }`,
    );
  }
  const { jobs, skipped } = planJobs(opts.runDir, opts.profile, opts.data, opts.variants);
  if (skipped.length) say(`already finished (skipped): ${skipped.join(", ")}`);
  const nJobs = Math.max(1, Math.floor(opts.jobs));
  if (jobs.length) {
    say(
      `${jobs.length} job(s) to run: ${jobs.map((j) => j.name).join(", ")}; ` +
        (nJobs > 1
          ? `${nJobs} in parallel, each in its own worker thread with its own ${opts.backend} backend`
          : `one at a time in this process (${opts.backend})`),
    );
  }
  const ran: string[] = [];
  const failed: { job: string; message: string }[] = [];
  const status = new Map<string, JobProgress>();
  const totalCost = jobs.reduce((a, j) => a + j.cost, 0) || 1;
  let doneCost = 0;
  let lastStatus = performance.now();
  const interval = (opts.statusInterval ?? 15) * 1000;
  const tty = (io.errIsTTY ?? false) && io.errRaw !== undefined;
  const statusLine = () => {
    const running = [...status.values()].map((p) =>
      `${p.job} ${p.phase} ${p.done}/${p.total}` +
      (p.phase === "train" && p.segLoss !== undefined ? ` seg ${p.segLoss.toFixed(2)}` : "") +
      (p.clsLoss != null ? ` cls ${p.clsLoss.toFixed(2)}` : "")
    );
    let runningCost = 0;
    for (const [name, p] of status) {
      const j = jobs.find((x) => x.name === name);
      if (j && p.phase === "train" && p.total > 0) runningCost += (j.cost * p.done) / p.total;
      else if (j && p.phase === "eval") runningCost += j.cost;
    }
    const frac = Math.min(1, (doneCost + runningCost) / totalCost);
    const el = (performance.now() - t0) / 1000;
    const eta = frac > 0.02 ? el / frac - el : NaN;
    return `reproduce ${ran.length + failed.length}/${jobs.length} jobs, ${
      (100 * frac).toFixed(0)
    }% ` +
      `${formatDuration(el)}${Number.isFinite(eta) ? ` ETA ${formatDuration(eta)}` : ""}` +
      (running.length ? ` | ${running.join(" | ")}` : "");
  };
  const onProgress = (p: JobProgress) => {
    status.set(p.job.endsWith("-stage1") ? p.job : p.job, p);
    const now = performance.now();
    if (tty) io.errRaw!(`\r\x1b[2K${statusLine()}`.slice(0, 400));
    else if (now - lastStatus >= interval) {
      lastStatus = now;
      io.err(statusLine());
    }
  };
  const finish = (j: PlannedJob, err: unknown, result?: Stage1Result | VariantResult) => {
    status.delete(j.name);
    if (tty) io.errRaw!("\r\x1b[2K");
    doneCost += j.cost;
    if (err) {
      const message = (err as Error)?.message ?? String(err);
      failed.push({ job: j.name, message });
      say(`FAILED ${j.name}: ${message}`);
    } else {
      ran.push(j.name);
      if (result && "segmentation" in result) {
        const r = result as VariantResult;
        say(
          `done ${j.name} in ${formatDuration(r.trainSeconds)}: lesion AP@0.5 ` +
            `${r.segmentation.paper.ap50.toFixed(3)} (COCO ${
              r.segmentation.segm.ap50.toFixed(3)
            }), ` +
            `accuracy ${(100 * r.classification.metrics.accuracy).toFixed(1)}%`,
        );
      } else if (result) {
        const r = result as Stage1Result;
        say(`done ${j.name}: ${r.iterations} iterations in ${formatDuration(r.seconds)}`);
      }
    }
  };
  await runScheduled(jobs, nJobs, opts.backend, onProgress, finish);
  const results = collectResults(opts.runDir);
  const tables = buildTables(
    results,
    tableNotes(opts.profile, source.replace(/ \(.*\)$/, ""), opts.backend),
  );
  const files = results.length ? await writeTables(opts.runDir, tables) : [];
  return { results, tables, ran, skipped, failed, files, seconds: (performance.now() - t0) / 1000 };
}

/**
 * Runs the jobs with at most `parallel` at a time, a job starting once its dependencies
 * succeeded (a job whose dependency failed fails too). Longest jobs start first.
 */
async function runScheduled(
  jobs: PlannedJob[],
  parallel: number,
  backend: BackendName,
  onProgress: (p: JobProgress) => void,
  finish: (j: PlannedJob, err: unknown, result?: Stage1Result | VariantResult) => void,
): Promise<void> {
  const state = new Map<string, "pending" | "running" | "ok" | "failed">(
    jobs.map((j) => [j.name, "pending"]),
  );
  const order = [...jobs].sort((a, b) =>
    // stage-I jobs unblock others: first; then by cost, largest first
    (a.job.kind === "stage1" ? 0 : 1) - (b.job.kind === "stage1" ? 0 : 1) || b.cost - a.cost
  );
  const runOne = async (j: PlannedJob): Promise<void> => {
    state.set(j.name, "running");
    try {
      const result = parallel > 1
        ? await runInWorker(j.job, backend, onProgress)
        : await runJob(j.job, onProgress);
      state.set(j.name, "ok");
      finish(j, null, result);
    } catch (e) {
      state.set(j.name, "failed");
      finish(j, e);
    }
  };
  const running = new Set<Promise<void>>();
  while (true) {
    for (const j of order) {
      if (state.get(j.name) !== "pending") continue;
      if (j.deps.some((d) => state.get(d) === "failed")) {
        state.set(j.name, "failed");
        finish(j, new Error(`its stage-I model (${j.deps.join(", ")}) failed`));
      }
    }
    const ready = order.filter((j) =>
      state.get(j.name) === "pending" && j.deps.every((d) => state.get(d) === "ok")
    );
    while (running.size < parallel && ready.length) {
      const p: Promise<void> = runOne(ready.shift()!).finally(() => running.delete(p));
      running.add(p);
    }
    if (running.size === 0) break;
    await Promise.race(running);
  }
}

function runInWorker(
  job: ReproJob,
  backend: BackendName,
  onProgress: (p: JobProgress) => void,
): Promise<Stage1Result | VariantResult> {
  return new Promise((resolve, reject) => {
    const w = new Worker(new URL("./worker.ts", import.meta.url).href, { type: "module" });
    const end = () => w.terminate();
    w.onmessage = (e: MessageEvent) => {
      const m = e.data as {
        type: string;
        progress?: JobProgress;
        result?: Stage1Result | VariantResult;
        message?: string;
      };
      if (m.type === "progress") onProgress(m.progress!);
      else if (m.type === "done") {
        end();
        resolve(m.result!);
      } else if (m.type === "error") {
        end();
        reject(new Error(m.message));
      }
    };
    w.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      end();
      reject(new Error(e.message));
    };
    w.postMessage({ backend, job });
  });
}

/** The three tables as terminal text. */
export function tablesText(tables: readonly Table[]): string {
  return tables.map(tableToText).join("\n");
}
