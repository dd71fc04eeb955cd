// Plotly figure specs and the standalone HTML writer.
import assert from "node:assert/strict";
import { decode as decodePng } from "fast-png";
import {
  bytesToBase64,
  confusionMatrixFigure,
  metricBarsFigure,
  plotlyHtml,
  plotlyJsSource,
  prCurvesFigure,
  roiBatchFigure,
  smoothEma,
  trainingCurvesFigure,
  writePlotlyHtml,
} from "../lib/viz/mod.ts";

// deno-lint-ignore no-explicit-any
type Any = any;

Deno.test("smoothEma equals the closed-form debiased EMA", () => {
  const v = Array.from({ length: 40 }, (_, i) => Math.sin(i) * 3 + i / 10);
  for (const w of [0, 0.5, 0.9, 0.99]) {
    const s = smoothEma(v, w);
    for (let t = 1; t <= v.length; t++) {
      // s_t = sum_k (1 - w) w^(t-k) v_k / (1 - w^t)
      let num = 0;
      for (let k = 1; k <= t; k++) num += (1 - w) * Math.pow(w, t - k) * v[k - 1];
      const want = w === 0 ? v[t - 1] : num / (1 - Math.pow(w, t));
      assert.ok(Math.abs(s[t - 1] - want) < 1e-9 * (1 + Math.abs(want)), `w=${w} t=${t}`);
    }
  }
  const withNaN = smoothEma([1, NaN, 3], 0.5);
  assert.ok(Number.isNaN(withNaN[1]));
  assert.ok(Math.abs(withNaN[2] - (0.25 * 1 + 0.5 * 3) / 0.75) < 1e-12);
  assert.throws(() => smoothEma([1], 1), /weight must be in \[0, 1\)/);
});

Deno.test("confusionMatrixFigure: rows true, columns predicted, row-normalised colours", () => {
  const m = [[9322, 123, 5], [174, 7139, 82], [27, 277, 4042]];
  const fig = confusionMatrixFigure(m);
  const tr = fig.data[0] as Any;
  assert.equal(tr.type, "heatmap");
  assert.deepEqual(tr.x, ["Control", "Common Pneumonia", "COVID-19"]);
  tr.z.forEach((row: number[], i: number) => {
    const sum = m[i].reduce((a, b) => a + b, 0);
    row.forEach((v, j) => assert.ok(Math.abs(v - m[i][j] / sum) < 1e-12));
  });
  assert.match(tr.text[2][2], /^4042<br>93\.0%$/); // COVID-19 sensitivity 93.00%
  assert.equal((fig.layout.yaxis as Any).autorange, "reversed");
  const counts = confusionMatrixFigure(m, { normalize: false }).data[0] as Any;
  assert.deepEqual(counts.z, m);
  assert.throws(() => confusionMatrixFigure([[1, 2], [3]]), /must be square/);
});

Deno.test("prCurvesFigure, trainingCurvesFigure and metricBarsFigure", () => {
  const pr = prCurvesFigure([{
    name: "r18-3",
    recall: [0, 0.5, 1],
    precision: [1, 0.8, 0.5],
    ap: 0.71,
  }]);
  const t = pr.data[0] as Any;
  assert.equal(t.name, "r18-3 (AP 71.0)");
  assert.equal(t.line.shape, "hv");
  assert.deepEqual(t.y, [1, 0.8, 0.5]);
  assert.throws(
    () => prCurvesFigure([{ name: "x", recall: [0, 1], precision: [1] }]),
    /curve 'x' has 2 recall and 1 precision/,
  );

  const vals = [3, 2, Infinity, 1];
  const tc = trainingCurvesFigure([{ name: "loss", values: vals, iterations: [10, 20, 30, 40] }]);
  assert.equal(tc.data.length, 2);
  const [raw, smooth] = tc.data as Any[];
  assert.deepEqual(raw.x, [10, 20, 30, 40]);
  assert.deepEqual(raw.y, [3, 2, null, 1]);
  const s = smoothEma(vals, 0.9);
  assert.deepEqual(smooth.y, [s[0], s[1], null, s[3]]);
  assert.equal(
    trainingCurvesFigure([{ name: "l", values: [1, 2] }], { smoothing: 0 }).data.length,
    1,
  );
  assert.throws(
    () => trainingCurvesFigure([{ name: "l", values: [1, 2], iterations: [1] }]),
    /series 'l' has 2 values and 1 iterations/,
  );

  const bars = metricBarsFigure(["r18-2", "r18-3"], { AP: [0.4, 0.5], F1: [0.9, 0.95] });
  assert.equal(bars.layout.barmode, "group");
  const ap = bars.data[0] as Any;
  assert.deepEqual(ap.y.map((v: number) => Math.round(v * 1e9) / 1e9), [40, 50]);
  assert.deepEqual(ap.text, ["40.0", "50.0"]);
  assert.throws(
    () => metricBarsFigure(["a"], { AP: [1, 2] }),
    /metric 'AP' has 2 values for 1 variants/,
  );
});

