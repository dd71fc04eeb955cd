// torch.save (.pth) reader: the authors'-format fixture, hand-built archives (strided and half
// tensors, unknown classes), and errors for unsupported opcodes.
import assert from "node:assert/strict";
import { zipSync } from "fflate";
import {
  parsePth,
  PickleObject,
  readPth,
  readSafetensors,
  stateDictFromCheckpoint,
  unpickle,
} from "../lib/nn/mod.ts";
import type { HostTensor } from "../lib/nn/mod.ts";
import { fixture, fixturesDir } from "./_util.ts";

/** Minimal pickle writer (protocol 2 opcodes) for building test archives. */
class PickleWriter {
  bytes: number[] = [0x80, 2];
  private enc = new TextEncoder();
  op(...b: number[]): this {
    this.bytes.push(...b);
    return this;
  }
  str(s: string): this {
    const e = this.enc.encode(s);
    const n = new Uint8Array(new Uint32Array([e.length]).buffer);
    return this.op(0x58, ...n, ...e);
  }
  int(v: number): this {
    const n = new Uint8Array(new Int32Array([v]).buffer);
    return this.op(0x4a, ...n);
  }
  global(module: string, name: string): this {
    return this.op(0x63, ...this.enc.encode(`${module}\n${name}\n`));
  }
  mark(): this {
    return this.op(0x28);
  }
  tuple(): this {
    return this.op(0x74);
  }
  done(): Uint8Array {
    return new Uint8Array([...this.bytes, 0x2e]);
  }
}

/** `_rebuild_tensor_v2(('storage', <cls>, key, 'cpu', numel), offset, size, stride, False, OD())` */
function tensor(
  p: PickleWriter,
  cls: string,
  key: string,
  numel: number,
  offset: number,
  size: number[],
  stride: number[],
) {
  p.global("torch._utils", "_rebuild_tensor_v2").mark();
  p.mark().str("storage").global("torch", cls).str(key).str("cpu").int(numel).tuple();
  p.op(0x51); // BINPERSID
  p.int(offset);
  p.mark();
  size.forEach((s) => p.int(s));
  p.tuple().mark();
  stride.forEach((s) => p.int(s));
  p.tuple().op(0x89); // False
  p.global("collections", "OrderedDict").op(0x29, 0x52); // OrderedDict()
  p.tuple().op(0x52); // REDUCE
}

function archive(pkl: Uint8Array, storages: Record<string, Uint8Array>): Uint8Array {
  const files: Record<string, [Uint8Array, { level: 0 }]> = {
    "ckpt/data.pkl": [pkl, { level: 0 }],
    "ckpt/version": [new TextEncoder().encode("3\n"), { level: 0 }],
  };
  for (const [k, v] of Object.entries(storages)) files[`ckpt/data/${k}`] = [v, { level: 0 }];
  return zipSync(files);
}

Deno.test("strided, offset and half-precision tensors; unknown classes become placeholders", () => {
  const p = new PickleWriter();
  p.op(0x7d).mark(); // {  (
  p.str("epoch").str("49");
  p.str("model_weights").global("collections", "OrderedDict").op(0x29, 0x52).mark();
  // w: storage of 7 floats, offset 1, size (2,3), stride (1,2) → w[i][j] = s[1 + i + 2j]
  p.str("w");
  tensor(p, "FloatStorage", "0", 7, 1, [2, 3], [1, 2]);
  p.str("h");
  tensor(p, "HalfStorage", "1", 2, 0, [2], [1]);
  p.str("l");
  tensor(p, "LongStorage", "2", 1, 0, [], []);
  p.op(0x75); // SETITEMS into the OrderedDict
  p.str("lrate").op(0x47, ...new Uint8Array(new Float64Array([1e-5]).buffer).reverse());
  p.str("anchor_generator").global("models.ssm.rpn", "AnchorGenerator").op(0x29, 0x81);
  p.op(0x7d).str("sizes").mark().int(2).int(4).tuple().op(0x73, 0x62); // {sizes: (2,4)} BUILD
  p.op(0x75); // SETITEMS into the root dict
  const s0 = new Float32Array([0, 1.5, 3, 4.5, 6, 7.5, 9]);
  const s1 = new Uint8Array([0x00, 0x3c, 0x00, 0xc0]); // 1, -2 as float16
  const s2 = new Uint8Array(new BigInt64Array([42n]).buffer);
  const bytes = archive(p.done(), { "0": new Uint8Array(s0.buffer), "1": s1, "2": s2 });
  const ck = parsePth(bytes, "hand.pth");
  assert.equal(ck.archiveName, "ckpt");
  const root = ck.root as Map<string, unknown>;
  assert.equal(root.get("epoch"), "49");
  assert.equal(root.get("lrate"), 1e-5);
  const ag = root.get("anchor_generator") as PickleObject;
  assert.ok(ag instanceof PickleObject);
  assert.equal(ag.className, "models.ssm.rpn.AnchorGenerator");
  assert.deepEqual((ag.state as Map<string, unknown>).get("sizes"), [2, 4]);
  const sd = stateDictFromCheckpoint(root, "hand.pth");
  assert.deepEqual([...sd.keys()], ["w", "h", "l"]);
  assert.deepEqual(sd.get("w")!.shape, [2, 3]);
  assert.deepEqual([...sd.get("w")!.data], [1.5, 4.5, 7.5, 3, 6, 9]);
  assert.deepEqual([...sd.get("h")!.data], [1, -2]);
  assert.equal(sd.get("h")!.dtype, "F16");
  assert.deepEqual(sd.get("l")!.shape, []);
  assert.equal(sd.get("l")!.data[0], 42);
});

