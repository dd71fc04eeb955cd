import assert from "node:assert/strict";
import { Rng } from "../lib/rng.ts";

Deno.test("Rng follows the xoshiro128** recurrence (hand-computed from state [1,2,3,4])", () => {
  const r = new Rng(0);
  r.setState([1, 2, 3, 4]);
  // rotl(2*5, 7) * 9 = 1280 * 9; then s becomes [7, 0, 1026, 12288] and rotl(0, 7) * 9 = 0.
  assert.equal(r.nextUint32(), 11520);
  assert.deepEqual(r.getState(), [7, 0, 1026, 12288]);
  assert.equal(r.nextUint32(), 0);
});

Deno.test("Rng is deterministic per seed and differs between seeds", () => {
  const a = new Rng(123), b = new Rng(123), c = new Rng(124);
  const da = Array.from({ length: 50 }, () => a.nextUint32());
  const db = Array.from({ length: 50 }, () => b.nextUint32());
  const dc = Array.from({ length: 50 }, () => c.nextUint32());
  assert.deepEqual(da, db);
  assert.notDeepEqual(da, dc);
  assert.notDeepEqual(new Rng(0).getState(), new Rng(2 ** 32).getState());
});

Deno.test("Rng state round-trips through getState/setState and clone", () => {
  const r = new Rng(7);
  for (let i = 0; i < 10; i++) r.uniform();
  const saved = r.getState();
  const expected = [r.uniform(), r.int(0, 1000), r.normal(), ...r.randperm(20)];
  const restored = new Rng(999);
  restored.setState(saved);
  const again = [
    restored.uniform(),
    restored.int(0, 1000),
    restored.normal(),
    ...restored.randperm(20),
  ];
  assert.deepEqual(again, expected);
  r.setState(saved);
  const cl = r.clone();
  assert.equal(cl.uniform(), r.uniform());
});

Deno.test("Rng.setState rejects malformed states", () => {
  const r = new Rng(1);
  assert.throws(() => r.setState([1, 2, 3]), /4 integers/);
  assert.throws(() => r.setState([1, 2, 3, -1]), /4 integers/);
  assert.throws(() => r.setState([1, 2, 3, 2 ** 32]), /4 integers/);
  assert.throws(() => r.setState([0, 0, 0, 0]), /all-zero/);
  assert.throws(() => new Rng(NaN), /finite/);
});

Deno.test("Rng.uniform and Rng.int are roughly uniform (chi-square, 10 bins)", () => {
  const r = new Rng(2024);
  const n = 100_000, bins = 10;
  const cu = new Array(bins).fill(0), ci = new Array(bins).fill(0);
  for (let i = 0; i < n; i++) {
    const u = r.uniform();
    assert.ok(u >= 0 && u < 1);
    cu[Math.floor(u * bins)]++;
    const k = r.int(3, 13);
    assert.ok(Number.isInteger(k) && k >= 3 && k < 13);
    ci[k - 3]++;
  }
  const chi2 = (c: number[]) => c.reduce((s, o) => s + (o - n / bins) ** 2 / (n / bins), 0);
  // 9 degrees of freedom: P(chi2 > 27.9) = 0.001.
  assert.ok(chi2(cu) < 27.9, `uniform chi2 ${chi2(cu)}`);
  assert.ok(chi2(ci) < 27.9, `int chi2 ${chi2(ci)}`);
});

Deno.test("Rng.normal has the requested mean and standard deviation", () => {
  const r = new Rng(5);
  const n = 50_000;
  let s = 0, s2 = 0;
  for (let i = 0; i < n; i++) {
    const x = r.normal(2, 3);
    s += x;
    s2 += x * x;
  }
  const mean = s / n, std = Math.sqrt(s2 / n - mean * mean);
  assert.ok(Math.abs(mean - 2) < 0.05, `mean ${mean}`);
  assert.ok(Math.abs(std - 3) < 0.05, `std ${std}`);
});

Deno.test("Rng.randperm and Rng.choice give distinct valid indices, uniformly placed", () => {
  const r = new Rng(11);
  const p = r.randperm(100);
  assert.deepEqual([...p].sort((a, b) => a - b), Array.from({ length: 100 }, (_, i) => i));
  assert.equal(r.randperm(0).length, 0);
  const c = r.choice(50, 20);
  assert.equal(new Set(c).size, 20);
  assert.ok([...c].every((v) => v >= 0 && v < 50));
  assert.throws(() => r.choice(5, 6), /0 <= k <= n/);
  // Position 0 of randperm(4) takes each value about equally often.
  const counts = [0, 0, 0, 0];
  for (let i = 0; i < 8000; i++) counts[r.randperm(4)[0]]++;
  for (const c0 of counts) assert.ok(Math.abs(c0 - 2000) < 200, `counts ${counts}`);
  // choice(n, 1) covers every value.
  const seen = new Set<number>();
  for (let i = 0; i < 500; i++) seen.add(r.choice(10, 1)[0]);
  assert.equal(seen.size, 10);
});

Deno.test("Rng.shuffle permutes an array in place", () => {
  const arr = [1, 2, 3, 4, 5, 6, 7, 8];
  const out = new Rng(3).shuffle(arr);
  assert.equal(out, arr);
  assert.deepEqual([...arr].sort(), [1, 2, 3, 4, 5, 6, 7, 8]);
});
