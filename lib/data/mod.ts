/**
 * The data layer: image input/output (PNG, JPEG, uncompressed DICOM CT), segmentation datasets
 * (CNCB-NCOV / MedSeg layout: lesion instances as 8-connected components measured at the model
 * size), classification datasets (COVIDx-CT split files and class-prefixed folders), transforms
 * (resize, horizontal flip) and a deterministic synthetic CT generator that writes the same file
 * formats, so one set of readers serves synthetic and real data.
 *
 * @example
 * ```ts
 * import {
 *   CNCB_LABELS,
 *   ClassificationDataset,
 *   SegmentationDataset,
 *   writeSyntheticDataset,
 * } from "./mod.ts";
 *
 * const dir = await Deno.makeTempDir();
 * await writeSyntheticDataset({ outDir: dir, nCls: 6, nSeg: 4, size: 128, seed: 1 });
 *
 * const seg = await SegmentationDataset.open({
 *   imagesDir: `${dir}/seg/images`,
 *   masksDir: `${dir}/seg/masks`,
 *   ...CNCB_LABELS,
 *   size: 128,
 * });
 * const s = await seg.get(0);
 * console.log(s.name, s.hasLesions, s.instances.map((i) => i.box));
 *
 * const cls = await ClassificationDataset.fromSplitFile(`${dir}/cls/split.txt`, `${dir}/cls`, {
 *   crop: true,
 *   size: 128,
 * });
 * console.log(cls.length, cls.classCounts());
 * await Deno.remove(dir, { recursive: true });
 * ```
 * @module
 */

export type { ByteImage, GrayImage, LabelMap } from "./image_types.ts";
export {
  decodeImage,
  decodeJpeg,
  decodeLabelMap,
  decodePng,
  detectFormat,
  encodePng,
  grayToBytes,
  type ImageFormat,
  type ImageReadOptions,
  readImage,
  readLabelMap,
  type RGBNormalization,
  toRGBData,
  writePng,
} from "./image.ts";
export {
  type CTWindow,
  decodeDicom,
  type DicomReadOptions,
  hasDicomSignature,
  LUNG_WINDOW,
  UNCOMPRESSED_TRANSFER_SYNTAXES,
} from "./dicom.ts";
export { writeFileAtomic, writeFileAtomicSync, writeTextFileAtomic } from "./atomic.ts";
export {
  type Component,
  type ComponentLabels,
  type ComponentOptions,
  connectedComponents,
} from "./components.ts";
export {
  augment,
  type AugmentOptions,
  type Box,
  flipArrayHorizontal,
  flipBoxHorizontal,
  flipTargetHorizontal,
  type ImageTarget,
  type Instance,
  resizeBilinear,
  resizeNearest,
  resizeTarget,
  scaleBoxes,
} from "./transforms.ts";
export {
  CNCB_LABELS,
  labelMapToInstances,
  type LabelScheme,
  MEDSEG_LABELS,
  type ModelSize,
  readNameList,
  resolveSize,
  type SegmentationConfig,
  SegmentationDataset,
  type SegmentationItem,
  type SegmentationSample,
} from "./segmentation.ts";
export {
  CLASS_NAMES,
  ClassificationDataset,
  type ClassificationEntry,
  type ClassificationOptions,
  type ClassificationSample,
  cropImage,
  parseClassificationSplit,
} from "./classification.ts";
export { mixSeed, Mulberry32 } from "./prng.ts";
export {
  assignClasses,
  type DrawnLesion,
  renderSlice,
  sliceSeed,
  synthesizeCT,
  type SynthesizeOptions,
  type SyntheticSlice,
} from "./synthetic.ts";
export {
  ensureSyntheticData,
  type EnsureSyntheticOptions,
  STREAM_CLS,
  STREAM_SEG,
  SYNTHETIC_VERSION,
  type SyntheticDatasetOptions,
  type SyntheticDatasetSummary,
  writeSyntheticDataset,
} from "./synthetic_dataset.ts";
export { sampleGrid, type SampleGridOptions, writeSampleGrid } from "./grid.ts";
