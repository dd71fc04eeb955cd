/**
 * Prediction overlays: the CT slice in grey, each lesion mask as a translucent colour with a
 * solid one-pixel contour, the detection boxes (1-2 px outlines) with score labels, and below
 * the slice a class-probability panel (one bar per class: Control, Common Pneumonia, COVID-19,
 * the predicted class marked with `>`). Rendering is pure typed-array work on an RGBA buffer;
 * {@linkcode writeOverlayPng} writes it as a PNG atomically.
 *
 * The slice occupies the canvas' top-left `image.width x image.height` pixels unchanged
 * (`imageX = imageY = 0`), one canvas pixel per image pixel, so box and mask coordinates in
 * original-image pixels are canvas coordinates. Pixels not covered by a mask, box or label keep
 * the slice's exact grey level. Instance colours follow the score rank (best first).
 *
 * @example
 * ```ts
 * import { renderOverlay } from "./overlay.ts";
 * const image = { width: 64, height: 64, data: new Float32Array(64 * 64).fill(0.3) };
 * const mask = { x0: 10, y0: 10, width: 8, height: 8, mask: new Uint8Array(64).fill(1) };
 * const out = renderOverlay(image, {
 *   detections: { boxes: [10, 10, 18, 18], scores: [0.9], masks: [mask] },
 *   classProbs: [0.1, 0.2, 0.7],
 * });
 * console.log(out.width, out.height > 64);
 * ```
 *
 * @module
 */

import { writeFileAtomic } from "../data/atomic.ts";
import {
  blendPixel,
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
import { CLASS_COLORS, IMAGE_CLASS_NAMES, instanceColor } from "./colors.ts";
import { drawText, GLYPH_HEIGHT, LINE_HEIGHT, textWidth } from "./font.ts";

/** A binary mask crop placed in the image (the shape of `PastedMask`). */
export interface OverlayMask {
  /** Column of the crop's left edge. */
  x0: number;
  /** Row of the crop's top edge. */
  y0: number;
  /** Crop width. */
  width: number;
  /** Crop height. */
  height: number;
  /** `height * width` values, non-zero = lesion. */
  mask: Uint8Array;
}

/** Detections to draw (original-image pixels); `SSMDetections` fits. */
export interface OverlayDetections {
  /** `[N·4]` boxes `(x1, y1, x2, y2)`. */
  boxes: ArrayLike<number>;
  /** `[N]` scores. */
  scores: ArrayLike<number>;
  /** Optional masks, one per detection. */
  masks?: readonly OverlayMask[];
}

/** What an overlay shows; `SSMPrediction` fits. */
export interface OverlayPrediction {
  /** The detections. */
  detections: OverlayDetections;
  /** Image-class probabilities (drawn as bars when present). */
  classProbs?: ArrayLike<number>;
  /** The predicted class (default: the argmax of `classProbs`). */
  predictedClass?: number;
}

/** Options of {@linkcode renderOverlay}. */
export interface OverlayOptions {
  /** Mask opacity in [0, 1] (default 0.45). */
  maskAlpha?: number;
  /** Draw each mask's contour in its solid colour (default true). */
  maskContour?: boolean;
  /** Draw boxes (default true). */
  boxes?: boolean;
  /** Box outline width in pixels (default 1, or 2 when the slice's long side is ≥ 384 px). */
  boxThickness?: number;
  /** Score labels drawn for at most this many best detections (default 20; 0 = none). */
  maxLabels?: number;
  /** Detections scoring below this are not drawn (default 0). */
  minScore?: number;
  /** Draw the class-probability panel when `classProbs` is given (default true). */
  classBar?: boolean;
  /** Class names for the panel (default Control, Common Pneumonia, COVID-19). */
  classNames?: readonly string[];
  /** A title line on top of the panel (e.g. the file name). */
  title?: string;
  /** Text magnification (default: 1 below 384 px wide, else 2). */
  textScale?: number;
}

/** A rendered overlay: the canvas and where the slice lies in it. */
export interface OverlayImage extends RgbaImage {
  /** Column of the slice's left edge in the canvas (0). */
  imageX: number;
  /** Row of the slice's top edge in the canvas (0). */
  imageY: number;
}

const PANEL_BG: Rgb = [24, 24, 28];
const TRACK: Rgb = [64, 64, 70];
const WHITE: Rgb = [255, 255, 255];
const BLACK: Rgb = [0, 0, 0];
const DIM: Rgb = [190, 190, 190];

function luminance(c: Rgb): number {
  return 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2];
}

