/**
 * The benchmark suite behind `deno task bench`: inference of one slice with the detection count
 * forced to 128 (`sat`) and to 0 (`zero`), one training iteration at each training size, and the
 * kernel table. Every model workload runs in a fresh Deno process (so each peak RSS belongs to
 * that workload alone) that prints its {@linkcode WorkloadResult} as JSON on its last stdout line.
 *
 * @example
 * ```ts
 * import { formatSuite, runBenchSuite } from "./suite.ts";
 * const r = await runBenchSuite({ backend: "wasm", reps: 1, size: 128, trainSizes: [128] });
 * console.log(formatSuite(r));
 * ```
 *
 * @module
 */
import { dirname, join } from "node:path";
import { fileURLToPath as fromFileUrl } from "node:url";
import { existsSync } from "node:fs";
import type { BackendName } from "../backend/mod.ts";
import { formatKernelTable, type KernelBenchResult, runKernelBench } from "./kernels.ts";
import type { WorkloadResult } from "./workloads.ts";

/** What to run. */
export type SuitePart = "inference" | "train" | "kernels";

/** Options of {@linkcode runBenchSuite}. */
export interface BenchSuiteOptions {
  /** Backend (default `wasm`). */
  backend?: Exclude<BackendName, "auto">;
  /** Timed runs per workload (default 7). */
  reps?: number;
  /** Inference input size (default 512). */
  size?: number;
  /** Training sizes (default 512 and 128). */
  trainSizes?: number[];
  /** Parts to run (default all). */
  parts?: SuitePart[];
  /** Kernel shapes to keep (`--only`), default all. */
  kernelsOnly?: string[];
  /** Progress lines (default: to stderr). */
  log?: (line: string) => void;
}

/** The suite's result; the flat `*_s` / `*_bytes` keys are the headline numbers. */
export interface BenchSuiteResult {
  /** ISO date of the run. */
  date: string;
  /** Backend. */
  backend: string;
  /** Threads the backend used. */
  threads: number;
  /** Logical CPUs and the 1/5/15-minute load average at the start. */
  host: { cpus: number; loadavg: number[] };
  /** Timed runs per workload. */
  reps: number;
  /** Workload results. */
  workloads: WorkloadResult[];
  /** Kernel table (null when not run). */
  kernels: KernelBenchResult | null;
  /** Headline medians (s) and peaks (bytes): `inference_512_sat_s`, `peak_rss_train_bytes`, ... */
  [key: string]: unknown;
}

