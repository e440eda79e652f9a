// Linear probing of a frozen backbone, as MAE's main_linprobe.py: the classifier is
// BatchNorm1d(D, affine=False, eps 1e-6) then Linear(D, C) on the backbone's pooled feature (the
// normed CLS token by default); only the classifier trains, with LARS (no weight decay by
// default, momentum 0.9), lr = blr · batch / 256 and a per-iteration warmup + half-cosine.
import type { VisionTransformer } from '../models/index.js';
import {
  F,
  autocast,
  distributed,
  nn,
  noGrad,
  optim,
  tidy,
  type AutocastOptions,
  type Device,
  type Tensor,
} from '../torch/index.js';
import { EvalTransform, FinetuneAugmentation } from '../data/transforms/index.js';
import { evaluate, type BatchSource, type EvalResult, type EvaluateOptions, type ImageTransform } from './eval.js';
import { initHead } from './pretrained.js';
import { TrainingDiverged } from './run-dir.js';
import { LINPROBE_DEFAULTS } from './defaults.js';

export interface LinearProbeOptions {
  numClasses: number;
  /** iterations (optimizer steps) per epoch, for the per-iteration schedule */
  itersPerEpoch: number;
  /** total epochs (default 90, MAE's) */
  epochs?: number;
  /** warmup epochs (default 10, MAE's) */
  warmupEpochs?: number;
  /** base lr (default 0.1, MAE's); the lr is blr · batchSize / 256 unless `lr` is given */
  blr?: number;
  /** absolute lr, instead of blr */
  lr?: number;
  /** the effective batch size (all ranks) for the linear scaling rule; required with blr */
  batchSize?: number;
  minLr?: number;
  /** LARS weight decay (default 0, MAE's) */
  weightDecay?: number;
  /** LARS momentum (default 0.9) */
  momentum?: number;
  /** std of the classifier's trunc-normal init (default 0.01, MAE's) */
  headInitStd?: number;
  /**
   * training-time batch transform; default MAE's: RandomResizedCrop (bicubic, scale 0.08–1) to
   * the backbone's image size, horizontal flip, ImageNet normalisation
   */
  transform?: ImageTransform;
  /** the feature of a prepared batch; default the pooled pre-logits feature (CLS after norm) */
  features?: (images: Tensor) => Tensor;
  /**
   * mixed precision for the frozen backbone's forward during training (the features are cast
   * back to float32 for the head); evaluation (`forward`, `evaluate`) always runs in float32
   */
  autocast?: AutocastOptions | null;
}

export interface StepResult {
  loss: number;
  /** the scheduled lr of this step (before any group's lrScale) */
  lr: number;
}

export interface LinearProbeState {
  /** the classifier's state dict (BatchNorm running statistics included), MAE's `head.*` names */
  head: Record<string, Tensor>;
  optimizer: optim.OptimizerStateDict;
}

/**
 * MAE's linear probe. The backbone is frozen (its parameters' requiresGrad set false) and always
 * runs in eval mode without grad; `train()`/`eval()` switch the classifier (its BatchNorm).
 */
export class LinearProbe {
  readonly backbone: VisionTransformer;
  /** Sequential(BatchNorm1d(D, affine false, eps 1e-6), Linear(D, C)): MAE's `head` */
  readonly head: nn.Sequential;
  readonly bn: nn.BatchNorm1d;
  readonly linear: nn.Linear;
  readonly optimizer: optim.LARS;
  readonly schedule: optim.WarmupCosine;
  readonly transform: ImageTransform;
  private readonly featureOf: (images: Tensor) => Tensor;
  private readonly amp: AutocastOptions | null;
  /** Data-parallel training: gradients averaged and BN statistics shared over this group (set with `distribute`). */
  group: distributed.ProcessGroup | null = null;

  constructor(backbone: VisionTransformer, o: LinearProbeOptions) {
    this.backbone = backbone;
    backbone.requiresGrad_(false);
    backbone.eval();
    const dim = backbone.embedDim;
    const device = backbone.cls_token.device;
    this.bn = new nn.BatchNorm1d(dim, { affine: false, eps: 1e-6 });
    this.linear = new nn.Linear(dim, o.numClasses);
    initHead(this.linear, o.headInitStd ?? 0.01);
    this.head = new nn.Sequential(this.bn, this.linear);
    if (device !== 'cpu') this.head.to(device as Device);
    const lr = o.lr ?? probeLr(o);
    this.optimizer = new optim.LARS(this.head.parameters(), {
      lr,
      weightDecay: o.weightDecay ?? LINPROBE_DEFAULTS.weightDecay,
      momentum: o.momentum ?? 0.9,
    });
    this.schedule = new optim.WarmupCosine({
      lr,
      minLr: o.minLr ?? 0,
      warmupEpochs: o.warmupEpochs ?? LINPROBE_DEFAULTS.warmupEpochs,
      epochs: o.epochs ?? LINPROBE_DEFAULTS.epochs,
      itersPerEpoch: o.itersPerEpoch,
    });
    this.transform =
      o.transform ??
      new FinetuneAugmentation({ size: backbone.patch_embed.imgSize[0], randAugment: null, erasing: null });
    this.amp = o.autocast ?? null;
    this.featureOf =
      o.features ?? ((x: Tensor): Tensor => backbone.forwardHead(backbone.forwardFeatures(x), { preLogits: true }));
  }

