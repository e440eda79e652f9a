// Data-parallel M-MoCo over Gloo on loopback: 2 processes × batch B reproduce 1 process × batch
// 2B — the loss (mean of the ranks' losses), the gradients after the all-reduce, and the
// parameters after 3 AdamW + EMA steps, within 1e-5 — with LN heads and with BN heads (SyncBN),
// n = 8. The views and masks of the global batch are fixed by seed; rank r takes images
// r·B … (r+1)·B − 1 and their masks. Also the collectives themselves, and a timeout when a peer
// never joins.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as torch from '../../src/torch/index.js';
import type { Tensor } from '../../src/torch/index.js';
import { VisionTransformer } from '../../src/models/index.js';
import { MaskedContrastive, chunkMask, trainStep } from '../../src/ssl/index.js';
import type { HeadNorm } from '../../src/models/index.js';

const { distributed, optim } = torch;
const SELF = fileURLToPath(import.meta.url);
const B = 4; // per rank
const N_CHUNKS = 8;
const STEPS = 3;

interface Out {
  losses: number[];
  grads: Record<string, number[]>;
  params: Record<string, number[]>;
}

const flat = (t: Tensor): number[] => Array.from(t.detach().double().contiguous().toTypedArray() as Float64Array);

/** The global batch: views and masks for 2B images, fixed by seed. */
function globalBatch(): { x1: Tensor; x2: Tensor; masks: Tensor[] } {
  torch.manualSeed(123);
  const x1 = torch.randn([2 * B, 3, 16, 16]);
  const x2 = x1.add(torch.randn([2 * B, 3, 16, 16]).mul(0.3));
  // per step: online masks of both views (n chunks) for 2B images
  const masks: Tensor[] = [];
  for (let s = 0; s < STEPS; s++)
    for (let v = 0; v < 2; v++) masks.push(chunkMask(2 * B, 16, N_CHUNKS).groups[0]!.keep); // 8 | 16: one group
  return { x1, x2, masks };
}

function run(norm: HeadNorm, rank: number | null, port: number, noSync = false): Out {
  const g = globalBatch();
  torch.manualSeed(7); // same init on every rank (and rank 0's is broadcast anyway)
  const backbone = new VisionTransformer({ imgSize: 16, patchSize: 4, embedDim: 32, depth: 2, numHeads: 4 });
  const model = new MaskedContrastive(backbone, {
    numChunks: N_CHUNKS,
    headNorm: norm,
    projector: { hiddenDim: 64, outDim: 16 },
    predictor: { hiddenDim: 64 },
    monitorKappa: false,
  });
  model.train();
  let group: torch.distributed.ProcessGroup | null = null;
  let lo = 0;
  let hi = 2 * B;
  if (rank !== null) {
    group = distributed.ProcessGroup.init({ rank, worldSize: 2, masterPort: port, timeoutMs: 60_000 });
    model.distribute(group);
    // the negative control: BN layers back to this process's batch statistics
    if (noSync)
      model.apply((m) => {
        if (m instanceof torch.nn.BatchNorm) m.syncGroup = null;
      });
    lo = rank * B;
    hi = lo + B;
  }
  const opt = new optim.AdamW(model.onlineParameters(), { lr: 1e-3, betas: [0.9, 0.95], weightDecay: 0.1 });
  const sched = new optim.WarmupCosine({ lr: 1e-3, warmupEpochs: 1, epochs: 10, itersPerEpoch: 2 });
  const x1 = g.x1.narrow(0, lo, hi - lo);
  const x2 = g.x2.narrow(0, lo, hi - lo);
  const out: Out = { losses: [], grads: {}, params: {} };
  const watch = [
    'base_encoder.backbone.blocks.0.attn.qkv.weight',
    'base_encoder.projector.0.weight',
    'predictor.0.weight',
  ];
  const named = new Map(model.namedParameters());
  for (let s = 0; s < STEPS; s++) {
    const rows = (m: Tensor): Tensor => m.narrow(0, lo * N_CHUNKS, (hi - lo) * N_CHUNKS);
    const online: [Tensor, Tensor] = [rows(g.masks[2 * s]!), rows(g.masks[2 * s + 1]!)];
    // the gradients of the first step, after the all-reduce: kept by a zero-lr look before stepping
    if (s === 0) {
      torch.tidy(() => {
        const { loss } = model.forward(x1, x2, 1, { online });
        opt.zeroGrad();
        loss.backward();
        if (group) distributed.allReduceGradients(model.onlineParameters(), group);
        for (const k of watch) out.grads[k] = flat(named.get(k)!.grad!);
        opt.zeroGrad();
      });
    }
    const r = trainStep(model, opt, x1, x2, { iter: s, lrSchedule: sched, masks: { online } });
    out.losses.push(r.loss);
  }
  for (const k of [...watch, 'momentum_encoder.backbone.blocks.1.mlp.fc1.weight', 'base_encoder.projector.1.weight']) {
    const p = new Map([...model.namedParameters()]).get(k);
    if (p) out.params[k] = flat(p);
  }
  group?.destroy();
  return out;
}

