/**
 * Training checkpoints: a folder holding the model weights (`model.safetensors`, PyTorch layout,
 * the model config in `__metadata__`), the optimiser moments (`optimizer.safetensors`) and the
 * loop state (`state.json`: iteration, epoch, RNG states, data order, best loss). A checkpoint is
 * written into a temporary folder and renamed into place, so a crash never leaves half a
 * checkpoint; `latest` (a one-line text file, also replaced atomically) names the newest one.
 *
 * @example
 * ```ts
 * import { latestCheckpoint } from "@covid-ssm/ssm";
 * console.log(latestCheckpoint("runs/scratch/checkpoints")); // null before the first one
 * ```
 *
 * @module
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { SSM } from "../ssm.ts";
import { loadWeights, saveWeights, SSM_CONFIG_KEY } from "../nn/weights.ts";
import { readSafetensors, writeSafetensors } from "../nn/safetensors.ts";
import type { HostTensor } from "../nn/host_tensor.ts";
import type { Adam, AdamState } from "./adam.ts";

/** Loop state stored with a checkpoint. */
export interface LoopState {
  /** Iterations completed. */
  iteration: number;
  /** Current epoch (0-based). */
  epoch: number;
  /** The trainer's RNG state. */
  rng: number[];
  /** The model's RNG state (RoI-batch padding). */
  modelRng: number[];
  /** Classification order of the current epoch. */
  clsOrder: number[];
  /** Best segmentation loss so far (scratch regime). */
  bestSegLoss: number;
  /** The training configuration, for reference. */
  trainConfig: unknown;
}

/** Writes a checkpoint folder `dir/<name>` atomically and points `dir/latest` at it. */
export function saveCheckpoint(
  dir: string,
  name: string,
  model: SSM,
  optimizer: Adam,
  state: LoopState,
): string {
  Deno.mkdirSync(dir, { recursive: true });
  const final = join(dir, name);
  const tmp = `${final}.tmp-${Deno.pid}`;
  if (existsSync(tmp)) Deno.removeSync(tmp, { recursive: true });
  Deno.mkdirSync(tmp, { recursive: true });
  saveWeights(model, join(tmp, "model.safetensors"), {
    [SSM_CONFIG_KEY]: JSON.stringify(model.config),
  });
  const opt = optimizer.getState();
  const tensors = new Map<string, HostTensor>();
  const steps: Record<string, number> = {};
  for (const [n, s] of Object.entries(opt.slots)) {
    tensors.set(`${n}.exp_avg`, { shape: s.shape, data: s.m, dtype: "F32" });
    tensors.set(`${n}.exp_avg_sq`, { shape: s.shape, data: s.v, dtype: "F32" });
    steps[n] = s.step;
  }
  writeSafetensors(join(tmp, "optimizer.safetensors"), tensors, {
    adam_config: JSON.stringify(opt.config),
    steps: JSON.stringify(steps),
  });
  Deno.writeTextFileSync(join(tmp, "state.json"), JSON.stringify(state));
  if (existsSync(final)) Deno.removeSync(final, { recursive: true });
  Deno.renameSync(tmp, final);
  const latestTmp = join(dir, `latest.tmp-${Deno.pid}`);
  Deno.writeTextFileSync(latestTmp, name + "\n");
  Deno.renameSync(latestTmp, join(dir, "latest"));
  return final;
}

/** The newest checkpoint folder under `dir`, or null. */
export function latestCheckpoint(dir: string): string | null {
  const p = join(dir, "latest");
  if (!existsSync(p)) return null;
  const name = Deno.readTextFileSync(p).trim();
  const full = join(dir, name);
  return existsSync(join(full, "state.json")) ? full : null;
}

/** Restores model weights, optimiser state and returns the loop state of a checkpoint folder. */
export function loadCheckpoint(path: string, model: SSM, optimizer: Adam): LoopState {
  for (const f of ["model.safetensors", "optimizer.safetensors", "state.json"]) {
    if (!existsSync(join(path, f))) throw new Error(`checkpoint ${path}: missing ${f}`);
  }
  loadWeights(model, join(path, "model.safetensors"));
  const file = readSafetensors(join(path, "optimizer.safetensors"));
  const steps = JSON.parse(file.metadata.steps ?? "{}") as Record<string, number>;
  const state: AdamState = { config: JSON.parse(file.metadata.adam_config), slots: {} };
  for (const [n, step] of Object.entries(steps)) {
    const m = file.tensors.get(`${n}.exp_avg`), v = file.tensors.get(`${n}.exp_avg_sq`);
    if (!m || !v) {
      throw new Error(`checkpoint ${path}: optimizer.safetensors lacks the moments of '${n}'`);
    }
    state.slots[n] = { step, m: m.data, v: v.data, shape: m.shape };
  }
  optimizer.setState(state);
  return JSON.parse(Deno.readTextFileSync(join(path, "state.json"))) as LoopState;
}