  /** Data-parallel over `group`: the head's BatchNorm uses the global batch, rank 0's head weights everywhere. */
  distribute(group: distributed.ProcessGroup): this {
    this.group = group;
    distributed.convertSyncBatchNorm(this.head, group);
    distributed.broadcastModule(this.head, group);
    return this;
  }

  get training(): boolean {
    return this.head.training;
  }

  /** Sets the classifier's mode; the backbone stays in eval mode. */
  train(mode = true): this {
    this.head.train(mode);
    this.backbone.eval();
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** The frozen feature of prepared images [B, D] (no grad, backbone in eval mode). */
  features(images: Tensor): Tensor {
    this.backbone.eval();
    return noGrad(() => tidy(() => this.featureOf(images)));
  }

  /** Logits of prepared images (for `evaluate`). */
  forward(images: Tensor): Tensor {
    return tidy(() => this.head.forward(this.features(images)));
  }

  /**
   * One step on raw images (uint8 NCHW from the loader): the transform, the frozen feature, then
   * `stepOnFeatures`. `iter` is the global iteration (epoch · itersPerEpoch + step).
   */
  trainStep(images: Tensor, labels: Tensor, iter: number): StepResult {
    return tidy(() => {
      const dev = this.backbone.cls_token.device;
      const x = this.transform.forward(images.to({ device: dev }));
      const amp = this.amp;
      const feats = amp ? autocast(amp, () => this.features(x)).float() : this.features(x);
      return this.stepOnFeatures(feats, labels, iter);
    });
  }

  /**
   * One step from features: lr from the schedule at `iter`, classifier in train mode,
   * cross-entropy, backward, LARS. Throws TrainingDiverged on a non-finite loss (MAE stops the run).
   */
  stepOnFeatures(features: Tensor, labels: Tensor, iter: number): StepResult {
    const lr = this.schedule.applyAt(this.optimizer, iter);
    this.head.train(true);
    const loss = tidy(() => {
      const logits = this.head.forward(features.detach());
      const l = F.crossEntropy(logits, labels.to({ device: logits.device, dtype: 'int64' }));
      this.optimizer.zeroGrad();
      l.backward();
      // data-parallel: gradients averaged over the ranks (DDP)
      if (this.group) distributed.allReduceGradients(this.optimizer.params(), this.group);
      const v = Number(l.item());
      if (!Number.isFinite(v)) throw new TrainingDiverged({ step: iter, value: v, source: 'LinearProbe' });
      this.optimizer.step();
      this.optimizer.zeroGrad();
      return v;
    });
    return { loss, lr };
  }

  /** Top-1/top-5 and loss on a loader, with the EvalTransform at the backbone's size unless given. */
  evaluate(loader: BatchSource, o: EvaluateOptions = {}): Promise<EvalResult> {
    const transform = o.transform ?? new EvalTransform({ size: this.backbone.patch_embed.imgSize[0] });
    return evaluate(this, loader, { ...o, transform });
  }

  /** What a checkpoint must hold to resume: the classifier (with BN statistics) and LARS's state. */
  stateDict(): LinearProbeState {
    return { head: Object.fromEntries(this.head.stateDict('head')), optimizer: this.optimizer.stateDict() };
  }

  loadStateDict(s: LinearProbeState): void {
    const head = s.head instanceof Map ? (s.head as Map<string, Tensor>) : new Map(Object.entries(s.head));
    const strip = new Map([...head].map(([k, v]) => [k.startsWith('head.') ? k.slice(5) : k, v]));
    this.head.loadStateDict(strip);
    this.optimizer.loadStateDict(s.optimizer);
  }
}

/** MAE's linear scaling rule for the probe: blr (default 0.1) · batchSize / 256. */
function probeLr(o: { blr?: number; batchSize?: number }): number {
  if (!(o.batchSize !== undefined && o.batchSize > 0)) {
    throw new RangeError('LinearProbe: give batchSize (the effective batch, for lr = blr · batch / 256) or lr');
  }
  return optim.lrFromBlr(o.blr ?? LINPROBE_DEFAULTS.blr, o.batchSize);
}
