// The demo: pre-train M-MoCo with the `demo` preset (Fashion-MNIST from Debian's package, or any
// image folder), then evaluate the pre-trained backbone and the same ViT at its initialisation
// (the seed's weights before training) by weighted kNN and by a linear probe on frozen features,
// and write the run's report.
import { join } from 'node:path';
import * as torch from '../torch/index.js';
import type { VisionTransformer } from '../models/index.js';
import { writeReport } from '../report/index.js';
import { buildBackbone } from './backbone.js';
import type { PretrainConfig } from './config.js';
import { openData } from './data.js';
import { LinearProbe } from './linprobe.js';
import { knnOnFeatures, splitFeatures, type SplitFeatures } from './monitor.js';
import { pretrain, type PretrainHooks } from './pretrain.js';

export interface DemoScores {
  knnTop1: number;
  probeTop1: number;
}

export interface DemoResult {
  dir: string;
  pretrained: DemoScores;
  random: DemoScores;
  pretrainS: number;
  imagesPerSec: number;
  report: string;
}

/**
 * MAE's linear probe (BN without affine + linear, LARS, warm-up + cosine) trained on
 * pre-extracted frozen features (no augmentation: the features are computed once), top-1 on the
 * validation features.
 */
export function probeOnFeatures(
  backbone: VisionTransformer,
  f: SplitFeatures,
  numClasses: number,
  o: { epochs?: number; batchSize?: number; blr?: number; seed?: number } = {},
): number {
  const epochs = o.epochs ?? 30;
  const n = f.train.labels.shape[0]!;
  // a memory bank smaller than the batch trains on all of it each step
  const batchSize = Math.min(o.batchSize ?? 256, n);
  const iters = Math.max(1, Math.floor(n / batchSize));
  const probe = new LinearProbe(backbone, {
    numClasses,
    itersPerEpoch: iters,
    epochs,
    warmupEpochs: Math.min(5, epochs / 4),
    blr: o.blr ?? 1.0,
    batchSize,
  });
  torch.manualSeed(o.seed ?? 0);
  let it = 0;
  for (let e = 0; e < epochs; e++) {
    const perm = torch.randperm(n);
    for (let i = 0; i < iters; i++) {
      torch.tidy(() => {
        const idx = perm.narrow(0, i * batchSize, batchSize);
        probe.stepOnFeatures(f.train.features.index([idx]), f.train.labels.index([idx]), it++);
      });
    }
    perm.dispose();
  }
  probe.head.eval();
  const top1 = torch.tidy(() =>
    torch.noGrad(() => {
      const pred = probe.head.forward(f.val.features).argmax(1);
      return (100 * Number(pred.eq(f.val.labels).sum().item())) / f.val.labels.shape[0]!;
    }),
  );
  probe.head.dispose();
  return top1;
}

async function scores(
  backbone: VisionTransformer,
  cfg: PretrainConfig,
  numClasses: number,
  data: ReturnType<typeof openData>,
): Promise<DemoScores> {
  const f = await splitFeatures(backbone, data.train, data.val!, cfg);
  try {
    const knn = knnOnFeatures(f, cfg, numClasses);
    const probeTop1 = probeOnFeatures(backbone, f, numClasses, { seed: cfg.seed });
    return { knnTop1: knn.top1, probeTop1 };
  } finally {
    torch.dispose([f.train, f.val]);
  }
}

export async function runDemoPipeline(cfg: PretrainConfig, hooks: PretrainHooks = {}): Promise<DemoResult> {
  const log = hooks.log ?? ((m: string) => console.error(m));
  const data = openData(cfg.data, cfg.valData);
  if (!data.val) throw new Error(`${data.name}: the demo needs a validation split (val/ or test/)`);
  const res = await pretrain(cfg, hooks);
  const numClasses = data.train.classes.length;
  log('evaluating the pre-trained backbone and the same ViT at its initialisation (kNN, linear probe)...');
  const pretrained = await scores(res.model.base_encoder.backbone, cfg, numClasses, data);
  res.model.dispose();
  torch.manualSeed(cfg.seed);
  const init = buildBackbone(cfg, { stopGradConv1: cfg.stopGradConv1 }).to(cfg.device);
  const random = await scores(init, cfg, numClasses, data);
  init.dispose();
  const rep = await writeReport(res.dir);
  const result: DemoResult = {
    dir: res.dir,
    pretrained,
    random,
    pretrainS: res.wallS,
    imagesPerSec: res.imagesPerSec,
    report: rep.html,
  };
  torch.io.writeFileAtomic(join(res.dir, 'demo.json'), Buffer.from(JSON.stringify(result, null, 2) + '\n'));
  return result;
}
