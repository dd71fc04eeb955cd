/**
 * `deno task notebooks`: runs every notebook under `notebooks/` headlessly on the Deno Jupyter
 * kernel and checks what it produced.
 *
 * 1. The committed notebooks must have cleared outputs (no outputs, no execution counts):
 *    outputs are never committed, and this command never writes into them.
 * 2. The Deno kernelspec is installed with `deno jupyter --install` when Jupyter lacks it.
 * 3. Each notebook is executed with `jupyter-nbconvert --to notebook --execute` into an output
 *    folder (a temporary one unless `--out` is given), with a per-notebook time limit.
 * 4. A notebook fails when nbconvert fails, a cell has an error output, or an expected figure is
 *    missing from its outputs ({@linkcode NOTEBOOK_EXPECTATIONS}: PNG images, Plotly figures
 *    by name, HTML tables). The Deno kernel occasionally loses a display message, so a run whose
 *    only problem is a missing figure is repeated, at most twice more; the summary says so, and
 *    the notebook fails when every run misses a figure.
 *
 * It prints one line per notebook with its run time and exits 1 when any notebook failed.
 * Needs Jupyter's nbconvert and nbclient with an IPython kernel machinery (Debian:
 * `apt-get install -y jupyter-nbconvert python3-nbclient python3-ipykernel`).
 *
 * @example
 * ```ts
 * import { committedOutputProblems, parseNotebook } from "./notebooks.ts";
 * const nb = parseNotebook('{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}', "x");
 * console.log(committedOutputProblems(nb)); // []
 * ```
 *
 * @module
 */

import { existsSync, statSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { type CliIo, consoleIo, formatDuration } from "../progress.ts";

export type { CliIo } from "../progress.ts";
import {
  PLOTLY_LOADER_MARKER,
  PLOTLY_OUTPUT_MARKER,
  TABLE_OUTPUT_MARKER,
} from "../viz/notebook.ts";

/** Usage text of `deno task notebooks`. */
export const NOTEBOOKS_USAGE: string = `Usage: deno task notebooks [options] [NAME ...]

Executes the notebooks in notebooks/ on the Deno Jupyter kernel (headless, with
jupyter-nbconvert) and checks that no cell failed and that the promised figures are there.
NAME selects notebooks whose file name contains it (default: all).

Options:
  --timeout SECONDS   time limit per notebook (default 600)
  --out DIR           write the executed notebooks to DIR and keep them
                      (default: a temporary folder, removed when all notebooks pass)
  --keep              keep the temporary folder even when all notebooks pass
  --check-cleared     only check that the committed notebooks have no outputs
  --dir DIR           notebook folder (default: notebooks/ of this repository)
  --nbconvert PATH    the nbconvert executable (default: $JUPYTER_NBCONVERT,
                      /usr/bin/jupyter-nbconvert, else jupyter-nbconvert on PATH)
  -h, --help          show this help

Needs: apt-get install -y jupyter-nbconvert python3-nbclient python3-ipykernel
       deno jupyter --install   (done automatically when the deno kernelspec is missing)`;

/** One output of a code cell (nbformat 4). */
export interface NotebookOutput {
  /** `stream`, `display_data`, `execute_result` or `error`. */
  output_type: string;
  /** MIME bundle of display outputs. */
  data?: Record<string, unknown>;
  /** Stream text. */
  text?: string | string[];
  /** Error name. */
  ename?: string;
  /** Error value. */
  evalue?: string;
  /** Error traceback lines. */
  traceback?: string[];
}

/** One cell (nbformat 4). */
export interface NotebookCell {
  /** `code`, `markdown` or `raw`. */
  cell_type: string;
  /** Source text, as a string or lines. */
  source: string | string[];
  /** Outputs (code cells). */
  outputs?: NotebookOutput[];
  /** Execution count (code cells). */
  execution_count?: number | null;
}

/** A notebook (the parts this command reads). */
export interface Notebook {
  /** Cells in order. */
  cells: NotebookCell[];
  /** Notebook metadata (kernelspec). */
  metadata: Record<string, unknown>;
  /** Major format version (4). */
  nbformat: number;
}

/**
 * Parses notebook JSON.
 *
 * @param text the file's text
 * @param path the file name, for messages
 * @throws {Error} naming the file when it is not an nbformat 4 notebook
 */
export function parseNotebook(text: string, path: string): Notebook {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new Error(`${path}: not a notebook (invalid JSON: ${(e as Error).message})`);
  }
  const nb = v as Partial<Notebook>;
  if (typeof v !== "object" || v === null || !Array.isArray(nb.cells)) {
    throw new Error(`${path}: not a notebook (no 'cells' array)`);
  }
  if (nb.nbformat !== 4) {
    throw new Error(`${path}: nbformat ${nb.nbformat} is not supported (need 4)`);
  }
  nb.cells.forEach((c, i) => {
    if (typeof c !== "object" || c === null || typeof c.cell_type !== "string") {
      throw new Error(`${path}: cell ${i + 1} has no 'cell_type'`);
    }
  });
  return { cells: nb.cells, metadata: (nb.metadata ?? {}) as Record<string, unknown>, nbformat: 4 };
}

