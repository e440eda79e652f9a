// Projector and predictor MLPs as MoCo-v3's `_build_mlp` (an nn.Sequential, so the parameter
// names are its indices: "0.weight", "1.running_mean", ...), with ExtreMA's LayerNorm variant.
import { nn } from '../torch/index.js';
import { DEFAULT_HEAD_NORM, HEAD_NORMS, PREDICTOR_SIZE, PROJECTOR_SIZE, type HeadNorm } from './sizes.js';

export interface MlpHeadOptions {
  /** 'bn' (MoCo-v3): Linear(bias=False) → BatchNorm1d → ReLU; 'ln' (ExtreMA): Linear → LayerNorm → GELU */
  norm?: HeadNorm;
  /**
   * A norm without affine parameters after the last Linear (MoCo-v3's last_bn: BatchNorm1d
   * affine=False; with 'ln', LayerNorm elementwiseAffine=False). Default true; false for
   * MoCo-v3's predictor and for BYOL's (no norm on the output layer).
   */
  lastNorm?: boolean;
}

/**
 * MoCo-v3's `_build_mlp(numLayers, inDim, hiddenDim, outDim, last_bn)`: numLayers Linear
 * layers, each but the last followed by norm and activation. With 'bn' every Linear is
 * bias-free (as MoCo-v3); with 'ln' they have biases.
 */
export function buildMlp(
  numLayers: number,
  inDim: number,
  hiddenDim: number,
  outDim: number,
  o: MlpHeadOptions = {},
): nn.Sequential {
  if (!Number.isInteger(numLayers) || numLayers < 1)
    throw new RangeError(`buildMlp: numLayers must be >= 1, got ${numLayers}`);
  const norm = o.norm ?? DEFAULT_HEAD_NORM;
  if (!HEAD_NORMS.includes(norm)) throw new RangeError(`buildMlp: norm must be 'bn' or 'ln', got '${String(norm)}'`);
  const lastNorm = o.lastNorm ?? true;
  const bias = norm === 'ln';
  const s = new nn.Sequential();
  for (let l = 0; l < numLayers; l++) {
    const d1 = l === 0 ? inDim : hiddenDim;
    const d2 = l === numLayers - 1 ? outDim : hiddenDim;
    s.append(new nn.Linear(d1, d2, { bias }));
    if (l < numLayers - 1) {
      if (norm === 'bn') s.append(new nn.BatchNorm1d(d2)).append(new nn.ReLU());
      else s.append(new nn.LayerNorm(d2)).append(new nn.GELU());
    } else if (lastNorm) {
      s.append(
        norm === 'bn' ? new nn.BatchNorm1d(d2, { affine: false }) : new nn.LayerNorm(d2, { elementwiseAffine: false }),
      );
    }
  }
  return s;
}

export interface ProjectorOptions extends MlpHeadOptions {
  numLayers?: number;
  hiddenDim?: number;
  outDim?: number;
}

/** MoCo-v3's ViT projector: 3 layers, hidden 4096, out 256 (PROJECTOR_SIZE), last norm. */
export function buildProjector(inDim: number, o: ProjectorOptions = {}): nn.Sequential {
  const s = PROJECTOR_SIZE;
  return buildMlp(o.numLayers ?? s.numLayers, inDim, o.hiddenDim ?? s.hiddenDim, o.outDim ?? s.outDim, o);
}

/**
 * MoCo-v3's predictor: 2 layers, hidden 4096 (PREDICTOR_SIZE), out `dim`, no norm on the output
 * (last_bn=False, also BYOL's predictor); `lastNorm: true` adds one.
 */
export function buildPredictor(dim: number, o: ProjectorOptions = {}): nn.Sequential {
  const s = PREDICTOR_SIZE;
  return buildMlp(o.numLayers ?? s.numLayers, dim, o.hiddenDim ?? s.hiddenDim, o.outDim ?? dim, {
    ...o,
    lastNorm: o.lastNorm ?? false,
  });
}
