/**
 * Choosing and initialising a tfjs backend.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import "./gradients.ts";

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
  /** @param backend the backend that failed @param reason why */
  constructor(readonly backend: string, reason: string) {
    super(`backend '${backend}' is not available: ${reason}`);
    this.name = "BackendUnavailableError";
  }
}

const NATIVE_HINT: Record<string, string> = {
  "tensorflow-gpu":
    "install it with internet access: `deno add npm:@tensorflow/tfjs-node-gpu@4.22.0 && deno approve-scripts` (its install script downloads libtensorflow with CUDA; needs CUDA 11.2 + cuDNN 8.1)",
  "tensorflow":
    "install it with internet access: `deno add npm:@tensorflow/tfjs-node@4.22.0 && deno approve-scripts` (its install script downloads libtensorflow)",
};

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
      `unknown backend '${name}' (from ${flag ? "--backend" : "SSM_BACKEND"}); expected one of auto, ${
        BACKEND_ORDER.join(", ")
      }`,
    );
  }
  return name as BackendName;
}

async function tryInit(name: Exclude<BackendName, "auto">): Promise<BackendInfo> {
  switch (name) {
    case "cpu": {
      await import("@tensorflow/tfjs-backend-cpu");
      if (!(await tf.setBackend("cpu"))) throw new BackendUnavailableError(name, "init failed");
      return { name, tfjsName: "cpu", threads: 1, skipped: [] };
    }
    case "wasm": {
      await import("@tensorflow/tfjs-backend-cpu");
      await import("@tensorflow/tfjs-backend-wasm");
      if (!(await tf.setBackend("wasm"))) {
        throw new BackendUnavailableError(name, "the wasm module failed to initialise");
      }
      return { name, tfjsName: "wasm", threads: 1, skipped: [] };
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
      if (!(await tf.setBackend("webgpu"))) {
        throw new BackendUnavailableError(name, "the webgpu backend failed to initialise");
      }
      return { name, tfjsName: "webgpu", threads: 1, skipped: [] };
    }
    case "tensorflow":
    case "tensorflow-gpu": {
      const spec = name === "tensorflow" ? "@tensorflow/tfjs-node" : "@tensorflow/tfjs-node-gpu";
      try {
        await import(spec);
      } catch (e) {
        throw new BackendUnavailableError(
          name,
          `${(e as Error).message.split("\n")[0]}; ${NATIVE_HINT[name]}`,
        );
      }
      if (!(await tf.setBackend("tensorflow"))) {
        throw new BackendUnavailableError(name, `init failed; ${NATIVE_HINT[name]}`);
      }
      return { name, tfjsName: "tensorflow", threads: navigator.hardwareConcurrency ?? 1, skipped: [] };
    }
  }
}

/**
 * Initialises a tfjs backend and makes it current.
 *
 * @param name a backend name or `auto` (default: `SSM_BACKEND`, else `auto`)
 * @returns what was chosen, with the reasons other backends were skipped in `auto` mode
 * @throws {BackendUnavailableError} when the named backend cannot be loaded
 */
export async function initBackend(name?: BackendName): Promise<BackendInfo> {
  const wanted = name ?? resolveBackendName();
  if (wanted !== "auto") {
    current = await tryInit(wanted);
    return current;
  }
  const skipped: { name: string; reason: string }[] = [];
  for (const candidate of BACKEND_ORDER) {
    try {
      const info = await tryInit(candidate);
      info.skipped = skipped;
      current = info;
      return info;
    } catch (e) {
      skipped.push({ name: candidate, reason: (e as Error).message });
    }
  }
  throw new BackendUnavailableError("auto", skipped.map((s) => s.reason).join("; "));
}
