// `mmoco linprobe` and `mmoco finetune`: config, progress, the run (src/train/classify.ts).
import { runClassification, type ClassifyEpochInfo } from '../../train/classify.js';
import { consoleHooks, formatSeconds } from '../progress.js';
import { commandHelp, defaultOut, resolveCommand } from './common.js';

async function classify(kind: 'linprobe' | 'finetune', argv: readonly string[], about: string): Promise<number> {
  const r = resolveCommand(kind, argv, { positional: 0 });
  if (r.help) {
    console.log(
      commandHelp(kind, `mmoco ${kind} --data <folder> [--checkpoint <run>] [--config <preset>] [options]`, about),
    );
    return 0;
  }
  const cfg = { ...r.config, out: defaultOut(r.config.out, r.preset, kind) };
  const res = await runClassification(
    kind,
    cfg,
    consoleHooks(
      (e: ClassifyEpochInfo) =>
        `epoch ${e.epoch + 1}/${e.epochs} loss ${e.loss.toFixed(4)} top-1 ${e.top1.toFixed(2)}% top-5 ${e.top5.toFixed(2)}% ${formatSeconds(e.wallS)}`,
    ),
  );
  if (Number(process.env.RANK ?? 0) !== 0) return 0; // under `mmoco launch` only rank 0 reports
  console.log(
    JSON.stringify({
      run: res.dir,
      weights: res.weights,
      top1: res.top1,
      top5: res.top5,
      bestTop1: res.bestTop1,
      wallS: Math.round(res.wallS * 10) / 10,
      resumedFrom: res.resumedFrom,
    }),
  );
  return 0;
}

export const linprobeCommand = (argv: readonly string[]): Promise<number> =>
  classify(
    'linprobe',
    argv,
    'Linear probe (MAE): BatchNorm without affine + linear head on the frozen CLS feature, LARS,\n' +
      'warm-up + cosine; top-1/top-5 on the validation split each epoch. Without --checkpoint: a random ViT.',
  );

export const finetuneCommand = (argv: readonly string[]): Promise<number> =>
  classify(
    'finetune',
    argv,
    'Fine-tuning (MAE recipe): AdamW, layer-wise lr decay, drop path, mixup/cutmix + label smoothing,\n' +
      'RandAugment, random erasing, warm-up + cosine; top-1/top-5 each epoch, the best model in best.safetensors.',
  );
