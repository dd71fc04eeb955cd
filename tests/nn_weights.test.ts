// loadWeights / saveWeights: PyTorch layout on disk, state_dict names, strictness, torchvision
// 0.14 names, num_batches_tracked, .pth input, prefixes.
import * as tf from "@tensorflow/tfjs-core";
import assert from "node:assert/strict";
import { join } from "node:path";
import { initBackend } from "../lib/backend/mod.ts";
import {
  authorsName,
  BatchNorm2d,
  Conv2d,
  ConvTranspose2d,
  Linear,
  loadWeights,
  Module,
  readSafetensors,
  saveWeights,
  SeedSequence,
  serializeSafetensors,
  SSM_CONFIG_KEY,
} from "../lib/nn/mod.ts";
import type { HostTensor } from "../lib/nn/mod.ts";
import { resnetFpnBackbone } from "../lib/backbone.ts";
import { fixture, fixturesDir } from "./_util.ts";

/** A small model with every parameter layout, named like the SSM's parts. */
class Toy extends Module {
  conv: Conv2d;
  up: ConvTranspose2d;
  bn: BatchNorm2d;
  fc6: Linear;
  fc7: Linear;
  constructor(seed: number) {
    super();
    const seeds = new SeedSequence(seed);
    const head = this.addModule("head", new Module());
    this.conv = head.addModule("conv", new Conv2d(3, 4, 3, { padding: 1, seeds }));
    this.up = head.addModule("up", new ConvTranspose2d(4, 5, 2, { seeds }));
    this.bn = this.addModule("bn", new BatchNorm2d(4));
    this.fc6 = this.addModule(
      "fc6",
      new Linear(4 * 3 * 2, 6, {
        seeds,
        layout: { kind: "linearFromNCHW", channels: 4, height: 3, width: 2 },
      }),
    );
    this.fc7 = this.addModule("fc7", new Linear(6, 2, { seeds }));
    const rs = tf.randomUniform([4], 0.5, 2, "float32", seed);
    this.bn.runningVar.assign(rs);
    rs.dispose();
  }
}

const tmp = () => Deno.makeTempDirSync();

Deno.test("saveWeights writes PyTorch layout; loadWeights restores every variable", async () => {
  await initBackend("wasm");
  const a = new Toy(1);
  const dir = tmp();
  const path = join(dir, "toy.safetensors");
  saveWeights(a, path, { [SSM_CONFIG_KEY]: JSON.stringify({ depth: 18 }) });
  const f = readSafetensors(path);
  assert.deepEqual([...f.tensors.keys()], a.namedParameters().map(([n]) => n));
  assert.deepEqual(f.tensors.get("head.conv.weight")!.shape, [4, 3, 3, 3]);
  assert.deepEqual(f.tensors.get("head.up.weight")!.shape, [4, 5, 2, 2]);
  assert.deepEqual(f.tensors.get("fc6.weight")!.shape, [6, 24]);
  // element checks against the tfjs layouts, index by index
  const cw = a.conv.weight.dataSync(), fw = f.tensors.get("head.conv.weight")!.data;
  // torch [o][i][y][x] = tf [y][x][i][o]
  assert.equal(fw[((3 * 3 + 2) * 3 + 1) * 3 + 0], cw[((1 * 3 + 0) * 3 + 2) * 4 + 3]);
  const uw = a.up.weight.dataSync(), fu = f.tensors.get("head.up.weight")!.data;
  // torch [in][out][y][x] = tf [y][x][out][in]
  assert.equal(fu[((2 * 5 + 4) * 2 + 1) * 2 + 0], uw[((1 * 2 + 0) * 5 + 4) * 4 + 2]);
  const lw = a.fc6.weight.dataSync(), f6 = f.tensors.get("fc6.weight")!.data;
  // torch [o][c*H*W + y*W + x] = tf [(y*W + x)*C + c][o] with C=4, H=3, W=2
  for (const [o, c, y, x] of [[5, 3, 2, 1], [0, 1, 0, 1], [2, 2, 1, 0]]) {
    assert.equal(f6[o * 24 + c * 6 + y * 2 + x], lw[((y * 2 + x) * 4 + c) * 6 + o]);
  }
  const l7 = a.fc7.weight.dataSync(), f7 = f.tensors.get("fc7.weight")!.data;
  assert.equal(f7[1 * 6 + 4], l7[4 * 2 + 1]); // torch [o][i] = tf [i][o]
  assert.deepEqual(JSON.parse(f.metadata[SSM_CONFIG_KEY]), { depth: 18 });

  const b = new Toy(2);
  const rep = loadWeights(b, path);
  assert.deepEqual(rep.missing, []);
  assert.deepEqual(rep.unexpected, []);
  assert.equal(rep.loaded, a.namedParameters().length);
  assert.equal(rep.metadata[SSM_CONFIG_KEY], '{"depth":18}');
  const pa = new Map(a.namedParameters());
  for (const [n, p] of b.namedParameters()) {
    assert.deepEqual(p.variable.dataSync(), pa.get(n)!.variable.dataSync(), n);
    assert.deepEqual(p.variable.shape, pa.get(n)!.variable.shape, n);
  }
  // same bytes in memory load the same way
  const c = new Toy(3);
  loadWeights(c, Deno.readFileSync(path));
  assert.deepEqual(c.fc6.weight.dataSync(), a.fc6.weight.dataSync());
  Deno.removeSync(dir, { recursive: true });
  [a, b, c].forEach((m) => m.dispose());
});

