// `mmoco pretrain`: M-MoCo / M-BYOL pre-training as MoCo v3's main_moco.py runs it — AdamW with
// lr = blr × batch / 256, per-iteration warm-up + half-cosine, momentum rising to 1 by
// half-cosine, the EMA update inside the step — with the run folder around it: config.json,
// metrics.jsonl (a step record every `logEvery` steps, an epoch record with the kNN monitor),
// a checkpoint each epoch and every `checkpointEveryMinutes` inside one (written atomically) and
// automatic resume from it, also with a larger `epochs`. A non-finite loss stops the run
// (TrainingDiverged) with a `stop` record.
import { availableParallelism } from 'node:os';
import * as torch from '../torch/index.js';
import { optim } from '../torch/index.js';
import { buildBackbone } from './backbone.js';
import {
  DEFAULT_BASE_MOMENTUM,
  GraphedTrainStep,
  MaskedContrastive,
  trainStep,
  type TrainStepResult,
} from '../ssl/index.js';
import { CachedLoader, DeviceImageCache, toDevice, transforms, type Dataset } from '../data/index.js';
import type { PretrainConfig } from './config.js';
import { openData, sampled, trainLoader, type LoaderConfig } from './data.js';
import { resizeCenterCrop } from '../data/index.js';
import { knnMonitor } from './monitor.js';
import { ConfigError } from './schema.js';
import { joinRanks } from './ranks.js';
import { RunDir } from './run-dir.js';
import { runEpochs } from './epochs.js';

/** Config keys that may change when a run resumes (they do not change what is computed). */
export const RESUMABLE_FREE_KEYS = [
  'out',
  'workers',
  'threads',
  'device',
  'logEvery',
  'knnEvery',
  'data',
  'valData',
  'checkpointEveryMinutes',
  'cudaGraph',
];

export interface StepInfo extends TrainStepResult {
  epoch: number;
  /** global step (0-based) */
  step: number;
  /** step within the epoch (0-based) and steps per epoch */
  batch: number;
  batches: number;
  /** total epochs of the run */
  epochs: number;
  /** images in the step (the global batch) */
  images: number;
  imagesPerSec: number;
}

export interface EpochInfo {
  epoch: number;
  epochs: number;
  loss: number;
  knnTop1: number | null;
  imagesPerSec: number;
  wallS: number;
}

export interface PretrainHooks {
  /** a message for the user (start, resume, kNN, checkpoint) */
  log?: (message: string) => void;
  onStep?: (s: StepInfo) => void;
  onEpoch?: (e: EpochInfo) => void;
}

export interface PretrainResult {
  dir: string;
  /** epochs finished (all of them unless the run was already complete) */
  epochs: number;
  steps: number;
  resumedFrom: number | null;
  /** kNN top-1 (%) after the last epoch, null without a validation split */
  knnTop1: number | null;
  /** median images/s over the epochs run by this process */
  imagesPerSec: number;
  wallS: number;
  model: MaskedContrastive;
}

/** The model a config describes (the backbone initialised from the current seed state). */
export function buildPretrainModel(cfg: PretrainConfig): MaskedContrastive {
  const backbone = buildBackbone(cfg, { stopGradConv1: cfg.stopGradConv1 });
  return new MaskedContrastive(backbone, {
    method: cfg.method,
    numChunks: cfg.numChunks,
    targetChunks: cfg.targetChunks,
    temperature: cfg.temperature,
    headNorm: cfg.headNorm,
    classAttention: cfg.classAttention,
    projector: { hiddenDim: cfg.projHiddenDim, outDim: cfg.projOutDim },
    predictor: { hiddenDim: cfg.predHiddenDim },
    predictorLastNorm: cfg.predictorLastNorm,
  });
}

function median(xs: number[]): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const h = s.length >> 1;
  return s.length % 2 ? s[h]! : (s[h - 1]! + s[h]!) / 2;
}

