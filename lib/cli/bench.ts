/**
 * `deno task bench [inference|train|kernels] [options]`: benchmarks.
 *
 * Without a subcommand it runs everything: inference of one 512x512 slice with 128 and with 0
 * detections, one training iteration at 512 and at 128, and the kernel table, on one backend
 * (default wasm), each model workload in a fresh process; see `lib/bench/suite.ts`. Options:
 * `--backend NAME`, `--json FILE`, `--reps N` (default 7), `--size N` (inference size, 512),
 * `--train-sizes A,B` (512,128), `--only NAME[,NAME]` (kernel shapes), `--threads N` (wasm
 * threads, sets `SSM_WASM_THREADS` for every workload; default: `SSM_WASM_THREADS` if set, else
 * every core, at most 8).
 *
 * `kernels` measures convolution (forward, input and filter gradients) and matrix product
 * throughput per backend, see `lib/bench/kernels.ts`. Options: `--backend NAME` (one backend;
 * default: every available one except cpu), `--json FILE`, `--reps N` (default 5), `--batch N`
 * (default 1), `--only NAME[,NAME]` (shape names containing these strings).
 *
 * @example
 * ```sh
 * deno task bench kernels --backend wasm --json results/kernels.json
 * ```
 *
 * @module
 */
import { BACKEND_FLAG_HELP, parseBackendFlag, resolveWasmThreads } from "../backend/mod.ts";
import { formatKernelTable, runKernelBench } from "../bench/kernels.ts";
import { formatSuite, runBenchSuite, type SuitePart, type WorkloadSpec } from "../bench/suite.ts";
import { runInferenceWorkload, runTrainWorkload } from "../bench/workloads.ts";

const USAGE = `usage: deno task bench [inference|train|kernels] [options]
  (no subcommand: inference, train and kernels)
  ${BACKEND_FLAG_HELP}
  --json FILE      also write the results as JSON
  --reps N         timed runs per measurement (default 7; kernels alone: 5)
  --size N         inference input size (default 512)
  --train-sizes L  training sizes, comma-separated (default 512,128)
  --batch N        kernels: images per batch for the backbone shapes (default 1)
  --only A,B       kernels: only shapes whose name contains A or B (e.g. "layer1,matMul")
  --threads N      wasm: XNNPACK threads (1-8; sets SSM_WASM_THREADS; default: that variable,
                   else every core, at most 8)`;

function takeValue(args: string[], name: string): string | undefined {
  const i = args.findIndex((a) => a === name || a.startsWith(`${name}=`));
  if (i < 0) return undefined;
  const a = args[i];
  if (a.includes("=")) {
    args.splice(i, 1);
    return a.slice(name.length + 1);
  }
  const v = args[i + 1];
  if (v === undefined) throw new Error(`${name} needs a value`);
  args.splice(i, 2);
  return v;
}

function positiveInt(name: string, v: string | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) {
    throw new Error(`${name} must be a positive integer, got '${v}'`);
  }
  return n;
}

/**
 * The wasm thread count of a benchmark: `--threads` if given, else `SSM_WASM_THREADS` if set,
 * else every core (at most 8), as PyTorch uses by default.
 *
 * @param flag the value of `--threads` (undefined: absent)
 * @param env the value of `SSM_WASM_THREADS` (undefined: unset)
 * @param cores the number of cores
 */
export function benchThreads(
  flag: string | undefined,
  env: string | undefined,
  cores: number = navigator.hardwareConcurrency || 1,
): number {
  if (flag !== undefined) return resolveWasmThreads(Number(flag));
  if (env !== undefined && env.trim() !== "") return resolveWasmThreads();
  return Math.max(1, Math.min(8, cores));
}

/** Takes `--threads N` out of `args` and exports the thread count as `SSM_WASM_THREADS`. */
function takeThreads(args: string[]): string[] {
  const rest = [...args];
  const n = benchThreads(takeValue(rest, "--threads"), Deno.env.get("SSM_WASM_THREADS"));
  Deno.env.set("SSM_WASM_THREADS", String(n));
  return rest;
}

