// The ViT a config names: a preset (vit_tiny / vit_small / vit_base) with the image and patch
// size, and optionally its heads, depth or width changed (small demo models).
import { VisionTransformer, type ViTOptions } from '../models/index.js';

export const PRESET_ARCH: Readonly<Record<string, { embedDim: number; numHeads: number; depth: number }>> = {
  vit_tiny: { embedDim: 192, numHeads: 3, depth: 12 },
  vit_small: { embedDim: 384, numHeads: 6, depth: 12 },
  vit_base: { embedDim: 768, numHeads: 12, depth: 12 },
};

export interface ArchConfig {
  model: string;
  imgSize: number;
  patchSize: number;
  numHeads?: number | null;
  depth?: number | null;
  embedDim?: number | null;
}

/** The architecture's sizes (the preset's, overridden where the config says). */
export function archOf(c: ArchConfig): { embedDim: number; numHeads: number; depth: number } {
  const p = PRESET_ARCH[c.model];
  if (!p) throw new RangeError(`unknown model '${c.model}' (known: ${Object.keys(PRESET_ARCH).join(', ')})`);
  return { embedDim: c.embedDim ?? p.embedDim, numHeads: c.numHeads ?? p.numHeads, depth: c.depth ?? p.depth };
}

export function buildBackbone(
  c: ArchConfig,
  extra: Omit<ViTOptions, 'embedDim' | 'numHeads' | 'depth'> = {},
): VisionTransformer {
  const a = archOf(c);
  if (a.embedDim % a.numHeads !== 0) {
    throw new RangeError(`embedDim ${a.embedDim} is not divisible by numHeads ${a.numHeads}`);
  }
  if (c.imgSize % c.patchSize !== 0) {
    throw new RangeError(`imgSize ${c.imgSize} is not a multiple of patchSize ${c.patchSize}`);
  }
  return new VisionTransformer({ ...extra, imgSize: c.imgSize, patchSize: c.patchSize, ...a });
}
