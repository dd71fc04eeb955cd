/**
 * Grouped bar charts rendered to PNG with the toolkit's raster canvas and bitmap font (no DOM,
 * no fonts to install): one group of bars per category (e.g. per model variant), one bar per
 * series (e.g. AP@0.5, AP@0.75, AP@[.5:.95]), a y axis with gridlines and a legend. Used for the
 * figures of `deno task reproduce`.
 *
 * @example
 * ```ts
 * import { barChartPng } from "./charts.ts";
 * const png = barChartPng({
 *   title: "Lesion AP",
 *   categories: ["r18-2-single", "r18-3-scratch"],
 *   series: [{ name: "AP@0.5", values: [0.61, 0.7] }, { name: "AP@[.5:.95]", values: [0.3, 0.41] }],
 *   yMax: 1,
 * });
 * console.log(png.length > 0);
 * ```
 *
 * @module
 */

import { canvasToPng, createCanvas, fillRect, type Rgb, type RgbaImage } from "./canvas.ts";
import { drawText, LINE_HEIGHT, textWidth } from "./font.ts";

/** One series of a bar chart: a bar in every category group. */
export interface BarSeries {
  /** Legend label. */
  name: string;
  /** One value per category (null: no bar). */
  values: readonly (number | null)[];
}

/** A grouped bar chart. */
export interface BarChartSpec {
  /** Title drawn at the top. */
  title: string;
  /** Category labels along the x axis (one group each). */
  categories: readonly string[];
  /** Series (bars within each group). */
  series: readonly BarSeries[];
  /** Axis maximum (default: the largest value rounded up to a nice number). */
  yMax?: number;
  /** Y-axis label (drawn above the axis). */
  yLabel?: string;
  /** Format of tick labels and bar values (default: up to 2 decimals). */
  format?: (v: number) => string;
  /** Draw each bar's value above it (default true). */
  showValues?: boolean;
  /** Text scale of the bitmap font (default 2). */
  scale?: number;
}

/** Series colours (colour-blind-friendly palette, cycled). */
export const SERIES_COLORS: readonly Rgb[] = [
  [0, 114, 178],
  [230, 159, 0],
  [0, 158, 115],
  [204, 121, 167],
  [86, 180, 233],
  [213, 94, 0],
  [240, 228, 66],
];

const BG: Rgb = [255, 255, 255];
const INK: Rgb = [30, 30, 30];
const GRID: Rgb = [225, 225, 225];

/** A "nice" axis maximum ≥ v (1, 2, 2.5 or 5 times a power of ten). */
export function niceMax(v: number): number {
  if (!(v > 0) || !Number.isFinite(v)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v * (1 - 1e-12)) return m * p;
  return 10 * p;
}

function defaultFormat(v: number): string {
  return Number.isInteger(v) ? String(v) : v.toFixed(Math.abs(v) >= 10 ? 0 : 2);
}

/** Draws the chart on a new canvas. */
export function barChart(spec: BarChartSpec): RgbaImage {
  const { categories, series } = spec;
  if (categories.length === 0 || series.length === 0) {
    throw new Error("barChart: needs at least one category and one series");
  }
  series.forEach((s) => {
    if (s.values.length !== categories.length) {
      throw new Error(
        `barChart: series '${s.name}' has ${s.values.length} values for ${categories.length} categories`,
      );
    }
  });
  const sc = Math.max(1, Math.floor(spec.scale ?? 2));
  const fmt = spec.format ?? defaultFormat;
  const all = series.flatMap((s) =>
    s.values.filter((v): v is number => v !== null && Number.isFinite(v))
  );
  const yMax = spec.yMax ?? niceMax(Math.max(0, ...all));
  const lh = LINE_HEIGHT * sc;
  const ticks = 5;
  const tickLabels = Array.from({ length: ticks + 1 }, (_, i) => fmt((yMax * i) / ticks));
  const left = Math.max(...tickLabels.map((t) => textWidth(t, sc))) + 6 * sc;
  const barW = 6 * sc;
  const maxCat = Math.max(...categories.map((c) => textWidth(c, sc)));
  // labels go below the axis, staggered over two rows when they are wider than a group; groups
  // are widened so that labels of the same row never overlap
  const bars = series.length * barW + 6 * sc;
  const stagger = maxCat > bars - 2 * sc ? 2 : 1;
  const groupW = Math.max(bars, Math.ceil((maxCat + 6 * sc) / stagger));
  const plotW = Math.max(categories.length * groupW, 200);
  const legendW = Math.max(...series.map((s) => textWidth(s.name, sc))) + 4 * lh;
  const top = lh * 3 + (spec.yLabel ? lh * 1.5 : 0);
  const plotH = 240 * sc / 2;
  const bottom = lh * (stagger + 1) + 4 * sc;
  const width = Math.ceil(left + plotW + 8 * sc + legendW + 8 * sc);
  const height = Math.ceil(top + plotH + bottom);
  const c = createCanvas(width, height, BG);
  drawText(c, spec.title, left, lh * 0.75, INK, sc);
  if (spec.yLabel) drawText(c, spec.yLabel, 2 * sc, top - lh * 1.5, INK, sc);
  const y0 = top + plotH;
  const yOf = (v: number) => y0 - (Math.max(0, Math.min(v, yMax)) / yMax) * plotH;
  for (let i = 0; i <= ticks; i++) {
    const y = Math.round(yOf((yMax * i) / ticks));
    fillRect(c, left, y, plotW, 1, GRID);
    const t = tickLabels[i];
    drawText(c, t, left - 4 * sc - textWidth(t, sc), y - Math.floor(3.5 * sc), INK, sc);
  }
  fillRect(c, left, top, 1, plotH + 1, INK);
  fillRect(c, left, y0, plotW, 1, INK);
  const slot = plotW / categories.length;
  categories.forEach((cat, ci) => {
    const gx = left + ci * slot + (slot - series.length * barW) / 2;
    series.forEach((s, si) => {
      const v = s.values[ci];
      if (v === null || !Number.isFinite(v)) return;
      const y = yOf(v);
      const x = Math.round(gx + si * barW);
      fillRect(
        c,
        x,
        Math.round(y),
        barW - sc,
        Math.round(y0 - y),
        SERIES_COLORS[si % SERIES_COLORS.length],
      );
      if (spec.showValues ?? true) {
        const label = fmt(v);
        // values are drawn at scale 1 so that neighbouring bars' labels rarely collide
        const ty = Math.max(
          top - LINE_HEIGHT,
          Math.round(y) - LINE_HEIGHT - (si % 2) * LINE_HEIGHT,
        );
        drawText(c, label, x + (barW - sc) / 2 - textWidth(label, 1) / 2, ty, INK, 1);
      }
    });
    const row = stagger === 2 ? ci % 2 : 0;
    const cx = left + ci * slot + slot / 2 - textWidth(cat, sc) / 2;
    drawText(c, cat, Math.max(0, cx), y0 + 4 * sc + row * lh, INK, sc);
  });
  const lx = left + plotW + 8 * sc;
  series.forEach((s, si) => {
    const ly = top + si * lh * 1.5;
    fillRect(c, lx, ly, 2 * lh - 2 * sc, lh - sc, SERIES_COLORS[si % SERIES_COLORS.length]);
    drawText(c, s.name, lx + 2 * lh + 2 * sc, ly, INK, sc);
  });
  return c;
}

/** The chart as PNG bytes. */
export function barChartPng(spec: BarChartSpec): Uint8Array {
  return canvasToPng(barChart(spec));
}
