/**
 * Worker-thread entry of the synthetic dataset writer: receives
 * `{ jobs, outDir, size }`, runs each job and posts `{ results }` (or `{ error }`).
 *
 * @example
 * ```ts ignore
 * const w = new Worker(new URL("./synthetic_worker.ts", import.meta.url).href, { type: "module" });
 * w.postMessage({ jobs: [], outDir: "/tmp/out", size: 128 });
 * ```
 * @module
 */

import { runSliceJob, type SliceJob, type SliceJobResult } from "./synthetic_jobs.ts";

interface WorkerScope {
  onmessage: ((e: MessageEvent) => void) | null;
  postMessage(msg: unknown): void;
}

const scope = self as unknown as WorkerScope;
scope.onmessage = async (e: MessageEvent) => {
  const { jobs, outDir, size } = e.data as { jobs: SliceJob[]; outDir: string; size: number };
  try {
    const results: SliceJobResult[] = [];
    for (const job of jobs) results.push(await runSliceJob(job, outDir, size));
    scope.postMessage({ results });
  } catch (err) {
    scope.postMessage({ error: err instanceof Error ? err.message : String(err) });
  }
};
