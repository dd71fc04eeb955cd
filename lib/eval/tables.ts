/**
 * The paper's three tables as data: Table 1 (parameters and training time), Table 2 (lesion AP
 * under the paper's protocol and COCO) and Table 3 (per-class sensitivity and precision,
 * accuracy, F1). One {@linkcode Table} value renders to Markdown (formatted numbers), CSV (full
 * precision) and JSON (full precision, with the title and notes), so the three files always
 * agree.
 *
 * @example
 * ```ts
 * import { tableToCsv, tableToMarkdown, type Table } from "./tables.ts";
 * const t: Table = {
 *   id: "demo", title: "Demo", notes: [],
 *   columns: [{ key: "model", label: "Model", format: "text" }, { key: "ap", label: "AP", format: "ap" }],
 *   rows: [{ model: "r18-3-scratch", ap: 0.42449 }],
 * };
 * console.log(tableToMarkdown(t)); // | Model | AP | ... | r18-3-scratch | 0.4245 |
 * console.log(tableToCsv(t)); // model,ap\nr18-3-scratch,0.42449
 * ```
 *
 * @module
 */

import type { SegmentationMetrics } from "./segmentation.ts";
import type { ClassificationReport } from "./evaluate.ts";

/** A table cell: text, a number, or null (not available). */
export type Cell = string | number | null;

/** How a column's numbers are shown in Markdown (CSV and JSON keep full precision). */
export type CellFormat = "text" | "int" | "ap" | "pct" | "seconds" | "millions";

/** A column. */
export interface TableColumn {
  /** Key in the rows (and the CSV header). */
  key: string;
  /** Header shown in Markdown. */
  label: string;
  /** Markdown number format. */
  format: CellFormat;
}

/** A table with its provenance notes. */
export interface Table {
  /** Short id (`table1`, `table2`, `table3`), used for file names. */
  id: string;
  /** Title. */
  title: string;
  /** Lines printed under the title (settings, reduced parameters, data). */
  notes: string[];
  /** Columns, in order. */
  columns: TableColumn[];
  /** Rows keyed by column key. */
  rows: Record<string, Cell>[];
}

/** Formats one cell for Markdown / the console. */
export function formatCell(value: Cell, format: CellFormat): string {
  if (value === null || value === undefined) return "–";
  if (typeof value === "string") return value;
  if (!Number.isFinite(value)) return String(value);
  switch (format) {
    case "int":
      return Math.round(value).toLocaleString("en-US");
    case "ap":
      return value < 0 ? "n/a" : value.toFixed(4);
    case "pct":
      return (100 * value).toFixed(2);
    case "seconds":
      return value.toFixed(0);
    case "millions":
      return (value / 1e6).toFixed(2) + "M";
    default:
      return String(value);
  }
}

/** The table as a Markdown section: title, notes as a list, then a pipe table. */
export function tableToMarkdown(t: Table): string {
  const header = t.columns.map((c) => c.label);
  const body = t.rows.map((r) => t.columns.map((c) => formatCell(r[c.key] ?? null, c.format)));
  const align = t.columns.map((c) => (c.format === "text" ? ":---" : "---:"));
  const line = (cells: string[]) => `| ${cells.join(" | ")} |`;
  return [
    `### ${t.title}`,
    "",
    ...t.notes.map((n) => `- ${n}`),
    ...(t.notes.length ? [""] : []),
    line(header),
    line(align),
    ...body.map(line),
    "",
  ].join("\n");
}

/** The table as plain fixed-width text for a terminal. */
export function tableToText(t: Table): string {
  const header = t.columns.map((c) => c.label);
  const body = t.rows.map((r) => t.columns.map((c) => formatCell(r[c.key] ?? null, c.format)));
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => r[i].length)));
  const fmt = (cells: string[]) =>
    cells.map((
      s,
      i,
    ) => (t.columns[i].format === "text" ? s.padEnd(widths[i]) : s.padStart(widths[i])))
      .join("  ");
  return [t.title, ...t.notes.map((n) => `  ${n}`), fmt(header), ...body.map(fmt), ""].join("\n");
}

