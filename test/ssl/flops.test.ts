// FLOP counter against hand counts, and Figure 3(a).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  blockMacs,
  figure3aTable,
  formatFigure3a,
  formatMacs,
  mlpHeadMacs,
  trainStepMacs,
  vitForwardMacs,
  VIT_S16_224,
} from '../../src/ssl/index.js';

test('ViT-S/16 at 224: ≈ 4.6 G MACs (9.2 GFLOPs) per image forward, within 1 %', (t) => {
  const r = vitForwardMacs(VIT_S16_224);
  // hand count: 196 patches · 768 · 384 + 12 blocks × 197 tokens ×
  //   (4·384² [qkv, proj] + 2·197·384 [q·kᵀ, attn·v] + 2·384·1536 [MLP])
  const hand = 196 * 768 * 384 + 12 * 197 * (4 * 384 * 384 + 2 * 197 * 384 + 2 * 384 * 1536);
  assert.equal(r.total, hand);
  assert.equal(r.tokensPerChunk, 197);
  assert.ok(Math.abs(r.total / 4.6e9 - 1) < 0.01, `${r.total}`);
  assert.ok(Math.abs((2 * r.total) / 9.2e9 - 1) < 0.01);
  t.diagnostic(`ViT-S/16 forward: ${formatMacs(r.total)}`);
  assert.match(formatMacs(r.total), /^4\.60 GMACs \(9\.20 GFLOPs\)$/);
});

test('chunked forward: every patch in one of n sequences, ⌈N/n⌉ or ⌊N/n⌋ patches plus a CLS', () => {
  // 196 = 8·24 + 4: four chunks of 25 patches and four of 24, each with its CLS
  const r = vitForwardMacs(VIT_S16_224, 8);
  assert.deepEqual(r.chunkTokens, [26, 26, 26, 26, 25, 25, 25, 25]);
  assert.equal(r.tokensPerChunk, 25.5);
  assert.equal(r.attnMatmul, 12 * (4 * 2 * 26 * 26 + 4 * 2 * 25 * 25) * 384);
  assert.equal(r.attnProj, 12 * 204 * 4 * 384 * 384);
  assert.equal(r.mlp, 12 * 204 * 2 * 384 * 1536);
  assert.equal(r.patchEmbed, 196 * 768 * 384);
  assert.ok(r.total < vitForwardMacs(VIT_S16_224, 1).total);
  // n | N: equal chunks, 196 / 4 = 49 patches + CLS
  const r4 = vitForwardMacs(VIT_S16_224, 4);
  assert.deepEqual(r4.chunkTokens, [50, 50, 50, 50]);
  assert.equal(r4.attnMatmul, 12 * 4 * 2 * 50 * 50 * 384);
  assert.throws(() => vitForwardMacs(VIT_S16_224, 0), RangeError);
});

test('class attention and classifier are counted by hand', () => {
  const c = { ...VIT_S16_224, classAttnBlocks: 2, numClasses: 100 };
  const base = vitForwardMacs(VIT_S16_224, 2);
  const r = vitForwardMacs(c, 2);
  const D = 384;
  const T = 99;
  const perChunk = D * D + 2 * T * D * D + 2 * T * D + D * D + 2 * D * 4 * D;
  assert.equal(r.classAttn, 2 * 2 * perChunk);
  assert.equal(r.head, 2 * 100 * D);
  assert.equal(r.total, base.total + r.classAttn + r.head);
});

test('training step: 3 × online forward + target forward over two views', () => {
  const proj = mlpHeadMacs(384, 3, 4096, 256);
  assert.equal(proj, 384 * 4096 + 4096 * 4096 + 4096 * 256);
  const pred = mlpHeadMacs(256, 2, 4096, 256);
  assert.equal(pred, 2 * 256 * 4096);
  const s = trainStepMacs({ vit: VIT_S16_224, numChunks: 8, targetChunks: 2 });
  const online = 2 * (vitForwardMacs(VIT_S16_224, 8).total + 8 * (proj + pred));
  const target = 2 * (vitForwardMacs(VIT_S16_224, 2).total + 2 * proj);
  assert.equal(s.onlineForward, online);
  assert.equal(s.targetForward, target);
  assert.equal(s.total, 3 * online + target);
  const noPred = trainStepMacs({ vit: VIT_S16_224, predictor: { layers: 0, hidden: 0, out: 0 } });
  assert.equal(noPred.onlineForward, 2 * (vitForwardMacs(VIT_S16_224).total + proj));
});

test('Figure 3(a): relative attention and block FLOPs as n goes 1…10 (ViT-S/16, 224)', (t) => {
  const ideal = figure3aTable(VIT_S16_224, 10, 'ideal');
  const exact = figure3aTable(VIT_S16_224, 10, 'exact');
  t.diagnostic('ideal (N/n patch tokens, no CLS):');
  for (const line of formatFigure3a(ideal).split('\n')) t.diagnostic(line);
  t.diagnostic('exact (⌊N/n⌋ + 1 CLS per chunk):');
  for (const line of formatFigure3a(exact).split('\n')) t.diagnostic(line);
  assert.equal(ideal.length, 10);
  assert.equal(ideal[0]!.attention, 1);
  assert.equal(ideal[0]!.block, 1);
  // steady drop, attention faster than the whole block
  for (let i = 1; i < 10; i++) {
    assert.ok(ideal[i]!.attention < ideal[i - 1]!.attention);
    assert.ok(ideal[i]!.block < ideal[i - 1]!.block);
    assert.ok(ideal[i]!.attention < ideal[i]!.block);
  }
  // hand value, ideal n = 2: attention (4D + 2N/2)/(4D + 2N), block (12D + N)/(12D + 2N)
  assert.ok(Math.abs(ideal[1]!.attention - (4 * 384 + 196) / (4 * 384 + 392)) < 1e-12);
  assert.ok(Math.abs(ideal[1]!.block - (12 * 384 + 196) / (12 * 384 + 392)) < 1e-12);
  // exact counts: every n > 1 saves, attention more than the block; each chunk's CLS adds a
  // token (n = 6: 196 + 6 tokens in chunks of 33 and 34, by hand)
  for (let i = 1; i < 10; i++) {
    assert.ok(exact[i]!.attention < 1 && exact[i]!.block < 1);
    assert.ok(exact[i]!.attention < exact[i]!.block);
  }
  const att = (sumT: number, sumT2: number): number => sumT * 4 * 384 * 384 + 2 * sumT2 * 384;
  const n6 = att(4 * 34 + 2 * 33, 4 * 34 * 34 + 2 * 33 * 33) / att(197, 197 * 197);
  assert.ok(Math.abs(exact[5]!.attention - n6) < 1e-12);
  assert.equal(exact[5]!.tokensPerChunk, 202 / 6);
  const b = blockMacs(VIT_S16_224, 2);
  const b1 = blockMacs(VIT_S16_224, 1);
  assert.equal(exact[1]!.attention, (b.attnProj + b.attnMatmul) / (b1.attnProj + b1.attnMatmul));
});
