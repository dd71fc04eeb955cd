// safetensors reader/writer: format details, dtype decoding, error messages, the ssm fixture.
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  halfToFloat,
  parseSafetensors,
  readSafetensors,
  serializeSafetensors,
  writeSafetensors,
} from "../lib/nn/mod.ts";
import type { HostTensor } from "../lib/nn/mod.ts";
import { fixture, fixturesDir } from "./_util.ts";

/** Builds a safetensors file by hand from a header object and a data buffer. */
function build(header: unknown, data: Uint8Array, headerText?: string): Uint8Array {
  const json = new TextEncoder().encode(headerText ?? JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

Deno.test("serialize → parse round trip keeps values, shapes, order and metadata", () => {
  const a: HostTensor = {
    shape: [2, 3],
    data: new Float32Array([1, -2, 3.5, 0, 1e-30, -0]),
    dtype: "F32",
  };
  const b: HostTensor = { shape: [], data: new Float32Array([7]), dtype: "F32" };
  const c: HostTensor = { shape: [0, 4], data: new Float32Array(0), dtype: "F32" };
  const bytes = serializeSafetensors(new Map([["z.a", a], ["b", b], ["empty", c]]), {
    ssm_config: '{"x":1}',
  });
  // header length little-endian u64, data buffer 8-aligned
  const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.equal((8 + n) % 8, 0);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  assert.deepEqual(header["z.a"], { dtype: "F32", shape: [2, 3], data_offsets: [0, 24] });
  assert.deepEqual(header.b.data_offsets, [24, 28]);
  const f = parseSafetensors(bytes, "rt.safetensors");
  assert.deepEqual([...f.tensors.keys()], ["z.a", "b", "empty"]);
  assert.deepEqual(f.tensors.get("z.a")!.data, a.data);
  assert.ok(Object.is(f.tensors.get("z.a")!.data[5], -0));
  assert.deepEqual(f.tensors.get("b")!.shape, []);
  assert.deepEqual(f.tensors.get("empty")!.shape, [0, 4]);
  assert.deepEqual(f.metadata, { ssm_config: '{"x":1}' });
});

Deno.test("decodes F16, BF16, F64, I64, I32, U8 into float32", () => {
  const data = new Uint8Array(64);
  const dv = new DataView(data.buffer);
  // F16 at 0: 1, -2, 65504, 2^-24 (subnormal), +inf
  [0x3c00, 0xc000, 0x7bff, 0x0001, 0x7c00].forEach((h, i) => dv.setUint16(2 * i, h, true));
  // BF16 at 10: 1, -3, 3.140625
  [0x3f80, 0xc040, 0x4049].forEach((h, i) => dv.setUint16(10 + 2 * i, h, true));
  // F64 at 16: 0.1
  dv.setFloat64(16, 0.1, true);
  // I64 at 24: -5, 2^40
  dv.setBigInt64(24, -5n, true);
  dv.setBigInt64(32, 1n << 40n, true);
  // I32 at 40: -7; U8 at 44: 200
  dv.setInt32(40, -7, true);
  data[44] = 200;
  const f = parseSafetensors(
    build({
      h: { dtype: "F16", shape: [5], data_offsets: [0, 10] },
      bf: { dtype: "BF16", shape: [3], data_offsets: [10, 16] },
      d: { dtype: "F64", shape: [1], data_offsets: [16, 24] },
      l: { dtype: "I64", shape: [2], data_offsets: [24, 40] },
      i: { dtype: "I32", shape: [1], data_offsets: [40, 44] },
      u: { dtype: "U8", shape: [1], data_offsets: [44, 45] },
    }, data),
    "dtypes.safetensors",
  );
  assert.deepEqual([...f.tensors.get("h")!.data], [1, -2, 65504, 2 ** -24, Infinity]);
  assert.deepEqual([...f.tensors.get("bf")!.data], [1, -3, 3.140625]);
  assert.equal(f.tensors.get("d")!.data[0], Math.fround(0.1));
  assert.deepEqual([...f.tensors.get("l")!.data], [-5, 2 ** 40]);
  assert.equal(f.tensors.get("i")!.data[0], -7);
  assert.equal(f.tensors.get("u")!.data[0], 200);
  assert.equal(f.tensors.get("h")!.dtype, "F16");
  // every half value decodes like the IEEE definition (checked against float32 rounding)
  assert.equal(halfToFloat(0x3555), 0.333251953125);
  assert.ok(Number.isNaN(halfToFloat(0x7e00)));
});

Deno.test("corrupt files raise errors naming the file and the problem", () => {
  const ok = { w: { dtype: "F32", shape: [2], data_offsets: [0, 8] } };
  const data = new Uint8Array(8);
  const cases: [Uint8Array, RegExp][] = [
    [new Uint8Array(5), /bad\.st.*too short/],
    [build(null, data, '{"w": '), /bad\.st.*not UTF-8 JSON/],
    [build(null, data, "[1,2]"), /bad\.st.*not a JSON object/],
    [build({ w: { dtype: "F32", shape: [2], data_offsets: [0, 16] } }, data), /'w'.*outside/],
    [build({ w: { dtype: "F32", shape: [3], data_offsets: [0, 8] } }, data), /'w' spans 8 bytes/],
    [build({ w: { dtype: "C64", shape: [1], data_offsets: [0, 8] } }, data), /unsupported dtype/],
    [build({ w: { dtype: "F32", shape: [-2], data_offsets: [0, 8] } }, data), /invalid shape/],
    [build({ w: { dtype: "F32", shape: [2], data_offsets: [8, 0] } }, data), /outside/],
    [build({ ...ok, __metadata__: { a: 1 } }, data), /__metadata__\.a is not a string/],
  ];
  for (const [bytes, re] of cases) {
    assert.throws(() => parseSafetensors(bytes, "bad.st"), (e: Error) => {
      assert.match(e.message, /^bad\.st: /);
      assert.match(e.message, re);
      return true;
    });
  }
  // header length beyond the file
  const big = build(ok, data);
  new DataView(big.buffer).setBigUint64(0, 1000n, true);
  assert.throws(() => parseSafetensors(big, "bad.st"), /bad\.st.*runs past the end/);
  assert.throws(
    () => serializeSafetensors({ w: { shape: [3], data: new Float32Array(2), dtype: "F32" } }),
    /'w'.*do not fill/,
  );
});

Deno.test("writeSafetensors writes atomically and reads back", () => {
  const dir = Deno.makeTempDirSync();
  const path = join(dir, "w.safetensors");
  writeSafetensors(path, { a: { shape: [1], data: new Float32Array([3]), dtype: "F32" } });
  assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["w.safetensors"]);
  assert.equal(readSafetensors(path).tensors.get("a")!.data[0], 3);
  assert.throws(
    () => writeSafetensors(join(dir, "no", "such", "x.safetensors"), {}),
    /cannot write .*x\.safetensors/,
  );
  assert.throws(() => readSafetensors(join(dir, "missing.safetensors")));
  Deno.removeSync(dir, { recursive: true });
});

Deno.test({
  name: "reads the ssm fixture: 113 F32 tensors with the documented names and metadata",
  ignore: fixturesDir() === null,
  fn: () => {
    const f = readSafetensors(fixture("ssm", "weights.safetensors")!);
    assert.equal(f.tensors.size, 113);
    const shapes = Deno.readTextFileSync(fixture("ssm", "state_dict_shapes.txt")!).split("\n")
      .filter((l) => l && !l.startsWith("#")).map((l) => l.split("\t"));
    for (const [name, shape] of shapes) {
      const t = f.tensors.get(name);
      assert.ok(t, name);
      assert.equal(t.shape.join("x"), shape, name);
      assert.equal(t.dtype, "F32");
    }
    assert.equal(f.metadata.parameter_count, "8267759");
    assert.equal(JSON.parse(f.metadata.config).backbone.arch, "resnet18");
    // running variances are positive, BN weights in U(0.7, 1.3) (README §8)
    assert.ok(f.tensors.get("backbone.body.bn1.running_var")!.data.every((v) => v > 0));
    assert.ok(
      f.tensors.get("backbone.body.bn1.weight")!.data.every((v) => v >= 0.7 && v <= 1.3),
    );
  },
});