/** The `deno.json` above this module (the workload processes need its import map). */
function configPath(): string | null {
  let dir = dirname(fromFileUrl(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const p = join(dir, "deno.json");
    if (existsSync(p)) return p;
    dir = dirname(dir);
  }
  return null;
}

/** Spec of one workload run in a child process. */
export interface WorkloadSpec {
  /** `inference` or `train`. */
  kind: "inference" | "train";
  /** Backend. */
  backend: Exclude<BackendName, "auto">;
  /** Input size. */
  size: number;
  /** Timed runs. */
  reps: number;
  /** Inference only: forced detections. */
  detections?: "sat" | "zero";
}

/** Runs one workload in a fresh `deno` process and returns its result. */
export async function runWorkloadProcess(spec: WorkloadSpec): Promise<WorkloadResult> {
  const script = fromFileUrl(new URL("../cli/bench.ts", import.meta.url));
  const cfg = configPath();
  const args = ["run", "-A", ...(cfg ? ["--config", cfg] : []), script, "_workload"];
  const out = await new Deno.Command(Deno.execPath(), {
    args: [...args, JSON.stringify(spec)],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout).trim();
  const stderr = new TextDecoder().decode(out.stderr).trim();
  if (!out.success) {
    throw new Error(`workload ${JSON.stringify(spec)} failed (exit ${out.code}): ${stderr}`);
  }
  const last = stdout.split("\n").pop() ?? "";
  try {
    return JSON.parse(last) as WorkloadResult;
  } catch {
    throw new Error(`workload ${JSON.stringify(spec)} printed no result: ${stdout}\n${stderr}`);
  }
}

/** Runs the suite (each model workload in its own process). */
export async function runBenchSuite(opts: BenchSuiteOptions = {}): Promise<BenchSuiteResult> {
  const backend = opts.backend ?? "wasm";
  const reps = opts.reps ?? 7;
  if (!Number.isInteger(reps) || reps < 1) {
    throw new Error(`reps must be a positive integer, got ${reps}`);
  }
  const size = opts.size ?? 512;
  const trainSizes = opts.trainSizes ?? [512, 128];
  const parts = opts.parts ?? ["inference", "train", "kernels"];
  const log = opts.log ?? ((l: string) => console.error(l));
  const result: BenchSuiteResult = {
    date: new Date().toISOString(),
    backend,
    threads: 1,
    host: { cpus: navigator.hardwareConcurrency, loadavg: Deno.loadavg() },
    reps,
    workloads: [],
    kernels: null,
  };
  const specs: WorkloadSpec[] = [];
  if (parts.includes("inference")) {
    for (const d of ["sat", "zero"] as const) {
      specs.push({ kind: "inference", backend, size, reps, detections: d });
    }
  }
  if (parts.includes("train")) {
    for (const s of trainSizes) specs.push({ kind: "train", backend, size: s, reps });
  }
  for (const spec of specs) {
    log(`bench: ${spec.kind} ${spec.size}${spec.detections ? ` ${spec.detections}` : ""} ...`);
    const w = await runWorkloadProcess(spec);
    log(`bench: ${w.workload}: median ${w.medianS.toFixed(3)} s`);
    result.workloads.push(w);
    result.backend = w.backend;
    result.threads = w.threads;
    result[`${w.workload}_s`] = w.medianS;
  }
  const peak = (prefix: string) => {
    const ws = result.workloads.filter((w) => w.workload.startsWith(prefix));
    return ws.length ? Math.max(...ws.map((w) => w.peakRssBytes)) : null;
  };
  result.peak_rss_inference_bytes = peak("inference_");
  result.peak_rss_train_bytes = peak("train_");
  if (parts.includes("kernels")) {
    log("bench: kernels ...");
    result.kernels = await runKernelBench({ backends: [backend], reps, only: opts.kernelsOnly });
  }
  return result;
}

const gib = (b: unknown) => typeof b === "number" ? `${(b / 2 ** 30).toFixed(2)} GiB` : "-";
const f = (v: number | null, d = 1) => v === null ? "-" : v.toFixed(d);

/** Human-readable tables of a suite result. */
export function formatSuite(r: BenchSuiteResult): string {
  const lines: string[] = [];
  lines.push(
    `backend ${r.backend}, ${r.threads} thread(s); ${r.host.cpus} CPUs, load ` +
      `${r.host.loadavg.map((l) => l.toFixed(2)).join(" ")}; ${r.reps} timed runs per workload`,
  );
  if (r.workloads.length) {
    lines.push("");
    lines.push(
      `${"workload".padEnd(24)}${"min s".padStart(9)}${"median s".padStart(10)}` +
        `${"max s".padStart(9)}${"peak RSS".padStart(12)}`,
    );
    for (const w of r.workloads) {
      lines.push(
        `${w.workload.padEnd(24)}${w.minS.toFixed(3).padStart(9)}` +
          `${w.medianS.toFixed(3).padStart(10)}${w.maxS.toFixed(3).padStart(9)}` +
          `${gib(w.peakRssBytes).padStart(12)}`,
      );
    }
    for (const w of r.workloads) {
      const counts = Object.entries(w.counts).map(([k, v]) => `${k} ${v}`).join(", ");
      lines.push("", `${w.workload} per stage (profiled runs; ${counts}):`);
      lines.push(
        `  ${"stage".padEnd(24)}${"ms".padStart(9)}${"GFLOP".padStart(9)}${"GFLOP/s".padStart(9)}`,
      );
      for (const s of w.stages) {
        lines.push(
          `  ${s.name.padEnd(24)}${s.ms.toFixed(1).padStart(9)}${f(s.gflop, 2).padStart(9)}` +
            `${f(s.gflops).padStart(9)}`,
        );
      }
    }
  }
  if (r.kernels) lines.push("", formatKernelTable(r.kernels));
  return lines.join("\n");
}
