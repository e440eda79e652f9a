// Ablation grids (`mmoco ablate`): a JSON file (or a preset in configs/grids/) holding a base
// pre-training config — keys of the pretrain schema over an optional `preset` — plus `axes`
// (pretrain keys, each with the values to try), an equal `budget` per cell (epochs, images or
// wall-clock minutes, all turned into one epoch count), the linear `probe` settings and the
// `finetune` layer used by --finetune. The cells are the product of the axes, times the seeds.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  FINETUNE_SCHEMA,
  findJsonFile,
  PRETRAIN_SCHEMA,
  loadPreset,
  presetDir,
  readJson,
  resolveConfig,
  type FinetuneConfig,
  type PretrainConfig,
} from './config.js';
import { ConfigError, applySets, coerce, overlay, unknownKeyError } from './schema.js';

/** Keys of a grid file that are not pretrain keys. */
const META_KEYS = ['description', 'preset', 'axes', 'budget', 'probe', 'finetune'] as const;
/** Pretrain keys a grid may not set or vary: the budget, the seeds and the cell folders own them. */
const OWNED: Record<string, string> = {
  epochs: "the budget sets the epochs of every cell (give 'budget': {'epochs': N})",
  seed: 'the cells run seeds 0..N-1 (--seeds N)',
  out: 'each cell is written to <out>/cells/<cell> (--out)',
};
const BUDGET_KINDS = ['epochs', 'images', 'minutes'] as const;
export type BudgetKind = (typeof BUDGET_KINDS)[number];

/** Linear probe on frozen features (as the demo evaluates): MAE's BN + linear head, LARS. */
export interface ProbeSettings {
  epochs: number;
  batchSize: number;
  blr: number;
}
const PROBE_DEFAULTS: ProbeSettings = { epochs: 30, batchSize: 256, blr: 1.0 };

export interface GridAxis {
  key: string;
  values: unknown[];
}

export interface GridSpec {
  /** the grid's name: the preset's or the file's stem */
  name: string;
  file: string;
  description: string;
  /** the pretrain config every cell starts from (epochs and seed are set per cell) */
  base: PretrainConfig;
  axes: GridAxis[];
  budget: { kind: BudgetKind; value: number };
  probe: ProbeSettings;
  /** keys of the finetune schema over its defaults (and `preset`), for --finetune */
  finetune: Record<string, unknown>;
}

export interface GridCell {
  /** folder name under <out>/cells: `<key>-<value>_..._seed-<s>` */
  name: string;
  /** the cell's values of the axes, in axis order */
  axes: Record<string, unknown>;
  seed: number;
  /** the name without the seed: cells that differ only in the seed share it */
  group: string;
}

/** The folder of the grid presets (configs/grids). */
export function gridPresetDir(): string {
  return join(presetDir(), 'grids');
}

/** The grid presets, by name. */
export function listGridPresets(): { name: string; description: string }[] {
  const dir = gridPresetDir();
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => {
      const j = readJson(join(dir, f));
      return { name: f.slice(0, -5), description: String(j.description ?? '') };
    });
}

/** A grid's path: a preset name in configs/grids or a .json file. */
export function gridPath(nameOrPath: string): string {
  return findJsonFile(nameOrPath, gridPresetDir(), 'grid', () => listGridPresets().map((g) => g.name));
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * Reads and validates a grid (preset name or file). `sets` (`key=value` texts) override base
 * keys, as `--set` does for pretrain; `data` replaces the base's data. Every error is a
 * ConfigError naming the file and the key.
 */
export function loadGrid(nameOrPath: string, o: { sets?: readonly string[]; data?: string | null } = {}): GridSpec {
  const file = gridPath(nameOrPath);
  const j = readJson(file);
  const baseLayer: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(j)) {
    if ((META_KEYS as readonly string[]).includes(k)) continue;
    if (OWNED[k]) throw new ConfigError(`${file}: key '${k}' cannot be set in a grid: ${OWNED[k]}`);
    if (!(k in PRETRAIN_SCHEMA)) {
      const e = unknownKeyError(k, PRETRAIN_SCHEMA, file);
      throw new ConfigError(`${e.message}, and the grid keys ${META_KEYS.join(', ')}`);
    }
    baseLayer[k] = v;
  }
  if (j.description !== undefined && typeof j.description !== 'string')
    throw new ConfigError(`${file}: 'description' must be a string`);
  if (j.preset !== undefined && typeof j.preset !== 'string')
    throw new ConfigError(`${file}: 'preset' must be the name of a pretrain preset in configs/`);

  // the base: pretrain defaults, the preset, the file's keys, then the command line
  let base = resolveConfig('pretrain', { preset: (j.preset as string | undefined) ?? null });
  base = overlay(PRETRAIN_SCHEMA, base, baseLayer, file);
  if (o.sets?.length) {
    for (const s of o.sets) {
      const k = s.slice(0, Math.max(0, s.indexOf('='))).trim();
      if (OWNED[k]) throw new ConfigError(`--set ${k}: ${OWNED[k]}`);
    }
    base = applySets(PRETRAIN_SCHEMA, base, o.sets);
  }
  if (o.data) base = { ...base, data: o.data };

  const axes = parseAxes(file, j.axes);
  for (const s of o.sets ?? []) {
    const k = s.slice(0, Math.max(0, s.indexOf('='))).trim();
    if (axes.some((a) => a.key === k)) throw new ConfigError(`--set ${k}: '${k}' is an axis of ${file}`);
  }
  return {
    name: file.startsWith(gridPresetDir()) ? file.slice(gridPresetDir().length + 1, -5) : stem(file),
    file,
    description: (j.description as string | undefined) ?? '',
    base,
    axes,
    budget: parseBudget(file, j.budget),
    probe: parseProbe(file, j.probe),
    finetune: parseFinetune(file, j.finetune),
  };
}

