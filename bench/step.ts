// `npm run bench -- step [--breakdown] [--only SUBSTRING]`: images/s of one Masked MoCo
// pre-training step, mmoco's `trainStep` against the same step in Python PyTorch
// (bench/step_torch.py), same machine, same run, both at the same thread count (2, or 1 on a
// one-core machine).
//
// The step (both engines): lr from the warmup-cosine schedule and momentum from the cosine
// schedule; the EMA update of the target; the online forward of both views, each cut into n
// random chunks, through backbone → BN projector → BN predictor; the target forward of both full
// views (m = 1) without autograd; the symmetrised InfoNCE (·2τ); zero-grad, backward, AdamW
// (one group, weight decay 0.1, betas 0.9/0.95; PyTorch's foreach=True), loss.item(). mmoco runs
// with `monitorKappa: false` (the κ statistics are monitoring, not part of the step, and the
// PyTorch reference has none). The views are fixed random tensors (no data loading).
//
// Per case: one warm-up step and `steps` timed steps per engine, mmoco in this process, PyTorch
// in a fresh Python process (engine order alternating between cases); the result is batch over
// the median step time. PyTorch reports the time of each phase (EMA, forward, backward,
// optimizer) inside its timed steps; with --breakdown mmoco also runs as many extra
// instrumented steps (trainStep's body, phase by phase) and reports the same split.
//
// For the n = 8 rows the FLOP-counter prediction of the saving (src/ssl/flops.ts,
// trainStepMacs(n = 1) / trainStepMacs(n = 8)) is printed next to the measured speed ratios.
//
// Output: one JSON line per case:
// {"bench":"step","case":...,"ours":...,"torch":...,"unit":"images/s","better":"higher",
//  "stat":"median","threads":2,"batch":...,"oursStepMs":[...],"torchStepMs":[...],
//  "torchBreakdownMs":{...},["oursBreakdownMs":{...}],"otherLoadPct":...,
//  [n = 8: "flopsPredictedSpeedup","measuredSpeedupOurs","measuredSpeedupTorch"],
//  [bf16: "torchFp32","oursBf16OverTorchFp32"]}
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import {
  benchSourceDir,
  findTorchPython,
  foreignCpuPct,
  machineBusyMs,
  median,
  now,
  ownCpuMs,
  runJsonLines,
  sig,
  waitForQuiet,
} from './common.js';
import {
  autocast,
  dispose,
  getNumThreads,
  manualSeed,
  optim,
  randn,
  setNumThreads,
  tidy,
  type Tensor,
} from '../src/torch/index.js';
import { vitSmall, vitTiny } from '../src/models/index.js';
import { MaskedContrastive, trainStep, trainStepMacs, DEFAULT_BASE_MOMENTUM } from '../src/ssl/index.js';

interface HeadSize {
  layers: number;
  hidden: number;
  out: number;
}

interface StepCase {
  name: string;
  model: 'vit_tiny' | 'vit_small';
  imgSize: number;
  patchSize: number;
  dim: number;
  depth: number;
  heads: number;
  batch: number;
  numChunks: number;
  temperature: number;
  projector: HeadSize;
  predictor: HeadSize;
  schedule: { lr: number; warmupEpochs: number; epochs: number; itersPerEpoch: number };
  baseMomentum: number;
  betas: [number, number];
  weightDecay: number;
  warmup: number;
  steps: number;
  /** bf16: the forward under autocast (ours: torch.autocast; PyTorch: torch.autocast('cpu', bfloat16)) */
  precision: 'fp32' | 'bf16';
}

// MoCo-v3's heads are 4096 wide. For ViT-Tiny/4 at 32×32 they dominate the step with n = 8
// (8 rows per image through a 4096² layer) and a step of batch 128 took ~21 s in PyTorch on
// the 2-core machine, so the Tiny cases use hidden 1024 (both engines). ViT-S/16 keeps 4096.
const TINY_HEADS = {
  projector: { layers: 3, hidden: 1024, out: 256 },
  predictor: { layers: 2, hidden: 1024, out: 256 },
};
const MOCO_HEADS = {
  projector: { layers: 3, hidden: 4096, out: 256 },
  predictor: { layers: 2, hidden: 4096, out: 256 },
};
const COMMON = {
  temperature: 0.2,
  // MoCo-v3's ViT recipe (lr 1.5e-4·B/256, 40 warm-up epochs of 300); iterations start at 0
  schedule: { lr: 1.5e-4, warmupEpochs: 40, epochs: 300, itersPerEpoch: 100 },
  baseMomentum: DEFAULT_BASE_MOMENTUM.mmoco,
  betas: [0.9, 0.95] as [number, number],
  weightDecay: 0.1,
  warmup: 1,
  steps: 2,
};
const TINY = { model: 'vit_tiny', imgSize: 32, patchSize: 4, dim: 192, depth: 12, heads: 3, ...TINY_HEADS } as const;
// ViT-S/16 at 224, batch 32 (the size): ~20–30 s a step on 2 cores, so about 1.5 min per
// engine and case for the warm-up and two timed steps.
const SMALL = {
  model: 'vit_small',
  imgSize: 224,
  patchSize: 16,
  dim: 384,
  depth: 12,
  heads: 6,
  ...MOCO_HEADS,
} as const;

