// `mmoco pack` and `mmoco info` on a pack as a user runs them, and a pack as --data: kNN of the
// same random ViT on the pack and on the folder it came from gives the same accuracy (the same
// pixels, labels and order), and pre-training runs on it.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { closeDecodePool } from '../../src/data/decode-pool.js';
import { SyntheticImages, writeImageFolder } from '../../src/data/synthetic.js';

const CLI = join(dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');
const tmp = mkdtempSync(join(tmpdir(), 'mmoco-packcli-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const ROOT = join(tmp, 'set');
const PACK = join(tmp, 'set.mmpack');
const ARCH = ['--model', 'vit_tiny', '--depth', '2', '--embed-dim', '32', '--num-heads', '2', '--img-size', '16', '--patch-size', '4']; // prettier-ignore

function mmoco(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 300_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const last = (s: string): Record<string, unknown> =>
  JSON.parse(s.trim().split('\n').at(-1)!) as Record<string, unknown>;

before(async () => {
  await writeImageFolder(new SyntheticImages({ length: 120, size: 16, seed: 1, numClasses: 4 }), join(ROOT, 'train'));
  await writeImageFolder(new SyntheticImages({ length: 40, size: 16, seed: 2, numClasses: 4 }), join(ROOT, 'val'));
  await closeDecodePool();
});

test('mmoco pack writes one file and prints counts, bytes and ratio; info summarises it', () => {
  const r = mmoco(['pack', ROOT, PACK]);
  assert.equal(r.status, 0, r.stderr);
  const j = last(r.stdout);
  assert.deepEqual(j.splits, { train: 120, val: 40 });
  assert.equal(j.images, 160);
  assert.equal(j.file, PACK);
  // sharp writes optimised Huffman tables, one set per image: the images share the part before
  // them (JFIF, quantisation tables, frame), one header for all 16 px JPEGs of one quality
  assert.equal(j.headers, 1);
  assert.ok(Number(j.bytes) > 0 && Number(j.bytes) < Number(j.sourceBytes), JSON.stringify(j));
  assert.equal(Number(j.ratio), Number((Number(j.bytes) / Number(j.sourceBytes)).toFixed(4)));
  const info = mmoco(['info', PACK]);
  assert.equal(info.status, 0, info.stderr);
  const s = JSON.parse(info.stdout) as {
    format: string;
    version: number;
    bytes: number;
    splits: Record<string, { count: number; classes: string[] }>;
  };
  assert.equal(s.format, 'mmoco-pack');
  assert.equal(s.version, 1);
  assert.equal(s.bytes, j.bytes);
  assert.equal(s.splits.train!.count, 120);
  assert.equal(s.splits.val!.classes.length, 4);
});

test('mmoco pack: bad usage is an error naming the problem, no file left', () => {
  const cases: [string[], RegExp][] = [
    [['pack', ROOT], /expected a folder and an output file/],
    [['pack', ROOT, join(tmp, 'x.zip')], /must end in \.mmpack/],
    [['pack', ROOT, join(tmp, 'x.mmpack'), '--max-per-class', '0'], /--max-per-class needs an integer ≥ 1, got 0/],
    [['pack', ROOT, join(tmp, 'x.mmpack'), '--splits', 'train,test'], /split 'test' not found/],
    [['pack', join(tmp, 'missing'), join(tmp, 'x.mmpack')], /missing is not a folder/],
    [['pack', ROOT, join(tmp, 'x.mmpack'), '--bogus'], /unknown option --bogus/],
  ];
  for (const [args, why] of cases) {
    const r = mmoco(args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, why);
  }
  assert.ok(!existsSync(join(tmp, 'x.mmpack')));
});

test('--data file.mmpack: kNN equals the folder’s; pre-training runs on the pack', () => {
  const knn = (data: string): Record<string, unknown> => {
    const r = mmoco(['knn', '--data', data, ...ARCH, '--threads', '1', '--workers', '2']);
    assert.equal(r.status, 0, r.stderr);
    return last(r.stdout);
  };
  const a = knn(PACK);
  const b = knn(ROOT);
  assert.equal(a.top1, b.top1);
  assert.equal(a.top5, b.top5);
  const out = join(tmp, 'pre');
  const r = mmoco(['pretrain', '--data', PACK, ...ARCH, '--threads', '1', '--workers', '1', '--batch-size', '16',
    '--max-steps-per-epoch', '2', '--epochs', '1', '--warmup-epochs', '0', '--knn-every', '0', '--num-chunks', '2',
    '--proj-hidden-dim', '32', '--pred-hidden-dim', '32', '--proj-out-dim', '16', '--out', out]); // prettier-ignore
  assert.equal(r.status, 0, r.stderr);
  assert.ok(existsSync(join(out, 'metrics.jsonl')));
  const bad = mmoco(['knn', '--data', join(tmp, 'absent.mmpack'), ...ARCH]);
  assert.equal(bad.status, 2, bad.stderr);
  assert.match(bad.stderr, /data pack not found: .*absent\.mmpack/);
});
