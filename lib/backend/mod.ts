/**
 * Backend selection for the SSM toolkit.
 *
 * `initBackend(name)` picks and initialises a tfjs backend: `tensorflow-gpu`
 * (npm:@tensorflow/tfjs-node-gpu), `tensorflow` (npm:@tensorflow/tfjs-node), `webgpu`, `wasm` or
 * `cpu`. `auto` tries them in that order and reports what it chose. The native backends are imported
 * dynamically, only when asked for (or in `auto`), so nothing else depends on them.
 *
 * @example
 * ```ts
 * import { initBackend } from "@covid-ssm/ssm/backend";
 * const info = await initBackend("wasm");
 * console.log(info.name, info.threads);
 * ```
 *
 * @module
 */
export * from "./backend.ts";
