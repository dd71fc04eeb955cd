/**
 * Atomic file writes: data goes to `<path>.tmp` first and is renamed over `<path>` only when
 * complete, so a crash never leaves a half-written file behind.
 *
 * @example
 * ```ts
 * import { writeFileAtomic } from "./atomic.ts";
 * await writeFileAtomic("/tmp/example.bin", new Uint8Array([1, 2, 3]));
 * ```
 * @module
 */

/** Writes `bytes` to `path` atomically (temporary file + rename). */
export async function writeFileAtomic(path: string, bytes: Uint8Array): Promise<void> {
  const tmp = `${path}.tmp`;
  try {
    await Deno.writeFile(tmp, bytes);
    await Deno.rename(tmp, path);
  } catch (err) {
    await Deno.remove(tmp).catch(() => {});
    throw new Error(`cannot write ${path}: ${(err as Error).message}`, { cause: err });
  }
}

/** Writes `text` to `path` atomically (temporary file + rename). */
export async function writeTextFileAtomic(path: string, text: string): Promise<void> {
  await writeFileAtomic(path, new TextEncoder().encode(text));
}

/** Synchronous variant of {@linkcode writeFileAtomic}. */
export function writeFileAtomicSync(path: string, bytes: Uint8Array): void {
  const tmp = `${path}.tmp`;
  try {
    Deno.writeFileSync(tmp, bytes);
    Deno.renameSync(tmp, path);
  } catch (err) {
    try {
      Deno.removeSync(tmp);
    } catch { /* nothing to clean */ }
    throw new Error(`cannot write ${path}: ${(err as Error).message}`, { cause: err });
  }
}
