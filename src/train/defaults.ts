// The evaluation recipes' defaults, stated once: the kNN monitor, LinearProbe and Finetuner use
// them, and the knn / linprobe / finetune configs' defaults are these. No tensors here, so the
// configs can read it without loading libtorch.

/** The weighted kNN vote (InstDisc / DINO): k neighbours, weights exp(sim / T). */
export const KNN_DEFAULTS = { k: 20, temperature: 0.07 } as const;

/** MAE's linear probe (main_linprobe.py): LARS, no weight decay, 90 epochs, 10 of warm-up. */
export const LINPROBE_DEFAULTS = { epochs: 90, warmupEpochs: 10, blr: 0.1, weightDecay: 0 } as const;

/** MAE's fine-tuning recipe for ViT-B: AdamW, layer-wise decay 0.65, label smoothing 0.1. */
export const FINETUNE_DEFAULTS = {
  epochs: 100,
  warmupEpochs: 5,
  blr: 5e-4,
  weightDecay: 0.05,
  layerDecay: 0.65,
  betas: [0.9, 0.999],
  labelSmoothing: 0.1,
} as const;
