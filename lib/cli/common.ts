/**
 * Small helpers shared by the command-line entry points: console I/O that tests can capture, a
 * progress bar on stderr (redrawn in place on a terminal, periodic plain lines otherwise), the
 * `--backend` flag, and building a model from a checkpoint.
 *
 * A checkpoint is a safetensors file (or the authors' `.pth`), a training checkpoint folder
 * holding `model.safetensors`, or a run's checkpoint folder with a `latest` pointer. Its model
 * configuration comes from the `ssm_config` metadata the toolkit writes; a file without it
 * (e.g. converted from the authors' `.pth`) is read as the paper's configuration (ResNet18,
 * 3 stages, two branches), except where its tensor names and shapes say otherwise (depth,
 * stages, one or two box branches, layer widths); command-line overrides win over both.
 *
 * @example
 * ```ts
 * import { loadModelFromCheckpoint } from "./common.ts";
 * import { initBackend } from "../backend/mod.ts";
 * await initBackend("wasm");
 * const { model, configSource } = loadModelFromCheckpoint("model.safetensors", { minSize: 512 });
 * console.log(configSource, model.config.backbone);
 * ```
 *
 * @module
 */

import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { type BackendInfo, initBackend } from "../backend/backend.ts";
import { parseBackendFlag } from "../backend/flag.ts";
import {
  type ProposalFilter,
  type SSMConfig,
  ssmConfig,
  type SSMConfigInput,
  type SSMVariant,
} from "../config.ts";
import type { HostTensor } from "../nn/host_tensor.ts";
import { loadStateDict, readCheckpoint, SSM_CONFIG_KEY } from "../nn/weights.ts";
import { buildSSM, type SSM } from "../ssm.ts";

export { type CliIo, consoleIo, formatDuration, ProgressBar } from "../progress.ts";

/**
 * Takes `--backend` out of `args` and initialises that backend.
 *
 * @returns the backend's description and the remaining arguments
 */
export async function setupBackend(
  args: readonly string[],
): Promise<{ backend: BackendInfo; rest: string[] }> {
  const { backend, rest } = parseBackendFlag(args);
  return { backend: await initBackend(backend), rest };
}

/** Command-line overrides of a checkpoint's configuration. */
export interface ModelOverrides {
  /** ResNet depth. */
  depth?: 18 | 34 | 50;
  /** Backbone stages. */
  stages?: 2 | 3 | 4;
  /** Variant (one or two box branches). */
  variant?: SSMVariant;
  /** Proposal / detection filtering semantics. */
  proposalFilter?: ProposalFilter;
  /** Model input size (the transform's short side). */
  minSize?: number;
  /** Detection score threshold (strict; the paper's 0.75; torchvision's default is 0.05). */
  scoreThresh?: number;
}

/** What {@linkcode loadModelFromCheckpoint} built. */
export interface LoadedModel {
  /** The model, weights loaded, in eval mode. */
  model: SSM;
  /** Its configuration. */
  config: SSMConfig;
  /** Where the configuration came from (for messages). */
  configSource: string;
  /** The weights file that was read. */
  weightsPath: string;
  /** The checkpoint's metadata. */
  metadata: Record<string, string>;
}

/**
 * The weights file of a checkpoint path: the file itself, `DIR/model.safetensors`, or the
 * `model.safetensors` of the folder named by `DIR/latest`.
 *
 * @throws {Error} naming the path when nothing usable is there
 */
export function resolveCheckpointPath(path: string): string {
  if (!existsSync(path)) throw new Error(`checkpoint ${path}: no such file or directory`);
  if (!statSync(path).isDirectory()) return path;
  const direct = join(path, "model.safetensors");
  if (existsSync(direct)) return direct;
  const latest = join(path, "latest");
  if (existsSync(latest)) {
    const name = Deno.readTextFileSync(latest).trim();
    const file = join(path, name, "model.safetensors");
    if (existsSync(file)) return file;
    throw new Error(`checkpoint ${path}: 'latest' names ${name}, which has no model.safetensors`);
  }
  throw new Error(
    `checkpoint ${path}: a folder without model.safetensors or a 'latest' pointer`,
  );
}

/**
 * The architecture the tensor names and shapes of a state dict imply (depth, stages, one or two
 * box branches, FPN width, head widths, classes, RoI batch rows); fields it cannot tell are left
 * out. For the authors' checkpoints this is the paper's configuration.
 */
