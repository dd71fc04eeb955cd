/**
 * `deno task predict --checkpoint C [--backend B] --out DIR IMAGE_OR_DIR...`: runs the
 * single-shot model on CT slices (PNG, JPEG or DICOM; folders are scanned for those
 * extensions) and writes, per slice, `DIR/<stem>.png` (the overlay: slice, lesion masks, boxes
 * with scores, class-probability bars) and `DIR/<stem>.json`:
 *
 * ```json
 * { "image": "scan/12.png", "width": 512, "height": 512,
 *   "class": "COVID-19", "classIndex": 2, "classNames": ["Control", "Common Pneumonia", "COVID-19"],
 *   "classLogits": [..3], "classProbs": [..3],
 *   "detections": [{ "box": [x1, y1, x2, y2], "score": 0.97, "label": 1, "area": 812,
 *                    "maskRLE": { "size": [512, 512], "counts": "..." } }] }
 * ```
 *
 * Boxes are in original-image pixels; `maskRLE` is the COCO compressed RLE of the detection's
 * binary mask over the whole image (pycocotools can decode it). A slice that fails is reported
 * with its file name and the others still run (exit code 1).
 *
 * @example
 * ```sh
 * deno task predict --checkpoint runs/r18-3/checkpoints --out predictions data/slices/
 * deno task predict --checkpoint ssm_authors.pth --proposal-filter torchvision --out out scan.dcm
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import { existsSync, mkdirSync, readdirSync, statSync } from "node:fs";
import { basename, extname, join } from "node:path";
import type { ProposalFilter, SSMVariant } from "../config.ts";
import { readImage } from "../data/image.ts";
import type { GrayImage } from "../data/image_types.ts";
import { writeTextFileAtomic } from "../data/atomic.ts";
import { rleEncode, rleToCoco } from "../metrics/rle.ts";
import type { CocoRleObject } from "../metrics/rle.ts";
import { pastedMaskToImage } from "../paste_masks.ts";
import type { SSMPrediction } from "../ssm.ts";
import { IMAGE_CLASS_NAMES } from "../viz/colors.ts";
import { writeOverlayPng } from "../viz/overlay.ts";
import { BACKEND_FLAG_HELP, parseBackendFlag } from "../backend/flag.ts";
import { type BackendName, initBackend } from "../backend/backend.ts";
import {
  type CliIo,
  consoleIo,
  loadModelFromCheckpoint,
  type ModelOverrides,
  ProgressBar,
} from "./common.ts";

/** Usage text printed by `--help`. */
export const PREDICT_USAGE: string =
  `Usage: deno task predict --checkpoint FILE [options] --out DIR IMAGE_OR_DIR...

Runs the single-shot model on CT slices (PNG, JPEG, DICOM; folders are scanned) and writes
DIR/<stem>.png (overlay) and DIR/<stem>.json (class, probabilities, detections with boxes in
original-image pixels and COCO RLE masks) per slice.

Options:
  --checkpoint FILE     weights: a .safetensors file (or the authors' .pth), a training
                        checkpoint folder (model.safetensors) or a run's checkpoints folder
  --out DIR             output folder (default: predictions)
  ${BACKEND_FLAG_HELP}
  --size N              model input size, the short side (default: the checkpoint's, else 512)
  --depth 18|34|50      ResNet depth      } override the checkpoint's configuration (a file
  --stages 2|3|4        backbone stages   } without one, e.g. converted from the authors'
  --variant V           single|parallel|scratch } .pth, is read as ResNet18, 3 stages, parallel)
  --proposal-filter F   reference (the authors' code, default) | torchvision
  --max-labels N        score labels drawn on the overlay (default 20)
  -q, --quiet           no progress output
  -h, --help            show this help
`;

/** The message shown when `--checkpoint` is missing. */
export const NO_CHECKPOINT_MESSAGE: string = `predict needs trained weights: pass --checkpoint FILE.
A checkpoint comes from training:
  deno task train ...        trains one model and writes runs/<name>/checkpoints/ (pass that folder
                             or its model.safetensors file)
  deno task reproduce        trains the paper's variants (on the embedded synthetic data by
                             default) and writes a checkpoint for each
The authors' released .pth files can be passed directly (read as ResNet18, 3 stages, two branches
unless --depth / --stages / --variant say otherwise).`;

const IMAGE_EXTENSIONS = new Set([".png", ".jpg", ".jpeg", ".dcm", ".dicom"]);

