// End-to-end fine-tuning of a ViT classifier, as MAE's main_finetune.py: AdamW (betas 0.9/0.999)
// over layer-wise lr-decay groups (lr-decay.ts), lr = blr · batch / 256 with a per-iteration
// warmup + half-cosine down to minLr, timm's training augmentation (RandAugment, random
// erasing) then mixup/cutmix with label smoothing and the soft-target cross-entropy.
import type { VisionTransformer } from '../models/index.js';
import { F, autocast, distributed, nn, optim, tidy, type AutocastOptions, type Tensor } from '../torch/index.js';
import {
  EvalTransform,
  FinetuneAugmentation,
  Mixup,
  type FinetuneAugmentationOptions,
  type MixupOptions,
} from '../data/transforms/index.js';
import { evaluate, type BatchSource, type EvalResult, type EvaluateOptions, type ImageTransform } from './eval.js';
import { paramGroupsLrd, type LayerDecayGroup } from './lr-decay.js';
import { initHead } from './pretrained.js';
import { TrainingDiverged } from './run-dir.js';
import { FINETUNE_DEFAULTS } from './defaults.js';
import type { StepResult } from './linprobe.js';

/** timm's SoftTargetCrossEntropy: mean over rows of Σ_c −target·log_softmax(logits). */
export function softTargetCrossEntropy(logits: Tensor, target: Tensor): Tensor {
  return tidy(() => F.logSoftmax(logits, -1).mul(target).sum(-1).neg().mean());
}

export interface FinetunerOptions {
  /** iterations (optimizer steps) per epoch, for the per-iteration schedule */
  itersPerEpoch: number;
  /** total epochs (default 100, MAE's ViT-B recipe) */
  epochs?: number;
  /** warmup epochs (default 5) */
  warmupEpochs?: number;
  /** base lr (default 5e-4); the lr is blr · batchSize / 256 unless `lr` is given */
  blr?: number;
  lr?: number;
  /** effective batch size (all ranks) for the linear scaling rule; required with blr */
  batchSize?: number;
  /** final lr of the cosine (default 1e-6, MAE's) */
  minLr?: number;
  /** AdamW weight decay of the ≥2-D weights (default 0.05) */
  weightDecay?: number;
  /** layer-wise lr decay (default 0.65, MAE's ViT-B recipe; 1 turns it off) */
  layerDecay?: number;
  betas?: [number, number];
  /** clip the gradients' global norm to this (default none, as MAE) */
  clipGrad?: number | null;
  /**
   * mixup/cutmix settings (timm's defaults: mixup 0.8, cutmix 1.0, switch 0.5); null for none,
   * then the loss is cross-entropy with `labelSmoothing` on the hard labels
   */
  mixup?: Omit<MixupOptions, 'numClasses' | 'labelSmoothing'> | null;
  /** label smoothing (default 0.1) */
  labelSmoothing?: number;
  /**
   * training augmentation: options of FinetuneAugmentation (default: its defaults at the model's
   * image size), any batch transform, or null for none (float input as given)
   */
  augmentation?: FinetuneAugmentationOptions | ImageTransform | null;
  /** std of the head's trunc-normal re-init (default 2e-5, MAE's); null keeps the head as it is */
  headInitStd?: number | null;
  /**
   * Make every parameter trainable first (default true): MAE fine-tunes all of them, the position
   * embedding included (it is a learnt parameter in timm's model), while our pre-training keeps
   * the sin-cos table and possibly the patch embedding frozen.
   */
  trainAll?: boolean;
  /** mixed precision for the forward (the loss, backward and AdamW stay float32); evaluation runs in float32 */
  autocast?: AutocastOptions | null;
}

export interface FinetunerState {
  /** the model's state dict, timm's names */
  model: Record<string, Tensor>;
  optimizer: optim.OptimizerStateDict;
}

/** MAE's fine-tuning loop pieces around a VisionTransformer with a classification head. */
export class Finetuner {
  readonly model: VisionTransformer;
  readonly numClasses: number;
  readonly groups: LayerDecayGroup[];
  readonly optimizer: optim.AdamW;
  readonly schedule: optim.WarmupCosine;
  readonly augmentation: ImageTransform | null;
  readonly mixup: Mixup | null;
  readonly labelSmoothing: number;
  readonly clipGrad: number | null;
  readonly amp: AutocastOptions | null;
  /** Data-parallel training: gradients averaged over this group (set with `distribute`). */
  group: distributed.ProcessGroup | null = null;

