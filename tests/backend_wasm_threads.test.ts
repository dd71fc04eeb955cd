// The multi-threaded wasm backend against the cpu backend on fresh random inputs (max-abs error
// relative to the reference's max-abs <= 1e-4): conv2d, matMul and a conv gradient through
// tf.grads (with the toolkit's wasm training kernels). Also: the thread count the module reports,
// the pthread workers really running, clean disposal, and that a process which never disposes the
// backend still exits.
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import {
  disposeThreadedWasmBackend,
  registerThreadedWasmBackend,
  threadedWasmWorkerCount,
} from "../lib/backend/wasm_threads.ts";
import "../lib/backend/gradients.ts";
import { registerWasmTrainingKernels } from "../lib/backend/wasm_kernels.ts";
import { normalSource, REPO_ROOT } from "./_util.ts";
import { roiAlignThreads, setRoIAlignThreads } from "../lib/roi_align_workers.ts";
import { roiAlign } from "../lib/roi_align.ts";

const TOL = 1e-4;
const THREADS = 2;
const normals = normalSource(0x7ead);

type Data = { shape: number[]; values: Float32Array };
const data = (...shape: number[]): Data => normals.data(...shape);

type Case = { label: string; inputs: Data[]; f: (...xs: tf.Tensor[]) => tf.Tensor[] };

function runAll(cases: Case[]): { shape: number[]; values: Float32Array }[][] {
  return cases.map((c) => {
    // Tensors out of the tidy, values read after it (tidy walks typed arrays it returns).
    const outs = tf.tidy(() => c.f(...c.inputs.map((d) => tf.tensor(d.values, d.shape))));
    const read = outs.map((t) => ({ shape: t.shape, values: t.dataSync() as Float32Array }));
    tf.dispose(outs);
    return read;
  });
}

function relErr(got: Float32Array, want: Float32Array): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < want.length; i++) {
    diff = Math.max(diff, Math.abs(got[i] - want[i]));
    scale = Math.max(scale, Math.abs(want[i]));
  }
  return diff / Math.max(scale, 1e-30);
}

const convGrad = (x: tf.Tensor, w: tf.Tensor, r: tf.Tensor): tf.Tensor[] =>
  tf.grads((a: tf.Tensor, b: tf.Tensor) =>
    tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, "same"), r))
  )([x, w]);

Deno.test("threaded wasm: conv2d, matMul and a conv gradient match the cpu backend", async () => {
  const cases: Case[] = [
    {
      label: "conv2d 3x3 s1 same [2,24,24,16]->32",
      inputs: [data(2, 24, 24, 16), data(3, 3, 16, 32)],
      f: (x, w) => [tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, "same")],
    },
    {
      label: "conv2d 3x3 s2 valid [1,33,31,8]->24",
      inputs: [data(1, 33, 31, 8), data(3, 3, 8, 24)],
      f: (x, w) => [tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 2, "valid")],
    },
    {
      label: "matMul [192,256]x[256,160]",
      inputs: [data(192, 256), data(256, 160)],
      f: (a, b) => [tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D)],
    },
    {
      label: "conv2d grads (x, w) 3x3 s2 same [2,16,16,8]->16",
      inputs: [data(2, 16, 16, 8), data(3, 3, 8, 16), data(2, 8, 8, 16)],
      f: convGrad,
    },
  ];

  await tf.setBackend("cpu");
  (tf.backend() as unknown as { firstUse?: boolean }).firstUse = false;
  const want = runAll(cases);

  const info = await registerThreadedWasmBackend(THREADS);
  try {
    registerWasmTrainingKernels();
    assert.equal(tf.getBackend(), "wasm");
    assert.equal(info.threads, THREADS, "threads reported by get_threads_count");
    const pthread = (info.backend as unknown as {
      wasm: { PThread: { runningWorkers: unknown[] } };
    }).wasm.PThread;
    assert.equal(pthread.runningWorkers.length, THREADS - 1, "pthreadpool worker threads running");
    const got = runAll(cases);
    const report: string[] = [];
    cases.forEach((c, i) => {
      want[i].forEach((w, j) => {
        const g = got[i][j];
        assert.deepEqual(g.shape, w.shape, `${c.label} output ${j} shape`);
        const e = relErr(g.values, w.values);
        report.push(`${c.label}[${j}] ${e.toExponential(2)}`);
        assert.ok(e <= TOL, `${c.label} output ${j}: rel err ${e} > ${TOL} (seed ${normals.seed})`);
      });
    });
    console.log(`threads used: ${info.threads} (pool ${info.poolSize}); ${report.join("; ")}`);
  } finally {
    await disposeThreadedWasmBackend();
  }
  assert.equal(threadedWasmWorkerCount(), 0, "workers left after dispose");
  // The single-threaded registration is back and usable.
  assert.ok(tf.findBackendFactory("wasm") != null);
  assert.ok(await tf.setBackend("wasm"));
  const s = tf.tidy(() => tf.sum(tf.tensor1d([1, 2, 3])).dataSync()[0]);
  assert.equal(s, 6);
  await tf.setBackend("cpu");
});

