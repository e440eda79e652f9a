// Classification metrics and the evaluation loop shared by the linear probe and fine-tuning, as
// MAE's engine_finetune.evaluate: the model in eval mode, no grad, cross-entropy and timm's
// top-1 / top-5 accuracy (in percent) over the whole set.
import { F, noGrad, tidy, type Tensor } from '../torch/index.js';
import { IMAGENET_MEAN, IMAGENET_STD, normalize, toFloat } from '../data/transforms/index.js';

/** A batch of images (uint8 or float NCHW) and their int64 class labels. */
export interface LabelledBatch {
  images: Tensor;
  labels: Tensor;
}

/** What the evaluation loops read: DataLoader, or anything whose `epoch(e)` yields batches. */
export interface BatchSource {
  epoch(epoch: number): AsyncIterable<LabelledBatch>;
}

/** A batch transform (EvalTransform, FinetuneAugmentation, ...): images in, float32 images out. */
export interface ImageTransform {
  forward(x: Tensor): Tensor;
}

/** What `evaluate` runs: logits from images, with PyTorch's train/eval switch. */
export interface Classifier {
  forward(images: Tensor): Tensor;
  train(mode?: boolean): unknown;
  readonly training: boolean;
}

/**
 * uint8 → float in [0, 1] → ImageNet normalisation (no resizing): what the loops use when no
 * transform is given. Float input is taken as already prepared.
 */
export const defaultTransform: ImageTransform = {
  forward: (x: Tensor): Tensor =>
    x.dtype === 'uint8' ? tidy(() => normalize(toFloat(x), IMAGENET_MEAN, IMAGENET_STD)) : x,
};

/**
 * Number of rows whose label is among the `k` largest logits, for each k in `ks` (timm's
 * accuracy, as counts; a k above the number of classes counts as the number of classes).
 */
export function correctTopK(logits: Tensor, labels: Tensor, ks: readonly number[] = [1, 5]): number[] {
  return tidy(() => {
    const classes = logits.shape[1]!;
    const maxk = Math.min(Math.max(...ks), classes);
    const [, pred] = logits.topk(maxk, 1, true, true);
    const hit = pred.eq(labels.to({ dtype: 'int64', device: logits.device }).view(-1, 1));
    return ks.map((k) => Number(hit.narrow(1, 0, Math.min(k, maxk)).sum().item()));
  });
}

/** timm's accuracy: top-k accuracy in percent for each k. */
export function accuracy(logits: Tensor, labels: Tensor, ks: readonly number[] = [1, 5]): number[] {
  const n = logits.shape[0]!;
  return correctTopK(logits, labels, ks).map((c) => (n > 0 ? (100 * c) / n : 0));
}

export interface EvaluateOptions {
  /** applied to each batch on the device; default `defaultTransform` (use EvalTransform for resizing) */
  transform?: ImageTransform;
  /** where to run (default: the images' device) */
  device?: string;
  /** the loader epoch to read (default 0; matters only for a shuffling loader) */
  epoch?: number;
  /** release each batch's images and labels after use (default true: DataLoader hands them to the caller) */
  disposeBatches?: boolean;
}

export interface EvalResult {
  /** top-1 accuracy over all samples, percent */
  top1: number;
  /** top-5 accuracy over all samples, percent */
  top5: number;
  /** mean cross-entropy per sample */
  loss: number;
  /** samples seen */
  count: number;
}

/**
 * Runs the classifier over every batch in eval mode without grad (restoring its mode after) and
 * returns top-1/top-5 accuracy and the mean cross-entropy over all samples. (MAE averages the
 * loss per batch; per sample is the same when the batches are equal, and right when the last
 * one is short.)
 */
export async function evaluate(model: Classifier, loader: BatchSource, o: EvaluateOptions = {}): Promise<EvalResult> {
  const transform = o.transform ?? defaultTransform;
  const wasTraining = model.training;
  model.train(false);
  let c1 = 0;
  let c5 = 0;
  let lossSum = 0;
  let count = 0;
  try {
    for await (const batch of loader.epoch(o.epoch ?? 0)) {
      const r = tidy(() =>
        noGrad(() => {
          const dev = o.device ?? batch.images.device;
          const x = transform.forward(batch.images.to({ device: dev }));
          const y = batch.labels.to({ device: dev, dtype: 'int64' });
          const logits = model.forward(x);
          const loss = Number(F.crossEntropy(logits, y, { reduction: 'sum' }).item());
          const [a, b] = correctTopK(logits, y, [1, 5]) as [number, number];
          return { loss, a, b, n: y.shape[0]! };
        }),
      );
      if (o.disposeBatches ?? true) {
        batch.images.dispose();
        batch.labels.dispose();
      }
      c1 += r.a;
      c5 += r.b;
      lossSum += r.loss;
      count += r.n;
    }
  } finally {
    model.train(wasTraining);
  }
  if (count === 0) throw new Error('evaluate: the loader gave no samples');
  return { top1: (100 * c1) / count, top5: (100 * c5) / count, loss: lossSum / count, count };
}
