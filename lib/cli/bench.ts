/**
 * `deno task bench <subcommand>`: benchmarks.
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
import { BACKEND_FLAG_HELP, parseBackendFlag } from "../backend/mod.ts";
import { formatKernelTable, runKernelBench } from "../bench/kernels.ts";

const USAGE = `usage: deno task bench kernels [options]
  ${BACKEND_FLAG_HELP}
  --json FILE      also write the results as JSON
  --reps N         timed runs per measurement, median reported (default 5)
  --batch N        images per batch for the backbone shapes (default 1)
  --only A,B       only shapes whose name contains A or B (e.g. "layer1,matMul")`;

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

/** Runs the benchmark CLI with the given arguments; returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [sub, ...restArgs] = argv;
  if (sub === "--help" || sub === "-h") {
    console.log(USAGE);
    return 0;
  }
  if (sub !== "kernels") {
    console.log("not yet available: inference/training benchmarks");
    console.log(USAGE);
    return sub === undefined ? 0 : 2;
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
  if (jsonPath) {
    const tmp = `${jsonPath}.tmp`;
    const dir = jsonPath.includes("/") ? jsonPath.slice(0, jsonPath.lastIndexOf("/")) : "";
    if (dir) Deno.mkdirSync(dir, { recursive: true });
    Deno.writeTextFileSync(tmp, JSON.stringify(result, null, 2) + "\n");
    Deno.renameSync(tmp, jsonPath);
    console.log(`wrote ${jsonPath}`);
  }
  return result.backends.some((b) => b.ok) ? 0 : 1;
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (e) {
    console.error(`bench: ${(e as Error).message}`);
    Deno.exit(2);
  }
}
