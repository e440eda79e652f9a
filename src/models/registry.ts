// ViT presets by name (depth 12; any image and patch size).
import { VisionTransformer, type ViTOptions } from './vit.js';

export type PresetOptions = Omit<ViTOptions, 'embedDim' | 'depth'>;

/** ViT-Tiny: 192-d, 3 heads, depth 12. */
export const vitTiny = (o: PresetOptions = {}): VisionTransformer =>
  new VisionTransformer({ numHeads: 3, ...o, embedDim: 192, depth: 12 });
/** ViT-Small: 384-d, 6 heads (timm/DeiT; MoCo-v3 uses 12: pass numHeads), depth 12. */
export const vitSmall = (o: PresetOptions = {}): VisionTransformer =>
  new VisionTransformer({ numHeads: 6, ...o, embedDim: 384, depth: 12 });
/** ViT-Base: 768-d, 12 heads, depth 12. */
export const vitBase = (o: PresetOptions = {}): VisionTransformer =>
  new VisionTransformer({ numHeads: 12, ...o, embedDim: 768, depth: 12 });

export const models = { vit_tiny: vitTiny, vit_small: vitSmall, vit_base: vitBase } as const;
export type ModelName = keyof typeof models;

/** Builds a preset by name ('vit_tiny', 'vit_small', 'vit_base'). */
export function createModel(name: string, o: PresetOptions = {}): VisionTransformer {
  const make = (models as Record<string, ((o: PresetOptions) => VisionTransformer) | undefined>)[name];
  if (!make) throw new RangeError(`createModel: unknown model '${name}' (known: ${Object.keys(models).join(', ')})`);
  return make(o);
}
