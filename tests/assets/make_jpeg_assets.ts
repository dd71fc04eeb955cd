// Regenerates the JPEG test assets: a 48x40 grey pattern encoded as baseline JPEG by jpeg-js,
// and the same coefficients rewritten as progressive JPEG by `jpegtran -progressive`
// (Debian package libjpeg-turbo-progs). Run: deno run -A tests/assets/make_jpeg_assets.ts
import { encode } from "jpeg-js";
import { fileURLToPath } from "node:url";

/** The pattern drawn into the assets (also used by the tests to check the decoded values). */
export function jpegPattern(x: number, y: number): number {
  return Math.round(128 + 90 * Math.sin(x / 6) * Math.cos(y / 5));
}

if (import.meta.main) {
  const w = 48, h = 40;
  const rgba = new Uint8Array(w * h * 4);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const v = jpegPattern(x, y);
      rgba.set([v, v, v, 255], (y * w + x) * 4);
    }
  }
  const dir = fileURLToPath(new URL("./", import.meta.url));
  const jpg = encode({ width: w, height: h, data: rgba }, 90).data;
  Deno.writeFileSync(`${dir}baseline.jpg`, jpg);
  const out = new Deno.Command("jpegtran", {
    args: [
      "-progressive",
      "-copy",
      "none",
      "-outfile",
      `${dir}progressive.jpg`,
      `${dir}baseline.jpg`,
    ],
  }).outputSync();
  if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
}