Deno.test("strict loading lists missing, unexpected and mis-shaped names and assigns nothing", async () => {
  await initBackend("wasm");
  const a = new Toy(1);
  const sd = new Map<string, HostTensor>();
  const saved = saveTo(a);
  const src = readSafetensors(saved).tensors;
  Deno.removeSync(saved.slice(0, -"/m.safetensors".length), { recursive: true });
  for (const [k, v] of src) sd.set(k, v);
  sd.delete("bn.running_mean");
  sd.set("extra.weight", { shape: [1], data: new Float32Array(1), dtype: "F32" });
  sd.set("fc7.weight", { shape: [2, 7], data: new Float32Array(14), dtype: "F32" });
  sd.set("bn.num_batches_tracked", { shape: [], data: new Float32Array([5]), dtype: "I64" });
  const bytes = serializeSafetensors(sd);
  const b = new Toy(2);
  const before = b.conv.weight.dataSync().slice();
  assert.throws(() => loadWeights(b, bytes), (e: Error) => {
    assert.match(e.message, /missing key\(s\): bn\.running_mean/);
    assert.match(e.message, /unexpected key\(s\): extra\.weight/);
    assert.match(e.message, /size mismatch: fc7\.weight file \[2,7\] vs model \[2,6\]/);
    assert.doesNotMatch(e.message, /num_batches_tracked/);
    return true;
  });
  assert.deepEqual(b.conv.weight.dataSync(), before, "nothing assigned after a strict failure");
  const rep = loadWeights(b, bytes, { strict: false });
  assert.deepEqual(rep.missing, ["bn.running_mean"]);
  assert.deepEqual(rep.unexpected, ["extra.weight"]);
  assert.deepEqual(rep.mismatched, [{ name: "fc7.weight", expected: [2, 6], got: [2, 7] }]);
  assert.deepEqual(b.conv.weight.dataSync(), a.conv.weight.dataSync(), "the rest is loaded");
  assert.notDeepEqual(b.fc7.weight.dataSync(), a.fc7.weight.dataSync());
  assert.throws(
    () => loadWeights(b, "/nonexistent/w.safetensors"),
    /\/nonexistent\/w\.safetensors/,
  );
  a.dispose();
  b.dispose();
});

function saveTo(m: Module): string {
  const path = join(tmp(), "m.safetensors");
  saveWeights(m, path);
  return path;
}