Deno.test("errors name the file and the problem", () => {
  // unsupported opcode: INST ('i') is never written by torch.save
  const inst = new Uint8Array([0x80, 2, 0x69, ...new TextEncoder().encode("os\nsystem\n"), 0x2e]);
  assert.throws(
    () => parsePth(archive(inst, {}), "evil.pth"),
    (e: Error) =>
      /evil\.pth/.test(e.message) && /opcode 0x69/.test(e.message) && /'i'/.test(e.message),
  );
  assert.throws(() => unpickle(new Uint8Array([0x80, 2, 0x4b]), "t.pkl"), /t\.pkl.*truncated/);
  assert.throws(() => unpickle(new Uint8Array([0x80, 2, 0x30, 0x2e]), "t.pkl"), /underflow/);
  assert.throws(() => unpickle(new Uint8Array([0x80, 2, 0x68, 3, 0x2e]), "t.pkl"), /memo key 3/);
  assert.throws(() => parsePth(new Uint8Array([1, 2, 3, 4, 5]), "x.pth"), /x\.pth: not a torch/);
  // storage missing from the archive / tensor reading past its storage
  const p = new PickleWriter();
  p.op(0x7d).str("w");
  tensor(p, "FloatStorage", "0", 4, 2, [3], [1]);
  p.op(0x73);
  const four = new Uint8Array(16);
  assert.throws(
    () => parsePth(archive(p.done(), {}), "m.pth"),
    /m\.pth: storage ckpt\/data\/0 is missing/,
  );
  assert.throws(() => parsePth(archive(p.done(), { "0": four }), "m.pth"), /m\.pth.*reads past/);
  const q = new PickleWriter();
  q.op(0x7d).str("w");
  tensor(q, "ComplexFloatStorage", "0", 1, 0, [1], [1]);
  q.op(0x73);
  assert.throws(() => parsePth(archive(q.done(), { "0": four }), "c.pth"), /ComplexFloatStorage/);
  assert.throws(
    () => stateDictFromCheckpoint(new Map([["epoch", 3]]), "e.pth"),
    /e\.pth: no state dict/,
  );
});

Deno.test({
  name: "authors'-format .pth fixture: all 113 tensors equal weights.safetensors bit for bit",
  ignore: fixturesDir() === null,
  fn: () => {
    const ck = readPth(fixture("ssm", "weights_authors_format.pth")!);
    const root = ck.root as Map<string, unknown>;
    assert.deepEqual([...root.keys()], ["epoch", "model_weights", "lrate", "anchor_generator"]);
    assert.equal(root.get("epoch"), "49");
    assert.equal(root.get("lrate"), 1e-5);
    const ag = root.get("anchor_generator") as PickleObject;
    assert.equal(ag.className, "torchvision.models.detection.anchor_utils.AnchorGenerator");
    const sd = stateDictFromCheckpoint(root, "fixture");
    const st = readSafetensors(fixture("ssm", "weights.safetensors")!).tensors;
    assert.equal(sd.size, 113);
    assert.deepEqual([...sd.keys()].sort(), [...st.keys()].sort());
    for (const [name, t] of st) {
      const u = sd.get(name) as HostTensor;
      assert.ok(u, name);
      assert.deepEqual(u.shape, t.shape, name);
      const a = new Uint32Array(u.data.buffer, u.data.byteOffset, u.data.length);
      const b = new Uint32Array(t.data.buffer, t.data.byteOffset, t.data.length);
      assert.ok(a.every((v, i) => v === b[i]), `${name} differs`);
    }
  },
});
