/**
 * The RoI batch figure: the ranked RoI batch that module S classifies, drawn two ways side by
 * side: its boxes over the slice, coloured by rank (viridis, best = yellow, drawn on top), and
 * the `[128, 5]` batch (`score, dx, dy, dw, dh`) as a heatmap whose rows are the ranks (the
 * rank colour bar between the two panels links them); each column is min–max scaled on its own
 * since the score and the raw regression outputs have different ranges.
 *
 * {@linkcode roiBatchFromStages} takes what `SSM.stages()` returns and maps the rows' decoded
 * boxes back to original-image pixels.
 *
 * @example
 * ```ts
 * import { renderRoiBatch } from "./roi_batch.ts";
 * const image = { width: 64, height: 64, data: new Float32Array(64 * 64).fill(0.4) };
 * const rows = 4;
 * const boxes = new Float32Array([4, 4, 20, 20, 10, 10, 40, 30, 30, 30, 60, 60, 0, 0, 8, 8]);
 * const roiBatch = new Float32Array(rows * 5).map((_, i) => Math.sin(i));
 * const fig = renderRoiBatch({ image, boxes, roiBatch });
 * console.log(fig.width, fig.height);
 * ```
 *
 * @module
 */

import { writeFileAtomic } from "../data/atomic.ts";
import {
  blitGrey,
  boxPixels,
  canvasToPng,
  checkGrey,
  createCanvas,
  fillRect,
  type GreyInput,
  type Rgb,
  type RgbaImage,
  strokeRect,
} from "./canvas.ts";
import { viridis } from "./colors.ts";
import { drawText, LINE_HEIGHT, textWidth } from "./font.ts";

/** What the RoI batch figure shows. */
export interface RoiBatchFigureInput {
  /** The slice (original-image frame). */
  image: GreyInput;
  /** `[R·4]` boxes of the batch rows `(x1, y1, x2, y2)` in image pixels, rank order. */
  boxes: ArrayLike<number>;
  /** `[R·5]` the batch rows `[score, dx, dy, dw, dh]`, rank order. */
  roiBatch: ArrayLike<number>;
  /** Rows that are padding repeats (shown in the title). */
  numPadded?: number;
}

/** Options of {@linkcode renderRoiBatch}. */
export interface RoiBatchFigureOptions {
  /** Title (default `RoI batch: R rows, boxes coloured by rank`). */
  title?: string;
  /** Text magnification (default: 1 below 384 px wide, else 2). */
  textScale?: number;
  /** Box outline width (default 1). */
  boxThickness?: number;
}

/** A rendered RoI batch figure and where its panels lie (canvas pixels). */
export interface RoiBatchFigure extends RgbaImage {
  /** Top-left corner of the slice. */
  imageX: number;
  /** Top-left corner of the slice. */
  imageY: number;
  /** Left edge of the heatmap (its top is `imageY`). */
  heatmapX: number;
  /** Width of one heatmap cell. */
  cellWidth: number;
  /** Height of one heatmap row. */
  cellHeight: number;
}

/** The column names of a RoI batch row. */
export const ROI_BATCH_COLUMNS: readonly string[] = ["score", "dx", "dy", "dw", "dh"];

const BG: Rgb = [255, 255, 255];
const INK: Rgb = [20, 20, 20];
const GREY: Rgb = [90, 90, 90];

/** The rank colour of row `r` of `rows` (viridis, rank 0 = the top end). */
export function rankColor(r: number, rows: number): Rgb {
  return viridis(rows <= 1 ? 1 : 1 - r / (rows - 1));
}

/**
 * The batch with each column min–max scaled to [0, 1] (a constant column gives 0.5).
 *
 * @param roiBatch `[R·cols]` row-major
 * @param cols columns per row (5)
 */
