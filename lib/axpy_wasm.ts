/**
 * A WebAssembly SIMD `axpy` (`dst[i] += w * src[i]`) on a given memory, bitwise equal to the
 * JavaScript loop `dst[d + i] += w * src[s + i]` over `Float32Array`s: JavaScript computes
 * `w * src[i]` exactly in float64, adds in float64 and rounds to float32 when it stores; the
 * kernel does the same with `f64x2` lanes (promote, multiply, add, demote), four floats per step.
 * It is about five times faster than the JavaScript loop, so the `js` RoIAlign engine
 * (`roi_align_js.ts`) uses it whenever its arrays live on the wasm backend's heap, without any
 * change to its results.
 *
 * The module is assembled here from its instructions (a few hundred bytes), so it needs no build
 * step: {@linkcode axpyModuleBytes} gives the bytes for a shared (threaded build) or an ordinary
 * memory, and {@linkcode axpyKernel} instantiates them on a memory.
 *
 * @example
 * ```ts
 * import { axpyKernel } from "./axpy_wasm.ts";
 * const memory = new WebAssembly.Memory({ initial: 1 });
 * const axpy = axpyKernel(memory);
 * const heap = new Float32Array(memory.buffer);
 * heap.set([1, 2, 3, 4], 0); // dst at byte 0
 * heap.set([10, 20, 30, 40], 4); // src at byte 16
 * axpy(0, 16, 0.5, 4); // heap[0..4] = 6, 12, 18, 24
 * ```
 *
 * @module
 */

/** `dst[i] += w * src[i]` for `0 <= i < n`; `dst`, `src` are byte addresses in the memory. */
export type AxpyKernel = (dst: number, src: number, w: number, n: number) => void;

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n) b |= 0x80;
    out.push(b);
  } while (n);
  return out;
}

const vec = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()];
const section = (id: number, body: number[]): number[] => [id, ...uleb(body.length), ...body];
const name = (s: string): number[] => [...uleb(s.length), ...new TextEncoder().encode(s)];

// Opcodes (core and the 0xfd SIMD prefix).
const I32 = 0x7f, F32 = 0x7d, V128 = 0x7b;
const get = (i: number): number[] => [0x20, i];
const set = (i: number): number[] => [0x21, i];
const simd = (op: number): number[] => [0xfd, ...uleb(op)];
const memarg = (align: number): number[] => [align, 0];
const V128_LOAD = simd(0x00), V128_STORE = simd(0x0b);
const SHUFFLE = simd(0x0d), F64X2_SPLAT = simd(0x14);
const DEMOTE = simd(0x5e), PROMOTE_LOW = simd(0x5f);
const F64X2_ADD = simd(0xf0), F64X2_MUL = simd(0xf2);
const BLOCK = [0x02, 0x40], LOOP = [0x03, 0x40], END = 0x0b;
const I32_CONST = 0x41, I32_ADD = 0x6a, I32_SUB = 0x6b, I32_AND = 0x71, I32_SHL = 0x74;
const I32_GE_U = 0x4f, I32_EQZ = 0x45, BR = 0x0c, BR_IF = 0x0d;
const F32_LOAD = 0x2a, F32_STORE = 0x38, F64_PROMOTE = 0xbb, F32_DEMOTE = 0xb6;
const F64_ADD = 0xa0, F64_MUL = 0xa2;

