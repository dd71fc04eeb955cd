/**
 * Worker-thread entry of a reproduction run: receives `{ backend, job }`, initialises its own
 * backend, runs the job (`jobs.ts`) and posts `{ type: "progress", progress }` messages, then
 * `{ type: "done", result }` or `{ type: "error", message }`.
 *
 * @module
 */

import { initBackend } from "../backend/backend.ts";
import type { BackendName } from "../backend/backend.ts";
import { type ReproJob, runJob } from "./jobs.ts";

const scope = self as unknown as {
  postMessage(m: unknown): void;
  onmessage: ((e: MessageEvent) => void) | null;
};

scope.onmessage = async (e: MessageEvent) => {
  const { backend, job } = e.data as { backend: BackendName; job: ReproJob };
  try {
    await initBackend(backend);
    let last = 0;
    const result = await runJob(job, (progress) => {
      // at most ~4 messages a second (every eval image / iteration otherwise)
      const now = performance.now();
      if (progress.done === progress.total || now - last > 250) {
        last = now;
        scope.postMessage({ type: "progress", progress });
      }
    });
    scope.postMessage({ type: "done", result });
  } catch (err) {
    scope.postMessage({ type: "error", message: (err as Error)?.message ?? String(err) });
  }
};
