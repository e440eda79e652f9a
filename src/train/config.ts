// The run configurations of the commands: one schema per command (keys in camelCase, the paper's
// and timm's names where they exist; flags are the same keys in kebab case), and the presets in
// configs/ (JSON: {"command": ..., "description": ..., "extends"?: ..., <keys>}).
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
// the tensor-free modules that state the defaults (their packages' index files load libtorch)
import {
  DEFAULT_HEAD_NORM,
  HEAD_NORMS,
  MODEL_NAMES,
  PREDICTOR_SIZE,
  PROJECTOR_SIZE,
  VIT_SIZES,
} from '../models/sizes.js';
import {
  DEFAULT_BASE_MOMENTUM,
  DEFAULT_METHOD,
  DEFAULT_NUM_CHUNKS,
  DEFAULT_PREDICTOR_LAST_NORM,
  DEFAULT_TARGET_CHUNKS,
  DEFAULT_TEMPERATURE,
  METHODS,
} from '../ssl/defaults.js';
import { FINETUNE_DEFAULTS, KNN_DEFAULTS, LINPROBE_DEFAULTS } from './defaults.js';
import { ConfigError, applySets, defaults, overlay, type FieldSpec, type Infer, type Schema } from './schema.js';

const PRESET_DEPTHS = [...new Set(MODEL_NAMES.map((m) => VIT_SIZES[m].depth))].join('/');

/** "tiny 192-d/3 heads, small 384-d/6, base 768-d/12, depth 12" from the table of sizes. */
function presetSizesDoc(): string {
  const sizes = MODEL_NAMES.map((m, i) => {
    const s = VIT_SIZES[m];
    return `${m.replace(/^vit_/, '')} ${s.embedDim}-d/${s.numHeads}${i === 0 ? ' heads' : ''}`;
  });
  return `${sizes.join(', ')}, depth ${PRESET_DEPTHS}`;
}

/** Where the images come from and where the run goes: shared by every training command. */
const RUN = {
  data: {
    type: 'string',
    default: null,
    nullable: true,
    doc: "image folder (ImageFolder; with train/ and val/ or test/ sub-folders), a packed file (.mmpack, from mmoco pack), a CIFAR binary folder, or 'fashion-mnist' / 'synthetic'",
  },
  valData: {
    type: 'string',
    default: null,
    nullable: true,
    doc: "validation images: a folder or a .mmpack's val/test split (default: <data>/val or <data>/test, or the data set's test split)",
  },
  out: { type: 'string', default: null, nullable: true, doc: 'run folder (default: runs/<config or command>)' },
  loadSize: {
    type: 'int',
    default: null,
    nullable: true,
    min: 1,
    doc: 'resize the shorter side to this and centre-crop square when decoding (default: images as stored)',
  },
  trainSamples: {
    type: 'int',
    default: null,
    nullable: true,
    min: 1,
    doc: 'use a seeded subset of this many training images (default: all)',
  },
  seed: { type: 'int', default: 0, min: 0, doc: 'seed of the data order, augmentations, masks and init' },
  workers: {
    type: 'int',
    default: null,
    nullable: true,
    min: 1,
    doc: 'image decode requests in flight (JPEGs in native threads, other files in sharp processes; default: the cores)',
  },
  threads: { type: 'int', default: null, nullable: true, min: 1, doc: 'libtorch threads (default: the cores)' },
  device: { type: 'enum', values: ['cpu', 'cuda'], default: 'cpu', doc: 'where the model runs' },
  maxStepsPerEpoch: {
    type: 'int',
    default: null,
    nullable: true,
    min: 1,
    doc: 'cut every epoch to this many steps (quick runs; the schedules follow the cut epoch)',
  },
  logEvery: {
    type: 'int',
    default: 1,
    min: 1,
    doc: 'write a step line (loss, lr, κ) to metrics.jsonl every this many steps; κ is computed only for those',
  },
} as const satisfies Schema;

