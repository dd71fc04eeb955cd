/**
 * Rich output for Jupyter notebooks on the Deno kernel (`deno jupyter`): media bundles for PNG
 * images, HTML tables and Plotly figures, shown with `Deno.jupyter.display` and updated in place
 * through a display id (live training curves). Outside the kernel (`deno run`, tests) showing a
 * bundle prints its `text/plain` part, so notebook code also runs as a script.
 *
 * Plotly renders offline: {@linkcode plotlyLoaderBundle} embeds the installed `plotly.js-dist`
 * bundle (compressed) once per notebook in an HTML output, and each
 * {@linkcode plotlyBundle} is a small HTML output that calls `Plotly.newPlot` on its own `div`
 * (marked with {@linkcode PLOTLY_OUTPUT_MARKER} so executed notebooks can be checked). Every
 * figure bundle also carries the `application/vnd.plotly.v1+json` spec, which frontends with a
 * Plotly renderer (VS Code, JupyterLab with the plotly extension) use instead of the HTML.
 *
 * @example
 * ```ts
 * import { htmlTable, plotlyBundle, show } from "./notebook.ts";
 * import { trainingCurvesFigure } from "./plotly.ts";
 * const fig = trainingCurvesFigure([{ name: "loss", values: [1, 0.8, 0.7] }]);
 * await show(plotlyBundle(fig, { name: "loss" })); // prints a one-line summary outside Jupyter
 * await show(htmlTable([{ key: "ap", label: "AP", format: "percent" }], [{ ap: 0.42 }]));
 * ```
 *
 * @module
 */

import { canvasToPng, type RgbaImage } from "./canvas.ts";
import { bytesToBase64, type PlotlyFigure } from "./plotly.ts";
import { plotlyJsSource } from "./plotly_html.ts";
import { gzipSync, strToU8 } from "fflate";

export type { RgbaImage } from "./canvas.ts";
export type { PlotlyFigure } from "./plotly.ts";

/** A Jupyter media bundle: MIME type → data (base64 text for images, objects for JSON types). */
export type MediaBundle = Record<string, string | Record<string, unknown>>;

/** Attribute set on the `div` of every Plotly figure output (its value is the figure's name). */
export const PLOTLY_OUTPUT_MARKER = "data-ssm-plotly";

/** Attribute set on the output that loads plotly.js. */
export const PLOTLY_LOADER_MARKER = "data-ssm-plotly-loader";

/** Attribute set on the `table` of every {@linkcode htmlTable} output (its value is the caption). */
export const TABLE_OUTPUT_MARKER = "data-ssm-table";

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

function escapeHtml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;");
}

/** JSON safe inside a `<script>` element. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, "\\u003c")
    .replace(/\u2028/g, "\\u2028")
    .replace(/\u2029/g, "\\u2029");
}

/** Options of {@linkcode pngBundle}. */
export interface PngBundleOptions {
  /** Text shown by frontends that cannot show images (default `PNG W x H`). */
  alt?: string;
  /** Display width in CSS pixels (the image is scaled by the frontend; default: natural size). */
  width?: number;
}

/**
 * A bundle showing PNG bytes as an `image/png` output.
 *
 * @throws {Error} when the bytes are not a PNG file
 */
export function pngBundle(png: Uint8Array, opts: PngBundleOptions = {}): MediaBundle {
  if (png.length < 24 || PNG_SIGNATURE.some((b, i) => png[i] !== b)) {
    throw new Error("pngBundle: the bytes are not a PNG file (bad signature)");
  }
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  const w = view.getUint32(16), h = view.getUint32(20);
  const bundle: MediaBundle = {
    "image/png": bytesToBase64(png),
    "text/plain": opts.alt ?? `PNG ${w} x ${h}`,
  };
  if (opts.width !== undefined) {
    if (!(opts.width > 0)) throw new Error(`pngBundle: width must be > 0, got ${opts.width}`);
    bundle["__metadata__"] = { "image/png": { width: opts.width } };
  }
  return bundle;
}

/** A bundle showing an RGBA canvas (an overlay, the RoI batch figure) as a PNG image. */
export function canvasBundle(canvas: RgbaImage, opts: PngBundleOptions = {}): MediaBundle {
  return pngBundle(canvasToPng(canvas), opts);
}