/** Reads and parses a notebook file ({@linkcode parseNotebook}). */
export function readNotebook(path: string): Notebook {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (e) {
    throw new Error(`${path}: cannot read the notebook (${(e as Error).message})`);
  }
  return parseNotebook(text, path);
}

/**
 * What keeps a committed notebook from being "cleared": code cells with outputs or an
 * execution count, and a kernelspec other than Deno's. Empty when the notebook is clean.
 */
export function committedOutputProblems(nb: Notebook): string[] {
  const problems: string[] = [];
  nb.cells.forEach((c, i) => {
    if (c.cell_type !== "code") return;
    if ((c.outputs?.length ?? 0) > 0) {
      problems.push(`cell ${i + 1} has ${c.outputs!.length} output(s)`);
    }
    if (c.execution_count !== null && c.execution_count !== undefined) {
      problems.push(`cell ${i + 1} has execution count ${c.execution_count}`);
    }
  });
  const ks = nb.metadata.kernelspec as { name?: string } | undefined;
  if (ks?.name !== "deno") {
    problems.push(`the kernelspec is '${ks?.name ?? "(none)"}', expected 'deno'`);
  }
  return problems;
}

/** An error output of an executed notebook. */
export interface CellError {
  /** 1-based cell number. */
  cell: number;
  /** Error name. */
  ename: string;
  /** Error value. */
  evalue: string;
  /** Traceback text (ANSI colours removed). */
  traceback: string;
}

const ANSI = new RegExp(String.fromCharCode(27) + "\\[[0-9;]*[A-Za-z]", "g");

/** Removes ANSI colour codes. */
export function stripAnsi(s: string): string {
  return s.replace(ANSI, "");
}

/** The error outputs of an executed notebook, in cell order. */
export function cellErrors(nb: Notebook): CellError[] {
  const errors: CellError[] = [];
  nb.cells.forEach((c, i) => {
    for (const o of c.outputs ?? []) {
      if (o.output_type !== "error") continue;
      errors.push({
        cell: i + 1,
        ename: o.ename ?? "Error",
        evalue: stripAnsi(o.evalue ?? ""),
        traceback: stripAnsi((o.traceback ?? []).join("\n")),
      });
    }
  });
  return errors;
}

/** All display outputs (`display_data` / `execute_result`) of a notebook. */
export function displayOutputs(nb: Notebook): NotebookOutput[] {
  return nb.cells.flatMap((c) =>
    (c.outputs ?? []).filter((o) =>
      o.output_type === "display_data" || o.output_type === "execute_result"
    )
  );
}

function htmlOf(o: NotebookOutput): string {
  const h = o.data?.["text/html"];
  return Array.isArray(h) ? h.join("") : typeof h === "string" ? h : "";
}

