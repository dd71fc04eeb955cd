/**
 * Makes the README figures `docs/overlay.png` (a prediction overlay) and `docs/roi_batch.png`
 * (the ranked RoI batch over the slice beside the 128x5 heatmap) from a checkpoint and a slice.
 * Defaults: the SSM parity fixture (`../shared/fixtures/ssm`: random but deterministic weights,
 * one real CT slice), so the figures show the pipeline, not a trained model.
 *
 * ```sh
 * deno run -A examples/make_figures.ts [--checkpoint FILE] [--image FILE] [--out DIR] [--backend wasm]
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { mkdirSync } from "node:fs";
import { initBackend, parseBackendFlag } from "../lib/backend/mod.ts";
import { readImage } from "../lib/data/image.ts";
import { loadModelFromCheckpoint } from "../lib/cli/common.ts";
import { roiBatchFromStages, writeOverlayPng, writeRoiBatchPng } from "../lib/viz/mod.ts";

const { backend, rest } = parseBackendFlag(Deno.args);
const fixture = new URL("../../shared/fixtures/ssm/", import.meta.url).pathname;
const { values } = parseArgs({
  args: rest,
  options: {
    checkpoint: { type: "string", default: join(fixture, "weights.safetensors") },
    image: { type: "string", default: join(fixture, "input.png") },
    out: { type: "string", default: "docs" },
  },
});
const info = await initBackend(backend === "auto" ? "wasm" : backend);
const { model, configSource } = loadModelFromCheckpoint(values.checkpoint!);
const image = await readImage(values.image!);
console.error(`model from ${configSource}; backend ${info.name}`);
mkdirSync(values.out!, { recursive: true });

const t0 = performance.now();
const pred = model.predict(image);
const overlayPath = join(values.out!, "overlay.png");
await writeOverlayPng(overlayPath, image, pred, {
  title: "Random-weight parity model",
  maxLabels: 8,
});
console.error(
  `${overlayPath}: ${pred.detections.scores.length} detections, class ${pred.predictedClass} ` +
    `(${((performance.now() - t0) / 1000).toFixed(1)} s)`,
);

const stages = model.stages(image);
stages.images.dispose();
stages.features.dispose();
const roiPath = join(values.out!, "roi_batch.png");
await writeRoiBatchPng(roiPath, roiBatchFromStages(stages, image));
console.error(`${roiPath}: ${stages.roiBatch.length / 5} rows`);
model.dispose();
