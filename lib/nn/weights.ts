/**
 * Loading and saving a {@linkcode Module}'s weights in PyTorch layout with state_dict names.
 *
 * Checkpoints are safetensors files (or, for loading, `torch.save` `.pth` files) whose tensors
 * carry the authors' checkpoint names and PyTorch layout; each parameter's
 * {@linkcode ParamLayout} says how it maps to tfjs layout:
 *
 * | layout | PyTorch | tfjs |
 * | --- | --- | --- |
 * | `conv` | `[out, in, kh, kw]` | `[kh, kw, in, out]` |
 * | `convTranspose` | `[in, out, kh, kw]` | `[kh, kw, out, in]` |
 * | `linear` | `[out, in]` | `[in, out]` |
 * | `linearFromNCHW` | `[out, C·H·W]`, column `c·H·W + y·W + x` | `[H·W·C, out]`, row `(y·W + x)·C + c` |
 *
 * Loading works like PyTorch's `load_state_dict`: in strict mode names and shapes must match
 * exactly, and the error lists the missing, unexpected and mis-shaped names. BatchNorm
 * `num_batches_tracked` counters are ignored, and torchvision 0.14 module paths
 * (`fpn.inner_blocks.0.0.weight`, `rpn.head.conv.0.0.weight`, `roi_heads.mask_head.0.0.weight`)
 * are accepted for the authors' names.
 *
 * @example
 * ```ts
 * import { loadWeights, saveWeights, resnetFpnBackbone } from "@covid-ssm/ssm";
 * const backbone = resnetFpnBackbone({ depth: 18, stages: 3 });
 * loadWeights(backbone, "weights.safetensors", { prefix: "backbone." });
 * saveWeights(backbone, "backbone.safetensors", { note: "backbone only" });
 * ```
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Module, ParamLayout } from "./module.ts";
import { type HostTensor, shapeSize } from "./host_tensor.ts";
import { parseSafetensors, writeSafetensors } from "./safetensors.ts";
import { isZipFile, parsePth, stateDictFromCheckpoint } from "./pth.ts";

/** The `__metadata__` key under which the toolkit stores the model config (JSON). */
export const SSM_CONFIG_KEY = "ssm_config";

/** The tfjs shape of a parameter with PyTorch shape `torchShape` and layout `layout`. */
export function tfShapeOf(torchShape: readonly number[], layout: ParamLayout): number[] {
  const s = torchShape;
  switch (layout.kind) {
    case "conv":
    case "convTranspose":
      return [s[2], s[3], s[1], s[0]];
    case "linear":
    case "linearFromNCHW":
      return [s[1], s[0]];
    case "identity":
      return [...s];
  }
}

function checkLayout(torchShape: readonly number[], layout: ParamLayout): void {
  const rank = layout.kind === "conv" || layout.kind === "convTranspose"
    ? 4
    : layout.kind === "identity"
    ? torchShape.length
    : 2;
  if (torchShape.length !== rank) {
    throw new Error(`layout ${layout.kind} needs a rank-${rank} shape, got [${torchShape}]`);
  }
  if (
    layout.kind === "linearFromNCHW" &&
    torchShape[1] !== layout.channels * layout.height * layout.width
  ) {
    throw new Error(
      `linearFromNCHW ${layout.channels}x${layout.height}x${layout.width} does not match ` +
        `${torchShape[1]} inputs`,
    );
  }
}

/**
 * Converts row-major PyTorch-layout values into row-major tfjs-layout values.
 *
 * @param data values in PyTorch layout
 * @param torchShape the PyTorch shape
 * @param layout the parameter's layout
 * @returns a new array in tfjs layout (shape {@linkcode tfShapeOf})
 */
export function torchToTf(
  data: Float32Array,
  torchShape: readonly number[],
  layout: ParamLayout,
): Float32Array {
  checkLayout(torchShape, layout);
  return permute(data, torchShape, layout, true);
}

/**
 * Converts row-major tfjs-layout values back to PyTorch layout (inverse of {@linkcode torchToTf}).
 *
 * @param data values in tfjs layout
 * @param torchShape the PyTorch shape
 * @param layout the parameter's layout
 */
export function tfToTorch(
  data: Float32Array,
  torchShape: readonly number[],
  layout: ParamLayout,
): Float32Array {
  checkLayout(torchShape, layout);
  return permute(data, torchShape, layout, false);
}

