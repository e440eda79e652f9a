// mmoco: masked contrastive pre-training of Vision Transformers. The tensor library is
// published separately as `mmoco/torch`.
export * as torch from './torch/index.js';
// the checkpoint API (safetensors, checkpoint folders, torch.save files), also `torch.io`
export { io } from './torch/index.js';
export * as ssl from './ssl/index.js';
export * as models from './models/index.js';
export * as data from './data/index.js';
