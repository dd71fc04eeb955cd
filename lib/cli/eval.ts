/**
 * `deno task eval --checkpoint C [options]`: evaluates a trained SSM on the test split of the
 * segmentation data (lesion AP, Table-2 style: the paper's protocol and COCO segm/bbox with
 * maxDets 128) and of the classification data (Table-3 style: per-class sensitivity and precision,
 * accuracy, macro / weighted / paper F1), prints both tables and writes them as JSON.
 *
 * With no data flags it evaluates on the embedded synthetic CT data. On single-threaded backends
 * (wasm, cpu) the images are shared out over worker threads, each with its own copy of the
 * model (`--workers N`, default: one per CPU core; GPU backends default to 1); the results are
 * identical to a single-process run.
 *
 * @example
 * ```sh
 * deno task eval --checkpoint results/quick/variants/r18-3-scratch --size 96 --min-area 22 \
 *   --synthetic-cls 150 --synthetic-seg 60
 * deno task eval --checkpoint ssm.safetensors --seg-data CNCB/seg --seg-lesion-labels 2,3 \
 *   --cls-data COVIDx/test_COVIDx_CT.txt --backend tensorflow-gpu --out eval.json
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import { basename, dirname, join } from "node:path";
import { BACKEND_FLAG_HELP, parseBackendFlag } from "../backend/flag.ts";
import { type BackendInfo, type BackendName, initBackend } from "../backend/backend.ts";
import { writeTextFileAtomic } from "../data/atomic.ts";
import { type EvalDataSpec, openEvalData } from "../eval/data.ts";
import {
  type EvalRecords,
  type EvalReport,
  evalTasks,
  evaluateModel,
  evaluationReport,
} from "../eval/evaluate.ts";
import { evaluateWithWorkers } from "../eval/pool.ts";
import { type Table, table2, table3, tableToText } from "../eval/tables.ts";
import {
  type CliIo,
  consoleIo,
  loadModelFromCheckpoint,
  type ModelOverrides,
  ProgressBar,
} from "./common.ts";

/** Usage text of `deno task eval`. */
export const EVAL_USAGE: string = `Usage: deno task eval --checkpoint FILE [options]

Evaluates a trained model on the test split: lesion AP (the paper's protocol and COCO, maxDets
128) on the segmentation data and classification metrics on the classification data.

Options:
  --checkpoint FILE       weights (.safetensors / the authors' .pth, or a training folder)
  --seg-data DIR          segmentation data: DIR/images, DIR/masks [DIR/test.txt]
  --seg-lesion-labels L   mask labels that are lesions (default 2,3 = CNCB; MedSeg: 1,2)
  --cls-data PATH         classification split file or class-prefixed folder [PATH/test.txt]
  --cls-test-data FILE    classification test split file (overrides the split of --cls-data)
                          (no data flags: the embedded synthetic data)
  --split S               test | train | all (default test)
  --size PX               model input size (default: the checkpoint's)
  --min-area N            lesion instances need area > N px at the model size (default 100)
  --synthetic-cls N       synthetic classification slices (default 300)
  --synthetic-seg N       synthetic segmentation slices (default 100)
  --synthetic-seed N      synthetic data seed (default 0)
  --max-dets N            COCO detections per image (default 128, the paper's)
  --workers N             worker threads (default: CPU cores on wasm/cpu, 1 on GPU backends)
  --out FILE              JSON output (default: eval-<split>.json beside the checkpoint)
  ${BACKEND_FLAG_HELP}
  --score-thresh X        detection score threshold (default: the checkpoint's; paper 0.75,
                          torchvision 0.05 — a low threshold ranks more detections for AP)
  --depth / --stages / --variant / --proposal-filter   override the checkpoint's configuration
  -q, --quiet             no progress output
  -h, --help              show this help
`;

/** The JSON written by `deno task eval`. */
export interface EvalOutput {
  /** Weights file evaluated. */
  checkpoint: string;
  /** Model summary line. */
  model: string;
  /** Data description. */
  data: string;
  /** Split. */
  split: string;
  /** Backend. */
  backend: string;
  /** Worker threads used (1: in process). */
  workers: number;
  /** Wall-clock seconds of the evaluation. */
  seconds: number;
  /** Metrics. */
  report: EvalReport;
  /** Table 2 and Table 3 rows of this model. */
  tables: Table[];
}

class UsageError extends Error {}

function int(v: string | undefined, flag: string, min = 0): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || v.trim() === "") {
    throw new UsageError(`${flag} must be an integer >= ${min}, got '${v}'`);
  }
  return n;
}