/**
 * Places canvases side by side (tops aligned) on a background, `gap` pixels apart: e.g. the
 * ground truth next to the prediction.
 *
 * @throws {Error} when no canvas is given or `gap` is negative
 */
export function sideBySide(
  canvases: readonly RgbaImage[],
  gap = 8,
  background: readonly [number, number, number] = [255, 255, 255],
): RgbaImage {
  if (canvases.length === 0) throw new Error("sideBySide: no canvas given");
  if (!(Number.isInteger(gap) && gap >= 0)) {
    throw new Error(`sideBySide: gap must be a non-negative integer, got ${gap}`);
  }
  const width = canvases.reduce((w, c) => w + c.width, 0) + gap * (canvases.length - 1);
  const height = Math.max(...canvases.map((c) => c.height));
  const rgba = new Uint8Array(width * height * 4);
  for (let i = 0; i < width * height; i++) {
    rgba.set(background, 4 * i);
    rgba[4 * i + 3] = 255;
  }
  let x0 = 0;
  for (const c of canvases) {
    for (let y = 0; y < c.height; y++) {
      rgba.set(c.rgba.subarray(y * c.width * 4, (y + 1) * c.width * 4), (y * width + x0) * 4);
    }
    x0 += c.width + gap;
  }
  return { width, height, rgba };
}

/**
 * Largest output {@linkcode show} sends, in characters. The Deno kernel (2.x) signs larger
 * messages wrongly (about 8 MB and up) and Jupyter drops them with "Invalid Signature".
 */
export const MAX_OUTPUT_CHARS = 6_000_000;

/**
 * The HTML output that loads plotly.js (the installed `plotly.js-dist` bundle) into the notebook
 * page. Show it once, before the first figure; the page then draws figures offline. The library
 * travels gzip-compressed and base64-encoded (about 2.6 MB instead of 10 MB, below the kernel's
 * message limit) and is decompressed in the browser with `DecompressionStream`; figures wait for
 * it through the `window.__ssmPlotlyReady` promise.
 *
 * @param plotlyJs the library source (default: the installed bundle)
 */
export function plotlyLoaderBundle(plotlyJs: string = plotlyJsSource()): MediaBundle {
  const version = /plotly\.js v([0-9.]+)/.exec(plotlyJs.slice(0, 200))?.[1] ?? "unknown";
  const b64 = bytesToBase64(gzipSync(strToU8(plotlyJs), { level: 6 }));
  return {
    "text/html": `<div ${PLOTLY_LOADER_MARKER}="${escapeHtml(version)}" ` +
      `style="font-size:smaller;color:#666">plotly.js ${escapeHtml(version)} ` +
      `embedded (offline)</div>
<script>window.__ssmPlotlyReady = (async function () {
  if (window.Plotly) return;
  var bin = atob("${b64}");
  var bytes = new Uint8Array(bin.length);
  for (var i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  var gunzip = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
  var script = document.createElement("script");
  script.text = await new Response(gunzip).text();
  document.head.appendChild(script);
})();</script>`,
    "text/plain": `plotly.js ${version} embedded`,
  };
}

let figureCounter = 0;

/** Options of {@linkcode plotlyBundle}. */
export interface PlotlyBundleOptions {
  /** Figure name, written into the output's {@linkcode PLOTLY_OUTPUT_MARKER} attribute. */
  name?: string;
  /** Height in CSS pixels (default: the layout's `height`, else 420). */
  height?: number;
}

/**
 * A bundle drawing a Plotly figure: HTML that calls `Plotly.newPlot` (needs
 * {@linkcode plotlyLoaderBundle} shown earlier in the page), the Plotly JSON spec for frontends
 * with a Plotly renderer, and a one-line text summary.
 *
 * @throws {Error} when the figure is not `{data: [...], layout: {...}}`
 */