  constructor(model: VisionTransformer, o: FinetunerOptions) {
    if (!(model.head instanceof nn.Linear)) {
      throw new TypeError('Finetuner: the model needs a classification head (build it with numClasses > 0)');
    }
    this.model = model;
    this.numClasses = model.head.outFeatures;
    if (o.trainAll ?? true) model.requiresGrad_(true);
    if (o.headInitStd !== null) initHead(model.head, o.headInitStd ?? 2e-5);
    this.groups = paramGroupsLrd(model, {
      weightDecay: o.weightDecay ?? FINETUNE_DEFAULTS.weightDecay,
      layerDecay: o.layerDecay ?? FINETUNE_DEFAULTS.layerDecay,
    });
    const lr = o.lr ?? lrOf(o);
    this.optimizer = new optim.AdamW(
      this.groups.map((g) => ({
        params: g.params,
        lrScale: g.lrScale,
        weightDecay: g.weightDecay,
        groupName: g.groupName,
      })),
      { lr, betas: o.betas ?? [...FINETUNE_DEFAULTS.betas] },
    );
    this.schedule = new optim.WarmupCosine({
      lr,
      minLr: o.minLr ?? 1e-6,
      warmupEpochs: o.warmupEpochs ?? FINETUNE_DEFAULTS.warmupEpochs,
      epochs: o.epochs ?? FINETUNE_DEFAULTS.epochs,
      itersPerEpoch: o.itersPerEpoch,
    });
    this.labelSmoothing = o.labelSmoothing ?? FINETUNE_DEFAULTS.labelSmoothing;
    this.mixup =
      o.mixup === null
        ? null
        : new Mixup({ ...o.mixup, numClasses: this.numClasses, labelSmoothing: this.labelSmoothing });
    const aug = o.augmentation;
    if (aug === null) this.augmentation = null;
    else if (aug !== undefined && typeof (aug as ImageTransform).forward === 'function')
      this.augmentation = aug as ImageTransform;
    else
      this.augmentation = new FinetuneAugmentation({
        size: model.patch_embed.imgSize[0],
        ...(aug as FinetuneAugmentationOptions | undefined),
      });
    this.clipGrad = o.clipGrad ?? null;
    this.amp = o.autocast ?? null;
  }

  /**
   * One training step on a loader batch (uint8 NCHW, int64 labels): augmentation, mixup/cutmix
   * (or smoothed hard labels), then `stepOn`. `iter` is the global iteration. Mixup needs an even
   * batch (use dropLast, as MAE does).
   */
  trainStep(images: Tensor, labels: Tensor, iter: number): StepResult {
    return tidy(() => {
      const dev = this.model.cls_token.device;
      let x = images.to({ device: dev });
      if (this.augmentation) x = this.augmentation.forward(x);
      const y = labels.to({ device: dev, dtype: 'int64' });
      if (!this.mixup) return this.stepOn(x, y, iter);
      const mixed = this.mixup.forward(x, y);
      return this.stepOn(mixed.x, mixed.target, iter);
    });
  }

  /**
   * One step on prepared float images: lr from the schedule at `iter`, the model in train mode,
   * the soft-target cross-entropy (float [B, C] targets) or cross-entropy with label smoothing
   * (int64 [B] labels), backward, optional clipping, AdamW. Throws TrainingDiverged on a non-finite loss.
   */
  stepOn(x: Tensor, target: Tensor, iter: number): StepResult {
    const lr = this.schedule.applyAt(this.optimizer, iter);
    this.model.train(true);
    const loss = tidy(() => {
      const amp = this.amp;
      const logits = amp ? autocast(amp, () => this.model.forward(x)).float() : this.model.forward(x);
      const l =
        target.ndim === 2
          ? softTargetCrossEntropy(logits, target.to({ dtype: logits.dtype }))
          : F.crossEntropy(logits, target.to({ dtype: 'int64' }), { labelSmoothing: this.labelSmoothing });
      const v = Number(l.item());
      if (!Number.isFinite(v)) throw new TrainingDiverged({ step: iter, value: v, source: 'Finetuner' });
      this.optimizer.zeroGrad();
      l.backward();
      // data-parallel: gradients averaged over the ranks (DDP)
      if (this.group) distributed.allReduceGradients(this.optimizer.params(), this.group);
      if (this.clipGrad !== null) optim.clipGradNorm(this.optimizer.params(), this.clipGrad);
      this.optimizer.step();
      this.optimizer.zeroGrad();
      return v;
    });
    return { loss, lr };
  }

  /** Data-parallel over `group`: rank 0's weights everywhere, BatchNorm (if any) over the global batch. */
  distribute(group: distributed.ProcessGroup): this {
    this.group = group;
    distributed.convertSyncBatchNorm(this.model, group);
    distributed.broadcastModule(this.model, group);
    return this;
  }

  /** Top-1/top-5 and loss on a loader, with the EvalTransform at the model's size unless given. */
  evaluate(loader: BatchSource, o: EvaluateOptions = {}): Promise<EvalResult> {
    const transform = o.transform ?? new EvalTransform({ size: this.model.patch_embed.imgSize[0] });
    return evaluate(this.model, loader, { ...o, transform });
  }

  /** What a checkpoint must hold to resume: the whole model and AdamW's state. */
  stateDict(): FinetunerState {
    return { model: Object.fromEntries(this.model.stateDict()), optimizer: this.optimizer.stateDict() };
  }

  loadStateDict(s: FinetunerState): void {
    this.model.loadStateDict(s.model instanceof Map ? (s.model as Map<string, Tensor>) : s.model);
    this.optimizer.loadStateDict(s.optimizer);
  }
}

function lrOf(o: { blr?: number; batchSize?: number }): number {
  if (!(o.batchSize !== undefined && o.batchSize > 0)) {
    throw new RangeError('Finetuner: give batchSize (the effective batch, for lr = blr · batch / 256) or lr');
  }
  return optim.lrFromBlr(o.blr ?? FINETUNE_DEFAULTS.blr, o.batchSize);
}
