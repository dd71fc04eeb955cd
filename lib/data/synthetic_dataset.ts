/**
 * Writes a synthetic dataset in the real file formats, so one set of readers serves synthetic and
 * real data:
 *
 * ```
 * <outDir>/cls/<class>_<index>.png      classification slices (COVIDx-CT style class prefix)
 * <outDir>/cls/split.txt                `filename class xmin ymin xmax ymax` (body box), all slices
 * <outDir>/cls/train.txt, cls/test.txt  the same lines, a class-stratified held-out division
 * <outDir>/seg/images/<stem>.png        segmentation slices
 * <outDir>/seg/masks/<stem>.png         CNCB-NCOV masks: 0 bg, 1 lung, 2 GGO, 3 consolidation
 * <outDir>/seg/train.txt, seg/test.txt  slice names
 * <outDir>/meta.json                    generator version, parameters, class of each seg slice
 * ```
 *
 * Output is byte-identical for the same parameters (each slice has its own seed, whatever the
 * number of workers). Large sets are rendered in worker threads. {@linkcode ensureSyntheticData}
 * generates a set once into a cache folder (atomically: a temporary folder renamed at the end).
 *
 * @example
 * ```ts
 * import { writeSyntheticDataset } from "./synthetic_dataset.ts";
 * const dir = await Deno.makeTempDir();
 * await writeSyntheticDataset({ outDir: dir, nCls: 6, nSeg: 3, size: 64, seed: 1 });
 * ```
 * @module
 */

