/**
 * Multi-threaded tfjs `wasm` backend under Deno.
 *
 * tfjs-backend-wasm 4.22 ships a threaded SIMD build (`tfjs-backend-wasm-threaded-simd.wasm`, whose
 * XNNPACK convolutions and matrix products run on a pthreadpool), but never selects it under Deno:
 * its flag `WASM_HAS_MULTITHREAD_SUPPORT` is false whenever `IS_NODE` is, and when forced, its
 * loader hands Emscripten a `blob:` URL for the pthread worker script, which `node:worker_threads`
 * rejects (`ERR_WORKER_PATH`). {@linkcode registerThreadedWasmBackend} loads the same threaded
 * build with its own Emscripten configuration instead:
 *
 * - the package's pthread worker script is written once to a file in the system temp directory
 *   (`*.worker.cjs`, named by a hash of its contents, written atomically), and Emscripten's
 *   `locateFile` points the pool at that path; the workers load the package's own factory script
 *   (`wasm-out/tfjs-backend-wasm-threaded-simd.js`) by path;
 * - the factory script is evaluated with its Node.js globals supplied explicitly (`require`, a
 *   `process` view without listener registration, a private `global`, and `Worker` =
 *   `node:worker_threads`' class), so it neither replaces Deno's global `Worker` nor installs
 *   process-wide `uncaughtException`/`unhandledRejection` handlers;
 * - the pthread pool size (8 in the build) is set to what the XNNPACK pool needs, and pool
 *   workers never keep the process alive (their `ref()` is a no-op): a program that ends without
 *   disposing the backend still exits;
 * - the module is wrapped in tfjs' own exported `BackendWasm` class, so every kernel tfjs
 *   registered for `wasm` (and any registered later, such as `./wasm_kernels.ts`) applies.
 *
 * Nothing in `node_modules` is modified. The backend is registered under `wasm` by default,
 * replacing (and disposing) a single-threaded `wasm` backend that was registered or initialised
 * before; {@linkcode disposeThreadedWasmBackend} removes it again and waits until every worker has
 * exited.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { disposeThreadedWasmBackend, registerThreadedWasmBackend } from "./wasm_threads.ts";
 * const info = await registerThreadedWasmBackend(2);
 * console.log(tf.getBackend(), info.threads); // "wasm" 2
 * await disposeThreadedWasmBackend();
 * ```
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { BackendWasm, setThreadsCount } from "@tensorflow/tfjs-backend-wasm";
import { createRequire } from "node:module";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Worker as NodeWorker } from "node:worker_threads";

/** Options of {@linkcode registerThreadedWasmBackend}. */
export interface ThreadedWasmOptions {
  /** tfjs backend name to register (default `wasm`, replacing the single-threaded one). */
  name?: string;
  /** Backend priority passed to `tf.registerBackend` (default 2, tfjs-backend-wasm's own). */
  priority?: number;
  /** Make the backend current with `tf.setBackend` (default true). */
  setActive?: boolean;
  /** Directory for the pthread worker script (default: the system temp directory). */
  cacheDir?: string;
}

/** What {@linkcode registerThreadedWasmBackend} set up. */
export interface ThreadedWasmInfo {
  /** The tfjs backend name it is registered under. */
  name: string;
  /** Threads XNNPACK computes with, as reported by the module (`get_threads_count`). */
  threads: number;
  /** Pthread workers started for the pool. */
  poolSize: number;
  /** The backend instance (tfjs-backend-wasm's `BackendWasm`). */
  backend: tf.KernelBackend;
}

/** Most threads {@linkcode registerThreadedWasmBackend} accepts (the build's own cap). */
export const MAX_WASM_THREADS = 8;

const FACTORY_GLOBAL = "WasmBackendModuleThreadedSimd";
const FACTORY_FILE = "wasm-out/tfjs-backend-wasm-threaded-simd.js";
const WASM_FILE = "wasm-out/tfjs-backend-wasm-threaded-simd.wasm";
const POOL_SIZE_SOURCE = "var pthreadPoolSize=8;";

/** The parts of the Emscripten module tfjs' `BackendWasm` and this module use. */
interface EmscriptenModule {
  cwrap(name: string, ret: string | null, args: string[]): (...a: number[]) => number;
  tfjs?: Record<string, (...a: number[]) => number>;
  PThread: { unusedWorkers: unknown[]; runningWorkers: unknown[] };
}

type Factory = (config: Record<string, unknown>) => Promise<EmscriptenModule>;

