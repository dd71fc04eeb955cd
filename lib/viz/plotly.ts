/**
 * Plotly figure specs (plain JSON `{data, layout}`, usable with `Plotly.newPlot` in a notebook or
 * a page) for the toolkit's results: the RoI batch (boxes over the slice coloured by rank, and
 * the `[128, 5]` batch as a heatmap), a confusion matrix, precision–recall curves, training
 * curves (raw and smoothed loss per iteration) and grouped bars of a metric per variant (AP, F1).
 *
 * Figures carry Plotly 2+/3+/4 attribute names (`title: {text}`), and nothing here depends on
 * tfjs. {@linkcode writePlotlyHtml} (re-exported from `plotly_html.ts`) writes figures into a
 * standalone HTML page that embeds plotly.js, so it renders offline.
 *
 * @example
 * ```ts
 * import { confusionMatrixFigure, trainingCurvesFigure } from "./plotly.ts";
 * const cm = confusionMatrixFigure([[9322, 123, 5], [174, 7139, 82], [27, 277, 4042]]);
 * const loss = trainingCurvesFigure([{ name: "loss", values: [2, 1.5, 1.2, 1.1, 0.9] }]);
 * console.log(cm.data[0].type, loss.data.length); // heatmap 2
 * ```
 *
 * @module
 */

import { encodePng } from "../data/image.ts";
import { greyByte } from "./canvas.ts";
import { cssRgb, IMAGE_CLASS_NAMES, INSTANCE_PALETTE, viridisColorscale } from "./colors.ts";
import {
  rankColor,
  ROI_BATCH_COLUMNS,
  type RoiBatchFigureInput,
  scaleColumns,
} from "./roi_batch.ts";

export {
  plotlyHtml,
  type PlotlyHtmlOptions,
  plotlyJsSource,
  writePlotlyHtml,
} from "./plotly_html.ts";

/** A Plotly figure: traces and layout, as plain JSON-serialisable objects. */
export interface PlotlyFigure {
  /** Traces. */
  data: Record<string, unknown>[];
  /** Layout. */
  layout: Record<string, unknown>;
}

/** Base64 of bytes (standard alphabet, padded). */
export function bytesToBase64(bytes: Uint8Array): string {
  let bin = "";
  const chunk = 0x8000;
  for (let i = 0; i < bytes.length; i += chunk) {
    bin += String.fromCharCode(...bytes.subarray(i, i + chunk));
  }
  return btoa(bin);
}

/**
 * The RoI batch figure: the slice (a Plotly `image` trace holding a PNG data URI) with the rows'
 * boxes as rectangles coloured by rank (best = yellow, on top) and a hoverable marker per box
 * centre, and beside it the batch as a heatmap (rows = rank, columns min–max scaled per column;
 * hovering shows the raw value).
 */
export function roiBatchFigure(
  input: RoiBatchFigureInput,
  opts: { title?: string } = {},
): PlotlyFigure {
  const { image, boxes, roiBatch } = input;
  const rows = roiBatch.length / 5;
  if (!Number.isInteger(rows) || rows < 1 || boxes.length !== rows * 4) {
    throw new Error(
      `roiBatchFigure: need R x 5 batch values and R x 4 boxes, got ${roiBatch.length} and ${boxes.length}`,
    );
  }
  const grey = new Uint8Array(image.width * image.height);
  for (let i = 0; i < grey.length; i++) grey[i] = greyByte(image, i);
  const png = encodePng({ width: image.width, height: image.height, channels: 1, data: grey });
  const shapes: Record<string, unknown>[] = [];
  const cx: number[] = [], cy: number[] = [], text: string[] = [], colors: string[] = [];
  for (let r = rows - 1; r >= 0; r--) {
    const [x1, y1, x2, y2] = [boxes[4 * r], boxes[4 * r + 1], boxes[4 * r + 2], boxes[4 * r + 3]];
    const color = cssRgb(rankColor(r, rows));
    shapes.push({
      type: "rect",
      xref: "x",
      yref: "y",
      x0: x1,
      y0: y1,
      x1: x2,
      y1: y2,
      line: { color, width: 1 },
    });
    cx.push((x1 + x2) / 2);
    cy.push((y1 + y2) / 2);
    colors.push(color);
    text.push(`rank ${r + 1}, score ${Number(roiBatch[5 * r]).toFixed(4)}`);
  }
  const scaled = scaleColumns(roiBatch, 5);
  const z: number[][] = [], raw: number[][] = [];
  for (let r = 0; r < rows; r++) {
    z.push(Array.from(scaled.subarray(5 * r, 5 * r + 5)));
    raw.push(Array.from({ length: 5 }, (_, j) => Number(roiBatch[5 * r + j])));
  }
  return {
    data: [
      {
        type: "image",
        source: `data:image/png;base64,${bytesToBase64(png)}`,
        xaxis: "x",
        yaxis: "y",
        hoverinfo: "skip",
      },
      {
        type: "scatter",
        mode: "markers",
        x: cx,
        y: cy,
        text,
        marker: { color: colors, size: 4 },
        hovertemplate: "%{text}<extra></extra>",
        showlegend: false,
        xaxis: "x",
        yaxis: "y",
      },
      {
        type: "heatmap",
        z,
        customdata: raw,
        x: [...ROI_BATCH_COLUMNS],
        y: Array.from({ length: rows }, (_, r) => r + 1),
        colorscale: viridisColorscale(),
        zmin: 0,
        zmax: 1,
        showscale: false,
        hovertemplate: "rank %{y}<br>%{x} = %{customdata:.5f}<extra></extra>",
        xaxis: "x2",
        yaxis: "y2",
      },
    ],
    layout: {
      title: { text: opts.title ?? `RoI batch (${rows} rows)` },
      shapes,
      xaxis: { domain: [0, 0.68], range: [0, image.width], showgrid: false, constrain: "domain" },
      yaxis: {
        range: [image.height, 0],
        scaleanchor: "x",
        showgrid: false,
        constrain: "domain",
      },
      xaxis2: { domain: [0.76, 1], anchor: "y2", side: "top" },
      yaxis2: { anchor: "x2", autorange: "reversed", title: { text: "rank" } },
      margin: { l: 40, r: 20, t: 60, b: 30 },
      height: 560,
    },
  };
}

