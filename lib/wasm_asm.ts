/**
 * A very small WebAssembly assembler for the toolkit's SIMD kernels (`axpy_wasm.ts`,
 * `nn/batch_norm_wasm.ts`): functions are written as instruction bytes with named locals, and
 * {@linkcode wasmModule} wraps them in a module that imports one memory (`env.memory`) and exports
 * every function. Kernels are built at run time from a few hundred bytes, so they need no compiler
 * or build step; they run on the memory of the wasm backend (the heap), in place.
 *
 * Only what the kernels use is here: `i32`, `f32`, `f64` and `v128` values, loads and stores,
 * blocks and loops, and the SIMD opcodes named in {@linkcode op}.
 *
 * @example
 * ```ts
 * import { Fn, op, wasmModule } from "./wasm_asm.ts";
 * const f = new Fn("scale", { p: "i32", w: "f32" });
 * f.emit(f.get("p"), f.get("p"), op.f32Load(2), f.get("w"), op.f32Mul, op.f32Store(2));
 * const bytes = wasmModule([f], false);
 * ```
 *
 * @module
 */

/** A value type of the kernels. */
export type ValType = "i32" | "f32" | "f64" | "v128";

const TYPE_CODE: Record<ValType, number> = { i32: 0x7f, f32: 0x7d, f64: 0x7c, v128: 0x7b };

/** Unsigned LEB128. */
export function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n) b |= 0x80;
    out.push(b);
  } while (n);
  return out;
}

/** Signed LEB128 (32-bit values). */
export function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && !(b & 0x40)) || (n === -1 && (b & 0x40))) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

const simd = (code: number): number[] => [0xfd, ...uleb(code)];
const mem = (code: number[]) => (align: number, offset = 0): number[] => [
  ...code,
  align,
  ...uleb(offset),
];

/** Instructions (byte sequences); loads and stores take `(align log2, offset)`. */
export const op = {
  block: [0x02, 0x40],
  loop: [0x03, 0x40],
  end: [0x0b],
  br: (depth: number): number[] => [0x0c, depth],
  brIf: (depth: number): number[] => [0x0d, depth],
  i32Const: (v: number): number[] => [0x41, ...sleb(v)],
  i32Add: [0x6a],
  i32Sub: [0x6b],
  i32Mul: [0x6c],
  i32And: [0x71],
  i32Shl: [0x74],
  i32Eqz: [0x45],
  i32GeU: [0x4f],
  i32Load: mem([0x28]),
  f32Load: mem([0x2a]),
  f32Store: mem([0x38]),
  f32Add: [0x92],
  f32Mul: [0x94],
  f64Add: [0xa0],
  f64Mul: [0xa2],
  f64PromoteF32: [0xbb],
  f32DemoteF64: [0xb6],
  v128Load: mem(simd(0x00)),
  v128Store: mem(simd(0x0b)),
  /** Loads 8 bytes into the low half (two f32), zeroing the rest. */
  v128Load64Zero: mem(simd(0x5d)),
  /** Stores the low 8 bytes (lane 0 of i64x2). */
  v128Store64Lane0: (align: number, offset = 0): number[] => [
    ...simd(0x5b),
    align,
    ...uleb(offset),
    0,
  ],
  v128Zero: [...simd(0x0c), ...new Array(16).fill(0)],
  v128And: simd(0x4e),
  /** `bitselect(a, b, mask)`: bits of `a` where `mask` is set, else of `b`. */
  v128Bitselect: simd(0x52),
  i32x4Splat: simd(0x11),
  i32x4ExtractLane: (lane: number): number[] => [...simd(0x1b), lane],
  shuffle: (lanes: number[]): number[] => [...simd(0x0d), ...lanes],
  f32x4Splat: simd(0x13),
  f64x2Splat: simd(0x14),
  f32x4Gt: simd(0x44),
  f32x4Add: simd(0xe4),
  f32x4DemoteF64x2Zero: simd(0x5e),
  f64x2PromoteLowF32x4: simd(0x5f),
  f64x2Add: simd(0xf0),
  f64x2Sub: simd(0xf1),
  f64x2Mul: simd(0xf2),
  f64x2Div: simd(0xf3),
  f64x2Sqrt: simd(0xef),
  /** `pmax(a, b) = a < b ? b : a`. */
  f64x2Pmax: simd(0xf7),
} as const;

/** One function: named parameters and locals, and its instruction bytes. */
export class Fn {
  /** Export name. */
  readonly name: string;
  /** Parameter types, in order. */
  readonly params: ValType[];
  /** Extra locals' types, in order. */
  readonly locals: ValType[] = [];
  /** Instruction bytes (without the final `end`). */
  readonly code: number[] = [];
  private readonly index = new Map<string, number>();

