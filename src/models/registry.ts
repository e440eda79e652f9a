// ViT presets by name (sizes from sizes.ts; any image and patch size).
import { VisionTransformer, type ViTOptions } from './vit.js';
import { MODEL_NAMES, VIT_SIZES, type ModelName } from './sizes.js';

export type PresetOptions = Omit<ViTOptions, 'embedDim' | 'depth'>;

/** A preset's builder: its width and depth fixed, its heads unless `o.numHeads` says otherwise. */
const preset =
  (name: ModelName) =>
  (o: PresetOptions = {}): VisionTransformer => {
    const s = VIT_SIZES[name];
    return new VisionTransformer({ numHeads: s.numHeads, ...o, embedDim: s.embedDim, depth: s.depth });
  };

/** ViT-Tiny: 192-d, 3 heads, depth 12. */
export const vitTiny = preset('vit_tiny');
/** ViT-Small: 384-d, 6 heads (timm/DeiT; MoCo-v3 uses 12: pass numHeads), depth 12. */
export const vitSmall = preset('vit_small');
/** ViT-Base: 768-d, 12 heads, depth 12. */
export const vitBase = preset('vit_base');

export const models: Readonly<Record<ModelName, (o?: PresetOptions) => VisionTransformer>> = {
  vit_tiny: vitTiny,
  vit_small: vitSmall,
  vit_base: vitBase,
};

/** Builds a preset by name ('vit_tiny', 'vit_small', 'vit_base'). */
export function createModel(name: string, o: PresetOptions = {}): VisionTransformer {
  if (!(MODEL_NAMES as readonly string[]).includes(name))
    throw new RangeError(`createModel: unknown model '${name}' (known: ${MODEL_NAMES.join(', ')})`);
  return models[name as ModelName](o);
}
