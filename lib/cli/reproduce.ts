/**
 * `deno task reproduce`: re-runs the paper's ablation — ResNet18/34 × 2/3 backbone stages ×
 * the three regimes (12 variants; the pretrained ones start from a stage-I Mask R-CNN trained
 * once per backbone) — and writes Tables 1–3 (Markdown, CSV, JSON, PNG charts), checkpoints
 * and logs to `results/<run>/`, then prints the tables.
 *
 * Profiles: `quick` (default; the embedded synthetic data at reduced settings that a 2-core CPU
 * runs with wasm, every reduction listed in the tables) and `paper` (512 px, the paper's
 * schedule; needs `--seg-data`/`--cls-data` and a GPU backend). Finished variants are skipped,
 * so re-running continues an interrupted run.
 *
 * @example
 * ```sh
 * deno task reproduce                                   # quick profile, all 12 variants
 * deno task reproduce --variants r18-3-scratch,r34-2-single --run try1
 * deno task reproduce --profile paper --seg-data CNCB/seg --cls-data COVIDx/train_COVIDx_CT.txt \
 *   --cls-test-data COVIDx/test_COVIDx_CT.txt --backend tensorflow-gpu
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import { join } from "node:path";
import { BACKEND_FLAG_HELP, parseBackendFlag } from "../backend/flag.ts";
import { type BackendInfo, type BackendName, initBackend } from "../backend/backend.ts";
import type { EvalDataSpec } from "../eval/data.ts";
import { profileByName, type ReproProfile } from "../reproduce/profiles.ts";
import { reproduce, tablesText } from "../reproduce/run.ts";
import { parseVariants, type VariantSpec } from "../reproduce/variants.ts";
import { type CliIo, consoleIo, formatDuration } from "./common.ts";

/** Usage text of `deno task reproduce`. */
export const REPRODUCE_USAGE: string = `Usage: deno task reproduce [options]

Trains and evaluates the paper's 12 variants (ResNet18/34, 2/3 stages, regimes single /
parallel / scratch; single and parallel start from a stage-I model trained once per backbone)
and writes results/<run>/table{1,2,3}.{md,csv,json,png}, checkpoints and logs.

Options:
  --profile P             quick (default: synthetic data, reduced settings, CPU) | paper
  --run NAME              run folder name under --results (default: the profile name)
  --results DIR           results root (default results)
  --variants LIST         comma-separated subset, e.g. r18-3-scratch,r34-2-single (default all)
  --jobs N                variants trained in parallel worker threads (default: CPU cores on
                          wasm/cpu, 1 on GPU backends)
  --seg-data DIR          segmentation data: DIR/images, DIR/masks, DIR/train.txt, DIR/test.txt
  --seg-lesion-labels L   mask labels that are lesions (default 2,3 = CNCB; MedSeg: 1,2)
  --cls-data PATH         classification data: folder with train.txt/test.txt, or a train split
  --cls-test-data FILE    classification test split file (with a --cls-data split file)
  ${BACKEND_FLAG_HELP}
                          (the quick profile defaults to wasm)
  -h, --help              show this help

Re-running skips finished variants (their result.json exists) and finished stage-I models.
`;

const GPU_BACKENDS = ["tensorflow-gpu", "webgpu"];

class UsageError extends Error {}

/** The data a profile runs on, from the flags (null paths: the profile's synthetic data). */
export function dataSpecFor(
  profile: ReproProfile,
  flags: { segData?: string; clsData?: string; clsTestData?: string; segLesionLabels?: number[] },
): EvalDataSpec {
  const real = Boolean(flags.segData || flags.clsData);
  if (real && !(flags.segData && flags.clsData)) {
    throw new UsageError("--seg-data and --cls-data go together (both splits are needed)");
  }
  return {
    segData: flags.segData ?? null,
    segLesionLabels: flags.segLesionLabels ?? null,
    clsData: flags.clsData ?? null,
    clsTestData: flags.clsTestData ?? null,
    size: profile.size,
    minArea: profile.minArea,
    synthetic: real ? undefined : profile.synthetic ?? undefined,
  };
}

