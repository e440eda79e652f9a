// Backbones from the official PyTorch checkpoints of other projects (.pth / .pth.tar, read by
// src/torch/io/torch-file.ts, no pickle is ever run): the layout is recognised by its keys and
// the ViT's tensors renamed to timm's names; the architecture comes from the tensors' shapes.
//
//   MoCo v3   {'epoch', 'arch', 'state_dict': {'module.base_encoder.<timm>', 'module.base_encoder.head.*'
//             (projector), 'module.momentum_encoder.*', 'module.predictor.*'}, 'optimizer', ...}
//   MAE       {'model': {<timm>, 'mask_token', 'decoder_*'}, 'args': Namespace(model='mae_vit_...')}
//   DeiT/timm {'model': {<timm>, 'head.*'}, 'args': ...} or a flat {<timm>} state dict
//   DINO      {'teacher': {'backbone.<timm>', 'head.*'}, 'student': {'module.backbone.<timm>', ...}, 'args'}
import { basename } from 'node:path';
import { io, type Tensor } from '../torch/index.js';
import { presetOfSize } from '../models/index.js';
import type { BackboneWeights } from './weights.js';

export type TorchLayout = 'mocov3' | 'mae' | 'timm' | 'dino';

/** Which encoder to take where a checkpoint holds two ('auto': MoCo v3's base encoder, DINO's teacher). */
export type EncoderChoice = 'auto' | 'base_encoder' | 'momentum_encoder' | 'teacher' | 'student';
export const ENCODER_CHOICES: readonly EncoderChoice[] = [
  'auto',
  'base_encoder',
  'momentum_encoder',
  'teacher',
  'student',
];

export interface TorchCheckpointPlan {
  layout: TorchLayout;
  /** where the backbone's state dict sits ('state_dict', 'model', 'teacher', '' for the top level) */
  dictKey: string;
  /** the prefix stripped from its keys ('module.base_encoder.', 'backbone.', '') */
  prefix: string;
  /** timm name → the tensor in the file */
  tensors: Map<string, io.TensorRef>;
  /** the file's keys under the prefix that are not the backbone's (projector, decoder, DINO head) */
  dropped: string[];
  /** the architecture name the file records (MoCo v3 'arch', args.model / args.arch), if any */
  archName: string | null;
  epoch: number | null;
}

const isDict = (v: io.PyValue | undefined): v is io.PyDict => v instanceof Map;

function strKeys(d: io.PyDict): string[] {
  return [...d.keys()].map((k) => (typeof k === 'string' ? k : String(k)));
}

/** A namespace/dict attribute as a string ('args.model'). */
function attr(v: io.PyValue | undefined, name: string): string | null {
  const d = v instanceof io.PyObject ? v.attrs : isDict(v) ? v : null;
  const x = d?.get(name);
  return typeof x === 'string' ? x : null;
}