/** Options of {@linkcode confusionMatrixFigure}. */
export interface ConfusionMatrixFigureOptions {
  /** Class names (default Control, Common Pneumonia, COVID-19). */
  classNames?: readonly string[];
  /** Colour by row fraction (per-class sensitivity) instead of counts (default true). */
  normalize?: boolean;
  /** Title. */
  title?: string;
}

/**
 * A confusion matrix heatmap: rows = true class, columns = predicted class (the metrics'
 * convention), each cell annotated with its count (and the row percentage when normalised).
 */
export function confusionMatrixFigure(
  matrix: readonly (readonly number[])[],
  opts: ConfusionMatrixFigureOptions = {},
): PlotlyFigure {
  const k = matrix.length;
  if (k === 0 || matrix.some((r) => r.length !== k)) {
    throw new Error(`confusionMatrixFigure: the matrix must be square, got ${k} rows`);
  }
  const names = Array.from(
    { length: k },
    (_, i) => (opts.classNames ?? IMAGE_CLASS_NAMES)[i] ?? `${i}`,
  );
  const normalize = opts.normalize ?? true;
  const z = matrix.map((row) => {
    const sum = row.reduce((a, b) => a + b, 0);
    return row.map((v) => normalize ? (sum > 0 ? v / sum : 0) : v);
  });
  const text = matrix.map((row, i) =>
    row.map((v, j) => normalize ? `${v}<br>${(100 * z[i][j]).toFixed(1)}%` : `${v}`)
  );
  return {
    data: [{
      type: "heatmap",
      z,
      x: names,
      y: names,
      text,
      texttemplate: "%{text}",
      colorscale: "Blues",
      zmin: 0,
      zmax: normalize ? 1 : undefined,
      hovertemplate: "true %{y}<br>predicted %{x}<br>%{text}<extra></extra>",
    }],
    layout: {
      title: { text: opts.title ?? "Confusion matrix" },
      xaxis: { title: { text: "Predicted" }, side: "bottom" },
      yaxis: { title: { text: "True" }, autorange: "reversed" },
      width: 520,
      height: 480,
    },
  };
}

/** One precision–recall curve. */
export interface PrCurve {
  /** Legend name. */
  name: string;
  /** Recall values (x). */
  recall: ArrayLike<number>;
  /** Precision values (y), same length. */
  precision: ArrayLike<number>;
  /** Average precision, shown in the legend when given. */
  ap?: number;
}

/** Precision–recall curves (step lines), one trace per curve. */
export function prCurvesFigure(
  curves: readonly PrCurve[],
  opts: { title?: string } = {},
): PlotlyFigure {
  const data = curves.map((c, i) => {
    if (c.recall.length !== c.precision.length) {
      throw new Error(
        `prCurvesFigure: curve '${c.name}' has ${c.recall.length} recall and ` +
          `${c.precision.length} precision values`,
      );
    }
    return {
      type: "scatter",
      mode: "lines",
      name: c.ap === undefined ? c.name : `${c.name} (AP ${(100 * c.ap).toFixed(1)})`,
      x: Array.from(c.recall, Number),
      y: Array.from(c.precision, Number),
      line: { shape: "hv", color: cssRgb(INSTANCE_PALETTE[i % INSTANCE_PALETTE.length]) },
    };
  });
  return {
    data,
    layout: {
      title: { text: opts.title ?? "Precision-recall" },
      xaxis: { title: { text: "Recall" }, range: [0, 1.02] },
      yaxis: { title: { text: "Precision" }, range: [0, 1.02] },
    },
  };
}

