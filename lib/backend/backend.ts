/**
 * Choosing and initialising a tfjs backend.
 *
 * `auto` tries `tensorflow-gpu`, `tensorflow`, `webgpu`, `wasm`, `cpu` in that order and records
 * why each earlier one was skipped. Backend packages are imported dynamically, only when tried, and
 * all of them resolve the one `@tensorflow/tfjs-core` of the import map. A native package that
 * fails to load (its install script, which downloads libtensorflow, has not run) is cleaned up:
 * the kernels it registered for `tensorflow` and any backend it registered are removed again, so
 * no half-registered backend stays behind. Choosing `wasm` also registers the training kernels of
 * `./wasm_kernels.ts`; with more than one wasm thread (`threads` option or `SSM_WASM_THREADS`)
 * it loads tfjs-backend-wasm's threaded build first (`./wasm_threads.ts`).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import "./gradients.ts";
import { registerWasmTrainingKernels } from "./wasm_kernels.ts";
import { setRoIAlignThreads } from "../roi_align_workers.ts";

/** Names accepted by {@linkcode initBackend}. */
export type BackendName = "auto" | "tensorflow-gpu" | "tensorflow" | "webgpu" | "wasm" | "cpu";

/** All concrete backend names, in the order `auto` tries them. */
export const BACKEND_ORDER: readonly Exclude<BackendName, "auto">[] = [
  "tensorflow-gpu",
  "tensorflow",
  "webgpu",
  "wasm",
  "cpu",
];

/** What {@linkcode initBackend} chose. */
export interface BackendInfo {
  /** The toolkit's name of the backend. */
  name: Exclude<BackendName, "auto">;
  /** The tfjs backend name (`tensorflow` for both native ones). */
  tfjsName: string;
  /** Threads the backend computes with (1 for single-threaded wasm/cpu). */
  threads: number;
  /** Why other backends were skipped (only filled in `auto` mode). */
  skipped: { name: string; reason: string }[];
}

/** Error raised when a requested backend cannot be loaded; the message says how to fix it. */
export class BackendUnavailableError extends Error {
  /** The backend that failed to load. */
  readonly backend: string;
  /**
   * Creates the error.
   * @param backend the backend that failed
   * @param reason why it failed and how to fix it
   */
  constructor(backend: string, reason: string) {
    super(`backend '${backend}' is not available: ${reason}`);
    this.backend = backend;
    this.name = "BackendUnavailableError";
  }
}

const NATIVE_HINT: Record<string, string> = {
  "tensorflow-gpu":
    "install it with internet access: `deno add npm:@tensorflow/tfjs-node-gpu@4.22.0 && deno approve-scripts` (its install script downloads libtensorflow with CUDA; needs CUDA 11.2 + cuDNN 8.1)",
  "tensorflow":
    "install it with internet access: `deno add npm:@tensorflow/tfjs-node@4.22.0 && deno approve-scripts` (its install script downloads libtensorflow)",
};

/** Backend packages the toolkit loads itself; their registrations are never rolled back. */
const OWN_BACKENDS = new Set(["cpu", "wasm", "webgpu"]);

let current: BackendInfo | null = null;

/** The backend chosen by the last successful {@linkcode initBackend}, or null. */
export function currentBackend(): BackendInfo | null {
  return current;
}

/** Reads the backend name from `--backend` style values and `SSM_BACKEND`, defaulting to `auto`. */
export function resolveBackendName(flag?: string): BackendName {
  let env: string | undefined;
  try {
    env = Deno.env.get("SSM_BACKEND");
  } catch {
    env = undefined;
  }
  const name = (flag ?? env ?? "auto").trim();
  if (name !== "auto" && !(BACKEND_ORDER as readonly string[]).includes(name)) {
    throw new Error(
      `unknown backend '${name}' (from ${
        flag ? "--backend" : "SSM_BACKEND"
      }); expected one of auto, ${BACKEND_ORDER.join(", ")}`,
    );
  }
  return name as BackendName;
}

function registeredBackends(): string[] {
  return Object.keys((tf.engine() as unknown as { registryFactory: object }).registryFactory);
}

/** Imports a native package; on failure removes what its partial evaluation registered. */
async function importNative(name: "tensorflow" | "tensorflow-gpu"): Promise<void> {
  const before = new Set(registeredBackends());
  const kernelsBefore = new Set(tf.getKernelsForBackend("tensorflow").map((k) => k.kernelName));
  try {
    if (name === "tensorflow") await import("@tensorflow/tfjs-node");
    else await import("@tensorflow/tfjs-node-gpu");
    if (!registeredBackends().includes("tensorflow")) {
      throw new Error("the package loaded but registered no 'tensorflow' backend");
    }
  } catch (e) {
    for (const k of tf.getKernelsForBackend("tensorflow")) {
      if (!kernelsBefore.has(k.kernelName)) tf.unregisterKernel(k.kernelName, "tensorflow");
    }
    for (const b of registeredBackends()) {
      if (!before.has(b) && !OWN_BACKENDS.has(b)) tf.removeBackend(b);
    }
    throw new BackendUnavailableError(
      name,
      `${(e as Error).message.split("\n")[0].trim()}; ${NATIVE_HINT[name]}`,
    );
  }
}