export function plotlyBundle(figure: PlotlyFigure, opts: PlotlyBundleOptions = {}): MediaBundle {
  if (
    !figure || !Array.isArray(figure.data) || typeof figure.layout !== "object" || !figure.layout
  ) {
    throw new Error("plotlyBundle: the figure must be {data: [...], layout: {...}}");
  }
  const name = opts.name ?? "figure";
  const layoutHeight = typeof figure.layout.height === "number" ? figure.layout.height : null;
  const height = opts.height ?? layoutHeight ?? 420;
  const id = `ssm-plotly-${++figureCounter}-${Math.random().toString(36).slice(2, 10)}`;
  const title = (figure.layout.title as { text?: string } | undefined)?.text ?? name;
  const html = `<div id="${id}" ${PLOTLY_OUTPUT_MARKER}="${escapeHtml(name)}" ` +
    `style="width:100%;max-width:1100px;height:${height}px"></div>
<script>(function () {
  var el = document.getElementById(${scriptJson(id)});
  var fig = ${scriptJson({ data: figure.data, layout: figure.layout })};
  function draw() {
    if (window.Plotly) {
      window.Plotly.newPlot(el, fig.data, fig.layout, {responsive: true});
    } else {
      el.style.height = "auto";
      el.textContent = "plotly.js is not loaded in this page: run the notebook's setup cell " +
        "(the one showing plotlyLoaderBundle()) and then this cell again.";
    }
  }
  if (!window.Plotly && window.__ssmPlotlyReady) window.__ssmPlotlyReady.then(draw, draw);
  else draw();
})();</script>`;
  return {
    "text/html": html,
    "application/vnd.plotly.v1+json": { data: figure.data, layout: figure.layout },
    "text/plain": `[Plotly figure '${name}': ${title}, ${figure.data.length} trace(s)]`,
  };
}

/** One column of {@linkcode htmlTable}. */
export interface HtmlTableColumn {
  /** Key of the value in each row. */
  key: string;
  /** Header text (default: the key). */
  label?: string;
  /** `percent` (fraction × 100), `number`, or `text` (default: `number` for numbers). */
  format?: "percent" | "number" | "text";
  /** Decimals for numbers (default 2). */
  digits?: number;
  /** Mark the best value of the column in bold: the largest (`max`) or the smallest (`min`). */
  best?: "max" | "min";
}

/** Options of {@linkcode htmlTable}. */
export interface HtmlTableOptions {
  /** Caption above the table. */
  caption?: string;
}

/**
 * A bundle showing rows as an HTML table (and as aligned plain text), in the style of the
 * paper's Tables 2 and 3: one row per variant, the best value of a column in bold.
 *
 * @throws {Error} when a column key is repeated
 */
export function htmlTable(
  columns: readonly HtmlTableColumn[],
  rows: readonly Record<string, unknown>[],
  opts: HtmlTableOptions = {},
): MediaBundle {
  const keys = new Set<string>();
  for (const c of columns) {
    if (keys.has(c.key)) throw new Error(`htmlTable: column '${c.key}' appears twice`);
    keys.add(c.key);
  }
  const fmt = (c: HtmlTableColumn, v: unknown): string => {
    if (v === null || v === undefined) return "–";
    if (typeof v !== "number" || c.format === "text") return String(v);
    if (!Number.isFinite(v)) return String(v);
    const d = c.digits ?? 2;
    return c.format === "percent" ? (100 * v).toFixed(d) : v.toFixed(d);
  };
  const bestRow = columns.map((c) => {
    if (!c.best) return -1;
    let best = -1;
    rows.forEach((r, i) => {
      const v = r[c.key];
      if (typeof v !== "number" || !Number.isFinite(v)) return;
      const b = best < 0 ? null : rows[best][c.key] as number;
      if (b === null || (c.best === "max" ? v > b : v < b)) best = i;
    });
    return best;
  });
  const label = (c: HtmlTableColumn) => (c.label ?? c.key) + (c.format === "percent" ? " (%)" : "");
  const cells = rows.map((r) => columns.map((c) => fmt(c, r[c.key])));
  const numeric = columns.map((c) =>
    c.format !== "text" && rows.some((r) => typeof r[c.key] === "number")
  );
  const align = (_c: HtmlTableColumn, j: number) => (numeric[j] ? "right" : "left");
  const head = columns.map((c, j) =>
    `<th style="text-align:${align(c, j)}">${escapeHtml(label(c))}</th>`
  ).join("");
  const body = cells.map((row, i) =>
    "<tr>" + row.map((v, j) => {
      const text = escapeHtml(v);
      const style = `text-align:${align(columns[j], j)}`;
      return `<td style="${style}">${bestRow[j] === i ? `<b>${text}</b>` : text}</td>`;
    }).join("") + "</tr>"
  ).join("\n");
  const caption = opts.caption ?? "";
  const html = `<table ${TABLE_OUTPUT_MARKER}="${escapeHtml(caption)}">` +
    (caption ? `<caption style="caption-side:top">${escapeHtml(caption)}</caption>` : "") +
    `<thead><tr>${head}</tr></thead>\n<tbody>\n${body}\n</tbody></table>`;
  const widths = columns.map((c, j) => Math.max(label(c).length, ...cells.map((r) => r[j].length)));
  const line = (vals: string[]) =>
    vals.map((v, j) =>
      align(columns[j], j) === "left" ? v.padEnd(widths[j]) : v.padStart(widths[j])
    )
      .join("  ");
  const text = [
    ...(caption ? [caption] : []),
    line(columns.map(label)),
    ...cells.map((r, i) => line(r.map((v, j) => bestRow[j] === i ? `${v}*` : v))),
  ].join("\n");
  return { "text/html": html, "text/plain": text };
}