Deno.test("roiBatchFigure embeds the slice as PNG, ranks boxes, raw values in hover data", () => {
  const W = 24, H = 16, rows = 3;
  const data = new Uint8Array(W * H).map((_, i) => (i * 37) % 256);
  const boxes = [1, 1, 5, 5, 2, 3, 10, 12, 8, 0, 20, 6];
  const roiBatch = [0.9, 1, -1, 0.5, 0, 0.7, 2, 0, 0.1, 3, 0.2, -4, 4, 0.3, 3];
  const fig = roiBatchFigure({ image: { width: W, height: H, data }, boxes, roiBatch });
  const img = fig.data[0] as Any;
  assert.equal(img.type, "image");
  const b64 = img.source.replace("data:image/png;base64,", "");
  const png = decodePng(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)));
  assert.deepEqual([png.width, png.height, png.channels], [W, H, 1]);
  assert.deepEqual(new Uint8Array(png.data as Uint8Array), data);
  const shapes = fig.layout.shapes as Any[];
  assert.equal(shapes.length, rows);
  // Drawn worst first: the last shape is rank 1 (viridis top = yellow).
  assert.equal(shapes[rows - 1].line.color, "rgb(253,231,37)");
  assert.deepEqual([shapes[rows - 1].x0, shapes[rows - 1].y1], [1, 5]);
  assert.equal(shapes[0].line.color, "rgb(68,1,84)");
  const heat = fig.data[2] as Any;
  assert.deepEqual(heat.customdata[2], roiBatch.slice(10, 15));
  const col0 = heat.z.map((r: number[]) => r[0]);
  [1, 5 / 7, 0].forEach((v, i) => assert.ok(Math.abs(col0[i] - v) < 1e-6, `z[${i}][0]`));
  assert.throws(
    () => roiBatchFigure({ image: { width: W, height: H, data }, boxes: [1, 2], roiBatch }),
    /need R x 5 batch values and R x 4 boxes/,
  );
});

Deno.test("bytesToBase64 agrees with btoa on long inputs", () => {
  const bytes = new Uint8Array(70000).map((_, i) => (i * 131) % 256);
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  assert.equal(bytesToBase64(bytes), btoa(bin));
});

Deno.test("writePlotlyHtml embeds plotly.js and the figures, escaped, renders offline", async () => {
  const src = plotlyJsSource();
  assert.ok(src.length > 1_000_000, "the plotly.js bundle");
  assert.match(src.slice(0, 200), /plotly\.js v\d/);
  const figs = [
    {
      data: [{ type: "scatter", y: [1, 2], name: "</script><b>x" }],
      layout: { title: { text: "a" } },
    },
    confusionMatrixFigure([[1, 0], [0, 1]], { classNames: ["A", "B"] }),
  ];
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/figs.html`;
    await writePlotlyHtml(path, figs, 'Results <&> "x"');
    const html = Deno.readTextFileSync(path);
    assert.ok(html.includes(src.slice(0, 5000)), "the bundle is inline");
    assert.ok(!/<script[^>]+src=/.test(html), "no external scripts");
    assert.ok(html.includes("<title>Results &lt;&amp;&gt; &quot;x&quot;</title>"));
    // Only the three script elements we wrote are closed.
    assert.equal(html.split("</script>").length - 1, 2);
    // The figure script calls Plotly.newPlot with exactly our figures.
    const script = html.slice(html.lastIndexOf("<script>") + 8, html.lastIndexOf("</script>"));
    const calls: Any[] = [];
    new Function("Plotly", script)({ newPlot: (...a: Any[]) => calls.push(a) });
    assert.equal(calls.length, 2);
    assert.deepEqual(calls[0][0], "fig-0");
    assert.deepEqual(calls[0][1], figs[0].data);
    assert.deepEqual(calls[1][2], JSON.parse(JSON.stringify(figs[1].layout)));
    assert.ok(html.includes('<div id="fig-1" class="fig"></div>'));
    assert.ok(![...Deno.readDirSync(dir)].some((e) => e.name.endsWith(".tmp")));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  assert.throws(
    () => plotlyHtml([{ data: null as Any, layout: {} }], "t", { plotlyJs: "" }),
    /figure 0 must be \{data: \[...\], layout: \{...\}\}/,
  );
});
