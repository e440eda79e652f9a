// mmoco models: ViT backbone, projector/predictor heads, class-attention blocks.
export { VisionTransformer, PatchEmbed, Attention, Mlp, Block } from './vit.js';
export type { ViTOptions, ForwardOptions, ForwardHeadOptions } from './vit.js';
export { buildSincosPosEmbed } from './pos-embed.js';
export { ClassAttention, ClassAttentionBlock, ClassAttentionStack } from './class-attention.js';
export type { ClassAttentionOptions } from './class-attention.js';
export { buildMlp, buildProjector, buildPredictor } from './heads.js';
export type { MlpHeadOptions, ProjectorOptions } from './heads.js';
export { vitTiny, vitSmall, vitBase, createModel, models } from './registry.js';
export type { PresetOptions } from './registry.js';
export {
  VIT_SIZES,
  MODEL_NAMES,
  vitSize,
  presetOfSize,
  HEAD_NORMS,
  DEFAULT_HEAD_NORM,
  PROJECTOR_SIZE,
  PREDICTOR_SIZE,
  CLASS_ATTENTION_DEPTH,
} from './sizes.js';
export type { VitSize, ModelName, HeadNorm } from './sizes.js';