/** What the outputs of an executed notebook contain. */
export interface OutputCensus {
  /** `image/png` outputs. */
  png: number;
  /** Names of the Plotly figures drawn (the {@linkcode PLOTLY_OUTPUT_MARKER} values). */
  plotly: string[];
  /** Whether plotly.js was embedded. */
  plotlyLoaded: boolean;
  /** HTML tables shown with `htmlTable`. */
  tables: number;
}

/** Counts the figures and tables among a notebook's outputs. */
export function outputCensus(nb: Notebook): OutputCensus {
  const census: OutputCensus = { png: 0, plotly: [], plotlyLoaded: false, tables: 0 };
  const marker = new RegExp(`${PLOTLY_OUTPUT_MARKER}="([^"]*)"`, "g");
  for (const o of displayOutputs(nb)) {
    const png = o.data?.["image/png"];
    if (typeof png === "string" && png.length > 0) census.png++;
    const html = htmlOf(o);
    if (html.includes(`<div ${PLOTLY_LOADER_MARKER}=`)) census.plotlyLoaded = true;
    for (const m of html.matchAll(marker)) {
      if (html.includes("Plotly.newPlot")) census.plotly.push(m[1]);
    }
    census.tables += html.split(`<table ${TABLE_OUTPUT_MARKER}=`).length - 1;
  }
  return census;
}

/** What an executed notebook must show. */
export interface NotebookExpectation {
  /** At least this many `image/png` outputs. */
  png?: number;
  /** Plotly figures that must be drawn, by name (needs plotly.js embedded in the notebook). */
  plotly?: string[];
  /** At least this many HTML tables. */
  tables?: number;
}

/** The figures each notebook promises, by file name. */
export const NOTEBOOK_EXPECTATIONS: Readonly<Record<string, NotebookExpectation>> = {
  "01-quickstart.ipynb": { png: 2 },
  "02-ablations.ipynb": {
    plotly: ["ablation-metrics", "ablation-seg-loss", "ablation-cls-loss"],
    tables: 2,
  },
  "03-roi-batches.ipynb": {
    png: 2,
    plotly: ["roi-score-distribution", "roi-score-by-rank", "roi-batch"],
    tables: 1,
  },
  "04-train-on-gpu.ipynb": { png: 1, plotly: ["training-loss", "confusion-matrix"], tables: 1 },
};

/** The expected figures missing from an executed notebook's outputs (empty when all are there). */
export function missingOutputs(census: OutputCensus, expected: NotebookExpectation): string[] {
  const missing: string[] = [];
  if ((expected.png ?? 0) > census.png) {
    missing.push(`expected at least ${expected.png} image/png output(s), found ${census.png}`);
  }
  if ((expected.tables ?? 0) > census.tables) {
    missing.push(`expected at least ${expected.tables} HTML table(s), found ${census.tables}`);
  }
  if ((expected.plotly?.length ?? 0) > 0 && !census.plotlyLoaded) {
    missing.push("plotly.js is not embedded (no plotlyLoaderBundle() output)");
  }
  for (const name of expected.plotly ?? []) {
    if (!census.plotly.includes(name)) missing.push(`the Plotly figure '${name}' is missing`);
  }
  return missing;
}

/** Result of running one notebook. */
export interface NotebookRun {
  /** File name. */
  name: string;
  /** Whether everything passed. */
  ok: boolean;
  /** Wall-clock seconds of the execution. */
  seconds: number;
  /** What went wrong (empty when ok). */
  problems: string[];
  /** The figures found (null when the notebook did not run to the end). */
  census: OutputCensus | null;
  /** The executed notebook (null when none was written). */
  executedPath: string | null;
  /** The problems that are promised figures missing (a subset of `problems`). */
  missingFigures?: string[];
  /** What the first run of the notebook lacked, when it was run again. */
  firstRun?: string[];
  /** Runs made (absent: 1). */
  runs?: number;
}

async function run(
  cmd: string,
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

function which(name: string): string | null {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    const p = join(dir || ".", name);
    try {
      if (statSync(p).isFile()) return p;
    } catch { /* not here */ }
  }
  return null;
}

