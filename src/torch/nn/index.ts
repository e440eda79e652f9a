// torch.nn: layers as Modules with PyTorch's parameter names and default initialisation.
export { Module } from './module.js';
export type { StateDict, LoadResult } from './module.js';
export { Linear, Identity } from './linear.js';
export type { LinearOptions, FactoryOptions } from './linear.js';
export { Conv2d } from './conv.js';
export type { Conv2dOptions } from './conv.js';
export { LayerNorm, BatchNorm, BatchNorm1d, BatchNorm2d } from './norm.js';
export type { LayerNormOptions, BatchNormOptions } from './norm.js';
export { Dropout, DropPath, dropPath } from './dropout.js';
export { GELU, ReLU } from './activation.js';
export { Sequential, ModuleList } from './container.js';
export type { TensorModule } from './container.js';
export * as init from './init.js';