export async function pretrain(cfg: PretrainConfig, hooks: PretrainHooks = {}): Promise<PretrainResult> {
  const log = hooks.log ?? ((m: string) => console.error(m));
  const out = cfg.out ?? 'runs/pretrain';
  const run = new RunDir(out);
  if (cfg.threads !== null) torch.setNumThreads(cfg.threads);
  if (cfg.device === 'cuda' && !torch.cuda.isAvailable()) {
    throw new Error(
      "device 'cuda' was asked for, but this libtorch has no CUDA device (build against a CUDA libtorch)",
    );
  }
  if (!(cfg.warmupEpochs < cfg.epochs)) {
    throw new ConfigError(`warmupEpochs (${cfg.warmupEpochs}) must be less than epochs (${cfg.epochs})`);
  }
  // data-parallel when launched with RANK / WORLD_SIZE (mmoco launch): the batch is global
  const { group, rank, world, lead } = joinRanks(cfg);
  const data = openData(cfg.data, cfg.valData);
  const train = sampled(data.train, cfg.trainSamples, cfg.seed);
  const host = trainLoader(train, cfg, { rank, world });
  const cache = await deviceCacheFor(train, cfg, lead ? log : () => undefined);
  const loader = cache ? new CachedLoader(host, cache) : host;
  const batches = Math.min(loader.length, cfg.maxStepsPerEpoch ?? Infinity);
  if (batches < 1) {
    throw new Error(`${data.name}: ${train.length} training images make no full batch of ${cfg.batchSize}`);
  }

  torch.manualSeed(cfg.seed);
  const model = buildPretrainModel(cfg).to(cfg.device);
  model.train();
  const opt = new optim.AdamW(model.onlineParameters(), {
    lr: optim.lrFromBlr(cfg.blr, cfg.batchSize),
    betas: cfg.betas as [number, number],
    weightDecay: cfg.weightDecay,
  });
  const sched = new optim.WarmupCosine({
    lr: optim.lrFromBlr(cfg.blr, cfg.batchSize),
    warmupEpochs: cfg.warmupEpochs,
    epochs: cfg.epochs,
    itersPerEpoch: batches,
  });
  const aug = transforms.pretrainAugmentation(cfg.augmentation, { size: cfg.imgSize, scale: [cfg.cropMin, 1] });
  const baseMomentum = cfg.momentum ?? DEFAULT_BASE_MOMENTUM[cfg.method];
  const amp = precisionOf(cfg, log);
  const config = { command: 'pretrain', ...cfg };

  // ---- resume ----
  const state = { modules: { model }, stateful: { optimizer: opt } };
  const begin = run.resumeOrStart({
    config,
    freeKeys: RESUMABLE_FREE_KEYS,
    state,
    lead,
    log,
    start: { epochs: cfg.epochs, stepsPerEpoch: batches, trainImages: train.length, worldSize: world },
  });
  const { resumedFrom } = begin;
  // every rank starts from rank 0's weights; BN heads become SyncBN; keys and gradients are shared
  if (group) model.distribute(group);
  // one CUDA graph per step (built after the resume: it captures the optimiser's state tensors),
  // its input the loader's batch (the whole set when that is smaller than batchSize)
  const graphed = graphStepFor(cfg, world)
    ? new GraphedTrainStep(model, opt, [host.batchSize, 3, cfg.imgSize, cfg.imgSize], {
        lrSchedule: sched,
        itersPerEpoch: batches,
        baseMomentum,
        autocast: amp,
      })
    : null;
  if (lead)
    log(
      `pretrain ${cfg.method} n=${cfg.numChunks} m=${cfg.targetChunks} ${cfg.model}/${cfg.patchSize} ${cfg.imgSize}px ` +
        `on ${data.name} (${train.length} images, ${batches} steps/epoch, batch ${cfg.batchSize}` +
        (world > 1 ? ` = ${world} processes x ${cfg.batchSize / world}` : '') +
        `), ${cfg.epochs} epochs → ${out}` +
        (graphed ? (graphed.graphed ? ', each step one CUDA graph' : ', graphed step run eagerly') : ''),
    );

  const t0 = performance.now();
  const speeds: number[] = [];
  let knnTop1: number | null = null;
  let info: EpochInfo | null = null;
  let tStep = 0;
  const steps = await runEpochs({
    run,
    begin,
    epochs: cfg.epochs,
    batches,
    seed: cfg.seed,
    rank,
    lead,
    group,
    loader,
    state,
    checkpointEveryMinutes: cfg.checkpointEveryMinutes,
    log,
    beginEpoch: () => {
      tStep = performance.now();
    },
    step: (batch, at) => {
      const r = torch.tidy(() => {
        const x = toDevice(batch.images, cfg.device);
        const { view1, view2 } = aug.forward(x);
        // κ costs host syncs: computed only for the steps that are logged
        const kappa = at.step % cfg.logEvery === 0;
        if (graphed) return graphed.step(view1, view2, at.step, { kappa });
        return trainStep(model, opt, view1, view2, {
          kappa,
          iter: at.step,
          itersPerEpoch: batches,
          lrSchedule: sched,
          baseMomentum,
          autocast: amp,
          ...(cfg.clipGrad !== null ? { clipGradNorm: cfg.clipGrad } : {}),
        });
      });
      if (group) r.loss = globalMean(group, r.loss);
      return r;
    },
    afterStep: (r, { epoch, step, batch }) => {
      const now = performance.now();
      const imagesPerSec = (cfg.batchSize * 1000) / (now - tStep);
      tStep = now;
      if (!lead) return;
      if (step % cfg.logEvery === 0) {
        run.log({
          kind: 'step',
          epoch,
          step,
          loss: r.loss,
          lr: r.lr,
          momentum: r.momentum,
          kappaRep: nullIfNaN(r.kappaRep),
          kappaProj: nullIfNaN(r.kappaProj),
          kappaPred: nullIfNaN(r.kappaPred),
          imagesPerSec,
        });
      }
      hooks.onStep?.({ ...r, epoch, step, batch, batches, epochs: cfg.epochs, images: cfg.batchSize, imagesPerSec });
    },
    endEpoch: async (e) => {
      const epochSpeed = (e.batchesRun * cfg.batchSize) / e.trainS;
      speeds.push(epochSpeed);
      knnTop1 = null;
      const last = e.epoch === cfg.epochs - 1;
      if (lead && data.val && cfg.knnEvery > 0 && ((e.epoch + 1) % cfg.knnEvery === 0 || last)) {
        const k = await knnMonitor(model.base_encoder.backbone, train, data.val, cfg);
        knnTop1 = k.top1;
      }
      info = {
        epoch: e.epoch,
        epochs: cfg.epochs,
        loss: e.loss,
        knnTop1,
        imagesPerSec: epochSpeed,
        wallS: (performance.now() - e.started) / 1000,
      };
      if (lead) run.log({ kind: 'epoch', ...info, skipped: loader.skips(e.epoch).length });
    },
    saved: () => hooks.onEpoch?.(info!),
  }).finally(() => graphed?.dispose());
  group?.destroy();
  cache?.dispose();
  return {
    dir: out,
    epochs: cfg.epochs,
    steps,
    resumedFrom,
    knnTop1,
    imagesPerSec: median(speeds),
    wallS: (performance.now() - t0) / 1000,
    model,
  };
}

