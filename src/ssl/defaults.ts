// The method's defaults, stated once: MaskedContrastive, the losses and the training step use
// them, and the pre-training config's defaults are these. No tensors here, so the configs can
// read it without loading libtorch.

export const METHODS = ['mmoco', 'mbyol'] as const;
/** 'mmoco': InfoNCE (M-MoCo); 'mbyol': 2 − 2·cos (M-BYOL). */
export type MethodName = (typeof METHODS)[number];
export const DEFAULT_METHOD: MethodName = 'mmoco';

/** n: chunks per online view (the paper's choice for ViT-S/16 at 224). */
export const DEFAULT_NUM_CHUNKS = 8;
/** m: chunks per target view (1: the full view). */
export const DEFAULT_TARGET_CHUNKS = 1;
/** InfoNCE temperature τ (MoCo v3's ViT recipe). */
export const DEFAULT_TEMPERATURE = 0.2;
/** MoCo v3's base momentum (ViT recipe) and BYOL's. */
export const DEFAULT_BASE_MOMENTUM: Readonly<Record<MethodName, number>> = { mmoco: 0.99, mbyol: 0.996 };
/** A norm on the predictor's output: off, as MoCo v3's code (last_bn=False). */
export const DEFAULT_PREDICTOR_LAST_NORM = false;
