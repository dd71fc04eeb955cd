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
 * The wasm backend runs single-threaded by default. With `initBackend("wasm", { wasmThreads: n })`
 * or `SSM_WASM_THREADS=n` (1-8) it loads tfjs-backend-wasm's threaded SIMD build instead
 * (`wasm_threads.ts`): XNNPACK convolutions and matrix products run on `n` threads, using pthread
 * workers from `node:worker_threads`. tfjs' own loader cannot do this under Deno (it hands
 * Emscripten a `blob:` worker URL, which `node:worker_threads` rejects with `ERR_WORKER_PATH`; its
 * worker script writes to the getter-only `location` of Deno's worker scope; and the build caps
 * the pool at half the reported cores), so the module supplies its own worker script file and
 * loader settings; nothing in `node_modules` changes. The backend is still named `wasm`, so the
 * training kernels apply. Element-wise kernels and the toolkit's JavaScript kernels stay
 * single-threaded. Use more than one thread only with free cores: on a loaded machine the extra
 * thread competes for the same core.
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
