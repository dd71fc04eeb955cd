/**
 * Rendering and writing of synthetic slices as files, shared by the in-process path and the
 * worker threads of the dataset writer: one job = one slice, rendered from its own seed, so the
 * bytes do not depend on how the jobs are split between workers.
 *
 * @example
 * ```ts ignore
 * import { runSliceJob } from "./synthetic_jobs.ts";
 * const done = await runSliceJob({ kind: "cls", file: "2_00000.png", seed: 7, classId: 2 }, "/tmp/out", 128);
 * ```
 * @module
 */

import { join } from "node:path";
import { writeFileAtomic } from "./atomic.ts";
import { encode as pngEncode } from "fast-png";
import { renderSlice } from "./synthetic.ts";
import type { Box } from "./transforms.ts";

/** One slice to render and write. */
export interface SliceJob {
  /** `cls` writes `cls/<file>`; `seg` writes `seg/images/<file>` and `seg/masks/<file>`. */
  kind: "cls" | "seg";
  /** File name (with `.png`). */
  file: string;
  /** Per-slice seed. */
  seed: number;
  /** Class id. */
  classId: number;
}

/** What a finished job reports back. */
export interface SliceJobResult {
  /** The job's file name. */
  file: string;
  /** Body bounding box (exclusive max). */
  bodyBox: Box;
  /** Number of lesions drawn. */
  lesions: number;
}

function png8(data: Uint8Array, size: number): Uint8Array {
  // zlib level 1: about a third faster than the default, deterministic all the same.
  return pngEncode({ width: size, height: size, data, depth: 8, channels: 1 }, {
    zlib: { level: 1 },
  });
}

/** Renders one slice and writes its PNG file(s) atomically under `outDir`. */
export async function runSliceJob(
  job: SliceJob,
  outDir: string,
  size: number,
): Promise<SliceJobResult> {
  const s = renderSlice(job.seed, size, job.classId);
  if (job.kind === "cls") {
    await writeFileAtomic(join(outDir, "cls", job.file), png8(s.image, size));
  } else {
    await writeFileAtomic(join(outDir, "seg", "images", job.file), png8(s.image, size));
    await writeFileAtomic(join(outDir, "seg", "masks", job.file), png8(s.labels, size));
  }
  return { file: job.file, bodyBox: s.bodyBox, lesions: s.lesions.length };
}
