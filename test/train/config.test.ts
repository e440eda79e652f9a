// The config schema: defaults, layering (preset < flags < --set), validation messages that name
// the key, the value and the allowed values; every preset in configs/ is valid for its command.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseArgs } from '../../src/cli/args.js';
import { PRETRAIN_SCHEMA, listPresets, resolveConfig, SCHEMAS } from '../../src/train/config.js';
import { ConfigError, applySets, camel, defaults, kebab } from '../../src/train/schema.js';

test('kebab/camel round trip of every key', () => {
  for (const schema of Object.values(SCHEMAS)) {
    for (const k of Object.keys(schema)) assert.equal(camel(kebab(k)), k);
  }
  assert.equal(kebab('stopGradConv1'), 'stop-grad-conv1');
  assert.equal(kebab('numChunks'), 'num-chunks');
});

test('defaults are the paper / MoCo v3 values', () => {
  const d = defaults(PRETRAIN_SCHEMA);
  assert.deepEqual(
    [d.numChunks, d.targetChunks, d.temperature, d.blr, d.weightDecay, d.betas, d.headNorm, d.method],
    [8, 1, 0.2, 1.5e-4, 0.1, [0.9, 0.95], 'bn', 'mmoco'],
  );
});

test('layers: preset, then flags, then --set', () => {
  const c = resolveConfig('pretrain', {
    preset: 'cifar10-vit-tiny',
    flags: { epochs: 7, numChunks: 4 },
    sets: ['num-chunks=2', 'betas=0.8,0.9', 'classAttention=true', 'momentum=null'],
  });
  assert.equal(c.model, 'vit_tiny'); // preset
  assert.equal(c.epochs, 7); // flag
  assert.equal(c.numChunks, 2); // --set wins over the flag
  assert.deepEqual(c.betas, [0.8, 0.9]);
  assert.equal(c.classAttention, true);
  assert.equal(c.momentum, null);
  // the 800-epoch preset extends the 300-epoch one
  const long = resolveConfig('pretrain', { preset: 'imagenet1k-vit-base-800ep' });
  assert.deepEqual([long.epochs, long.warmupEpochs, long.batchSize, long.model], [800, 40, 4096, 'vit_base']);
});

test('flags: kebab names, --no-x for booleans, = form, unknown flags with a hint', () => {
  const a = parseArgs(
    ['--num-chunks', '4', '--no-stop-grad-conv1', '--head-norm=ln', '--class-attention', '--set', 'epochs=3', 'pos'],
    PRETRAIN_SCHEMA,
  );
  assert.deepEqual(a.flags, { numChunks: 4, stopGradConv1: false, headNorm: 'ln', classAttention: true });
  assert.deepEqual(a.sets, ['epochs=3']);
  assert.deepEqual(a.positional, ['pos']);
  assert.throws(
    () => parseArgs(['--tempreature', '0.1'], PRETRAIN_SCHEMA),
    /unknown key --tempreature \(did you mean --temperature\?\)/,
  );
  assert.throws(() => parseArgs(['--num-chunks'], PRETRAIN_SCHEMA), /--num-chunks needs a value/);
  assert.throws(
    () => parseArgs(['--num-chunks', 'eight'], PRETRAIN_SCHEMA),
    /invalid value "eight" for 'numChunks': expected an integer ≥ 1/,
  );
});

test('validation errors name the key, the value and what is allowed', () => {
  const d = defaults(PRETRAIN_SCHEMA);
  const cases: [string, RegExp][] = [
    ['augmentation=heavy', /invalid value "heavy" for 'augmentation': expected 'strong', 'medium', 'light'/],
    ['temperature=0', /for 'temperature': expected a number > 0/],
    ['momentum=1.5', /for 'momentum': expected a number ≥ 0 and ≤ 1 \(or null\)/],
    ['betas=0.9', /for 'betas': expected 2 numbers/],
    ['classAttention=maybe', /for 'classAttention': expected true or false/],
    ['numChunk=8', /unknown key 'numChunk' \(did you mean 'numChunks'\?\); allowed keys: data, valData/],
    ['epochs', /expected key=value/],
  ];
  for (const [s, re] of cases) {
    assert.throws(
      () => applySets(PRETRAIN_SCHEMA, d, [s]),
      (e: unknown) => e instanceof ConfigError && re.test(e.message),
      s,
    );
  }
});

test('every preset in configs/ is valid for its command', () => {
  const presets = listPresets();
  const names = presets.map((p) => p.name);
  for (const want of [
    'imagenet100-vit-small',
    'imagenet1k-vit-base-300ep',
    'imagenet1k-vit-base-800ep',
    'cifar10-vit-tiny',
    'imagenette-vit-tiny',
    'demo',
    'finetune-imagenet1k-vit-base',
    'linprobe-imagenet100-vit-small',
  ]) {
    assert.ok(names.includes(want), `preset ${want}`);
  }
  for (const p of presets) {
    assert.ok(p.description.length > 20, `${p.name} has a description`);
    const c = resolveConfig(p.command, { preset: p.name }) as Record<string, unknown>;
    assert.ok(c, p.name);
  }
  const in100 = resolveConfig('pretrain', { preset: 'imagenet100-vit-small' });
  assert.deepEqual(
    [
      in100.model,
      in100.batchSize,
      in100.blr,
      in100.weightDecay,
      in100.betas,
      in100.epochs,
      in100.numChunks,
      in100.targetChunks,
    ],
    ['vit_small', 1024, 1.5e-4, 0.1, [0.9, 0.95], 200, 8, 1],
  );
});