  /** A function `name` with the parameters `params` (name → type, in order). */
  constructor(name: string, params: Record<string, ValType>) {
    this.name = name;
    this.params = Object.values(params);
    Object.keys(params).forEach((p, i) => this.index.set(p, i));
  }

  /** Declares local `name` (once). */
  local(name: string, type: ValType): void {
    if (this.index.has(name)) throw new Error(`wasm_asm: local '${name}' declared twice`);
    this.index.set(name, this.params.length + this.locals.length);
    this.locals.push(type);
  }

  private at(name: string): number {
    const i = this.index.get(name);
    if (i === undefined) throw new Error(`wasm_asm: no local '${name}' in ${this.name}`);
    return i;
  }

  /** `local.get`. */
  get(name: string): number[] {
    return [0x20, ...uleb(this.at(name))];
  }

  /** `local.set`. */
  set(name: string): number[] {
    return [0x21, ...uleb(this.at(name))];
  }

  /** `name += bytes` for an `i32` local. */
  advance(name: string, bytes: number | string): number[] {
    const step = typeof bytes === "number" ? op.i32Const(bytes) : this.get(bytes);
    return [...this.get(name), ...step, ...op.i32Add, ...this.set(name)];
  }

  /** Appends instructions. */
  emit(...parts: (number[] | readonly number[])[]): void {
    for (const p of parts) this.code.push(...p);
  }

  /** `while (local < limit) { body }` for `i32` locals (unsigned compare). */
  whileBelow(local: string, limit: string, body: () => void): void {
    this.emit(op.block, op.loop, this.get(local), this.get(limit), op.i32GeU, op.brIf(1));
    body();
    this.emit(op.br(0), op.end, op.end);
  }
}

function vec(items: number[][]): number[] {
  return [...uleb(items.length), ...items.flat()];
}

function section(id: number, body: number[]): number[] {
  return [id, ...uleb(body.length), ...body];
}

function name(s: string): number[] {
  const b = new TextEncoder().encode(s);
  return [...uleb(b.length), ...b];
}

/**
 * A module that imports `env.memory` — a shared memory of at most 65536 pages (the threaded wasm
 * build's heap) when `shared`, else any ordinary memory — and exports `fns` by name (no results).
 */
export function wasmModule(fns: Fn[], shared: boolean): Uint8Array {
  const types = fns.map((f) => [0x60, ...vec(f.params.map((t) => [TYPE_CODE[t]])), 0]);
  const limits = shared ? [0x03, 0, ...uleb(65536)] : [0x00, 0];
  const imports = [[...name("env"), ...name("memory"), 0x02, ...limits]];
  const bodies = fns.map((f) => {
    const body = [...vec(f.locals.map((t) => [1, TYPE_CODE[t]])), ...f.code, ...op.end];
    return [...uleb(body.length), ...body];
  });
  return new Uint8Array([
    ...[0, 0x61, 0x73, 0x6d, 1, 0, 0, 0],
    ...section(1, vec(types)),
    ...section(2, vec(imports)),
    ...section(3, vec(fns.map((_, i) => uleb(i)))),
    ...section(7, vec(fns.map((f, i) => [...name(f.name), 0, ...uleb(i)]))),
    ...section(10, vec(bodies)),
  ]);
}

const compiled = new Map<string, WebAssembly.Module>();
const instances = new WeakMap<WebAssembly.Memory, Map<string, WebAssembly.Exports>>();

/**
 * The exports of the module `key` (built by `build(shared)` once per key and memory kind),
 * instantiated once per memory.
 */
export function instantiateOn(
  memory: WebAssembly.Memory,
  key: string,
  build: (shared: boolean) => Uint8Array,
): WebAssembly.Exports {
  let perMemory = instances.get(memory);
  if (!perMemory) instances.set(memory, perMemory = new Map());
  let exports = perMemory.get(key);
  if (!exports) {
    const shared = memory.buffer instanceof SharedArrayBuffer;
    const modKey = `${key}:${shared}`;
    let mod = compiled.get(modKey);
    if (!mod) compiled.set(modKey, mod = new WebAssembly.Module(build(shared) as BufferSource));
    exports = new WebAssembly.Instance(mod, { env: { memory } }).exports;
    perMemory.set(key, exports);
  }
  return exports;
}

/**
 * The memory of a tfjs `wasm` backend's module (`tf.backend()` while it is active): the threaded
 * build's shared memory, or the single-threaded build's own.
 */
export function wasmBackendMemory(backend: unknown): WebAssembly.Memory {
  const wasm = (backend as {
    wasm?: { wasmMemory?: WebAssembly.Memory; asm?: { memory?: WebAssembly.Memory } };
  }).wasm;
  const memory = wasm?.wasmMemory ?? wasm?.asm?.memory;
  if (!(memory instanceof WebAssembly.Memory)) {
    throw new Error("wasm kernels: cannot find the memory of the wasm backend's module");
  }
  return memory;
}
