// Loading a pre-trained backbone into a classification ViT, as MAE's main_finetune.py and
// main_linprobe.py do it: a head whose shape differs from the checkpoint's is dropped, keys the
// model lacks (the pre-training `norm` of a global-pool model, projector heads) are tolerated
// and reported, and the only keys allowed to be missing are the new head's and `fc_norm`'s.
import { cat, F, nn, noGrad, tidy, type Tensor } from '../torch/index.js';

export interface LoadPretrainedOptions {
  /**
   * Prefix the backbone's keys carry in the checkpoint (e.g. 'base_encoder.' or 'backbone.'):
   * only keys with it are used, with it stripped. Default: none.
   */
  prefix?: string;
  /**
   * Names (exact, or a prefix ending in '.') allowed to be missing from the checkpoint. Default:
   * MAE's set, `head.*` and `fc_norm.*`.
   */
  allowMissing?: readonly string[];
  /**
   * Resize a checkpoint `pos_embed` made for another grid (square) to the model's, bicubically,
   * as MAE's interpolate_pos_embed (default true; nothing happens when the grids agree).
   */
  interpolatePosEmbed?: boolean;
}

export interface LoadPretrainedResult {
  /** model keys the checkpoint did not have (left as initialised) */
  missingKeys: string[];
  /** checkpoint keys the model does not have (ignored) */
  unexpectedKeys: string[];
  /** checkpoint head keys dropped because their shape differs from the model's head */
  droppedKeys: string[];
  /** checkpoint keys resized to the model's grid (`pos_embed`) */
  interpolatedKeys: string[];
}

const DEFAULT_ALLOW_MISSING = ['head.', 'fc_norm.'];

const matches = (name: string, pats: readonly string[]): boolean =>
  pats.some((p) => (p.endsWith('.') ? name.startsWith(p) : name === p));

const shapeStr = (t: Tensor): string => `[${t.shape.join(', ')}]`;

/**
 * Copies a pre-trained backbone's state dict into `model` (non-strictly, as MAE's
 * `load_state_dict(strict=False)`). A checkpoint `head.weight`/`head.bias` whose shape differs
 * from the model's is dropped (MAE's fine-tuning does this for a pre-training head); any other
 * shape difference is an error naming the key and both shapes; a missing key outside
 * `allowMissing` is an error (MAE asserts the same), which catches a wrong `prefix`.
 */
export function loadPretrainedBackbone(
  model: nn.Module,
  stateDict: Map<string, Tensor> | Record<string, Tensor>,
  o: LoadPretrainedOptions = {},
): LoadPretrainedResult {
  const src = stateDict instanceof Map ? stateDict : new Map(Object.entries(stateDict));
  const prefix = o.prefix ?? '';
  const sd = new Map<string, Tensor>();
  for (const [k, v] of src) if (k.startsWith(prefix)) sd.set(k.slice(prefix.length), v);
  if (prefix && sd.size === 0) {
    throw new Error(`loadPretrainedBackbone: no checkpoint key starts with '${prefix}'`);
  }
  const own = model.stateDict(); // detached handles, released below
  const made: Tensor[] = [];
  try {
    const droppedKeys: string[] = [];
    const interpolatedKeys: string[] = [];
    const grid = (model as { patch_embed?: { gridSize?: [number, number] } }).patch_embed?.gridSize;
    const pe = sd.get('pos_embed');
    const ownPe = own.get('pos_embed');
    if ((o.interpolatePosEmbed ?? true) && grid && pe && ownPe && pe.ndim === 3 && ownPe.ndim === 3) {
      const extra = ownPe.shape[1]! - grid[0] * grid[1];
      const side = Math.round(Math.sqrt(pe.shape[1]! - extra));
      // only a square grid of another size with the same width (anything else is a shape error below)
      if (
        pe.shape[1] !== ownPe.shape[1] &&
        pe.shape[2] === ownPe.shape[2] &&
        extra >= 0 &&
        side * side === pe.shape[1]! - extra
      ) {
        const t = interpolatePosEmbed(pe, grid, extra);
        made.push(t);
        sd.set('pos_embed', t);
        interpolatedKeys.push('pos_embed');
      }
    }
    for (const k of ['head.weight', 'head.bias']) {
      const s = sd.get(k);
      const t = own.get(k);
      if (s && (!t || s.shape.join() !== t.shape.join())) {
        sd.delete(k);
        droppedKeys.push(k);
      }
    }
    const bad: string[] = [];
    for (const [k, t] of own) {
      const s = sd.get(k);
      if (s && s.shape.join() !== t.shape.join()) bad.push(`${k}: checkpoint ${shapeStr(s)}, model ${shapeStr(t)}`);
    }
    if (bad.length) throw new Error(`loadPretrainedBackbone: shape mismatch for ${bad.join('; ')}`);
    const missingKeys = [...own.keys()].filter((k) => !sd.has(k));
    const unexpectedKeys = [...sd.keys()].filter((k) => !own.has(k));
    const allow = o.allowMissing ?? DEFAULT_ALLOW_MISSING;
    const notAllowed = missingKeys.filter((k) => !matches(k, allow));
    if (notAllowed.length) {
      throw new Error(
        `loadPretrainedBackbone: the checkpoint lacks ${notAllowed.length} backbone key(s): ${notAllowed.join(', ')}` +
          (prefix ? '' : ' (do its keys carry a prefix? pass o.prefix)'),
      );
    }
    model.loadStateDict(new Map([...sd].filter(([k]) => own.has(k))), { strict: false });
    return { missingKeys, unexpectedKeys, droppedKeys, interpolatedKeys };
  } finally {
    for (const t of [...own.values(), ...made]) t.dispose();
  }
}

/**
 * MAE's re-initialisation of a classifier before training it: weight ~ timm's trunc_normal_
 * (std `std`, cut at ±2 absolute), bias 0. MAE uses std 2e-5 for fine-tuning, 0.01 for the probe.
 */
export function initHead(head: nn.Linear, std: number): void {
  noGrad(() => {
    nn.init.truncNormal(head.weight, { std, a: -2, b: 2 });
    if (head.bias) nn.init.zeros(head.bias);
  });
}

/**
 * MAE's interpolate_pos_embed: a position table [1, extra + s·s, D] of a square s × s grid
 * resized to `grid` (rows, columns) by bicubic interpolation (align_corners false); the first
 * `numExtraTokens` rows (CLS) are kept as they are.
 */
export function interpolatePosEmbed(posEmbed: Tensor, grid: readonly [number, number], numExtraTokens = 1): Tensor {
  const [, n, d] = posEmbed.shape as [number, number, number];
  const side = Math.round(Math.sqrt(n - numExtraTokens));
  if (posEmbed.ndim !== 3 || side * side !== n - numExtraTokens) {
    throw new RangeError(
      `interpolatePosEmbed: [${posEmbed.shape.join(', ')}] is not ${numExtraTokens} extra token(s) + a square grid`,
    );
  }
  return tidy(() =>
    noGrad(() => {
      const extra = posEmbed.narrow(1, 0, numExtraTokens);
      const tokens = posEmbed
        .narrow(1, numExtraTokens, side * side)
        .reshape(1, side, side, d)
        .permute(0, 3, 1, 2);
      const resized = F.interpolate(tokens, { size: [grid[0], grid[1]], mode: 'bicubic', alignCorners: false });
      return cat([extra, resized.permute(0, 2, 3, 1).flatten(1, 2)], 1).contiguous();
    }),
  );
}
