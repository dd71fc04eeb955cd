/**
 * Backend selection and training kernels for the SSM toolkit.
 *
 * `initBackend(name)` picks and initialises a tfjs backend: `tensorflow-gpu`
 * (npm:@tensorflow/tfjs-node-gpu), `tensorflow` (npm:@tensorflow/tfjs-node), `webgpu`, `wasm` or
 * `cpu`. `auto` tries them in that order and reports what it chose and why the others were
 * skipped. The native backends are imported dynamically, only when asked for (or in `auto`), so
 * nothing else depends on them. Importing this module registers tfjs' gradients; choosing `wasm`
 * registers the training kernels tfjs-backend-wasm lacks or runs slowly (see `wasm_kernels.ts`).
 * Every CLI accepts `--backend` via {@linkcode parseBackendFlag}; `SSM_BACKEND` sets the default.
 *
 * WebGPU: Deno 2.x exposes `navigator.gpu` without `--unstable-webgpu`. On a machine without a
 * GPU, Mesa's software Vulkan driver (`apt-get install mesa-vulkan-drivers`, plus a writable
 * `XDG_RUNTIME_DIR`) provides an adapter ("llvmpipe"): slow, but it runs the GPU code path.
 *
 * ## Threads
 *
 * The wasm backend runs single-threaded under Deno. tfjs-backend-wasm's flag
 * `WASM_HAS_MULTITHREAD_SUPPORT` returns false whenever `IS_NODE` is true (Deno runs its Node
 * bundle; upstream issue tensorflow/tfjs#3830), and forcing the flag makes initialisation fail:
 * the Emscripten glue of the threaded-SIMD build spawns its pthread pool with
 * `new (require("worker_threads").Worker)(URL.createObjectURL(blob))`, and `node:worker_threads`
 * (Deno's too) accepts only file paths, so Deno throws `ERR_WORKER_PATH`. Past that, the worker
 * script expects a CommonJS context (`require`, `__filename`, `importScripts` emulated via
 * `fs.readFileSync` of the main script, which tfjs passes as a Blob) that a Deno worker does not
 * provide. `SharedArrayBuffer` and `Atomics.wait` do work in Deno, so it is the loader, not the
 * platform: running the threaded build would take patching tfjs' Emscripten glue. Not done;
 * `BackendInfo.threads` is 1 for wasm.
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
export * from "./flag.ts";
export * from "./gradients.ts";
export * from "./wasm_kernels.ts";