function stem(file: string): string {
  return file.replace(/^.*\//, '').replace(/\.json$/, '');
}

function parseAxes(file: string, raw: unknown): GridAxis[] {
  if (raw === undefined) throw new ConfigError(`${file}: no 'axes' (e.g. "axes": {"numChunks": [1, 2, 4, 8]})`);
  if (!isObject(raw)) throw new ConfigError(`${file}: 'axes' must be an object of pretrain keys to lists of values`);
  const axes: GridAxis[] = [];
  for (const [key, values] of Object.entries(raw)) {
    if (OWNED[key]) throw new ConfigError(`${file}: axes.${key}: '${key}' cannot be an axis: ${OWNED[key]}`);
    const f = PRETRAIN_SCHEMA[key as keyof typeof PRETRAIN_SCHEMA];
    if (!f) throw unknownKeyError(key, PRETRAIN_SCHEMA, `${file}: axes`);
    if (!Array.isArray(values)) throw new ConfigError(`${file}: axes.${key} must be a list of values`);
    if (values.length === 0) throw new ConfigError(`${file}: axes.${key} is empty: give at least one value`);
    const seen = new Set<string>();
    const checked = values.map((v, i) => {
      const c = coerce(key, f, v, `${file}: axes.${key}[${i}]`);
      const id = JSON.stringify(c);
      if (seen.has(id)) throw new ConfigError(`${file}: axes.${key}: the value ${id} appears twice`);
      seen.add(id);
      return c;
    });
    axes.push({ key, values: checked });
  }
  if (axes.length === 0) throw new ConfigError(`${file}: 'axes' is empty: give at least one axis`);
  return axes;
}

function parseBudget(file: string, raw: unknown): { kind: BudgetKind; value: number } {
  const hint = `give one of ${BUDGET_KINDS.map((k) => `{"${k}": N}`).join(', ')}`;
  if (!isObject(raw)) throw new ConfigError(`${file}: 'budget' is missing or not an object: ${hint}`);
  const keys = Object.keys(raw);
  for (const k of keys) {
    if (!(BUDGET_KINDS as readonly string[]).includes(k))
      throw new ConfigError(`${file}: budget.${k}: unknown budget key; allowed: ${BUDGET_KINDS.join(', ')}`);
  }
  if (keys.length !== 1) throw new ConfigError(`${file}: 'budget' must have exactly one key: ${hint}`);
  const kind = keys[0] as BudgetKind;
  const v = raw[kind];
  const ok = typeof v === 'number' && Number.isFinite(v) && v > 0 && (kind === 'minutes' || Number.isInteger(v));
  if (!ok)
    throw new ConfigError(
      `${file}: budget.${kind}: invalid value ${JSON.stringify(v)}: expected ${kind === 'minutes' ? 'a number > 0' : 'an integer ≥ 1'}`,
    );
  return { kind, value: v as number };
}

function parseProbe(file: string, raw: unknown): ProbeSettings {
  if (raw === undefined) return { ...PROBE_DEFAULTS };
  if (!isObject(raw)) throw new ConfigError(`${file}: 'probe' must be an object (epochs, batchSize, blr)`);
  const out = { ...PROBE_DEFAULTS };
  for (const [k, v] of Object.entries(raw)) {
    if (!(k in PROBE_DEFAULTS))
      throw new ConfigError(`${file}: probe.${k}: unknown key; allowed: ${Object.keys(PROBE_DEFAULTS).join(', ')}`);
    const positiveInt = k !== 'blr';
    const ok = typeof v === 'number' && Number.isFinite(v) && v > 0 && (!positiveInt || Number.isInteger(v));
    if (!ok)
      throw new ConfigError(
        `${file}: probe.${k}: invalid value ${JSON.stringify(v)}: expected ${positiveInt ? 'an integer ≥ 1' : 'a number > 0'}`,
      );
    out[k as keyof ProbeSettings] = v as number;
  }
  return out;
}

function parseFinetune(file: string, raw: unknown): Record<string, unknown> {
  if (raw === undefined) return {};
  if (!isObject(raw)) throw new ConfigError(`${file}: 'finetune' must be an object of finetune keys`);
  const { preset, ...keys } = raw;
  if (preset !== undefined && typeof preset !== 'string')
    throw new ConfigError(`${file}: finetune.preset must be the name of a finetune preset in configs/`);
  // validated here so that the error names this file
  if (typeof preset === 'string') loadPreset('finetune', preset);
  for (const k of Object.keys(keys)) {
    if (!(k in FINETUNE_SCHEMA)) throw unknownKeyError(k, FINETUNE_SCHEMA, `${file}: finetune`);
  }
  overlay(FINETUNE_SCHEMA, resolveConfig('finetune'), keys, `${file}: finetune`);
  return { ...raw };
}

/** A value as a folder-name part: letters, digits, '.', '-'. */
function namePart(v: unknown): string {
  return String(v).replace(/[^A-Za-z0-9.-]+/g, '');
}

/** The cells: the product of the axes (the first axis varies slowest), each with seeds 0..seeds-1. */
export function gridCells(spec: GridSpec, seeds: number): GridCell[] {
  if (!(Number.isInteger(seeds) && seeds >= 1)) throw new ConfigError(`--seeds must be an integer ≥ 1, got ${seeds}`);
  let combos: Record<string, unknown>[] = [{}];
  for (const a of spec.axes) combos = combos.flatMap((c) => a.values.map((v) => ({ ...c, [a.key]: v })));
  const cells: GridCell[] = [];
  for (const axes of combos) {
    const group = Object.entries(axes)
      .map(([k, v]) => `${k}-${namePart(v)}`)
      .join('_');
    for (let seed = 0; seed < seeds; seed++) cells.push({ name: `${group}_seed-${seed}`, axes, seed, group });
  }
  return cells;
}

/**
 * A cell's pretrain config: the base, its axis values, the seed, the budget's epochs and its
 * folder. Checks what only shows per cell (chunks within the patches, warm-up within the epochs).
 */
export function cellConfig(spec: GridSpec, cell: GridCell, epochs: number, out: string): PretrainConfig {
  const cfg = overlay(PRETRAIN_SCHEMA, spec.base, cell.axes, `${spec.file}: axes`);
  const patches = Math.floor(cfg.imgSize / cfg.patchSize) ** 2;
  for (const k of ['numChunks', 'targetChunks'] as const) {
    if (cfg[k] > patches)
      throw new ConfigError(
        `${spec.file}: cell ${cell.group}: ${k} ${cfg[k]} is more than the ${patches} patches of a ${cfg.imgSize}px image`,
      );
  }
  if (!(cfg.warmupEpochs < epochs))
    throw new ConfigError(
      `${spec.file}: budget: ${epochs} epochs per cell is not more than warmupEpochs (${cfg.warmupEpochs}); lower warmupEpochs or raise the budget`,
    );
  return { ...cfg, epochs, seed: cell.seed, out };
}

/** A cell's fine-tuning config: the grid's finetune layer with the cell's data, model and seed. */
export function cellFinetuneConfig(spec: GridSpec, cfg: PretrainConfig, cellDir: string): FinetuneConfig {
  const { preset, ...keys } = spec.finetune;
  let ft = resolveConfig('finetune', { preset: typeof preset === 'string' ? preset : null });
  ft = overlay(FINETUNE_SCHEMA, ft, keys, `${spec.file}: finetune`);
  return {
    ...ft,
    data: cfg.data,
    valData: cfg.valData,
    loadSize: cfg.loadSize,
    trainSamples: ft.trainSamples ?? cfg.trainSamples,
    seed: cfg.seed,
    workers: cfg.workers,
    threads: cfg.threads,
    device: cfg.device,
    model: cfg.model,
    imgSize: cfg.imgSize,
    patchSize: cfg.patchSize,
    numHeads: cfg.numHeads,
    depth: cfg.depth,
    embedDim: cfg.embedDim,
    precision: cfg.precision,
    checkpoint: cellDir,
    checkpointKey: 'auto',
    out: join(cellDir, 'finetune'),
  };
}
