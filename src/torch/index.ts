// mmoco/torch: a tensor library over libtorch with PyTorch's names.
import { applyThreadDefaults } from './threads.js';

export { Tensor, scalarLike } from './tensor.js';
export type { Dims, Scalar, TensorOrScalar, ToOptions, BackwardOptions } from './tensor.js';
export type { DType, Device, AnyTypedArray } from './dtype.js';
export { isFloatingPoint } from './dtype.js';
export * from './creation.js';
export * from './ops.js';
export * as F from './functional.js';
export * as optim from './optim/index.js';
export * as nn from './nn/index.js';
export * as distributed from './distributed/index.js';
export * as io from './io/index.js';
export { tidy, keep, dispose, liveTensors, memory } from './scope.js';
export { noGrad, enableGrad, isGradEnabled, setGradEnabled } from './autograd.js';
export * as autograd from './autograd.js';
export { manualSeed, initialSeed, getRngState, setRngState } from './random.js';
export { setNumThreads, getNumThreads, parallelInfo, blasInfo, isReferenceBlas, cuda, buildInfo } from './threads.js';
export { CUDAGraph } from './cuda-graph.js';
export { forbidHostSync, hostSyncForbidden } from './host-sync.js';
export type { BlasInfo } from './threads.js';
export { autocast, autocastState, choosePrecision, fastBf16, machineBf16Evidence } from './amp.js';
export type { AutocastDevice, AutocastOptions, Bf16Evidence, Precision } from './amp.js';

applyThreadDefaults();
