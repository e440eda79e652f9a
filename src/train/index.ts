// Evaluation of pre-trained backbones: kNN on frozen features, the linear probe, fine-tuning
// (MAE's recipes), layer-wise lr decay and loading a pre-trained backbone.
export { knnClassifier, extractFeatures } from './knn.js';
export type { KnnOptions, KnnResult, ExtractOptions, FeatureBackbone } from './knn.js';
export { paramGroupsLrd, layerIdForVit, VIT_NO_WEIGHT_DECAY } from './lr-decay.js';
export type { LayerDecayGroup, LayerDecayOptions } from './lr-decay.js';
export { loadPretrainedBackbone, initHead, interpolatePosEmbed } from './pretrained.js';
export type { LoadPretrainedOptions, LoadPretrainedResult } from './pretrained.js';
export { evaluate, accuracy, correctTopK, defaultTransform } from './eval.js';
export type { BatchSource, Classifier, EvalResult, EvaluateOptions, ImageTransform, LabelledBatch } from './eval.js';
export { LinearProbe } from './linprobe.js';
export type { LinearProbeOptions, LinearProbeState, StepResult } from './linprobe.js';
export { Finetuner, softTargetCrossEntropy } from './finetune.js';
export type { FinetunerOptions, FinetunerState } from './finetune.js';
export { TrainingDiverged } from './run-dir.js';
