// The tables' Markdown, CSV and JSON agree cell by cell; ranks; bar charts render the values.
import assert from "node:assert/strict";
import { decode } from "fast-png";
import {
  formatCell,
  ranks,
  type Table,
  table1,
  table2,
  table3,
  tableToCsv,
  tableToJson,
  tableToMarkdown,
} from "../lib/eval/tables.ts";
import { segmentationMetrics, segmentationRecord } from "../lib/eval/segmentation.ts";
import { classificationReport } from "../lib/eval/evaluate.ts";
import { barChart, barChartPng, niceMax, SERIES_COLORS } from "../lib/viz/charts.ts";
import { buildTables, tableChart } from "../lib/reproduce/run.ts";
import type { VariantResult } from "../lib/reproduce/jobs.ts";
import { Rng } from "../lib/rng.ts";

function parseCsv(text: string): string[][] {
  // the tables' CSV has no quoted fields unless a value holds a comma
  return text.trim().split("\n").map((l) => l.split(","));
}

function fakeResults(n: number, seed: number): VariantResult[] {
  const rng = new Rng(seed);
  const W = 8, H = 8;
  const out: VariantResult[] = [];
  for (let i = 0; i < n; i++) {
    const gt = new Uint8Array(W * H);
    for (let k = 0; k < 10 + i; k++) gt[k] = 1;
    const det = gt.slice();
    det[40 + rng.int(0, 20)] = 1;
    const seg = segmentationMetrics([
      segmentationRecord({
        index: 0,
        name: "a",
        width: W,
        height: H,
        gtInstances: [{ mask: gt, label: 1 }],
        detections: [{ mask: det, score: rng.uniform(), label: 1, box: [0, 0, 8, 3] }],
      }),
      segmentationRecord({
        index: 1,
        name: "b",
        width: W,
        height: H,
        gtInstances: [],
        detections: [],
      }),
    ]);
    const cls = classificationReport(
      Array.from({ length: 30 }, (_, k) => ({
        index: k,
        name: "",
        label: k % 3,
        predicted: rng.uniform() < 0.7 ? k % 3 : rng.int(0, 3),
        probs: [],
      })),
    );
    out.push({
      model: `m${i}`,
      depth: 18,
      stages: 2,
      regime: "single",
      pretrained: i % 2 === 0,
      stage1Seconds: i % 2 === 0 ? 10 + i : null,
      trainSeconds: 100.25 + i,
      evalSeconds: 1,
      iterations: 5,
      totalParams: 1_000_000 + 1000 * i,
      clsTrainableParams: 500_000 + i,
      updateRule: "s+backbone",
      segmentation: seg,
      classification: cls,
      weights: "",
      finishedAt: "",
    });
  }
  return out;
}

function checkConsistent(t: Table): void {
  const json = JSON.parse(tableToJson(t)) as Table;
  assert.deepEqual(json, JSON.parse(JSON.stringify(t)));
  const csv = parseCsv(tableToCsv(t));
  assert.deepEqual(csv[0], t.columns.map((c) => c.key));
  assert.equal(csv.length, t.rows.length + 1);
  const md = tableToMarkdown(t).split("\n").filter((l) => l.startsWith("| ")).map((l) =>
    l.slice(2, -2).split(" | ")
  );
  assert.deepEqual(md[0], t.columns.map((c) => c.label));
  t.rows.forEach((_row, i) => {
    t.columns.forEach((c, j) => {
      const v = json.rows[i][c.key] ?? null;
      // CSV: full precision (parses back to the JSON number), empty for null
      const cell = csv[i + 1][j];
      if (v === null) assert.equal(cell, "");
      else if (typeof v === "number") assert.equal(Number(cell), v, `${t.id} ${c.key}`);
      else assert.equal(cell, v);
      // Markdown: the formatted JSON value
      assert.equal(md[i + 2][j], formatCell(v, c.format), `${t.id} ${c.key} row ${i}`);
    });
  });
}

