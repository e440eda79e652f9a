// Running an ablation grid: every cell is an ordinary pre-training run folder
// (<out>/cells/<cell>, src/train/pretrain.ts, resumable), evaluated the same way — weighted kNN
// and the linear probe on frozen features of the held-out split, as the demo evaluates, plus a
// short fine-tuning (src/train/classify.ts) when asked — into its eval.json. A cell whose
// eval.json matches its config is done and skipped; a killed grid continues with the rest.
// Under `mmoco launch` each rank trains its share of the cells single-process and rank 0 waits
// for all of them, then writes table.json, table.md and grid.html.
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import * as torch from '../torch/index.js';
import { trainStepMacs } from '../ssl/flops.js';
import { writeGridReport, writeReport, seedStat, type GridTable, type GridTableCell } from '../report/index.js';
import { archOf, buildBackbone } from './backbone.js';
import { runClassification } from './classify.js';
import type { FinetuneConfig, PretrainConfig } from './config.js';
import { openData, sampled, type DataSplits } from './data.js';
import { probeOnFeatures } from './demo.js';
import { cellConfig, cellFinetuneConfig, gridCells, type GridCell, type GridSpec, type ProbeSettings } from './grid.js';
import { knnOnFeatures, splitFeatures } from './monitor.js';
import { loadPretrainedBackbone } from './pretrained.js';
import { RESUMABLE_FREE_KEYS, pretrain, type PretrainHooks } from './pretrain.js';
import { RunDir, configMismatch } from './run-dir.js';
import { ConfigError } from './schema.js';
import { archFor, checkpointOf, readBackboneWeights } from './weights.js';

/** Steps timed per cell to turn a `minutes` budget into epochs (the first, warming up, is not counted). */
const CALIBRATION_STEPS = 4;
/** How often rank 0 looks whether the other ranks' cells are done. */
const POLL_MS = 2000;

export interface ResolvedBudget {
  kind: string;
  value: number;
  epochs: number;
  imagesPerEpoch: number;
  /** minutes: seconds per epoch measured per cell (the slowest sets the epochs) */
  secondsPerEpoch?: Record<string, number>;
  note: string;
}

/** What eval.json of a cell holds. */
export interface CellEval {
  cell: string;
  axes: Record<string, unknown>;
  seed: number;
  /** the pre-training config, without the keys that may change on resume */
  config: Record<string, unknown>;
  probe: ProbeSettings;
  knnTop1: number;
  knnTop5: number;
  linearTop1: number;
  finetune: { config: Record<string, unknown>; top1: number; bestTop1: number; epochs: number } | null;
  epochs: number;
  steps: number;
  imagesSeen: number;
  imagesPerSec: number;
  wallS: number;
  flopsPerImage: number;
  evalWallS: number;
}

export interface GridOptions {
  out: string;
  seeds: number;
  finetune: boolean;
  /** this process's share: cells i with i % world === rank; rank 0 writes the table */
  rank?: number;
  world?: number;
  log?: (m: string) => void;
  /** pre-training progress of the cell being trained */
  pretrainHooks?: (cell: string) => PretrainHooks;
}

export interface GridResult {
  out: string;
  /** null on ranks other than 0 */
  table: GridTable | null;
  trained: string[];
  skipped: string[];
}

const without = (cfg: Record<string, unknown>, keys: readonly string[]): Record<string, unknown> =>
  Object.fromEntries(Object.entries(cfg).filter(([k]) => !keys.includes(k)));
