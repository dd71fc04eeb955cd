/**
 * `deno task coco-eval GT.json RESULTS.json [--iou-type segm|bbox] [--max-dets 1,10,100]`:
 * COCO evaluation of a results file against a COCO ground-truth file, printing the standard
 * 12 summary lines exactly as pycocotools' `COCOeval.summarize()` does.
 *
 * @example
 * ```sh
 * deno task coco-eval annotations.json segm_results.json --iou-type segm --max-dets 1,10,128
 * deno task coco-eval annotations.json bbox_results.json --iou-type bbox --json > stats.json
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import { cocoEvaluate } from "../metrics/coco.ts";
import type { CocoDataset, CocoResult, IouType } from "../metrics/coco_data.ts";

/** Usage text printed by `--help`. */
export const COCO_EVAL_USAGE: string = `Usage: deno task coco-eval GT.json RESULTS.json [options]

COCO evaluation (equal to pycocotools COCOeval) of a COCO results list against a COCO
ground-truth file. Prints the 12 standard summary lines.

Options:
  --iou-type segm|bbox   IoU on masks (segm, default) or boxes (bbox)
  --max-dets A,B,C       detections per image for AR@A, AR@B and the other stats
                         (default 1,10,100; the paper used 1,10,128)
  --json                 print {stats, summaryLines, apPerIouThreshold, ...} as JSON instead
  -h, --help             show this help
`;

/** Where {@link cocoEvalMain} writes; defaults to the console. */
export interface CliIo {
  /** Standard output, one call per line/block. */
  out: (s: string) => void;
  /** Standard error. */
  err: (s: string) => void;
}

function readJson(path: string, what: string): unknown {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (e) {
    throw new Error(`cannot read ${what} file ${path}: ${(e as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`${what} file ${path} is not valid JSON: ${(e as Error).message}`);
  }
}

function parseMaxDets(s: string): number[] {
  const v = s.split(",").map((x) => x.trim());
  const n = v.map(Number);
  if (v.some((x) => x === "") || n.some((x) => !Number.isInteger(x) || x <= 0)) {
    throw new Error(`--max-dets must be a comma-separated list of positive integers, got "${s}"`);
  }
  if (n.length < 3) throw new Error(`--max-dets needs 3 values (e.g. 1,10,100), got "${s}"`);
  return n;
}

/**
 * Runs the CLI on `args` (without the program name). Returns the exit code: 0 on success, 1 on
 * an input error, 2 on a usage error.
 */
export function cocoEvalMain(
  args: string[],
  io: CliIo = { out: (s) => console.log(s), err: (s) => console.error(s) },
): number {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        "iou-type": { type: "string", default: "segm" },
        "max-dets": { type: "string", default: "1,10,100" },
        json: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    });
  } catch (e) {
    io.err(`coco-eval: ${(e as Error).message}\n\n${COCO_EVAL_USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    io.out(COCO_EVAL_USAGE);
    return 0;
  }
  if (positionals.length !== 2) {
    io.err(
      `coco-eval: expected GT.json and RESULTS.json, got ${positionals.length} paths\n\n${COCO_EVAL_USAGE}`,
    );
    return 2;
  }
  const iouType = values["iou-type"];
  if (iouType !== "segm" && iouType !== "bbox") {
    io.err(`coco-eval: --iou-type must be segm or bbox, got "${iouType}"`);
    return 2;
  }
  const [gtPath, resPath] = positionals;
  try {
    const maxDets = parseMaxDets(values["max-dets"]!);
    const gt = readJson(gtPath, "ground-truth") as CocoDataset;
    const results = readJson(resPath, "results") as CocoResult[];
    const res = cocoEvaluate(gt, results, {
      iouType: iouType as IouType,
      maxDets,
      gtName: gtPath,
      resultsName: resPath,
    });
    if (values.json) {
      io.out(JSON.stringify(
        {
          iouType,
          maxDets: res.params.maxDets,
          stats: res.stats,
          summaryLines: res.summaryLines,
          apPerIouThreshold: res.apPerIouThreshold,
          recallPerIouThreshold: res.recallPerIouThreshold,
          iouThrs: res.params.iouThrs,
        },
        null,
        2,
      ));
    } else {
      io.out(`Evaluate annotation type *${iouType}*`);
      for (const line of res.summaryLines) io.out(line);
    }
    return 0;
  } catch (e) {
    io.err(`coco-eval: ${(e as Error).message}`);
    return 1;
  }
}

if (import.meta.main) Deno.exit(cocoEvalMain(Deno.args));
