// `deno task bench kernels`: runs on wasm, reports finite GFLOP/s and writes JSON atomically.
import assert from "node:assert/strict";
import { join } from "node:path";
import { formatKernelTable, resnet18ConvShapes, runKernelBench } from "../lib/bench/kernels.ts";
import { main } from "../lib/cli/bench.ts";

Deno.test("resnet18ConvShapes covers the stem, all three stages, FPN and the mask head", () => {
  const names = resnet18ConvShapes().map((s) => s.name);
  for (
    const n of ["stem 7x7/2", "layer1 3x3", "layer2 3x3/2", "layer3 down 1x1/2", "fpn out 3x3"]
  ) {
    assert.ok(names.includes(n), n);
  }
  assert.ok(resnet18ConvShapes().some((s) => s.transposed && s.kernel === 2 && s.stride === 2));
});

Deno.test("runKernelBench measures forward and both gradients on wasm", async () => {
  const result = await runKernelBench({ backends: ["wasm"], reps: 1, only: ["fpn lateral"] });
  assert.deepEqual(result.backends, [{ name: "wasm", ok: true }]);
  assert.equal(result.rows.length, 1);
  const row = result.rows[0];
  assert.equal(row.gflop, 2 * 32 * 32 * 256 * 256 / 1e9);
  for (const c of ["forward", "backwardInput", "backwardFilter"]) {
    assert.ok(Number.isFinite(row.gflops[c]) && row.gflops[c]! > 0, c);
  }
  assert.match(formatKernelTable(result), /fpn lateral 1x1/);
});

Deno.test("bench CLI: kernels writes --json, other subcommands are not available yet", async () => {
  const dir = Deno.makeTempDirSync();
  try {
    const path = join(dir, "k.json");
    const code = await main([
      "kernels",
      "--backend",
      "wasm",
      "--reps",
      "1",
      "--only",
      "matMul",
      "--json",
      path,
    ]);
    assert.equal(code, 0);
    const json = JSON.parse(Deno.readTextFileSync(path));
    assert.equal(json.rows[0].name, "matMul 1024^3");
    assert.ok(json.rows[0].gflops.transposeA > 0);
    assert.equal(await main(["training"]), 2);
    await assert.rejects(
      () => main(["kernels", "--reps", "0"]),
      /--reps must be a positive integer/,
    );
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