import { mkdir, rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { writeTextFileAtomic } from "./atomic.ts";
import { mixSeed, Mulberry32 } from "./prng.ts";
import { runSliceJob, type SliceJob, type SliceJobResult } from "./synthetic_jobs.ts";
import { assignClasses, sliceSeed } from "./synthetic.ts";

/** Version of the generator's output; part of the cache folder name. */
export const SYNTHETIC_VERSION = 1;

/** Options of {@linkcode writeSyntheticDataset}. */
export interface SyntheticDatasetOptions {
  /** Output folder (created if needed). */
  outDir: string;
  /** Classification slices (default 300). */
  nCls?: number;
  /** Segmentation slices (default 100). */
  nSeg?: number;
  /** Slice side in pixels (default 256). */
  size?: number;
  /** Seed (default 0). */
  seed?: number;
  /** Fraction of each set held out as `test` (default 0.2). */
  testFraction?: number;
  /** Class balance of the classification set (default equal). */
  clsBalance?: readonly [number, number, number];
  /** Class balance of the segmentation set (default [0.2, 0.4, 0.4]: some lesion-free slices). */
  segBalance?: readonly [number, number, number];
  /** Worker threads (default: up to `navigator.hardwareConcurrency` for 64+ slices, else 0). */
  workers?: number;
}

/** What {@linkcode writeSyntheticDataset} wrote. */
export interface SyntheticDatasetSummary {
  /** Output folder. */
  outDir: string;
  /** Classification slices written. */
  nCls: number;
  /** Segmentation slices written. */
  nSeg: number;
  /** Slice side. */
  size: number;
  /** Seed. */
  seed: number;
  /** Worker threads used (0 = in process). */
  workers: number;
  /** Wall-clock seconds. */
  seconds: number;
}

/**
 * Seed stream of the classification set: its slices are
 * `synthesizeCT({ seed, stream: STREAM_CLS, n: nCls, classBalance: clsBalance })`.
 */
export const STREAM_CLS = 1;
/**
 * Seed stream of the segmentation set: its slices are
 * `synthesizeCT({ seed, stream: STREAM_SEG, n: nSeg, classBalance: segBalance })`.
 */
export const STREAM_SEG = 2;

async function runJobs(jobs: SliceJob[], outDir: string, size: number, workers: number) {
  if (workers <= 0) {
    const out: SliceJobResult[] = [];
    for (const j of jobs) out.push(await runSliceJob(j, outDir, size));
    return out;
  }
  const url = new URL("./synthetic_worker.ts", import.meta.url).href;
  const chunks: SliceJob[][] = Array.from({ length: workers }, () => []);
  jobs.forEach((j, i) => chunks[i % workers].push(j));
  const parts = await Promise.all(
    chunks.map((chunk) =>
      new Promise<SliceJobResult[]>((resolve, reject) => {
        const w = new Worker(url, { type: "module" });
        w.onmessage = (e: MessageEvent) => {
          w.terminate();
          if (e.data.error) reject(new Error(`synthetic data worker: ${e.data.error}`));
          else resolve(e.data.results);
        };
        w.onerror = (e: ErrorEvent) => {
          e.preventDefault();
          w.terminate();
          reject(new Error(`synthetic data worker failed: ${e.message}`));
        };
        w.postMessage({ jobs: chunk, outDir, size });
      })
    ),
  );
  const byFile = new Map<string, SliceJobResult>();
  for (const p of parts) for (const r of p) byFile.set(r.file, r);
  return jobs.map((j) => byFile.get(j.file)!);
}

/**
 * Picks `round(fraction * n)` test indices (at least one when `fraction > 0` and `n >= 2`),
 * stratified: each class is shuffled and its members ranked by relative position
 * `(rank + 0.5) / classSize`, and the lowest positions over all classes are taken.
 */
function testIndices(classes: number[], fraction: number, seed: number): Set<number> {
  const rng = new Mulberry32(seed);
  const keyed: [number, number, number][] = [];
  for (let cls = 0; cls < 3; cls++) {
    const idx = rng.shuffle(classes.flatMap((c, i) => (c === cls ? [i] : [])));
    idx.forEach((i, rank) => keyed.push([(rank + 0.5) / idx.length, cls, i]));
  }
  keyed.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const n = classes.length;
  const k = fraction > 0 && n >= 2 ? Math.max(1, Math.round(fraction * n)) : 0;
  return new Set(keyed.slice(0, k).map((e) => e[2]));
}

/** Renders and writes a synthetic dataset (layout in the module documentation). */
export async function writeSyntheticDataset(
  options: SyntheticDatasetOptions,
): Promise<SyntheticDatasetSummary> {
  const t0 = performance.now();
  const {
    outDir,
    nCls = 300,
    nSeg = 100,
    size = 256,
    seed = 0,
    testFraction = 0.2,
    clsBalance = [1, 1, 1],
    segBalance = [0.2, 0.4, 0.4],
  } = options;
  for (const [k, v] of [["nCls", nCls], ["nSeg", nSeg]] as const) {
    if (!Number.isInteger(v) || v < 0) {
      throw new Error(`writeSyntheticDataset: ${k} must be an integer >= 0, got ${v}`);
    }
  }
  if (!(testFraction >= 0 && testFraction < 1)) {
    throw new Error(`writeSyntheticDataset: testFraction must be in [0, 1), got ${testFraction}`);
  }
  const total = nCls + nSeg;
  const workers = Math.max(
    0,
    Math.floor(
      options.workers ?? (total >= 64 ? Math.min(navigator.hardwareConcurrency || 1, 8) : 0),
    ),
  );
  await mkdir(join(outDir, "cls"), { recursive: true });
  await mkdir(join(outDir, "seg", "images"), { recursive: true });
  await mkdir(join(outDir, "seg", "masks"), { recursive: true });

  const clsClasses = assignClasses(nCls, clsBalance, mixSeed(seed, STREAM_CLS));
  const segClasses = assignClasses(nSeg, segBalance, mixSeed(seed, STREAM_SEG));
  const pad = (i: number, n: number) => String(i).padStart(Math.max(4, String(n - 1).length), "0");
  const clsJobs: SliceJob[] = clsClasses.map((c, i) => ({
    kind: "cls",
    file: `${c}_${pad(i, nCls)}.png`,
    seed: sliceSeed(seed, STREAM_CLS, i),
    classId: c,
  }));
  const segJobs: SliceJob[] = segClasses.map((c, i) => ({
    kind: "seg",
    file: `slice_${pad(i, nSeg)}.png`,
    seed: sliceSeed(seed, STREAM_SEG, i),
    classId: c,
  }));
  const results = await runJobs([...clsJobs, ...segJobs], outDir, size, workers);
  const clsResults = results.slice(0, nCls);

  const lines = clsJobs.map((j, i) => `${j.file} ${j.classId} ${clsResults[i].bodyBox.join(" ")}`);
  const clsTest = testIndices(clsClasses, testFraction, mixSeed(seed, 0x7e57, STREAM_CLS));
  const segTest = testIndices(segClasses, testFraction, mixSeed(seed, 0x7e57, STREAM_SEG));
  const pick = <T>(xs: T[], test: boolean, set: Set<number>) =>
    xs.filter((_, i) => set.has(i) === test);
  const text = (xs: string[]) => xs.length ? xs.join("\n") + "\n" : "";
  if (nCls > 0) {
    await writeTextFileAtomic(join(outDir, "cls", "split.txt"), text(lines));
    await writeTextFileAtomic(join(outDir, "cls", "train.txt"), text(pick(lines, false, clsTest)));
    await writeTextFileAtomic(join(outDir, "cls", "test.txt"), text(pick(lines, true, clsTest)));
  }
  if (nSeg > 0) {
    const stems = segJobs.map((j) => j.file.replace(/\.png$/, ""));
    await writeTextFileAtomic(join(outDir, "seg", "train.txt"), text(pick(stems, false, segTest)));
    await writeTextFileAtomic(join(outDir, "seg", "test.txt"), text(pick(stems, true, segTest)));
  }
  const meta = {
    generator: "ssm-synthetic-ct",
    version: SYNTHETIC_VERSION,
    params: { nCls, nSeg, size, seed, testFraction, clsBalance, segBalance },
    segClasses: Object.fromEntries(segJobs.map((j) => [j.file.replace(/\.png$/, ""), j.classId])),
  };
  await writeTextFileAtomic(join(outDir, "meta.json"), JSON.stringify(meta, null, 1) + "\n");
  return { outDir, nCls, nSeg, size, seed, workers, seconds: (performance.now() - t0) / 1000 };
}

/** Options of {@linkcode ensureSyntheticData}. */
export type EnsureSyntheticOptions = Partial<SyntheticDatasetOptions> & {
  /** Cache folder (default `data/cache/synth-v<version>-s<seed>-c<nCls>-g<nSeg>-px<size>`). */
  cacheDir?: string;
};

/**
 * Returns a folder holding the synthetic dataset for these parameters, generating it on first
 * use. Generation goes to a temporary sibling folder that is renamed into place when complete,
 * so an interrupted run leaves no half-written cache and concurrent callers are safe.
 */
export async function ensureSyntheticData(options: EnsureSyntheticOptions = {}): Promise<string> {
  const { nCls = 300, nSeg = 100, size = 256, seed = 0 } = options;
  const dir = options.cacheDir ??
    join("data", "cache", `synth-v${SYNTHETIC_VERSION}-s${seed}-c${nCls}-g${nSeg}-px${size}`);
  const exists = async (p: string) => await stat(p).then(() => true, () => false);
  if (await exists(join(dir, "meta.json"))) return dir;
  const tmp = `${dir}.tmp-${Deno.pid}-${Date.now().toString(36)}`;
  try {
    await writeSyntheticDataset({ ...options, nCls, nSeg, size, seed, outDir: tmp });
    try {
      await rename(tmp, dir);
    } catch (err) {
      if (!(await exists(join(dir, "meta.json")))) {
        throw new Error(`cannot move the synthetic dataset into ${dir}: ${(err as Error).message}`);
      }
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  return dir;
}
