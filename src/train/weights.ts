// Pre-trained backbone weights from what the user points at: a pre-training run folder, its
// checkpoint folder, a backbone .safetensors (as `mmoco export` writes it, or any file with
// timm's VisionTransformer names), or another project's PyTorch checkpoint (.pth, .pth.tar:
// MoCo v3, MAE, DeiT/timm, DINO; see torch-weights.ts). The result has timm's names (`patch_embed.proj.weight`,
// `blocks.0.attn.qkv.weight`, ...), ready for timm's `load_state_dict` or ours.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { io, type Tensor } from '../torch/index.js';
import type { ArchConfig } from './backbone.js';
import { readTorchBackbone, type EncoderChoice } from './torch-weights.js';

/** The online backbone's prefix in a pre-training checkpoint (MoCo v3's names). */
export const PRETRAIN_BACKBONE_PREFIX = 'base_encoder.backbone.';

export interface BackboneWeights {
  /** timm-named tensors (the caller disposes them) */
  tensors: Map<string, Tensor>;
  /** model / imgSize / patchSize / numHeads / depth / embedDim when the source records them */
  arch: Partial<{
    model: string;
    imgSize: number;
    patchSize: number;
    numHeads: number;
    depth: number;
    embedDim: number;
  }>;
  /**
   * What the source does not record but was guessed (heads of a .pth: they show in no shape);
   * a value the user configures wins over these.
   */
  assumed?: { numHeads?: number };
  /** where they came from */
  source: string;
}

/** A note when archFor used assumed heads (they show in no shape of the file), else null. */
export function assumedNote(c: ArchConfig, w: BackboneWeights): string | null {
  const n = w.assumed?.numHeads;
  if (!n || w.arch.numHeads !== undefined || (c.numHeads !== null && c.numHeads !== undefined)) return null;
  return `${n} attention heads assumed (the file does not record them; --num-heads sets them)`;
}

/** The architecture to build for `w`: what the weights record wins, then the config, then guesses. */
export function archFor<C extends ArchConfig>(c: C, w: BackboneWeights): C {
  const a: C = { ...c, ...w.arch };
  if (w.arch.numHeads === undefined && (c.numHeads === null || c.numHeads === undefined) && w.assumed) {
    // a file that does not record its heads: the preset's would be a silent guess
    if (!w.assumed.numHeads) {
      throw new Error(
        `${w.source}: the number of attention heads shows in no tensor shape and the file names no architecture: give --num-heads`,
      );
    }
    a.numHeads = w.assumed.numHeads;
  }
  return a;
}

function archFrom(o: Record<string, unknown> | null | undefined): BackboneWeights['arch'] {
  if (!o) return {};
  const a: BackboneWeights['arch'] = {};
  if (typeof o.model === 'string') a.model = o.model;
  for (const k of ['imgSize', 'patchSize', 'numHeads', 'depth', 'embedDim'] as const) {
    const v = o[k];
    if (typeof v === 'number') a[k] = v;
    else if (typeof v === 'string' && /^\d+$/.test(v)) a[k] = Number(v);
  }
  return a;
}

function readJsonIf(path: string): Record<string, unknown> | null {
  return existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>) : null;
}

/** The checkpoint folder of a run folder or checkpoint folder, or null. */
export function checkpointOf(path: string): string | null {
  if (existsSync(join(path, 'state.json'))) return path;
  if (existsSync(join(path, 'checkpoint'))) return io.findCheckpoint(join(path, 'checkpoint'));
  return null;
}

/**
 * Reads the backbone weights at `path` (run folder, checkpoint folder, .safetensors or torch.save
 * file). From a pre-training checkpoint the online backbone (`base_encoder.backbone.*`) is taken;
 * from a classification checkpoint (linprobe/finetune: module `model`) the ViT's own keys; from a
 * PyTorch checkpoint with two encoders the one `o.encoder` names (default: MoCo v3's base
 * encoder, DINO's teacher).
 */
export function readBackboneWeights(path: string, o: { encoder?: EncoderChoice } = {}): BackboneWeights {
  if (!existsSync(path)) throw new Error(`weights not found: ${path}`);
  if (statSync(path).isFile()) {
    if (!path.endsWith('.safetensors')) {
      if (io.isTorchFile(path)) return readTorchBackbone(path, o.encoder ?? 'auto');
      throw new Error(
        `${path}: expected a .safetensors file, a PyTorch checkpoint (torch.save: .pth, .pth.tar) or a run folder`,
      );
    }
    const loaded = io.safetensors.load(path);
    const tensors = loaded.tensors;
    return stripPrefix(tensors, path, archFrom(loaded.metadata));
  }
  const ckpt = checkpointOf(path);
  if (!ckpt) throw new Error(`${path}: no checkpoint in this folder (expected state.json or checkpoint/)`);
  const file = join(ckpt, 'model.safetensors');
  if (!existsSync(file)) throw new Error(`${ckpt}: the checkpoint has no model.safetensors`);
  const loaded = io.safetensors.load(file);
  // the run's config sits next to checkpoint/
  const runDir = basename(ckpt) === 'checkpoint' || basename(ckpt).startsWith('.checkpoint') ? dirname(ckpt) : ckpt;
  const config = readJsonIf(join(runDir, 'config.json'));
  const tensors = loaded.tensors;
  return stripPrefix(tensors, file, archFrom(config));
}

function stripPrefix(all: Map<string, Tensor>, source: string, arch: BackboneWeights['arch']): BackboneWeights {
  const hasPretrain = [...all.keys()].some((k) => k.startsWith(PRETRAIN_BACKBONE_PREFIX));
  if (!hasPretrain) {
    if (!all.has('patch_embed.proj.weight')) {
      for (const t of all.values()) t.dispose();
      throw new Error(
        `${source}: no ViT backbone in it (expected '${PRETRAIN_BACKBONE_PREFIX}*' or timm's 'patch_embed.proj.weight', ...)`,
      );
    }
    return { tensors: all, arch, source };
  }
  const tensors = new Map<string, Tensor>();
  for (const [k, t] of all) {
    if (k.startsWith(PRETRAIN_BACKBONE_PREFIX)) tensors.set(k.slice(PRETRAIN_BACKBONE_PREFIX.length), t);
    else t.dispose();
  }
  return { tensors, arch, source };
}

/** Writes timm-named backbone weights as safetensors with the architecture in the metadata. */
export function writeBackbone(path: string, w: BackboneWeights): void {
  const meta: Record<string, string> = { format: 'pt', producer: 'mmoco' };
  for (const [k, v] of Object.entries(w.arch)) if (v !== null && v !== undefined) meta[k] = String(v);
  io.safetensors.save(path, w.tensors, meta);
}
