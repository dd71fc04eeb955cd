/**
 * Reproduction of the paper's ablation (`deno task reproduce`): the 12 variants, the `quick` and
 * `paper` profiles, the stage-I and variant jobs, and the run that schedules them and writes
 * Tables 1–3 with their charts.
 *
 * @example
 * ```ts ignore
 * import { parseVariants, QUICK_PROFILE, reproduce } from "./mod.ts";
 * const summary = await reproduce({
 *   profile: QUICK_PROFILE, runDir: "results/try", variants: parseVariants("r18-2-scratch"),
 *   backend: "wasm", jobs: 1, data: { size: 96, minArea: 22, synthetic: QUICK_PROFILE.synthetic! },
 * });
 * console.log(summary.tables.map((t) => t.title));
 * ```
 *
 * @module
 */
export * from "./variants.ts";
export * from "./profiles.ts";
export * from "./jobs.ts";
export * from "./run.ts";