/** Workers started by the pool of the current threaded backend, with their exit promises. */
const liveWorkers = new Map<NodeWorker, Promise<void>>();
/** The registered threaded backend and the registration it replaced (restored on dispose). */
let registered: { name: string; replaced: RegistryEntry | null } | null = null;

type RegistryEntry = {
  factory: () => tf.KernelBackend | Promise<tf.KernelBackend>;
  priority: number;
};

function registryEntry(name: string): RegistryEntry | null {
  const registry = (tf.engine() as unknown as { registryFactory: Record<string, RegistryEntry> })
    .registryFactory;
  return registry[name] ?? null;
}

/**
 * A `node:worker_threads` worker that records itself and, once loaded, never keeps the process
 * alive. Emscripten unreferences a worker when the module is loaded into it and references it
 * again when it hands it a pthread; the pool's threads (XNNPACK's pthreadpool) only ever work for
 * synchronous calls of the main thread, so that second `ref()` is ignored and a program that ends
 * without disposing the backend still exits.
 */
class PoolWorker extends NodeWorker {
  constructor(file: string | URL, options?: ConstructorParameters<typeof NodeWorker>[1]) {
    super(file, options);
    const exited = new Promise<void>((resolve) => this.once("exit", () => resolve()));
    liveWorkers.set(this, exited);
    exited.then(() => liveWorkers.delete(this));
    // Referenced until Emscripten has loaded the module into it (it calls `unref()` then).
  }
  override ref(): void {
    // Intentionally keeps the worker unreferenced (see the class comment).
  }
  /** References the worker for real (used while waiting for it to exit). */
  holdProcess(): void {
    super.ref();
  }
}

/** FNV-1a hash of a string, as 8 hex digits (names the cached worker script). */
function fnv1a(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, "0");
}

/** Writes `text` to `file` unless it already holds exactly that (atomically: tmp + rename). */
function writeIfChanged(file: string, text: string): void {
  try {
    if (fs.readFileSync(file, "utf8") === text) return;
  } catch {
    // missing: write it
  }
  const tmp = `${file}.${Deno.pid}.tmp`;
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, file);
}

/** Finds tfjs-backend-wasm's package directory and the threaded build's files in it. */
function locatePackage(): { root: string; factory: string; wasm: string } {
  const require = createRequire(import.meta.url);
  let main: string;
  try {
    main = require.resolve("@tensorflow/tfjs-backend-wasm");
  } catch (e) {
    throw new Error(
      `threaded wasm: cannot resolve @tensorflow/tfjs-backend-wasm from ${import.meta.url} ` +
        `(a local node_modules directory is needed, "nodeModulesDir": "auto"): ${
          (e as Error).message
        }`,
    );
  }
  const root = path.dirname(path.dirname(main));
  const files = {
    root,
    factory: path.join(root, FACTORY_FILE),
    wasm: path.join(root, WASM_FILE),
  };
  for (const f of [files.factory, files.wasm]) {
    if (!fs.existsSync(f)) {
      throw new Error(`threaded wasm: ${f} is missing from the tfjs-backend-wasm package`);
    }
  }
  return files;
}

/** Evaluates the factory script with explicit Node.js globals and the given pthread pool size. */
function loadFactory(file: string, poolSize: number, threads: number): Factory {
  const source = fs.readFileSync(file, "utf8");
  if (!source.includes(POOL_SIZE_SOURCE)) {
    throw new Error(
      `threaded wasm: ${file} does not contain '${POOL_SIZE_SOURCE}' (unexpected tfjs-backend-wasm ` +
        "build; the pthread pool size cannot be set)",
    );
  }
  const patched = source.replace(POOL_SIZE_SOURCE, `var pthreadPoolSize=${poolSize};`);
  const nodeRequire = createRequire(file);
  // The build caps its pool at `logical cores / 2` (it assumes two hardware threads per core) and
  // reads the core count from `os.cpus()`; report enough cores for the requested thread count.
  const cores = Math.max(os.cpus().length, 2 * threads);
  const osView = { cpus: (): unknown[] => new Array(cores).fill({}) };
  const require = (id: string): unknown => (id === "os" ? osView : nodeRequire(id));
  const proc = globalThis.process;
  const processView = {
    versions: proc.versions,
    argv: [],
    hrtime: proc.hrtime.bind(proc),
    listeners: () => [],
    on: () => processView,
    removeListener: () => processView,
    exit: (code: number) => {
      throw new Error(`threaded wasm: the module called exit(${code})`);
    },
  };
  const globalView: Record<string, unknown> = {};
  const evaluate = new Function(
    "require",
    "process",
    "global",
    "Worker",
    "__filename",
    "__dirname",
    `${patched}\n;return ${FACTORY_GLOBAL};\n//# sourceURL=${file}`,
  );
  return evaluate(require, processView, globalView, PoolWorker, file, path.dirname(file));
}

