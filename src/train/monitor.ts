// The weighted-kNN monitor of pre-training (and `mmoco knn`): CLS features of the training set
// (or a seeded subset: the memory bank) and of the validation set from the current backbone,
// then kNN top-1/top-5 (k = 20, T = 0.07 by default), as DINO's eval_knn.
import type { Dataset } from '../data/index.js';
import { transforms } from '../data/index.js';
import { dispose, type Tensor } from '../torch/index.js';
import { makeLoader, sampled } from './data.js';
import { extractFeatures, knnClassifier, type FeatureBackbone } from './knn.js';

export interface KnnMonitorConfig {
  imgSize: number;
  batchSize: number;
  seed: number;
  workers: number | null;
  loadSize: number | null;
  device: string;
  knnK: number;
  knnT: number;
  knnTrainSamples: number | null;
  knnValSamples: number | null;
}

export interface SplitFeatures {
  train: { features: Tensor; labels: Tensor };
  val: { features: Tensor; labels: Tensor };
}

/** CLS features of the kNN memory bank (train subset) and the queries (val subset). The caller disposes. */
export async function splitFeatures(
  backbone: FeatureBackbone,
  train: Dataset,
  val: Dataset,
  c: KnnMonitorConfig,
): Promise<SplitFeatures> {
  const bank = sampled(train, c.knnTrainSamples, c.seed);
  const queries = sampled(val, c.knnValSamples, c.seed);
  const lc = { ...c, batchSize: Math.max(c.batchSize, 64) };
  // images already at the model's size pass as they are (resize + crop would only blur small
  // images such as CIFAR's); larger ones are resized and centre-cropped
  const prep = new transforms.EvalTransform({ size: c.imgSize, passSized: true });
  const opts = { transform: prep, device: c.device };
  const a = await extractFeatures(backbone, makeLoader(bank, lc, { shuffle: false, dropLast: false }), opts);
  const b = await extractFeatures(backbone, makeLoader(queries, lc, { shuffle: false, dropLast: false }), opts);
  return { train: a, val: b };
}

/** Weighted-kNN top-1/top-5 (%) of features from `splitFeatures`. */
export function knnOnFeatures(
  f: SplitFeatures,
  c: { knnK: number; knnT: number },
  numClasses: number,
): { top1: number; top5: number } {
  const r = knnClassifier(f.train.features, f.train.labels, f.val.features, f.val.labels, {
    k: Math.min(c.knnK, f.train.labels.shape[0]!),
    temperature: c.knnT,
    numClasses,
  });
  r.predictions.dispose();
  return { top1: r.top1, top5: r.top5 };
}

export async function knnMonitor(
  backbone: FeatureBackbone,
  train: Dataset,
  val: Dataset,
  c: KnnMonitorConfig,
): Promise<{ top1: number; top5: number }> {
  const f = await splitFeatures(backbone, train, val, c);
  try {
    return knnOnFeatures(f, c, train.classes.length);
  } finally {
    dispose([f.train, f.val]);
  }
}