/** One detection in the JSON output. */
export interface PredictedDetection {
  /** `[x1, y1, x2, y2]` in original-image pixels. */
  box: number[];
  /** Detection score. */
  score: number;
  /** Class label (1 = lesion). */
  label: number;
  /** Mask area in pixels. */
  area: number;
  /** COCO compressed RLE of the mask over the whole image. */
  maskRLE: CocoRleObject;
}

/** The JSON written per slice. */
export interface PredictionJson {
  /** The input file. */
  image: string;
  /** Image width. */
  width: number;
  /** Image height. */
  height: number;
  /** Predicted class name. */
  class: string;
  /** Predicted class index. */
  classIndex: number;
  /** Class names in index order. */
  classNames: string[];
  /** Image-class logits. */
  classLogits: number[];
  /** Softmax of the logits. */
  classProbs: number[];
  /** Lesion detections, best first. */
  detections: PredictedDetection[];
}

/** Builds the JSON record of one prediction. */
export function predictionToJson(
  imagePath: string,
  image: { width: number; height: number },
  pred: SSMPrediction,
): PredictionJson {
  const { width, height } = image;
  const det = pred.detections;
  const full = new Uint8Array(width * height);
  const detections: PredictedDetection[] = [];
  for (let i = 0; i < det.scores.length; i++) {
    const m = det.masks[i];
    pastedMaskToImage(m, height, width, full);
    detections.push({
      box: Array.from(det.boxes.subarray(4 * i, 4 * i + 4)),
      score: det.scores[i],
      label: det.labels[i],
      area: m.area,
      maskRLE: rleToCoco(rleEncode(full, height, width)),
    });
  }
  const names = Array.from(
    { length: pred.classLogits.length },
    (_, k) => IMAGE_CLASS_NAMES[k] ?? `class ${k}`,
  );
  return {
    image: imagePath,
    width,
    height,
    class: names[pred.predictedClass],
    classIndex: pred.predictedClass,
    classNames: names,
    classLogits: Array.from(pred.classLogits),
    classProbs: Array.from(pred.classProbs),
    detections,
  };
}

/** Expands the positional arguments into image files (folders: known extensions, sorted). */
export function collectInputs(paths: readonly string[]): string[] {
  const files: string[] = [];
  for (const p of paths) {
    if (!existsSync(p)) throw new Error(`${p}: no such file or directory`);
    if (statSync(p).isDirectory()) {
      const found = readdirSync(p)
        .filter((n) => IMAGE_EXTENSIONS.has(extname(n).toLowerCase()))
        .sort((a, b) => a.localeCompare(b, "en", { numeric: true }))
        .map((n) => join(p, n))
        .filter((f) => statSync(f).isFile());
      if (found.length === 0) {
        throw new Error(`${p}: no PNG, JPEG or DICOM files (.png .jpg .jpeg .dcm .dicom)`);
      }
      files.push(...found);
    } else {
      files.push(p);
    }
  }
  return files;
}

/** The output stem of an input file: its name without the extension. */
export function outputStem(path: string): string {
  const name = basename(path);
  const ext = extname(name);
  return ext ? name.slice(0, -ext.length) : name;
}

function intFlag(v: string | undefined, flag: string, allowed?: number[]): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0 || (allowed && !allowed.includes(n))) {
    throw new UsageError(
      `${flag} must be ${allowed ? allowed.join(" or ") : "a positive integer"}, got '${v}'`,
    );
  }
  return n;
}

class UsageError extends Error {}

/**
 * Runs the CLI on `args` (without the program name). Returns the exit code: 0 on success, 1 when
 * a slice or the checkpoint failed, 2 on a usage error (including a missing `--checkpoint`).
 */
