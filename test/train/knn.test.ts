// Weighted kNN against DINO's knn_classifier (test/fixtures/train.json): top-1, top-5 and the
// per-class votes for three (k, T, chunk) settings; the chunk size changes nothing; feature
// extraction is the backbone's CLS feature in eval mode, mode restored, batches released.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as torch from '../../src/torch/index.js';
import { extractFeatures, knnClassifier } from '../../src/train/index.js';
import { assertClose, fixtureVit, memorySource, T, tx, values } from './fixture.js';

const { tidy, liveTensors } = torch;

interface KnnCase {
  k: number;
  T: number;
  chunk: number;
  top1: number;
  top5: number;
  votes: import('./fixture.js').Rec;
}

test("knnClassifier matches DINO's weighted kNN (accuracies and votes)", () => {
  const before = liveTensors();
  tidy(() => {
    const f = tx.knn;
    const [tr, trl, te, tel] = [T(f.train_features), T(f.train_labels), T(f.test_features), T(f.test_labels)];
    for (const c of f.cases as KnnCase[]) {
      for (const chunk of [c.chunk, 5, 1000]) {
        const r = knnClassifier(tr, trl, te, tel, {
          k: c.k,
          temperature: c.T,
          numClasses: f.num_classes,
          chunkSize: chunk,
          returnScores: true,
        });
        const what = `k ${c.k} T ${c.T} chunk ${chunk}`;
        assert.ok(Math.abs(r.top1 - c.top1) < 1e-9, `${what}: top1 ${r.top1} vs ${c.top1}`);
        assert.ok(Math.abs(r.top5 - c.top5) < 1e-9, `${what}: top5 ${r.top5} vs ${c.top5}`);
        assert.equal(r.total, tel.shape[0]);
        assertClose(r.scores!, c.votes, `${what}: votes`, 1e-5);
        // predictions are the arg-max of the votes
        const v = values(r.scores!);
        const C = f.num_classes as number;
        values(r.predictions).forEach((p, i) => {
          const row = v.slice(i * C, (i + 1) * C);
          assert.equal(row[p], Math.max(...row));
        });
      }
    }
    // the default k = 20, T = 0.07 is the first case; numClasses defaults to max label + 1
    const r = knnClassifier(tr, trl, te, tel);
    assert.ok(Math.abs(r.top1 - (f.cases[0] as KnnCase).top1) < 1e-9);
    assert.equal(r.scores, undefined);
  });
  assert.equal(liveTensors(), before);
});

test('knnClassifier: features need not be normalised; bad arguments are errors', () => {
  tidy(() => {
    const f = tx.knn;
    const [tr, trl, te, tel] = [T(f.train_features), T(f.train_labels), T(f.test_features), T(f.test_labels)];
    const a = knnClassifier(tr, trl, te, tel, { k: 5, temperature: 0.5, returnScores: true });
    const b = knnClassifier(tr.mul(7), trl, te.mul(0.01), tel, { k: 5, temperature: 0.5, returnScores: true });
    assert.equal(a.top1, b.top1);
    assert.ok(torch.allclose(a.scores!, b.scores!, 1e-5, 1e-6));
    assert.throws(() => knnClassifier(tr, trl, te, tel, { k: 1000 }), /k must be in 1\.\.64/);
    assert.throws(() => knnClassifier(tr, trl, te.slice(1, 0, 3), tel), /features must be/);
    assert.throws(() => knnClassifier(tr, trl.slice(0, 1), te, tel), /labels for/);
    assert.throws(() => knnClassifier(tr, trl, te, tel, { temperature: 0 }), /temperature/);
  });
});

test('extractFeatures: CLS features after the final norm, eval mode (restored), batches released', async () => {
  const m = fixtureVit('token');
  m.train();
  const before = liveTensors();
  const x = torch.keep(T(tx.vit.x));
  const labels = torch.keep(torch.tensor([2, 0, 1], { dtype: 'int64' }));
  const { features, labels: got } = await extractFeatures(m, memorySource(x, labels, 2), {
    transform: { forward: (t) => t },
  });
  assert.equal(m.training, true, 'mode restored');
  assert.deepEqual(features.shape, [3, 16]);
  assert.deepEqual(values(got), [2, 0, 1]);
  assertClose(features, tx.vit.token_pre_logits, 'CLS features', 1e-5);
  features.dispose();
  got.dispose();
  x.dispose();
  labels.dispose();
  assert.equal(liveTensors(), before, 'nothing left behind (the batches are released)');
  m.dispose();
});
