// `mmoco linprobe` and `mmoco finetune` runs: the epoch loop around LinearProbe / Finetuner with
// the run folder of pre-training — config.json, metrics.jsonl (step and eval records), a
// checkpoint each epoch and every `checkpointEveryMinutes` inside one, with automatic resume
// (also with a larger `epochs`), top-1/top-5 on the validation split each epoch,
// and (fine-tuning) the best model kept as best.safetensors in timm's names. The loop is
// epochs.ts's, as pre-training's; a non-finite loss stops the run with TrainingDiverged.
import { join } from 'node:path';
import * as torch from '../torch/index.js';
import type { VisionTransformer } from '../models/index.js';
import { buildBackbone } from './backbone.js';
import type { FinetuneConfig, LinprobeConfig } from './config.js';
import { makeLoader, openData, sampled, trainLoader } from './data.js';
import { Finetuner } from './finetune.js';
import { LinearProbe } from './linprobe.js';
import { loadPretrainedBackbone } from './pretrained.js';
import { RunDir } from './run-dir.js';
import { runEpochs } from './epochs.js';
import { ConfigError } from './schema.js';
import { joinRanks } from './ranks.js';
import { archFor, assumedNote, readBackboneWeights } from './weights.js';
import { precisionOf } from './pretrain.js';

const FREE_KEYS = ['out', 'workers', 'threads', 'device', 'logEvery', 'data', 'valData', 'checkpointEveryMinutes'];

/** What a linear probe or fine-tuning reports after each epoch. */
export interface ClassifyEpochInfo {
  epoch: number;
  epochs: number;
  loss: number;
  top1: number;
  top5: number;
  wallS: number;
}

export interface ClassifyHooks {
  log?: (message: string) => void;
  onStep?: (s: {
    epoch: number;
    epochs: number;
    step: number;
    batch: number;
    batches: number;
    /** images in the step (the global batch) */
    images: number;
    loss: number;
    lr: number;
  }) => void;
  onEpoch?: (e: ClassifyEpochInfo) => void;
}

export interface ClassifyResult {
  dir: string;
  top1: number;
  top5: number;
  bestTop1: number;
  epochs: number;
  resumedFrom: number | null;
  wallS: number;
  /** where the weights came from ('random init' without a checkpoint) */
  weights: string;
}

type Kind = 'linprobe' | 'finetune';

/** The ViT of a linprobe/finetune config, with the pre-trained weights when a checkpoint is given. */
function backboneOf(
  c: LinprobeConfig | FinetuneConfig,
  extra: Parameters<typeof buildBackbone>[1],
  log: (m: string) => void,
): { vit: VisionTransformer; weights: string } {
  torch.manualSeed(c.seed);
  if (!c.checkpoint) {
    log('no checkpoint: a randomly initialised ViT (the baseline)');
    return { vit: buildBackbone(c, extra), weights: 'random init' };
  }
  const w = readBackboneWeights(c.checkpoint, { encoder: c.checkpointKey });
  let vit: VisionTransformer;
  try {
    vit = buildBackbone(archFor(c, w), extra);
    const assumed = assumedNote(c, w);
    if (assumed) log(`${w.source}: ${assumed}`);
    const r = loadPretrainedBackbone(vit, w.tensors);
    if (r.unexpectedKeys.length) log(`ignored checkpoint keys: ${r.unexpectedKeys.join(', ')}`);
  } finally {
    for (const t of w.tensors.values()) t.dispose();
  }
  return { vit, weights: w.source };
}

