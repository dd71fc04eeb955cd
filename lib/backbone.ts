/**
 * The SSM backbone: a torchvision ResNet (18, 34 or 50) truncated after `layer2`, `layer3` or
 * `layer4`, followed by a single-level feature pyramid network (1x1 lateral conv + 3x3 output
 * conv, both with bias, no ReLU and no extra pooled level).
 *
 * Parameter names follow the authors' checkpoints: registered as `backbone` in the model, they
 * are `backbone.body.conv1.weight`, `backbone.body.layer2.0.downsample.1.running_mean`,
 * `backbone.fpn.inner_blocks.0.weight`, `backbone.fpn.layer_blocks.0.bias`, ...
 * Initialisation is torchvision's: ResNet convs kaiming-normal (fan_out, ReLU gain), BatchNorm
 * weight 1 and bias 0; FPN convs kaiming-uniform with a = 1 and zero bias.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { resnetFpnBackbone } from "@covid-ssm/ssm";
 * const backbone = resnetFpnBackbone({ depth: 18, stages: 3, seed: 0 });
 * const features = backbone.forward(tf.zeros([1, 512, 512, 3])); // [1, 32, 32, 256]
 * console.log(backbone.stride, backbone.outChannels, features.shape);
 * ```
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { Module } from "./nn/module.ts";
import { BatchNorm2d, Conv2d, maxPool2d } from "./nn/layers.ts";
import { type InitScheme, SeedSequence } from "./nn/init.ts";
import { loadStateDict, type LoadWeightsReport, readCheckpoint } from "./nn/weights.ts";
import type { HostTensor } from "./nn/host_tensor.ts";

/** Configuration of {@linkcode resnetFpnBackbone} (defaults: the paper's ResNet18, 3 stages). */
export interface ResnetFpnBackboneConfig {
  /** ResNet depth: 18 or 34 (BasicBlock) or 50 (Bottleneck). Default 18. */
  depth?: 18 | 34 | 50;
  /** Number of residual stages kept: 2 (stride 8), 3 (stride 16) or 4 (stride 32). Default 3. */
  stages?: 2 | 3 | 4;
  /** FPN output channels. Default 256. */
  fpnChannels?: number;
  /** Seed of the random initialisation. Default 0. */
  seed?: number;
}

/** Blocks per stage for each depth (torchvision). */
const LAYERS: Readonly<Record<18 | 34 | 50, readonly number[]>> = {
  18: [2, 2, 2, 2],
  34: [3, 4, 6, 3],
  50: [3, 4, 6, 3],
};

const RESNET_CONV_INIT: InitScheme = { kind: "kaimingNormalFanOut" };
const FPN_CONV_INIT: InitScheme = { kind: "kaimingUniform", a: 1 };
const ZERO: InitScheme = { kind: "constant", value: 0 };

function resnetConv(
  cin: number,
  cout: number,
  k: number,
  stride: number,
  seeds: SeedSequence,
): Conv2d {
  return new Conv2d(cin, cout, k, {
    stride,
    padding: (k - 1) / 2,
    bias: false,
    weightInit: RESNET_CONV_INIT,
    seeds,
  });
}

/** `downsample`: 1x1 strided conv (child `0`) + BatchNorm (child `1`) on the shortcut. */
export class Downsample extends Module {
  /** 1x1 strided conv without bias. */
  readonly conv: Conv2d;
  /** BatchNorm after the conv. */
  readonly bn: BatchNorm2d;
  /**
   * @param cin input channels
   * @param cout output channels
   * @param stride stride
   * @param seeds init seed source
   */
  constructor(cin: number, cout: number, stride: number, seeds: SeedSequence) {
    super();
    this.conv = this.addModule("0", resnetConv(cin, cout, 1, stride, seeds));
    this.bn = this.addModule("1", new BatchNorm2d(cout));
  }
  /** `bn(conv(x))`. */
  apply(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => this.bn.apply(this.conv.apply(x)));
  }
}

/** A residual block of a ResNet stage. */
export interface ResidualBlock extends Module {
  /** `[N,H,W,in]` → `[N,H/s,W/s,out]`. */
  apply(x: tf.Tensor4D): tf.Tensor4D;
}

