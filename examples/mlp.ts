// An example of the tensor library alone: a 2-layer MLP trained with mmoco/torch (SGD with
// momentum written with in-place ops), on Fashion-MNIST when Debian's dataset-fashion-mnist is
// installed and on a generated two-spirals problem otherwise. Prints the loss falling and the
// accuracy. Run it after the build: node dist/examples/mlp.js [--data auto|spirals] [--steps N]
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import * as torch from 'mmoco/torch';
import { data as mmocoData } from 'mmoco';

const { F } = torch;
const { readFashionMnist } = mmocoData;

interface Split {
  x: torch.Tensor;
  y: torch.Tensor;
}

function fashionMnist(): { train: Split; test: Split; name: string } | null {
  const train = readFashionMnist('train');
  const test = readFashionMnist('test');
  if (!train || !test) return null;
  const toSplit = (s: NonNullable<typeof train>): Split => {
    const n = s.images.shape[0]!;
    const x = torch.tidy(() =>
      torch
        .tensor(s.images.data, { shape: [n, 784] })
        .float()
        .div(255)
        .sub(0.286)
        .div(0.353),
    );
    const y = torch.tensor(s.labels, { shape: [n] }).long();
    return { x, y };
  };
  return { train: toSplit(train), test: toSplit(test), name: 'Fashion-MNIST (784 pixels, 10 classes)' };
}

/** Two interleaved spirals in 2-D, a problem a linear model cannot solve. */
function spirals(n: number): Split {
  return torch.tidy(() => {
    const t = torch.rand(n).mul(3 * Math.PI);
    const y = torch.randint(0, 2, [n]);
    const sign = y.mul(2).sub(1).float();
    const r = t.add(0.5);
    const x = torch.stack([r.mul(t.cos()).mul(sign), r.mul(t.sin()).mul(sign)], 1).div(10);
    return { x: x.add(torch.randnLike(x).mul(0.02)), y };
  });
}

export interface MlpOptions {
  /** 'auto': Fashion-MNIST when installed, else the generated spirals */
  data?: 'auto' | 'spirals';
  steps?: number;
  batchSize?: number;
  lr?: number;
  log?: (line: string) => void;
}

export function runMlp(o: MlpOptions = {}): { firstLoss: number; lastLoss: number; accuracy: number } {
  const log = o.log ?? console.log;
  torch.manualSeed(0);
  const real = o.data === 'spirals' ? null : fashionMnist();
  const data = real ?? { train: spirals(4096), test: spirals(1024), name: 'two spirals (generated)' };
  const [nTrain, dIn] = data.train.x.shape as [number, number];
  const hidden = 256;
  const classes = 10;
  const steps = o.steps ?? 600;
  const batch = o.batchSize ?? 128;
  const lr = o.lr ?? 0.05;
  log(`mmoco/torch example: MLP ${dIn}-${hidden}-${classes} on ${data.name}, ${steps} SGD steps of ${batch}`);
  log(`libtorch ${torch.buildInfo().torchVersion}, ${torch.getNumThreads()} threads, BLAS ${torch.blasInfo().vendor}`);

  // Kaiming-uniform-like init, as torch.nn.Linear.
  const param = (shape: number[], fanIn: number): torch.Tensor =>
    torch.keep(
      torch
        .tidy(() =>
          torch
            .rand(shape)
            .mul(2)
            .sub(1)
            .mul(1 / Math.sqrt(fanIn)),
        )
        .requiresGrad_(true),
    );
  const params = [
    param([hidden, dIn], dIn),
    param([hidden], dIn),
    param([classes, hidden], hidden),
    param([classes], hidden),
  ];
  const [w1, b1, w2, b2] = params as [torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor];
  const momentum = params.map((p) => torch.zerosLike(p));
  const forward = (x: torch.Tensor): torch.Tensor => F.linear(F.linear(x, w1, b1).relu(), w2, b2);

  let firstLoss = NaN;
  let lastLoss = NaN;
  let perm = torch.randperm(nTrain);
  let cursor = 0;
  const started = Date.now();
  for (let step = 1; step <= steps; step++) {
    if (cursor + batch > nTrain) {
      perm.dispose();
      perm = torch.randperm(nTrain);
      cursor = 0;
    }
    const loss = torch.tidy(() => {
      const idx = perm.narrow(0, cursor, batch);
      const l = F.crossEntropy(forward(data.train.x.indexSelect(0, idx)), data.train.y.indexSelect(0, idx));
      l.backward();
      torch.noGrad(() => {
        params.forEach((p, i) => {
          const g = p.grad!;
          momentum[i]!.mul_(0.9).add_(g);
          p.sub_(momentum[i]!, lr);
          p.grad = null;
        });
      });
      return l.item() as number;
    });
    cursor += batch;
    if (step === 1) firstLoss = loss;
    lastLoss = loss;
    if (step === 1 || step % 100 === 0 || step === steps)
      log(`step ${String(step).padStart(4)}  loss ${loss.toFixed(4)}`);
  }
  const accuracy = torch.noGrad(() =>
    torch.tidy(() => Number(forward(data.test.x).argmax(1).eq(data.test.y).float().mean().item())),
  );
  const secs = (Date.now() - started) / 1000;
  log(`test accuracy ${(accuracy * 100).toFixed(2)} %  (${(steps / secs).toFixed(0)} steps/s)`);
  torch.dispose([params, momentum, perm, data.train, data.test]);
  return { firstLoss, lastLoss, accuracy };
}

/** The command line: `--data auto|spirals`, `--steps N` (a positive integer). */
function main(argv: string[]): number {
  let values: { data?: string; steps?: string };
  try {
    ({ values } = parseArgs({ args: argv, options: { data: { type: 'string' }, steps: { type: 'string' } } }));
  } catch (e) {
    console.error(`mlp: ${(e as Error).message} (options: --data auto|spirals, --steps N)`);
    return 2;
  }
  const data = values.data ?? 'auto';
  if (data !== 'auto' && data !== 'spirals') {
    console.error(`mlp: --data must be 'auto' or 'spirals', got '${data}'`);
    return 2;
  }
  const steps = values.steps === undefined ? undefined : Number(values.steps);
  if (steps !== undefined && !(Number.isInteger(steps) && steps > 0)) {
    console.error(`mlp: --steps must be a positive integer, got '${values.steps}'`);
    return 2;
  }
  runMlp({ data, steps });
  return 0;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) process.exitCode = main(process.argv.slice(2));