function validate(image: GreyInput, det: OverlayDetections): number {
  checkGrey(image, "renderOverlay: image");
  const n = det.scores.length;
  if (det.boxes.length !== 4 * n) {
    throw new Error(`renderOverlay: ${det.boxes.length} box values for ${n} scores (need 4 each)`);
  }
  if (det.masks && det.masks.length !== n) {
    throw new Error(`renderOverlay: ${det.masks.length} masks for ${n} detections`);
  }
  det.masks?.forEach((m, i) => {
    if (m.mask.length !== m.width * m.height) {
      throw new Error(
        `renderOverlay: mask ${i} has ${m.mask.length} values, not ${m.width}x${m.height}`,
      );
    }
    if (
      m.width > 0 && m.height > 0 &&
      (m.x0 < 0 || m.y0 < 0 || m.x0 + m.width > image.width || m.y0 + m.height > image.height)
    ) {
      throw new Error(
        `renderOverlay: mask ${i} (${m.width}x${m.height} at ${m.x0},${m.y0}) lies outside the ` +
          `${image.width}x${image.height} image`,
      );
    }
  });
  return n;
}

function drawMask(c: RgbaImage, m: OverlayMask, color: Rgb, alpha: number, contour: boolean) {
  const { x0, y0, width: w, height: h, mask } = m;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      if (!mask[y * w + x]) continue;
      const edge = contour && (
        x === 0 || y === 0 || x === w - 1 || y === h - 1 ||
        !mask[y * w + x - 1] || !mask[y * w + x + 1] || !mask[(y - 1) * w + x] ||
        !mask[(y + 1) * w + x]
      );
      blendPixel(c, x0 + x, y0 + y, color, edge ? 1 : alpha);
    }
  }
}

function argmax(v: ArrayLike<number>): number {
  let b = 0;
  for (let i = 1; i < v.length; i++) if (v[i] > v[b]) b = i;
  return b;
}

interface PanelLayout {
  height: number;
  minWidth: number;
}

function panelLayout(names: readonly string[], s: number, title?: string): PanelLayout {
  const pad = 4 * s;
  const nameW = Math.max(...names.map((n) => textWidth(n, s)));
  const minWidth = pad + textWidth(">", s) + 2 * s + nameW + pad + 40 * s + pad +
    textWidth("100.0%", s) + pad;
  const rows = names.length + (title ? 1 : 0);
  return { height: 2 * pad + rows * (LINE_HEIGHT + 3) * s, minWidth };
}

function drawPanel(
  c: RgbaImage,
  top: number,
  probs: ArrayLike<number>,
  predicted: number,
  names: readonly string[],
  s: number,
  title?: string,
) {
  const pad = 4 * s, rowH = (LINE_HEIGHT + 3) * s;
  let y = top + pad;
  if (title) {
    drawText(c, title, pad, y + s, DIM, s);
    y += rowH;
  }
  const markW = textWidth(">", s) + 2 * s;
  const nameW = Math.max(...names.map((n) => textWidth(n, s)));
  const pctW = textWidth("100.0%", s);
  const barX = pad + markW + nameW + pad;
  const barW = Math.max(1, c.width - barX - pad - pctW - pad);
  for (let k = 0; k < names.length; k++) {
    const p = Math.min(1, Math.max(0, Number(probs[k] ?? 0)));
    const color = CLASS_COLORS[k % CLASS_COLORS.length];
    const isPred = k === predicted;
    if (isPred) drawText(c, ">", pad, y + s, WHITE, s);
    drawText(c, names[k], pad + markW, y + s, isPred ? WHITE : DIM, s);
    const barH = GLYPH_HEIGHT * s + 2 * s;
    fillRect(c, barX, y, barW, barH, TRACK);
    fillRect(c, barX, y, Math.round(p * barW), barH, color);
    drawText(c, `${(100 * p).toFixed(1)}%`, barX + barW + pad, y + s, isPred ? WHITE : DIM, s);
    y += rowH;
  }
}