/** torchvision `BasicBlock`: two 3x3 convs with BatchNorm, stride on the first (expansion 1). */
export class BasicBlock extends Module implements ResidualBlock {
  /** Channel expansion of the block's output. */
  static readonly expansion: number = 1;
  /** 3x3 conv (carries the stride). */
  readonly conv1: Conv2d;
  /** BatchNorm after conv1. */
  readonly bn1: BatchNorm2d;
  /** 3x3 conv. */
  readonly conv2: Conv2d;
  /** BatchNorm after conv2. */
  readonly bn2: BatchNorm2d;
  /** Shortcut projection when the shape changes, else null. */
  readonly downsample: Downsample | null;

  /**
   * @param inplanes input channels
   * @param planes output channels
   * @param stride stride of the first conv and the shortcut
   * @param seeds init seed source
   */
  constructor(inplanes: number, planes: number, stride: number, seeds: SeedSequence) {
    super();
    this.conv1 = this.addModule("conv1", resnetConv(inplanes, planes, 3, stride, seeds));
    this.bn1 = this.addModule("bn1", new BatchNorm2d(planes));
    this.conv2 = this.addModule("conv2", resnetConv(planes, planes, 3, 1, seeds));
    this.bn2 = this.addModule("bn2", new BatchNorm2d(planes));
    this.downsample = stride !== 1 || inplanes !== planes
      ? this.addModule("downsample", new Downsample(inplanes, planes, stride, seeds))
      : null;
  }

  /** `relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))`. */
  apply(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => {
      const y = this.bn2.apply(this.conv2.apply(this.bn1.apply(this.conv1.apply(x), "relu")));
      const identity = this.downsample ? this.downsample.apply(x) : x;
      return tf.relu(tf.add(y, identity));
    });
  }
}

/** torchvision `Bottleneck` (ResNet v1.5: stride on the 3x3 conv), expansion 4. */
export class Bottleneck extends Module implements ResidualBlock {
  /** Channel expansion of the block's output. */
  static readonly expansion: number = 4;
  /** 1x1 reduction conv. */
  readonly conv1: Conv2d;
  /** BatchNorm after conv1. */
  readonly bn1: BatchNorm2d;
  /** 3x3 conv (carries the stride). */
  readonly conv2: Conv2d;
  /** BatchNorm after conv2. */
  readonly bn2: BatchNorm2d;
  /** 1x1 expansion conv. */
  readonly conv3: Conv2d;
  /** BatchNorm after conv3. */
  readonly bn3: BatchNorm2d;
  /** Shortcut projection when the shape changes, else null. */
  readonly downsample: Downsample | null;

  /**
   * @param inplanes input channels
   * @param planes bottleneck width (output is `4 * planes`)
   * @param stride stride of the 3x3 conv and the shortcut
   * @param seeds init seed source
   */
  constructor(inplanes: number, planes: number, stride: number, seeds: SeedSequence) {
    super();
    const out = planes * Bottleneck.expansion;
    this.conv1 = this.addModule("conv1", resnetConv(inplanes, planes, 1, 1, seeds));
    this.bn1 = this.addModule("bn1", new BatchNorm2d(planes));
    this.conv2 = this.addModule("conv2", resnetConv(planes, planes, 3, stride, seeds));
    this.bn2 = this.addModule("bn2", new BatchNorm2d(planes));
    this.conv3 = this.addModule("conv3", resnetConv(planes, out, 1, 1, seeds));
    this.bn3 = this.addModule("bn3", new BatchNorm2d(out));
    this.downsample = stride !== 1 || inplanes !== out
      ? this.addModule("downsample", new Downsample(inplanes, out, stride, seeds))
      : null;
  }

  /** The bottleneck residual function plus shortcut, then ReLU. */
  apply(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => {
      let y = this.bn1.apply(this.conv1.apply(x), "relu");
      y = this.bn2.apply(this.conv2.apply(y), "relu");
      y = this.bn3.apply(this.conv3.apply(y));
      const identity = this.downsample ? this.downsample.apply(x) : x;
      return tf.relu(tf.add(y, identity));
    });
  }
}

/** A ResNet stage (`layerN`): blocks registered as children `0`, `1`, ... */
export class ResNetStage extends Module {
  /** The blocks, in order. */
  readonly blocks: ResidualBlock[] = [];
  /** Appends a block under the next index. */
  add(block: ResidualBlock): void {
    this.blocks.push(this.addModule(String(this.blocks.length), block));
  }
  /** Runs the blocks in order. */
  apply(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => this.blocks.reduce((h, b) => b.apply(h), x));
  }
}

