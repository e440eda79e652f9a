// Weighted k-nearest-neighbour evaluation of frozen features, as DINO's eval_knn.py (after
// Wu et al.'s InstDisc): cosine similarity to every training feature, the k most similar vote
// for their class with weight exp(sim / T), and the class with the largest vote is the guess.
import { cat, F, noGrad, tidy, zeros, type Tensor } from '../torch/index.js';
import { defaultTransform, type BatchSource, type ImageTransform } from './eval.js';
import { KNN_DEFAULTS } from './defaults.js';

export interface KnnOptions {
  /** neighbours that vote (default 20) */
  k?: number;
  /** temperature of the vote weights exp(sim / T) (default 0.07) */
  temperature?: number;
  /** number of classes (default: 1 + the largest training label) */
  numClasses?: number;
  /** test rows per similarity block, bounding memory at chunkSize × N_train (default 256) */
  chunkSize?: number;
  /** also return the vote scores [M, C] (float32, on the CPU) */
  returnScores?: boolean;
}

export interface KnnResult {
  /** percent of test rows whose top-voted class is their label */
  top1: number;
  /** percent whose label is among the five top-voted classes */
  top5: number;
  /** test rows */
  total: number;
  /** int64 [M]: each test row's top-voted class (CPU) */
  predictions: Tensor;
  /** float32 [M, C]: the summed vote weights per class, when asked for */
  scores?: Tensor;
}

/**
 * kNN classification of `testFeatures` [M, D] by `trainFeatures` [N, D] with their labels
 * (int64). Both feature sets are L2-normalised here (so raw features may be passed), the
 * similarities computed in blocks of `chunkSize` test rows on the training features' device.
 * A row counts for top-1 / top-5 when its label got votes and fewer than 1 / 5 classes got more.
 */
export function knnClassifier(
  trainFeatures: Tensor,
  trainLabels: Tensor,
  testFeatures: Tensor,
  testLabels: Tensor,
  o: KnnOptions = {},
): KnnResult {
  const k = o.k ?? KNN_DEFAULTS.k;
  const T = o.temperature ?? KNN_DEFAULTS.temperature;
  const chunk = o.chunkSize ?? 256;
  const [n, d] = trainFeatures.shape as [number, number];
  const m = testFeatures.shape[0]!;
  if (trainFeatures.ndim !== 2 || testFeatures.ndim !== 2 || testFeatures.shape[1] !== d) {
    throw new RangeError(
      `knnClassifier: features must be [N, D] and [M, D], got [${trainFeatures.shape.join(', ')}] and [${testFeatures.shape.join(', ')}]`,
    );
  }
  if (trainLabels.numel() !== n || testLabels.numel() !== m) {
    throw new RangeError(`knnClassifier: ${trainLabels.numel()} / ${testLabels.numel()} labels for ${n} / ${m} rows`);
  }
  if (!(Number.isInteger(k) && k >= 1 && k <= n))
    throw new RangeError(`knnClassifier: k must be in 1..${n} (train rows), got ${k}`);
  if (!(T > 0)) throw new RangeError(`knnClassifier: temperature must be > 0, got ${T}`);
  if (!(Number.isInteger(chunk) && chunk >= 1)) throw new RangeError(`knnClassifier: bad chunkSize ${chunk}`);
  const dev = trainFeatures.device;
  const classes = o.numClasses ?? Number(tidy(() => trainLabels.max().item())) + 1;

  return noGrad(() => {
    // [D, N]: the training side, normalised once
    const bank = tidy(() =>
      F.normalize(trainFeatures.to({ dtype: 'float32' }), 2, 1)
        .t()
        .contiguous(),
    );
    const bankLabels = tidy(() => trainLabels.to({ device: dev, dtype: 'int64' }).view(1, n));
    let c1 = 0;
    let c5 = 0;
    const preds: Tensor[] = [];
    const scores: Tensor[] = [];
    try {
      for (let start = 0; start < m; start += chunk) {
        const len = Math.min(chunk, m - start);
        const r = tidy(() => {
          const q = F.normalize(testFeatures.narrow(0, start, len).to({ device: dev, dtype: 'float32' }), 2, 1);
          const target = testLabels.narrow(0, start, len).to({ device: dev, dtype: 'int64' }).view(-1, 1);
          const [sim, idx] = q.mm(bank).topk(k, 1, true, true);
          const neighbours = bankLabels.expand(len, n).gather(1, idx); // [len, k]
          // votes[i, c] = Σ_j [label_j = c] · exp(sim_j / T)
          const votes = zeros([len, classes], { device: dev }).scatterAdd(1, neighbours, sim.div(T).exp());
          // the label's rank: classes with more votes. A class no neighbour voted for is never
          // a guess (DINO's sort would place such zero-vote ties in arbitrary order).
          const own = votes.gather(1, target);
          const rank = votes.gt(own).sum(1);
          const voted = own.view(-1).gt(0);
          return {
            a: Number(rank.lt(1).logicalAnd(voted).sum().item()),
            b: Number(rank.lt(5).logicalAnd(voted).sum().item()),
            pred: votes.argmax(1).cpu(),
            votes: o.returnScores ? votes.cpu() : null,
          };
        });
        c1 += r.a;
        c5 += r.b;
        preds.push(r.pred);
        if (r.votes) scores.push(r.votes);
      }
      const predictions = cat(preds, 0);
      const out: KnnResult = { top1: (100 * c1) / m, top5: (100 * c5) / m, total: m, predictions };
      if (o.returnScores) out.scores = cat(scores, 0);
      return out;
    } finally {
      bank.dispose();
      bankLabels.dispose();
      for (const t of [...preds, ...scores]) t.dispose();
    }
  });
}

