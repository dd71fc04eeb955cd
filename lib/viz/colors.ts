/**
 * Colours shared by the raster figures and the Plotly specs: the viridis colour map (piecewise
 * linear through nine samples of matplotlib's table), a categorical palette for lesion instances
 * (saturated colours only, so a mask over a grey slice is never grey) and one colour per image
 * class.
 *
 * @example
 * ```ts
 * import { CLASS_COLORS, instanceColor, viridis } from "./colors.ts";
 * console.log(viridis(0), viridis(1)); // [68, 1, 84] [253, 231, 37]
 * console.log(instanceColor(0), CLASS_COLORS[2]);
 * ```
 *
 * @module
 */

import type { Rgb } from "./canvas.ts";

const VIRIDIS: readonly Rgb[] = [
  [68, 1, 84],
  [71, 44, 122],
  [59, 81, 139],
  [44, 113, 142],
  [33, 144, 141],
  [39, 173, 129],
  [92, 200, 99],
  [170, 220, 50],
  [253, 231, 37],
];

/** Viridis at `t` in [0, 1] (clamped; NaN gives the low end). */
export function viridis(t: number): Rgb {
  const u = Number.isFinite(t) ? Math.min(1, Math.max(0, t)) : 0;
  const f = u * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(f));
  const a = f - i;
  const p = VIRIDIS[i], q = VIRIDIS[i + 1];
  return [
    Math.round(p[0] + a * (q[0] - p[0])),
    Math.round(p[1] + a * (q[1] - p[1])),
    Math.round(p[2] + a * (q[2] - p[2])),
  ];
}

/** Viridis as a Plotly `colorscale` (`[[position, "rgb(r,g,b)"], ...]`). */
export function viridisColorscale(): [number, string][] {
  return VIRIDIS.map((c, i) => [i / (VIRIDIS.length - 1), cssRgb(c)]);
}

/** `rgb(r,g,b)` for a colour, optionally `rgba(r,g,b,a)`. */
export function cssRgb(c: Rgb, alpha?: number): string {
  return alpha === undefined
    ? `rgb(${c[0]},${c[1]},${c[2]})`
    : `rgba(${c[0]},${c[1]},${c[2]},${alpha})`;
}

/** Categorical palette for lesion instances (Tableau-like, greys left out). */
export const INSTANCE_PALETTE: readonly Rgb[] = [
  [31, 119, 180],
  [255, 127, 14],
  [44, 160, 44],
  [214, 39, 40],
  [148, 103, 189],
  [23, 190, 207],
  [227, 119, 194],
  [188, 189, 34],
  [140, 86, 75],
  [0, 200, 120],
];

/** Colour of instance `i` (cycling through {@linkcode INSTANCE_PALETTE}). */
export function instanceColor(i: number): Rgb {
  const n = INSTANCE_PALETTE.length;
  return INSTANCE_PALETTE[((i % n) + n) % n];
}

/** One colour per image class: Control (green), Common Pneumonia (orange), COVID-19 (red). */
export const CLASS_COLORS: readonly Rgb[] = [
  [60, 180, 75],
  [245, 150, 30],
  [220, 40, 40],
];

/** The image classes in label order (0, 1, 2). */
export const IMAGE_CLASS_NAMES: readonly string[] = ["Control", "Common Pneumonia", "COVID-19"];
