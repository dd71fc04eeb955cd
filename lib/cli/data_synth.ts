/**
 * `deno task data:synth`: writes a synthetic CT dataset (classification + segmentation sets in the
 * COVIDx-CT / CNCB-NCOV file formats) and/or a sample grid PNG.
 *
 * ```
 * deno task data:synth --out data/synthetic --n 3000 --n-seg 750 --size 512 --seed 0
 * deno task data:synth --grid docs/synthetic_grid.png
 * ```
 * @module
 */

import { parseArgs } from "node:util";
import { writeSampleGrid } from "../data/grid.ts";
import { writeSyntheticDataset } from "../data/synthetic_dataset.ts";

const HELP = `Usage: deno task data:synth [options]

Writes a deterministic synthetic CT dataset:
  <out>/cls/<class>_<i>.png + split.txt/train.txt/test.txt   (classification, COVIDx-CT style)
  <out>/seg/images, <out>/seg/masks + train.txt/test.txt       (segmentation, CNCB-NCOV labels)

Options:
  --out DIR            output folder (required unless only --grid is given)
  --n N                classification slices (default 300)
  --n-seg N            segmentation slices (default: N / 4, rounded)
  --size PX            slice side in pixels (default 512)
  --seed S             seed (default 0)
  --test-fraction F    held-out fraction of each set (default 0.2)
  --workers W          worker threads (default: CPU count for 64+ slices)
  --grid FILE          also write a sample grid PNG (3 classes x 4 slices, lesion outlines)
  --grid-tile PX       tile side of the grid (default: min(size, 256))
  -h, --help           show this help
`;

function int(name: string, v: string | undefined, fallback: number, min = 0): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) {
    throw new Error(`--${name}: expected an integer >= ${min}, got '${v}'`);
  }
  return n;
}

/** Runs the command line; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  let values;
  try {
    values = parseArgs({
      args,
      options: {
        out: { type: "string" },
        n: { type: "string" },
        "n-seg": { type: "string" },
        size: { type: "string" },
        seed: { type: "string" },
        "test-fraction": { type: "string" },
        workers: { type: "string" },
        grid: { type: "string" },
        "grid-tile": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (err) {
    console.error(`${(err as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  try {
    const size = int("size", values.size, 512, 32);
    const seed = int("seed", values.seed, 0);
    if (!values.out && !values.grid) throw new Error("--out DIR is required (see --help)");
    if (values.grid) {
      const tile = int("grid-tile", values["grid-tile"], Math.min(size, 256), 32);
      await writeSampleGrid(values.grid, { seed, size: tile, perClass: 4 });
      console.log(`wrote ${values.grid}`);
    }
    if (values.out) {
      const nCls = int("n", values.n, 300);
      const nSeg = int("n-seg", values["n-seg"], Math.round(nCls / 4));
      const tf = values["test-fraction"] === undefined ? 0.2 : Number(values["test-fraction"]);
      if (!(tf >= 0 && tf < 1)) {
        throw new Error(`--test-fraction: expected [0, 1), got '${values["test-fraction"]}'`);
      }
      const workers = values.workers === undefined ? undefined : int("workers", values.workers, 0);
      const s = await writeSyntheticDataset({
        outDir: values.out,
        nCls,
        nSeg,
        size,
        seed,
        testFraction: tf,
        workers,
      });
      console.log(
        `wrote ${s.nCls} classification + ${s.nSeg} segmentation slices (${s.size} px, seed ` +
          `${s.seed}) to ${s.outDir} in ${s.seconds.toFixed(1)} s with ${s.workers} worker(s)`,
      );
    }
    return 0;
  } catch (err) {
    console.error(`data:synth: ${(err as Error).message}`);
    return 1;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