/** Activations of every backbone stage (NHWC); `layer3`/`layer4` only when present. */
export interface BackboneStages {
  /** After conv1, bn1, ReLU and the 3x3/2 max pool (stride 4). */
  stem: tf.Tensor4D;
  /** After layer1 (stride 4). */
  layer1: tf.Tensor4D;
  /** After layer2 (stride 8). */
  layer2: tf.Tensor4D;
  /** After layer3 (stride 16), when the body has 3 or more stages. */
  layer3?: tf.Tensor4D;
  /** After layer4 (stride 32), when the body has 4 stages. */
  layer4?: tf.Tensor4D;
  /** The FPN output (the backbone's output). */
  fpn: tf.Tensor4D;
}

/** The truncated ResNet trunk (`backbone.body`). */
export class ResNetBody extends Module {
  /** 7x7/2 stem conv. */
  readonly conv1: Conv2d;
  /** Stem BatchNorm. */
  readonly bn1: BatchNorm2d;
  /** `layer1` ... `layer{stages}`. */
  readonly layers: ResNetStage[];
  /** Output channels of the last kept stage. */
  readonly outChannels: number;
  /** Output stride of the last kept stage. */
  readonly stride: number;

  /**
   * @param depth 18, 34 or 50
   * @param stages residual stages kept (2-4)
   * @param seeds init seed source
   */
  constructor(readonly depth: 18 | 34 | 50, readonly stages: number, seeds: SeedSequence) {
    super();
    if (![18, 34, 50].includes(depth)) {
      throw new Error(`ResNet depth must be 18, 34 or 50, got ${depth}`);
    }
    if (![2, 3, 4].includes(stages)) throw new Error(`stages must be 2, 3 or 4, got ${stages}`);
    this.conv1 = this.addModule("conv1", resnetConv(3, 64, 7, 2, seeds));
    this.bn1 = this.addModule("bn1", new BatchNorm2d(64));
    const bottleneck = depth === 50;
    const expansion = bottleneck ? Bottleneck.expansion : BasicBlock.expansion;
    let inplanes = 64;
    this.layers = [];
    for (let s = 0; s < stages; s++) {
      const planes = 64 * 2 ** s;
      const stage = new ResNetStage();
      for (let b = 0; b < LAYERS[depth][s]; b++) {
        const stride = b === 0 && s > 0 ? 2 : 1;
        stage.add(
          bottleneck
            ? new Bottleneck(inplanes, planes, stride, seeds)
            : new BasicBlock(inplanes, planes, stride, seeds),
        );
        inplanes = planes * expansion;
      }
      this.layers.push(this.addModule(`layer${s + 1}`, stage));
    }
    this.outChannels = inplanes;
    this.stride = 4 * 2 ** (stages - 1);
  }

  /** conv1 → bn1 → ReLU → max pool 3x3/2 (padding 1, −∞). */
  stem(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => maxPool2d(this.bn1.apply(this.conv1.apply(x), "relu"), 3, 2, 1));
  }

  /** Every stage's output: `[stem, layer1, ..., layer{stages}]` (caller disposes). */
  stageOutputs(x: tf.Tensor4D): tf.Tensor4D[] {
    const outs = [this.stem(x)];
    for (const layer of this.layers) outs.push(layer.apply(outs[outs.length - 1]));
    return outs;
  }

  /** The last stage's output. */
  apply(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => this.layers.reduce((h, layer) => layer.apply(h), this.stem(x)));
  }
}

/**
 * Single-level torchvision `FeaturePyramidNetwork` (authors' names): `inner_blocks.0` (1x1 conv)
 * and `layer_blocks.0` (3x3 conv, padding 1), both with bias. With one level there is no top-down
 * addition, so the output is `layer(inner(x))`.
 */
export class SingleLevelFpn extends Module {
  /** Lateral 1x1 conv. */
  readonly inner: Conv2d;
  /** Output 3x3 conv. */
  readonly layer: Conv2d;