function csvField(v: Cell): string {
  if (v === null || v === undefined) return "";
  const s = String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** The table as CSV: a header of column keys, full-precision numbers, empty cells for null. */
export function tableToCsv(t: Table): string {
  return [
    t.columns.map((c) => csvField(c.key)).join(","),
    ...t.rows.map((r) => t.columns.map((c) => csvField(r[c.key] ?? null)).join(",")),
  ].join("\n") + "\n";
}

/** The table as JSON text (id, title, notes, columns, rows). */
export function tableToJson(t: Table): string {
  return JSON.stringify(t, null, 2) + "\n";
}

/** One model's entry of Table 1. */
export interface Table1Entry {
  /** Variant name. */
  model: string;
  /** Trainable parameters. */
  totalParams: number;
  /** Parameters the classification step updates (the update rule's set). */
  clsTrainableParams: number;
  /** Seconds of the stage-I pretraining it started from (null: none). */
  stage1Seconds: number | null;
  /** Seconds of its own training. */
  trainSeconds: number;
}

/** Table 1: model size and training time (pretrained variants include their stage-I time). */
export function table1(entries: readonly Table1Entry[], notes: string[] = []): Table {
  return {
    id: "table1",
    title: "Table 1: model size and training time",
    notes,
    columns: [
      { key: "model", label: "Model", format: "text" },
      { key: "total_params", label: "#params (total)", format: "int" },
      { key: "cls_trainable_params", label: "#trainable (classification step)", format: "int" },
      { key: "stage1_seconds", label: "stage-I time (s)", format: "seconds" },
      { key: "train_seconds", label: "training time (s)", format: "seconds" },
      { key: "total_seconds", label: "total time (s)", format: "seconds" },
    ],
    rows: entries.map((e) => ({
      model: e.model,
      total_params: e.totalParams,
      cls_trainable_params: e.clsTrainableParams,
      stage1_seconds: e.stage1Seconds,
      train_seconds: e.trainSeconds,
      total_seconds: e.trainSeconds + (e.stage1Seconds ?? 0),
    })),
  };
}

/** Ranks (1 = best) of `values`, higher is better; ties share the better rank. */
export function ranks(values: readonly number[]): number[] {
  return values.map((v) => 1 + values.filter((w) => w > v).length);
}

/** Table 2: lesion segmentation AP, the paper's protocol and COCO segm (maxDets 128). */
export function table2(
  entries: readonly { model: string; segmentation: SegmentationMetrics }[],
  notes: string[] = [],
): Table {
  const r = ranks(entries.map((e) => e.segmentation.paper.mAP));
  return {
    id: "table2",
    title: "Table 2: lesion segmentation, average precision",
    notes,
    columns: [
      { key: "model", label: "Model", format: "text" },
      { key: "paper_ap50", label: "AP@0.5", format: "ap" },
      { key: "paper_ap75", label: "AP@0.75", format: "ap" },
      { key: "paper_map", label: "AP@[.5:.95]", format: "ap" },
      { key: "coco_ap50", label: "COCO AP@0.5", format: "ap" },
      { key: "coco_ap75", label: "COCO AP@0.75", format: "ap" },
      { key: "coco_ap", label: "COCO AP@[.5:.95]", format: "ap" },
      { key: "rank", label: "Rank", format: "int" },
    ],
    rows: entries.map((e, i) => ({
      model: e.model,
      paper_ap50: e.segmentation.paper.ap50,
      paper_ap75: e.segmentation.paper.ap75,
      paper_map: e.segmentation.paper.mAP,
      coco_ap50: e.segmentation.segm.ap50,
      coco_ap75: e.segmentation.segm.ap75,
      coco_ap: e.segmentation.segm.ap,
      rank: r[i],
    })),
  };
}

/** Table 3: classification sensitivity and precision per class, accuracy, F1 scores. */
export function table3(
  entries: readonly { model: string; classification: ClassificationReport }[],
  notes: string[] = [],
): Table {
  const names = entries[0]?.classification.classNames ??
    ["Control", "Common Pneumonia", "COVID-19"];
  const short = (n: string) => n === "Common Pneumonia" ? "CP" : n;
  const key = (n: string) => short(n).toLowerCase().replace(/[^a-z0-9]+/g, "_");
  const r = ranks(
    entries.map((e) => e.classification.metrics.paperF1 ?? e.classification.metrics.macroF1),
  );
  return {
    id: "table3",
    title: "Table 3: classification, sensitivity / precision per class, accuracy and F1 (%)",
    notes,
    columns: [
      { key: "model", label: "Model", format: "text" },
      ...names.map((n) => ({
        key: `sens_${key(n)}`,
        label: `Sens ${short(n)}`,
        format: "pct" as const,
      })),
      ...names.map((n) => ({
        key: `prec_${key(n)}`,
        label: `Prec ${short(n)}`,
        format: "pct" as const,
      })),
      { key: "accuracy", label: "Accuracy", format: "pct" },
      { key: "macro_f1", label: "Macro F1", format: "pct" },
      { key: "weighted_f1", label: "Weighted F1", format: "pct" },
      { key: "paper_f1", label: "F1 (paper)", format: "pct" },
      { key: "rank", label: "Rank", format: "int" },
    ],
    rows: entries.map((e, i) => {
      const m = e.classification.metrics;
      const row: Record<string, Cell> = { model: e.model };
      names.forEach((n, k) => {
        row[`sens_${key(n)}`] = m.recall[k];
        row[`prec_${key(n)}`] = m.precision[k];
      });
      row.accuracy = m.accuracy;
      row.macro_f1 = m.macroF1;
      row.weighted_f1 = m.weightedF1;
      row.paper_f1 = m.paperF1;
      row.rank = r[i];
      return row;
    }),
  };
}
