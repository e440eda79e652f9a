// Weights in and out through the command line: `mmoco info`, `knn` and `linprobe` on PyTorch
// checkpoints of other projects' layouts (test/fixtures/checkpoints), and `mmoco export` of a
// pre-training run as a plain state dict .pth and as MoCo v3's checkpoint, each read back by
// PyTorch itself (Debian's python3-torch, torch.load(weights_only=True)): the .pth loads
// strictly into the plain-PyTorch reference ViT with timm's names (and into timm's
// VisionTransformer where timm is installed) and gives our features; the MoCo v3 file passes
// main_lincls.py's loading (missing keys exactly head.weight/head.bias).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as torch from '../../src/torch/index.js';
import { buildBackbone } from '../../src/train/backbone.js';
import { loadPretrainedBackbone } from '../../src/train/pretrained.js';
import { archFor, readBackboneWeights } from '../../src/train/weights.js';
import { T, values, type Rec } from '../models/fixture.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const CLI = join(HERE, '../../src/cli/main.js');
function sourceDir(): string {
  let dir = HERE;
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'test', 'fixtures', 'checkpoints', 'checkpoints.json')))
      return join(dir, 'test', 'fixtures');
    dir = dirname(dir);
  }
  throw new Error('test/fixtures/checkpoints not found (run test/fixtures/make_checkpoint_fixtures.py)');
}
const FIXTURES = sourceDir();
const CK = join(FIXTURES, 'checkpoints');
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const fx = JSON.parse(readFileSync(join(CK, 'checkpoints.json'), 'utf8')) as any;
const tmp = mkdtempSync(join(tmpdir(), 'mmoco-weights-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const ARCH = { model: 'vit_tiny', imgSize: 16, patchSize: 4, embedDim: 32, depth: 2, numHeads: 2 };
const ARCH_ARGS = ['--model', 'vit_tiny', '--depth', '2', '--embed-dim', '32', '--num-heads', '2', '--img-size', '16', '--patch-size', '4']; // prettier-ignore
const SMALL = ['--data', 'synthetic', '--threads', '1', '--workers', '1'];
const PRE = join(tmp, 'pre');

function mmoco(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 300_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
const last = (s: string): Record<string, unknown> =>
  JSON.parse(s.trim().split('\n').at(-1)!) as Record<string, unknown>;

/** The reference PyTorch: $MMOCO_PYTHON, Debian's python3 (python3-torch), or python3 on PATH. */
function torchPython(): string {
  const candidates = [process.env.MMOCO_PYTHON, '/usr/bin/python3', 'python3'].filter((p): p is string => !!p);
  for (const py of candidates) {
    if (spawnSync(py, ['-c', 'import torch'], { stdio: 'ignore', timeout: 120_000 }).status === 0) return py;
  }
  throw new Error(
    `no Python with PyTorch (tried ${candidates.join(', ')}): this test checks the exports with PyTorch itself; ` +
      'install the reference with scripts/setup.sh --reference (Debian python3-torch) or set MMOCO_PYTHON',
  );
}

before(() => {
  const r = mmoco(['pretrain', ...SMALL, ...ARCH_ARGS, '--batch-size', '8', '--max-steps-per-epoch', '2', '--num-chunks', '2',
    '--proj-hidden-dim', '16', '--pred-hidden-dim', '16', '--proj-out-dim', '8', '--epochs', '2', '--warmup-epochs', '1',
    '--knn-every', '0', '--out', PRE]); // prettier-ignore
  assert.equal(r.status, 0, r.stderr);
});

/** Our ViT's normed tokens for the fixture input, from the run's weights. */
function ourTokens(): number[] {
  const w = readBackboneWeights(PRE);
  const vit = buildBackbone(archFor({ ...ARCH }, w));
  loadPretrainedBackbone(vit, w.tensors);
  for (const t of w.tensors.values()) t.dispose();
  vit.eval();
  const x = T(fx.input as Rec);
  const ours = torch.noGrad(() => vit.forwardFeatures(x));
  const v = values(ours);
  for (const t of [x, ours]) t.dispose();
  vit.dispose();
  return v;
}

function maxDiff(got: number[], want: number[], name: string): number {
  assert.equal(got.length, want.length, name);
  return Math.max(...got.map((v, i) => Math.abs(v - want[i]!)));
}

test('mmoco info file.pth: layout, keys, tensors, parameters, architecture', () => {
  const r = mmoco(['info', join(CK, 'dino.pth'), '--checkpoint-key', 'student']);
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout) as Record<string, unknown>;
  assert.equal(j.layout, 'dino');
  assert.equal(j.format, 'zip');
  assert.deepEqual(j.topLevelKeys, ['student', 'teacher', 'optimizer', 'epoch', 'args', 'dino_loss']);
  assert.deepEqual(j.arch, { ...fx.arch, numHeads: 3 });
  assert.equal((j.backbone as { from: string }).from, 'student module.backbone.*');
  const bad = mmoco(['info', join(CK, 'evil-os-system.pth')]);
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /refusing to load: the pickle calls posix\.system/);
  const key = mmoco(['info', join(CK, 'dino.pth'), '--checkpoint-key', 'nope']);
  assert.notEqual(key.status, 0);
  assert.match(key.stderr, /--checkpoint-key must be one of auto, base_encoder, momentum_encoder, teacher, student/);
});

test('mmoco knn --checkpoint of each layout (.pth, .pth.tar, legacy) evaluates', () => {
  for (const [file, extra] of [
    ['mocov3.pth.tar', []],
    ['mocov3-legacy.pth.tar', ['--checkpoint-key', 'momentum_encoder']],
    ['mae.pth', []],
    ['deit-legacy.pth', []],
    ['dino.pth', ['--checkpoint-key', 'student']],
    ['flat-protocol4.pth', ['--num-heads', '3']],
  ] as const) {
    const r = mmoco(['knn', ...SMALL, '--checkpoint', join(CK, file), ...extra, '--knn-train-samples', '100', '--knn-val-samples', '40']); // prettier-ignore
    assert.equal(r.status, 0, `${file}: ${r.stderr}`);
    const j = last(r.stdout);
    assert.match(String(j.weights), new RegExp(file.replace(/\./g, '\\.')));
    assert.ok(Number(j.top1) >= 0 && Number(j.top1) <= 100 && Number(j.top5) >= Number(j.top1), JSON.stringify(j));
  }
  const r = mmoco(['knn', ...SMALL, '--checkpoint', join(CK, 'mae.pth'), '--checkpoint-key', 'teacher']);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /mae\.pth: checkpoint key 'teacher' does not fit a MAE\/DeiT checkpoint/);
});