/** The arithmetic of the training commands (pretrain, linprobe, finetune). */
const PRECISION = {
  type: 'enum',
  values: ['auto', 'fp32', 'bf16'],
  default: 'auto',
  doc: 'bf16 autocast for the forward (matmuls in bfloat16, losses/norms/optimizer in float32); auto: bf16 where the hardware is fast at it (AVX512-BF16/AMX, CUDA capability >= 8)',
} as const satisfies FieldSpec;

/** Checkpoints of the training commands (pretrain, linprobe, finetune). */
const CHECKPOINTS = {
  checkpointEveryMinutes: {
    type: 'number',
    default: 30,
    min: 0,
    doc: 'also checkpoint inside an epoch when this many minutes passed since the last checkpoint, so a kill loses at most that much (0: only at epoch ends)',
  },
} as const satisfies Schema;

const MODEL = {
  model: {
    type: 'enum',
    values: MODEL_NAMES,
    default: 'vit_small',
    doc: `ViT preset: ${presetSizesDoc()}`,
  },
  imgSize: { type: 'int', default: 224, min: 1, doc: 'input side in pixels' },
  patchSize: { type: 'int', default: 16, min: 1, doc: 'patch side in pixels' },
  numHeads: { type: 'int', default: null, nullable: true, min: 1, doc: "attention heads (default: the preset's)" },
  depth: { type: 'int', default: null, nullable: true, min: 1, doc: `blocks (default: the preset's ${PRESET_DEPTHS})` },
  embedDim: { type: 'int', default: null, nullable: true, min: 1, doc: "token width (default: the preset's)" },
} as const satisfies Schema;

const KNN = {
  knnK: { type: 'int', default: KNN_DEFAULTS.k, min: 1, doc: 'kNN: neighbours' },
  knnT: {
    type: 'number',
    default: KNN_DEFAULTS.temperature,
    positive: true,
    doc: 'kNN: temperature of the vote weights exp(sim/T)',
  },
  knnTrainSamples: {
    type: 'int',
    default: null,
    nullable: true,
    min: 1,
    doc: 'kNN: seeded subset of the training images as the memory bank (default: all)',
  },
  knnValSamples: {
    type: 'int',
    default: null,
    nullable: true,
    min: 1,
    doc: 'kNN: seeded subset of the validation images (default: all)',
  },
} as const satisfies Schema;

