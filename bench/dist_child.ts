// One rank of `npm run bench -- dist` (mmoco side): the CIFAR recipe's model, the process group
// from RANK / WORLD_SIZE / MASTER_* (none with one process), `warmup` + `steps` timed trainSteps
// on fixed views; prints {"stepMs": [...]} (rank 0's times; the ranks move in lockstep).
import { distributed, manualSeed, optim, randn, setNumThreads } from '../src/torch/index.js';
import { vitTiny } from '../src/models/index.js';
import { MaskedContrastive, trainStep } from '../src/ssl/index.js';
import { now } from './common.js';
import type { DistCase } from './dist.js';

const c = JSON.parse(process.argv[2]!) as DistCase;
setNumThreads(1);
const group = distributed.ProcessGroup.fromEnv({ timeoutMs: 600_000 });
manualSeed(0);
const model = new MaskedContrastive(vitTiny({ imgSize: 32, patchSize: 4 }), {
  numChunks: 8,
  headNorm: 'ln',
  projector: { hiddenDim: 1024, outDim: 256 },
  predictor: { hiddenDim: 1024 },
  monitorKappa: false,
});
model.train();
if (group) model.distribute(group);
const opt = new optim.AdamW(model.onlineParameters(), { lr: 1.5e-4, betas: [0.9, 0.95], weightDecay: 0.1 });
const sched = new optim.WarmupCosine({ lr: 1.5e-4, warmupEpochs: 40, epochs: 300, itersPerEpoch: 100 });
manualSeed(1 + (group?.rank ?? 0));
const x1 = randn(c.batch, 3, 32, 32);
const x2 = randn(c.batch, 3, 32, 32);
const ms: number[] = [];
for (let it = 0; it < c.warmup + c.steps; it++) {
  const t0 = now();
  trainStep(model, opt, x1, x2, { iter: it, lrSchedule: sched });
  if (it >= c.warmup) ms.push(now() - t0);
}
group?.destroy();
console.log(JSON.stringify({ stepMs: ms }));