export function scaleColumns(roiBatch: ArrayLike<number>, cols = 5): Float32Array {
  const rows = roiBatch.length / cols;
  const out = new Float32Array(roiBatch.length);
  for (let j = 0; j < cols; j++) {
    let lo = Infinity, hi = -Infinity;
    for (let r = 0; r < rows; r++) {
      const v = roiBatch[r * cols + j];
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    for (let r = 0; r < rows; r++) {
      out[r * cols + j] = hi > lo ? (roiBatch[r * cols + j] - lo) / (hi - lo) : 0.5;
    }
  }
  return out;
}

function validate(input: RoiBatchFigureInput): number {
  checkGrey(input.image, "renderRoiBatch: image");
  const rows = input.roiBatch.length / 5;
  if (!Number.isInteger(rows) || rows < 1) {
    throw new Error(`renderRoiBatch: roiBatch has ${input.roiBatch.length} values, not R x 5`);
  }
  if (input.boxes.length !== rows * 4) {
    throw new Error(`renderRoiBatch: ${input.boxes.length} box values for ${rows} rows`);
  }
  return rows;
}

/**
 * Renders the RoI batch figure (slice with ranked boxes | rank colour bar | heatmap).
 *
 * @throws {Error} when the batch is not `R x 5` or the boxes are not `R x 4`
 */
export function renderRoiBatch(
  input: RoiBatchFigureInput,
  opts: RoiBatchFigureOptions = {},
): RoiBatchFigure {
  const rows = validate(input);
  const { image } = input;
  const s = Math.max(1, Math.floor(opts.textScale ?? (image.width >= 384 ? 2 : 1)));
  const m = 8 * s, lineH = LINE_HEIGHT * s;
  const cellW = 16 * s;
  const cellH = Math.max(1, Math.floor(image.height / rows));
  const heatH = rows * cellH;
  const barW = 8 * s;
  const title = opts.title ??
    `RoI batch: ${rows} rows${input.numPadded ? ` (${input.numPadded} padded)` : ""}, ` +
      "boxes coloured by rank";
  const footer = "Heatmap rows = rank; columns scaled min-max";
  const top = m + 2 * lineH + 4 * s; // title line + column header line
  const bodyH = Math.max(image.height, heatH);
  const barX = m + image.width + m;
  const heatX = barX + barW + 2 * s;
  const rankLabelX = heatX + 5 * cellW + 3 * s;
  let width = rankLabelX + textWidth(`#${rows}`, s) + m;
  width = Math.max(width, m + textWidth(title, s) + m, m + textWidth(footer, s) + m);
  const height = top + bodyH + m + lineH + m;
  const c = createCanvas(width, height, BG);

  drawText(c, title, m, m, INK, s);
  blitGrey(c, image, m, top);
  // Boxes, worst rank first so the best lie on top.
  const t = Math.max(1, Math.floor(opts.boxThickness ?? 1));
  const clip = (v: number, hi: number) => Math.min(hi, Math.max(0, v));
  for (let r = rows - 1; r >= 0; r--) {
    const b = input.boxes;
    const [x1, y1, x2, y2] = boxPixels([b[4 * r], b[4 * r + 1], b[4 * r + 2], b[4 * r + 3]]);
    strokeRect(
      c,
      m + clip(x1, image.width - 1),
      top + clip(y1, image.height - 1),
      m + clip(x2, image.width - 1),
      top + clip(y2, image.height - 1),
      rankColor(r, rows),
      t,
    );
  }
  // Rank colour bar and heatmap.
  const scaled = scaleColumns(input.roiBatch, 5);
  for (let r = 0; r < rows; r++) {
    const y = top + r * cellH;
    fillRect(c, barX, y, barW, cellH, rankColor(r, rows));
    for (let j = 0; j < 5; j++) {
      fillRect(c, heatX + j * cellW, y, cellW, cellH, viridis(scaled[r * 5 + j]));
    }
  }
  for (let j = 0; j < 5; j++) {
    const name = j === 0 ? "S" : ROI_BATCH_COLUMNS[j].toUpperCase();
    const x = heatX + j * cellW + Math.floor((cellW - textWidth(name, s)) / 2);
    drawText(c, name, x, top - lineH - 2 * s, INK, s);
  }
  drawText(c, "#1", rankLabelX, top, GREY, s);
  drawText(c, `#${rows}`, rankLabelX, top + heatH - LINE_HEIGHT * s + s, GREY, s);
  drawText(c, footer, m, top + bodyH + m, GREY, s);
  return { ...c, imageX: m, imageY: top, heatmapX: heatX, cellWidth: cellW, cellHeight: cellH };
}

/** {@linkcode renderRoiBatch} encoded as PNG bytes. */
export function renderRoiBatchPng(
  input: RoiBatchFigureInput,
  opts: RoiBatchFigureOptions = {},
): Uint8Array {
  return canvasToPng(renderRoiBatch(input, opts));
}

/** Writes the RoI batch figure as a PNG file, atomically. */
export async function writeRoiBatchPng(
  path: string,
  input: RoiBatchFigureInput,
  opts: RoiBatchFigureOptions = {},
): Promise<void> {
  await writeFileAtomic(path, renderRoiBatchPng(input, opts));
}

/** The parts of `SSM.stages()` output that {@linkcode roiBatchFromStages} reads. */
export interface RoiBatchStages {
  /** The RoI batch `[R·5]`. */
  roiBatch: Float32Array;
  /** Resized image size `[height, width]` (the frame of the decoded boxes). */
  imageSize: [number, number];
  /** Original image size `[height, width]`. */
  originalSize: [number, number];
  /** The row selection: decoded boxes `[R·4]` and the number of padded rows. */
  roiSelection: { decodedBoxes: Float32Array; numPadded: number };
}

/**
 * The figure input from `SSM.stages()` output: the batch rows' decoded boxes are scaled from the
 * resized-image frame to original-image pixels (per axis, `original / resized`).
 *
 * @param stages what `model.stages(image)` returned (its tensors are not touched)
 * @param image the original slice
 */
export function roiBatchFromStages(
  stages: RoiBatchStages,
  image: GreyInput,
): RoiBatchFigureInput {
  const [h, w] = stages.imageSize, [oh, ow] = stages.originalSize;
  if (image.width !== ow || image.height !== oh) {
    throw new Error(
      `roiBatchFromStages: image is ${image.width}x${image.height}, the stages' original size ` +
        `is ${ow}x${oh}`,
    );
  }
  const rx = ow / w, ry = oh / h;
  const src = stages.roiSelection.decodedBoxes;
  const boxes = new Float32Array(src.length);
  for (let i = 0; i < src.length; i += 4) {
    boxes[i] = src[i] * rx;
    boxes[i + 1] = src[i + 1] * ry;
    boxes[i + 2] = src[i + 2] * rx;
    boxes[i + 3] = src[i + 3] * ry;
  }
  return {
    image,
    boxes,
    roiBatch: stages.roiBatch,
    numPadded: stages.roiSelection.numPadded,
  };
}