function makeCase(
  base: typeof TINY | typeof SMALL,
  batch: number,
  n: number,
  precision: 'fp32' | 'bf16' = 'fp32',
): StepCase {
  const label = base.model === 'vit_tiny' ? 'ViT-Tiny/4 32x32' : 'ViT-S/16 224x224';
  const h = base.projector.hidden;
  return {
    ...COMMON,
    ...base,
    batch,
    numChunks: n,
    precision,
    name: `${label} batch ${batch} n=${n} m=1 (BN heads, hidden ${h})${precision === 'bf16' ? ' bf16' : ''}`,
    projector: { ...base.projector },
    predictor: { ...base.predictor },
  };
}

export const STEP_CASES: StepCase[] = [
  makeCase(TINY, 128, 1),
  makeCase(TINY, 128, 8),
  makeCase(SMALL, 32, 1),
  makeCase(SMALL, 32, 8),
  makeCase(TINY, 128, 1, 'bf16'),
  makeCase(TINY, 128, 8, 'bf16'),
  makeCase(SMALL, 32, 1, 'bf16'),
  makeCase(SMALL, 32, 8, 'bf16'),
];

type Breakdown = { ema: number; forward: number; backward: number; optimizer: number };

interface SideResult {
  imagesPerSec: number;
  stepMs: number[];
  foreignPct: number;
  loss: number;
  breakdownMs?: Breakdown;
}

// ---- mmoco ----

function runOurs(c: StepCase, breakdown: boolean): SideResult {
  manualSeed(0);
  const make = c.model === 'vit_tiny' ? vitTiny : vitSmall;
  const backbone = make({ imgSize: c.imgSize, patchSize: c.patchSize, numHeads: c.heads });
  const model = new MaskedContrastive(backbone, {
    method: 'mmoco',
    numChunks: c.numChunks,
    targetChunks: 1,
    temperature: c.temperature,
    headNorm: 'bn',
    projector: { numLayers: c.projector.layers, hiddenDim: c.projector.hidden, outDim: c.projector.out },
    predictor: { numLayers: c.predictor.layers, hiddenDim: c.predictor.hidden },
    monitorKappa: false,
  });
  model.train();
  const opt = new optim.AdamW(model.onlineParameters(), {
    lr: c.schedule.lr,
    betas: c.betas,
    weightDecay: c.weightDecay,
  });
  const sched = new optim.WarmupCosine(c.schedule);
  const x1 = randn(c.batch, 3, c.imgSize, c.imgSize);
  const x2 = randn(c.batch, 3, c.imgSize, c.imgSize);
  const step = (iter: number): number =>
    trainStep(model, opt, x1, x2, {
      iter,
      lrSchedule: sched,
      baseMomentum: c.baseMomentum,
      autocast: c.precision === 'bf16' ? { device: 'cpu', dtype: 'bfloat16' } : null,
    }).loss;
  let it = 0;
  for (let i = 0; i < c.warmup; i++) step(it++);
  const [w0, b0, c0] = [now(), machineBusyMs(), ownCpuMs()];
  const xs: number[] = [];
  let loss = NaN;
  for (let i = 0; i < c.steps; i++) {
    const t0 = now();
    loss = step(it++);
    xs.push(now() - t0);
  }
  const foreignPct = foreignCpuPct(now() - w0, machineBusyMs() - b0, ownCpuMs() - c0);
  const r: SideResult = { imagesPerSec: c.batch / (median(xs) / 1e3), stepMs: xs, foreignPct, loss };
  if (breakdown) {
    // trainStep's body, phase by phase. forward() applies the momentum update itself: it is
    // timed alone first (with the schedule's m) and forward then runs with m = 1 (a lerp of
    // weight 0, the same work), so `forward` is that call's time minus the EMA's.
    const phases: Record<keyof Breakdown, number[]> = { ema: [], forward: [], backward: [], optimizer: [] };
    for (let i = 0; i < c.steps; i++) {
      const iter = it++;
      const epoch = iter / sched.itersPerEpoch;
      sched.apply(opt, epoch);
      const m = optim.cosineMomentum(epoch, sched.epochs, c.baseMomentum);
      tidy(() => {
        const t0 = now();
        model.updateMomentumEncoder(m);
        const t1 = now();
        const amp = c.precision === 'bf16' ? ({ device: 'cpu', dtype: 'bfloat16' } as const) : null;
        const { loss } = amp ? autocast(amp, () => model.forward(x1, x2, 1)) : model.forward(x1, x2, 1);
        const t2 = now();
        opt.zeroGrad();
        loss.backward();
        const t3 = now();
        opt.step();
        opt.zeroGrad();
        void loss.item();
        const t4 = now();
        phases.ema.push(t1 - t0);
        phases.forward.push(t2 - t1 - (t1 - t0));
        phases.backward.push(t3 - t2);
        phases.optimizer.push(t4 - t3);
      });
    }
    r.breakdownMs = {
      ema: sig(median(phases.ema), 4),
      forward: sig(median(phases.forward), 4),
      backward: sig(median(phases.backward), 4),
      optimizer: sig(median(phases.optimizer), 4),
    };
  }
  dispose([...opt.state.values()].flatMap((s) => Object.values(s)).filter((t): t is Tensor => typeof t !== 'number'));
  dispose([x1, x2]);
  model.dispose();
  return r;
}

