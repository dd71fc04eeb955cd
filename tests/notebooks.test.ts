// Notebook display helpers (lib/viz/notebook.ts), the checks of `deno task notebooks`
// (lib/cli/notebooks.ts), the committed notebooks (cleared, Deno kernel, code type-checks) and,
// where Jupyter's nbconvert and the Deno kernelspec are installed, real headless executions of
// tiny notebooks through the command.
import assert from "node:assert/strict";
import { join } from "node:path";
import { decode as decodePng } from "fast-png";
import { canvasToPng, createCanvas, fillRect, type RgbaImage } from "../lib/viz/canvas.ts";
import {
  canvasBundle,
  htmlTable,
  LiveOutput,
  markdownBundle,
  MAX_OUTPUT_CHARS,
  type MediaBundle,
  PLOTLY_OUTPUT_MARKER,
  plotlyBundle,
  plotlyLoaderBundle,
  pngBundle,
  show,
  sideBySide,
} from "../lib/viz/notebook.ts";
import {
  cellErrors,
  committedOutputProblems,
  findNbconvert,
  kernelspecNames,
  missingOutputs,
  type Notebook,
  NOTEBOOK_EXPECTATIONS,
  type NotebookOutput,
  notebooksMain,
  outputCensus,
  parseNotebook,
  readNotebook,
} from "../lib/cli/notebooks.ts";
import { REPO_ROOT } from "./_util.ts";

const NOTEBOOK_DIR = join(REPO_ROOT, "notebooks");

function b64decode(s: string): Uint8Array {
  return Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
}

function canvas(w: number, h: number, seed: number): RgbaImage {
  const c = createCanvas(w, h, [seed, 2 * seed, 3 * seed]);
  fillRect(c, 1, 1, 2, 2, [250, 10, 20]);
  return c;
}

Deno.test("pngBundle / canvasBundle: base64 PNG that decodes to the canvas pixels", () => {
  const c = canvas(5, 4, 30);
  const bundle = canvasBundle(c);
  const png = b64decode(bundle["image/png"] as string);
  assert.deepEqual(png, canvasToPng(c));
  const img = decodePng(png);
  assert.equal(img.width, 5);
  assert.equal(img.height, 4);
  // Independent check through the PNG decoder: pixel (1, 1) is the red square, (4, 3) background.
  const px = (x: number, y: number) =>
    Array.from(img.data.subarray((y * 5 + x) * img.channels, (y * 5 + x) * img.channels + 3));
  assert.deepEqual(px(1, 1), [250, 10, 20]);
  assert.deepEqual(px(4, 3), [30, 60, 90]);
  assert.equal(bundle["text/plain"], "PNG 5 x 4");
  assert.throws(() => pngBundle(new Uint8Array(30)), /not a PNG/);
  const sized = pngBundle(canvasToPng(c), { width: 300, alt: "x" });
  assert.deepEqual(sized["__metadata__"], { "image/png": { width: 300 } });
  assert.throws(() => pngBundle(canvasToPng(c), { width: 0 }), /width must be > 0/);
});

Deno.test("sideBySide places canvases left to right with a background gap", () => {
  const a = canvas(3, 2, 10), b = canvas(2, 4, 20);
  const s = sideBySide([a, b], 2, [1, 2, 3]);
  assert.equal(s.width, 3 + 2 + 2);
  assert.equal(s.height, 4);
  const px = (x: number, y: number) =>
    Array.from(s.rgba.subarray(4 * (y * s.width + x), 4 * (y * s.width + x) + 4));
  const pa = (x: number, y: number) =>
    Array.from(a.rgba.subarray(4 * (y * 3 + x), 4 * (y * 3 + x) + 4));
  const pb = (x: number, y: number) =>
    Array.from(b.rgba.subarray(4 * (y * 2 + x), 4 * (y * 2 + x) + 4));
  for (let y = 0; y < 2; y++) for (let x = 0; x < 3; x++) assert.deepEqual(px(x, y), pa(x, y));
  for (let y = 0; y < 4; y++) for (let x = 0; x < 2; x++) assert.deepEqual(px(5 + x, y), pb(x, y));
  assert.deepEqual(px(3, 0), [1, 2, 3, 255]); // gap
  assert.deepEqual(px(0, 3), [1, 2, 3, 255]); // below the shorter canvas
  assert.throws(() => sideBySide([]), /no canvas/);
  assert.throws(() => sideBySide([a], -1), /gap/);
});

