/**
 * Worker-thread entry of the evaluation pool (`pool.ts`): initialises its own backend, loads the
 * checkpoint into its own model, opens the same split, then evaluates the images it is sent one
 * at a time and posts back each record.
 *
 * Protocol (main → worker): `{ type: "init", init: EvalWorkerInit }`, then
 * `{ type: "task", task: EvalTask }` any number of times, then `{ type: "close" }`.
 * Worker → main: `{ type: "ready", backend }`, `{ type: "record", task, record }` per task, or
 * `{ type: "error", message }` (after which the worker stops).
 *
 * @module
 */

import { initBackend } from "../backend/backend.ts";
import { loadModelFromCheckpoint } from "../cli/common.ts";
import type { SSM } from "../ssm.ts";
import { type EvalData, openEvalData } from "./data.ts";
import { type EvalTask, evaluateTask } from "./evaluate.ts";
import type { EvalWorkerInit } from "./pool.ts";

const scope = self as unknown as {
  postMessage(m: unknown): void;
  onmessage: ((e: MessageEvent) => void) | null;
  close(): void;
};

let model: SSM | null = null;
let data: EvalData | null = null;
let queue: Promise<void> = Promise.resolve();

function fail(e: unknown): void {
  scope.postMessage({ type: "error", message: (e as Error)?.message ?? String(e) });
}

async function init(msg: EvalWorkerInit): Promise<void> {
  const info = await initBackend(msg.backend);
  model = loadModelFromCheckpoint(msg.checkpoint, msg.overrides).model;
  data = await openEvalData(msg.data, msg.split);
  scope.postMessage({ type: "ready", backend: info.name });
}

async function run(task: EvalTask): Promise<void> {
  if (!model || !data) throw new Error("evaluation worker: task before init");
  const record = await evaluateTask(model, data, task);
  scope.postMessage({ type: "record", task, record });
}

scope.onmessage = (e: MessageEvent) => {
  const msg = e.data as { type: string; init?: EvalWorkerInit; task?: EvalTask };
  // Messages are handled strictly in order.
  queue = queue.then(async () => {
    if (msg.type === "init") await init(msg.init!);
    else if (msg.type === "task") await run(msg.task!);
    else if (msg.type === "close") {
      model?.dispose();
      scope.close();
    }
  }).catch((err) => {
    fail(err);
    queue = new Promise(() => {}); // stop handling further messages
  });
};
