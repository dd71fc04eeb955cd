/**
 * Console output that tests can capture, and a progress bar on stderr: one line redrawn in place
 * when stderr is a terminal, plain periodic lines otherwise (so CI logs stay readable). Used by
 * the training loop and every CLI.
 *
 * @example
 * ```ts
 * import { ProgressBar } from "@covid-ssm/ssm";
 * const bar = new ProgressBar(3, "predict");
 * for (let i = 0; i < 3; i++) bar.tick(`file ${i}`);
 * ```
 *
 * @module
 */

/** Where a CLI writes: stdout lines, stderr lines, and raw stderr text for a live progress bar. */
export interface CliIo {
  /** A line on standard output. */
  out: (s: string) => void;
  /** A line on standard error. */
  err: (s: string) => void;
  /** Raw text on standard error (no newline added); used for the in-place progress bar. */
  errRaw?: (s: string) => void;
  /** Whether standard error is a terminal (default: asks Deno). */
  errIsTTY?: boolean;
}

/** The process console as a {@linkcode CliIo}. */
export function consoleIo(): CliIo {
  const enc = new TextEncoder();
  let tty = false;
  try {
    tty = Deno.stderr.isTerminal();
  } catch { /* not a terminal */ }
  return {
    out: (s) => console.log(s),
    err: (s) => console.error(s),
    errRaw: (s) => {
      try {
        Deno.stderr.writeSync(enc.encode(s));
      } catch { /* stderr closed: progress is best effort */ }
    },
    errIsTTY: tty,
  };
}

/** `m:ss` or `h:mm:ss`. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  const mm = h > 0 ? String(m).padStart(2, "0") : String(m);
  return `${h > 0 ? `${h}:` : ""}${mm}:${String(r).padStart(2, "0")}`;
}

/**
 * A progress bar over `total` steps: on a terminal one line redrawn in place
 * (`label [####....] 3/10 0:12 ETA 0:28 detail`); otherwise a plain line at most every
 * `intervalSeconds` (default 10) and one at the end.
 */
export class ProgressBar {
  private count = 0;
  private readonly t0 = performance.now();
  private lastLine = -Infinity;
  private readonly tty: boolean;

  /**
   * A bar at zero.
   *
   * @param total number of steps
   * @param label prefix of the line
   * @param io where to write (default the console)
   * @param intervalSeconds period of the plain lines when not on a terminal
   */
  constructor(
    readonly total: number,
    readonly label: string,
    private readonly io: CliIo = consoleIo(),
    readonly intervalSeconds = 10,
  ) {
    this.tty = (io.errIsTTY ?? false) && io.errRaw !== undefined;
  }

  /** Steps completed so far. */
  get completed(): number {
    return this.count;
  }

  /** The status line for the current count. */
  line(detail = ""): string {
    const t = (performance.now() - this.t0) / 1000;
    const frac = this.total > 0 ? Math.min(1, this.count / this.total) : 1;
    const eta = frac > 0 ? t / frac - t : 0;
    const width = 24, filled = Math.round(frac * width);
    const bar = this.tty ? ` [${"#".repeat(filled)}${".".repeat(width - filled)}]` : "";
    return `${this.label}${bar} ${this.count}/${this.total} ${formatDuration(t)}` +
      (this.count < this.total ? ` ETA ${formatDuration(eta)}` : "") +
      (detail ? `  ${detail}` : "");
  }

  /** Marks one step done; `detail` (e.g. the file name) is shown with it. */
  tick(detail = ""): void {
    this.count++;
    if (this.tty) {
      this.io.errRaw!(`\r\x1b[2K${this.line(detail)}`);
      if (this.count >= this.total) this.io.errRaw!("\n");
      return;
    }
    const now = performance.now() / 1000;
    if (this.count >= this.total || now - this.lastLine >= this.intervalSeconds) {
      this.lastLine = now;
      this.io.err(this.line(detail));
    }
  }

  /** Prints `message` on its own line without breaking the bar. */
  note(message: string): void {
    if (this.tty) this.io.errRaw!("\r\x1b[2K");
    this.io.err(message);
  }
}