/** Recognises the layout of a torch.save'd checkpoint and names its backbone tensors as timm does. */
export function planTorchCheckpoint(file: io.TorchFile, encoder: EncoderChoice = 'auto'): TorchCheckpointPlan {
  const src = file.source;
  const top = file.value;
  if (!isDict(top)) throw new Error(`${src}: holds a ${io.typeName(top)}, not a dict of tensors or a checkpoint dict`);
  const want = (allowed: EncoderChoice[], layout: string): void => {
    if (encoder !== 'auto' && !allowed.includes(encoder)) {
      throw new Error(
        `${src}: checkpoint key '${encoder}' does not fit a ${layout} checkpoint (allowed: auto, ${allowed.join(', ')})`,
      );
    }
  };
  const epoch = typeof top.get('epoch') === 'number' ? (top.get('epoch') as number) : null;
  let layout: TorchLayout;
  let dictKey: string;
  let dict: io.PyDict;
  let prefixes: string[];
  let archName: string | null = null;
  let keep: (name: string) => boolean = () => true;

  const sd = top.get('state_dict');
  const model = top.get('model');
  if (isDict(sd) && strKeys(sd).some((k) => /^(module\.)?(base|momentum)_encoder\./.test(k))) {
    want(['base_encoder', 'momentum_encoder'], 'MoCo v3');
    layout = 'mocov3';
    dictKey = 'state_dict';
    dict = sd;
    const enc = encoder === 'auto' ? 'base_encoder' : encoder;
    prefixes = [`module.${enc}.`, `${enc}.`];
    archName = attr(top, 'arch');
    keep = (k) => !k.startsWith('head.'); // MoCo v3's projector replaces the classifier head
  } else if (isDict(top.get('teacher')) || isDict(top.get('student'))) {
    want(['teacher', 'student'], 'DINO');
    layout = 'dino';
    dictKey = encoder === 'auto' ? 'teacher' : encoder;
    const d = top.get(dictKey);
    if (!isDict(d)) throw new Error(`${src}: a DINO checkpoint without '${dictKey}'`);
    dict = d;
    prefixes = ['module.backbone.', 'backbone.'];
    archName = attr(top.get('args'), 'arch');
  } else if (isDict(model)) {
    want([], 'MAE/DeiT');
    dictKey = 'model';
    dict = model;
    prefixes = ['module.', ''];
    archName = attr(top.get('args'), 'model');
    const keys = strKeys(model);
    const mae = keys.some((k) => k === 'mask_token' || k.startsWith('decoder_')) || /^mae_/.test(archName ?? '');
    layout = mae ? 'mae' : 'timm';
    if (mae) keep = (k) => k !== 'mask_token' && !k.startsWith('decoder_');
  } else if (isDict(sd)) {
    want([], 'state_dict');
    layout = 'timm';
    dictKey = 'state_dict';
    dict = sd;
    prefixes = ['module.', ''];
  } else if ([...top.values()].some((v) => v instanceof io.TensorRef)) {
    want([], 'flat state dict');
    layout = 'timm';
    dictKey = '';
    dict = top;
    prefixes = ['module.', ''];
  } else {
    throw new Error(
      `${src}: no known checkpoint layout: expected 'state_dict' with 'module.base_encoder.*' (MoCo v3), ` +
        `'model' (MAE, DeiT/timm), 'teacher'/'student' (DINO) or a flat state dict of tensors; ` +
        `its top-level keys: ${strKeys(top).join(', ') || '(none)'}`,
    );
  }

  const keys = strKeys(dict);
  const prefix = prefixes.find((p) => keys.some((k) => k.startsWith(`${p}patch_embed.`))) ?? null;
  const where = dictKey ? `'${dictKey}'` : 'the top level';
  if (prefix === null) {
    throw new Error(
      `${src}: no ViT backbone in ${where}: no key ${prefixes.map((p) => `'${p}patch_embed.proj.weight'`).join(' or ')} ` +
        `(its first keys: ${keys.slice(0, 6).join(', ')})`,
    );
  }
  const tensors = new Map<string, io.TensorRef>();
  const dropped: string[] = [];
  for (const [k, v] of dict) {
    const key = String(k);
    if (!key.startsWith(prefix)) continue;
    const name = key.slice(prefix.length);
    if (!(v instanceof io.TensorRef)) continue;
    if (keep(name)) tensors.set(name, v);
    else dropped.push(key);
  }
  if (tensors.has('dist_token')) {
    throw new Error(
      `${src}: a distilled DeiT (dist_token, head_dist): mmoco's ViT has one class token; use a non-distilled checkpoint`,
    );
  }
  return { layout, dictKey, prefix, tensors, dropped, archName, epoch };
}

/** Heads of the architectures these projects name: MoCo v3's ViT-S has 12, timm's/DeiT's/DINO's 6. */
function headsFromName(name: string | null, layout: TorchLayout): number | null {
  if (!name) return null;
  const n = name.toLowerCase();
  if (layout === 'mocov3' && /(^|_)(conv_)?(small|base)$/.test(n)) return 12;
  const table: [RegExp, number][] = [
    [/tiny/, 3],
    [/small/, 6],
    [/base/, 12],
    [/large/, 16],
    [/huge/, 16],
  ];
  for (const [re, h] of table) if (re.test(n)) return h;
  return null;
}

/** Widths whose heads are not 64 wide in timm: ViT-H/14 (1280, 16 heads), ViT-g (1408, 16), ViT-G (1664, 16). */
const WIDE_HEADS: Record<number, number> = { 1280: 16, 1408: 16, 1664: 16 };

/**
 * The architecture from the shapes: width, patch and input channels from patch_embed.proj.weight,
 * depth from the blocks, image size from pos_embed (a class token plus a square grid). Heads
 * do not show in any shape: from the recorded name if the file has one, else `assumed` as
 * timm's models of that width have them (64 dimensions per head but for the widest).
 */
