// `mmoco export`: the weights of a run (or any file readBackboneWeights reads) in the layouts
// other code loads:
//   timm    safetensors with timm's VisionTransformer names (safetensors.torch.load_file)
//   pth     the same names as a plain state dict in torch.save's zip format, which
//           torch.load(weights_only=True) reads and timm's load_state_dict takes strictly
//   mocov3  MoCo v3's main_moco.py checkpoint, {'epoch', 'arch', 'state_dict'} with its DDP
//           names: 'module.base_encoder.<timm>' and the projector as 'module.base_encoder.head.*',
//           'module.momentum_encoder.*' likewise, 'module.predictor.*', as MoCo v3's main_lincls.py
//           and its DeiT fine-tuning read them (they keep 'module.base_encoder.*' but 'head.*')
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { io, type Tensor } from '../torch/index.js';
import { checkpointOf, readBackboneWeights, writeBackbone, type BackboneWeights } from './weights.js';

export type ExportFormat = 'timm' | 'pth' | 'mocov3';
export const EXPORT_FORMATS: readonly ExportFormat[] = ['timm', 'pth', 'mocov3'];

/** The format a file name asks for: .safetensors → timm, .pth / .pt / .pth.tar / .tar → pth. */
export function formatOfName(file: string): ExportFormat | null {
  if (file.endsWith('.safetensors')) return 'timm';
  if (/\.(pth|pt|tar)$/.test(file)) return 'pth';
  return null;
}

export const DEFAULT_EXPORT_NAME: Record<ExportFormat, string> = {
  timm: 'backbone.safetensors',
  pth: 'backbone.pth',
  mocov3: 'mocov3.pth.tar',
};

// our module prefixes (src/ssl/method.ts) → MoCo v3's (moco/builder.py under DDP)
const MOCOV3_NAMES: [string, string][] = [
  ['base_encoder.backbone.', 'module.base_encoder.'],
  ['base_encoder.projector.', 'module.base_encoder.head.'],
  ['base_encoder.class_attn.', 'module.base_encoder.class_attn.'],
  ['momentum_encoder.backbone.', 'module.momentum_encoder.'],
  ['momentum_encoder.projector.', 'module.momentum_encoder.head.'],
  ['momentum_encoder.class_attn.', 'module.momentum_encoder.class_attn.'],
  ['predictor.', 'module.predictor.'],
];

/** A pre-training run's whole model in MoCo v3's checkpoint layout (the caller disposes the tensors). */
export function mocov3Checkpoint(src: string): {
  value: { epoch: number; arch: string; state_dict: Map<string, Tensor> };
  tensors: Map<string, Tensor>;
} {
  const ckpt = existsSync(src) ? checkpointOf(src) : null;
  if (!ckpt) {
    throw new Error(
      `${src}: the mocov3 format needs a pre-training run or checkpoint folder (projector, predictor, momentum encoder)`,
    );
  }
  const file = join(ckpt, 'model.safetensors');
  if (!existsSync(file)) throw new Error(`${ckpt}: the checkpoint has no model.safetensors`);
  const { tensors } = io.safetensors.load(file);
  const sd = new Map<string, Tensor>();
  for (const [k, t] of tensors) {
    const m = MOCOV3_NAMES.find(([ours]) => k.startsWith(ours));
    if (m) sd.set(m[1] + k.slice(m[0].length), t);
  }
  if (![...sd.keys()].some((k) => k.startsWith('module.base_encoder.patch_embed.'))) {
    for (const t of tensors.values()) t.dispose();
    throw new Error(
      `${file}: no pre-training model (no 'base_encoder.backbone.*'): export a pre-training run as mocov3`,
    );
  }
  const state = JSON.parse(readFileSync(join(ckpt, 'state.json'), 'utf8')) as { progress?: { epoch?: number } };
  const runDir = basename(ckpt) === 'checkpoint' ? dirname(ckpt) : ckpt;
  const cfgPath = join(runDir, 'config.json');
  const config = existsSync(cfgPath) ? (JSON.parse(readFileSync(cfgPath, 'utf8')) as { model?: string }) : {};
  // MoCo v3 stores the count of finished epochs (epoch + 1 of the last one)
  const epoch = typeof state.progress?.epoch === 'number' ? state.progress.epoch + 1 : 0;
  return { value: { epoch, arch: config.model ?? 'vit_small', state_dict: sd }, tensors };
}

/** Writes `src`'s weights to `out` in `format`; returns what it wrote. */
export function exportWeights(
  src: string,
  out: string,
  format: ExportFormat,
): { file: string; format: ExportFormat; tensors: number; arch: BackboneWeights['arch'] } {
  if (format === 'mocov3') {
    const { value, tensors } = mocov3Checkpoint(src);
    try {
      io.saveTorchFile(out, value);
    } finally {
      for (const t of tensors.values()) t.dispose();
    }
    return { file: out, format, tensors: value.state_dict.size, arch: { model: value.arch } };
  }
  const w = readBackboneWeights(src);
  try {
    if (format === 'timm') writeBackbone(out, w);
    else io.saveTorchFile(out, w.tensors);
  } finally {
    for (const t of w.tensors.values()) t.dispose();
  }
  return { file: out, format, tensors: w.tensors.size, arch: w.arch };
}
