// mmoco: masked contrastive pre-training of Vision Transformers. The tensor library is
// published separately as `mmoco/torch`.
export * as torch from './torch/index.js';
