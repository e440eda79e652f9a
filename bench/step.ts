// `npm run bench -- step [--device cpu|cuda] [--toy] [--compile] [--breakdown] [--only SUBSTRING]`:
// images/s of one Masked MoCo pre-training step, mmoco's `trainStep` against the same step in
// Python PyTorch (bench/step_torch.py), same machine, same run, both at the same thread count
// (2, or 1 on a one-core machine).
//
// --device cuda: the GPU cases (bf16 autocast on both sides, PyTorch's fused AdamW), a `peak`
// row (a large bf16 matrix product, ours and PyTorch's: the card's reachable TFLOP/s) and for
// every case the achieved TFLOP/s (2 × the FLOP counter's multiply-adds of the step / step time)
// against that peak. --compile also times `torch.compile` of PyTorch's model on the cases marked
// for it (compile time reported apart). --toy: the same cases at toy sizes (a 2-block ViT, batch
// 8), so that the whole path runs in seconds on any device (CI runs it through gpu-check.sh).
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
  cuda,
  dispose,
  matmul,
  getNumThreads,
  manualSeed,
  optim,
  randn,
  setNumThreads,
  tidy,
  type Tensor,
} from '../src/torch/index.js';
import { VisionTransformer } from '../src/models/index.js';
import {
  GraphedTrainStep,
  MaskedContrastive,
  trainStep,
  trainStepMacs,
  DEFAULT_BASE_MOMENTUM,
} from '../src/ssl/index.js';

interface HeadSize {
  layers: number;
  hidden: number;
  out: number;
}