export async function predictMain(args: string[], io: CliIo = consoleIo()): Promise<number> {
  let values: Record<string, string | boolean | undefined>, positionals: string[];
  let rest: string[];
  let backend: BackendName;
  let overrides: ModelOverrides;
  let maxLabels: number;
  try {
    // --backend is taken out first (its default comes from SSM_BACKEND).
    ({ backend, rest } = parseBackendFlag(args));
    ({ values, positionals } = parseArgs({
      args: rest,
      allowPositionals: true,
      options: {
        checkpoint: { type: "string" },
        out: { type: "string", default: "predictions" },
        size: { type: "string" },
        depth: { type: "string" },
        stages: { type: "string" },
        variant: { type: "string" },
        "proposal-filter": { type: "string" },
        "max-labels": { type: "string" },
        quiet: { type: "boolean", short: "q", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    }));
    if (values.help) {
      io.out(PREDICT_USAGE);
      return 0;
    }
    if (!values.checkpoint) {
      io.err(NO_CHECKPOINT_MESSAGE);
      return 2;
    }
    if (positionals.length === 0) throw new UsageError("no input images given");
    const variant = values.variant as string | undefined;
    if (variant !== undefined && !["single", "parallel", "scratch"].includes(variant)) {
      throw new UsageError(`--variant must be single, parallel or scratch, got '${variant}'`);
    }
    const filter = values["proposal-filter"] as string | undefined;
    if (filter !== undefined && !["reference", "torchvision"].includes(filter)) {
      throw new UsageError(`--proposal-filter must be reference or torchvision, got '${filter}'`);
    }
    overrides = {
      depth: intFlag(values.depth as string, "--depth", [18, 34, 50]) as 18 | 34 | 50 | undefined,
      stages: intFlag(values.stages as string, "--stages", [2, 3, 4]) as 2 | 3 | 4 | undefined,
      variant: variant as SSMVariant | undefined,
      proposalFilter: filter as ProposalFilter | undefined,
      minSize: intFlag(values.size as string, "--size"),
    };
    const ml = values["max-labels"] as string | undefined;
    maxLabels = ml === undefined ? 20 : Number(ml);
    if (!Number.isInteger(maxLabels) || maxLabels < 0 || ml?.trim() === "") {
      throw new UsageError(`--max-labels must be a non-negative integer, got '${ml}'`);
    }
  } catch (e) {
    io.err(`error: ${(e as Error).message}\n\n${PREDICT_USAGE}`);
    return 2;
  }

  let files: string[];
  try {
    files = collectInputs(positionals);
  } catch (e) {
    io.err(`error: ${(e as Error).message}`);
    return 1;
  }
  const stems = new Map<string, string>();
  for (const f of files) {
    const stem = outputStem(f);
    const prev = stems.get(stem);
    if (prev !== undefined) {
      io.err(`error: ${prev} and ${f} would both write ${stem}.png/.json; predict them separately`);
      return 1;
    }
    stems.set(stem, f);
  }

  const outDir = values.out as string;
  let loaded;
  try {
    const info = await initBackend(backend);
    loaded = loadModelFromCheckpoint(values.checkpoint as string, overrides);
    mkdirSync(outDir, { recursive: true });
    if (!values.quiet) {
      const c = loaded.config;
      io.err(
        `predict: ${loaded.weightsPath} (ResNet${c.backbone.depth}, ${c.backbone.stages} stages, ` +
          `${c.variant}, size ${c.transform.minSize}, ${c.proposalFilter}; config from ` +
          `${loaded.configSource}) on ${info.name}; ${files.length} slice(s) -> ${outDir}`,
      );
    }
  } catch (e) {
    io.err(`error: ${(e as Error).message}`);
    return 1;
  }

  const { model } = loaded;
  const quietIo: CliIo = { out: () => {}, err: () => {} };
  const bar = new ProgressBar(files.length, "predict", values.quiet ? quietIo : io);
  let failures = 0;
  try {
    for (const file of files) {
      const stem = outputStem(file);
      try {
        const image: GrayImage = await readImage(file);
        const pred = model.predict({ width: image.width, height: image.height, data: image.data });
        const json = predictionToJson(file, image, pred);
        await writeOverlayPng(join(outDir, `${stem}.png`), image, pred, {
          title: basename(file),
          maxLabels,
        });
        await writeTextFileAtomic(join(outDir, `${stem}.json`), JSON.stringify(json) + "\n");
        bar.tick(`${basename(file)}: ${json.class}, ${json.detections.length} lesion(s)`);
      } catch (e) {
        failures++;
        const msg = (e as Error).message;
        bar.note(`error: ${msg.includes(file) ? msg : `${file}: ${msg}`}`);
        bar.tick(basename(file));
      }
    }
  } finally {
    model.dispose();
  }
  if (failures > 0) {
    io.err(`predict: ${failures} of ${files.length} slice(s) failed`);
    return 1;
  }
  return 0;
}

if (import.meta.main) {
  Deno.exit(await predictMain(Deno.args));
}