/** Locals: 0 dst, 1 src, 2 w (params), 3 n, 4 end, 5 w as f64x2, 6 src lanes, 7 dst lanes. */
function axpyBody(): number[] {
  const c: number[] = [];
  // end = dst + (n & ~3) * 4; wv = f64x2.splat(w)
  c.push(...get(0), ...get(3), I32_CONST, 0x7c, I32_AND, I32_CONST, 2, I32_SHL, I32_ADD, ...set(4));
  c.push(...get(2), F64_PROMOTE, ...F64X2_SPLAT, ...set(5));
  // four floats per step
  c.push(...BLOCK, ...LOOP, ...get(0), ...get(4), I32_GE_U, BR_IF, 1);
  c.push(...get(0)); // the store's address
  c.push(...get(1), ...V128_LOAD, ...memarg(2), ...set(6));
  c.push(...get(0), ...V128_LOAD, ...memarg(2), ...set(7));
  const high = (i: number) => [
    ...get(i),
    ...get(i),
    ...SHUFFLE,
    ...[8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15],
  ];
  // lanes 0-1 and 2-3: demote(promote(dst) + promote(src) * w)
  for (const part of [(i: number) => get(i), high]) {
    c.push(...part(7), ...PROMOTE_LOW, ...part(6), ...PROMOTE_LOW, ...get(5), ...F64X2_MUL);
    c.push(...F64X2_ADD, ...DEMOTE);
  }
  c.push(...SHUFFLE, ...[0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23]);
  c.push(...V128_STORE, ...memarg(2));
  c.push(
    ...get(0),
    I32_CONST,
    16,
    I32_ADD,
    ...set(0),
    ...get(1),
    I32_CONST,
    16,
    I32_ADD,
    ...set(1),
  );
  c.push(BR, 0, END, END);
  // the last n & 3 floats one by one
  c.push(...get(3), I32_CONST, 3, I32_AND, ...set(3));
  c.push(...BLOCK, ...LOOP, ...get(3), I32_EQZ, BR_IF, 1);
  c.push(...get(0), ...get(0), F32_LOAD, ...memarg(2), F64_PROMOTE);
  c.push(...get(1), F32_LOAD, ...memarg(2), F64_PROMOTE, ...get(2), F64_PROMOTE, F64_MUL, F64_ADD);
  c.push(F32_DEMOTE, F32_STORE, ...memarg(2));
  c.push(...get(0), I32_CONST, 4, I32_ADD, ...set(0), ...get(1), I32_CONST, 4, I32_ADD, ...set(1));
  c.push(...get(3), I32_CONST, 1, I32_SUB, ...set(3), BR, 0, END, END, END);
  const body = [...vec([[1, I32], [3, V128]]), ...c];
  return [...uleb(body.length), ...body];
}

/**
 * The kernel module's bytes. It imports `env.memory`: a shared memory of at most 65536 pages (the
 * threaded wasm build's heap) when `shared`, else any ordinary memory; it exports `axpy`.
 */
export function axpyModuleBytes(shared: boolean): Uint8Array {
  const type = section(1, vec([[0x60, ...vec([[I32], [I32], [F32], [I32]]), 0]]));
  const limits = shared ? [0x03, 0, ...uleb(65536)] : [0x00, 0];
  const imports = section(2, vec([[...name("env"), ...name("memory"), 0x02, ...limits]]));
  const funcs = section(3, vec([[0]]));
  const exports = section(7, vec([[...name("axpy"), 0, 0]]));
  const code = section(10, vec([axpyBody()]));
  const header = [0, 0x61, 0x73, 0x6d, 1, 0, 0, 0];
  return new Uint8Array([...header, ...type, ...imports, ...funcs, ...exports, ...code]);
}

const modules = new Map<boolean, WebAssembly.Module>();
const kernels = new WeakMap<WebAssembly.Memory, AxpyKernel>();

/** The kernel on `memory` (instantiated once per memory). */
export function axpyKernel(memory: WebAssembly.Memory): AxpyKernel {
  let k = kernels.get(memory);
  if (!k) {
    const shared = memory.buffer instanceof SharedArrayBuffer;
    let mod = modules.get(shared);
    if (!mod) {
      mod = new WebAssembly.Module(axpyModuleBytes(shared) as BufferSource);
      modules.set(shared, mod);
    }
    const instance = new WebAssembly.Instance(mod, { env: { memory } });
    k = instance.exports.axpy as AxpyKernel;
    kernels.set(memory, k);
  }
  return k;
}
