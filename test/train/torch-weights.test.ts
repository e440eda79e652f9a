// Importing PyTorch checkpoints: tiny ViTs saved by Debian's PyTorch in the layouts of MoCo v3,
// MAE, DeiT/timm and DINO, zip and legacy formats, pickle protocols 2 and 4
// (test/fixtures/make_checkpoint_fixtures.py), each mapped to timm's names, built into our ViT
// and compared with the tokens PyTorch computed from the same file. Also: crafted pickles that
// would run a command are refused before anything is called; malformed files give errors that
// name the file and the problem; the pickle writer's output reads back.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as torch from '../../src/torch/index.js';
import { N } from '../../src/torch/native.js';
import { pickle, PyObject, PyTuple, TensorRef, unpickle, type PyValue } from '../../src/torch/io/pickle.js';
import { readTorchFile, saveTorchFile, tensorRefs } from '../../src/torch/io/torch-file.js';
import { buildBackbone } from '../../src/train/backbone.js';
import { loadPretrainedBackbone } from '../../src/train/pretrained.js';
import { describeTorchCheckpoint, type EncoderChoice } from '../../src/train/torch-weights.js';
import { archFor, assumedNote, readBackboneWeights } from '../../src/train/weights.js';
import { assertClose, assertExact, T, values, type Rec } from '../models/fixture.js';

function fixtureDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const p = join(dir, 'test', 'fixtures', 'checkpoints');
    if (existsSync(join(p, 'checkpoints.json'))) return p;
    dir = dirname(dir);
  }
  throw new Error('test/fixtures/checkpoints not found (run test/fixtures/make_checkpoint_fixtures.py)');
}
const DIR = fixtureDir();
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const fx = JSON.parse(readFileSync(join(DIR, 'checkpoints.json'), 'utf8')) as any;
const tmp = mkdtempSync(join(tmpdir(), 'mmoco-tw-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

// a config that disagrees with the files in every size: what the file says must win
const CFG = {
  model: 'vit_small',
  imgSize: 224,
  patchSize: 16,
  numHeads: null as number | null,
  depth: null,
  embedDim: null,
};

function tokensOf(file: string, encoder: EncoderChoice, numHeads: number | null = null): torch.Tensor {
  const w = readBackboneWeights(join(DIR, file), { encoder });
  const vit = buildBackbone(archFor({ ...CFG, numHeads }, w));
  try {
    const r = loadPretrainedBackbone(vit, w.tensors);
    assert.deepEqual(r.missingKeys, [], `${file}: missing keys`);
    assert.deepEqual(r.unexpectedKeys, [], `${file}: unexpected keys`);
  } finally {
    for (const t of w.tensors.values()) t.dispose();
  }
  vit.eval();
  const x = T(fx.input as Rec);
  const out = torch.noGrad(() => vit.forwardFeatures(x));
  x.dispose();
  vit.dispose();
  return out;
}

const CASES: [string, EncoderChoice, string, string, number][] = [
  // file, encoder, expected tokens, layout, heads (from the name the file records)
  ['mocov3.pth.tar', 'auto', 'mocov3', 'mocov3', 12],
  ['mocov3.pth.tar', 'momentum_encoder', 'mocov3_momentum', 'mocov3', 12],
  ['mocov3-legacy.pth.tar', 'auto', 'mocov3', 'mocov3', 12],
  ['mae.pth', 'auto', 'mae', 'mae', 3],
  ['deit-legacy.pth', 'auto', 'deit', 'timm', 3],
  ['dino.pth', 'auto', 'dino_teacher', 'dino', 3],
  ['dino.pth', 'student', 'dino_student', 'dino', 3],
];

for (const [file, encoder, key, layout, heads] of CASES) {
  test(`${file} (${encoder}): ${layout} layout, arch from the shapes, PyTorch's tokens`, () => {
    const w = readBackboneWeights(join(DIR, file), { encoder });
    for (const t of w.tensors.values()) t.dispose();
    assert.deepEqual(w.arch, { ...fx.arch, numHeads: heads });
    assert.match(w.source, new RegExp(`\\(${layout}`));
    const got = tokensOf(file, encoder);
    assertClose(got, fx[key] as Rec, `${file} ${encoder}`, 1e-5);
    got.dispose();
  });
}

test('the encoders of one file differ (MoCo v3 base vs momentum, DINO teacher vs student)', () => {
  const pairs: [string, string][] = [
    ['mocov3', 'mocov3_momentum'],
    ['dino_teacher', 'dino_student'],
  ];
  for (const [a, b] of pairs) {
    const x = (fx[a] as Rec).data;
    const y = (fx[b] as Rec).data;
    assert.ok(Math.max(...x.map((v: number, i: number) => Math.abs(v - y[i]!))) > 0.1, `${a} vs ${b}`);
  }
});

test('a flat state dict (pickle protocol 4) names no architecture: heads from --num-heads, else a clear error', () => {
  const got = tokensOf('flat-protocol4.pth', 'auto', 3);
  assertClose(got, fx.flat as Rec, 'flat', 1e-5);
  got.dispose();
  // negative control: the wrong heads give other tokens
  const wrong = tokensOf('flat-protocol4.pth', 'auto', 1);
  const diff = values(wrong).map((v, i) => Math.abs(v - (fx.flat as Rec).data[i]!));
  assert.ok(Math.max(...diff) > 1e-2);
  wrong.dispose();
  const w = readBackboneWeights(join(DIR, 'flat-protocol4.pth'));
  for (const t of w.tensors.values()) t.dispose();
  assert.throws(() => archFor(CFG, w), /flat-protocol4\.pth.*heads shows in no tensor shape.*--num-heads/);
});

test("without a recorded name, timm's heads for the width are assumed (64 per head); no backbone is named", () => {
  const shape = (s: number[]): TensorRef =>
    new TensorRef(
      { kind: 'storage', key: 'k', dtype: 'float32', location: 'cpu', numel: 1 },
      0,
      s,
      s.map(() => 0),
      false,
    );
  const d = 128;
  const sd = new Map<PyValue, PyValue>([
    ['cls_token', shape([1, 1, d])],
    ['pos_embed', shape([1, 1 + 49, d])],
    ['patch_embed.proj.weight', shape([d, 3, 32, 32])],
    ['blocks.0.attn.qkv.bias', shape([3 * d])],
    ['blocks.0.mlp.fc1.weight', shape([4 * d, d])],
  ]);
  const file = join(tmp, 'shapes.pth');
  // written for real, so that the describe path reads it back through the zip reader
  const t = new Map<string, torch.Tensor>([...sd].map(([k, v]) => [k as string, torch.zeros((v as TensorRef).shape)]));
  saveTorchFile(file, t);
  for (const x of t.values()) x.dispose();
  const info = describeTorchCheckpoint(file);
  assert.deepEqual(info.arch, { imgSize: 224, patchSize: 32, depth: 1, embedDim: d });
  assert.equal((info.assumed as { numHeads: number }).numHeads, 2);
  const w = readBackboneWeights(file);
  for (const x of w.tensors.values()) x.dispose();
  assert.equal(archFor(CFG, w).numHeads, 2);
  assert.match(String(assumedNote(CFG, w)), /2 attention heads assumed/);
  // what the user configures wins over the guess
  assert.equal(archFor({ ...CFG, numHeads: 4 }, w).numHeads, 4);
  assert.equal(assumedNote({ ...CFG, numHeads: 4 }, w), null);
  saveTorchFile(file, { model: new Map([['x', torch.zeros(1)]]) });
  assert.match(String(describeTorchCheckpoint(file).problem), /no ViT backbone in 'model'.*patch_embed\.proj\.weight/);
});

test("mmoco info's view of each layout: format, keys, tensors, parameters, epoch, recorded name", () => {
  const m = describeTorchCheckpoint(join(DIR, 'mocov3.pth.tar'));
  assert.equal(m.format, 'zip');
  assert.equal(m.layout, 'mocov3');
  assert.deepEqual(m.topLevelKeys, ['epoch', 'arch', 'state_dict', 'optimizer', 'scaler']);
  assert.equal(m.epoch, 100);
  assert.equal(m.recordedArch, 'vit_small');
  // backbone: 2 blocks of width 12 + patch embedding + tokens + norm
  const blk = 2 * 12 + (12 * 36 + 36) + (12 * 12 + 12) + 2 * 12 + (12 * 48 + 48) + (48 * 12 + 12);
  const backbone = 12 + 17 * 12 + (12 * 48 + 12) + 2 * blk + 2 * 12;
  assert.equal((m.backbone as { parameters: number }).parameters, backbone);
  const legacy = describeTorchCheckpoint(join(DIR, 'mocov3-legacy.pth.tar'));
  assert.equal(legacy.format, 'legacy');
  assert.equal(legacy.tensors, m.tensors);
  assert.equal(legacy.parameters, m.parameters);
  assert.equal(describeTorchCheckpoint(join(DIR, 'mae.pth')).layout, 'mae');
  assert.equal(describeTorchCheckpoint(join(DIR, 'deit-legacy.pth')).layout, 'timm');
  const dino = describeTorchCheckpoint(join(DIR, 'dino.pth'), 'student');
  assert.equal((dino.backbone as { from: string }).from, 'student module.backbone.*');
});

test('the objects around the tensors read as data: Namespace args, numpy scalars, tuples, floats', () => {
  const mae = readTorchFile(join(DIR, 'mae.pth')).value as Map<PyValue, PyValue>;
  const args = mae.get('args');
  assert.ok(args instanceof PyObject && args.className === 'argparse.Namespace');
  assert.equal(args.attrs.get('model'), 'mae_vit_tiny_patch4');
  assert.equal(args.attrs.get('mask_ratio'), 0.75);
  assert.equal(args.attrs.get('norm_pix_loss'), true);
  assert.equal(mae.get('epoch'), 399);
  const deit = readTorchFile(join(DIR, 'deit-legacy.pth')).value as Map<PyValue, PyValue>;
  assert.equal(deit.get('max_accuracy'), 72.2);
  const moco = readTorchFile(join(DIR, 'mocov3.pth.tar')).value as Map<PyValue, PyValue>;
  const groups = (moco.get('optimizer') as Map<PyValue, PyValue>).get('param_groups') as Map<PyValue, PyValue>[];
  assert.deepEqual(groups[0]!.get('betas'), new PyTuple([0.9, 0.95]));
  assert.equal(groups[0]!.get('lr'), 1.5e-4);
});

test('DeiT head: a non-contiguous tensor and a view at a storage offset (legacy format) read as PyTorch wrote them', () => {
  const f = readTorchFile(join(DIR, 'deit-legacy.pth'));
  const refs = tensorRefs(f.value);
  const w = refs.get('model.head.weight')!;
  const b = refs.get('model.head.bias')!;
  assert.deepEqual(
    [w.shape, w.stride],
    [
      [10, 12],
      [1, 10],
    ],
  );
  assert.deepEqual([b.shape, b.offset], [[10], 5]);
  const [tw, tb] = f.loadTensors([w, b]);
  assertExact(tw!, fx.deit_head_weight as Rec, 'head.weight');
  assertExact(tb!, fx.deit_head_bias as Rec, 'head.bias');
  for (const t of [tw!, tb!]) t.dispose();
});

for (const [file, what] of [
  ['evil-os-system.pth', 'posix\\.system'],
  ['evil-eval-legacy.pth', '__builtin__\\.eval'],
  ['evil-subprocess-protocol4.pth', 'subprocess\\.call'],
] as const) {
  test(`${file}: refused, naming the call, and nothing runs`, () => {
    const marker = 'pickle-exploit-ran';
    assert.equal(existsSync(marker), false);
    assert.throws(
      () => readBackboneWeights(join(DIR, file)),
      new RegExp(
        `${file.replace(/\./g, '\\.')}: refusing to load: the pickle calls ${what} \\(.*mmoco never runs pickled code`,
      ),
    );
    assert.throws(() => describeTorchCheckpoint(join(DIR, file)), /refusing to load/);
    assert.equal(existsSync(marker), false);
  });
}

test('bad files: errors name the file and the problem', () => {
  const text = join(tmp, 'notes.pth');
  writeFileSync(text, 'hello');
  assert.throws(() => readBackboneWeights(text), /notes\.pth: expected a \.safetensors file, a PyTorch checkpoint/);
  // a zip cut short
  const whole = readFileSync(join(DIR, 'mae.pth'));
  const cut = join(tmp, 'cut.pth');
  writeFileSync(cut, whole.subarray(0, whole.length - 300));
  assert.throws(() => readBackboneWeights(cut), /cut\.pth: a zip file libtorch cannot read \(truncated or corrupt\?\)/);
  // a legacy file cut in its storages
  const leg = readFileSync(join(DIR, 'deit-legacy.pth'));
  const cutLegacy = join(tmp, 'cut-legacy.pth');
  writeFileSync(cutLegacy, leg.subarray(0, leg.length - 100));
  assert.throws(() => readBackboneWeights(cutLegacy), /cut-legacy\.pth: truncated in storage/);
  // a pickle that is not torch.save's
  const plain = join(tmp, 'plain.pkl.pth');
  writeFileSync(plain, pickle([1, 2, 3]));
  assert.throws(() => readBackboneWeights(plain), /plain\.pkl\.pth: a pickle, but not torch\.save's/);
  // a checkpoint of another kind
  const other = join(tmp, 'other.pth');
  saveTorchFile(other, { optimizer: { lr: 1 }, epoch: 3 });
  assert.throws(
    () => readBackboneWeights(other),
    /other\.pth: no known checkpoint layout.*top-level keys: optimizer, epoch/,
  );
  // an encoder the layout does not have
  assert.throws(
    () => readBackboneWeights(join(DIR, 'mocov3.pth.tar'), { encoder: 'teacher' }),
    /checkpoint key 'teacher' does not fit a MoCo v3 checkpoint \(allowed: auto, base_encoder, momentum_encoder\)/,
  );
  // a view past its storage (a hostile file) is refused by the native reader, not read
  assert.throws(
    () => N.stridedFromBuffer(new Uint8Array(24), 0, [3, 2], [2, 1], 1),
    /view reaches element 6 of a storage of 6 float32 elements/,
  );
  assert.throws(() => N.stridedFromBuffer(new Uint8Array(24), 0, [2], [-1], 2), /negative size or stride/);
});

test('pickle: what the writer writes reads back (ints of every width, floats, strings, nesting)', () => {
  const ints = [0, 1, 255, 256, 65535, 65536, -1, -70000, 2 ** 31 - 1, -(2 ** 31), 2 ** 31, 2 ** 40, -(2 ** 53 - 1)];
  const value = new Map<string, PyValue>([
    ['ints', ints],
    ['floats', [0.1, -2.5e-300, 1e300]],
    ['text', 'grüße ✓'],
    ['tuple', new PyTuple([1, 'a', null, true, false])],
    [
      'nested',
      new Map<string, PyValue>([
        ['empty', []],
        ['d', new Map()],
      ]),
    ],
  ]);
  const back = unpickle(pickle(value as never)).value as Map<string, PyValue>;
  assert.deepEqual(back, value);
  // a truncated pickle is an error, not a hang or a partial value
  const bytes = pickle(value as never);
  assert.throws(() => unpickle(bytes.subarray(0, bytes.length - 3), { source: 'x.pkl' }), /x\.pkl: truncated/);
});

test("PyTorch 2.x's _rebuild_tensor_v3 over an untyped storage: offset and strides in elements of its dtype", () => {
  // the opcodes torch.save of 2.x writes for such a tensor, spelled out
  const enc = (s: string): number[] => [...Buffer.from(s, 'latin1')];
  const str = (s: string): number[] => [0x58, s.length, 0, 0, 0, ...enc(s)];
  const bytes = Uint8Array.from([
    0x80, 2,
    0x63, ...enc('torch._utils\n_rebuild_tensor_v3\n'),
    0x28, // MARK
    0x28, ...str('storage'), 0x63, ...enc('torch\nUntypedStorage\n'), ...str('0'), ...str('cpu'), 0x4b, 24, 0x74, 0x51,
    0x4b, 1, // offset 1
    0x4b, 2, 0x85, // size (2,)
    0x4b, 2, 0x85, // stride (2,)
    0x89,
    0x63, ...enc('collections\nOrderedDict\n'), 0x29, 0x52,
    0x63, ...enc('torch\nfloat32\n'),
    0x74, 0x52, 0x2e,
  ]); // prettier-ignore
  const { value } = unpickle(bytes, {
    persistentLoad: () => ({ kind: 'storage', key: 'data/0', dtype: 'uint8', location: 'cpu', numel: 24 }),
  });
  assert.ok(value instanceof TensorRef);
  assert.equal(value.storage.dtype, 'float32');
  assert.equal(value.storage.numel, 6);
  assert.deepEqual([value.offset, value.shape, value.stride], [1, [2], [2]]);
});

test('saveTorchFile: written atomically (a failed write leaves the old file), read back as saved', () => {
  const file = join(tmp, 'atomic.pth');
  const a = torch.tensor([0, 1, 2, 3, 4, 5]).reshape(2, 3);
  saveTorchFile(file, { w: a, n: 7 });
  const before = readFileSync(file);
  // a tensor of a dtype torch.save could store but that mmoco does not pickle: refused before writing
  assert.throws(
    () => saveTorchFile(file, { w: a, bad: { dispose() {}, dtype: 'complex64', shape: [1] } as never }),
    /atomic\.pth: no storage type for dtype complex64/,
  );
  assert.deepEqual(readFileSync(file), before);
  assert.throws(() => saveTorchFile(join(tmp, 'no-such-folder', 'x.pth'), { w: a }), /no-such-folder/);
  const f = readTorchFile(file);
  const [back] = f.loadTensors([tensorRefs(f.value).get('w')!]);
  assert.deepEqual(values(back!), [0, 1, 2, 3, 4, 5]);
  assert.equal((f.value as Map<PyValue, PyValue>).get('n'), 7);
  for (const t of [a, back!]) t.dispose();
});
