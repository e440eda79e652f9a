// `mmoco export <run> [--out file.safetensors]` (the online backbone in timm's names) and
// `mmoco info [<run|checkpoint|file>]` (the engine, or what a checkpoint or a pack holds).
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { openPack } from '../../data/pack.js';
import * as torch from '../../torch/index.js';
import * as safetensors from '../../torch/io/safetensors.js';
import { checkpointOf, readBackboneWeights, writeBackbone } from '../../train/weights.js';
import { UsageError } from './common.js';

const EXPORT_HELP = `usage: mmoco export <run folder | checkpoint folder> [--out <file.safetensors>]

Writes the online backbone (pre-training) or the classifier ViT (linprobe/finetune) with timm's
VisionTransformer parameter names as safetensors (default: <run>/backbone.safetensors). Load it
in PyTorch with safetensors.torch.load_file and timm's model.load_state_dict(sd, strict=False).`;

export function exportCommand(argv: readonly string[]): number {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(EXPORT_HELP);
    return 0;
  }
  let out: string | null = null;
  const pos: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--out') {
      out = argv[++i] ?? null;
      if (!out) throw new UsageError('--out needs a file name');
    } else if (argv[i]!.startsWith('--out=')) out = argv[i]!.slice(6);
    else if (argv[i]!.startsWith('--')) throw new UsageError(`export: unknown option ${argv[i]}`);
    else pos.push(argv[i]!);
  }
  if (pos.length !== 1) throw new UsageError(`export: expected one run or checkpoint folder\n\n${EXPORT_HELP}`);
  const src = pos[0]!;
  const w = readBackboneWeights(src);
  const file = out ?? join(statSync(src).isDirectory() ? src : '.', 'backbone.safetensors');
  try {
    writeBackbone(file, w);
  } finally {
    for (const t of w.tensors.values()) t.dispose();
  }
  const n = [...w.tensors.values()].length;
  console.log(JSON.stringify({ file, tensors: n, arch: w.arch }));
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
  const target = argv.find((a) => !a.startsWith('-'));
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(
      'usage: mmoco info [<run folder | checkpoint folder | file.safetensors | file.mmpack>]\n\n' +
        'Without an argument: libtorch version, threads, BLAS and devices. With one: what the checkpoint\n' +
        'or the packed data set holds.',
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
  if (statSync(target).isFile()) {
    const l = safetensors.load(target);
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
    const l = safetensors.load(join(ckpt, `${m}.safetensors`));
    modules[m] = { tensors: l.tensors.size, parameters: countParams(l.tensors), groups: groupCounts(l.tensors) };
    for (const t of l.tensors.values()) t.dispose();
  }
  console.log(
    JSON.stringify({ checkpoint: ckpt, format: state.format, progress: state.progress, modules, config }, null, 2),
  );
  return 0;
}
