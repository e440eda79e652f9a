// Low-shot subsets: per-class counts and fractions, reproducible by seed, nested, stratified.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SampleError, createLimiter } from '../../src/data/dataset.js';
import { Subset, indicesByClass, subsetFraction, subsetPerClass } from '../../src/data/subset.js';
import { SyntheticImages } from '../../src/data/synthetic.js';

// 10 classes, 53 or 54 images each
const ds = new SyntheticImages({ length: 535, numClasses: 10, size: 4, seed: 4 });

function perClassCounts(s: Subset): number[] {
  return indicesByClass(s).map((l) => l.length);
}

test('per-class subsets: exact counts, same seed same images, nested, seed matters', () => {
  const five = subsetPerClass(ds, 5, 11);
  assert.equal(five.length, 50);
  assert.deepEqual(perClassCounts(five), new Array<number>(10).fill(5));
  assert.deepEqual(subsetPerClass(ds, 5, 11).indices, five.indices, 'reproducible');
  assert.notDeepEqual(subsetPerClass(ds, 5, 12).indices, five.indices, 'another seed, other images');
  const one = subsetPerClass(ds, 1, 11);
  assert.ok(
    one.indices.every((i) => five.indices.includes(i)),
    '1-shot within 5-shot',
  );
  assert.deepEqual(
    [...five.indices].sort((a, b) => a - b),
    five.indices,
    'ascending',
  );
  for (let k = 0; k < five.length; k++) assert.equal(five.label(k), ds.label(five.indices[k]!));
  assert.throws(() => subsetPerClass(ds, 54, 0), /class class_0\d has 53 images, fewer than 54/);
});

test('fraction subsets: stratified, reproducible, nested', () => {
  const tenth = subsetFraction(ds, 0.1, 3);
  assert.deepEqual(perClassCounts(tenth), new Array<number>(10).fill(5));
  const half = subsetFraction(ds, 0.5, 3);
  assert.ok(tenth.indices.every((i) => half.indices.includes(i)));
  assert.deepEqual(subsetFraction(ds, 0.1, 3).indices, tenth.indices);
  assert.equal(subsetFraction(ds, 1, 3).length, ds.length);
  assert.equal(subsetFraction(ds, 0.001, 3).length, 10, 'at least one per class');
  assert.equal(subsetFraction(ds, 0, 3).length, 0);
  assert.throws(() => subsetFraction(ds, 1.5), /not in \[0, 1\]/);
});

test('a subset reads its base samples and reports errors at its own positions', async () => {
  const s = new Subset(ds, [7, 3, 100]);
  const a = await s.get(2);
  const b = await ds.get(100);
  assert.deepEqual(a.image.data, b.image.data);
  assert.equal(s.source(0), 'synthetic#7');
  const bad = new Subset(
    {
      length: 2,
      classes: ['x', 'y'],
      label: (i) => i,
      source: (i) => `f${i}`,
      get: (i) => (i === 1 ? Promise.reject(new SampleError('f1', 1, 'broken')) : ds.get(0)),
    },
    [1, 0],
  );
  const out = await bad.getMany([0, 1], createLimiter(1));
  assert.ok(out[0] instanceof SampleError && out[0].index === 0 && out[0].path === 'f1');
  assert.ok(!(out[1] instanceof SampleError));
  assert.throws(() => new Subset(ds, [535]), /out of range/);
});