test('mmoco linprobe --checkpoint dino.pth trains on the imported teacher', () => {
  const out = join(tmp, 'lp');
  const r = mmoco(['linprobe', ...SMALL, '--checkpoint', join(CK, 'dino.pth'), '--batch-size', '16', '--max-steps-per-epoch', '3',
    '--epochs', '2', '--warmup-epochs', '1', '--out', out]); // prettier-ignore
  assert.equal(r.status, 0, r.stderr);
  const j = last(r.stdout);
  assert.match(String(j.weights), /dino\.pth \(dino teacher\/backbone\)/);
  assert.ok(Number(j.top1) >= 0 && Number(j.top5) >= Number(j.top1));
});

test('mmoco finetune --checkpoint mae.pth: global pool over the imported MAE encoder', () => {
  const out = join(tmp, 'ft');
  const r = mmoco(['finetune', ...SMALL, '--checkpoint', join(CK, 'mae.pth'), '--batch-size', '16', '--max-steps-per-epoch', '2',
    '--epochs', '2', '--warmup-epochs', '1', '--out', out]); // prettier-ignore
  assert.equal(r.status, 0, r.stderr);
  const j = last(r.stdout);
  assert.match(String(j.weights), /mae\.pth \(mae model\)/);
  assert.ok(Number(j.top1) >= 0 && Number(j.top5) >= Number(j.top1));
  assert.ok(existsSync(join(out, 'best.safetensors')));
});

