// mmoco/torch optim: optimisers over parameter groups (one fused native call per group and
// step), gradient clipping and per-iteration schedules.
export { Optimizer } from './optimizer.js';
export type {
  BaseHyper,
  HyperValue,
  OptimizerStateDict,
  ParamGroup,
  ParamGroupSpec,
  ParamState,
  Params,
} from './optimizer.js';
export { AdamW, adamwTensorLrStep } from './adamw.js';
export type { AdamWHyper, AdamWOptions } from './adamw.js';
export { SGD } from './sgd.js';
export type { SGDHyper, SGDOptions } from './sgd.js';
export { LARS } from './lars.js';
export type { LARSHyper, LARSOptions } from './lars.js';
export { clipGradNorm } from './clip.js';
export type { ClipGradNormOptions } from './clip.js';
export { WarmupCosine, adjustLearningRate, cosineMomentum, lrFromBlr, warmupCosineLr } from './schedule.js';
export type { LrSettable, WarmupCosineOptions } from './schedule.js';
