// `mmoco export <run> [--out file] [--format timm|pth|mocov3]` (the online backbone in timm's
// names, or MoCo v3's checkpoint layout) and `mmoco info [<run|checkpoint|file>]` (the engine,
// or what a checkpoint or a pack holds).
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { openPack } from '../../data/pack.js';
import * as torch from '../../torch/index.js';
import {
  DEFAULT_EXPORT_NAME,
  EXPORT_FORMATS,
  exportWeights,
  formatOfName,
  type ExportFormat,
} from '../../train/export.js';
import { describeTorchCheckpoint, ENCODER_CHOICES, type EncoderChoice } from '../../train/torch-weights.js';
import { checkpointOf } from '../../train/weights.js';
import { UsageError } from './common.js';

const EXPORT_HELP = `usage: mmoco export <run folder | checkpoint folder | weights file> [--out <file>] [--format timm|pth|mocov3]

Writes the online backbone (pre-training) or the classifier ViT (linprobe/finetune):
  timm    safetensors with timm's VisionTransformer names (default; --out *.safetensors). In PyTorch:
          safetensors.torch.load_file, then timm's model.load_state_dict(sd, strict=False).
  pth     the same names as a plain state dict (--out *.pth, *.pt, *.pth.tar), read by
          torch.load(file, weights_only=True).
  mocov3  MoCo v3's checkpoint {'epoch', 'arch', 'state_dict': 'module.base_encoder.*' (projector as head.*),
          'module.momentum_encoder.*', 'module.predictor.*'} of a pre-training run, for MoCo v3's
          main_lincls.py --pretrained and its DeiT fine-tuning.
Default --out: <run>/backbone.safetensors, <run>/backbone.pth or <run>/mocov3.pth.tar.`;

export function exportCommand(argv: readonly string[]): number {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(EXPORT_HELP);
    return 0;
  }
  let out: string | null = null;
  let format: ExportFormat | null = null;
  const pos: string[] = [];
  const setFormat = (v: string | undefined): void => {
    if (!v || !EXPORT_FORMATS.includes(v as ExportFormat)) {
      throw new UsageError(`export: --format must be one of ${EXPORT_FORMATS.join(', ')}, got '${v ?? ''}'`);
    }
    format = v as ExportFormat;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--out') {
      out = argv[++i] ?? null;
      if (!out) throw new UsageError('--out needs a file name');
    } else if (a.startsWith('--out=')) out = a.slice(6);
    else if (a === '--format') setFormat(argv[++i]);
    else if (a.startsWith('--format=')) setFormat(a.slice(9));
    else if (a.startsWith('--')) throw new UsageError(`export: unknown option ${a}`);
    else pos.push(a);
  }
  if (pos.length !== 1) throw new UsageError(`export: expected one run or checkpoint folder\n\n${EXPORT_HELP}`);
  const src = pos[0]!;
  const byName = out ? formatOfName(out) : null;
  if (out && !byName) {
    throw new UsageError(`export: --out ${out}: expected a .safetensors, .pth, .pt or .pth.tar file name`);
  }
  const fmt: ExportFormat = format ?? byName ?? 'timm';
  if (out && fmt !== 'timm' && byName === 'timm') {
    throw new UsageError(
      `export: --format ${fmt} writes a PyTorch file: give --out a .pth or .pth.tar name, not ${out}`,
    );
  }
  if (out && fmt === 'timm' && byName !== 'timm') {
    throw new UsageError(`export: --format timm writes safetensors: give --out a .safetensors name, not ${out}`);
  }
  if (!existsSync(src)) throw new UsageError(`export: not found: ${src}`);
  const file = out ?? join(statSync(src).isDirectory() ? src : '.', DEFAULT_EXPORT_NAME[fmt]);
  console.log(JSON.stringify(exportWeights(src, file, fmt)));
  return 0;
}

function countParams(tensors: Map<string, torch.Tensor>): number {
  let s = 0;
  for (const t of tensors.values()) s += t.numel();
  return s;
}

