/**
 * `deno task train`: trains an SSM (or its stage-I Mask R-CNN) with the single-shot loop.
 *
 * ```sh
 * deno task train --regime scratch --size 128 --iterations 200 --out runs/scratch
 * deno task train --regime stage1 --seg-data DATA/seg --seg-lesion-labels 2,3 --size 512 --out runs/s1
 * deno task train --regime parallel --init runs/s1/model.safetensors --seg-data DATA/seg \
 *   --cls-data DATA/cls/train.txt --epochs 50 --backend tensorflow-gpu --out runs/parallel
 * ```
 *
 * With no data flags it trains on the embedded synthetic CT data (generated into `data/cache`
 * on first use). `--resume` continues from the newest checkpoint in `--out`; Ctrl-C writes a
 * final checkpoint and exits.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { initBackend, resolveBackendName } from "../backend/mod.ts";
import { buildSSM, type SSM } from "../ssm.ts";
import { ssmConfig, type SSMVariant } from "../config.ts";
import { loadWeights } from "../nn/weights.ts";
import { NonFiniteLossError, type Regime, Trainer } from "../train/trainer.ts";
import { openData } from "../train/datasets.ts";
import { UPDATE_RULES, type UpdateRule } from "../train/param_groups.ts";

/** Usage text of `deno task train`. */
export const TRAIN_USAGE = `deno task train [options]

  --regime R            scratch | single | parallel | stage1 (default scratch)
  --depth N             ResNet depth 18 | 34 (default 18)
  --stages N            backbone stages 2 | 3 (default 3)
  --update-rule R       s | s+backbone | s+bn (default s+backbone)
  --seg-data DIR        segmentation data: DIR/images, DIR/masks (default: synthetic)
  --seg-lesion-labels L mask labels that are lesions (default 2,3 = CNCB; MedSeg: 1,2)
  --cls-data PATH       classification split file or class-prefixed folder (default: synthetic)
  --min-area PX         lesion instances need an area > PX pixels at the model size (default 100)
  --size PX             model input size (default 512)
  --epochs N            epochs over the classification set (default 50)
  --iterations N        stop after N iterations whatever the epochs
  --lr X                Adam learning rate (default 1e-5)
  --weight-decay X      Adam weight decay (default 1e-3)
  --seed N              seed of initialisation, data order and samplers (default 0)
  --init FILE           start from these weights (stage-I model for single/parallel)
  --checkpoint-every N  checkpoint period in iterations (default 500; 0 = only at the end)
  --proposal-filter F   reference | torchvision (default reference)
  --synthetic-cls N     synthetic classification slices when no data is given (default 300)
  --synthetic-seg N     synthetic segmentation slices when no data is given (default 100)
  --out DIR             output folder (default runs/<regime>)
  --resume              continue from the newest checkpoint in --out
  --backend NAME        auto | tensorflow-gpu | tensorflow | webgpu | wasm | cpu
  --quiet               no progress bar
`;

function num(v: string | undefined, name: string, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`--${name}: expected a number, got '${v}'`);
  return n;
}

function oneOf<T extends string>(
  v: string | undefined,
  name: string,
  allowed: readonly T[],
  dflt: T,
): T {
  if (v === undefined) return dflt;
  if (!(allowed as readonly string[]).includes(v)) {
    throw new Error(`--${name}: expected one of ${allowed.join(", ")}, got '${v}'`);
  }
  return v as T;
}

/** Loads stage-I (or any compatible) weights; only the classification branch and S may be absent. */
export function loadInitWeights(model: SSM, path: string): void {
  const r = loadWeights(model, path, { strict: false });
  const optional = (n: string) => /^(roi_heads\.box_(head|predictor)_s2\.|s2new\.)/.test(n);
  const missing = r.missing.filter((n) => !optional(n));
  const unexpected = r.unexpected.filter((n) => !optional(n));
  if (missing.length || unexpected.length || r.mismatched.length) {
    throw new Error(
      `--init ${path}: does not fit the model (missing ${missing.slice(0, 5).join(", ") || "-"}; ` +
        `unexpected ${unexpected.slice(0, 5).join(", ") || "-"}; mis-shaped ${
          r.mismatched.slice(0, 5).map((m) => m.name).join(", ") || "-"
        }); check --depth/--stages`,
    );
  }
}