Deno.test("plotlyBundle: named div, the figure JSON round-trips, script-safe", () => {
  const fig = {
    data: [{ type: "scatter", y: [1, 2, 3], name: "</script><b>x" }],
    layout: { title: { text: "loss & co" } },
  };
  const b = plotlyBundle(fig, { name: "training-loss", height: 300 });
  const html = b["text/html"] as string;
  assert.ok(html.includes(`${PLOTLY_OUTPUT_MARKER}="training-loss"`));
  assert.ok(html.includes("height:300px"));
  assert.equal(html.split("</script>").length, 2, "only the closing tag may appear");
  const json = /var fig = (.*);\n/.exec(html)![1];
  assert.deepEqual(JSON.parse(json), fig);
  assert.deepEqual(b["application/vnd.plotly.v1+json"], fig);
  assert.match(b["text/plain"] as string, /training-loss.*loss & co.*1 trace/);
  // Two bundles of the same figure get distinct element ids.
  const id = (h: string) => /id="([^"]+)"/.exec(h)![1];
  assert.notEqual(id(html), id(plotlyBundle(fig)["text/html"] as string));
  assert.throws(() => plotlyBundle({ data: {} as never, layout: {} }), /must be/);
});

Deno.test("plotlyLoaderBundle: the page-side script restores the exact library source", async () => {
  const src = "/**\n* plotly.js v9.8.7\n*/\nwindow.Plotly = {s: '</script> caf\u00e9 \u{1F600}'};";
  const b = plotlyLoaderBundle(src);
  const html = b["text/html"] as string;
  assert.match(b["text/plain"] as string, /9\.8\.7/);
  assert.equal(html.split("</script>").length, 2, "only the closing tag may appear");
  // Run the page-side script with a stand-in window/document (Deno has atob, Blob,
  // DecompressionStream and Response, as browsers do).
  const body = /<script>([\s\S]*)<\/script>/.exec(html)![1];
  const appended: { text: string }[] = [];
  const win: Record<string, unknown> = {};
  const doc = {
    createElement: () => ({ text: "" }),
    head: { appendChild: (el: { text: string }) => appended.push(el) },
  };
  new Function("window", "document", body)(win, doc);
  await win.__ssmPlotlyReady;
  assert.equal(appended.length, 1);
  assert.equal(appended[0].text, src);
  // Loaded already: nothing is appended again.
  const again: Record<string, unknown> = { Plotly: {} };
  new Function("window", "document", body)(again, doc);
  await again.__ssmPlotlyReady;
  assert.equal(appended.length, 1);
  // The installed library fits one kernel message.
  const real = plotlyLoaderBundle();
  const size = (real["text/html"] as string).length;
  assert.ok(size > 1_000_000 && size < MAX_OUTPUT_CHARS, `loader is ${size} characters`);
});

Deno.test("show refuses outputs the Deno kernel cannot send", async () => {
  await assert.rejects(
    () => show({ "text/html": "x".repeat(MAX_OUTPUT_CHARS + 1) }),
    /more than the 6 M the Deno kernel can send/,
  );
});