/** The nbconvert executable: `explicit`, `$JUPYTER_NBCONVERT`, `/usr/bin/jupyter-nbconvert`, PATH. */
export function findNbconvert(explicit?: string): string | null {
  if (explicit) return explicit;
  const env = Deno.env.get("JUPYTER_NBCONVERT");
  if (env) return env;
  if (existsSync("/usr/bin/jupyter-nbconvert")) return "/usr/bin/jupyter-nbconvert";
  return which("jupyter-nbconvert");
}

/**
 * Names of the installed Jupyter kernelspecs: `jupyter kernelspec list --json` when available,
 * else asked from `jupyter_client` with the system Python.
 */
export async function kernelspecNames(): Promise<string[]> {
  if (which("jupyter-kernelspec") || existsSync("/usr/bin/jupyter-kernelspec")) {
    try {
      const r = await run("jupyter", ["kernelspec", "list", "--json"]);
      if (r.code === 0) return Object.keys(JSON.parse(r.stdout).kernelspecs ?? {});
    } catch { /* fall back to jupyter_client */ }
  }
  const python = existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
  const r = await run(python, [
    "-c",
    "import json\nfrom jupyter_client.kernelspec import KernelSpecManager\n" +
    "print(json.dumps(sorted(KernelSpecManager().find_kernel_specs())))",
  ]);
  if (r.code !== 0) {
    throw new Error(
      `cannot list the Jupyter kernelspecs with ${python} (is python3-nbclient installed?): ` +
        r.stderr.trim().split("\n").at(-1),
    );
  }
  return JSON.parse(r.stdout) as string[];
}

/** Installs the Deno kernelspec (`deno jupyter --install`) when Jupyter lacks it. */
export async function ensureDenoKernel(io: CliIo): Promise<void> {
  if ((await kernelspecNames()).includes("deno")) return;
  io.err("notebooks: the Jupyter kernelspec 'deno' is missing; running `deno jupyter --install`");
  const r = await run(Deno.execPath(), ["jupyter", "--install"]);
  if (r.code !== 0 || !(await kernelspecNames()).includes("deno")) {
    throw new Error(`\`deno jupyter --install\` failed: ${r.stderr.trim() || r.stdout.trim()}`);
  }
}