/** Runs the benchmark CLI with the given arguments; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  const argv = args[0] === "_workload" ? args : takeThreads(args);
  const [sub, ...restArgs] = argv;
  if (sub === "--help" || sub === "-h") {
    console.log(USAGE);
    return 0;
  }
  if (sub === "_workload") return await workload(restArgs[0]);
  if (sub === undefined || sub.startsWith("-") || sub === "inference" || sub === "train") {
    return await suite(sub === undefined || sub.startsWith("-") ? argv : restArgs, sub);
  }
  if (sub !== "kernels") {
    console.error(`unknown subcommand '${sub}'`);
    console.log(USAGE);
    return 2;
  }
  const explicit = restArgs.some((a) => a === "--backend" || a.startsWith("--backend="));
  const { backend, rest } = parseBackendFlag(restArgs);
  const jsonPath = takeValue(rest, "--json");
  const reps = positiveInt("--reps", takeValue(rest, "--reps"), 5);
  const batch = positiveInt("--batch", takeValue(rest, "--batch"), 1);
  const only = takeValue(rest, "--only")?.split(",").filter((s) => s.length > 0);
  if (rest.length) throw new Error(`unknown arguments: ${rest.join(" ")}\n${USAGE}`);
  const backends = explicit || Deno.env.get("SSM_BACKEND")
    ? (backend === "auto" ? undefined : [backend])
    : undefined;
  const result = await runKernelBench({
    backends,
    reps,
    batch,
    only,
    onRow: (r) =>
      console.error(
        `${r.backend} ${r.name}: ${
          Object.entries(r.gflops).map(([k, v]) => `${k} ${v == null ? "-" : v.toFixed(1)}`)
            .join(", ")
        } GFLOP/s`,
      ),
  });
  console.log(formatKernelTable(result));
  if (jsonPath) writeJson(jsonPath, result);
  return result.backends.some((b) => b.ok) ? 0 : 1;
}

function writeJson(path: string, value: unknown): void {
  const tmp = `${path}.tmp`;
  const dir = path.includes("/") ? path.slice(0, path.lastIndexOf("/")) : "";
  if (dir) Deno.mkdirSync(dir, { recursive: true });
  Deno.writeTextFileSync(tmp, JSON.stringify(value, null, 2) + "\n");
  Deno.renameSync(tmp, path);
  console.log(`wrote ${path}`);
}

/** The suite: both inference workloads, the training workloads and the kernel table. */
async function suite(args: string[], sub: string | undefined): Promise<number> {
  const { backend, rest } = parseBackendFlag(args);
  const jsonPath = takeValue(rest, "--json");
  const reps = positiveInt("--reps", takeValue(rest, "--reps"), 7);
  const size = positiveInt("--size", takeValue(rest, "--size"), 512);
  const trainSizes = (takeValue(rest, "--train-sizes") ?? "512,128").split(",").map((v) =>
    positiveInt("--train-sizes", v, 0)
  );
  const only = takeValue(rest, "--only")?.split(",").filter((s) => s.length > 0);
  if (rest.length) throw new Error(`unknown arguments: ${rest.join(" ")}\n${USAGE}`);
  const parts: SuitePart[] = sub === "inference"
    ? ["inference"]
    : sub === "train"
    ? ["train"]
    : ["inference", "train", "kernels"];
  const result = await runBenchSuite({
    backend: backend === "auto" ? "wasm" : backend,
    reps,
    size,
    trainSizes,
    parts,
    kernelsOnly: only,
  });
  console.log(formatSuite(result));
  if (jsonPath) writeJson(jsonPath, result);
  return 0;
}

/** Child-process entry: runs one workload and prints its result as the last stdout line. */
async function workload(specJson: string | undefined): Promise<number> {
  if (!specJson) throw new Error("_workload needs a JSON spec");
  const spec = JSON.parse(specJson) as WorkloadSpec;
  const r = spec.kind === "inference"
    ? await runInferenceWorkload({
      backend: spec.backend,
      size: spec.size,
      reps: spec.reps,
      detections: spec.detections ?? "sat",
    })
    : await runTrainWorkload({ backend: spec.backend, size: spec.size, reps: spec.reps });
  console.log(JSON.stringify(r));
  return 0;
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (e) {
    console.error(`bench: ${(e as Error).message}`);
    Deno.exit(2);
  }
}