/** Gathers between torch index `t` and tfjs index `f` in either direction. */
function permute(
  src: Float32Array,
  s: readonly number[],
  layout: ParamLayout,
  toTf: boolean,
): Float32Array {
  const out = new Float32Array(src.length);
  const move = (t: number, f: number) => {
    if (toTf) out[f] = src[t];
    else out[t] = src[f];
  };
  switch (layout.kind) {
    case "identity":
      out.set(src);
      return out;
    case "conv":
    case "convTranspose": {
      // torch [a, b, kh, kw] (a = out for conv, in for convTranspose) ↔ tfjs [kh, kw, b, a]
      const [A, B, KH, KW] = s;
      for (let a = 0; a < A; a++) {
        for (let b = 0; b < B; b++) {
          for (let y = 0; y < KH; y++) {
            for (let x = 0; x < KW; x++) {
              move(((a * B + b) * KH + y) * KW + x, ((y * KW + x) * B + b) * A + a);
            }
          }
        }
      }
      return out;
    }
    case "linear": {
      const [O, I] = s;
      for (let o = 0; o < O; o++) for (let i = 0; i < I; i++) move(o * I + i, i * O + o);
      return out;
    }
    case "linearFromNCHW": {
      const O = s[0];
      const { channels: C, height: H, width: W } = layout;
      for (let o = 0; o < O; o++) {
        for (let c = 0; c < C; c++) {
          for (let y = 0; y < H; y++) {
            for (let x = 0; x < W; x++) {
              move(o * C * H * W + c * H * W + y * W + x, ((y * W + x) * C + c) * O + o);
            }
          }
        }
      }
      return out;
    }
  }
}

/**
 * Maps a torchvision 0.14 module path to the authors' (torchvision <= 0.12) state_dict name;
 * other names are returned unchanged.
 *
 * `fpn.inner_blocks.N.0.*` → `fpn.inner_blocks.N.*`, `fpn.layer_blocks.N.0.*` →
 * `fpn.layer_blocks.N.*`, `rpn.head.conv.0.0.*` → `rpn.head.conv.*`,
 * `roi_heads.mask_head.N.0.*` → `roi_heads.mask_head.mask_fcn{N+1}.*`.
 */
export function authorsName(name: string): string {
  return name
    .replace(/(^|\.)fpn\.(inner|layer)_blocks\.(\d+)\.0\./, "$1fpn.$2_blocks.$3.")
    .replace(/(^|\.)rpn\.head\.conv\.0\.0\./, "$1rpn.head.conv.")
    .replace(
      /(^|\.)mask_head\.(\d+)\.0\./,
      (_m, pre: string, n: string) => `${pre}mask_head.mask_fcn${Number(n) + 1}.`,
    );
}

/** Options of {@linkcode loadWeights} and {@linkcode loadStateDict}. */
export interface LoadWeightsOptions {
  /**
   * Raise when any name is missing, unexpected or mis-shaped (default true). When false, the
   * matching tensors are loaded and the rest is reported.
   */
  strict?: boolean;
  /**
   * Prefix of the model's names inside the file (e.g. `backbone.` to load a backbone from a whole
   * SSM checkpoint). File tensors outside the prefix are ignored.
   */
  prefix?: string;
}

/** What {@linkcode loadWeights} did. */
export interface LoadWeightsReport {
  /** The file's metadata (safetensors `__metadata__`, or the scalar entries of a `.pth` dict). */
  metadata: Record<string, string>;
  /** Model names (without prefix) absent from the file. */
  missing: string[];
  /** File names (with prefix) that the model does not have. */
  unexpected: string[];
  /** Names present in both whose shapes differ (not loaded). */
  mismatched: { name: string; expected: number[]; got: number[] }[];
  /** Number of tensors assigned. */
  loaded: number;
}

/**
 * Assigns PyTorch-layout tensors to a module's parameters by name.
 *
 * @param model the module
 * @param stateDict tensors by state_dict name, PyTorch layout
 * @param opts strictness and name prefix
 * @param source file name for error messages
 * @throws {Error} in strict mode, listing missing / unexpected / mis-shaped names; nothing is
 *   assigned in that case
 */
