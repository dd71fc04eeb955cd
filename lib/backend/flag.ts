/**
 * The `--backend` command-line flag shared by every CLI.
 *
 * @example
 * ```ts
 * import { initBackend, parseBackendFlag } from "@covid-ssm/ssm/backend";
 * const { backend, rest } = parseBackendFlag(["--backend", "wasm", "train.json"]);
 * await initBackend(backend); // rest: ["train.json"]
 * ```
 *
 * @module
 */
import { type BackendName, resolveBackendName } from "./backend.ts";

/** Usage line for `--backend`, for CLI help texts. */
export const BACKEND_FLAG_HELP: string =
  "--backend NAME   auto | tensorflow-gpu | tensorflow | webgpu | wasm | cpu " +
  "(default: $SSM_BACKEND, else auto)";

/** Result of {@linkcode parseBackendFlag}. */
export interface BackendFlag {
  /** The backend to pass to `initBackend`: the flag's value, else `SSM_BACKEND`, else `auto`. */
  backend: BackendName;
  /** The arguments with `--backend` and its value removed, in order. */
  rest: string[];
}

/**
 * Takes `--backend NAME` or `--backend=NAME` out of `args` (the last one wins).
 *
 * @throws {Error} when the flag has no value or names an unknown backend
 */
export function parseBackendFlag(args: readonly string[]): BackendFlag {
  const rest: string[] = [];
  let value: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--backend") {
      const v = args[i + 1];
      if (v === undefined || v.startsWith("--")) {
        throw new Error(
          "--backend needs a value: auto, tensorflow-gpu, tensorflow, webgpu, wasm, cpu",
        );
      }
      value = v;
      i++;
    } else if (a.startsWith("--backend=")) {
      value = a.slice("--backend=".length);
    } else {
      rest.push(a);
    }
  }
  return { backend: resolveBackendName(value), rest };
}
