// Shared helpers for the test suite: where the fixtures and the development data live.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const repoRoot = fileURLToPath(new URL("../", import.meta.url));

/** `../shared/fixtures` beside the repository (or `SSM_FIXTURES`), or null when absent. */
export function fixturesDir(): string | null {
  const dir = Deno.env.get("SSM_FIXTURES") ?? join(repoRoot, "..", "shared", "fixtures");
  return existsSync(dir) ? dir : null;
}

/** `../shared/data` beside the repository (or `SSM_SHARED_DATA`), or null when absent. */
export function sharedDataDir(): string | null {
  const dir = Deno.env.get("SSM_SHARED_DATA") ?? join(repoRoot, "..", "shared", "data");
  return existsSync(dir) ? dir : null;
}

/** Path of a fixture file, or null (with a printed skip message) when the fixtures are absent. */
export function fixture(...parts: string[]): string | null {
  const dir = fixturesDir();
  if (!dir) {
    console.warn(`skipping: ../shared/fixtures is absent (needed: ${parts.join("/")})`);
    return null;
  }
  return join(dir, ...parts);
}

/** Reads and parses a JSON fixture, or returns null when the fixtures are absent. */
export function readFixtureJson<T = unknown>(...parts: string[]): T | null {
  const p = fixture(...parts);
  return p ? JSON.parse(Deno.readTextFileSync(p)) as T : null;
}

/** Absolute path of the repository root. */
export const REPO_ROOT: string = repoRoot;

/** A fresh-random standard-normal source whose start seed goes into failure messages. */
export interface NormalSource {
  /** The seed the source started from (print it to reproduce a failure). */
  readonly seed: number;
  /** `n` standard-normal float32 values (xorshift32 + Box-Muller). */
  randn(n: number): Float32Array;
  /** A `{ shape, values }` pair of standard-normal values. */
  data(...shape: number[]): { shape: number[]; values: Float32Array };
}

/** A {@linkcode NormalSource} seeded from the clock (mixed with `salt`). */
export function normalSource(salt: number): NormalSource {
  const start = (Date.now() ^ salt) >>> 0 || 1;
  let s = start;
  const next = () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return ((s >>> 0) + 0.5) / 4294967296;
  };
  const randn = (n: number) => {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      out[i] = Math.sqrt(-2 * Math.log(next())) * Math.cos(2 * Math.PI * next());
    }
    return out;
  };
  return {
    seed: start,
    randn,
    data: (...shape: number[]) => ({ shape, values: randn(shape.reduce((a, b) => a * b, 1)) }),
  };
}