/** CPU time (clock ticks) of every thread of this process, by thread id; null without /proc. */
function threadTicks(): Map<string, number> | null {
  try {
    const out = new Map<string, number>();
    for (const e of Deno.readDirSync("/proc/self/task")) {
      const stat = Deno.readTextFileSync(`/proc/self/task/${e.name}/stat`);
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      out.set(e.name, Number(fields[11]) + Number(fields[12])); // utime + stime
    }
    return out;
  } catch {
    return null;
  }
}

Deno.test({
  name: "threaded wasm: the pthread worker does a share of the matMul work (Linux /proc)",
  ignore: threadTicks() === null,
  fn: async () => {
    const before = threadTicks()!;
    const info = await registerThreadedWasmBackend(THREADS);
    try {
      const spawned = [...threadTicks()!.keys()].filter((tid) => !before.has(tid));
      assert.ok(spawned.length >= THREADS - 1, "no new threads after registration");
      const a = tf.randomNormal([1024, 1024]) as tf.Tensor2D;
      const b = tf.randomNormal([1024, 1024]) as tf.Tensor2D;
      const t0 = threadTicks()!;
      for (let i = 0; i < 8; i++) {
        const c = tf.matMul(a, b);
        c.dataSync();
        c.dispose();
      }
      const t1 = threadTicks()!;
      tf.dispose([a, b]);
      let total = 0;
      let workers = 0;
      for (const [tid, ticks] of t1) {
        const d = ticks - (t0.get(tid) ?? 0);
        total += d;
        if (spawned.includes(tid)) workers += d;
      }
      const share = workers / Math.max(total, 1);
      console.log(
        `threads ${info.threads}: pthread workers used ${(100 * share).toFixed(0)}% of ` +
          `${total} CPU ticks of 8 matMuls 1024^3`,
      );
      assert.ok(share >= 0.1, `pthread workers did ${(100 * share).toFixed(1)}% of the work`);
    } finally {
      await disposeThreadedWasmBackend();
    }
  },
});

Deno.test("threaded wasm: invalid thread counts are rejected", async () => {
  for (const bad of [0, -1, 1.5, 9, Number.NaN]) {
    await assert.rejects(
      registerThreadedWasmBackend(bad),
      /threads must be an integer in \[1, 8\]/,
    );
  }
  assert.equal(threadedWasmWorkerCount(), 0);
});