test('mmoco export --format pth and mocov3: PyTorch reads them (weights_only), strictly into its ViT, with our features', () => {
  const pth = join(tmp, 'vit.pth');
  const moco = join(tmp, 'moco.pth.tar');
  const a = mmoco(['export', PRE, '--out', pth]);
  assert.equal(a.status, 0, a.stderr);
  assert.equal(last(a.stdout).format, 'pth');
  const b = mmoco(['export', PRE, '--format', 'mocov3', '--out', moco]);
  assert.equal(b.status, 0, b.stderr);
  const bad = mmoco(['export', PRE, '--format', 'mocov3', '--out', join(tmp, 'x.safetensors')]);
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /--format mocov3 writes a PyTorch file/);

  const want = ourTokens();
  const py = spawnSync(
    torchPython(),
    [join(FIXTURES, 'check_export.py'), JSON.stringify({ pth, mocov3: moco, arch: ARCH, input: fx.input })],
    { encoding: 'utf8', timeout: 300_000 },
  );
  assert.equal(py.status, 0, py.stderr);
  const got = JSON.parse(py.stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
  const close = (name: string, g: number[]): void => {
    const worst = maxDiff(g, want, name);
    assert.ok(worst < 1e-4, `${name}: max |diff| ${worst}`);
  };
  close('reference ViT from the .pth', got.pth as number[]);
  close('reference ViT from the MoCo v3 checkpoint', got.mocov3 as number[]);
  assert.deepEqual(got.mocov3Keys, ['arch', 'epoch', 'state_dict']);
  assert.equal(got.epoch, 2); // two finished epochs, as MoCo v3 counts them
  assert.equal(got.arch, 'vit_tiny');
  assert.deepEqual(got.mocov3Prefixes, ['module.base_encoder', 'module.momentum_encoder', 'module.predictor']);
  assert.deepEqual(got.missing, ['head.bias', 'head.weight']); // main_lincls.py's assertion
  assert.deepEqual(got.unexpected, []);
  if (got.timm !== null) close(`timm ${String(got.timmVersion)} VisionTransformer (strict)`, got.timm as number[]);
});

test('mmoco export --format timm of a .pth converts it; a MoCo v3 export of a .pth is refused', () => {
  const out = join(tmp, 'from-pth.safetensors');
  const r = mmoco(['export', join(CK, 'mae.pth'), '--out', out]);
  assert.equal(r.status, 0, r.stderr);
  const w = readBackboneWeights(out);
  assert.equal(w.tensors.size, 30);
  assert.equal(w.arch.numHeads, 3);
  for (const t of w.tensors.values()) t.dispose();
  const bad = mmoco(['export', join(CK, 'mae.pth'), '--format', 'mocov3', '--out', join(tmp, 'm.pth.tar')]);
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /mae\.pth: the mocov3 format needs a pre-training run/);
});

// timm is not a Debian package: this case runs where `import timm` works (pip install timm)
const timmPython = (() => {
  try {
    const py = torchPython();
    return spawnSync(py, ['-c', 'import timm'], { stdio: 'ignore', timeout: 120_000 }).status === 0 ? py : null;
  } catch {
    return null;
  }
})();
test(
  'the .pth export loads strictly into timm itself',
  { skip: timmPython ? false : 'timm is not installed for the reference Python (pip install timm to run this case)' },
  () => {
    const pth = join(tmp, 'timm.pth');
    assert.equal(mmoco(['export', PRE, '--out', pth]).status, 0);
    const py = spawnSync(
      timmPython!,
      [join(FIXTURES, 'check_export.py'), JSON.stringify({ pth, arch: ARCH, input: fx.input, requireTimm: true })],
      { encoding: 'utf8', timeout: 300_000 },
    );
    assert.equal(py.status, 0, py.stderr);
    const got = JSON.parse(py.stdout.trim().split('\n').at(-1)!) as { timm: number[] };
    const worst = maxDiff(got.timm, ourTokens(), 'timm');
    assert.ok(worst < 1e-4, `timm VisionTransformer: max |diff| ${worst}`);
  },
);