export const PRETRAIN_SCHEMA = {
  ...RUN,
  ...MODEL,
  method: { type: 'enum', values: METHODS, default: DEFAULT_METHOD, doc: 'M-MoCo (InfoNCE) or M-BYOL' },
  numChunks: {
    type: 'int',
    default: DEFAULT_NUM_CHUNKS,
    min: 1,
    doc: 'n: chunks per online view (1 = MoCo v3 / BYOL)',
  },
  deviceCache: {
    type: 'enum',
    values: ['auto', 'on', 'off'],
    default: 'auto',
    doc: 'decode the training set once into one tensor on the device and serve batches from there (auto: on CUDA when it takes at most 8 GiB)',
  },
  cudaGraph: {
    type: 'enum',
    values: ['auto', 'on', 'off'],
    default: 'auto',
    doc: 'run each training step as one CUDA graph replay (auto: on CUDA in one process without clipGrad; on: also elsewhere, where the same step runs eagerly)',
  },
  targetChunks: {
    type: 'int',
    default: DEFAULT_TARGET_CHUNKS,
    min: 1,
    doc: 'm: chunks per target view, combined by spherical mean',
  },
  headNorm: {
    type: 'enum',
    values: HEAD_NORMS,
    default: DEFAULT_HEAD_NORM,
    doc: 'norm of the projector and predictor',
  },
  classAttention: {
    type: 'bool',
    default: false,
    // CLASS_ATTENTION_DEPTH in words (the help text reads as it always did)
    doc: 'two class-attention blocks before the projector',
  },
  projHiddenDim: { type: 'int', default: PROJECTOR_SIZE.hiddenDim, min: 1, doc: 'projector hidden width' },
  projOutDim: { type: 'int', default: PROJECTOR_SIZE.outDim, min: 1, doc: 'projector (and predictor) output width' },
  predHiddenDim: { type: 'int', default: PREDICTOR_SIZE.hiddenDim, min: 1, doc: 'predictor hidden width' },
  predictorLastNorm: {
    type: 'bool',
    default: DEFAULT_PREDICTOR_LAST_NORM,
    doc: "mmoco: a norm (BN or LN, no affine) on the predictor's output. Default off as MoCo v3's code (last_bn=False); the paper's §3.1 text puts BN after every fc and removes only BYOL's. mbyol never has one",
  },
  augmentation: {
    type: 'enum',
    values: ['strong', 'medium', 'light'],
    default: 'light',
    doc: 'pre-training augmentation (§4.1)',
  },
  cropMin: { type: 'number', default: 0.08, min: 0, max: 1, doc: 'smallest RandomResizedCrop area' },
  epochs: { type: 'int', default: 100, min: 1, doc: 'training epochs' },
  batchSize: { type: 'int', default: 256, min: 1, doc: 'images per step' },
  blr: { type: 'number', default: 1.5e-4, positive: true, doc: 'base learning rate: lr = blr × batch / 256' },
  warmupEpochs: { type: 'number', default: 10, min: 0, doc: 'linear warm-up epochs' },
  weightDecay: { type: 'number', default: 0.1, min: 0, doc: 'AdamW weight decay' },
  betas: { type: 'numbers', length: 2, default: [0.9, 0.95], doc: 'AdamW betas' },
  temperature: { type: 'number', default: DEFAULT_TEMPERATURE, positive: true, doc: 'InfoNCE temperature τ' },
  momentum: {
    type: 'number',
    default: null,
    nullable: true,
    min: 0,
    max: 1,
    doc: `base EMA momentum m0, rising to 1 by half-cosine (default: ${METHODS.map((m) => `${DEFAULT_BASE_MOMENTUM[m]} ${m}`).join(', ')})`,
  },
  stopGradConv1: {
    type: 'bool',
    default: false,
    doc: "freeze the patch embedding (MoCo v3's stop-grad; the paper's Table 1 uses it for the MoCo v3 / BYOL baselines only, every M-MoCo / M-BYOL row trains it)",
  },
  clipGrad: { type: 'number', default: null, nullable: true, positive: true, doc: 'clip gradients to this L2 norm' },
  precision: PRECISION,
  knnEvery: { type: 'int', default: 1, min: 0, doc: 'kNN monitor every this many epochs (0: never)' },
  ...KNN,
  ...CHECKPOINTS,
} as const satisfies Schema;

export const KNN_SCHEMA = {
  ...RUN,
  checkpoint: {
    type: 'string',
    default: null,
    nullable: true,
    doc: 'pre-trained weights: a run folder, a checkpoint folder, a backbone .safetensors or a PyTorch checkpoint (.pth, .pth.tar of MoCo v3, MAE, DeiT/timm, DINO) (none: random init)',
  },
  checkpointKey: {
    type: 'enum',
    values: ['auto', 'base_encoder', 'momentum_encoder', 'teacher', 'student'],
    default: 'auto',
    doc: "the encoder of a .pth that holds two: MoCo v3's base_encoder (auto) or momentum_encoder, DINO's teacher (auto) or student",
  },
  ...MODEL,
  batchSize: { type: 'int', default: 256, min: 1, doc: 'images per feature batch' },
  ...KNN,
} as const satisfies Schema;

export const LINPROBE_SCHEMA = {
  ...RUN,
  checkpoint: KNN_SCHEMA.checkpoint,
  checkpointKey: KNN_SCHEMA.checkpointKey,
  ...MODEL,
  epochs: { type: 'int', default: LINPROBE_DEFAULTS.epochs, min: 1, doc: 'training epochs' },
  batchSize: { type: 'int', default: 256, min: 1, doc: 'images per step' },
  blr: {
    type: 'number',
    default: LINPROBE_DEFAULTS.blr,
    positive: true,
    doc: 'base learning rate (MAE: 0.1): lr = blr × batch / 256',
  },
  warmupEpochs: { type: 'number', default: LINPROBE_DEFAULTS.warmupEpochs, min: 0, doc: 'linear warm-up epochs' },
  weightDecay: { type: 'number', default: LINPROBE_DEFAULTS.weightDecay, min: 0, doc: 'LARS weight decay' },
  precision: PRECISION,
  ...CHECKPOINTS,
} as const satisfies Schema;

