/**
 * Atomic file writes: the bytes go to `path.tmp` first, which is then renamed over `path`, so a
 * reader never sees a half-written checkpoint.
 *
 * @example
 * ```ts
 * import { writeFileAtomic } from "@covid-ssm/ssm";
 * writeFileAtomic("/tmp/x.bin", new Uint8Array([1, 2, 3]));
 * ```
 *
 * @module
 */

/**
 * Writes `bytes` to `path` atomically.
 *
 * @param path destination file
 * @param bytes content
 * @throws {Error} naming the file when the write or rename fails (the temporary file is removed)
 */
export function writeFileAtomic(path: string, bytes: Uint8Array): void {
  const tmp = `${path}.tmp`;
  try {
    Deno.writeFileSync(tmp, bytes);
    Deno.renameSync(tmp, path);
  } catch (e) {
    try {
      Deno.removeSync(tmp);
    } catch {
      // the temporary file may not exist
    }
    throw new Error(`cannot write ${path}: ${(e as Error).message}`);
  }
}