// ---- child process entry ----
if (process.env.MMOCO_DDP_CHILD) {
  const { norm, rank, port, file, noSync } = JSON.parse(process.env.MMOCO_DDP_CHILD) as {
    norm: HeadNorm;
    rank: number;
    port: number;
    file: string;
    noSync?: boolean;
  };
  writeFileSync(file, JSON.stringify(run(norm, rank, port, noSync)));
  process.exit(0);
}

const tmp = mkdtempSync(join(tmpdir(), 'mmoco-ddp-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
let nextPort = 29700 + (process.pid % 200);

function child(env: Record<string, unknown>): Promise<number | null> {
  return new Promise((res) => {
    const c = spawn(process.execPath, [SELF], {
      env: { ...process.env, OMP_NUM_THREADS: '1', MMOCO_DDP_CHILD: JSON.stringify(env) },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    c.on('exit', (code) => res(code));
  });
}

function close(got: number[], want: number[], what: string, tol = 1e-5): void {
  assert.equal(got.length, want.length, what);
  const scale = Math.max(1, ...want.map(Math.abs));
  let worst = 0;
  got.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - want[i]!))));
  assert.ok(worst <= tol * scale, `${what}: max |diff| ${worst}`);
}

for (const norm of ['ln', 'bn'] as const) {
  test(`2 processes x batch ${B} = 1 process x batch ${2 * B}: M-MoCo n=8, ${norm.toUpperCase()} heads${norm === 'bn' ? ' (SyncBN)' : ''}`, async () => {
    const port = nextPort++;
    const files = [0, 1].map((r) => join(tmp, `${norm}-${r}.json`));
    const codes = await Promise.all([0, 1].map((rank) => child({ norm, rank, port, file: files[rank] })));
    assert.deepEqual(codes, [0, 0]);
    const [r0, r1] = files.map((f) => JSON.parse(readFileSync(f, 'utf8')) as Out);
    torch.setNumThreads(1);
    const ref = run(norm, null, 0);
    for (let s = 0; s < STEPS; s++)
      close([(r0!.losses[s]! + r1!.losses[s]!) / 2], [ref.losses[s]!], `loss of step ${s}`);
    for (const [k, v] of Object.entries(ref.grads)) {
      close(r0!.grads[k]!, v, `gradient ${k} (rank 0)`);
      close(r1!.grads[k]!, v, `gradient ${k} (rank 1)`);
    }
    for (const [k, v] of Object.entries(ref.params)) {
      close(r0!.params[k]!, v, `${k} after ${STEPS} steps (rank 0)`);
      close(r1!.params[k]!, v, `${k} after ${STEPS} steps (rank 1)`);
    }
  });
}

test('a rank whose peer never joins fails within the timeout with an error, instead of hanging', () => {
  const t0 = Date.now();
  assert.throws(
    () => distributed.ProcessGroup.init({ rank: 0, worldSize: 2, masterPort: nextPort++, timeoutMs: 1500 }),
    /distInit/,
  );
  assert.ok(Date.now() - t0 < 30_000, `took ${Date.now() - t0} ms`);
});

test('the equivalence test can fail: without SyncBN the two ranks normalise with their own batch', async () => {
  const port = nextPort++;
  const files = [0, 1].map((r) => join(tmp, `nosync-${r}.json`));
  const codes = await Promise.all(
    [0, 1].map((rank) => child({ norm: 'bn', rank, port, file: files[rank], noSync: true })),
  );
  assert.deepEqual(codes, [0, 0]);
  const [r0, r1] = files.map((f) => JSON.parse(readFileSync(f, 'utf8')) as Out);
  const ref = run('bn', null, 0);
  const diff = Math.abs((r0!.losses[0]! + r1!.losses[0]!) / 2 - ref.losses[0]!);
  assert.ok(diff > 1e-4, `loss differs by ${diff}`);
});