export const FINETUNE_SCHEMA = {
  ...RUN,
  checkpoint: KNN_SCHEMA.checkpoint,
  checkpointKey: KNN_SCHEMA.checkpointKey,
  ...MODEL,
  globalPool: {
    type: 'enum',
    values: ['avg', 'token'],
    default: 'avg',
    doc: 'classify the mean patch token (fc-norm) or CLS',
  },
  epochs: { type: 'int', default: FINETUNE_DEFAULTS.epochs, min: 1, doc: 'training epochs' },
  batchSize: { type: 'int', default: 256, min: 1, doc: 'images per step' },
  blr: {
    type: 'number',
    default: FINETUNE_DEFAULTS.blr,
    positive: true,
    doc: 'base learning rate: lr = blr × batch / 256',
  },
  layerDecay: {
    type: 'number',
    default: FINETUNE_DEFAULTS.layerDecay,
    positive: true,
    max: 1,
    doc: 'layer-wise lr decay',
  },
  warmupEpochs: { type: 'number', default: FINETUNE_DEFAULTS.warmupEpochs, min: 0, doc: 'linear warm-up epochs' },
  weightDecay: { type: 'number', default: FINETUNE_DEFAULTS.weightDecay, min: 0, doc: 'AdamW weight decay' },
  betas: { type: 'numbers', length: 2, default: FINETUNE_DEFAULTS.betas, doc: 'AdamW betas' },
  dropPath: { type: 'number', default: 0.1, min: 0, max: 1, doc: 'stochastic depth rate' },
  mixup: { type: 'number', default: 0.8, min: 0, doc: 'mixup alpha (0: off)' },
  cutmix: { type: 'number', default: 1.0, min: 0, doc: 'cutmix alpha (0: off)' },
  smoothing: { type: 'number', default: FINETUNE_DEFAULTS.labelSmoothing, min: 0, max: 1, doc: 'label smoothing' },
  randAugment: {
    type: 'string',
    default: 'rand-m9-mstd0.5-inc1',
    nullable: true,
    doc: 'timm RandAugment config (null: none)',
  },
  reprob: { type: 'number', default: 0.25, min: 0, max: 1, doc: 'random erasing probability' },
  precision: PRECISION,
  ...CHECKPOINTS,
} as const satisfies Schema;

export const FLOPS_SCHEMA = {
  ...MODEL,
  numChunks: PRETRAIN_SCHEMA.numChunks,
  targetChunks: PRETRAIN_SCHEMA.targetChunks,
  classAttention: PRETRAIN_SCHEMA.classAttention,
  method: PRETRAIN_SCHEMA.method,
  projHiddenDim: PRETRAIN_SCHEMA.projHiddenDim,
  projOutDim: PRETRAIN_SCHEMA.projOutDim,
  predHiddenDim: PRETRAIN_SCHEMA.predHiddenDim,
  maxChunks: { type: 'int', default: 10, min: 1, doc: 'rows of the Figure 3(a) table (n = 1 … this)' },
} as const satisfies Schema;

export type PretrainConfig = Infer<typeof PRETRAIN_SCHEMA>;
export type KnnConfig = Infer<typeof KNN_SCHEMA>;
export type LinprobeConfig = Infer<typeof LINPROBE_SCHEMA>;
export type FinetuneConfig = Infer<typeof FINETUNE_SCHEMA>;
export type FlopsConfig = Infer<typeof FLOPS_SCHEMA>;

export const SCHEMAS = {
  pretrain: PRETRAIN_SCHEMA,
  knn: KNN_SCHEMA,
  linprobe: LINPROBE_SCHEMA,
  finetune: FINETUNE_SCHEMA,
  flops: FLOPS_SCHEMA,
} as const;
export type ConfigCommand = keyof typeof SCHEMAS;