/**
 * The pthread worker script (CommonJS, run by `node:worker_threads`). It speaks the message
 * protocol of the build's Emscripten pthread runtime: `load` (instantiate the shared module on the
 * shared memory), `run` (start a thread's entry point), `cancel` and `processProxyingQueue`. The
 * factory script is evaluated with the same explicit globals as on the main thread.
 */
const WORKER_SCRIPT = `"use strict";
const { parentPort, Worker } = require("node:worker_threads");
const fs = require("node:fs");
const path = require("node:path");
let Module = {};
let initializedJS = false;
const pendingQueues = [];
function postMessage(msg, transfer) {
  parentPort.postMessage(msg, transfer);
}
function startWorker(instance) {
  Module = instance;
  postMessage({ cmd: "loaded" });
}
function importScripts() {
  throw new Error("importScripts is not available in this worker");
}
function loadFactory(file) {
  const source = fs.readFileSync(file, "utf8");
  const processView = {
    versions: process.versions,
    argv: [],
    hrtime: process.hrtime.bind(process),
    listeners: () => [],
    on: () => processView,
    removeListener: () => processView,
    exit: (code) => {
      throw new Error("the module called exit(" + code + ") in a pthread");
    },
  };
  const evaluate = new Function(
    "require", "process", "global", "Worker", "__filename", "__dirname", "postMessage",
    "startWorker", "importScripts",
    source + "\\n;return ${FACTORY_GLOBAL};\\n//# sourceURL=" + file,
  );
  return evaluate(
    require, processView, {}, Worker, file, path.dirname(file), postMessage, startWorker,
    importScripts,
  );
}
function run(data) {
  Module.__emscripten_thread_init(data.pthread_ptr, 0, 0, 1);
  Module.establishStackSpace();
  Module.PThread.receiveObjectTransfer(data);
  Module.PThread.threadInitTLS();
  if (!initializedJS) {
    for (const queue of pendingQueues) Module.executeNotifiedProxyingQueue(queue);
    pendingQueues.length = 0;
    initializedJS = true;
  }
  try {
    Module.invokeEntryPoint(data.start_routine, data.arg);
  } catch (ex) {
    if (ex === "unwind") return;
    if (!(ex instanceof Module.ExitStatus)) throw ex;
    if (!Module.keepRuntimeAlive()) Module.__emscripten_thread_exit(ex.status);
  }
}
function load(data) {
  Module.wasmModule = data.wasmModule;
  for (const handler of data.handlers) {
    Module[handler] = (...args) => postMessage({ cmd: "callHandler", handler, args });
  }
  Module.wasmMemory = data.wasmMemory;
  Module.buffer = data.wasmMemory.buffer;
  Module.ENVIRONMENT_IS_PTHREAD = true;
  Module.instantiateWasm = (imports, receiveInstance) => {
    const instance = new WebAssembly.Instance(Module.wasmModule, imports);
    receiveInstance(instance);
    Module.wasmModule = null;
    return instance.exports;
  };
  loadFactory(data.urlOrBlob)(Module);
}
parentPort.on("message", (data) => {
  try {
    if (data.cmd === "load") load(data);
    else if (data.cmd === "run") run(data);
    else if (data.cmd === "cancel") {
      if (Module._pthread_self()) Module.__emscripten_thread_exit(-1);
    } else if (data.cmd === "processProxyingQueue") {
      if (initializedJS) Module.executeNotifiedProxyingQueue(data.queue);
      else pendingQueues.push(data.queue);
    } else if (data.target !== "setimmediate" && data.cmd) {
      throw new Error("pthread worker: unknown command " + data.cmd);
    }
  } catch (ex) {
    if (Module.__emscripten_thread_crashed) Module.__emscripten_thread_crashed();
    throw ex;
  }
});
`;

/** Writes the pthread worker script into `cacheDir` (once per content) and returns its path. */
function workerScriptFile(cacheDir: string): string {
  fs.mkdirSync(cacheDir, { recursive: true });
  const file = path.join(cacheDir, `tfjs-wasm-pthread-${fnv1a(WORKER_SCRIPT)}.worker.cjs`);
  writeIfChanged(file, WORKER_SCRIPT);
  return file;
}