Deno.test("htmlTable: formatting, best value in bold, escaping, plain-text twin", () => {
  const b = htmlTable(
    [
      { key: "name", label: "variant", format: "text" },
      { key: "ap", label: "AP", format: "percent", best: "max", digits: 1 },
      { key: "loss", best: "min", digits: 3 },
    ],
    [
      { name: "R18 <3>", ap: 0.4, loss: 0.5 },
      { name: "R34", ap: 0.5, loss: 0.25 },
      { name: "R18-2", ap: null, loss: Number.NaN },
    ],
    { caption: "Table 2" },
  );
  const html = b["text/html"] as string;
  assert.ok(html.includes("R18 &lt;3&gt;"));
  assert.ok(html.includes('<th style="text-align:right">AP (%)</th>'));
  assert.ok(html.includes("<b>50.0</b>") && html.includes(">40.0<"));
  assert.ok(html.includes("<b>0.250</b>") && html.includes(">0.500<"));
  assert.ok(html.includes(">–<") && html.includes(">NaN<"));
  const text = (b["text/plain"] as string).split("\n");
  assert.equal(text[0], "Table 2");
  assert.match(text[3], /^R34\s+50\.0\*\s+0\.250\*$/);
  assert.throws(() => htmlTable([{ key: "a" }, { key: "a" }], []), /appears twice/);
});

Deno.test("show outside Jupyter prints the text/plain part; updates print nothing", async () => {
  const printed: string[] = [];
  const orig = console.log;
  console.log = (...a: unknown[]) => printed.push(a.join(" "));
  try {
    await show(markdownBundle("# hi"));
    await show({ "text/html": "<b>x</b>" } as MediaBundle);
    const live = new LiveOutput("id1");
    await live.update({ "text/plain": "first" });
    await live.update({ "text/plain": "second" });
  } finally {
    console.log = orig;
  }
  assert.deepEqual(printed, ["# hi", "[rich output]", "first"]);
  await assert.rejects(() => show({ "text/plain": "x" }, { update: true }), /displayId/);
});

function notebook(cells: Notebook["cells"], kernel = "deno"): Notebook {
  return { cells, metadata: { kernelspec: { name: kernel } }, nbformat: 4 };
}

function display(bundle: MediaBundle): NotebookOutput {
  return { output_type: "display_data", data: bundle };
}

Deno.test("committedOutputProblems flags outputs, execution counts and a non-Deno kernel", () => {
  const clean = notebook([
    { cell_type: "markdown", source: "# x" },
    { cell_type: "code", source: "1", outputs: [], execution_count: null },
  ]);
  assert.deepEqual(committedOutputProblems(clean), []);
  const dirty = notebook([
    {
      cell_type: "code",
      source: "1",
      outputs: [{ output_type: "stream", text: "1" }],
      execution_count: 3,
    },
  ], "python3");
  assert.deepEqual(committedOutputProblems(dirty), [
    "cell 1 has 1 output(s)",
    "cell 1 has execution count 3",
    "the kernelspec is 'python3', expected 'deno'",
  ]);
});

