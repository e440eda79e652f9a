// `mmoco pretrain` / `export` / `info` as a user runs them (child processes of the
// built CLI): a tiny M-MoCo run writes its folder; `kill -9` in the middle of an epoch and the
// same command again continue it with exactly the losses of an uninterrupted run; a diverging
// run stops with status 3 and names the step; bad configs and data paths are errors that name
// the key, the value, the allowed values or the path.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as safetensors from '../../src/torch/io/safetensors.js';

const CLI = join(dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');
const tmp = mkdtempSync(join(tmpdir(), 'mmoco-cli-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** A ViT small enough for seconds per epoch on 2 cores, on the procedural data set. */
const TINY = [
  '--data', 'synthetic', '--model', 'vit_tiny', '--depth', '2', '--embed-dim', '32', '--num-heads', '2',
  '--img-size', '16', '--patch-size', '4', '--num-chunks', '4', '--batch-size', '16',
  '--proj-hidden-dim', '32', '--pred-hidden-dim', '32', '--proj-out-dim', '16',
  '--knn-train-samples', '200', '--knn-val-samples', '100', '--threads', '1', '--workers', '1',
]; // prettier-ignore

function mmoco(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 300_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

interface Rec {
  kind: string;
  step?: number;
  epoch?: number;
  loss?: number;
  lr?: number;
  momentum?: number;
}

function metrics(dir: string): Rec[] {
  return readFileSync(join(dir, 'metrics.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as Rec);
}

const steps = (rs: Rec[]): Rec[] => rs.filter((r) => r.kind === 'step');

test('pretrain: a run folder with config, per-step metrics, kNN per epoch and a checkpoint', () => {
  const out = join(tmp, 'plain');
  const r = mmoco([
    'pretrain',
    ...TINY,
    '--epochs',
    '2',
    '--warmup-epochs',
    '1',
    '--max-steps-per-epoch',
    '4',
    '--out',
    out,
  ]);
  assert.equal(r.status, 0, r.stderr);
  const summary = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { steps: number; knnTop1: number };
  assert.equal(summary.steps, 8);
  const cfg = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')) as Record<string, unknown>;
  assert.equal(cfg.command, 'pretrain');
  assert.equal(cfg.numChunks, 4);
  const rs = metrics(out);
  const st = steps(rs);
  assert.deepEqual(
    st.map((s) => s.step),
    [0, 1, 2, 3, 4, 5, 6, 7],
  );
  for (const s of st) {
    assert.ok(Number.isFinite(s.loss) && Number.isFinite(s.lr) && Number.isFinite(s.momentum));
    for (const k of ['kappaRep', 'kappaProj', 'kappaPred'])
      assert.ok((s as unknown as Record<string, unknown>)[k] !== undefined);
  }
  // warm-up: lr rises over the first epoch (4 steps), then decays
  assert.ok(st[1]!.lr! > st[0]!.lr! && st[3]!.lr! > st[1]!.lr! && st[7]!.lr! < st[4]!.lr!);
  // momentum rises to 1 by half-cosine
  assert.ok(st[7]!.momentum! > st[0]!.momentum! && st[0]!.momentum! >= 0.99);
  const epochs = rs.filter((x) => x.kind === 'epoch') as (Rec & { knnTop1: number })[];
  assert.equal(epochs.length, 2);
  for (const e of epochs) assert.ok(e.knnTop1 >= 0 && e.knnTop1 <= 100);
  assert.ok(existsSync(join(out, 'checkpoint', 'state.json')));
  // the same command again: the run is complete, nothing is trained
  const again = mmoco([
    'pretrain',
    ...TINY,
    '--epochs',
    '2',
    '--warmup-epochs',
    '1',
    '--max-steps-per-epoch',
    '4',
    '--out',
    out,
  ]);
  assert.equal(again.status, 0, again.stderr);
  assert.equal(steps(metrics(out)).length, 8);
});

test('pretrain: kill -9 mid-epoch, the same command resumes and reproduces the uninterrupted losses', async () => {
  const args = ['--epochs', '3', '--warmup-epochs', '1', '--max-steps-per-epoch', '6'];
  const ref = join(tmp, 'ref');
  const r = mmoco(['pretrain', ...TINY, ...args, '--out', ref]);
  assert.equal(r.status, 0, r.stderr);

  const out = join(tmp, 'killed');
  const child = spawn(process.execPath, [CLI, 'pretrain', ...TINY, ...args, '--out', out], { stdio: 'ignore' });
  const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
  // wait for epoch 0's checkpoint and two steps of epoch 1, then kill
  const deadline = Date.now() + 240_000;
  for (;;) {
    const done = existsSync(join(out, 'checkpoint', 'state.json')) && existsSync(join(out, 'metrics.jsonl'));
    if (done && steps(metrics(out)).some((s) => s.step === 7)) break;
    if (Date.now() > deadline) throw new Error('the run did not reach epoch 1 in time');
    await new Promise((res) => setTimeout(res, 50));
  }
  child.kill('SIGKILL');
  await exited;
  const killedAt = steps(metrics(out)).length;
  assert.ok(killedAt >= 8 && killedAt < 18, `killed after ${killedAt} steps`);

  const resumed = mmoco(['pretrain', ...TINY, ...args, '--out', out]);
  assert.equal(resumed.status, 0, resumed.stderr);
  assert.match(resumed.stderr, /resuming .* at epoch 1 \(step 6\)/);
  const a = steps(metrics(ref));
  const b = steps(metrics(out));
  // the log was cut back to the checkpoint: every step once, in order
  assert.deepEqual(
    b.map((s) => s.step),
    a.map((s) => s.step),
  );
  for (let i = 0; i < a.length; i++) {
    assert.equal(b[i]!.loss, a[i]!.loss, `loss of step ${i}`);
    assert.equal(b[i]!.lr, a[i]!.lr, `lr of step ${i}`);
    assert.equal(b[i]!.momentum, a[i]!.momentum, `momentum of step ${i}`);
  }
  const kinds = metrics(out).map((x) => x.kind);
  assert.equal(kinds.filter((k) => k === 'resume').length, 1);
});

test('pretrain: a loss that becomes non-finite stops the run with status 3, naming the step', () => {
  const out = join(tmp, 'nan');
  // an absurd learning rate: the first AdamW step throws the weights to ~1e36 and the next
  // forward overflows float32
  const r = mmoco(['pretrain', ...TINY, '--epochs', '2', '--warmup-epochs', '0', '--blr', '1e38', '--out', out]);
  assert.equal(r.status, 3, r.stderr);
  assert.match(r.stderr, /the loss became (NaN|Infinity|-Infinity) at step \d+ \(epoch 0\); the run stopped/);
  const stop = metrics(out).find((x) => x.kind === 'stop');
  assert.ok(stop, 'a stop record');
});

test('bad configs and data paths are errors that name the problem (status 2)', () => {
  const cases: [string[], RegExp][] = [
    [
      ['pretrain', '--data', 'synthetic', '--set', 'numChunk=8'],
      /unknown key 'numChunk' \(did you mean 'numChunks'\?\)/,
    ],
    [
      ['pretrain', '--data', 'synthetic', '--head-norm', 'gn'],
      /invalid value "gn" for 'headNorm': expected 'bn', 'ln'/,
    ],
    [
      ['pretrain', '--data', 'synthetic', '--num-chunk', '8'],
      /unknown key --num-chunk \(did you mean --num-chunks\?\)/,
    ],
    [
      ['pretrain', '--data', 'synthetic', '--set', 'epochs=1.5'],
      /invalid value "1.5" for 'epochs': expected an integer ≥ 1/,
    ],
    [['pretrain', '--config', 'no-such-preset'], /unknown config preset 'no-such-preset'; presets: .*cifar10-vit-tiny/],
    [['pretrain', '--config', 'finetune-imagenet1k-vit-base'], /is for 'finetune', not 'pretrain'/],
    [['pretrain', '--data', join(tmp, 'missing-folder')], /data folder not found: .*missing-folder/],
    [['pretrain'], /no data: set 'data'/],
    [
      ['pretrain', '--data', 'synthetic', '--epochs', '2', '--warmup-epochs', '5'],
      /warmupEpochs \(5\) must be less than epochs \(2\)/,
    ],
  ];
  for (const [args, re] of cases) {
    const r = mmoco([...args, '--out', join(tmp, 'bad')]);
    assert.equal(r.status, 2, `${args.join(' ')}: status ${r.status}\n${r.stderr}`);
    assert.match(r.stderr, re, args.join(' '));
  }
  const badPreset = join(tmp, 'bad-preset.json');
  writeFileSync(badPreset, JSON.stringify({ command: 'pretrain', temprature: 0.1 }));
  const r = mmoco(['pretrain', '--config', badPreset]);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /bad-preset\.json: unknown key 'temprature' \(did you mean 'temperature'\?\)/);
  // a run folder holding another configuration is not silently overwritten
  const out = join(tmp, 'plain');
  const clash = mmoco([
    'pretrain',
    ...TINY,
    '--epochs',
    '2',
    '--warmup-epochs',
    '1',
    '--num-chunks',
    '2',
    '--out',
    out,
  ]);
  assert.equal(clash.status, 1);
  assert.match(clash.stderr, /holds a run with a different config \(.*numChunks: 4 → 2/);
});

test('--help lists every option with its default, and the presets', () => {
  const r = mmoco(['pretrain', '--help']);
  assert.equal(r.status, 0);
  for (const line of [
    /--num-chunks <int> +n: chunks per online view .*\(default: 8\)/,
    /--target-chunks <int> .*\(default: 1\)/,
    /--head-norm bn\|ln .*\(default: bn\)/,
    /--betas a,b +AdamW betas \(default: 0.9,0.95\)/,
    /--class-attention +two class-attention blocks .*\(default: false\)/,
    /cifar10-vit-tiny +Small recipe/,
  ])
    assert.match(r.stdout, line);
  for (const cmd of ['knn', 'flops', 'export', 'info']) {
    const h = mmoco([cmd, '--help']);
    assert.equal(h.status, 0, cmd);
    assert.match(h.stdout, /usage: mmoco/);
  }
});

test('export writes the online backbone with timm names; info describes run and file', () => {
  const run = join(tmp, 'plain');
  const file = join(tmp, 'backbone.safetensors');
  const r = mmoco(['export', run, '--out', file]);
  assert.equal(r.status, 0, r.stderr);
  const l = safetensors.load(file);
  const keys = [...l.tensors.keys()].sort();
  // timm's VisionTransformer state dict of a depth-2 ViT (head Identity: no head keys)
  const want = [
    'cls_token', 'pos_embed', 'patch_embed.proj.weight', 'patch_embed.proj.bias',
    ...[0, 1].flatMap((i) => ['norm1.weight', 'norm1.bias', 'attn.qkv.weight', 'attn.qkv.bias', 'attn.proj.weight',
      'attn.proj.bias', 'norm2.weight', 'norm2.bias', 'mlp.fc1.weight', 'mlp.fc1.bias', 'mlp.fc2.weight', 'mlp.fc2.bias']
      .map((k) => `blocks.${i}.${k}`)),
    'norm.weight', 'norm.bias',
  ].sort(); // prettier-ignore
  assert.deepEqual(keys, want);
  assert.deepEqual(l.tensors.get('blocks.0.attn.qkv.weight')!.shape, [96, 32]);
  assert.equal(l.metadata.model, 'vit_tiny');
  assert.equal(l.metadata.depth, '2');
  for (const t of l.tensors.values()) t.dispose();

  const info = mmoco(['info', run]);
  assert.equal(info.status, 0, info.stderr);
  const j = JSON.parse(info.stdout) as { progress: { epoch: number; step: number }; modules: Record<string, unknown> };
  assert.deepEqual([j.progress.epoch, j.progress.step], [1, 8]);
  assert.ok(j.modules.model && j.modules.optimizer === undefined);
  const fi = mmoco(['info', file]);
  assert.equal(fi.status, 0, fi.stderr);
  assert.match(fi.stdout, /"tensors": 30/);
  // a folder without a checkpoint is an error naming it
  const bad = mmoco(['export', tmp]);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /no checkpoint in this folder/);
});

/** An uninterrupted 2-epoch run of 8 steps per epoch (no mid-epoch checkpoints), made once. */
const LONG = ['--epochs', '2', '--warmup-epochs', '1', '--max-steps-per-epoch', '8'];
let uninterrupted: string | null = null;
function reference(): string {
  if (uninterrupted) return uninterrupted;
  const dir = join(tmp, 'ref-long');
  const r = mmoco(['pretrain', ...TINY, ...LONG, '--checkpoint-every-minutes', '0', '--out', dir]);
  assert.equal(r.status, 0, r.stderr);
  return (uninterrupted = dir);
}

/** The final state of two runs is bit-identical: checkpoint files and every logged step. */
function assertSameRun(a: string, b: string): void {
  for (const f of ['model.safetensors', 'optimizer.safetensors', 'optimizer.json']) {
    assert.ok(readFileSync(join(a, 'checkpoint', f)).equals(readFileSync(join(b, 'checkpoint', f))), `${f} differs`);
  }
  const sa = steps(metrics(a));
  const sb = steps(metrics(b));
  assert.deepEqual(
    sb.map((s) => [s.step, s.loss, s.lr, s.momentum]),
    sa.map((s) => [s.step, s.loss, s.lr, s.momentum]),
  );
  const ea = metrics(a).filter((r) => r.kind === 'epoch');
  const eb = metrics(b).filter((r) => r.kind === 'epoch');
  assert.deepEqual(
    eb.map((e) => [e.epoch, e.loss]),
    ea.map((e) => [e.epoch, e.loss]),
  );
}

interface Progress {
  epoch: number;
  step: number;
  partial?: { epoch: number; batch: number; lossSum: number };
}

function progressOf(dir: string): Progress | null {
  try {
    return (JSON.parse(readFileSync(join(dir, 'checkpoint', 'state.json'), 'utf8')) as { progress: Progress }).progress;
  } catch {
    return null; // not written yet, or between the two renames of a save
  }
}

test('pretrain: kill -9 inside an epoch after a mid-epoch checkpoint; the same command resumes from it, bit-identical', async () => {
  const ref = reference();
  const out = join(tmp, 'mid-epoch');
  // 0.0005 minutes: a checkpoint every 30 ms, i.e. after about every step of this tiny model
  const args = ['pretrain', ...TINY, ...LONG, '--checkpoint-every-minutes', '0.0005', '--out', out];
  const child = spawn(process.execPath, [CLI, ...args], { stdio: 'ignore' });
  let finished = false;
  const exited = new Promise<number | null>((res) =>
    child.on('exit', (code) => {
      finished = true;
      res(code);
    }),
  );
  const deadline = Date.now() + 240_000;
  // a checkpoint inside epoch 1 with at least 3 steps of it left (no epoch-end save can follow at once)
  for (;;) {
    const p = progressOf(out);
    if (p?.partial && p.partial.epoch === 1 && p.partial.batch <= 5) break;
    if (finished || Date.now() > deadline)
      throw new Error('no mid-epoch checkpoint inside epoch 1 before the run ended');
    await new Promise((res) => setTimeout(res, 5));
  }
  child.kill('SIGKILL');
  assert.equal(await exited, null, 'killed, not finished');
  const at = progressOf(out)!;
  assert.ok(at.partial, `the checkpoint is still a mid-epoch one: ${JSON.stringify(at)}`);
  assert.equal(at.epoch, 0, 'progress.epoch is the last complete epoch');
  assert.equal(at.step, 8 + at.partial.batch);
  // what the kill lost: only the steps logged after that checkpoint
  const lost = steps(metrics(out)).filter((s) => s.step! >= at.step).length;
  assert.ok(lost <= 8 - at.partial.batch, `lost ${lost} steps`);

  const resumed = mmoco(args);
  assert.equal(resumed.status, 0, resumed.stderr);
  assert.match(resumed.stderr, new RegExp(`resuming .* at epoch 1, batch ${at.partial.batch} \\(step ${at.step}\\)`));
  assertSameRun(ref, out);
  // without a TTY: a line per 10 % of an epoch, counted from the resume point, with images/s and ETA
  const lines = resumed.stderr.split('\n').filter((l) => /^\d+\/8 \(\d+%\) epoch 2\/2 /.test(l));
  assert.deepEqual(
    lines.map((l) => Number(l.split('/')[0])),
    Array.from({ length: 7 - at.partial.batch }, (_, k) => at.partial!.batch + 1 + k),
  );
  for (const l of lines.slice(1)) assert.match(l, / loss \d+\.\d{4} lr \S+ \d+\.\d img\/s eta \d+s$/);
  const resumes = metrics(out).filter((r) => r.kind === 'resume') as (Rec & { batch?: number })[];
  assert.deepEqual(
    resumes.map((r) => [r.epoch, r.step, r.batch]),
    [[1, at.step, at.partial.batch]],
  );
});

test('pretrain: a full disk at the second checkpoint names the path and leaves no temporary folder; the rerun is bit-identical', () => {
  const ref = reference();
  const out = join(tmp, 'full-disk');
  const args = ['pretrain', ...TINY, ...LONG, '--checkpoint-every-minutes', '0', '--out', out];
  const r = spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8',
    timeout: 300_000,
    env: { ...process.env, MMOCO_FAIL_CHECKPOINT: '2' },
  });
  assert.equal(r.status, 1, r.stderr);
  assert.match(
    r.stderr,
    /could not write checkpoint \S*full-disk\/checkpoint \(ENOSPC: no space left on device, write\); the previous checkpoint \(end of epoch 0, step 8\) is intact/,
  );
  assert.deepEqual(
    readdirSync(out).filter((f) => f.startsWith('.')),
    [],
    'no temporary folder',
  );
  assert.equal(progressOf(out)!.epoch, 0);
  // what a kill during a write leaves behind (a dead writer's folder) goes at the next start
  const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
  mkdirSync(join(out, `.checkpoint.tmp-${dead}`));
  writeFileSync(join(out, `.checkpoint.tmp-${dead}`, 'model.safetensors'), 'torn');
  const again = mmoco(args);
  assert.equal(again.status, 0, again.stderr);
  assert.match(again.stderr, new RegExp(`removed \\.checkpoint\\.tmp-${dead}, left behind by an interrupted write`));
  assert.match(again.stderr, /resuming .* at epoch 1 \(step 8\)/);
  assert.deepEqual(
    readdirSync(out).filter((f) => f.startsWith('.')),
    [],
  );
  assertSameRun(ref, out);
});

test('pretrain: a finished run continues with a larger --epochs (schedules over the new length, extend record, report marker)', () => {
  const out = join(tmp, 'extended');
  const base = ['pretrain', ...TINY, '--warmup-epochs', '1', '--max-steps-per-epoch', '4', '--knn-every', '0'];
  const first = mmoco([...base, '--epochs', '2', '--out', out]);
  assert.equal(first.status, 0, first.stderr);
  const before = steps(metrics(out));
  const r = mmoco([...base, '--epochs', '3', '--out', out]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /resuming .* at epoch 2 \(step 8\)/);
  assert.match(r.stderr, /epochs 2 → 3: the learning-rate and momentum schedules follow the new length from step 8/);
  const rs = metrics(out);
  const st = steps(rs);
  assert.deepEqual(
    st.map((s) => s.step),
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
  );
  assert.deepEqual(st.slice(0, 8), before, 'the first two epochs are kept as they were');
  assert.deepEqual(
    rs.filter((x) => x.kind === 'epoch').map((e) => e.epoch),
    [0, 1, 2],
  );
  const ext = rs.filter((x) => x.kind === 'extend') as (Rec & { fromEpochs: number; toEpochs: number })[];
  assert.deepEqual(
    ext.map((e) => [e.epoch, e.step, e.fromEpochs, e.toEpochs]),
    [[2, 8, 2, 3]],
  );
  // lr and momentum of the new steps follow warm-up + cosine and the momentum cosine over 3 epochs
  const peak = (1.5e-4 * 16) / 256;
  for (const s of st.slice(8)) {
    const e = s.step! / 4;
    const lr = 0.5 * peak * (1 + Math.cos((Math.PI * (e - 1)) / 2));
    const m = 1 - 0.5 * (1 + Math.cos((Math.PI * e) / 3)) * (1 - 0.99);
    assert.ok(Math.abs(s.lr! - lr) <= 1e-12 * peak, `lr of step ${s.step}: ${s.lr} vs ${lr}`);
    assert.ok(Math.abs(s.momentum! - m) <= 1e-12, `momentum of step ${s.step}`);
  }
  assert.equal((JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')) as { epochs: number }).epochs, 3);
  // the report marks where the run was extended
  const rep = mmoco(['report', out]);
  assert.equal(rep.status, 0, rep.stderr);
  assert.match(readFileSync(join(out, 'report.html'), 'utf8'), /epochs 2 → 3/);
  // fewer epochs than done, or another changed key, are refused naming them
  const fewer = mmoco([...base, '--epochs', '2', '--out', out]);
  assert.equal(fewer.status, 1);
  assert.match(fewer.stderr, /epochs 2 is less than the 3 epochs this run has done; give epochs ≥ 3/);
  const other = mmoco([...base, '--epochs', '4', '--blr', '3e-4', '--out', out]);
  assert.equal(other.status, 1);
  assert.match(other.stderr, /holds a run with a different config \(blr: 0\.00015 → 0\.0003\)/);
  assert.equal(steps(metrics(out)).length, 12, 'a refused command trains nothing');
});