export function inferConfigFromStateDict(stateDict: Map<string, HostTensor>): SSMConfigInput {
  const names = [...stateDict.keys()];
  const has = (re: RegExp) => names.some((n) => re.test(n));
  const out: SSMConfigInput = {};
  const backbone: SSMConfigInput["backbone"] = {};
  let stages = 0;
  for (const n of names) {
    const m = /^backbone\.body\.layer(\d)\./.exec(n);
    if (m) stages = Math.max(stages, Number(m[1]));
  }
  if (stages >= 2 && stages <= 4) backbone.stages = stages as 2 | 3 | 4;
  if (has(/^backbone\.body\.layer1\.0\.conv3\.weight$/)) backbone.depth = 50;
  else if (has(/^backbone\.body\.layer1\.2\.conv1\.weight$/)) backbone.depth = 34;
  else if (has(/^backbone\.body\.layer1\.1\.conv1\.weight$/)) backbone.depth = 18;
  const inner = stateDict.get("backbone.fpn.inner_blocks.0.weight") ??
    stateDict.get("backbone.fpn.inner_blocks.0.0.weight");
  if (inner) backbone.fpnChannels = inner.shape[0];
  if (Object.keys(backbone).length) out.backbone = backbone;
  if (has(/^roi_heads\.box_head\./)) {
    out.variant = has(/^roi_heads\.box_head_s2\./) ? "parallel" : "single";
  }
  const dim = (name: string, axis: number) => stateDict.get(name)?.shape[axis];
  const roiHeads: SSMConfigInput["roiHeads"] = {};
  const rep = dim("roi_heads.box_head.fc7.weight", 0);
  if (rep !== undefined) roiHeads.representationSize = rep;
  const k = dim("roi_heads.box_predictor.cls_score.weight", 0);
  if (k !== undefined) roiHeads.numClasses = k;
  const maskCh = dim("roi_heads.mask_head.mask_fcn1.weight", 0) ??
    dim("roi_heads.mask_head.0.0.weight", 0);
  if (maskCh !== undefined) roiHeads.maskHeadChannels = maskCh;
  if (Object.keys(roiHeads).length) out.roiHeads = roiHeads;
  const s: SSMConfigInput["s"] = {};
  const sRep = dim("s2new.fc_scores.weight", 0), sIn = dim("s2new.fc_scores.weight", 1);
  if (sRep !== undefined) s.representationSize = sRep;
  if (sIn !== undefined && sIn % 5 === 0) s.boxDetections = sIn / 5;
  const classes = dim("s2new.fc_scores_img.weight", 0);
  if (classes !== undefined) s.numImageClasses = classes;
  if (Object.keys(s).length) out.s = s;
  return out;
}

function parseConfigMetadata(text: string, path: string): SSMConfigInput {
  try {
    const v = JSON.parse(text);
    if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error("not an object");
    return v as SSMConfigInput;
  } catch (e) {
    throw new Error(
      `checkpoint ${path}: metadata '${SSM_CONFIG_KEY}' is not a config object ` +
        `(${(e as Error).message})`,
    );
  }
}

/**
 * Builds an SSM from a checkpoint and loads its weights strictly (every name and shape must
 * match). The backend must be initialised first.
 *
 * @param path a weights file or checkpoint folder ({@linkcode resolveCheckpointPath})
 * @param overrides command-line overrides (win over the file's configuration)
 * @throws {Error} naming the checkpoint when it cannot be read or does not fit the model
 */
export function loadModelFromCheckpoint(
  path: string,
  overrides: ModelOverrides = {},
): LoadedModel {
  const weightsPath = resolveCheckpointPath(path);
  const { stateDict, metadata } = readCheckpoint(weightsPath);
  let base: SSMConfigInput;
  let configSource: string;
  if (metadata[SSM_CONFIG_KEY] !== undefined) {
    base = parseConfigMetadata(metadata[SSM_CONFIG_KEY], weightsPath);
    configSource = `the checkpoint's ${SSM_CONFIG_KEY} metadata`;
  } else {
    base = inferConfigFromStateDict(stateDict);
    configSource = "the paper's configuration (no toolkit config in the checkpoint)";
  }
  const input: SSMConfigInput = {
    ...base,
    backbone: {
      ...base.backbone,
      ...(overrides.depth ? { depth: overrides.depth } : {}),
      ...(overrides.stages ? { stages: overrides.stages } : {}),
    },
    transform: { ...base.transform },
  };
  if (overrides.variant) input.variant = overrides.variant;
  if (overrides.proposalFilter) input.proposalFilter = overrides.proposalFilter;
  if (overrides.scoreThresh !== undefined) {
    input.roiHeads = { ...input.roiHeads, scoreThresh: overrides.scoreThresh };
  }
  if (overrides.minSize !== undefined) {
    input.transform!.minSize = overrides.minSize;
    const maxSize = input.transform!.maxSize ?? 1024;
    if (maxSize < overrides.minSize) input.transform!.maxSize = 2 * overrides.minSize;
  }
  let config: SSMConfig;
  try {
    config = ssmConfig(input);
  } catch (e) {
    throw new Error(`checkpoint ${weightsPath}: ${(e as Error).message}`);
  }
  const model = buildSSM(config);
  try {
    loadStateDict(model, stateDict, { strict: true }, weightsPath);
  } catch (e) {
    model.dispose();
    throw new Error(
      `${(e as Error).message}\n  (model built from ${configSource}; ` +
        "use --depth / --stages / --variant if the checkpoint has another architecture)",
    );
  }
  model.setTraining(false);
  return { model, config, configSource, weightsPath, metadata };
}
