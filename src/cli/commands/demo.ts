// `mmoco demo`: pre-train M-MoCo on the built-in default (the `demo` preset: Fashion-MNIST from
// Debian's package) or any image folder (--data), evaluate it against the same ViT at its
// initialisation by kNN and a linear probe, print both, and write the report.
import { runDemoPipeline } from '../../train/demo.js';
import { consoleHooks, formatSeconds, pretrainEpochLine } from '../progress.js';
import { parseArgs } from '../args.js';
import { PRETRAIN_SCHEMA, resolveConfig } from '../../train/config.js';
import { commandHelp, defaultOut } from './common.js';

export async function demoCommand(argv: readonly string[]): Promise<number> {
  const a = parseArgs(argv, PRETRAIN_SCHEMA, { positional: 0 });
  if (a.help) {
    console.log(
      commandHelp(
        'pretrain',
        'mmoco demo [--data <image folder>] [--out <run>] [--set key=value]',
        'Pre-trains M-MoCo with the demo preset (any pretrain option overrides it), then prints kNN and\n' +
          'linear-probe accuracy of the pre-trained ViT next to the same ViT at initialisation, and writes\n' +
          'the report (<run>/report.html). Run it again to resume an interrupted demo.',
      ),
    );
    return 0;
  }
  const preset = a.preset ?? 'demo';
  const cfg = resolveConfig('pretrain', { preset, flags: a.flags, sets: a.sets });
  cfg.out = defaultOut(cfg.out, preset, 'demo');
  const res = await runDemoPipeline(cfg, consoleHooks(pretrainEpochLine));
  const row = (name: string, s: { knnTop1: number; probeTop1: number }): string =>
    `${name.padEnd(26)}${s.knnTop1.toFixed(2).padStart(8)} %${s.probeTop1.toFixed(2).padStart(14)} %`;
  console.log(
    [
      '',
      `M-MoCo demo on ${cfg.data}: ${formatSeconds(res.pretrainS)} of pre-training, ${res.imagesPerSec.toFixed(1)} images/s`,
      `${''.padEnd(26)}${'kNN top-1'.padStart(10)}${'linear probe'.padStart(16)}`,
      row('pre-trained (M-MoCo)', res.pretrained),
      row('random init (same ViT)', res.random),
      '',
      `report: ${res.report}`,
    ].join('\n'),
  );
  return 0;
}
