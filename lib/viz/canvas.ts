/**
 * A minimal RGBA raster for figures: an 8-bit `width x height x 4` buffer with clipped pixel,
 * rectangle and alpha-blending primitives, a greyscale image blit and PNG encoding. Pure typed
 * arrays (no tfjs, no DOM), so figures render the same in Deno, in a notebook and in tests.
 *
 * Alpha blending is the "over" operator on an opaque background, rounded to the nearest byte:
 * `out = round((1 - a) * dst + a * src)`.
 *
 * @example
 * ```ts
 * import { blitGrey, createCanvas, fillRect, strokeRect } from "./canvas.ts";
 * const c = createCanvas(64, 64, [0, 0, 0]);
 * blitGrey(c, { width: 64, height: 64, data: new Float32Array(64 * 64).fill(0.5) }, 0, 0);
 * fillRect(c, 8, 8, 16, 16, [255, 0, 0], 0.5);
 * strokeRect(c, 4, 4, 40, 40, [0, 255, 0], 1);
 * console.log(c.rgba.length); // 16384
 * ```
 *
 * @module
 */

import { encodePng } from "../data/image.ts";

/** An 8-bit RGB colour. */
export type Rgb = readonly [number, number, number];

/** An 8-bit RGBA image, row-major, interleaved (`(y * width + x) * 4`). Alpha is always 255. */
export interface RgbaImage {
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
  /** `width * height * 4` bytes. */
  rgba: Uint8Array;
}

/**
 * A greyscale image: float values in [0, 1] (`Float32Array`/`Float64Array`) or bytes 0..255
 * (`Uint8Array`), row-major `height * width`.
 */
export interface GreyInput {
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
  /** Pixel values. */
  data: Float32Array | Float64Array | Uint8Array;
}

/** A new opaque canvas filled with `background` (default black). */
export function createCanvas(
  width: number,
  height: number,
  background: Rgb = [0, 0, 0],
): RgbaImage {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new Error(`createCanvas: size must be positive integers, got ${width}x${height}`);
  }
  const rgba = new Uint8Array(width * height * 4);
  for (let i = 0; i < rgba.length; i += 4) {
    rgba[i] = background[0];
    rgba[i + 1] = background[1];
    rgba[i + 2] = background[2];
    rgba[i + 3] = 255;
  }
  return { width, height, rgba };
}

/** The 8-bit grey level of pixel `i` of a {@linkcode GreyInput} (floats are rounded and clamped). */
export function greyByte(img: GreyInput, i: number): number {
  if (img.data instanceof Uint8Array) return img.data[i];
  const v = Math.round(img.data[i] * 255);
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/** Checks a {@linkcode GreyInput}'s size against its data; `what` names it in the error. */
export function checkGrey(img: GreyInput, what = "image"): void {
  const { width, height, data } = img;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new Error(`${what}: size must be positive integers, got ${width}x${height}`);
  }
  if (!data || data.length !== width * height) {
    throw new Error(`${what}: data has ${data?.length} values, expected ${width}x${height}`);
  }
}

/** Copies a greyscale image into the canvas with its top-left corner at `(x0, y0)` (clipped). */
export function blitGrey(canvas: RgbaImage, img: GreyInput, x0: number, y0: number): void {
  checkGrey(img);
  const { rgba, width: W, height: H } = canvas;
  for (let y = 0; y < img.height; y++) {
    const cy = y0 + y;
    if (cy < 0 || cy >= H) continue;
    for (let x = 0; x < img.width; x++) {
      const cx = x0 + x;
      if (cx < 0 || cx >= W) continue;
      const g = greyByte(img, y * img.width + x);
      const o = (cy * W + cx) * 4;
      rgba[o] = rgba[o + 1] = rgba[o + 2] = g;
      rgba[o + 3] = 255;
    }
  }
}

/** Blends `color` with opacity `alpha` (0..1) over pixel `(x, y)`; outside the canvas: no-op. */
export function blendPixel(canvas: RgbaImage, x: number, y: number, color: Rgb, alpha = 1): void {
  if (x < 0 || y < 0 || x >= canvas.width || y >= canvas.height) return;
  const o = (y * canvas.width + x) * 4;
  const p = canvas.rgba;
  if (alpha >= 1) {
    p[o] = color[0];
    p[o + 1] = color[1];
    p[o + 2] = color[2];
  } else if (alpha > 0) {
    p[o] = Math.round((1 - alpha) * p[o] + alpha * color[0]);
    p[o + 1] = Math.round((1 - alpha) * p[o + 1] + alpha * color[1]);
    p[o + 2] = Math.round((1 - alpha) * p[o + 2] + alpha * color[2]);
  }
}

/** Fills the `w x h` rectangle at `(x, y)` (integer pixels, clipped), optionally translucent. */
export function fillRect(
  canvas: RgbaImage,
  x: number,
  y: number,
  w: number,
  h: number,
  color: Rgb,
  alpha = 1,
): void {
  const xa = Math.max(0, Math.floor(x)), ya = Math.max(0, Math.floor(y));
  const xb = Math.min(canvas.width, Math.floor(x + w)),
    yb = Math.min(canvas.height, Math.floor(y + h));
  for (let yy = ya; yy < yb; yy++) {
    for (let xx = xa; xx < xb; xx++) blendPixel(canvas, xx, yy, color, alpha);
  }
}

/**
 * Outlines the pixel rectangle with inclusive corners `(x1, y1)`–`(x2, y2)` with a line
 * `thickness` pixels wide drawn inwards (clipped). A degenerate box (zero height or width) is
 * drawn as a line.
 */
export function strokeRect(
  canvas: RgbaImage,
  x1: number,
  y1: number,
  x2: number,
  y2: number,
  color: Rgb,
  thickness = 1,
): void {
  const t = Math.max(1, Math.floor(thickness));
  const w = x2 - x1 + 1, h = y2 - y1 + 1;
  if (w <= 0 || h <= 0) return;
  fillRect(canvas, x1, y1, w, Math.min(t, h), color);
  fillRect(canvas, x1, y2 - Math.min(t, h) + 1, w, Math.min(t, h), color);
  fillRect(canvas, x1, y1, Math.min(t, w), h, color);
  fillRect(canvas, x2 - Math.min(t, w) + 1, y1, Math.min(t, w), h, color);
}

/**
 * The integer pixel rectangle `[x1, y1, x2, y2]` (inclusive) covered by a continuous box
 * `(x1, y1, x2, y2)`: `floor` of the top-left corner, `ceil - 1` of the bottom-right one (at
 * least one pixel wide and high).
 */
export function boxPixels(box: ArrayLike<number>): [number, number, number, number] {
  const x1 = Math.floor(box[0]), y1 = Math.floor(box[1]);
  const x2 = Math.max(x1, Math.ceil(box[2]) - 1), y2 = Math.max(y1, Math.ceil(box[3]) - 1);
  return [x1, y1, x2, y2];
}

/** Encodes the canvas as RGBA PNG bytes. */
export function canvasToPng(canvas: RgbaImage): Uint8Array {
  return encodePng({
    width: canvas.width,
    height: canvas.height,
    channels: 4,
    data: canvas.rgba,
  });
}
