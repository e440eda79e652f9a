// `mmoco pretrain`: the config, a progress bar on a TTY (lines per 10 % of an epoch otherwise), the run.
import { pretrain } from '../../train/pretrain.js';
import { consoleHooks, pretrainEpochLine } from '../progress.js';
import { commandHelp, defaultOut, resolveCommand } from './common.js';

export const PRETRAIN_USAGE = 'mmoco pretrain [--config <preset>] [--data <folder>] [--out <run>] [options]';

export async function pretrainCommand(argv: readonly string[]): Promise<number> {
  const r = resolveCommand('pretrain', argv, { positional: 0 });
  if (r.help) {
    console.log(
      commandHelp(
        'pretrain',
        PRETRAIN_USAGE,
        'Pre-trains a ViT with Masked MoCo / Masked BYOL (n = m = 1: MoCo v3 / BYOL). Writes config.json,\n' +
          'metrics.jsonl and a checkpoint each epoch to the run folder; run the same command again to resume.',
      ),
    );
    return 0;
  }
  const cfg = { ...r.config, out: defaultOut(r.config.out, r.preset, 'pretrain') };
  const result = await pretrain(cfg, consoleHooks(pretrainEpochLine));
  result.model.dispose();
  // under `mmoco launch` only rank 0 reports
  if (Number(process.env.RANK ?? 0) !== 0) return 0;
  console.log(
    JSON.stringify({
      run: result.dir,
      epochs: result.epochs,
      steps: result.steps,
      knnTop1: result.knnTop1,
      imagesPerSec: result.imagesPerSec,
      wallS: Math.round(result.wallS * 10) / 10,
      resumedFrom: result.resumedFrom,
    }),
  );
  return 0;
}
