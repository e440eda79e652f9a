// test/fixtures/train.json (written by test/fixtures/make_train_fixtures.py with Debian's
// python3-torch) and a tiny in-memory batch source for the evaluation loops.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as torch from '../../src/torch/index.js';
import type { Tensor } from '../../src/torch/index.js';
import { VisionTransformer } from '../../src/models/index.js';
import type { BatchSource, LabelledBatch } from '../../src/train/index.js';
import { sd, type Recs } from '../models/fixture.js';

function findFixture(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const p = join(dir, 'test', 'fixtures', 'train.json');
    if (existsSync(p)) return p;
    dir = dirname(dir);
  }
  throw new Error('test/fixtures/train.json not found (run test/fixtures/make_train_fixtures.py)');
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const tx = JSON.parse(readFileSync(findFixture(), 'utf8')) as any;

export { assertClose, sd, T, values, type Rec, type Recs } from '../models/fixture.js';

/** The fixture's tiny ViT ('avg': MAE's global pool; 'token': CLS) with its state loaded. */
export function fixtureVit(pool: 'avg' | 'token', o: { load?: boolean } = {}): VisionTransformer {
  const c = tx.vit.config as Record<string, number>;
  const m = new VisionTransformer({
    imgSize: c.img_size,
    patchSize: c.patch_size,
    embedDim: c.embed_dim,
    depth: c.depth,
    numHeads: c.num_heads,
    numClasses: c.num_classes,
    globalPool: pool,
  });
  if (o.load ?? true) {
    const state = sd(tx.vit.state as Recs);
    const renamed = new Map([...state].map(([k, v]) => [pool === 'token' ? k.replace('fc_norm.', 'norm.') : k, v]));
    m.loadStateDict(renamed);
    torch.dispose([...state.values()]);
  }
  return m;
}

/** A BatchSource over fixed tensors, split into batches of `size` (fresh copies each epoch). */
export function memorySource(images: Tensor, labels: Tensor, size: number): BatchSource {
  return {
    epoch(): AsyncIterable<LabelledBatch> {
      const n = images.shape[0]!;
      return (async function* () {
        for (let s = 0; s < n; s += size) {
          const len = Math.min(size, n - s);
          // kept, as the DataLoader's: the consumer owns (and releases) them
          yield torch.tidy(() => ({
            images: torch.keep(images.narrow(0, s, len).clone()),
            labels: torch.keep(labels.narrow(0, s, len).clone()),
          }));
        }
      })();
    },
  };
}

/** A pre-training run small enough for a test: a 2-block 32-wide ViT at 16 px, narrow heads, 2 epochs. */
export const TOY_PRETRAIN = {
  model: 'vit_tiny',
  depth: 2,
  embedDim: 32,
  numHeads: 2,
  imgSize: 16,
  patchSize: 4,
  numChunks: 4,
  batchSize: 16,
  projHiddenDim: 32,
  predHiddenDim: 32,
  projOutDim: 16,
  epochs: 2,
  warmupEpochs: 0,
  threads: 1,
  knnEvery: 0,
} as const;