export async function runClassification(
  kind: Kind,
  cfg: LinprobeConfig | FinetuneConfig,
  hooks: ClassifyHooks = {},
): Promise<ClassifyResult> {
  const log = hooks.log ?? ((m: string) => console.error(m));
  const out = cfg.out ?? `runs/${kind}`;
  if (!(cfg.warmupEpochs < cfg.epochs)) {
    throw new ConfigError(`warmupEpochs (${cfg.warmupEpochs}) must be less than epochs (${cfg.epochs})`);
  }
  if (cfg.threads !== null) torch.setNumThreads(cfg.threads);
  const data = openData(cfg.data, cfg.valData);
  if (!data.val) throw new ConfigError(`${data.name}: no validation split (give --val-data)`);
  const train = sampled(data.train, cfg.trainSamples, cfg.seed);
  // data-parallel when launched with RANK / WORLD_SIZE (mmoco launch): the batch is global
  const { group, rank, world, lead } = joinRanks(cfg);
  const loader = trainLoader(train, cfg, { rank, world });
  const valLoader = makeLoader(data.val, cfg, { shuffle: false, dropLast: false });
  const batches = Math.min(loader.length, cfg.maxStepsPerEpoch ?? Infinity);
  if (batches < 1) throw new Error(`${data.name}: ${train.length} images make no full batch of ${cfg.batchSize}`);
  const numClasses = train.classes.length;
  const run = new RunDir(out);
  const amp = precisionOf(cfg, log);

  let trainer: LinearProbe | Finetuner;
  let weights: string;
  if (kind === 'linprobe') {
    const c = cfg as LinprobeConfig;
    const b = backboneOf(c, {}, log);
    weights = b.weights;
    b.vit.to(c.device);
    trainer = new LinearProbe(b.vit, {
      numClasses,
      itersPerEpoch: batches,
      epochs: c.epochs,
      warmupEpochs: c.warmupEpochs,
      blr: c.blr,
      batchSize: c.batchSize,
      weightDecay: c.weightDecay,
      autocast: amp,
    });
  } else {
    const c = cfg as FinetuneConfig;
    const b = backboneOf(c, { numClasses, globalPool: c.globalPool, dropPathRate: c.dropPath }, log);
    weights = b.weights;
    b.vit.to(c.device);
    trainer = new Finetuner(b.vit, {
      itersPerEpoch: batches,
      epochs: c.epochs,
      warmupEpochs: c.warmupEpochs,
      blr: c.blr,
      batchSize: c.batchSize,
      weightDecay: c.weightDecay,
      layerDecay: c.layerDecay,
      betas: c.betas as [number, number],
      labelSmoothing: c.smoothing,
      mixup: c.mixup > 0 || c.cutmix > 0 ? { mixupAlpha: c.mixup, cutmixAlpha: c.cutmix } : null,
      augmentation: {
        size: b.vit.patch_embed.imgSize[0],
        randAugment: c.randAugment,
        erasing: c.reprob > 0 ? { probability: c.reprob } : null,
      },
      autocast: amp,
    });
  }
  const modules: Record<string, torch.nn.Module> =
    trainer instanceof LinearProbe ? { head: trainer.head } : { model: trainer.model };
  const stateful = { optimizer: trainer.optimizer };
  const config = { command: kind, ...cfg };

  const begin = run.resumeOrStart({
    config,
    freeKeys: FREE_KEYS,
    state: { modules, stateful },
    lead,
    log,
    start: { epochs: cfg.epochs, stepsPerEpoch: batches, trainImages: train.length, weights },
  });
  const { resumedFrom } = begin;
  let best = begin.progress ? Number(begin.progress.bestTop1) : -1;
  if (group) trainer.distribute(group);
  if (lead)
    log(
      `${kind} ${weights} on ${data.name} (${train.length} images, ${numClasses} classes, ${batches} steps/epoch) → ${out}`,
    );

  const t0 = performance.now();
  let last = { top1: NaN, top5: NaN };
  let wallS = 0;
  await runEpochs({
    run,
    begin,
    epochs: cfg.epochs,
    batches,
    seed: cfg.seed,
    rank,
    lead,
    group,
    loader,
    state: { modules, stateful },
    checkpointEveryMinutes: cfg.checkpointEveryMinutes,
    log,
    step: (batch, at) => trainer.trainStep(batch.images, batch.labels, at.step),
    afterStep: (r, { epoch, step, batch }) => {
      if (!lead) return;
      if (step % cfg.logEvery === 0) run.log({ kind: 'step', epoch, step, loss: r.loss, lr: r.lr });
      hooks.onStep?.({ epoch, epochs: cfg.epochs, step, batch, batches, images: cfg.batchSize, ...r });
    },
    progress: () => ({ bestTop1: best }),
    endEpoch: async ({ epoch, loss, started }) => {
      // rank 0 evaluates and writes; the others wait for it
      if (!lead) return;
      const ev = await trainer.evaluate(valLoader);
      last = { top1: ev.top1, top5: ev.top5 };
      wallS = (performance.now() - started) / 1000;
      run.log({ kind: 'eval', epoch, top1: ev.top1, top5: ev.top5, loss: ev.loss, trainLoss: loss, wallS });
      if (ev.top1 > best) {
        best = ev.top1;
        if (trainer instanceof Finetuner)
          torch.io.safetensors.save(join(out, 'best.safetensors'), trainer.model.stateDict(), {
            epoch: String(epoch),
            top1: String(ev.top1),
          });
      }
    },
    saved: ({ epoch, loss }) => hooks.onEpoch?.({ epoch, epochs: cfg.epochs, loss, ...last, wallS }),
  });
  group?.destroy();
  const result: ClassifyResult = {
    dir: out,
    ...last,
    bestTop1: best,
    epochs: cfg.epochs,
    resumedFrom,
    wallS: (performance.now() - t0) / 1000,
    weights,
  };
  (trainer instanceof LinearProbe ? trainer.backbone : trainer.model).dispose();
  if (trainer instanceof LinearProbe) trainer.head.dispose();
  return result;
}