Deno.test("parseNotebook names the file when the JSON is not a notebook", () => {
  assert.throws(() => parseNotebook("{", "a.ipynb"), /a\.ipynb: not a notebook \(invalid JSON/);
  assert.throws(() => parseNotebook("{}", "b.ipynb"), /b\.ipynb: not a notebook \(no 'cells'/);
  assert.throws(
    () => parseNotebook('{"cells": [], "nbformat": 3}', "c.ipynb"),
    /c\.ipynb: nbformat 3/,
  );
  assert.throws(
    () => parseNotebook('{"cells": [1], "nbformat": 4}', "d.ipynb"),
    /d\.ipynb: cell 1/,
  );
});

Deno.test("cellErrors, outputCensus and missingOutputs read executed notebooks", () => {
  const fig = { data: [{ type: "bar", y: [1] }], layout: {} };
  const nb = notebook([
    {
      cell_type: "code",
      source: "",
      outputs: [
        display(plotlyLoaderBundle("/* plotly.js v1.0.0 */ window.Plotly = {};")),
        display(plotlyBundle(fig, { name: "ablation-metrics" })),
        display(canvasBundle(canvas(2, 2, 1))),
        { output_type: "execute_result", data: htmlTable([{ key: "a" }], [{ a: 1 }]) },
      ],
    },
    {
      cell_type: "code",
      source: "",
      outputs: [{
        output_type: "error",
        ename: "TypeError",
        evalue: "\u001b[31mx is undefined\u001b[0m",
        traceback: ["\u001b[1mTypeError\u001b[0m: x is undefined", "    at <anonymous>"],
      }],
    },
  ]);
  assert.deepEqual(cellErrors(nb), [{
    cell: 2,
    ename: "TypeError",
    evalue: "x is undefined",
    traceback: "TypeError: x is undefined\n    at <anonymous>",
  }]);
  const census = outputCensus(nb);
  assert.deepEqual(census, { png: 1, plotly: ["ablation-metrics"], plotlyLoaded: true, tables: 1 });
  assert.deepEqual(missingOutputs(census, { png: 1, plotly: ["ablation-metrics"], tables: 1 }), []);
  assert.deepEqual(missingOutputs(census, NOTEBOOK_EXPECTATIONS["02-ablations.ipynb"]), [
    "expected at least 2 HTML table(s), found 1",
    "the Plotly figure 'ablation-seg-loss' is missing",
    "the Plotly figure 'ablation-cls-loss' is missing",
  ]);
  const noLoader = outputCensus(notebook([{
    cell_type: "code",
    source: "",
    outputs: [display(plotlyBundle(fig, { name: "x" }))],
  }]));
  assert.deepEqual(missingOutputs(noLoader, { plotly: ["x"] }), [
    "plotly.js is not embedded (no plotlyLoaderBundle() output)",
  ]);
});

const committed = [...Deno.readDirSync(NOTEBOOK_DIR)]
  .filter((e) => e.name.endsWith(".ipynb"))
  .map((e) => e.name)
  .sort();

Deno.test("the committed notebooks are the four promised ones, cleared, on the Deno kernel", () => {
  assert.deepEqual(committed, Object.keys(NOTEBOOK_EXPECTATIONS).sort());
  for (const name of committed) {
    const nb = readNotebook(join(NOTEBOOK_DIR, name));
    assert.deepEqual(committedOutputProblems(nb), [], name);
    const code = nb.cells.filter((c) => c.cell_type === "code").map((c) =>
      [c.source].flat().join("")
    );
    assert.ok(!code.some((c) => c.includes("jsr:")), `${name} must not import from JSR`);
    assert.ok(
      nb.cells.filter((c) => c.cell_type === "markdown").length >= 4,
      `${name}: explain more`,
    );
  }
});

Deno.test("the notebooks' code type-checks as one module per notebook", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ssm-nbcheck-" });
  try {
    const files: string[] = [];
    for (const name of committed) {
      const nb = readNotebook(join(NOTEBOOK_DIR, name));
      const code = nb.cells
        .filter((c) => c.cell_type === "code")
        .map((c) => [c.source].flat().join(""))
        .join("\n\n")
        .replaceAll(`from "../`, `from "${new URL("../", import.meta.url).href}`);
      const file = join(dir, name.replace(".ipynb", ".ts"));
      Deno.writeTextFileSync(file, code + "\nexport {};\n");
      files.push(file);
    }
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["check", "--quiet", "--config", join(REPO_ROOT, "deno.json"), ...files],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

function writeNotebook(path: string, sources: string[], outputs = false): void {
  const nb = {
    cells: sources.map((s, i) => ({
      cell_type: "code",
      id: `c${i}`,
      execution_count: outputs ? 1 : null,
      metadata: {},
      outputs: outputs ? [{ output_type: "stream", name: "stdout", text: "x\n" }] : [],
      source: s,
    })),
    metadata: { kernelspec: { name: "deno", display_name: "Deno", language: "typescript" } },
    nbformat: 4,
    nbformat_minor: 5,
  };
  Deno.writeTextFileSync(path, JSON.stringify(nb));
}

function captureIo() {
  const out: string[] = [], err: string[] = [];
  return { io: { out: (s: string) => out.push(s), err: (s: string) => err.push(s) }, out, err };
}

Deno.test("notebooks --check-cleared fails on a notebook with outputs; usage errors exit 2", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ssm-nbcli-" });
  try {
    writeNotebook(join(dir, "a.ipynb"), ["1"]);
    let c = captureIo();
    assert.equal(await notebooksMain(["--check-cleared", "--dir", dir], c.io), 0);
    assert.match(c.out.join("\n"), /1 notebook\(s\) cleared/);
    writeNotebook(join(dir, "b.ipynb"), ["1"], true);
    c = captureIo();
    assert.equal(await notebooksMain(["--check-cleared", "--dir", dir], c.io), 1);
    assert.match(c.err.join("\n"), /b\.ipynb is not cleared: cell 1 has 1 output\(s\)/);
    c = captureIo();
    assert.equal(await notebooksMain(["--timeout", "0", "--dir", dir], c.io), 2);
    c = captureIo();
    assert.equal(await notebooksMain(["--dir", dir, "nomatch"], c.io), 2);
    assert.match(c.err.join("\n"), /no notebook matches nomatch/);
    assert.equal(await notebooksMain(["--bogus"], captureIo().io), 2);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

let jupyterReady = false;
try {
  jupyterReady = findNbconvert() !== null && (await kernelspecNames()).includes("deno");
} catch {
  jupyterReady = false;
}

Deno.test({
  name: "notebooks executes real notebooks headlessly: pass, cell error, missing figure",
  ignore: !jupyterReady,
  async fn() {
    // Inside the repository, so that the kernel finds deno.json (its import map).
    const dir = await Deno.makeTempDir({ dir: NOTEBOOK_DIR, prefix: ".test-" });
    const out = await Deno.makeTempDir({ prefix: "ssm-nbrun-out-" });
    try {
      // Passing: imports through the import map and a relative path, shows a PNG.
      // The first cell waits: the Deno kernel may publish a fast first cell's outputs before
      // Jupyter's output channel is connected, and those outputs would be lost. The output cell
      // waits too before it ends: the kernel has been seen to publish a cell's last output after
      // the cell's reply, which Jupyter then drops.
      const warmUp = "await new Promise((r) => setTimeout(r, 1500));";
      writeNotebook(join(dir, "a-pass.ipynb"), [
        warmUp,
        `import { canvasBundle, show } from "../../lib/viz/notebook.ts";\n` +
        `import { createCanvas } from "../../lib/viz/canvas.ts";\n` +
        `import * as tf from "@tensorflow/tfjs-core";\n` +
        `console.log(tf.version_core);\n` +
        `await show(canvasBundle(createCanvas(4, 4, [1, 2, 3])));\n` +
        `await new Promise((r) => setTimeout(r, 500));`,
      ]);
      writeNotebook(join(dir, "b-error.ipynb"), [
        warmUp,
        "const x = 1;",
        "throw new Error('boom ' + x);",
      ]);
      // Named like a promised notebook, without its figures.
      writeNotebook(join(dir, "01-quickstart.ipynb"), ["console.log(1)"]);
      const before = Deno.readTextFileSync(join(dir, "a-pass.ipynb"));
      const c = captureIo();
      const code = await notebooksMain(["--dir", dir, "--out", out, "--timeout", "120"], c.io);
      const all = [...c.out, ...c.err].join("\n");
      assert.equal(code, 1, all);
      assert.match(all, /FAIL {2}01-quickstart\.ipynb/);
      assert.match(all, /expected at least 2 image\/png output\(s\), found 0/);
      // a notebook that only misses figures is run a second time before it fails
      assert.match(all, /run 3 times; the first run lacked: expected at least 2 image\/png/);
      assert.match(all, /ok {4}a-pass\.ipynb .*1 png/);
      assert.match(all, /FAIL {2}b-error\.ipynb/);
      assert.match(all, /boom 1/);
      assert.match(all, /1\/3 passed/);
      // The committed notebook is untouched; the executed copy has the output.
      assert.equal(Deno.readTextFileSync(join(dir, "a-pass.ipynb")), before);
      const executed = readNotebook(join(out, "a-pass.ipynb"));
      assert.equal(outputCensus(executed).png, 1);
      const stream = executed.cells[1].outputs!.find((o) => o.output_type === "stream");
      assert.match([stream?.text ?? ""].flat().join(""), /^4\.22\.0/);
    } finally {
      await Deno.remove(dir, { recursive: true });
      await Deno.remove(out, { recursive: true });
    }
  },
});