function groupCounts(tensors: Map<string, torch.Tensor>): Record<string, number> {
  const g: Record<string, number> = {};
  for (const [k, t] of tensors) {
    const parts = k.split('.');
    const key = parts.slice(0, parts[0] === 'base_encoder' || parts[0] === 'momentum_encoder' ? 2 : 1).join('.');
    g[key] = (g[key] ?? 0) + t.numel();
  }
  return g;
}

export function infoCommand(argv: readonly string[]): number {
  const target = argv.find((a, i) => !a.startsWith('-') && argv[i - 1] !== '--checkpoint-key');
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(
      'usage: mmoco info [<run folder | checkpoint folder | file.safetensors | file.pth | file.mmpack>] [--checkpoint-key <key>]\n\n' +
        'Without an argument: libtorch version, threads, BLAS and devices. With one: what the checkpoint or the\n' +
        'packed data set holds;\n' +
        'of a PyTorch file (.pth, .pth.tar): its layout (MoCo v3, MAE, DeiT/timm, DINO), top-level keys, tensors,\n' +
        'parameters and the ViT architecture its shapes give. --checkpoint-key picks the encoder of a file with two\n' +
        `(${ENCODER_CHOICES.join(', ')}).`,
    );
    return 0;
  }
  if (!target) {
    console.log(
      JSON.stringify(
        {
          ...torch.buildInfo(),
          threads: torch.getNumThreads(),
          blas: torch.blasInfo(),
          cuda: torch.cuda.isAvailable() ? torch.cuda.deviceCount() : 0,
        },
        null,
        2,
      ),
    );
    return 0;
  }
  if (!existsSync(target)) throw new UsageError(`info: not found: ${target}`);
  if (statSync(target).isFile() && target.endsWith('.mmpack')) {
    console.log(JSON.stringify(openPack(target).summary(), null, 2));
    return 0;
  }
  if (statSync(target).isFile() && !target.endsWith('.safetensors') && torch.io.isTorchFile(target)) {
    const i = argv.indexOf('--checkpoint-key');
    const key = (i >= 0 ? argv[i + 1] : 'auto') as EncoderChoice;
    if (!ENCODER_CHOICES.includes(key)) {
      throw new UsageError(`info: --checkpoint-key must be one of ${ENCODER_CHOICES.join(', ')}, got '${String(key)}'`);
    }
    console.log(JSON.stringify(describeTorchCheckpoint(target, key), null, 2));
    return 0;
  }
  if (statSync(target).isFile()) {
    const l = torch.io.safetensors.load(target);
    const info = {
      file: target,
      metadata: l.metadata,
      tensors: l.tensors.size,
      parameters: countParams(l.tensors),
      shapes: Object.fromEntries([...l.tensors].slice(0, 8).map(([k, t]) => [k, t.shape])),
    };
    for (const t of l.tensors.values()) t.dispose();
    console.log(JSON.stringify(info, null, 2));
    return 0;
  }
  const ckpt = checkpointOf(target);
  if (!ckpt) throw new UsageError(`info: ${target}: no checkpoint here (expected state.json or checkpoint/)`);
  const state = JSON.parse(readFileSync(join(ckpt, 'state.json'), 'utf8')) as Record<string, unknown>;
  const cfgPath = join(target, 'config.json');
  const config = existsSync(cfgPath) ? (JSON.parse(readFileSync(cfgPath, 'utf8')) as Record<string, unknown>) : null;
  const modules: Record<string, unknown> = {};
  for (const m of (state.modules as string[]) ?? []) {
    const l = torch.io.safetensors.load(join(ckpt, `${m}.safetensors`));
    modules[m] = { tensors: l.tensors.size, parameters: countParams(l.tensors), groups: groupCounts(l.tensors) };
    for (const t of l.tensors.values()) t.dispose();
  }
  console.log(
    JSON.stringify({ checkpoint: ckpt, format: state.format, progress: state.progress, modules, config }, null, 2),
  );
  return 0;
}