/**
 * Exponential moving average with TensorBoard's debiasing:
 * `m_t = w·m_{t-1} + (1 - w)·v_t`, `s_t = m_t / (1 - w^t)`, where `t` counts the finite values
 * so far. Non-finite values give NaN and leave the average unchanged.
 *
 * @param weight smoothing in [0, 1) (0 = none)
 */
export function smoothEma(values: ArrayLike<number>, weight: number): Float64Array {
  if (!(weight >= 0 && weight < 1)) {
    throw new Error(`smoothEma: weight must be in [0, 1), got ${weight}`);
  }
  const out = new Float64Array(values.length);
  let last = 0, t = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (!Number.isFinite(v)) {
      out[i] = NaN;
      continue;
    }
    last = last * weight + (1 - weight) * v;
    t++;
    out[i] = weight === 0 ? v : last / (1 - Math.pow(weight, t));
  }
  return out;
}

/** One training curve. */
export interface TrainingSeries {
  /** Legend name (e.g. `loss_classifier`). */
  name: string;
  /** Values per logged step. */
  values: ArrayLike<number>;
  /** Iteration of each value (default 1, 2, ...). */
  iterations?: ArrayLike<number>;
}

/** Options of {@linkcode trainingCurvesFigure}. */
export interface TrainingCurvesOptions {
  /** EMA smoothing weight (default 0.9; 0 draws only the raw curves). */
  smoothing?: number;
  /** Title. */
  title?: string;
  /** Y axis title (default `loss`). */
  yTitle?: string;
  /** Logarithmic y axis (default false). */
  logY?: boolean;
}

/**
 * Training curves: per series a faint raw line and a solid smoothed line ({@linkcode smoothEma})
 * in the same colour, against the iteration.
 */
export function trainingCurvesFigure(
  series: readonly TrainingSeries[],
  opts: TrainingCurvesOptions = {},
): PlotlyFigure {
  const w = opts.smoothing ?? 0.9;
  const data: Record<string, unknown>[] = [];
  series.forEach((s, i) => {
    const n = s.values.length;
    if (s.iterations && s.iterations.length !== n) {
      throw new Error(
        `trainingCurvesFigure: series '${s.name}' has ${n} values and ${s.iterations.length} iterations`,
      );
    }
    const x = s.iterations
      ? Array.from(s.iterations, Number)
      : Array.from({ length: n }, (_, k) => k + 1);
    const color = INSTANCE_PALETTE[i % INSTANCE_PALETTE.length];
    const raw = Array.from(s.values, (v) => (Number.isFinite(v) ? Number(v) : null));
    data.push({
      type: "scatter",
      mode: "lines",
      name: w > 0 ? `${s.name} (raw)` : s.name,
      x,
      y: raw,
      legendgroup: s.name,
      showlegend: w === 0,
      line: { color: cssRgb(color, w > 0 ? 0.3 : 1), width: 1 },
    });
    if (w > 0) {
      data.push({
        type: "scatter",
        mode: "lines",
        name: s.name,
        x,
        y: Array.from(smoothEma(s.values, w), (v) => (Number.isFinite(v) ? v : null)),
        legendgroup: s.name,
        line: { color: cssRgb(color), width: 2 },
      });
    }
  });
  return {
    data,
    layout: {
      title: { text: opts.title ?? "Training" + (w > 0 ? ` (EMA ${w})` : "") },
      xaxis: { title: { text: "iteration" } },
      yaxis: { title: { text: opts.yTitle ?? "loss" }, type: opts.logY ? "log" : "linear" },
    },
  };
}

/** Options of {@linkcode metricBarsFigure}. */
export interface MetricBarsOptions {
  /** Title. */
  title?: string;
  /** Y axis title. */
  yTitle?: string;
  /** Values are fractions shown as percentages (default true). */
  percent?: boolean;
}

/**
 * Grouped bars: one group per variant, one bar per metric (e.g. `{AP: [...], F1: [...]}`), each
 * bar labelled with its value.
 */
export function metricBarsFigure(
  variants: readonly string[],
  metrics: Record<string, ArrayLike<number>>,
  opts: MetricBarsOptions = {},
): PlotlyFigure {
  const percent = opts.percent ?? true;
  const data = Object.entries(metrics).map(([name, values], i) => {
    if (values.length !== variants.length) {
      throw new Error(
        `metricBarsFigure: metric '${name}' has ${values.length} values for ${variants.length} variants`,
      );
    }
    const y = Array.from(values, (v) => (percent ? 100 * v : Number(v)));
    return {
      type: "bar",
      name,
      x: [...variants],
      y,
      text: y.map((v) => v.toFixed(percent ? 1 : 3)),
      textposition: "outside",
      marker: { color: cssRgb(INSTANCE_PALETTE[i % INSTANCE_PALETTE.length]) },
    };
  });
  return {
    data,
    layout: {
      title: { text: opts.title ?? "Metrics per variant" },
      barmode: "group",
      yaxis: { title: { text: opts.yTitle ?? (percent ? "%" : "value") } },
      xaxis: { tickangle: variants.length > 6 ? -30 : 0 },
    },
  };
}
