/**
 * Host-side tensors read from checkpoint files, and decoding of the element types that
 * safetensors and PyTorch storages use into float32.
 *
 * A {@linkcode HostTensor} is a plain row-major (C-contiguous) float32 array with a shape and the
 * element type it was stored with. Checkpoint readers produce them; `weights.ts` converts them
 * to tfjs variables.
 *
 * @example
 * ```ts
 * import { decodeToFloat32 } from "@covid-ssm/ssm";
 * const half = new Uint8Array([0x00, 0x3c]); // 1.0 as float16
 * console.log(decodeToFloat32(half, "F16", 1, "x.bin")[0]); // 1
 * ```
 *
 * @module
 */

/** A row-major float32 tensor held in host memory, in PyTorch layout. */
export interface HostTensor {
  /** Shape (PyTorch layout). */
  shape: number[];
  /** Row-major values. */
  data: Float32Array;
  /** Element type in the file it came from (safetensors spelling: `F32`, `F16`, `I64`, ...). */
  dtype: StorageDtype;
}

/** Element types that can be decoded into float32 (safetensors spelling). */
export type StorageDtype =
  | "F64"
  | "F32"
  | "F16"
  | "BF16"
  | "I64"
  | "I32"
  | "I16"
  | "I8"
  | "U8"
  | "BOOL";

/** Bytes per element of each {@linkcode StorageDtype}. */
export const DTYPE_SIZE: Readonly<Record<StorageDtype, number>> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

/** Whether `s` names a decodable {@linkcode StorageDtype}. */
export function isStorageDtype(s: string): s is StorageDtype {
  return Object.hasOwn(DTYPE_SIZE, s);
}

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** IEEE half-precision bits → number. */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac === 0 ? sign * Infinity : NaN;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/**
 * Decodes `count` little-endian elements of type `dtype` from `bytes` into a new Float32Array.
 *
 * @param bytes the raw little-endian data (exactly `count * DTYPE_SIZE[dtype]` bytes are read)
 * @param dtype element type
 * @param count number of elements
 * @param source file/tensor name used in error messages
 * @throws {Error} when `bytes` is too short
 */
export function decodeToFloat32(
  bytes: Uint8Array,
  dtype: StorageDtype,
  count: number,
  source: string,
): Float32Array {
  const size = DTYPE_SIZE[dtype];
  if (bytes.byteLength < count * size) {
    throw new Error(
      `${source}: ${count} ${dtype} elements need ${count * size} bytes, got ${bytes.byteLength}`,
    );
  }
  const out = new Float32Array(count);
  if (dtype === "F32" && LITTLE_ENDIAN_HOST) {
    // Copy through a byte view: the source offset need not be 4-aligned.
    new Uint8Array(out.buffer).set(bytes.subarray(0, count * 4));
    return out;
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, count * size);
  switch (dtype) {
    case "F32":
      for (let i = 0; i < count; i++) out[i] = dv.getFloat32(4 * i, true);
      break;
    case "F64":
      for (let i = 0; i < count; i++) out[i] = dv.getFloat64(8 * i, true);
      break;
    case "F16":
      for (let i = 0; i < count; i++) out[i] = halfToFloat(dv.getUint16(2 * i, true));
      break;
    case "BF16": {
      const u = new Uint32Array(out.buffer);
      for (let i = 0; i < count; i++) u[i] = dv.getUint16(2 * i, true) << 16;
      break;
    }
    case "I64":
      for (let i = 0; i < count; i++) out[i] = Number(dv.getBigInt64(8 * i, true));
      break;
    case "I32":
      for (let i = 0; i < count; i++) out[i] = dv.getInt32(4 * i, true);
      break;
    case "I16":
      for (let i = 0; i < count; i++) out[i] = dv.getInt16(2 * i, true);
      break;
    case "I8":
      for (let i = 0; i < count; i++) out[i] = dv.getInt8(i);
      break;
    case "U8":
    case "BOOL":
      for (let i = 0; i < count; i++) out[i] = dv.getUint8(i);
      break;
  }
  return out;
}

/** Number of elements of a shape (1 for a scalar). */
export function shapeSize(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}
