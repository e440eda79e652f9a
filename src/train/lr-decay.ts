// Layer-wise learning-rate decay for fine-tuning a ViT, as MAE's util/lr_decay.py
// (param_groups_lrd): the deeper a parameter sits, the closer its lr stays to the scheduled one.
// Parameters are grouped by (layer, decay or not); each group's `lrScale` multiplies the
// scheduled lr (WarmupCosine.apply / Optimizer.setLr set group.lr = lr · lrScale).
import type { nn, Tensor } from '../torch/index.js';

/** timm's VisionTransformer.no_weight_decay(): parameters exempt from weight decay by name. */
export const VIT_NO_WEIGHT_DECAY: readonly string[] = ['cls_token', 'pos_embed', 'dist_token'];

export interface LayerDecayOptions {
  /** weight decay of the decayed groups (default 0.05, MAE's fine-tuning value) */
  weightDecay?: number;
  /** per-layer factor (default 0.75, MAE's default; its ViT-B recipe passes 0.65) */
  layerDecay?: number;
  /** names without weight decay besides the 1-D parameters (default: timm's ViT list) */
  noWeightDecay?: readonly string[];
  /** number of transformer blocks; default: the model's `depth` */
  depth?: number;
}

/** One parameter group for the optimisers (a ParamGroupSpec), with the names of its parameters. */
export interface LayerDecayGroup {
  params: Tensor[];
  /** the parameters' names, in the model's order */
  names: string[];
  /** MAE's group name: `layer_<id>_decay` or `layer_<id>_no_decay` */
  groupName: string;
  layerId: number;
  lrScale: number;
  weightDecay: number;
}

/**
 * MAE's get_layer_id_for_vit: 0 for the embeddings (cls_token, pos_embed, patch_embed.*),
 * i + 1 for blocks.i.*, and numLayers (= depth + 1) for everything after the blocks (norm,
 * fc_norm, head).
 */
export function layerIdForVit(name: string, numLayers: number): number {
  if (name === 'cls_token' || name === 'pos_embed' || name.startsWith('patch_embed')) return 0;
  if (name.startsWith('blocks.')) {
    const i = Number(name.split('.')[1]);
    if (!Number.isInteger(i)) throw new RangeError(`layerIdForVit: cannot read the block index of '${name}'`);
    return i + 1;
  }
  return numLayers;
}

/**
 * MAE's param_groups_lrd on a ViT-like module: one group per (layer id, decay / no decay), in
 * order of first appearance; lrScale = layerDecay^(numLayers − layerId) with numLayers = depth + 1;
 * weight decay 0 for 1-D parameters (biases, norms) and the `noWeightDecay` names; parameters
 * with requiresGrad false are left out.
 */
export function paramGroupsLrd(model: nn.Module & { depth?: number }, o: LayerDecayOptions = {}): LayerDecayGroup[] {
  const weightDecay = o.weightDecay ?? 0.05;
  const layerDecay = o.layerDecay ?? 0.75;
  const noWd = new Set(o.noWeightDecay ?? VIT_NO_WEIGHT_DECAY);
  const depth = o.depth ?? model.depth;
  if (!Number.isInteger(depth) || depth! < 0) {
    throw new RangeError('paramGroupsLrd: the model has no depth; pass o.depth (the number of blocks)');
  }
  const numLayers = depth! + 1;
  const groups = new Map<string, LayerDecayGroup>();
  for (const [name, p] of model.namedParameters()) {
    if (!p.requiresGrad) continue;
    const decay = !(p.ndim === 1 || noWd.has(name));
    const layerId = layerIdForVit(name, numLayers);
    if (layerId > numLayers) {
      throw new RangeError(`paramGroupsLrd: '${name}' is in block ${layerId - 1}, but the model has ${depth} blocks`);
    }
    const groupName = `layer_${layerId}_${decay ? 'decay' : 'no_decay'}`;
    let g = groups.get(groupName);
    if (!g) {
      g = {
        params: [],
        names: [],
        groupName,
        layerId,
        lrScale: layerDecay ** (numLayers - layerId),
        weightDecay: decay ? weightDecay : 0,
      };
      groups.set(groupName, g);
    }
    g.params.push(p);
    g.names.push(name);
  }
  return [...groups.values()];
}
