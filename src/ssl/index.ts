// mmoco's method pieces: masking (§3.2–3.3), losses (Eqs. 1–4), the κ monitor (§3.4), FLOP counts,
// the momentum encoder and Masked MoCo / Masked BYOL with its training step.
export * from './masking.js';
export * from './losses.js';
export * from './kappa.js';
export * from './flops.js';
export * from './momentum.js';
export * from './method.js';
export { GraphedTrainStep, type GraphedStepOptions } from './graphed-step.js';
