// coco-eval CLI: summary lines of a pycocotools fixture case, --json, and error messages.
import assert from "node:assert/strict";
import { join } from "node:path";
import { fixturesDir } from "./_util.ts";
import { COCO_EVAL_USAGE, cocoEvalMain } from "../lib/cli/coco_eval.ts";

function run(args: string[]): { code: number; out: string; err: string } {
  const out: string[] = [], err: string[] = [];
  const code = cocoEvalMain(args, { out: (s) => out.push(s), err: (s) => err.push(s) });
  return { code, out: out.join("\n"), err: err.join("\n") };
}

const GT = {
  images: [{ id: 1, height: 50, width: 50 }],
  categories: [{ id: 1, name: "lesion" }],
  annotations: [{
    id: 1,
    image_id: 1,
    category_id: 1,
    iscrowd: 0,
    area: 100,
    bbox: [0, 0, 10, 10],
  }],
};

Deno.test("coco-eval prints the summary, --json, --help and clear errors", () => {
  const dir = Deno.makeTempDirSync();
  try {
    const gt = join(dir, "gt.json"), res = join(dir, "res.json"), bad = join(dir, "bad.json");
    Deno.writeTextFileSync(gt, JSON.stringify(GT));
    Deno.writeTextFileSync(
      res,
      JSON.stringify([{ image_id: 1, category_id: 1, score: 0.9, bbox: [0, 0, 10, 10] }]),
    );
    Deno.writeTextFileSync(bad, "{ not json");
    const ok = run([gt, res, "--iou-type", "bbox"]);
    assert.equal(ok.code, 0, ok.err);
    const lines = ok.out.split("\n");
    assert.equal(lines.length, 13);
    assert.equal(
      lines[1],
      " Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 1.000",
    );
    assert.equal(
      lines[6],
      " Average Precision  (AP) @[ IoU=0.50:0.95 | area= large | maxDets=100 ] = -1.000",
    );
    const js = run([gt, res, "--iou-type", "bbox", "--max-dets", "1,10,128", "--json"]);
    assert.equal(js.code, 0, js.err);
    const parsed = JSON.parse(js.out);
    assert.equal(parsed.stats[0], -1); // AP@[.5:.95] looks up maxDets=100
    assert.ok(Math.abs(parsed.stats[1] - 1) < 1e-12); // 1 / (1 + eps), as pycocotools
    assert.equal(run(["--help"]).out, COCO_EVAL_USAGE);
    const e1 = run([gt, bad]);
    assert.equal(e1.code, 1);
    assert.match(e1.err, /results file .*bad\.json is not valid JSON/);
    const e2 = run([gt, join(dir, "missing.json")]);
    assert.match(e2.err, /cannot read results file .*missing\.json/);
    const e3 = run([gt, res]); // segm needs segmentation in the ground truth
    assert.equal(e3.code, 1);
    assert.match(e3.err, /gt\.json: annotations\[0\]: "segmentation" is missing/);
    assert.equal(run([gt, res, "--iou-type", "keypoints"]).code, 2);
    assert.match(run([gt, res, "--max-dets", "1,x"]).err, /--max-dets/);
    assert.equal(run([gt]).code, 2);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test({
  name: "coco-eval reproduces pycocotools' printed summary of case2 (segm)",
  ignore: !fixturesDir(),
  fn() {
    const c = JSON.parse(Deno.readTextFileSync(join(fixturesDir()!, "coco", "case2_random.json")));
    const dir = Deno.makeTempDirSync();
    try {
      const gt = join(dir, "gt.json"), res = join(dir, "res.json");
      Deno.writeTextFileSync(
        gt,
        JSON.stringify({
          images: c.images,
          categories: c.categories,
          annotations: c.gts.map((g: Record<string, unknown>) => ({ ...g, segmentation: g.rle })),
        }),
      );
      Deno.writeTextFileSync(
        res,
        JSON.stringify(c.dets.map((d: Record<string, unknown>) => ({
          image_id: d.image_id,
          category_id: d.category_id,
          score: d.score,
          segmentation: d.rle_compressed,
        }))),
      );
      const r = run([gt, res]);
      assert.equal(r.code, 0, r.err);
      const segm = c.evaluations.find((e: { name: string }) => e.name === "segm");
      assert.deepEqual(r.out.split("\n").slice(1), segm.summary_lines);
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
});