/** A bundle with Markdown text (rendered by the frontend). */
export function markdownBundle(markdown: string): MediaBundle {
  return { "text/markdown": markdown, "text/plain": markdown };
}

interface JupyterApi {
  display(
    obj: unknown,
    options?: { raw?: boolean; update?: boolean; display_id?: string },
  ): Promise<void>;
}

/** The kernel's `Deno.jupyter` when running in `deno jupyter`, else null. */
function jupyterApi(): JupyterApi | null {
  try {
    const api = (Deno as unknown as { jupyter?: JupyterApi }).jupyter;
    return api && typeof api.display === "function" ? api : null;
  } catch {
    return null; // the getter throws outside the Jupyter kernel
  }
}

/** Whether this code runs in the Deno Jupyter kernel. */
export function inJupyter(): boolean {
  return jupyterApi() !== null;
}

/** Options of {@linkcode show}. */
export interface ShowOptions {
  /** Display id: a later `show` with the same id and `update: true` replaces this output. */
  displayId?: string;
  /** Replace the output shown earlier with `displayId` instead of adding one. */
  update?: boolean;
}

function splitMetadata(bundle: MediaBundle): { data: MediaBundle; metadata?: unknown } {
  if (!("__metadata__" in bundle)) return { data: bundle };
  const { __metadata__: metadata, ...data } = bundle;
  return { data, metadata };
}

/**
 * Shows a bundle as a notebook output (outside Jupyter: prints its `text/plain` part).
 *
 * @throws {Error} when `update` is set without a `displayId`
 */
export async function show(bundle: MediaBundle, opts: ShowOptions = {}): Promise<void> {
  if (opts.update && !opts.displayId) throw new Error("show: update needs a displayId");
  const size = Object.values(bundle).reduce(
    (n, v) => n + (typeof v === "string" ? v.length : JSON.stringify(v).length),
    0,
  );
  if (size > MAX_OUTPUT_CHARS) {
    throw new Error(
      `show: the output has ${(size / 1e6).toFixed(1)} M characters, more than the ` +
        `${MAX_OUTPUT_CHARS / 1e6} M the Deno kernel can send (larger messages are dropped); ` +
        "show less (e.g. a smaller image)",
    );
  }
  const api = jupyterApi();
  const { data, metadata } = splitMetadata(bundle);
  if (!api) {
    if (!opts.update) console.log(String(data["text/plain"] ?? "[rich output]"));
    return;
  }
  if (metadata) {
    // Deno's display() has no metadata argument: send the message as the kernel would.
    const broadcast = (Deno as unknown as {
      jupyter: { broadcast(t: string, c: Record<string, unknown>): Promise<void> };
    }).jupyter.broadcast;
    await broadcast(opts.update ? "update_display_data" : "display_data", {
      data,
      metadata,
      transient: opts.displayId ? { display_id: opts.displayId } : {},
    });
    return;
  }
  await api.display(data, { raw: true, display_id: opts.displayId, update: opts.update });
}

/**
 * An output that is shown once and then replaced in place (a live loss chart): the first
 * {@linkcode LiveOutput.update} adds the output, later ones replace it.
 */
export class LiveOutput {
  private shown = false;

  /**
   * Creates the output (nothing is shown until the first update).
   *
   * @param displayId the display id (unique within the notebook page; default: random)
   */
  constructor(readonly displayId: string = `ssm-live-${Math.random().toString(36).slice(2)}`) {}

  /** Shows the bundle, replacing what this output showed before. */
  async update(bundle: MediaBundle): Promise<void> {
    await show(bundle, { displayId: this.displayId, update: this.shown });
    this.shown = true;
  }
}