async function sha256(path: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", await Deno.readFile(path));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

function tail(text: string, lines: number): string {
  return stripAnsi(text).trimEnd().split("\n").slice(-lines).join("\n");
}

/**
 * Executes one notebook into `outDir` with nbconvert and checks the result.
 *
 * @param path the committed notebook (read only)
 * @param outDir folder for the executed copy (must not be the notebook's folder)
 * @param timeoutS time limit (per cell for nbconvert, and for the whole notebook)
 */
export async function executeNotebook(
  path: string,
  outDir: string,
  timeoutS: number,
  nbconvert: string,
): Promise<NotebookRun> {
  const name = basename(path);
  const executedPath = join(outDir, name);
  const t0 = performance.now();
  const child = new Deno.Command(nbconvert, {
    args: [
      "--to",
      "notebook",
      "--execute",
      `--ExecutePreprocessor.timeout=${Math.ceil(timeoutS)}`,
      "--ExecutePreprocessor.kernel_name=deno",
      "--output-dir",
      outDir,
      path,
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let timedOut = false;
  // The whole notebook gets timeoutS; SIGINT lets nbclient shut its kernel down, SIGKILL follows.
  const soft = setTimeout(() => {
    timedOut = true;
    try {
      child.kill("SIGINT");
    } catch { /* already gone */ }
  }, timeoutS * 1000);
  const hard = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
  }, (timeoutS + 30) * 1000);
  const out = await child.output();
  clearTimeout(soft);
  clearTimeout(hard);
  const seconds = (performance.now() - t0) / 1000;
  const stderr = new TextDecoder().decode(out.stderr);
  const problems: string[] = [];
  if (timedOut) problems.push(`timed out after ${timeoutS} s`);
  else if (out.code !== 0) {
    // nbclient's message names the cell and the error; the Python traceback before it is noise.
    const marker = stderr.indexOf("An error occurred while executing the following cell:");
    const detail = marker >= 0
      ? stripAnsi(stderr.slice(marker)).trimEnd().split("\n").slice(0, 40).join("\n")
      : tail(stderr, 40);
    problems.push(`jupyter-nbconvert exited with code ${out.code}:\n${detail}`);
  }
  if (!existsSync(executedPath) || out.code !== 0) {
    return { name, ok: false, seconds, problems, census: null, executedPath: null };
  }
  const nb = readNotebook(executedPath);
  for (const e of cellErrors(nb)) {
    problems.push(`cell ${e.cell}: ${e.ename}: ${e.evalue}\n${tail(e.traceback, 15)}`);
  }
  const census = outputCensus(nb);
  const missingFigures = missingOutputs(census, NOTEBOOK_EXPECTATIONS[name] ?? {});
  problems.push(...missingFigures);
  return {
    name,
    ok: problems.length === 0,
    seconds,
    problems,
    census,
    executedPath,
    missingFigures,
  };
}

/** The notebooks of a folder (`*.ipynb`, sorted), filtered by name parts when given. */
export function listNotebooks(dir: string, filters: readonly string[] = []): string[] {
  let names: string[];
  try {
    names = [...Deno.readDirSync(dir)]
      .filter((e) => e.isFile && e.name.endsWith(".ipynb") && !e.name.startsWith("."))
      .map((e) => e.name)
      .sort();
  } catch (e) {
    throw new Error(`${dir}: cannot list the notebooks (${(e as Error).message})`);
  }
  const picked = filters.length ? names.filter((n) => filters.some((f) => n.includes(f))) : names;
  if (picked.length === 0) {
    throw new Error(
      `${dir}: no notebook${filters.length ? ` matches ${filters.join(", ")}` : " found"}`,
    );
  }
  return picked.map((n) => join(dir, n));
}

function summaryLine(r: NotebookRun): string {
  const c = r.census;
  const figs = c
    ? `${c.png} png, ${c.plotly.length} plotly, ${c.tables} table${c.tables === 1 ? "" : "s"}`
    : "no outputs";
  return `${r.ok ? "ok  " : "FAIL"}  ${r.name.padEnd(26)} ${
    formatDuration(r.seconds).padStart(8)
  }` +
    `  (${r.seconds.toFixed(1)} s; ${figs})`;
}

/**
 * The command: checks that the committed notebooks are cleared, executes them and prints a
 * summary. Returns the exit code (0 all passed, 1 a notebook failed, 2 usage error).
 */
export async function notebooksMain(args: string[], io: CliIo = consoleIo()): Promise<number> {
  let values: Record<string, string | boolean | undefined>, positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: {
        timeout: { type: "string", default: "600" },
        out: { type: "string" },
        keep: { type: "boolean", default: false },
        "check-cleared": { type: "boolean", default: false },
        dir: { type: "string" },
        nbconvert: { type: "string" },
        help: { type: "boolean", short: "h", default: false },
      },
    }));
  } catch (e) {
    io.err(`error: ${(e as Error).message}\n\n${NOTEBOOKS_USAGE}`);
    return 2;
  }
  if (values.help) {
    io.out(NOTEBOOKS_USAGE);
    return 0;
  }
  const timeout = Number(values.timeout);
  if (!(timeout > 0) || !Number.isFinite(timeout)) {
    io.err(`error: --timeout must be a positive number of seconds, got '${values.timeout}'`);
    return 2;
  }
  const dir = resolve(
    (values.dir as string | undefined) ?? new URL("../../notebooks", import.meta.url).pathname,
  );
  let paths: string[];
  try {
    paths = listNotebooks(dir, positionals);
  } catch (e) {
    io.err(`error: ${(e as Error).message}`);
    return 2;
  }

  // 1. Committed notebooks must be cleared.
  let dirty = false;
  for (const p of paths) {
    let problems: string[];
    try {
      problems = committedOutputProblems(readNotebook(p));
    } catch (e) {
      problems = [(e as Error).message];
    }
    if (problems.length) {
      dirty = true;
      io.err(`FAIL  ${basename(p)} is not cleared: ${problems.join("; ")}`);
    }
  }
  if (dirty) {
    io.err(
      "notebooks: commit notebooks with cleared outputs (Jupyter: Edit > Clear Outputs of All " +
        "Cells, or `jupyter-nbconvert --clear-output --inplace notebooks/*.ipynb`)",
    );
    return 1;
  }
  if (values["check-cleared"]) {
    io.out(`notebooks: ${paths.length} notebook(s) cleared`);
    return 0;
  }

  // 2. Tools.
  const nbconvert = findNbconvert(values.nbconvert as string | undefined);
  if (!nbconvert) {
    io.err(
      "error: jupyter-nbconvert not found; install it with " +
        "`apt-get install -y jupyter-nbconvert python3-nbclient python3-ipykernel` " +
        "(or set JUPYTER_NBCONVERT)",
    );
    return 1;
  }
  try {
    await ensureDenoKernel(io);
  } catch (e) {
    io.err(`error: ${(e as Error).message}`);
    return 1;
  }

  // 3. Execute.
  const explicitOut = values.out as string | undefined;
  const outDir = explicitOut
    ? resolve(explicitOut)
    : await Deno.makeTempDir({ prefix: "ssm-notebooks-" });
  if (outDir === dir) {
    io.err("error: --out must not be the notebooks folder (executed copies never replace them)");
    return 2;
  }
  Deno.mkdirSync(outDir, { recursive: true });
  const before = new Map<string, string>();
  for (const p of paths) before.set(p, await sha256(p));
  io.out(`notebooks: executing ${paths.length} notebook(s) with ${nbconvert} -> ${outDir}`);
  const runs: NotebookRun[] = [];
  for (const p of paths) {
    let r: NotebookRun;
    try {
      r = await executeNotebook(p, outDir, timeout, nbconvert);
      // The Deno kernel now and then loses a display message at the end of a cell: a run
      // whose only problem is a missing figure is repeated (at most twice more); it fails when
      // every run misses a figure.
      const firstRun = r.missingFigures ?? [];
      for (let k = 0; k < 2; k++) {
        const missing = r.missingFigures ?? [];
        if (r.ok || missing.length === 0 || missing.length !== r.problems.length) break;
        const again = await executeNotebook(p, outDir, timeout, nbconvert);
        r = { ...again, seconds: r.seconds + again.seconds, firstRun, runs: k + 2 };
      }
    } catch (e) {
      r = {
        name: basename(p),
        ok: false,
        seconds: 0,
        problems: [(e as Error).message],
        census: null,
        executedPath: null,
      };
    }
    if ((await sha256(p)) !== before.get(p)) {
      r.ok = false;
      r.problems.push(`${p} changed while it ran (the committed notebook must stay untouched)`);
    }
    runs.push(r);
    io.out(summaryLine(r));
    if (r.firstRun) {
      io.out(`      run ${r.runs} times; the first run lacked: ${r.firstRun.join("; ")}`);
    }
    for (const pr of r.problems) io.err(pr.split("\n").map((l) => `      ${l}`).join("\n"));
  }

  // 4. Summary.
  const failed = runs.filter((r) => !r.ok);
  const total = runs.reduce((s, r) => s + r.seconds, 0);
  io.out(
    `notebooks: ${runs.length - failed.length}/${runs.length} passed in ${formatDuration(total)}`,
  );
  if (failed.length === 0 && !explicitOut && !values.keep) {
    await Deno.remove(outDir, { recursive: true });
  } else {
    io.out(`notebooks: executed copies in ${outDir}`);
  }
  return failed.length ? 1 : 0;
}

if (import.meta.main) Deno.exit(await notebooksMain(Deno.args));
