#!/usr/bin/env node
// The `mmoco` command: dispatches to src/cli/commands/*. Exit status: 0 done, 1 failed, 2 bad
// usage or config, 3 the training diverged (non-finite loss).
import { ConfigError } from '../train/schema.js';
import { TrainingDiverged } from '../train/run-dir.js';
import { UsageError } from './commands/common.js';

const USAGE = `usage: mmoco <command> [options]      (mmoco <command> --help lists every option)

commands:
  demo       pre-train M-MoCo on a built-in default for a few minutes, then kNN + linear probe
             against a random ViT, and a report
  pretrain   pre-train a ViT with Masked MoCo / Masked BYOL (MoCo v3 / BYOL with n = m = 1)
  knn        weighted-kNN accuracy of a backbone's features
  linprobe   linear probe on frozen features (MAE protocol: BN + linear, LARS)
  finetune   fine-tune end to end (MAE recipe: layer decay, mixup/cutmix, RandAugment, drop path)
  report     write the HTML report (and PNG charts) of a run
  ablate     a grid of pre-trainings at an equal budget (the paper's ablations), each cell evaluated
             the same way: table.json, table.md and grid.html
  flops      the FLOP table of a configuration (Figure 3(a))
  export     write a run's backbone in timm's names as safetensors
  pack       pack an image folder data set into one .mmpack file (--data accepts it)
  info       the engine (libtorch, threads, BLAS, devices), or what a checkpoint or pack holds
  launch     run a training command as N data-parallel processes (and on several nodes), as torchrun
  help       this text`;

type Command = (argv: readonly string[]) => number | Promise<number>;

const COMMANDS: Record<string, () => Promise<Command>> = {
  demo: async () => (await import('./commands/demo.js')).demoCommand,
  pretrain: async () => (await import('./commands/pretrain.js')).pretrainCommand,
  knn: async () => (await import('./commands/knn.js')).knnCommand,
  linprobe: async () => (await import('./commands/classify.js')).linprobeCommand,
  finetune: async () => (await import('./commands/classify.js')).finetuneCommand,
  report: async () => (await import('./commands/report.js')).reportCommand,
  ablate: async () => (await import('./commands/ablate.js')).ablateCommand,

  flops: async () => (await import('./commands/flops.js')).flopsCommand,
  export: async () => (await import('./commands/checkpoint.js')).exportCommand,
  pack: async () => (await import('./commands/pack.js')).packCommand,
  info: async () => (await import('./commands/checkpoint.js')).infoCommand,
  launch: async () => (await import('./commands/launch.js')).launchCommand,
};

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === undefined || cmd === 'help' || cmd === '--help' || cmd === '-h') {
    console.log(USAGE);
    return 0;
  }
  const load = COMMANDS[cmd];
  if (!load) {
    console.error(`mmoco: unknown command '${cmd}'\n\n${USAGE}`);
    return 2;
  }
  try {
    return await (
      await load()
    )(rest);
  } catch (e) {
    if (e instanceof ConfigError || e instanceof UsageError) {
      console.error(`mmoco ${cmd}: ${e.message}`);
      return 2;
    }
    if (e instanceof TrainingDiverged) {
      console.error(`mmoco ${cmd}: ${e.message}`);
      return 3;
    }
    console.error(`mmoco ${cmd}: ${e instanceof Error ? e.message : String(e)}`);
    if (process.env.MMOCO_DEBUG && e instanceof Error) console.error(e.stack);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
// decode workers and prefetching must not keep a finished command alive
if (process.exitCode !== undefined) {
  const { closeDecodePool } = await import('../data/index.js');
  await closeDecodePool();
}