interface StepCase {
  name: string;
  model: 'vit_tiny' | 'vit_small' | 'vit_base' | 'toy';
  device: 'cpu' | 'cuda';
  /** time torch.compile of PyTorch's model too (with --compile) */
  compile?: boolean;
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

type Base = Pick<StepCase, 'model' | 'imgSize' | 'patchSize' | 'dim' | 'depth' | 'heads' | 'projector' | 'predictor'>;

const LABELS: Record<StepCase['model'], string> = {
  vit_tiny: 'ViT-Tiny/4 32x32',
  vit_small: 'ViT-S/16 224x224',
  vit_base: 'ViT-B/16 224x224',
  toy: 'toy ViT (2 blocks, 64-d)/8 32x32',
};

function makeCase(
  base: Base,
  batch: number,
  n: number,
  precision: 'fp32' | 'bf16' = 'fp32',
  o: { device?: 'cpu' | 'cuda'; warmup?: number; steps?: number; compile?: boolean } = {},
): StepCase {
  const device = o.device ?? 'cpu';
  const h = base.projector.hidden;
  return {
    ...COMMON,
    ...base,
    device,
    batch,
    numChunks: n,
    precision,
    warmup: o.warmup ?? COMMON.warmup,
    steps: o.steps ?? COMMON.steps,
    compile: o.compile ?? false,
    name:
      `${device === 'cuda' ? 'cuda ' : ''}${LABELS[base.model]} batch ${batch} n=${n} m=1 (BN heads, hidden ${h})` +
      (precision === 'bf16' ? ' bf16' : ''),
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

// The GPU cases of the issue: MoCo v3's ViT-S (12 heads, as its vits.py and our ImageNet
// presets) and ViT-B with 4096-wide heads, and the CIFAR recipe's ViT-Tiny/4 (1024-wide heads,
// configs/cifar10-vit-tiny.json), all under bf16 autocast. 3 warm-up and 10 timed steps.
// torch.compile (about a minute per case) on the case where launch overhead matters most.
const GPU = { device: 'cuda', warmup: 3, steps: 10 } as const;
const SMALL12 = { ...SMALL, heads: 12 };
const BASE = { ...SMALL, model: 'vit_base', dim: 768, heads: 12 } as const;
export const CUDA_STEP_CASES: StepCase[] = [
  makeCase(SMALL12, 256, 1, 'bf16', GPU),
  makeCase(SMALL12, 256, 8, 'bf16', GPU),
  makeCase(BASE, 128, 8, 'bf16', GPU),
  makeCase(TINY, 512, 1, 'bf16', GPU),
  makeCase(TINY, 512, 8, 'bf16', { ...GPU, compile: true }),
];

// Toy sizes of the same step for any device: the whole path in seconds (CI).
const TOY = {
  model: 'toy',
  imgSize: 32,
  patchSize: 8,
  dim: 64,
  depth: 2,
  heads: 2,
  projector: { layers: 3, hidden: 128, out: 32 },
  predictor: { layers: 2, hidden: 128, out: 32 },
} as const;
export function toyCases(device: 'cpu' | 'cuda'): StepCase[] {
  const precision = device === 'cuda' ? 'bf16' : 'fp32';
  return [
    makeCase(TOY, 8, 1, precision, { device, warmup: 1, steps: 3, compile: true }),
    makeCase(TOY, 8, 4, precision, { device, warmup: 1, steps: 3 }),
  ];
}

type Breakdown = { ema: number; forward: number; backward: number; optimizer: number };

interface SideResult {
  imagesPerSec: number;
  stepMs: number[];
  foreignPct: number;
  loss: number;
  breakdownMs?: Breakdown;
}

// ---- mmoco ----

function runOurs(c: StepCase, breakdown: boolean, mode: 'eager' | 'graph' = 'eager'): SideResult {
  manualSeed(0);
  const backbone = new VisionTransformer({
    imgSize: c.imgSize,
    patchSize: c.patchSize,
    embedDim: c.dim,
    depth: c.depth,
    numHeads: c.heads,
  });
  const model = new MaskedContrastive(backbone, {
    method: 'mmoco',
    numChunks: c.numChunks,
    targetChunks: 1,
    temperature: c.temperature,
    headNorm: 'bn',
    projector: { numLayers: c.projector.layers, hiddenDim: c.projector.hidden, outDim: c.projector.out },
    predictor: { numLayers: c.predictor.layers, hiddenDim: c.predictor.hidden },
    monitorKappa: false,
  }).to(c.device);
  model.train();
  const opt = new optim.AdamW(model.onlineParameters(), {
    lr: c.schedule.lr,
    betas: c.betas,
    weightDecay: c.weightDecay,
  });
  const sched = new optim.WarmupCosine(c.schedule);
  const x1 = randn([c.batch, 3, c.imgSize, c.imgSize], { device: c.device });
  const x2 = randn([c.batch, 3, c.imgSize, c.imgSize], { device: c.device });
  const amp = c.precision === 'bf16' ? ({ device: c.device, dtype: 'bfloat16' } as const) : null;
  // both read the loss (loss.item()), which waits for the device: the wall time of a step is
  // its GPU time too. 'graph': the step captured once as a CUDA graph, then replayed
  const graphed =
    mode === 'graph'
      ? new GraphedTrainStep(model, opt, x1.shape, {
          lrSchedule: sched,
          baseMomentum: c.baseMomentum,
          autocast: amp,
          warmup: Math.max(1, c.warmup - 1),
        })
      : null;
  const step = (iter: number): number =>
    graphed
      ? graphed.step(x1, x2, iter).loss
      : trainStep(model, opt, x1, x2, {
          iter,
          lrSchedule: sched,
          baseMomentum: c.baseMomentum,
          autocast: amp,
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
        if (c.device === 'cuda') cuda.synchronize();
        const t0 = now();
        model.updateMomentumEncoder(m);
        if (c.device === 'cuda') cuda.synchronize();
        const t1 = now();
        const { loss } = amp ? autocast(amp, () => model.forward(x1, x2, 1)) : model.forward(x1, x2, 1);
        if (c.device === 'cuda') cuda.synchronize();
        const t2 = now();
        opt.zeroGrad();
        loss.backward();
        if (c.device === 'cuda') cuda.synchronize();
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
  graphed?.dispose();
  dispose([...opt.state.values()].flatMap((s) => Object.values(s)).filter((t): t is Tensor => typeof t !== 'number'));
  dispose([x1, x2]);
  model.dispose();
  return r;
}

// ---- PyTorch ----

interface TorchResult extends SideResult {
  /** the same step with the model under torch.compile */
  compiled?: SideResult & { compileS: number };
  /** why torch.compile was not timed */
  compileSkipped?: string;
}

function runTorch(c: StepCase, threads: number, compile: boolean): TorchResult {
  const script = join(benchSourceDir(), 'step_torch.py');
  const rows = runJsonLines(
    findTorchPython(),
    ['-B', script, '--case', JSON.stringify(c), '--threads', String(threads), ...(compile ? ['--compile'] : [])],
    process.env,
    20 * 60_000,
  );
  const r = rows.find((x) => x.mode === undefined) as unknown as SideResult | undefined;
  if (!r) throw new Error(`step: step_torch.py printed no result for ${c.name}`);
  const compiled = rows.find((x) => x.mode === 'compile') as unknown as TorchResult['compiled'];
  const skipped = rows.find((x) => x.mode === 'compile-skipped')?.compileSkipped;
  return {
    ...r,
    ...(compiled ? { compiled } : {}),
    ...(typeof skipped === 'string' ? { compileSkipped: skipped } : {}),
  };
}

// ---- the card's reachable bf16 rate ----

/** TFLOP/s of an s³ bf16 matrix product on `device`, ours (median of `reps` after 3 warm-ups). */
function oursMatmulTflops(device: 'cpu' | 'cuda', s: number, reps: number): number {
  return tidy(() => {
    const a = randn([s, s], { device, dtype: 'bfloat16' });
    const b = randn([s, s], { device, dtype: 'bfloat16' });
    const sync = (): void => (device === 'cuda' ? cuda.synchronize() : undefined);
    for (let i = 0; i < 3; i++) matmul(a, b).dispose();
    sync();
    const xs: number[] = [];
    for (let i = 0; i < reps; i++) {
      const t0 = now();
      matmul(a, b).dispose();
      sync();
      xs.push(now() - t0);
    }
    return (2 * s ** 3) / (median(xs) / 1e3) / 1e12;
  });
}

function peakRow(device: 'cpu' | 'cuda', toy: boolean): number {
  const size = device === 'cuda' && !toy ? 8192 : 512;
  const reps = device === 'cuda' ? 10 : 3;
  const ours = oursMatmulTflops(device, size, reps);
  const rows = runJsonLines(
    findTorchPython(),
    ['-B', join(benchSourceDir(), 'step_torch.py'), '--peak', String(size), '--device', device, '--reps', String(reps)],
    process.env,
    5 * 60_000,
  );
  const torch = Number(rows[0]?.tflops);
  console.log(
    JSON.stringify({
      bench: 'step',
      case: `${device === 'cuda' ? 'cuda ' : ''}peak: bf16 matmul ${size}x${size}x${size}`,
      ours: sig(ours),
      torch: sig(torch),
      unit: 'TFLOP/s',
      better: 'higher',
      stat: 'median',
    }),
  );
  return Math.max(ours, Number.isFinite(torch) ? torch : 0);
}

// ---- the comparison ----

interface StepArgs {
  breakdown: boolean;
  only?: string;
  device: 'cpu' | 'cuda';
  toy: boolean;
  compile: boolean;
}

function parseArgs(args: readonly string[]): StepArgs {
  const o: StepArgs = { breakdown: false, device: 'cpu', toy: false, compile: false };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--breakdown') o.breakdown = true;
    else if (a === '--toy') o.toy = true;
    else if (a === '--compile') o.compile = true;
    else if (a === '--only' && i + 1 < args.length) o.only = args[++i]!;
    else if (a === '--device' && i + 1 < args.length) {
      const d = args[++i]!;
      if (d !== 'cpu' && d !== 'cuda') throw new Error(`step: --device must be cpu or cuda, got '${d}'`);
      o.device = d;
    } else
      throw new Error(
        `step: unknown option ${a} (allowed: --device cpu|cuda, --toy, --compile, --breakdown, --only SUBSTRING)`,
      );
  }
  return o;
}

export async function runStep(args: readonly string[]): Promise<void> {
  const { breakdown, only, device, toy, compile } = parseArgs(args);
  if (device === 'cuda' && !cuda.isAvailable()) {
    throw new Error(
      'step: --device cuda, but this build of the addon has no CUDA device (build against a CUDA libtorch)',
    );
  }
  const threads = Math.min(2, availableParallelism());
  setNumThreads(threads);
  const all = toy ? toyCases(device) : device === 'cuda' ? CUDA_STEP_CASES : STEP_CASES;
  const cases = all.filter((c) => only === undefined || c.name.includes(only));
  process.stderr.write(
    `[step] ${device}; both engines at ${getNumThreads()} threads; PyTorch: ${findTorchPython()}; ` +
      `${cases.length} cases\n`,
  );
  // the reachable rate the achieved TFLOP/s are compared with (GPU and toy runs)
  const peak = device === 'cuda' || toy ? peakRow(device, toy) : NaN;
  const ipsByCase = new Map<string, { ours: number; torch: number }>();
  const torchFp32 = new Map<string, number>();
  for (const [idx, c] of cases.entries()) {
    const sides: SideResult[] = [];
    const order = idx % 2 === 0 ? (['ours', 'torch'] as const) : (['torch', 'ours'] as const);
    const res: { ours?: SideResult; torch?: TorchResult } = {};
    for (const side of order) {
      if (device === 'cpu') waitForQuiet(25, 10_000, 500);
      process.stderr.write(`[step] ${c.name}: ${side === 'ours' ? 'mmoco' : 'PyTorch'}...\n`);
      if (side === 'ours') res.ours = runOurs(c, breakdown);
      else res.torch = runTorch(c, threads, compile && c.compile === true);
      sides.push(res[side]!);
    }
    // the same step captured as a CUDA graph (GraphedTrainStep), where this build has graphs
    const graph = c.device === 'cuda' && cuda.graphsAvailable() ? runOurs(c, false, 'graph') : null;
    const eager = res.ours!;
    const ours = graph ?? eager;
    const torch = res.torch!;
    const vit = { imgSize: c.imgSize, patchSize: c.patchSize, dim: c.dim, depth: c.depth, heads: c.heads };
    const macs = (n: number): number =>
      trainStepMacs({ vit, numChunks: n, targetChunks: 1, projector: c.projector, predictor: c.predictor }).total;
    const tflops = (ips: number): number => (2 * macs(c.numChunks) * ips) / c.batch / 1e12;
    const row: Record<string, unknown> = {
      bench: 'step',
      case: c.name,
      ours: sig(ours.imagesPerSec),
      torch: sig(torch.imagesPerSec),
      unit: 'images/s',
      better: 'higher',
      stat: 'median',
      device: c.device,
      threads,
      batch: c.batch,
      ratio: sig(ours.imagesPerSec / torch.imagesPerSec, 3),
      oursMode: ours === graph ? 'cuda-graph' : 'eager',
      oursEager: sig(eager.imagesPerSec),
      ...(graph ? { oursGraph: sig(graph.imagesPerSec), oursGraphStepMs: graph.stepMs.map((x) => sig(x)) } : {}),
      oursStepMs: ours.stepMs.map((x) => sig(x)),
      torchStepMs: torch.stepMs.map((x) => sig(x)),
      torchBreakdownMs: torch.breakdownMs,
      ...(ours.breakdownMs ? { oursBreakdownMs: ours.breakdownMs } : {}),
      ...(device === 'cpu' ? { otherLoadPct: Math.round(Math.max(...sides.map((s) => s.foreignPct))) } : {}),
    };
    if (Number.isFinite(peak)) {
      row.oursTflops = sig(tflops(ours.imagesPerSec), 3);
      row.torchTflops = sig(tflops(torch.imagesPerSec), 3);
      row.peakTflops = sig(peak, 3);
      row.oursOfPeak = sig(tflops(ours.imagesPerSec) / peak, 3);
    }
    if (torch.compiled) {
      row.torchCompiled = sig(torch.compiled.imagesPerSec);
      row.torchCompiledStepMs = torch.compiled.stepMs.map((x) => sig(x));
      row.torchCompileS = torch.compiled.compileS;
      row.ratioToCompiled = sig(ours.imagesPerSec / torch.compiled.imagesPerSec, 3);
    } else if (torch.compileSkipped) row.torchCompileSkipped = torch.compileSkipped;
    const key = `${c.device} ${c.model} ${c.batch} ${c.precision}`;
    const caseKey = `${c.device} ${c.model} ${c.batch} n${c.numChunks}`;
    if (c.precision === 'fp32') torchFp32.set(caseKey, torch.imagesPerSec);
    else if (torchFp32.has(caseKey)) {
      // the second bf16 goal: ours in bf16 against PyTorch in float32 on the same case
      row.torchFp32 = sig(torchFp32.get(caseKey)!);
      row.oursBf16OverTorchFp32 = sig(ours.imagesPerSec / torchFp32.get(caseKey)!);
    }
    if (c.numChunks === 1) ipsByCase.set(key, { ours: ours.imagesPerSec, torch: torch.imagesPerSec });
    else {
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