const FT_FREE_KEYS = ['out', 'workers', 'threads', 'device', 'logEvery', 'data', 'valData', 'checkpointEveryMinutes'];
/** JSON with the keys of every object sorted: equal values give equal text whatever their key order. */
function canonical(v: unknown): string {
  return JSON.stringify(v, (_, x: unknown) =>
    x !== null && typeof x === 'object' && !Array.isArray(x)
      ? Object.fromEntries(
          Object.entries(x as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
        )
      : x,
  );
}
const same = (a: unknown, b: unknown): boolean => canonical(a) === canonical(b);

/** The pretrain config as eval.json records it (keys that may change on resume left out). */
function recorded(cfg: PretrainConfig): Record<string, unknown> {
  return without({ command: 'pretrain', ...cfg }, RESUMABLE_FREE_KEYS);
}

/** FLOPs (2 × MACs) of one training step per image of a config (src/ssl/flops.ts). */
export function flopsPerImage(cfg: PretrainConfig): number {
  const a = archOf(cfg);
  const macs = trainStepMacs({
    vit: {
      imgSize: cfg.imgSize,
      patchSize: cfg.patchSize,
      dim: a.embedDim,
      depth: a.depth,
      heads: a.numHeads,
      classAttnBlocks: cfg.classAttention ? 2 : 0,
    },
    numChunks: cfg.numChunks,
    targetChunks: cfg.targetChunks,
    projector: { layers: 3, hidden: cfg.projHiddenDim, out: cfg.projOutDim },
    predictor: { layers: 2, hidden: cfg.predHiddenDim, out: cfg.projOutDim },
  });
  return 2 * macs.total;
}

function readJson<T>(path: string): T | null {
  if (!existsSync(path)) return null;
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch {
    return null;
  }
}

function writeJson(path: string, v: unknown): void {
  torch.io.writeFileAtomic(path, Buffer.from(JSON.stringify(v, null, 2) + '\n'));
}

/** The progress of a run folder's checkpoint, or null. */
function checkpointProgress(dir: string): Record<string, unknown> | null {
  const ck = checkpointOf(dir);
  const state = ck ? readJson<{ progress?: Record<string, unknown> }>(join(ck, 'state.json')) : null;
  return state?.progress ?? null;
}

/**
 * Whether the run in `dir` is `cfg`'s and finished all its epochs (the last checkpoint is the
 * last epoch's end). A run of another config is left to pretrain, which refuses it by name.
 */
function pretrainDone(dir: string, cfg: PretrainConfig): boolean {
  const p = checkpointProgress(dir);
  const saved = readJson<Record<string, unknown>>(join(dir, 'config.json'));
  const ours = saved !== null && same(without(saved, RESUMABLE_FREE_KEYS), recorded(cfg));
  return ours && !!p && !p.partial && p.epoch === cfg.epochs - 1;
}

/** Whether eval.json of a cell exists and belongs to `cfg` (with fine-tuning when asked). */
function evalMatches(
  e: CellEval | null,
  cfg: PretrainConfig,
  probe: ProbeSettings,
  ft: FinetuneConfig | null,
): 'done' | 'needs-finetune' | 'no' {
  if (!e || !same(e.config, recorded(cfg)) || !same(e.probe, probe)) return 'no';
  if (ft && !(e.finetune && same(e.finetune.config, without({ ...ft }, FT_FREE_KEYS)))) return 'needs-finetune';
  return 'done';
}

/** Train images per epoch of a config (full batches, cut by maxStepsPerEpoch). */
function imagesPerEpoch(cfg: PretrainConfig, data: DataSplits): number {
  const n = sampled(data.train, cfg.trainSamples, cfg.seed).length;
  const steps = Math.min(Math.floor(n / cfg.batchSize), cfg.maxStepsPerEpoch ?? Infinity);
  if (steps < 1) throw new ConfigError(`${data.name}: ${n} training images make no full batch of ${cfg.batchSize}`);
  return steps * cfg.batchSize;
}

/**
 * The budget as one epoch count for every cell: `epochs` as given; `images` divided by the
 * images of an epoch (which must then be the same in every cell); `minutes` of training per cell
 * from a few timed steps of each cell (the slowest sets the count). Stored in grid.json, so that
 * a resumed grid keeps the count it started with.
 */
async function resolveBudget(
  spec: GridSpec,
  groups: GridCell[],
  out: string,
  log: (m: string) => void,
): Promise<ResolvedBudget> {
  const datasets = new Map<string, DataSplits>();
  const dataOf = (c: PretrainConfig): DataSplits => {
    const key = `${c.data}\n${c.valData}`;
    let d = datasets.get(key);
    if (!d) datasets.set(key, (d = openData(c.data, c.valData)));
    return d;
  };
  // epochs here only so the config resolves; the image count does not depend on it
  const probeEpochs = Math.max(2, Math.ceil(spec.base.warmupEpochs) + 1);
  const cfgs = groups.map((g) => cellConfig(spec, g, probeEpochs, join(out, 'cells', g.name)));
  const per = cfgs.map((c) => imagesPerEpoch(c, dataOf(c)));
  const { kind, value } = spec.budget;
  if (kind === 'epochs') {
    const distinct = [...new Set(per)];
    const ipe = distinct.length === 1 ? distinct[0]! : NaN;
    return { kind, value, epochs: value, imagesPerEpoch: ipe, note: `${value} epochs per cell` };
  }
  if (new Set(per).size !== 1) {
    const list = groups.map((g, i) => `${g.group}: ${per[i]}`).join(', ');
    throw new ConfigError(
      `${spec.file}: budget.${kind}: the cells step through different numbers of images per epoch (${list}), so no one epoch count is the same budget; use budget.epochs`,
    );
  }
  const ipe = per[0]!;
  if (kind === 'images') {
    const epochs = Math.max(1, Math.round(value / ipe));
    return {
      kind,
      value,
      epochs,
      imagesPerEpoch: ipe,
      note: `${value} images per cell → ${epochs} epochs of ${ipe} images (${epochs * ipe} images)`,
    };
  }
  const secondsPerEpoch: Record<string, number> = {};
  for (const [i, g] of groups.entries()) {
    const c = cfgs[i]!;
    const dir = join(out, 'calibration', g.group);
    rmSync(dir, { recursive: true, force: true });
    const speeds: number[] = [];
    log(`timing ${CALIBRATION_STEPS} steps of ${g.group} for the ${value}-minute budget`);
    const r = await pretrain(
      {
        ...c,
        out: dir,
        epochs: 1,
        warmupEpochs: 0,
        maxStepsPerEpoch: CALIBRATION_STEPS + 1,
        knnEvery: 0,
        checkpointEveryMinutes: 0,
      },
      { log: () => undefined, onStep: (s) => s.batch > 0 && speeds.push(s.imagesPerSec) },
    );
    r.model.dispose();
    rmSync(dir, { recursive: true, force: true });
    if (!speeds.length)
      throw new ConfigError(
        `${spec.file}: budget.minutes: ${g.group} has too few steps per epoch to time (needs ${CALIBRATION_STEPS + 1})`,
      );
    speeds.sort((a, b) => a - b);
    secondsPerEpoch[g.group] = ipe / speeds[speeds.length >> 1]!;
  }
  rmSync(join(out, 'calibration'), { recursive: true, force: true });
  const slowest = Math.max(...Object.values(secondsPerEpoch));
  const epochs = Math.max(1, Math.floor((value * 60) / slowest));
  return {
    kind,
    value,
    epochs,
    imagesPerEpoch: ipe,
    secondsPerEpoch,
    note: `${value} minutes of training per cell → ${epochs} epochs of ${ipe} images (the slowest cell, ${slowest.toFixed(1)} s per epoch, timed over ${CALIBRATION_STEPS} steps)`,
  };
}

/** What identifies a grid's budget: the base (without resumable keys), the axes, the budget. */
function budgetKey(spec: GridSpec): string {
  return JSON.stringify({ base: without({ ...spec.base }, RESUMABLE_FREE_KEYS), axes: spec.axes, budget: spec.budget });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** kNN and linear probe of the backbone saved in the cell's run folder. */
async function evaluateBackbone(
  cfg: PretrainConfig,
  dir: string,
  probe: ProbeSettings,
): Promise<{ knnTop1: number; knnTop5: number; linearTop1: number }> {
  const data = openData(cfg.data, cfg.valData);
  if (!data.val) throw new ConfigError(`${data.name}: the grid's evaluation needs a validation split (val/ or test/)`);
  const w = readBackboneWeights(dir);
  torch.manualSeed(cfg.seed);
  const vit = buildBackbone(archFor(cfg, w));
  try {
    loadPretrainedBackbone(vit, w.tensors);
  } finally {
    for (const t of w.tensors.values()) t.dispose();
  }
  vit.to(cfg.device);
  const numClasses = data.train.classes.length;
  const f = await splitFeatures(vit, data.train, data.val, cfg);
  try {
    const knn = knnOnFeatures(f, cfg, numClasses);
    // the features are on the CPU: the probe's head (built on the backbone's device) trains there too
    vit.to('cpu');
    const linearTop1 = probeOnFeatures(vit, f, numClasses, { ...probe, seed: cfg.seed });
    return { knnTop1: knn.top1, knnTop5: knn.top5, linearTop1 };
  } finally {
    torch.dispose([f.train, f.val]);
    vit.dispose();
  }
}

/** Pre-trains (or resumes) one cell, evaluates it and writes its eval.json. */
async function runCell(
  spec: GridSpec,
  cell: GridCell,
  cfg: PretrainConfig,
  ft: FinetuneConfig | null,
  o: GridOptions,
  log: (m: string) => void,
): Promise<void> {
  const dir = cfg.out!;
  const evalPath = join(dir, 'eval.json');
  const prior = readJson<CellEval>(evalPath);
  let e: CellEval;
  if (evalMatches(prior, cfg, spec.probe, ft) === 'needs-finetune') {
    e = { ...prior! };
  } else {
    if (!pretrainDone(dir, cfg)) {
      log(`cell ${cell.name}: pre-training ${cfg.epochs} epochs`);
      const r = await pretrain(cfg, o.pretrainHooks?.(cell.name) ?? { log });
      r.model.dispose();
    }
    await writeReport(dir);
    const t0 = performance.now();
    log(`cell ${cell.name}: kNN and linear probe`);
    const scores = await evaluateBackbone(cfg, dir, spec.probe);
    const epochs = new RunDir(dir).readMetrics().filter((r) => r.kind === 'epoch');
    const speeds = epochs.map((r) => Number(r.imagesPerSec)).sort((a, b) => a - b);
    const steps = Number(checkpointProgress(dir)?.step);
    e = {
      cell: cell.name,
      axes: cell.axes,
      seed: cell.seed,
      config: recorded(cfg),
      probe: spec.probe,
      ...scores,
      finetune: null,
      epochs: epochs.length,
      steps,
      imagesSeen: steps * cfg.batchSize,
      imagesPerSec: speeds.length ? speeds[speeds.length >> 1]! : NaN,
      wallS: epochs.reduce((s, r) => s + Number(r.wallS), 0),
      flopsPerImage: flopsPerImage(cfg),
      evalWallS: (performance.now() - t0) / 1000,
    };
    if (epochs.length !== cfg.epochs)
      throw new Error(`${dir}: metrics.jsonl has ${epochs.length} epoch records, the cell trained ${cfg.epochs}`);
  }
  if (ft) {
    // a fine-tuning of earlier grid settings is not resumed: say which folder holds it
    const prev = readJson<Record<string, unknown>>(join(ft.out!, 'config.json'));
    const diff = prev ? configMismatch(prev, { command: 'finetune', ...ft }, FT_FREE_KEYS) : [];
    if (diff.length)
      throw new ConfigError(
        `${ft.out}: holds a fine-tuning with other settings (${diff.join(', ')}); remove that folder to fine-tune the cell with the grid's settings`,
      );
    log(`cell ${cell.name}: fine-tuning ${ft.epochs} epochs`);
    const r = await runClassification('finetune', ft, { log });
    e.finetune = { config: without({ ...ft }, FT_FREE_KEYS), top1: r.top1, bestTop1: r.bestTop1, epochs: r.epochs };
  }
  writeJson(evalPath, e);
  log(
    `cell ${cell.name}: kNN ${e.knnTop1.toFixed(2)}%, linear ${e.linearTop1.toFixed(2)}%` +
      (e.finetune ? `, fine-tune ${e.finetune.top1.toFixed(2)}%` : ''),
  );
}

/** Runs the grid's cells (this rank's share), and on rank 0 waits for all and writes the table. */
export async function runGrid(spec: GridSpec, o: GridOptions): Promise<GridResult> {
  const log = o.log ?? ((m: string) => console.error(m));
  const rank = o.rank ?? 0;
  const world = o.world ?? 1;
  const cells = gridCells(spec, o.seeds);
  const groups = cells.filter((c) => c.seed === 0);
  const gridFile = join(o.out, 'grid.json');
  const key = budgetKey(spec);

  // the budget: reused from grid.json when the grid is the same (a resumed grid keeps its epochs)
  let budget: ResolvedBudget;
  const saved = readJson<{ key?: string; budget?: ResolvedBudget }>(gridFile);
  if (saved?.key === key && saved.budget) budget = saved.budget;
  else if (rank === 0 || spec.budget.kind !== 'minutes') budget = await resolveBudget(spec, groups, o.out, log);
  else {
    // the other ranks wait for rank 0's timing
    for (;;) {
      await sleep(POLL_MS);
      const s = readJson<{ key?: string; budget?: ResolvedBudget }>(gridFile);
      if (s?.key === key && s.budget) {
        budget = s.budget;
        break;
      }
    }
  }
  const configs = new Map(cells.map((c) => [c.name, cellConfig(spec, c, budget.epochs, join(o.out, 'cells', c.name))]));
  const fts = new Map(
    cells.map((c) => [
      c.name,
      o.finetune ? cellFinetuneConfig(spec, configs.get(c.name)!, join(o.out, 'cells', c.name)) : null,
    ]),
  );
  if (rank === 0) {
    mkdirSync(o.out, { recursive: true });
    writeJson(gridFile, {
      key,
      grid: spec.name,
      file: spec.file,
      description: spec.description,
      axes: spec.axes,
      budget,
      probe: spec.probe,
      seeds: o.seeds,
      finetune: o.finetune,
      cells: cells.map((c) => c.name),
    });
    log(
      `grid ${spec.name}: ${cells.length} cells (${spec.axes.map((a) => `${a.key} ${a.values.length}`).join(' × ')}` +
        `${o.seeds > 1 ? ` × ${o.seeds} seeds` : ''}), ${budget.note}${world > 1 ? `, ${world} processes` : ''} → ${o.out}`,
    );
  }

  const status = (c: GridCell): 'done' | 'needs-finetune' | 'no' =>
    evalMatches(
      readJson<CellEval>(join(o.out, 'cells', c.name, 'eval.json')),
      configs.get(c.name)!,
      spec.probe,
      fts.get(c.name)!,
    );
  const trained: string[] = [];
  const skipped: string[] = [];
  for (const [i, c] of cells.entries()) {
    if (i % world !== rank) continue;
    if (status(c) === 'done') {
      skipped.push(c.name);
      log(`cell ${c.name}: done (eval.json matches), skipped`);
      continue;
    }
    await runCell(spec, c, configs.get(c.name)!, fts.get(c.name)!, o, log);
    trained.push(c.name);
  }
  if (rank !== 0) return { out: o.out, table: null, trained, skipped };

  let waiting = cells.filter((c) => status(c) !== 'done');
  let lastNote = 0;
  while (waiting.length) {
    if (Date.now() - lastNote > 60_000) {
      log(`waiting for ${waiting.length} cells of the other processes: ${waiting.map((c) => c.name).join(', ')}`);
      lastNote = Date.now();
    }
    await sleep(POLL_MS);
    waiting = waiting.filter((c) => status(c) !== 'done');
  }
  const evals = new Map(cells.map((c) => [c.name, readJson<CellEval>(join(o.out, 'cells', c.name, 'eval.json'))!]));
  const table = gridTable(spec, budget, cells, evals, o);
  await writeGridReport(o.out, table);
  return { out: o.out, table, trained, skipped };
}

/** The table of the grid from the cells' eval.json: one row per axis combination, stats over the seeds. */
export function gridTable(
  spec: GridSpec,
  budget: ResolvedBudget,
  cells: GridCell[],
  evals: Map<string, CellEval>,
  o: { seeds: number; finetune: boolean },
): GridTable {
  const rows: GridTableCell[] = [];
  for (const g of cells.filter((c) => c.seed === 0)) {
    const runs = cells.filter((c) => c.group === g.group);
    const es = runs.map((c) => evals.get(c.name)!);
    const mean = (f: (e: CellEval) => number): number => es.reduce((s, e) => s + f(e), 0) / es.length;
    rows.push({
      name: g.group,
      axes: g.axes,
      seeds: runs.map((c) => c.seed),
      runs: runs.map((c) => c.name),
      knnTop1: seedStat(es.map((e) => e.knnTop1)),
      linearTop1: seedStat(es.map((e) => e.linearTop1)),
      finetuneTop1: o.finetune ? seedStat(es.map((e) => e.finetune!.top1)) : null,
      imagesSeen: es[0]!.imagesSeen,
      epochs: es[0]!.epochs,
      imagesPerSec: mean((e) => e.imagesPerSec),
      wallS: mean((e) => e.wallS),
      flopsPerImage: es[0]!.flopsPerImage,
    });
  }
  const b = spec.base;
  const p = spec.probe;
  const evaluation =
    `weighted kNN (k = ${b.knnK}, T = ${b.knnT}) and a linear probe (BN + linear, LARS, ${p.epochs} epochs, blr ${p.blr}, batch ${p.batchSize}) ` +
    `on frozen CLS features of ${b.knnTrainSamples ?? 'all'} training / ${b.knnValSamples ?? 'all'} held-out images` +
    (o.finetune ? '; fine-tuning (MAE recipe) top-1 after its last epoch' : '');
  return {
    grid: spec.name,
    description: spec.description,
    axes: spec.axes,
    budget: {
      kind: budget.kind,
      value: budget.value,
      epochs: budget.epochs,
      imagesPerEpoch: budget.imagesPerEpoch,
      note: budget.note,
    },
    seeds: o.seeds,
    evaluation,
    cells: rows,
  };
}
