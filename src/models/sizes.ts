// The sizes of mmoco's models, stated once: the ViT presets (read by the registry, the configs'
// `model` key, `mmoco flops` and the PyTorch checkpoint reader) and MoCo v3's projector and
// predictor (read by the heads and the configs). No tensors here, so the configs and the FLOP
// counter can read it without loading libtorch.

export interface VitSize {
  embedDim: number;
  numHeads: number;
  depth: number;
}

/** The ViT presets by name (any image and patch size). ViT-Small has timm/DeiT's 6 heads; MoCo v3 uses 12. */
export const VIT_SIZES = {
  vit_tiny: { embedDim: 192, numHeads: 3, depth: 12 },
  vit_small: { embedDim: 384, numHeads: 6, depth: 12 },
  vit_base: { embedDim: 768, numHeads: 12, depth: 12 },
} as const satisfies Readonly<Record<string, VitSize>>;

export type ModelName = keyof typeof VIT_SIZES;
export const MODEL_NAMES = Object.keys(VIT_SIZES) as readonly ModelName[];

/** A preset's sizes, overridden where `o` gives a value (null or undefined: the preset's). */
export function vitSize(
  model: string,
  o: { embedDim?: number | null; numHeads?: number | null; depth?: number | null } = {},
): VitSize {
  const p = (VIT_SIZES as Readonly<Record<string, VitSize>>)[model];
  if (!p) throw new RangeError(`unknown model '${model}' (known: ${MODEL_NAMES.join(', ')})`);
  return { embedDim: o.embedDim ?? p.embedDim, numHeads: o.numHeads ?? p.numHeads, depth: o.depth ?? p.depth };
}

/** The preset whose sizes these are, or null. */
export function presetOfSize(s: VitSize): ModelName | null {
  return (
    MODEL_NAMES.find((m) => {
      const p = VIT_SIZES[m];
      return p.embedDim === s.embedDim && p.numHeads === s.numHeads && p.depth === s.depth;
    }) ?? null
  );
}

export const HEAD_NORMS = ['bn', 'ln'] as const;
/** 'bn': MoCo v3's BatchNorm heads; 'ln': ExtreMA's LayerNorm heads (§3.4). */
export type HeadNorm = (typeof HEAD_NORMS)[number];
export const DEFAULT_HEAD_NORM: HeadNorm = 'bn';

/** MoCo v3's ViT projector: 3 layers, hidden 4096, out 256. */
export const PROJECTOR_SIZE = { numLayers: 3, hiddenDim: 4096, outDim: 256 } as const;
/** MoCo v3's predictor: 2 layers, hidden 4096 (its output has the projector's width). */
export const PREDICTOR_SIZE = { numLayers: 2, hiddenDim: 4096 } as const;
/** Class-attention blocks between backbone and projector when turned on (§3.4, CaiT's two). */
export const CLASS_ATTENTION_DEPTH = 2;
