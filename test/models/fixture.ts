// Shared helpers for the model tests: test/fixtures/models.json (written by
// test/fixtures/make_model_fixtures.py with Debian's python3-torch) and tensor comparisons.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as torch from '../../src/torch/index.js';
import type { DType, Tensor } from '../../src/torch/index.js';

export interface Rec {
  dtype: DType;
  shape: number[];
  data: number[];
}
export type Recs = Record<string, Rec>;

function findFixture(): string {
  // the tests run from dist/test/models; the fixture lives in test/fixtures of the source tree
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const p = join(dir, 'test', 'fixtures', 'models.json');
    if (existsSync(p)) return p;
    dir = dirname(dir);
  }
  throw new Error('test/fixtures/models.json not found (run test/fixtures/make_model_fixtures.py)');
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const fx = JSON.parse(readFileSync(findFixture(), 'utf8')) as any;

export function T(r: Rec): Tensor {
  if (r.dtype === 'int64') {
    return torch.tensor(
      BigInt64Array.from(r.data, (v) => BigInt(v)),
      { shape: r.shape },
    );
  }
  if (r.dtype === 'float64') return torch.tensor(Float64Array.from(r.data), { shape: r.shape });
  return torch.tensor(Float32Array.from(r.data), { shape: r.shape, dtype: r.dtype });
}

export const sd = (recs: Recs): Map<string, Tensor> => new Map(Object.entries(recs).map(([k, r]) => [k, T(r)]));

export const values = (t: Tensor): number[] => Array.from(t.toTypedArray() as ArrayLike<number | bigint>, Number);

/** max |got - want| ≤ rel · max(1, max |want|), same shape. */
export function assertClose(got: Tensor, want: Rec, what: string, rel = 1e-4): void {
  assert.deepEqual(got.shape, want.shape, `${what}: shape`);
  const g = values(got);
  const scale = Math.max(1, ...want.data.map(Math.abs));
  let worst = 0;
  let at = -1;
  for (let i = 0; i < g.length; i++) {
    const d = Math.abs(g[i]! - want.data[i]!);
    if (!(d <= worst)) {
      worst = d;
      at = i;
    }
  }
  assert.ok(
    worst <= rel * scale,
    `${what}: max |diff| ${worst} at ${at} (got ${g[at]}, want ${want.data[at]}) > ${rel * scale}`,
  );
}

export function assertExact(got: Tensor, want: Rec, what: string): void {
  assert.deepEqual(got.shape, want.shape, `${what}: shape`);
  assert.equal(got.dtype, want.dtype, `${what}: dtype`);
  const g = values(got);
  const single = want.dtype === 'float32';
  for (let i = 0; i < g.length; i++) {
    const w = single ? Math.fround(want.data[i]!) : want.data[i]!;
    if (g[i] !== w) assert.fail(`${what}: element ${i} is ${g[i]}, want ${want.data[i]}`);
  }
}