/**
 * Whether pre-training runs its steps through GraphedTrainStep: `cudaGraph` 'auto' on CUDA with
 * graphs in one process without gradient clipping; 'on' wherever it can (eagerly off CUDA).
 */
function graphStepFor(cfg: PretrainConfig, world: number): boolean {
  if (cfg.cudaGraph === 'off') return false;
  const unsupported = world > 1 ? 'data-parallel training' : cfg.clipGrad !== null ? 'clipGrad' : null;
  if (cfg.cudaGraph === 'on') {
    if (unsupported) throw new ConfigError(`cudaGraph 'on' does not support ${unsupported} (use 'auto' or 'off')`);
    return true;
  }
  return !unsupported && cfg.device === 'cuda' && torch.cuda.graphsAvailable();
}

/** The decoded training set should stay on the device under `deviceCache: 'auto'` up to this. */
const DEVICE_CACHE_AUTO_BYTES = 8 * 2 ** 30;

/**
 * The training set decoded onto the device, when `deviceCache` asks for it ('on'; 'auto': on
 * CUDA when the decoded images take at most 8 GiB, estimated from the first image), else null.
 */
async function deviceCacheFor(
  ds: Dataset,
  cfg: LoaderConfig & { deviceCache: 'auto' | 'on' | 'off'; device: string },
  log: (m: string) => void,
): Promise<DeviceImageCache | null> {
  if (cfg.deviceCache === 'off' || (cfg.deviceCache === 'auto' && cfg.device !== 'cuda')) return null;
  const perSample = cfg.loadSize ? resizeCenterCrop(cfg.loadSize, cfg.loadSize) : undefined;
  if (cfg.deviceCache === 'auto') {
    const first = await ds.get(0);
    const side = cfg.loadSize;
    const bytes = (side ? side * side * 3 : first.image.data.length) * ds.length;
    if (bytes > DEVICE_CACHE_AUTO_BYTES) {
      log(`device cache: off (the training set would take ${(bytes / 2 ** 30).toFixed(1)} GiB decoded)`);
      return null;
    }
  }
  const t0 = performance.now();
  const cache = await DeviceImageCache.build(ds, {
    device: cfg.device,
    workers: cfg.workers ?? availableParallelism(),
    perSample: perSample ? (s) => perSample(s) : undefined,
  });
  log(
    `device cache: ${cache.rows} images, ${(cache.bytes / 2 ** 20).toFixed(0)} MiB on ${cfg.device} ` +
      `(decoded in ${((performance.now() - t0) / 1000).toFixed(1)} s` +
      (cache.skipped.length ? `, ${cache.skipped.length} unreadable skipped` : '') +
      ')',
  );
  return cache;
}

/** The autocast options of a run's `precision` (null for float32); logs the choice and why. */
export function precisionOf(
  cfg: { precision: 'auto' | 'fp32' | 'bf16'; device: 'cpu' | 'cuda' },
  log: (m: string) => void,
): torch.AutocastOptions | null {
  const p = torch.choosePrecision(cfg.precision, cfg.device);
  log(`precision ${p.precision} (${p.reason})`);
  return p.precision === 'bf16' ? { device: cfg.device, dtype: 'bfloat16' } : null;
}

/** The mean over the ranks of a per-rank number (the loss of the global batch). */
function globalMean(group: torch.distributed.ProcessGroup, v: number): number {
  return torch.tidy(() => {
    const t = torch.tensor(Float64Array.from([v]));
    group.allReduce(t, 'mean');
    return Number(t.item());
  });
}

function nullIfNaN(v: number): number | null {
  return Number.isFinite(v) ? v : null;
}