/** Runs `deno task train` with the given arguments; returns the exit code. */
export async function trainMain(args: string[]): Promise<number> {
  const { values: v } = parseArgs({
    args,
    options: {
      regime: { type: "string" },
      depth: { type: "string" },
      stages: { type: "string" },
      "update-rule": { type: "string" },
      "seg-data": { type: "string" },
      "seg-lesion-labels": { type: "string" },
      "cls-data": { type: "string" },
      "min-area": { type: "string" },
      size: { type: "string" },
      epochs: { type: "string" },
      iterations: { type: "string" },
      lr: { type: "string" },
      "weight-decay": { type: "string" },
      seed: { type: "string" },
      init: { type: "string" },
      "checkpoint-every": { type: "string" },
      "proposal-filter": { type: "string" },
      "synthetic-cls": { type: "string" },
      "synthetic-seg": { type: "string" },
      out: { type: "string" },
      resume: { type: "boolean" },
      backend: { type: "string" },
      quiet: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (v.help) {
    console.log(TRAIN_USAGE);
    return 0;
  }
  const regime = oneOf<Regime>(
    v.regime,
    "regime",
    ["scratch", "single", "parallel", "stage1"],
    "scratch",
  );
  const updateRule = oneOf<UpdateRule>(v["update-rule"], "update-rule", UPDATE_RULES, "s+backbone");
  const depth = num(v.depth, "depth", 18) as 18 | 34 | 50;
  const stages = num(v.stages, "stages", 3) as 2 | 3 | 4;
  const size = num(v.size, "size", 512);
  const seed = num(v.seed, "seed", 0);
  const variant: SSMVariant = regime === "single"
    ? "single"
    : regime === "parallel"
    ? "parallel"
    : "scratch";
  const proposalFilter = oneOf(
    v["proposal-filter"],
    "proposal-filter",
    ["reference", "torchvision"] as const,
    "reference",
  );
  const out = v.out ?? join("runs", regime);
  const backend = await initBackend(resolveBackendName(v.backend));
  console.error(
    `backend: ${backend.name}${
      backend.skipped.length ? ` (skipped: ${backend.skipped.map((s) => s.name).join(", ")})` : ""
    }`,
  );

  const config = ssmConfig({
    variant,
    proposalFilter,
    backbone: { depth, stages },
    transform: { minSize: size, maxSize: Math.max(1024, 2 * size) },
    seed,
  });
  const model = buildSSM(config);
  if (v.init) loadInitWeights(model, v.init);
  else if (regime === "single" || regime === "parallel") {
    console.error(
      `warning: regime '${regime}' starts from a stage-I Mask R-CNN; none given (--init), so it starts ` +
        "from random weights. Train one with --regime stage1.",
    );
  }
  const labels = v["seg-lesion-labels"]?.split(",").map((s) =>
    num(s.trim(), "seg-lesion-labels", 0)
  );
  const data = await openData({
    segData: v["seg-data"] ?? null,
    clsData: v["cls-data"] ?? null,
    segLesionLabels: labels,
    minArea: num(v["min-area"], "min-area", 100),
    size,
    synthetic: {
      nCls: num(v["synthetic-cls"], "synthetic-cls", 300),
      nSeg: num(v["synthetic-seg"], "synthetic-seg", 100),
      seed,
    },
  }, "train");
  console.error(
    `data: ${data.source}: ${data.seg.length} segmentation, ${
      data.cls?.length ?? 0
    } classification slices`,
  );
  const trainer = new Trainer(model, {
    regime,
    updateRule,
    epochs: num(v.epochs, "epochs", 50),
    iterations: v.iterations === undefined ? null : num(v.iterations, "iterations", 0),
    lr: num(v.lr, "lr", 1e-5),
    weightDecay: num(v["weight-decay"], "weight-decay", 1e-3),
    seed,
    checkpointEvery: num(v["checkpoint-every"], "checkpoint-every", 500),
    outDir: out,
    progress: !v.quiet,
  }, data);
  if (v.resume) {
    if (trainer.resume()) {
      console.error(`resumed at iteration ${trainer.iteration} from ${trainer.lastCheckpoint}`);
    } else console.error(`--resume: no checkpoint in ${join(out, "checkpoints")}; starting fresh`);
  }
  const onSigint = () => {
    console.error("\ninterrupted: finishing this iteration and writing a checkpoint");
    trainer.requestStop();
  };
  try {
    Deno.addSignalListener("SIGINT", onSigint);
  } catch {
    // signals unsupported on this platform
  }
  try {
    await trainer.run();
  } catch (e) {
    if (e instanceof NonFiniteLossError) {
      console.error(`error: ${e.message}`);
      return 1;
    }
    throw e;
  } finally {
    try {
      Deno.removeSignalListener("SIGINT", onSigint);
    } catch {
      // ignore
    }
  }
  console.error(
    `done: ${trainer.iteration} iterations; weights in ${join(out, "model.safetensors")}`,
  );
  return 0;
}

if (import.meta.main) {
  try {
    Deno.exit(await trainMain(Deno.args));
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    Deno.exit(2);
  }
}