export function loadStateDict(
  model: Module,
  stateDict: Map<string, HostTensor>,
  opts: LoadWeightsOptions = {},
  source = "<state dict>",
): Omit<LoadWeightsReport, "metadata"> {
  const strict = opts.strict ?? true;
  const prefix = opts.prefix ?? "";
  const params = new Map(model.namedParameters());
  const found = new Map<string, HostTensor>();
  const unexpected: string[] = [];
  const mismatched: LoadWeightsReport["mismatched"] = [];
  for (const [fileName, t] of stateDict) {
    if (fileName.endsWith("num_batches_tracked")) continue;
    let name = fileName;
    if (!(name.startsWith(prefix) && params.has(name.slice(prefix.length)))) {
      name = authorsName(fileName);
    }
    if (!name.startsWith(prefix)) continue;
    const local = name.slice(prefix.length);
    const p = params.get(local);
    if (!p) {
      unexpected.push(fileName);
      continue;
    }
    if (found.has(local)) throw new Error(`${source}: '${local}' is given twice (${fileName})`);
    if (t.shape.length !== p.torchShape.length || t.shape.some((d, i) => d !== p.torchShape[i])) {
      mismatched.push({ name: local, expected: [...p.torchShape], got: [...t.shape] });
      continue;
    }
    found.set(local, t);
  }
  const mis = new Set(mismatched.map((m) => m.name));
  const missing = [...params.keys()].filter((n) => !found.has(n) && !mis.has(n));
  if (strict && (missing.length || unexpected.length || mismatched.length)) {
    const parts: string[] = [];
    if (missing.length) parts.push(`missing key(s): ${missing.join(", ")}`);
    if (unexpected.length) parts.push(`unexpected key(s): ${unexpected.join(", ")}`);
    if (mismatched.length) {
      parts.push(
        "size mismatch: " +
          mismatched.map((m) => `${m.name} file [${m.got}] vs model [${m.expected}]`).join(", "),
      );
    }
    throw new Error(`${source}: error(s) loading state dict${prefix ? ` (prefix '${prefix}')` : ""}:
  ${parts.join("\n  ")}`);
  }
  for (const [name, t] of found) {
    const p = params.get(name)!;
    const value = tf.tensor(torchToTf(t.data, t.shape, p.layout), tfShapeOf(t.shape, p.layout));
    p.variable.assign(value);
    value.dispose();
  }
  return { missing, unexpected, mismatched, loaded: found.size };
}

/**
 * Reads a checkpoint (safetensors, or a `torch.save` zip detected by its magic) into a state
 * dict and metadata.
 *
 * @param source a path or the file's bytes
 * @param name file name for error messages (default: the path)
 */
export function readCheckpoint(
  source: string | Uint8Array,
  name?: string,
): { stateDict: Map<string, HostTensor>; metadata: Record<string, string> } {
  const label = name ?? (typeof source === "string" ? source : "<bytes>");
  let bytes: Uint8Array;
  if (typeof source === "string") {
    try {
      bytes = Deno.readFileSync(source);
    } catch (e) {
      throw new Error(`cannot read checkpoint ${source}: ${(e as Error).message}`);
    }
  } else bytes = source;
  if (isZipFile(bytes)) {
    const { root } = parsePth(bytes, label);
    const metadata: Record<string, string> = {};
    if (root instanceof Map) {
      for (const [k, v] of root) {
        if (typeof k === "string" && ["string", "number", "boolean"].includes(typeof v)) {
          metadata[k] = String(v);
        }
      }
    }
    return { stateDict: stateDictFromCheckpoint(root, label), metadata };
  }
  const { tensors, metadata } = parseSafetensors(bytes, label);
  return { stateDict: tensors, metadata };
}

/**
 * Loads a safetensors or `.pth` checkpoint into a module (like PyTorch's `load_state_dict`).
 *
 * @param model the module whose `namedParameters()` names are matched
 * @param source a path or the file's bytes
 * @param opts `strict` (default true) and `prefix`
 * @returns metadata and the missing / unexpected / mis-shaped names
 * @throws {Error} naming the file on unreadable input, or (strict) on any name/shape mismatch
 */
export function loadWeights(
  model: Module,
  source: string | Uint8Array,
  opts: LoadWeightsOptions = {},
): LoadWeightsReport {
  const label = typeof source === "string" ? source : "<bytes>";
  const { stateDict, metadata } = readCheckpoint(source, label);
  return { metadata, ...loadStateDict(model, stateDict, opts, label) };
}

/**
 * The module's parameters and buffers in PyTorch layout, by state_dict name.
 *
 * @param model the module
 * @param prefix prepended to every name
 */
export function stateDict(model: Module, prefix = ""): Map<string, HostTensor> {
  const out = new Map<string, HostTensor>();
  for (const [name, p] of model.namedParameters()) {
    const tfData = p.variable.dataSync() as Float32Array;
    if (tfData.length !== shapeSize(p.torchShape)) {
      throw new Error(`parameter '${name}' holds ${tfData.length} values, not [${p.torchShape}]`);
    }
    out.set(prefix + name, {
      shape: [...p.torchShape],
      data: tfToTorch(tfData, p.torchShape, p.layout),
      dtype: "F32",
    });
  }
  return out;
}

/**
 * Saves a module's weights as a safetensors file in PyTorch layout with state_dict names,
 * atomically (`path.tmp`, then rename).
 *
 * @param model the module
 * @param path destination
 * @param metadata `__metadata__` strings; put the model config under {@linkcode SSM_CONFIG_KEY}
 */
export function saveWeights(
  model: Module,
  path: string,
  metadata?: Record<string, string>,
): void {
  writeSafetensors(path, stateDict(model), metadata);
}