// ---- PyTorch ----

function runTorch(c: StepCase, threads: number): SideResult {
  const script = join(benchSourceDir(), 'step_torch.py');
  const rows = runJsonLines(
    findTorchPython(),
    ['-B', script, '--case', JSON.stringify(c), '--threads', String(threads)],
    process.env,
    20 * 60_000,
  );
  const r = rows[0] as unknown as SideResult | undefined;
  if (!r) throw new Error(`step: step_torch.py printed no result for ${c.name}`);
  return r;
}

// ---- the comparison ----

function parseArgs(args: readonly string[]): { breakdown: boolean; only?: string } {
  let breakdown = false;
  let only: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--breakdown') breakdown = true;
    else if (a === '--only' && i + 1 < args.length) only = args[++i]!;
    else throw new Error(`step: unknown option ${a} (allowed: --breakdown, --only SUBSTRING)`);
  }
  return { breakdown, only };
}

export async function runStep(args: readonly string[]): Promise<void> {
  const { breakdown, only } = parseArgs(args);
  const threads = Math.min(2, availableParallelism());
  setNumThreads(threads);
  process.stderr.write(
    `[step] both engines at ${getNumThreads()} threads; PyTorch: ${findTorchPython()}; ` +
      `per engine and case 1 warm-up + ${COMMON.steps} timed steps\n`,
  );
  const cases = STEP_CASES.filter((c) => only === undefined || c.name.includes(only));
  const ipsByCase = new Map<string, { ours: number; torch: number }>();
  const torchFp32 = new Map<string, number>();
  for (const [idx, c] of cases.entries()) {
    const sides: SideResult[] = [];
    const order = idx % 2 === 0 ? (['ours', 'torch'] as const) : (['torch', 'ours'] as const);
    const res: Partial<Record<'ours' | 'torch', SideResult>> = {};
    for (const side of order) {
      waitForQuiet(25, 10_000, 500);
      process.stderr.write(`[step] ${c.name}: ${side === 'ours' ? 'mmoco' : 'PyTorch'}...\n`);
      res[side] = side === 'ours' ? runOurs(c, breakdown) : runTorch(c, threads);
      sides.push(res[side]!);
    }
    const ours = res.ours!;
    const torch = res.torch!;
    const row: Record<string, unknown> = {
      bench: 'step',
      case: c.name,
      ours: sig(ours.imagesPerSec),
      torch: sig(torch.imagesPerSec),
      unit: 'images/s',
      better: 'higher',
      stat: 'median',
      threads,
      batch: c.batch,
      oursStepMs: ours.stepMs.map((x) => sig(x)),
      torchStepMs: torch.stepMs.map((x) => sig(x)),
      torchBreakdownMs: torch.breakdownMs,
      ...(ours.breakdownMs ? { oursBreakdownMs: ours.breakdownMs } : {}),
      otherLoadPct: Math.round(Math.max(...sides.map((s) => s.foreignPct))),
    };
    const key = `${c.model} ${c.batch} ${c.precision}`;
    const caseKey = `${c.model} ${c.batch} n${c.numChunks}`;
    if (c.precision === 'fp32') torchFp32.set(caseKey, torch.imagesPerSec);
    else if (torchFp32.has(caseKey)) {
      // the second bf16 goal: ours in bf16 against PyTorch in float32 on the same case
      row.torchFp32 = sig(torchFp32.get(caseKey)!);
      row.oursBf16OverTorchFp32 = sig(ours.imagesPerSec / torchFp32.get(caseKey)!);
    }
    if (c.numChunks === 1) ipsByCase.set(key, { ours: ours.imagesPerSec, torch: torch.imagesPerSec });
    else {
      const vit = {
        imgSize: c.imgSize,
        patchSize: c.patchSize,
        dim: c.dim,
        depth: c.depth,
        heads: c.heads,
      };
      const macs = (n: number): number =>
        trainStepMacs({ vit, numChunks: n, targetChunks: 1, projector: c.projector, predictor: c.predictor }).total;
      row.flopsPredictedSpeedup = sig(macs(1) / macs(c.numChunks));
      const base = ipsByCase.get(key);
      if (base) {
        row.measuredSpeedupOurs = sig(ours.imagesPerSec / base.ours);
        row.measuredSpeedupTorch = sig(torch.imagesPerSec / base.torch);
      }
    }
    console.log(JSON.stringify(row));
  }
}