/** Runs `deno task reproduce`; returns the exit code (0 ok, 1 a job failed, 2 usage error). */
export async function reproduceMain(args: string[], io: CliIo = consoleIo()): Promise<number> {
  let backendName: BackendName;
  let profile: ReproProfile;
  let variants: VariantSpec[];
  let data: EvalDataSpec;
  let v: Record<string, string | boolean | undefined>;
  try {
    const { backend, rest } = parseBackendFlag(args);
    backendName = backend;
    ({ values: v } = parseArgs({
      args: rest,
      options: {
        profile: { type: "string", default: "quick" },
        run: { type: "string" },
        results: { type: "string", default: "results" },
        variants: { type: "string" },
        jobs: { type: "string" },
        "seg-data": { type: "string" },
        "seg-lesion-labels": { type: "string" },
        "cls-data": { type: "string" },
        "cls-test-data": { type: "string" },
        help: { type: "boolean", short: "h", default: false },
      },
    }));
    if (v.help) {
      io.out(REPRODUCE_USAGE);
      return 0;
    }
    profile = profileByName(v.profile as string);
    variants = parseVariants(v.variants as string | undefined);
    if (profile.name === "paper" && !(v["seg-data"] && v["cls-data"])) {
      throw new UsageError(
        "the paper profile trains on the real data: pass --seg-data (CNCB-NCOV segmentation " +
          "folder with images/, masks/, train.txt, test.txt) and --cls-data (COVIDx-CT; a folder " +
          "with train.txt/test.txt or the train split file, with --cls-test-data for the test " +
          "split). Without them, run the quick profile (the default).",
      );
    }
    const labels = (v["seg-lesion-labels"] as string | undefined)?.split(",").map((s) => {
      const n = Number(s.trim());
      if (!Number.isInteger(n) || n < 0) {
        throw new UsageError(`--seg-lesion-labels: '${s}' is not a label (non-negative integer)`);
      }
      return n;
    });
    data = dataSpecFor(profile, {
      segData: v["seg-data"] as string | undefined,
      clsData: v["cls-data"] as string | undefined,
      clsTestData: v["cls-test-data"] as string | undefined,
      segLesionLabels: labels,
    });
  } catch (e) {
    io.err(`error: ${(e as Error).message}\n\n${REPRODUCE_USAGE}`);
    return 2;
  }

  // The quick profile is made for the CPU: without --backend / SSM_BACKEND it runs on wasm.
  const explicit = args.some((a) => a === "--backend" || a.startsWith("--backend=")) ||
    Boolean(Deno.env.get("SSM_BACKEND"));
  if (profile.name === "quick" && !explicit) backendName = "wasm";
  let info: BackendInfo;
  try {
    info = await initBackend(backendName);
  } catch (e) {
    io.err(`error: ${(e as Error).message}`);
    return 1;
  }
  if (profile.name === "paper" && !GPU_BACKENDS.includes(info.name)) {
    io.err(
      `error: the paper profile (512 px, 50 + 50 epochs, 12 variants) needs a GPU backend ` +
        `(--backend tensorflow-gpu or webgpu); got '${info.name}'. On a CPU run the quick ` +
        "profile (the default).",
    );
    return 2;
  }
  let jobs: number;
  const single = info.name === "wasm" || info.name === "cpu";
  if (v.jobs !== undefined) {
    jobs = Number(v.jobs);
    if (!Number.isInteger(jobs) || jobs < 1) {
      io.err(`error: --jobs must be a positive integer, got '${v.jobs}'`);
      return 2;
    }
  } else jobs = single ? Math.max(1, navigator.hardwareConcurrency ?? 1) : 1;

  const runDir = join(v.results as string, (v.run as string | undefined) ?? profile.name);
  io.err(
    `reproduce: profile ${profile.name}, ${variants.length} variant(s) -> ${runDir}; backend ` +
      `${info.name}; ${jobs} parallel job(s)`,
  );
  for (const r of profile.reduced) io.err(`  reduced: ${r}`);
  let summary;
  try {
    summary = await reproduce({ profile, runDir, variants, backend: info.name, jobs, data, io });
  } catch (e) {
    io.err(`error: ${(e as Error).message}`);
    return 1;
  }
  if (summary.tables.length && summary.results.length) io.out("\n" + tablesText(summary.tables));
  io.err(
    `reproduce: ${summary.ran.length} job(s) run, ${summary.skipped.length} skipped, ` +
      `${summary.failed.length} failed in ${formatDuration(summary.seconds)}; tables in ${runDir}`,
  );
  for (const f of summary.failed) io.err(`  failed: ${f.job}: ${f.message}`);
  return summary.failed.length ? 1 : 0;
}

if (import.meta.main) {
  Deno.exit(await reproduceMain(Deno.args));
}