/** Anything that gives [B, 1 + k, D] tokens whose index 0 is the CLS feature (VisionTransformer). */
export interface FeatureBackbone {
  forwardFeatures(images: Tensor): Tensor;
  train(mode?: boolean): unknown;
  readonly training: boolean;
}

export interface ExtractOptions {
  /** applied to each batch on the device (e.g. EvalTransform); default `defaultTransform` */
  transform?: ImageTransform;
  /** where to run the backbone (default: the images' device) */
  device?: string;
  /** the feature of a prepared batch; default the CLS token of forwardFeatures (after the final norm) */
  features?: (images: Tensor) => Tensor;
  /** the loader epoch to read (default 0) */
  epoch?: number;
  /** release each batch after use (default true) */
  disposeBatches?: boolean;
}

/**
 * The CLS features of every image of `loader` (float32 [N, D], CPU) and their labels (int64 [N]),
 * with the backbone in eval mode and no grad (its mode is restored afterwards). Use a loader
 * without shuffling to keep the data set's order.
 */
export async function extractFeatures(
  backbone: FeatureBackbone,
  loader: BatchSource,
  o: ExtractOptions = {},
): Promise<{ features: Tensor; labels: Tensor }> {
  const transform = o.transform ?? defaultTransform;
  const featureOf = o.features ?? ((x: Tensor): Tensor => backbone.forwardFeatures(x).select(1, 0));
  const wasTraining = backbone.training;
  backbone.train(false);
  const feats: Tensor[] = [];
  const labels: Tensor[] = [];
  try {
    for await (const batch of loader.epoch(o.epoch ?? 0)) {
      const [f, l] = tidy(() =>
        noGrad(() => {
          const x = transform.forward(batch.images.to({ device: o.device ?? batch.images.device }));
          return [
            featureOf(x).to({ device: 'cpu', dtype: 'float32' }).contiguous(),
            batch.labels.to({ device: 'cpu', dtype: 'int64', copy: true }),
          ];
        }),
      ) as [Tensor, Tensor];
      feats.push(f);
      labels.push(l);
      if (o.disposeBatches ?? true) {
        batch.images.dispose();
        batch.labels.dispose();
      }
    }
    if (feats.length === 0) throw new Error('extractFeatures: the loader gave no samples');
    return { features: cat(feats, 0), labels: cat(labels, 0) };
  } finally {
    backbone.train(wasTraining);
    for (const t of [...feats, ...labels]) t.dispose();
  }
}