export function inferArch(
  plan: TorchCheckpointPlan,
  src: string,
): { arch: BackboneWeights['arch']; assumed: { numHeads?: number } } {
  const t = plan.tensors;
  const where = `${src}: '${plan.dictKey ? `${plan.dictKey}.` : ''}${plan.prefix}`;
  const shape = (k: string, dims: number): number[] => {
    const r = t.get(k);
    if (!r) throw new Error(`${where}${k}' is missing`);
    if (r.shape.length !== dims) throw new Error(`${where}${k}' has shape [${r.shape.join(', ')}], expected ${dims}-D`);
    return r.shape;
  };
  const [embedDim, inChans, ph, pw] = shape('patch_embed.proj.weight', 4) as [number, number, number, number];
  if (ph !== pw)
    throw new Error(`${where}patch_embed.proj.weight' has ${ph}x${pw} patches: only square ones are supported`);
  if (inChans !== 3) throw new Error(`${where}patch_embed.proj.weight' takes ${inChans} channels: mmoco's ViT takes 3`);
  const blocks = new Set<number>();
  for (const k of t.keys()) {
    const m = /^blocks\.(\d+)\./.exec(k);
    if (m) blocks.add(Number(m[1]));
  }
  const depth = blocks.size;
  if (depth === 0) throw new Error(`${where}blocks.0.*' is missing: no transformer blocks`);
  for (let i = 0; i < depth; i++)
    if (!blocks.has(i)) throw new Error(`${where}blocks.${i}.*' is missing (${depth} blocks)`);
  const fc1 = shape('blocks.0.mlp.fc1.weight', 2);
  if (fc1[0] !== 4 * embedDim) {
    throw new Error(
      `${where}blocks.0.mlp.fc1.weight' is [${fc1.join(', ')}]: MLP ratio ${fc1[0]! / embedDim}, mmoco's ViT has 4`,
    );
  }
  if (!t.has('blocks.0.attn.qkv.bias'))
    throw new Error(`${where}blocks.0.attn.qkv.bias' is missing: mmoco's ViT has qkv biases`);
  shape('cls_token', 3);
  const pe = shape('pos_embed', 3);
  const side = Math.round(Math.sqrt(pe[1]! - 1));
  if (side * side !== pe[1]! - 1 || pe[2] !== embedDim) {
    throw new Error(
      `${where}pos_embed' is [${pe.join(', ')}]: not a class token plus a square grid of width ${embedDim}`,
    );
  }
  const arch: BackboneWeights['arch'] = { imgSize: side * ph, patchSize: ph, depth, embedDim };
  const assumed: { numHeads?: number } = {};
  const named = headsFromName(plan.archName, plan.layout);
  if (named !== null && embedDim % named === 0) arch.numHeads = named;
  else if (WIDE_HEADS[embedDim]) assumed.numHeads = WIDE_HEADS[embedDim];
  else if (embedDim % 64 === 0) assumed.numHeads = embedDim / 64;
  const heads = arch.numHeads ?? assumed.numHeads;
  const preset = heads === undefined ? null : presetOfSize({ embedDim, numHeads: heads, depth });
  if (preset) arch.model = preset;
  return { arch, assumed };
}

/** A torch.save'd checkpoint's backbone, with timm's names (the caller disposes the tensors). */
export function readTorchBackbone(
  path: string,
  encoder: EncoderChoice = 'auto',
): BackboneWeights & { plan: TorchCheckpointPlan } {
  const file = io.readTorchFile(path);
  const plan = planTorchCheckpoint(file, encoder);
  const { arch, assumed } = inferArch(plan, path);
  const names = [...plan.tensors.keys()];
  const loaded = file.loadTensors([...plan.tensors.values()]);
  const tensors = new Map<string, Tensor>(names.map((n, i) => [n, loaded[i]!]));
  const which = plan.dictKey ? ` ${plan.dictKey}${plan.prefix ? `/${plan.prefix.replace(/\.$/, '')}` : ''}` : '';
  return { tensors, arch, assumed, source: `${path} (${plan.layout}${which})`, plan };
}

function shortList(keys: string[], n = 12): string[] {
  return keys.length <= n ? keys : [...keys.slice(0, n), `... (${keys.length - n} more)`];
}

/** What `mmoco info` shows of a torch.save file, without loading a tensor. */
export function describeTorchCheckpoint(path: string, encoder: EncoderChoice = 'auto'): Record<string, unknown> {
  const file = io.readTorchFile(path);
  const top = file.value;
  const all = io.tensorRefs(top);
  let parameters = 0;
  for (const r of all.values()) parameters += r.numel();
  const info: Record<string, unknown> = {
    file: basename(path),
    format: file.format,
    topLevelKeys: isDict(top) ? shortList(strKeys(top)) : io.typeName(top),
    tensors: all.size,
    parameters,
  };
  try {
    const plan = planTorchCheckpoint(file, encoder);
    const { arch, assumed } = inferArch(plan, path);
    let backbone = 0;
    for (const r of plan.tensors.values()) backbone += r.numel();
    Object.assign(info, {
      layout: plan.layout,
      backbone: {
        from: `${plan.dictKey || '(top level)'}${plan.prefix ? ` ${plan.prefix}*` : ''}`,
        tensors: plan.tensors.size,
        parameters: backbone,
        dropped: plan.dropped.length,
      },
      arch,
      ...(assumed.numHeads
        ? {
            assumed: {
              numHeads: assumed.numHeads,
              why: "heads show in no shape and the file names no architecture: timm's heads for this width",
            },
          }
        : arch.numHeads === undefined
          ? { numHeads: 'unknown: heads show in no shape and the file names no architecture (give --num-heads)' }
          : {}),
      ...(plan.archName ? { recordedArch: plan.archName } : {}),
      ...(plan.epoch !== null ? { epoch: plan.epoch } : {}),
    });
  } catch (e) {
    info.layout = null;
    info.problem = (e as Error).message;
  }
  return info;
}