  /**
   * @param inChannels channels of the body output
   * @param outChannels FPN channels
   * @param seeds init seed source
   */
  constructor(inChannels: number, readonly outChannels: number, seeds: SeedSequence) {
    super();
    const opts = { weightInit: FPN_CONV_INIT, biasInit: ZERO, seeds };
    const inner = this.addModule("inner_blocks", new Module());
    this.inner = inner.addModule("0", new Conv2d(inChannels, outChannels, 1, opts));
    const layer = this.addModule("layer_blocks", new Module());
    this.layer = layer.addModule(
      "0",
      new Conv2d(outChannels, outChannels, 3, { ...opts, padding: 1 }),
    );
  }

  /** `[N,H,W,in]` → `[N,H,W,out]`. */
  apply(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => this.layer.apply(this.inner.apply(x)));
  }
}

/** ResNet body + single-level FPN, registered in the model as `backbone`. */
export class ResnetFpnBackbone extends Module {
  /** The truncated ResNet (`body`). */
  readonly body: ResNetBody;
  /** The FPN (`fpn`). */
  readonly fpn: SingleLevelFpn;
  /** Channels of the output feature map. */
  readonly outChannels: number;
  /** Output stride (8, 16 or 32). */
  readonly stride: number;

  /** @param config depth, stages, FPN channels and seed */
  constructor(readonly config: Required<ResnetFpnBackboneConfig>) {
    super();
    const seeds = new SeedSequence(config.seed);
    this.body = this.addModule("body", new ResNetBody(config.depth, config.stages, seeds));
    this.fpn = this.addModule(
      "fpn",
      new SingleLevelFpn(this.body.outChannels, config.fpnChannels, seeds),
    );
    this.outChannels = config.fpnChannels;
    this.stride = this.body.stride;
  }

  /** Normalised images `[N,H,W,3]` → the FPN feature map `[N,H/stride,W/stride,fpnChannels]`. */
  forward(imagesNHWC: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => this.fpn.apply(this.body.apply(imagesNHWC)));
  }

  /** Every stage's activation plus the FPN output, for inspection (caller disposes them all). */
  forwardStages(imagesNHWC: tf.Tensor4D): BackboneStages {
    const outs = this.body.stageOutputs(imagesNHWC);
    const fpn = this.fpn.apply(outs[outs.length - 1]);
    return {
      stem: outs[0],
      layer1: outs[1],
      layer2: outs[2],
      ...(outs[3] ? { layer3: outs[3] } : {}),
      ...(outs[4] ? { layer4: outs[4] } : {}),
      fpn,
    };
  }
}

/**
 * Builds the SSM backbone with torchvision's initialisation.
 *
 * @param config depth (18), stages (3), fpnChannels (256), seed (0)
 */
export function resnetFpnBackbone(config: ResnetFpnBackboneConfig = {}): ResnetFpnBackbone {
  return new ResnetFpnBackbone({
    depth: config.depth ?? 18,
    stages: config.stages ?? 3,
    fpnChannels: config.fpnChannels ?? 256,
    seed: config.seed ?? 0,
  });
}

/**
 * Loads ImageNet-pretrained torchvision ResNet weights (names `conv1.weight`,
 * `layer1.0.conv1.weight`, ..., as in `torchvision.models.resnet18().state_dict()`) from a
 * safetensors (or `.pth`) file into `backbone.body`. `fc.*` and the stages beyond the
 * truncation are ignored; the FPN keeps its initialisation.
 *
 * @param backbone the backbone
 * @param path safetensors or `.pth` file with torchvision ResNet names
 * @returns the load report (metadata; `missing`/`unexpected` are empty on success)
 * @throws {Error} naming the file when a body parameter is missing or mis-shaped, or a name is
 *   not a ResNet name
 */
export function loadBackboneImageNet(backbone: ResnetFpnBackbone, path: string): LoadWeightsReport {
  const { stateDict, metadata } = readCheckpoint(path);
  const kept = new Map<string, HostTensor>();
  const unknown: string[] = [];
  for (const [name, t] of stateDict) {
    const m = /^layer(\d+)\./.exec(name);
    if (name.startsWith("fc.") || (m && Number(m[1]) > backbone.body.stages)) continue;
    if (/^(conv1|bn1|layer\d+)\./.test(name)) kept.set(name, t);
    else if (!name.endsWith("num_batches_tracked")) unknown.push(name);
  }
  if (unknown.length > 0) {
    throw new Error(
      `${path}: not a torchvision ResNet state dict: unexpected key(s) ${unknown.join(", ")}`,
    );
  }
  return { metadata, ...loadStateDict(backbone.body, kept, { strict: true }, path) };
}