async function setBackendOrThrow(name: string, tfjsName: string, why: string): Promise<void> {
  let ok = false;
  let detail = "";
  try {
    ok = await tf.setBackend(tfjsName);
  } catch (e) {
    detail = `: ${(e as Error).message.split("\n")[0]}`;
  }
  if (!ok) throw new BackendUnavailableError(name, `${why}${detail}`);
}

/** Options of {@linkcode initBackend}. */
export interface InitBackendOptions {
  /**
   * Threads of the `wasm` backend's XNNPACK kernels (1-8; default `SSM_WASM_THREADS`, else 1).
   * More than one loads the threaded build (`wasm_threads.ts`); use it only with free cores.
   */
  wasmThreads?: number;
}

/** Reads `SSM_WASM_THREADS` (unset: 1). */
export function resolveWasmThreads(value?: number): number {
  let raw: string | undefined;
  if (value === undefined) {
    try {
      raw = Deno.env.get("SSM_WASM_THREADS");
    } catch {
      raw = undefined;
    }
  }
  const n = value ?? (raw === undefined || raw.trim() === "" ? 1 : Number(raw));
  if (!Number.isInteger(n) || n < 1 || n > 8) {
    throw new Error(
      `wasm threads must be an integer from 1 to 8, got '${value ?? raw}'` +
        (value === undefined ? " (from SSM_WASM_THREADS)" : ""),
    );
  }
  return n;
}

async function initWasm(threads: number): Promise<number> {
  await import("@tensorflow/tfjs-backend-cpu");
  await import("@tensorflow/tfjs-backend-wasm");
  if (threads === 1 && currentWasmThreads === 1) return 1;
  // The threaded loader is imported only when threads are asked for (or must be undone).
  const mt = await import("./wasm_threads.ts");
  if (threads === currentWasmThreads && mt.threadedWasmWorkerCount() > 0) return threads;
  currentWasmThreads = threads > 1
    ? (await mt.registerThreadedWasmBackend(threads, { setActive: false })).threads
    : (await mt.disposeThreadedWasmBackend(), 1);
  return currentWasmThreads;
}

let currentWasmThreads = 1;

async function tryInit(
  name: Exclude<BackendName, "auto">,
  opts: InitBackendOptions,
): Promise<BackendInfo> {
  switch (name) {
    case "cpu": {
      await import("@tensorflow/tfjs-backend-cpu");
      await setBackendOrThrow(name, "cpu", "init failed");
      // The cpu backend is chosen on purpose here: silence its "install tfjs-node" banner.
      (tf.backend() as unknown as { firstUse?: boolean }).firstUse = false;
      return { name, tfjsName: "cpu", threads: 1, skipped: [] };
    }
    case "wasm": {
      const threads = await initWasm(resolveWasmThreads(opts.wasmThreads));
      await setBackendOrThrow(name, "wasm", "the wasm module failed to initialise");
      registerWasmTrainingKernels();
      // The JavaScript RoIAlign engine uses as many threads as the wasm kernels.
      setRoIAlignThreads(threads);
      return { name, tfjsName: "wasm", threads, skipped: [] };
    }
    case "webgpu": {
      // deno-lint-ignore no-explicit-any
      const gpu = (globalThis.navigator as any)?.gpu;
      if (!gpu) {
        throw new BackendUnavailableError(name, "this runtime has no navigator.gpu");
      }
      const adapter = await gpu.requestAdapter();
      if (!adapter) {
        throw new BackendUnavailableError(
          name,
          "no WebGPU adapter; on Linux install a Vulkan driver (`apt-get install mesa-vulkan-drivers` for a software one) and set XDG_RUNTIME_DIR",
        );
      }
      await import("@tensorflow/tfjs-backend-cpu");
      await import("@tensorflow/tfjs-backend-webgpu");
      await setBackendOrThrow(name, "webgpu", "the webgpu backend failed to initialise");
      return { name, tfjsName: "webgpu", threads: 1, skipped: [] };
    }
    case "tensorflow":
    case "tensorflow-gpu": {
      await importNative(name);
      await setBackendOrThrow(name, "tensorflow", `init failed; ${NATIVE_HINT[name]}`);
      return {
        name,
        tfjsName: "tensorflow",
        threads: navigator.hardwareConcurrency ?? 1,
        skipped: [],
      };
    }
  }
}

/**
 * Initialises a tfjs backend and makes it current.
 *
 * @param name a backend name or `auto` (default: `SSM_BACKEND`, else `auto`)
 * @param opts wasm thread count (default: `SSM_WASM_THREADS`, else 1)
 * @returns what was chosen, with the reasons other backends were skipped in `auto` mode
 * @throws {BackendUnavailableError} when the named backend cannot be loaded
 */
export async function initBackend(
  name?: BackendName,
  opts: InitBackendOptions = {},
): Promise<BackendInfo> {
  const wanted = name ?? resolveBackendName();
  if (wanted !== "auto") {
    current = await tryInit(wanted, opts);
    return current;
  }
  const skipped: { name: string; reason: string }[] = [];
  for (const candidate of BACKEND_ORDER) {
    try {
      const info = await tryInit(candidate, opts);
      info.skipped = skipped;
      current = info;
      return info;
    } catch (e) {
      skipped.push({ name: candidate, reason: (e as Error).message });
    }
  }
  throw new BackendUnavailableError("auto", skipped.map((s) => s.reason).join("; "));
}