Deno.test("tables 1-3: JSON, CSV and Markdown agree; values come from the results", () => {
  const results = fakeResults(4, 1);
  const tables = buildTables(results, ["note one", "reduced settings: x"]);
  assert.deepEqual(tables.map((t) => t.id), ["table1", "table2", "table3"]);
  for (const t of tables) checkConsistent(t);
  const [t1, t2, t3] = tables;
  assert.equal(t1.rows[0].total_seconds, 100.25 + 10);
  assert.equal(t1.rows[1].stage1_seconds, null);
  assert.equal(t1.rows[1].total_seconds, 101.25);
  assert.equal(t2.rows[2].paper_ap50, results[2].segmentation.paper.ap50);
  assert.equal(t2.rows[2].coco_ap, results[2].segmentation.segm.ap);
  assert.equal(t3.rows[3].sens_covid_19, results[3].classification.metrics.recall[2]);
  assert.equal(t3.rows[3].prec_cp, results[3].classification.metrics.precision[1]);
  assert.equal(t3.rows[3].paper_f1, results[3].classification.metrics.paperF1);
  assert.match(tableToMarkdown(t1), /- reduced settings: x/);
});

Deno.test("formatting and ranks", () => {
  assert.equal(formatCell(0.42449, "ap"), "0.4245");
  assert.equal(formatCell(-1, "ap"), "n/a");
  assert.equal(formatCell(0.9676, "pct"), "96.76");
  assert.equal(formatCell(8270000, "int"), "8,270,000");
  assert.equal(formatCell(null, "pct"), "–");
  assert.deepEqual(ranks([0.3, 0.5, 0.3, 0.1]), [2, 1, 2, 4]);
  const t = table1([{
    model: 'a,"b"',
    totalParams: 1,
    clsTrainableParams: 1,
    stage1Seconds: null,
    trainSeconds: 1,
  }]);
  assert.match(tableToCsv(t), /^model,.*\n"a,""b""",1,1,,1,1\n$/);
  assert.equal(table2([], []).rows.length, 0);
  assert.equal(table3([], []).rows.length, 0);
});

Deno.test("bar chart: bars have the series colours and heights proportional to the values", () => {
  const spec = {
    title: "T",
    categories: ["a", "b"],
    series: [{ name: "s1", values: [0.5, 1] }, { name: "s2", values: [0.25, null] }],
    yMax: 1,
    showValues: false,
  };
  const img = barChart(spec);
  const png = decode(barChartPng(spec));
  assert.equal(png.width, img.width);
  assert.equal(png.height, img.height);
  const count = (rgb: readonly number[]) => {
    let n = 0;
    for (let i = 0; i < img.rgba.length; i += 4) {
      if (img.rgba[i] === rgb[0] && img.rgba[i + 1] === rgb[1] && img.rgba[i + 2] === rgb[2]) n++;
    }
    return n;
  };
  // one legend swatch per series (equal areas) plus the bars: 10 px wide (scale 2), the plot
  // 240 px high, so values 0.5 + 1 and 0.25 differ by 10 * 240 * 1.25 pixels
  const c0 = count(SERIES_COLORS[0]), c1 = count(SERIES_COLORS[1]);
  assert.equal(c0 - c1, 10 * 240 * 1.25);
  assert.ok(c1 > 10 * 60, "the 0.25 bar and the swatch");
  assert.throws(
    () => barChart({ ...spec, series: [{ name: "x", values: [1] }] }),
    /1 values for 2/,
  );
  assert.equal(niceMax(0.83), 1);
  assert.equal(niceMax(7.3), 10);
  assert.equal(niceMax(2.2), 2.5);
});

Deno.test("each table has a chart spec over its models", () => {
  const tables = buildTables(fakeResults(3, 2), []);
  for (const t of tables) {
    const spec = tableChart(t);
    assert.deepEqual(spec.categories, ["m0", "m1", "m2"]);
    assert.ok(spec.series.length >= 2);
    const png = decode(barChartPng(spec));
    assert.ok(png.width > 100 && png.height > 100);
  }
  const t3 = tableChart(tables[2]);
  assert.equal(t3.series[1].values[0], 100 * (tables[2].rows[0].accuracy as number));
});
