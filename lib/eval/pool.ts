/**
 * Evaluation shared out over worker threads: the tfjs wasm and cpu backends compute on one
 * thread, so each Deno Worker owns a backend and a copy of the model (loaded from the
 * checkpoint) and evaluates the images it is handed one at a time, the next image going to
 * whichever worker is free. Records come back tagged with their image index and are merged in
 * index order; since every image seeds its own RoI-batch RNG (see `evaluate.ts`), the merged
 * records are the same as a single-process run's.
 *
 * @example
 * ```ts ignore
 * import { evaluateWithWorkers } from "./pool.ts";
 * const records = await evaluateWithWorkers({
 *   checkpoint: "runs/scratch/model.safetensors", overrides: {}, backend: "wasm",
 *   data: { size: 128 }, split: "test",
 * }, tasks, 2);
 * ```
 *
 * @module
 */

import type { BackendName } from "../backend/backend.ts";
import type { ModelOverrides } from "../cli/common.ts";
import type { SegEvalRecord } from "./segmentation.ts";
import type { EvalDataSpec } from "./data.ts";
import { type ClsEvalRecord, type EvalRecords, type EvalTask, sortRecords } from "./evaluate.ts";

/** What each worker needs to build its model and open the split. */
export interface EvalWorkerInit {
  /** Checkpoint path (file or folder, as `loadModelFromCheckpoint` takes). */
  checkpoint: string;
  /** Overrides of the checkpoint's configuration. */
  overrides: ModelOverrides;
  /** Backend each worker initialises. */
  backend: BackendName;
  /** The data. */
  data: EvalDataSpec;
  /** The split. */
  split: "train" | "test" | "all";
}

/**
 * Evaluates `tasks` with `workers` worker threads (at least 1, at most one per task) and returns
 * the records sorted by index.
 *
 * @param onRecord called after each image (for progress)
 * @throws {Error} the first error a worker reports (naming the image when it failed on one)
 */
export async function evaluateWithWorkers(
  init: EvalWorkerInit,
  tasks: readonly EvalTask[],
  workers: number,
  onRecord?: (task: EvalTask, record: SegEvalRecord | ClsEvalRecord) => void,
): Promise<EvalRecords> {
  const n = Math.max(1, Math.min(Math.floor(workers), tasks.length));
  const out: EvalRecords = { seg: [], cls: [] };
  if (tasks.length === 0) return out;
  const pool: Worker[] = [];
  let next = 0, done = 0;
  try {
    await new Promise<void>((resolve, reject) => {
      let failed = false;
      const failWith = (msg: string) => {
        if (failed) return;
        failed = true;
        reject(new Error(msg));
      };
      const feed = (w: Worker, current: { task: EvalTask | null }) => {
        if (next < tasks.length) {
          current.task = tasks[next++];
          w.postMessage({ type: "task", task: current.task });
        } else current.task = null;
      };
      for (let i = 0; i < n; i++) {
        const w = new Worker(new URL("./worker.ts", import.meta.url).href, { type: "module" });
        pool.push(w);
        const current: { task: EvalTask | null } = { task: null };
        w.onmessage = (e: MessageEvent) => {
          const m = e.data as {
            type: string;
            message?: string;
            task?: EvalTask;
            record?: SegEvalRecord | ClsEvalRecord;
          };
          if (failed) return;
          if (m.type === "ready") feed(w, current);
          else if (m.type === "record") {
            if (m.task!.kind === "seg") out.seg.push(m.record as SegEvalRecord);
            else out.cls.push(m.record as ClsEvalRecord);
            done++;
            onRecord?.(m.task!, m.record!);
            if (done === tasks.length) resolve();
            else feed(w, current);
          } else if (m.type === "error") {
            const t = current.task;
            failWith(
              `evaluation worker ${i + 1}` +
                (t ? ` (${t.kind} image ${t.index})` : "") + `: ${m.message}`,
            );
          }
        };
        w.onerror = (e: ErrorEvent) => {
          e.preventDefault();
          failWith(`evaluation worker ${i + 1}: ${e.message}`);
        };
        w.postMessage({ type: "init", init });
      }
    });
  } finally {
    for (const w of pool) w.terminate();
  }
  return sortRecords(out);
}
