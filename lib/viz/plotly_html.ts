/**
 * Standalone HTML pages of Plotly figures. The page embeds the installed `plotly.js-dist`
 * bundle inline (about 10 MB), so it renders offline, with no CDN. The bundle's file is found
 * through Node's module resolution from this module (`createRequire(import.meta.url)`), which
 * works with Deno's `node_modules` folder (`"nodeModulesDir": "auto"`); the resolved
 * `import.meta.resolve("plotly.js-dist")` file URL is the fallback.
 *
 * @example
 * ```ts
 * import { writePlotlyHtml } from "./plotly_html.ts";
 * const fig = { data: [{ type: "scatter", y: [1, 3, 2] }], layout: { title: { text: "demo" } } };
 * await writePlotlyHtml("/tmp/demo.html", [fig], "Demo");
 * ```
 *
 * @module
 */

import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { writeTextFileAtomic } from "../data/atomic.ts";
import type { PlotlyFigure } from "./plotly.ts";

let cachedSource: string | null = null;

function candidatePaths(): string[] {
  const out: string[] = [];
  try {
    out.push(createRequire(import.meta.url).resolve("plotly.js-dist"));
  } catch { /* not resolvable through node_modules */ }
  try {
    const url = import.meta.resolve("plotly.js-dist");
    if (url.startsWith("file:")) out.push(fileURLToPath(url));
  } catch { /* not in the import map */ }
  return out;
}

/**
 * The text of the installed plotly.js bundle (`plotly.js-dist`'s `plotly.js`), read once.
 *
 * @throws {Error} when the package cannot be found, saying how to install it
 */
export function plotlyJsSource(): string {
  if (cachedSource !== null) return cachedSource;
  const tried = candidatePaths();
  for (const p of tried) {
    try {
      cachedSource = Deno.readTextFileSync(p);
      return cachedSource;
    } catch { /* try the next one */ }
  }
  throw new Error(
    `plotly.js-dist is not installed (looked at: ${tried.join(", ") || "nothing resolvable"}); ` +
      'run `deno install` in a project whose deno.json maps "plotly.js-dist" ' +
      '(npm:plotly.js-dist) with "nodeModulesDir": "auto"',
  );
}

function escapeHtml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(
    /"/g,
    "&quot;",
  );
}

/** JSON safe to place inside a `<script>` element. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, "\\u003c")
    .replace(/\u2028/g, "\\u2028")
    .replace(/\u2029/g, "\\u2029");
}

/** Options of {@linkcode plotlyHtml}. */
export interface PlotlyHtmlOptions {
  /** The plotly.js source to embed (default: {@linkcode plotlyJsSource}). */
  plotlyJs?: string;
}

/**
 * A standalone HTML page showing `figures` one below the other under `title`.
 *
 * @throws {Error} when a figure is not `{data: [...], layout: {...}}`
 */
export function plotlyHtml(
  figures: readonly PlotlyFigure[],
  title: string,
  opts: PlotlyHtmlOptions = {},
): string {
  figures.forEach((f, i) => {
    if (!f || !Array.isArray(f.data) || typeof f.layout !== "object" || f.layout === null) {
      throw new Error(`plotlyHtml: figure ${i} must be {data: [...], layout: {...}}`);
    }
  });
  const js = (opts.plotlyJs ?? plotlyJsSource()).replace(/<\/script/gi, "<\\/script");
  const divs = figures.map((_, i) => `<div id="fig-${i}" class="fig"></div>`).join("\n");
  const plots = figures
    .map((f, i) =>
      `Plotly.newPlot("fig-${i}", ${scriptJson(f.data)}, ${
        scriptJson(f.layout)
      }, {responsive: true});`
    )
    .join("\n");
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${escapeHtml(title)}</title>
<style>body{font-family:sans-serif;margin:16px}.fig{max-width:1100px;margin-bottom:24px}</style>
<script>${js}</script>
</head>
<body>
<h1>${escapeHtml(title)}</h1>
${divs}
<script>
${plots}
</script>
</body>
</html>
`;
}

/**
 * Writes {@linkcode plotlyHtml} to `path` atomically.
 *
 * @param path destination `.html`
 * @param figures the figures, shown in order
 * @param title page title and heading
 */
export async function writePlotlyHtml(
  path: string,
  figures: readonly PlotlyFigure[],
  title: string,
  opts: PlotlyHtmlOptions = {},
): Promise<void> {
  await writeTextFileAtomic(path, plotlyHtml(figures, title, opts));
}