Deno.test("authorsName maps torchvision 0.14 module paths", () => {
  assert.equal(
    authorsName("backbone.fpn.inner_blocks.0.0.weight"),
    "backbone.fpn.inner_blocks.0.weight",
  );
  assert.equal(
    authorsName("backbone.fpn.layer_blocks.0.0.bias"),
    "backbone.fpn.layer_blocks.0.bias",
  );
  assert.equal(authorsName("rpn.head.conv.0.0.weight"), "rpn.head.conv.weight");
  assert.equal(
    authorsName("roi_heads.mask_head.0.0.weight"),
    "roi_heads.mask_head.mask_fcn1.weight",
  );
  assert.equal(authorsName("roi_heads.mask_head.3.0.bias"), "roi_heads.mask_head.mask_fcn4.bias");
  assert.equal(
    authorsName("backbone.body.layer2.0.downsample.0.weight"),
    "backbone.body.layer2.0.downsample.0.weight",
  );
  // every third-column name of the fixture list maps to its first column
  const path = fixture("ssm", "state_dict_shapes.txt");
  if (!path) return;
  for (const line of Deno.readTextFileSync(path).split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const [name, , tv] = line.split("\t");
    assert.equal(authorsName(tv), name);
  }
});

Deno.test({
  name: "fixture weights load into the backbone from safetensors, .pth and torchvision-0.14 names",
  ignore: fixturesDir() === null,
  fn: async () => {
    await initBackend("wasm");
    const st = fixture("ssm", "weights.safetensors")!;
    const tensors = readSafetensors(st).tensors;
    const a = resnetFpnBackbone({ depth: 18, stages: 3, seed: 1 });
    const rep = loadWeights(a, st, { prefix: "backbone." });
    assert.equal(rep.loaded, 79);
    assert.deepEqual(rep.unexpected, []); // names outside the prefix are not "unexpected"
    assert.equal(rep.metadata.parameter_count, "8267759");
    // values land in tfjs layout: conv1 tf [ky][kx][i][o] = torch [o][i][ky][kx]
    const t = tensors.get("backbone.body.conv1.weight")!.data;
    const v = a.body.conv1.weight.dataSync();
    assert.equal(v[((4 * 7 + 5) * 3 + 2) * 64 + 63], t[((63 * 3 + 2) * 7 + 4) * 7 + 5]);

    const b = resnetFpnBackbone({ depth: 18, stages: 3, seed: 2 });
    const pthRep = loadWeights(b, fixture("ssm", "weights_authors_format.pth")!, {
      prefix: "backbone.",
    });
    assert.equal(pthRep.loaded, 79);
    assert.equal(pthRep.metadata.epoch, "49");

    // the same file with torchvision 0.14 names (+ zero num_batches_tracked counters)
    const tvNames = new Map<string, HostTensor>();
    for (
      const line of Deno.readTextFileSync(fixture("ssm", "state_dict_shapes.txt")!).split("\n")
    ) {
      if (!line.startsWith("backbone.")) continue;
      const [name, , tv] = line.split("\t");
      tvNames.set(tv, tensors.get(name)!);
      if (name.endsWith("running_var")) {
        tvNames.set(tv.replace("running_var", "num_batches_tracked"), {
          shape: [],
          data: new Float32Array(1),
          dtype: "I64",
        });
      }
    }
    const c = resnetFpnBackbone({ depth: 18, stages: 3, seed: 3 });
    assert.equal(loadWeights(c, serializeSafetensors(tvNames), { prefix: "backbone." }).loaded, 79);
    const pa = new Map(a.namedParameters());
    for (const m of [b, c]) {
      for (const [n, p] of m.namedParameters()) {
        assert.deepEqual(p.variable.dataSync(), pa.get(n)!.variable.dataSync(), n);
      }
    }
    // loading the whole checkpoint into the bare backbone without a prefix fails loudly
    assert.throws(() => loadWeights(c, st), /unexpected key\(s\): backbone\.body\.conv1\.weight/);
    [a, b, c].forEach((m) => m.dispose());
  },
});