/** The configs/ folder of the package. */
export function presetDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'configs')) && existsSync(join(dir, 'package.json'))) return join(dir, 'configs');
    const parent = dirname(dir);
    if (parent === dir) throw new Error('the configs/ folder of mmoco was not found');
    dir = parent;
  }
}

export interface PresetInfo {
  name: string;
  command: ConfigCommand;
  description: string;
}

/** The presets in configs/, by name. */
export function listPresets(): PresetInfo[] {
  const dir = presetDir();
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => {
      const j = readJson(join(dir, f));
      return { name: f.slice(0, -5), command: j.command as ConfigCommand, description: String(j.description ?? '') };
    });
}

/** A JSON file that must hold an object; errors name the file. */
export function readJson(path: string): Record<string, unknown> {
  let j: unknown;
  try {
    j = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new ConfigError(`${path}: not a readable JSON file: ${(e as Error).message}`);
  }
  if (j === null || typeof j !== 'object' || Array.isArray(j)) throw new ConfigError(`${path}: must be a JSON object`);
  return j as Record<string, unknown>;
}

/**
 * A named file of `dir` (`<name>.json`) or a path to a .json file; `what` names the kind in
 * errors ('config', 'grid'), `names` lists the presets for the error.
 */
export function findJsonFile(nameOrPath: string, dir: string, what: string, names: () => string[]): string {
  if (nameOrPath.endsWith('.json') || nameOrPath.includes('/')) {
    const p = resolve(nameOrPath);
    if (!existsSync(p)) throw new ConfigError(`${what} file not found: ${nameOrPath}`);
    return p;
  }
  const p = join(dir, `${nameOrPath}.json`);
  if (!existsSync(p)) throw new ConfigError(`unknown ${what} preset '${nameOrPath}'; presets: ${names().join(', ')}`);
  return p;
}

/** A preset's path: a name in configs/ or a path to a .json file. */
export function presetPath(nameOrPath: string): string {
  return findJsonFile(nameOrPath, presetDir(), 'config', () => listPresets().map((x) => x.name));
}

/**
 * A preset's keys for `command`, following `extends` (another preset of the same command).
 * Meta keys (`command`, `description`, `extends`) are not config keys.
 */
export function loadPreset(command: ConfigCommand, nameOrPath: string, seen: string[] = []): Record<string, unknown> {
  const path = presetPath(nameOrPath);
  if (seen.includes(path)) throw new ConfigError(`${path}: 'extends' forms a cycle`);
  const j = readJson(path);
  if (j.command !== undefined && j.command !== command) {
    throw new ConfigError(`${path}: this preset is for '${String(j.command)}', not '${command}'`);
  }
  const { command: _c, description: _d, extends: ext, ...keys } = j;
  void _c;
  void _d;
  const base = typeof ext === 'string' ? loadPreset(command, ext, [...seen, path]) : {};
  if (ext !== undefined && typeof ext !== 'string') throw new ConfigError(`${path}: 'extends' must be a preset name`);
  // validate against the schema here so the error names this file
  overlay(SCHEMAS[command], defaults(SCHEMAS[command]) as never, keys, path);
  return { ...base, ...keys };
}

/**
 * The config of a run: schema defaults, then the preset (if any), then `flags` (already parsed
 * values by key), then `--set key=value` texts. Every layer is validated.
 */
export function resolveConfig<C extends ConfigCommand>(
  command: C,
  o: { preset?: string | null; flags?: Record<string, unknown>; sets?: readonly string[] } = {},
): Infer<(typeof SCHEMAS)[C]> {
  const schema = SCHEMAS[command] as Schema;
  let cfg = defaults(schema);
  if (o.preset) cfg = overlay(schema, cfg, loadPreset(command, o.preset), `config '${o.preset}'`);
  if (o.flags) cfg = overlay(schema, cfg, o.flags, 'command line');
  if (o.sets?.length) cfg = applySets(schema, cfg, o.sets);
  return cfg as Infer<(typeof SCHEMAS)[C]>;
}