Deno.test("threaded wasm: a process that never disposes the backend exits", async () => {
  const url = new URL("../lib/backend/wasm_threads.ts", import.meta.url).href;
  const code = `import * as tf from "@tensorflow/tfjs-core";
import { registerThreadedWasmBackend } from "${url}";
const info = await registerThreadedWasmBackend(${THREADS});
const y = tf.matMul(tf.ones([64, 64]), tf.ones([64, 64]));
console.log(info.threads, (await y.data())[0]);`;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", "--config", `${REPO_ROOT}/deno.json`, code],
    cwd: REPO_ROOT,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), 30_000);
  });
  const result = await Promise.race([child.output(), timedOut]);
  clearTimeout(timer);
  if (result === "timeout") {
    child.kill("SIGKILL");
    await child.output();
    assert.fail("the child process did not exit within 30 s (pthread workers keep it alive)");
  }
  const out = new TextDecoder().decode(result.stdout).trim();
  const err = new TextDecoder().decode(result.stderr).trim();
  assert.equal(result.code, 0, `child failed: ${err}`);
  assert.equal(out, `${THREADS} 64`);
});

Deno.test("initBackend('wasm', { wasmThreads }) loads the threaded build and goes back to one thread", async () => {
  const { initBackend, resolveWasmThreads } = await import("../lib/backend/mod.ts");
  assert.throws(() => resolveWasmThreads(0), /integer from 1 to 8/);
  assert.throws(() => resolveWasmThreads(2.5), /integer from 1 to 8/);
  const src = normalSource(53);
  const feat = src.randn(40 * 40 * 64);
  const rows = Array.from({ length: 200 }, (_, r) => {
    const x = (r * 37) % 140, y = (r * 53) % 140;
    return [x + 0.3, y + 0.7, x + 5 + (r % 9) * 3.1, y + 4 + (r % 7) * 4.3];
  });
  const pooled = (f: tf.Tensor4D) =>
    tf.tidy(() => {
      const g = tf.grad((x: tf.Tensor) =>
        tf.sum(tf.square(roiAlign(x as tf.Tensor4D, rows, { spatialScale: 0.25, engine: "js" })))
      );
      return [
        roiAlign(f, rows, { spatialScale: 0.25, engine: "js" }).dataSync(),
        g(f).dataSync(),
      ];
    });
  // The JavaScript loop's result on cpu, for the SIMD kernel on the shared heap below.
  await initBackend("cpu");
  const fCpu = tf.tensor4d(feat, [1, 40, 40, 64]);
  const [outCpu, gradCpu] = pooled(fCpu);
  fCpu.dispose();
  const two = await initBackend("wasm", { wasmThreads: THREADS });
  try {
    assert.equal(two.threads, THREADS);
    assert.ok(threadedWasmWorkerCount() >= THREADS - 1);
    assert.equal(roiAlignThreads(), THREADS, "the js RoIAlign engine follows");
    // The threaded build's heap is shared memory: the RoIAlign workers run the SIMD kernel on it
    // in place and give bitwise the one-thread result, which is the cpu backend's.
    const f = tf.tensor4d(feat, [1, 40, 40, 64]);
    try {
      const [outMany, gradMany] = pooled(f);
      setRoIAlignThreads(1);
      const [outOne, gradOne] = pooled(f);
      assert.deepEqual(outMany, outOne, `forward (seed ${src.seed})`);
      assert.deepEqual(gradMany, gradOne, `gradient (seed ${src.seed})`);
      assert.deepEqual(outOne, outCpu, `forward, cpu (seed ${src.seed})`);
      assert.deepEqual(gradOne, gradCpu, `gradient, cpu (seed ${src.seed})`);
      assert.ok(gradOne.some((v) => v !== 0));
    } finally {
      f.dispose();
    }
    // The training kernels apply to the threaded backend too.
    const g = tf.tidy(() =>
      tf.grad((w: tf.Tensor) =>
        tf.sum(tf.conv2d(tf.ones([1, 6, 6, 2]) as tf.Tensor4D, w as tf.Tensor4D, 1, 1))
      )(
        tf.ones([3, 3, 2, 2]),
      ).dataSync()
    );
    assert.equal(g[16], 36); // the centre tap (1, 1) sees every one of the 6×6 inputs
  } finally {
    const one = await initBackend("wasm", { wasmThreads: 1 });
    assert.equal(one.threads, 1);
    assert.equal(threadedWasmWorkerCount(), 0);
    assert.equal(roiAlignThreads(), 1);
  }
});
