// Image transforms on NCHW batches (uint8 or float in [0, 1], any device): torchvision-style
// geometry and colour ops, the paper's pre-training strategies, and the fine-tuning recipe
// (RandAugment, mixup/cutmix, random erasing). Every random transform has `sampleParams` (draws
// from the library's generator, so a seed fixes them), `apply(x, params)` and `forward(x)`.
export * from './common.js';
export * from './geometry.js';
export * from './color.js';
export * from './blur.js';
export * from './ops.js';
export * from './randaugment.js';
export * from './mixup.js';
export * from './erasing.js';
export * from './random.js';
export * from './pretrain.js';
export * from './finetune.js';
