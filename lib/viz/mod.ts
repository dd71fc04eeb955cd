/**
 * Visualisation: prediction overlays and the RoI batch figure rendered to RGBA buffers and
 * written as PNG (pure typed arrays, no tfjs), and Plotly figure specs (RoI batch, confusion
 * matrix, precision–recall curves, training curves, metric bars) with a writer for standalone
 * offline HTML pages.
 *
 * @example
 * ```ts
 * import { renderOverlay, trainingCurvesFigure, writePlotlyHtml } from "./mod.ts";
 * const image = { width: 32, height: 32, data: new Float32Array(32 * 32).fill(0.5) };
 * const overlay = renderOverlay(image, {
 *   detections: { boxes: [4, 4, 12, 12], scores: [0.8] },
 *   classProbs: [0.2, 0.3, 0.5],
 * });
 * console.log(overlay.width, overlay.height);
 * const fig = trainingCurvesFigure([{ name: "loss", values: [1, 0.8, 0.7] }]);
 * await writePlotlyHtml("/tmp/training.html", [fig], "Training");
 * ```
 *
 * @module
 */
export * from "./canvas.ts";
export * from "./colors.ts";
export * from "./font.ts";
export * from "./overlay.ts";
export * from "./roi_batch.ts";
export * from "./plotly.ts";
export * from "./notebook.ts";
export * from "./charts.ts";