/**
 * Renders a prediction over a greyscale slice into an RGBA canvas.
 *
 * @param image the slice (float [0, 1] or bytes), the frame of the detections
 * @param prediction detections (boxes, scores, optional masks) and optional class probabilities
 * @param opts drawing options
 * @throws {Error} when the arrays' lengths disagree or a mask lies outside the image
 */
export function renderOverlay(
  image: GreyInput,
  prediction: OverlayPrediction,
  opts: OverlayOptions = {},
): OverlayImage {
  const det = prediction.detections;
  const n = validate(image, det);
  const long = Math.max(image.width, image.height);
  const s = Math.max(1, Math.floor(opts.textScale ?? (image.width >= 384 ? 2 : 1)));
  const probs = prediction.classProbs;
  const given = opts.classNames ?? IMAGE_CLASS_NAMES;
  const names = Array.from({ length: probs?.length ?? 0 }, (_, k) => given[k] ?? `Class ${k}`);
  const withPanel = (opts.classBar ?? true) && names.length > 0;
  const panel = withPanel ? panelLayout(names, s, opts.title) : null;
  const width = Math.max(image.width, panel?.minWidth ?? 0);
  const height = image.height + (panel?.height ?? 0);
  const c = createCanvas(width, height, PANEL_BG);
  blitGrey(c, image, 0, 0);

  const minScore = opts.minScore ?? 0;
  const order = Array.from({ length: n }, (_, i) => i)
    .filter((i) => det.scores[i] >= minScore)
    .sort((a, b) => det.scores[b] - det.scores[a] || a - b);
  // Masks: worst first so the best lie on top.
  const alpha = Math.min(1, Math.max(0, opts.maskAlpha ?? 0.45));
  if (det.masks) {
    for (let r = order.length - 1; r >= 0; r--) {
      const i = order[r];
      drawMask(c, det.masks[i], instanceColor(r), alpha, opts.maskContour ?? true);
    }
  }
  const clip = (v: number, hi: number) => Math.min(hi, Math.max(0, v));
  if (opts.boxes ?? true) {
    const t = Math.max(1, Math.floor(opts.boxThickness ?? (long >= 384 ? 2 : 1)));
    for (let r = order.length - 1; r >= 0; r--) {
      const i = order[r];
      const [x1, y1, x2, y2] = boxPixels([
        det.boxes[4 * i],
        det.boxes[4 * i + 1],
        det.boxes[4 * i + 2],
        det.boxes[4 * i + 3],
      ]);
      // Clip to the slice so nothing is drawn over the panel.
      const bx1 = clip(x1, image.width - 1), bx2 = clip(x2, image.width - 1);
      const by1 = clip(y1, image.height - 1), by2 = clip(y2, image.height - 1);
      strokeRect(c, bx1, by1, bx2, by2, instanceColor(r), t);
    }
    const maxLabels = Math.max(0, Math.floor(opts.maxLabels ?? 20));
    const labelH = GLYPH_HEIGHT * s + 2 * s;
    for (let r = Math.min(order.length, maxLabels) - 1; r >= 0; r--) {
      const i = order[r];
      const [x1, y1] = boxPixels([det.boxes[4 * i], det.boxes[4 * i + 1], 0, 0]);
      const text = det.scores[i].toFixed(2);
      const lw = textWidth(text, s) + 2 * s;
      if (lw > image.width || labelH > image.height) continue;
      const lx = clip(x1, image.width - lw);
      let ly = y1 - labelH;
      if (ly < 0) ly = clip(y1, image.height - labelH);
      const color = instanceColor(r);
      fillRect(c, lx, ly, lw, labelH, color);
      drawText(c, text, lx + s, ly + s, luminance(color) > 140 ? BLACK : WHITE, s);
    }
  }
  if (panel) {
    const pred = prediction.predictedClass ?? argmax(probs!);
    drawPanel(c, image.height, probs!, pred, names, s, opts.title);
  }
  return { ...c, imageX: 0, imageY: 0 };
}

/**
 * Renders an overlay ({@linkcode renderOverlay}) and writes it as a PNG file, atomically.
 *
 * @returns the rendered canvas
 */
export async function writeOverlayPng(
  path: string,
  image: GreyInput,
  prediction: OverlayPrediction,
  opts: OverlayOptions = {},
): Promise<OverlayImage> {
  const out = renderOverlay(image, prediction, opts);
  await writeFileAtomic(path, canvasToPng(out));
  return out;
}
