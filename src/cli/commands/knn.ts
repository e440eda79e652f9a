// `mmoco knn`: weighted-kNN accuracy of a backbone's CLS features (pre-trained, or randomly
// initialised when no checkpoint is given: the baseline a pre-training must beat).
import * as torch from '../../torch/index.js';
import type { VisionTransformer } from '../../models/index.js';
import { buildBackbone, type ArchConfig } from '../../train/backbone.js';
import { openData } from '../../train/data.js';
import { knnMonitor } from '../../train/monitor.js';
import { loadPretrainedBackbone } from '../../train/pretrained.js';
import { archFor, assumedNote, readBackboneWeights } from '../../train/weights.js';
import type { EncoderChoice } from '../../train/torch-weights.js';
import type { KnnConfig } from '../../train/config.js';
import { commandHelp, resolveCommand } from './common.js';

/** A backbone for evaluation: the checkpoint's (its recorded architecture wins) or a random one. */
export function backboneFor(
  c: ArchConfig & { checkpoint: string | null; checkpointKey?: EncoderChoice; seed: number },
): {
  backbone: VisionTransformer;
  note: string;
} {
  torch.manualSeed(c.seed);
  if (!c.checkpoint) {
    return { backbone: buildBackbone(c), note: `random init (${c.model}/${c.patchSize}, seed ${c.seed})` };
  }
  const w = readBackboneWeights(c.checkpoint, { encoder: c.checkpointKey });
  let backbone: VisionTransformer;
  try {
    backbone = buildBackbone(archFor(c, w));
    const r = loadPretrainedBackbone(backbone, w.tensors);
    if (r.missingKeys.length) throw new Error(`${w.source}: missing backbone keys ${r.missingKeys.join(', ')}`);
  } finally {
    for (const t of w.tensors.values()) t.dispose();
  }
  const assumed = assumedNote(c, w);
  return { backbone, note: assumed ? `${w.source}; ${assumed}` : w.source };
}

export async function knnCommand(argv: readonly string[]): Promise<number> {
  const r = resolveCommand('knn', argv, { positional: 0 });
  if (r.help) {
    console.log(
      commandHelp(
        'knn',
        'mmoco knn --data <folder> [--checkpoint <run>] [options]',
        'Weighted kNN (k = 20, T = 0.07) on the CLS features: training split as the memory bank,\n' +
          'validation split as queries. Without --checkpoint: a randomly initialised ViT.',
      ),
    );
    return 0;
  }
  const c: KnnConfig = r.config;
  if (c.threads !== null) torch.setNumThreads(c.threads);
  const data = openData(c.data, c.valData);
  if (!data.val) throw new Error(`${data.name}: no validation split (give --val-data)`);
  const { backbone, note } = backboneFor(c);
  backbone.to(c.device);
  const t0 = performance.now();
  const imgSize = backbone.patch_embed.imgSize[0];
  const res = await knnMonitor(backbone, data.train, data.val, { ...c, imgSize });
  backbone.dispose();
  console.log(
    JSON.stringify({
      weights: note,
      data: data.name,
      k: c.knnK,
      T: c.knnT,
      top1: res.top1,
      top5: res.top5,
      seconds: Math.round((performance.now() - t0) / 100) / 10,
    }),
  );
  return 0;
}
