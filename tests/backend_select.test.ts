// Backend selection: auto order and skip reasons, native cleanup, one tfjs-core, --backend flag.
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import {
  BACKEND_ORDER,
  BackendUnavailableError,
  currentBackend,
  gradientsRegistered,
  initBackend,
  parseBackendFlag,
  resolveBackendName,
  WASM_TRAINING_KERNELS,
  wasmTrainingKernelsRegistered,
} from "../lib/backend/mod.ts";

async function hasAdapter(): Promise<boolean> {
  // deno-lint-ignore no-explicit-any
  const gpu = (navigator as any).gpu;
  if (!gpu) return false;
  try {
    return (await gpu.requestAdapter()) != null;
  } catch {
    return false;
  }
}

Deno.test("auto skips the native backends with an install hint and picks webgpu or wasm", async () => {
  const adapter = await hasAdapter();
  const info = await initBackend("auto");
  assert.equal(info.name, adapter ? "webgpu" : "wasm");
  assert.equal(tf.getBackend(), info.tfjsName);
  assert.equal(currentBackend(), info);
  const names = info.skipped.map((s) => s.name);
  assert.deepEqual(names, BACKEND_ORDER.slice(0, BACKEND_ORDER.indexOf(info.name)));
  for (const s of info.skipped.filter((s) => s.name.startsWith("tensorflow"))) {
    assert.match(s.reason, /deno add npm:@tensorflow\/tfjs-node/);
    assert.match(s.reason, /approve-scripts/);
  }
  // A failed native import leaves no `tensorflow` backend or kernels behind.
  assert.ok(!tf.findBackendFactory("tensorflow"));
  assert.equal(tf.getKernelsForBackend("tensorflow").length, 0);
  await initBackend("wasm");
});

Deno.test("a named native backend fails with BackendUnavailableError naming the fix", async () => {
  await assert.rejects(() => initBackend("tensorflow"), (e: unknown) => {
    assert.ok(e instanceof BackendUnavailableError);
    assert.equal(e.backend, "tensorflow");
    assert.match(e.message, /tfjs_binding\.node|cannot|not/);
    assert.match(e.message, /deno add npm:@tensorflow\/tfjs-node@4\.22\.0/);
    return true;
  });
  assert.ok(!tf.findBackendFactory("tensorflow"));
  assert.equal(tf.getKernelsForBackend("tensorflow").length, 0);
  // The previous backend still works.
  await initBackend("wasm");
  assert.deepEqual(Array.from(tf.add(tf.tensor1d([1, 2]), 1).dataSync()), [2, 3]);
});

Deno.test("all backend packages share one tfjs-core engine", async () => {
  const cpu = await import("@tensorflow/tfjs-backend-cpu");
  const wasm = await import("@tensorflow/tfjs-backend-wasm");
  const union = await import("@tensorflow/tfjs");
  await initBackend("cpu");
  await initBackend("wasm");
  const engine = tf.engine();
  // deno-lint-ignore no-explicit-any
  assert.equal((globalThis as any)._tfengine, engine);
  assert.equal(union.engine(), engine);
  assert.ok(engine.findBackend("cpu") instanceof cpu.MathBackendCPU);
  assert.ok(engine.findBackend("wasm") instanceof wasm.BackendWasm);
  // Both backend classes extend this tfjs-core's KernelBackend (no second core instance).
  assert.equal(Object.getPrototypeOf(cpu.MathBackendCPU.prototype), tf.KernelBackend.prototype);
  assert.equal(Object.getPrototypeOf(wasm.BackendWasm.prototype), tf.KernelBackend.prototype);
  if (await hasAdapter()) {
    const webgpu = await import("@tensorflow/tfjs-backend-webgpu");
    await initBackend("webgpu");
    assert.ok(engine.findBackend("webgpu") instanceof webgpu.WebGPUBackend);
    assert.equal(Object.getPrototypeOf(webgpu.WebGPUBackend.prototype), tf.KernelBackend.prototype);
    await initBackend("wasm");
  } else {
    console.warn("skipping the webgpu part: no WebGPU adapter");
  }
  const t = tf.tensor1d([1, 2, 3]);
  assert.ok(t instanceof tf.Tensor && t.constructor === tf.Tensor);
  t.dispose();
  assert.ok(gradientsRegistered());
});

Deno.test("initBackend('wasm') registers the training kernels once", async () => {
  await initBackend("wasm");
  assert.ok(wasmTrainingKernelsRegistered());
  const before = WASM_TRAINING_KERNELS.map((k) => tf.getKernel(k, "wasm"));
  await initBackend("cpu");
  await initBackend("wasm");
  assert.deepEqual(WASM_TRAINING_KERNELS.map((k) => tf.getKernel(k, "wasm")), before);
});

Deno.test("parseBackendFlag and SSM_BACKEND", () => {
  const saved = Deno.env.get("SSM_BACKEND");
  try {
    Deno.env.delete("SSM_BACKEND");
    assert.deepEqual(parseBackendFlag(["a", "--backend", "cpu", "b"]), {
      backend: "cpu",
      rest: ["a", "b"],
    });
    assert.deepEqual(parseBackendFlag(["--backend=webgpu"]), { backend: "webgpu", rest: [] });
    assert.deepEqual(parseBackendFlag([]), { backend: "auto", rest: [] });
    Deno.env.set("SSM_BACKEND", "wasm");
    assert.equal(parseBackendFlag(["x"]).backend, "wasm");
    assert.equal(parseBackendFlag(["--backend", "cpu"]).backend, "cpu");
    assert.equal(resolveBackendName(), "wasm");
    Deno.env.set("SSM_BACKEND", "gpu");
    assert.throws(() => resolveBackendName(), /unknown backend 'gpu' \(from SSM_BACKEND\)/);
    assert.throws(
      () => parseBackendFlag(["--backend", "tpu"]),
      /unknown backend 'tpu' \(from --backend\)/,
    );
    assert.throws(() => parseBackendFlag(["--backend"]), /--backend needs a value/);
  } finally {
    if (saved === undefined) Deno.env.delete("SSM_BACKEND");
    else Deno.env.set("SSM_BACKEND", saved);
  }
});
