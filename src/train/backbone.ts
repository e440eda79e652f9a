// The ViT a config names: a preset (vit_tiny / vit_small / vit_base) with the image and patch
// size, and optionally its heads, depth or width changed (small demo models).
import { VisionTransformer, vitSize, type ViTOptions, type VitSize } from '../models/index.js';

export interface ArchConfig {
  model: string;
  imgSize: number;
  patchSize: number;
  numHeads?: number | null;
  depth?: number | null;
  embedDim?: number | null;
}

/** The architecture's sizes (the preset's, overridden where the config says). */
export function archOf(c: ArchConfig): VitSize {
  return vitSize(c.model, c);
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
