/**
 * The SSM toolkit: a Deno/TypeScript implementation of the single-shot model (SSM) of
 * Ter-Sarkisov (2020), a lightweight Mask R-CNN with an extra RoI branch and an image
 * classifier ("module S") that segments lung lesions in a chest CT slice and predicts
 * Control / Common Pneumonia / COVID-19 in one forward pass.
 *
 * @example
 * ```ts
 * import { initBackend } from "@covid-ssm/ssm";
 * await initBackend("wasm");
 * ```
 *
 * @module
 */
export * from "./lib/backend/mod.ts";
