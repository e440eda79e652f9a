// mmoco/torch's files: safetensors, training checkpoints (a folder per training state), the
// files of torch.save (read without running their pickles, written for torch.load), and the
// atomic writes they all use. Reached as `io` from `mmoco/torch` and from `mmoco`.
export * as safetensors from './safetensors.js';
export { saveCheckpoint, loadCheckpoint, findCheckpoint, describeProgress } from './checkpoint.js';
export type { Stateful, TrainingState } from './checkpoint.js';
export { isTorchFile, readTorchFile, saveTorchFile, tensorRefs } from './torch-file.js';
export type { Savable, TorchFile } from './torch-file.js';
export { PickleError, PyGlobal, PyObject, PyTuple, TensorRef, pickle, typeName, unpickle } from './pickle.js';
export type { Picklable, PickledTensor, PyDict, PyValue, StorageRef, UnpickleOptions } from './pickle.js';
export { AtomicFileWriter, writeFileAtomic, writeFileAtomicWith } from './atomic.js';