/**
 * Loads tfjs-backend-wasm's threaded SIMD build with a pool of `threads` XNNPACK threads and
 * registers it as a tfjs backend (by default `wasm`, made current).
 *
 * A backend already registered under the name is removed first (tfjs disposes it); kernels
 * registered for the name stay and are set up for the new instance.
 *
 * @param threads threads XNNPACK computes with, the calling thread included (1 to
 *   {@linkcode MAX_WASM_THREADS}); `max(1, threads - 1)` pthread workers are started
 * @param options backend name, priority, whether to make it current, worker script directory
 * @returns the registered backend and the thread count the module reports
 * @throws {Error} when `threads` is invalid or the module fails to load (the message says why)
 */
export async function registerThreadedWasmBackend(
  threads: number,
  options: ThreadedWasmOptions = {},
): Promise<ThreadedWasmInfo> {
  if (!Number.isInteger(threads) || threads < 1 || threads > MAX_WASM_THREADS) {
    throw new Error(
      `threaded wasm: threads must be an integer in [1, ${MAX_WASM_THREADS}], got ${threads}`,
    );
  }
  const name = options.name ?? "wasm";
  const files = locatePackage();
  const workerFile = workerScriptFile(options.cacheDir ?? os.tmpdir());
  // XNNPACK's pthreadpool starts `threads - 1` threads (the caller is one); the build's loader waits
  // for at least one pool worker, so the pool never has fewer than one.
  const poolSize = Math.max(1, threads - 1);
  const factory = loadFactory(files.factory, poolSize, threads);

  if (registered !== null) await disposeThreadedWasmBackend();
  let aborted: ((why: unknown) => void) | null = null;
  const abortedPromise = new Promise<never>((_, reject) => {
    aborted = reject;
  });
  const config: Record<string, unknown> = {
    locateFile: (p: string, prefix: string): string => {
      if (p.endsWith(".worker.js")) return workerFile;
      if (p.endsWith(".wasm")) return files.wasm;
      return prefix + p;
    },
    mainScriptUrlOrBlob: files.factory,
    onAbort: (why: unknown) => aborted?.(why),
  };
  let module: EmscriptenModule;
  try {
    module = await Promise.race([factory(config), abortedPromise]);
  } catch (e) {
    await terminateWorkers();
    const why = e instanceof Error ? e.message : String(e);
    throw new Error(`threaded wasm: ${files.wasm} failed to initialise: ${why}`);
  }
  // The same bridge tfjs' own loader adds before constructing BackendWasm.
  module.tfjs = {
    init: module.cwrap("init", null, []),
    initWithThreadsCount: module.cwrap("init_with_threads_count", null, ["number"]),
    getThreadsCount: module.cwrap("get_threads_count", "number", []),
    registerTensor: module.cwrap("register_tensor", null, ["number", "number", "number"]),
    disposeData: module.cwrap("dispose_data", null, ["number"]),
    dispose: module.cwrap("dispose", null, []),
  };
  let backend: tf.KernelBackend;
  setThreadsCount(threads);
  try {
    backend = new BackendWasm(module as never);
  } finally {
    setThreadsCount(-1);
  }
  const actual = module.tfjs.getThreadsCount();

  const replaced = registryEntry(name);
  if (replaced !== null) tf.removeBackend(name);
  tf.registerBackend(name, () => backend, options.priority ?? 2);
  registered = { name, replaced };
  if (options.setActive ?? true) {
    if (!(await tf.setBackend(name))) {
      throw new Error(`threaded wasm: tf.setBackend('${name}') failed`);
    }
  }
  return { name, threads: actual, poolSize, backend };
}

/** Terminates every pool worker still alive and waits until all have exited. */
async function terminateWorkers(): Promise<void> {
  const pending = [...liveWorkers.entries()];
  for (const [w] of pending) {
    // Referenced again so that the event loop stays alive until the exit event arrives.
    (w as PoolWorker).holdProcess();
    w.terminate();
  }
  await Promise.all(pending.map(([, exited]) => exited));
}

/**
 * Removes the backend registered by {@linkcode registerThreadedWasmBackend} (tfjs disposes it and
 * terminates its pthread workers), waits until every worker has exited, and registers again the
 * backend factory it replaced (tfjs' single-threaded `wasm`), not initialised. Does nothing when
 * none is registered.
 */
export async function disposeThreadedWasmBackend(): Promise<void> {
  const current = registered;
  registered = null;
  if (current !== null && tf.findBackendFactory(current.name) != null) {
    tf.removeBackend(current.name);
  }
  await terminateWorkers();
  if (current?.replaced && tf.findBackendFactory(current.name) == null) {
    tf.registerBackend(current.name, current.replaced.factory, current.replaced.priority);
  }
}

/** Pthread workers of the threaded backend that have not exited yet. */
export function threadedWasmWorkerCount(): number {
  return liveWorkers.size;
}