/** The default number of evaluation workers for a backend. */
export function defaultWorkers(backend: BackendInfo): number {
  const single = backend.name === "wasm" || backend.name === "cpu";
  return single ? Math.max(1, navigator.hardwareConcurrency ?? 1) : 1;
}

/** Runs `deno task eval`; returns the exit code (0 ok, 1 failure, 2 usage error). */
export async function evalMain(args: string[], io: CliIo = consoleIo()): Promise<number> {
  let backendName: BackendName;
  let v: Record<string, string | boolean | undefined>;
  let overrides: ModelOverrides;
  let split: "train" | "test" | "all";
  try {
    const { backend, rest } = parseBackendFlag(args);
    backendName = backend;
    ({ values: v } = parseArgs({
      args: rest,
      options: {
        checkpoint: { type: "string" },
        "seg-data": { type: "string" },
        "seg-lesion-labels": { type: "string" },
        "cls-data": { type: "string" },
        "cls-test-data": { type: "string" },
        split: { type: "string", default: "test" },
        size: { type: "string" },
        "min-area": { type: "string" },
        "synthetic-cls": { type: "string" },
        "synthetic-seg": { type: "string" },
        "synthetic-seed": { type: "string" },
        "max-dets": { type: "string" },
        workers: { type: "string" },
        out: { type: "string" },
        depth: { type: "string" },
        stages: { type: "string" },
        variant: { type: "string" },
        "proposal-filter": { type: "string" },
        "score-thresh": { type: "string" },
        quiet: { type: "boolean", short: "q", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    }));
    if (v.help) {
      io.out(EVAL_USAGE);
      return 0;
    }
    if (!v.checkpoint) throw new UsageError("--checkpoint is required");
    if (!["test", "train", "all"].includes(v.split as string)) {
      throw new UsageError(`--split must be test, train or all, got '${v.split}'`);
    }
    split = v.split as "train" | "test" | "all";
    const variant = v.variant as string | undefined;
    if (variant !== undefined && !["single", "parallel", "scratch"].includes(variant)) {
      throw new UsageError(`--variant must be single, parallel or scratch, got '${variant}'`);
    }
    const filter = v["proposal-filter"] as string | undefined;
    if (filter !== undefined && !["reference", "torchvision"].includes(filter)) {
      throw new UsageError(`--proposal-filter must be reference or torchvision, got '${filter}'`);
    }
    const depth = int(v.depth as string, "--depth", 18);
    const stages = int(v.stages as string, "--stages", 2);
    overrides = {
      depth: depth as 18 | 34 | 50 | undefined,
      stages: stages as 2 | 3 | 4 | undefined,
      variant: variant as ModelOverrides["variant"],
      proposalFilter: filter as ModelOverrides["proposalFilter"],
      minSize: int(v.size as string, "--size", 1),
      scoreThresh: scoreThresh(v["score-thresh"] as string | undefined),
    };
  } catch (e) {
    io.err(`error: ${(e as Error).message}\n\n${EVAL_USAGE}`);
    return 2;
  }

  let info: BackendInfo;
  let loaded;
  let spec: EvalDataSpec;
  let workers: number;
  let maxDets: number;
  try {
    info = await initBackend(backendName);
    loaded = loadModelFromCheckpoint(v.checkpoint as string, overrides);
    const labels = (v["seg-lesion-labels"] as string | undefined)?.split(",").map((s) => {
      const n = Number(s.trim());
      if (!Number.isInteger(n) || n < 0) {
        throw new UsageError(`--seg-lesion-labels: '${s}' is not a label (non-negative integer)`);
      }
      return n;
    });
    spec = {
      segData: (v["seg-data"] as string) ?? null,
      segLesionLabels: labels ?? null,
      clsData: (v["cls-data"] as string) ?? null,
      clsTestData: (v["cls-test-data"] as string) ?? null,
      size: loaded.config.transform.minSize,
      minArea: int(v["min-area"] as string, "--min-area") ?? 100,
      synthetic: {
        nCls: int(v["synthetic-cls"] as string, "--synthetic-cls", 1) ?? 300,
        nSeg: int(v["synthetic-seg"] as string, "--synthetic-seg", 1) ?? 100,
        seed: int(v["synthetic-seed"] as string, "--synthetic-seed") ?? 0,
      },
    };
    maxDets = int(v["max-dets"] as string, "--max-dets", 1) ?? 128;
    workers = int(v.workers as string, "--workers", 1) ?? defaultWorkers(info);
  } catch (e) {
    const usage = e instanceof UsageError;
    io.err(`error: ${(e as Error).message}${usage ? `\n\n${EVAL_USAGE}` : ""}`);
    loaded?.model.dispose();
    return usage ? 2 : 1;
  }

  const { model, config, weightsPath } = loaded;
  const quiet = v.quiet as boolean;
  const t0 = performance.now();
  let records: EvalRecords;
  let data;
  try {
    data = await openEvalData(spec, split);
    const tasks = evalTasks(data);
    if (tasks.length === 0) throw new Error(`no ${split} images in ${data.source}`);
    workers = Math.min(workers, tasks.length);
    const c = config;
    const modelLine = `ResNet${c.backbone.depth}, ${c.backbone.stages} stages, ${c.variant}, ` +
      `${c.transform.minSize} px, ${c.proposalFilter}`;
    if (!quiet) {
      io.err(
        `eval: ${weightsPath} (${modelLine}; config from ${loaded.configSource}) on ${info.name}`,
      );
      io.err(
        `data: ${data.source}, ${split} split: ${data.seg?.length ?? 0} segmentation and ` +
          `${data.cls?.length ?? 0} classification slices; lesion instances > ${spec.minArea} px`,
      );
      io.err(
        workers > 1
          ? `parallel: ${workers} worker threads, each with its own ${info.name} backend and model ` +
            `(${info.name} computes on one thread; --workers 1 runs in this process)`
          : `running in this process (1 worker${
            info.name === "wasm" || info.name === "cpu" ? "; --workers N to use N cores" : ""
          })`,
      );
    }
    const bar = new ProgressBar(
      tasks.length,
      "eval",
      quiet ? { out: () => {}, err: () => {} } : io,
    );
    const tick = (t: { kind: string; index: number }) =>
      bar.tick(`${t.kind === "seg" ? "segmentation" : "classification"} ${t.index + 1}`);
    if (workers > 1) {
      model.dispose();
      records = await evaluateWithWorkers(
        {
          checkpoint: weightsPath,
          overrides,
          backend: info.name,
          data: spec,
          split,
        },
        tasks,
        workers,
        tick,
      );
    } else {
      records = await evaluateModel(model, data, tasks, tick);
      model.dispose();
    }
    const seconds = (performance.now() - t0) / 1000;
    const report = evaluationReport(records, { maxDets });
    const name = basename(weightsPath).replace(/\.(safetensors|pth)$/, "");
    const notes = [
      `${modelLine}; ${data.source}, ${split} split; ${info.name}, ${workers} worker(s), ` +
      `${seconds.toFixed(1)} s`,
    ];
    const tables: Table[] = [];
    if (report.segmentation) {
      const s = report.segmentation;
      tables.push(table2([{ model: name, segmentation: s }], [
        ...notes,
        `${s.images} slices (${s.imagesWithLesions} with lesions), ${s.gtInstances} lesions, ` +
        `${s.detections} detections; AP@…: the paper's protocol; COCO: segm, maxDets ${maxDets}`,
        `COCO bbox AP@0.5 ${s.bbox.ap50.toFixed(4)}, AP@0.75 ${s.bbox.ap75.toFixed(4)}, ` +
        `AP@[.5:.95] ${s.bbox.ap.toFixed(4)}`,
      ]));
    }
    if (report.classification) {
      const m = report.classification.metrics;
      tables.push(table3([{ model: name, classification: report.classification }], [
        ...notes,
        `confusion matrix (rows true, columns predicted; ${
          report.classification.classNames.join(", ")
        }): ` +
        JSON.stringify(m.confusionMatrix),
      ]));
    }
    for (const t of tables) io.out(tableToText(t));
    const out = (v.out as string | undefined) ?? join(dirname(weightsPath), `eval-${split}.json`);
    const json: EvalOutput = {
      checkpoint: weightsPath,
      model: modelLine,
      data: data.source,
      split,
      backend: info.name,
      workers,
      seconds,
      report,
      tables,
    };
    await writeTextFileAtomic(out, JSON.stringify(json, null, 2) + "\n");
    if (!quiet) io.err(`wrote ${out}`);
    return 0;
  } catch (e) {
    io.err(`error: ${(e as Error).message}`);
    try {
      model.dispose();
    } catch { /* already disposed */ }
    return 1;
  }
}

if (import.meta.main) {
  Deno.exit(await evalMain(Deno.args));
}

function scoreThresh(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const x = Number(v);
  if (!(x >= 0 && x < 1)) {
    throw new UsageError(`--score-thresh must be a number in [0, 1), got '${v}'`);
  }
  return x;
}
