// `mmoco flops`: the analytic cost of a configuration (src/ssl/flops.ts): backbone forward per
// image for n and m chunks, the heads, one training step, and Figure 3(a)'s table.
import { figure3aTable, formatFigure3a, formatMacs, trainStepMacs, vitForwardMacs } from '../../ssl/flops.js';
import type { VitFlopConfig } from '../../ssl/flops.js';
// the tensor-free module, not the models' index: counting FLOPs needs no libtorch
import { CLASS_ATTENTION_DEPTH, PREDICTOR_SIZE, PROJECTOR_SIZE, vitSize } from '../../models/sizes.js';
import { commandHelp, resolveCommand } from './common.js';

/** "25" for equal chunks, "25-26" when N mod n chunks are one token longer. */
function tokenRange(t: readonly number[]): string {
  const lo = Math.min(...t);
  const hi = Math.max(...t);
  return lo === hi ? `${lo}` : `${lo}-${hi}`;
}

export async function flopsCommand(argv: readonly string[]): Promise<number> {
  const r = resolveCommand('flops', argv, { positional: 0 });
  if (r.help) {
    console.log(
      commandHelp(
        'flops',
        'mmoco flops [--model vit_small --img-size 224 --patch-size 16 --num-chunks 8 --target-chunks 1]',
        'Prints the multiply-accumulates (MACs) of a configuration and FLOPs = 2 × MACs\n' +
          '(matrix products only, as fvcore and timm count them).',
      ),
    );
    return 0;
  }
  const c = r.config;
  // --depth / --embed-dim / --num-heads override the preset, as they do for the training commands
  const a = vitSize(c.model, c);
  const vit: VitFlopConfig = {
    imgSize: c.imgSize,
    patchSize: c.patchSize,
    dim: a.embedDim,
    depth: a.depth,
    heads: a.numHeads,
    classAttnBlocks: c.classAttention ? CLASS_ATTENTION_DEPTH : 0,
  };
  const N = Math.floor(c.imgSize / c.patchSize) ** 2;
  for (const [k, v] of [
    ['numChunks', c.numChunks],
    ['targetChunks', c.targetChunks],
  ] as const) {
    if (v > N)
      throw new RangeError(`--${k === 'numChunks' ? 'num-chunks' : 'target-chunks'} ${v}: more than the ${N} patches`);
  }
  const heads = {
    projector: { layers: PROJECTOR_SIZE.numLayers, hidden: c.projHiddenDim, out: c.projOutDim },
    predictor: { layers: PREDICTOR_SIZE.numLayers, hidden: c.predHiddenDim, out: c.projOutDim },
  };
  const f1 = vitForwardMacs(vit, 1);
  const fn = vitForwardMacs(vit, c.numChunks);
  const step1 = trainStepMacs({ vit, numChunks: 1, targetChunks: 1, ...heads });
  const step = trainStepMacs({ vit, numChunks: c.numChunks, targetChunks: c.targetChunks, ...heads });
  const lines = [
    `${c.model}/${c.patchSize} at ${c.imgSize}px: ${N} patches, dim ${vit.dim}, depth ${vit.depth}` +
      (c.classAttention ? ', 2 class-attention blocks' : ''),
    'convention: MACs of the matrix products (fvcore/timm); FLOPs = 2 × MACs',
    '',
    `backbone forward per image, n = 1:            ${formatMacs(f1.total)}`,
    `backbone forward per image, n = ${String(c.numChunks).padEnd(2)} (${tokenRange(fn.chunkTokens)} tokens/chunk): ${formatMacs(fn.total)}`,
    `  patch embed ${formatMacs(fn.patchEmbed)}, attention projections ${formatMacs(fn.attnProj)},`,
    `  attention N² part ${formatMacs(fn.attnMatmul)}, MLP ${formatMacs(fn.mlp)}` +
      (fn.classAttn ? `, class attention ${formatMacs(fn.classAttn)}` : ''),
    '',
    `training step per image (n = ${c.numChunks}, m = ${c.targetChunks}; online fwd+bwd = 3 × fwd, target fwd):`,
    `  online forward ${formatMacs(step.onlineForward)}, target forward ${formatMacs(step.targetForward)}`,
    `  total ${formatMacs(step.total)}  (n = m = 1: ${formatMacs(step1.total)}; ratio ${(step.total / step1.total).toFixed(3)})`,
    '',
    'Figure 3(a): MACs relative to n = 1 (one CLS per chunk, every patch in one chunk)',
    formatFigure3a(figure3aTable(vit, Math.min(c.maxChunks, N))),
  ];
  console.log(lines.join('\n'));
  return 0;
}
