/**
 * The paper's 12 model variants (Tables 2 and 3): ResNet18 / ResNet34 backbones truncated to 2 or
 * 3 stages, trained in three regimes — `single` (pretrained, one shared RoI box branch),
 * `parallel` (pretrained, a frozen copy of the box branch feeds S) and `scratch` (no
 * pretraining, the copy follows the segmentation branch online). Names look like
 * `r18-3-scratch`; the stage-I (segmentation-only) model a pretrained variant starts from is
 * named by its backbone, e.g. `r18-3`, and is shared by the `single` and `parallel` variants.
 *
 * @example
 * ```ts
 * import { parseVariants, VARIANTS } from "./variants.ts";
 * console.log(VARIANTS.length); // 12
 * console.log(parseVariants("r18-3-scratch,r34-2-single").map((v) => v.backbone)); // ["r18-3", "r34-2"]
 * ```
 *
 * @module
 */

/** Training regimes of the variants (stage I is not a variant). */
export type VariantRegime = "single" | "parallel" | "scratch";

/** One model variant of the ablation. */
export interface VariantSpec {
  /** Name, e.g. `r18-3-scratch`. */
  name: string;
  /** ResNet depth. */
  depth: 18 | 34;
  /** Backbone stages kept. */
  stages: 2 | 3;
  /** Regime. */
  regime: VariantRegime;
  /** Backbone name, e.g. `r18-3` (also the stage-I model's name). */
  backbone: string;
  /** Whether it starts from the stage-I model of its backbone. */
  pretrained: boolean;
}

/** The regimes in the paper's order. */
export const VARIANT_REGIMES: readonly VariantRegime[] = ["single", "parallel", "scratch"];

/** Builds a variant from its parts. */
export function variantSpec(depth: 18 | 34, stages: 2 | 3, regime: VariantRegime): VariantSpec {
  const backbone = `r${depth}-${stages}`;
  return {
    name: `${backbone}-${regime}`,
    depth,
    stages,
    regime,
    backbone,
    pretrained: regime !== "scratch",
  };
}

/** All 12 variants: regime-major (single, parallel, scratch), then ResNet18/34, then 2/3 stages. */
export const VARIANTS: readonly VariantSpec[] = VARIANT_REGIMES.flatMap((r) =>
  ([18, 34] as const).flatMap((d) => ([2, 3] as const).map((s) => variantSpec(d, s, r)))
);

/**
 * Parses a comma-separated list of variant names (`all` or empty: all 12), keeping the
 * canonical order and dropping duplicates.
 *
 * @throws {Error} naming an unknown variant and listing the valid names
 */
export function parseVariants(list: string | undefined | null): VariantSpec[] {
  if (!list || list.trim() === "" || list.trim() === "all") return [...VARIANTS];
  const wanted = new Set<string>();
  for (const raw of list.split(",")) {
    const name = raw.trim();
    if (!name) continue;
    if (!VARIANTS.some((v) => v.name === name)) {
      throw new Error(
        `--variants: unknown variant '${name}' (expected names like r18-3-scratch: ` +
          `${VARIANTS.map((v) => v.name).join(", ")})`,
      );
    }
    wanted.add(name);
  }
  if (wanted.size === 0) throw new Error("--variants: no variant named");
  return VARIANTS.filter((v) => wanted.has(v.name));
}
