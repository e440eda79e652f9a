// The report of a training run: one self-contained HTML file (inline CSS and SVG, nothing
// fetched to view it) plus a PNG of every chart for READMEs.

import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { basename, dirname, extname, join, resolve } from 'node:path';
import sharp from 'sharp';
import { downsampleMinMax } from './downsample.js';
import { readMetrics, type ExtendRecord, type RunLog, type StepRecord } from './metrics.js';
import { escapeXml as esc, lineChart, panelRow, type PanelSpec, type Point, type Series, type VLine } from './svg.js';

export interface ReportOptions {
  /** The HTML file to write (default `<run>/report.html`); PNGs go to a folder of the same name. */
  out?: string;
  /** Also write PNG images of the charts (default true). */
  png?: boolean;
  /** Most points per step series (default 2000). */
  maxPoints?: number;
}

export interface ReportResult {
  html: string;
  pngs: string[];
}

export interface Chart {
  /** File stem of its PNG: loss, lr, momentum, kappa, knn, accuracy, throughput. */
  id: string;
  title: string;
  svg: string;
  /** False when the chart only says "no data" (no PNG is written for it). */
  hasData: boolean;
  /** One line under the chart in the HTML. */
  caption?: string;
}

type Config = Record<string, unknown>;

const WIDTH = 900;
const HEIGHT = 320;
const C = {
  loss: '#1f77b4',
  mean: '#d62728',
  lr: '#2ca02c',
  momentum: '#9467bd',
  rep: '#1f77b4',
  proj: '#ff7f0e',
  pred: '#2ca02c',
  knn: '#d62728',
  top5: '#1f77b4',
  ips: '#17becf',
  resume: '#b8860b',
  extend: '#2e8b57',
  stop: '#c00000',
};

const finite = (v: number | undefined): v is number => v !== undefined && Number.isFinite(v);
const mean = (a: readonly number[]) => a.reduce((s, v) => s + v, 0) / a.length;

/** [min, max] without spreading (long arrays overflow the argument stack). */
function range(values: readonly number[]): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return [lo, hi];
}

export function median(values: readonly number[]): number {
  const a = values.filter(Number.isFinite).sort((x, y) => x - y);
  if (a.length === 0) return NaN;
  const m = a.length >> 1;
  return a.length % 2 ? a[m]! : (a[m - 1]! + a[m]!) / 2;
}

interface EpochAgg {
  epoch: number;
  x0: number;
  x1: number;
  loss?: number;
  kappaRep?: number;
  kappaProj?: number;
  kappaPred?: number;
  imagesPerSec?: number;
  /** [min, max] of each κ over the epoch's steps. */
  range: Partial<Record<'kappaRep' | 'kappaProj' | 'kappaPred', [number, number]>>;
}

/** Per-epoch means of the step fields and the step range of each epoch. */
function epochAggregates(steps: readonly StepRecord[]): Map<number, EpochAgg> {
  const groups = new Map<number, StepRecord[]>();
  for (const s of steps) {
    let g = groups.get(s.epoch);
    if (!g) groups.set(s.epoch, (g = []));
    g.push(s);
  }
  const out = new Map<number, EpochAgg>();
  for (const [epoch, g] of groups) {
    const [x0, x1] = range(g.map((s) => s.x));
    const agg: EpochAgg = { epoch, x0, x1, range: {} };
    for (const k of ['loss', 'kappaRep', 'kappaProj', 'kappaPred', 'imagesPerSec'] as const) {
      const v = g.map((s) => s[k]).filter(finite);
      if (v.length) agg[k] = mean(v);
      if (v.length && k !== 'loss' && k !== 'imagesPerSec') agg.range[k] = range(v);
    }
    out.set(epoch, agg);
  }
  return out;
}

/** "epochs 100 → 150": where a resume changed the run's length. */
function extendLabel(e: ExtendRecord): string {
  return `epochs ${e.fromEpochs ?? '?'} → ${e.toEpochs ?? '?'}`;
}

/** Which charts a run gets: by its command, plus any whose data is present anyway. */
function runKind(config: Config, log: RunLog): 'pretrain' | 'eval' {
  const cmd = typeof config.command === 'string' ? config.command : '';
  if (cmd === 'pretrain') return 'pretrain';
  if (cmd === 'linprobe' || cmd === 'finetune' || cmd === 'linear' || cmd === 'knn') return 'eval';
  const pre = log.steps.some((s) => s.momentum !== undefined || s.kappaRep !== undefined) || log.epochs.length > 0;
  return pre || log.evals.length === 0 ? 'pretrain' : 'eval';
}

/** Builds the charts of a run (exported for tests and other front ends). */
export function buildCharts(log: RunLog, config: Config = {}, maxPoints = 2000): Chart[] {
  const kind = runKind(config, log);
  const steps = log.steps;
  const agg = epochAggregates(steps);
  const epochRec = new Map(log.epochs.map((e) => [e.epoch, e]));
  const haveSteps = steps.length > 0;
  const charts: Chart[] = [];
  const ds = (pts: Point[]) => downsampleMinMax(pts, maxPoints);
  const stepSeries = (k: keyof StepRecord) =>
    ds(steps.filter((s) => finite(s[k] as number | undefined)).map((s) => [s.x, s[k] as number] as Point));
  /** Says how a long step series was thinned out for drawing. */
  const thinned = (k: keyof StepRecord) => {
    const n = steps.filter((s) => finite(s[k] as number | undefined)).length;
    return n > maxPoints
      ? ` (${n} logged steps, drawn as the min and max of each of ${Math.floor((maxPoints - 2) / 2)} buckets)`
      : '';
  };

  const stepVlines: VLine[] = [
    ...log.resumes.map((r, i) => ({
      x: r.x ?? NaN,
      label: `resumed${log.resumes.length > 1 ? ` #${i + 1}` : ''}${r.epoch !== undefined ? ` (epoch ${r.epoch})` : ''}`,
      color: C.resume,
    })),
    ...log.extensions.map((e) => ({ x: e.x ?? NaN, label: extendLabel(e), color: C.extend, dash: '6 3' })),
    ...log.stops.map((s) => ({ x: s.x ?? NaN, label: `stop: ${short(s.reason, 40)}`, color: C.stop, dash: '2 2' })),
  ];
  const lastEpoch = steps.length ? steps[steps.length - 1]!.epoch : log.epochs[log.epochs.length - 1]?.epoch;
  const epochVlines: VLine[] = [
    ...log.resumes.map((r, i) => ({
      x: r.epoch ?? NaN,
      label: `resumed${log.resumes.length > 1 ? ` #${i + 1}` : ''}`,
      color: C.resume,
    })),
    ...log.extensions.map((e) => ({ x: e.epoch ?? NaN, label: extendLabel(e), color: C.extend, dash: '6 3' })),
    ...log.stops.map((s) => ({ x: s.epoch ?? lastEpoch ?? NaN, label: 'stop', color: C.stop, dash: '2 2' })),
  ];
  const push = (id: string, spec: PanelSpec, caption?: string) => {
    charts.push({
      id,
      title: spec.title,
      svg: lineChart({ id, ...spec }, WIDTH, HEIGHT),
      hasData: hasPoints(spec),
      ...(caption ? { caption } : {}),
    });
  };
  /** Per-epoch points with a value (kNN every k epochs leaves gaps that the line spans). */
  const epochPoints = <T extends { epoch: number }>(rows: readonly T[], f: (r: T) => number | undefined): Point[] =>
    rows.filter((r) => finite(f(r))).map((r) => [r.epoch, f(r)!]);

  // Loss: per step with the epoch mean over each epoch's steps (and eval loss when logged).
  const epochSpans = [...agg.values()].sort((a, b) => a.epoch - b.epoch);
  // An epoch's segment runs from its first logged step to the next epoch's first (the last one to
  // its last step), so the epoch means read as one stepped line.
  const span = (a: EpochAgg): readonly [number, number] => {
    const next = agg.get(a.epoch + 1);
    const end = next && next.x0 > a.x1 ? next.x0 : a.x1;
    return end > a.x0 ? [a.x0, end] : [a.x0 - 0.5, a.x0 + 0.5];
  };
  if (haveSteps) {
    const meanLoss = epochSpans
      .map((a) => ({ a, v: epochRec.get(a.epoch)?.loss ?? a.loss }))
      .filter((e): e is { a: EpochAgg; v: number } => finite(e.v));
    const evalLoss = log.evals
      .filter((e) => finite(e.loss) && agg.has(e.epoch))
      .map((e) => [agg.get(e.epoch)!.x1, e.loss!] as Point);
    push(
      'loss',
      {
        title: 'Training loss',
        xLabel: 'step',
        yLabel: 'loss',
        series: [
          { name: 'per step', points: stepSeries('loss'), color: C.loss, width: 1, opacity: 0.55 },
          {
            name: 'epoch mean',
            points: meanLoss.map(({ a, v }) => [(a.x0 + a.x1) / 2, v]),
            spans: meanLoss.map(({ a }) => span(a)),
            color: C.mean,
            width: 2.5,
          },
          ...(evalLoss.length
            ? [{ name: 'eval loss', points: evalLoss, color: '#333', markers: true, dash: '4 3' }]
            : []),
        ],
        vlines: stepVlines,
      },
      `Training loss per logged step${thinned('loss')}; red: the mean loss of each epoch over its steps.`,
    );
  } else {
    push('loss', {
      title: 'Training loss (per epoch)',
      xLabel: 'epoch',
      yLabel: 'loss',
      xInteger: true,
      series: [
        { name: 'epoch loss', points: epochPoints(log.epochs, (e) => e.loss), color: C.mean, markers: true },
        { name: 'eval loss', points: epochPoints(log.evals, (e) => e.loss), color: '#333', markers: true },
      ],
      vlines: epochVlines,
    });
  }

  push(
    'lr',
    {
      title: 'Learning rate',
      xLabel: 'step',
      yLabel: 'lr',
      series: [{ name: 'lr', points: stepSeries('lr'), color: C.lr }],
      vlines: stepVlines,
      yInclude: [0],
    },
    `Learning rate per logged step${thinned('lr')}.`,
  );

  const hasMomentum = steps.some((s) => finite(s.momentum));
  if (kind === 'pretrain' || hasMomentum) {
    push(
      'momentum',
      {
        title: 'Momentum (target encoder EMA)',
        xLabel: 'step',
        yLabel: 'momentum',
        series: [{ name: 'momentum', points: stepSeries('momentum'), color: C.momentum }],
        vlines: stepVlines,
        emptyText: 'no data (no momentum encoder logged)',
      },
      `Momentum of the target encoder’s EMA update per logged step${thinned('momentum')}.`,
    );
  }

  // κ: the paper's Figure 6 view, per-epoch averages of rep / proj / pred, log y.
  const hasKappa = steps.some((s) => finite(s.kappaRep) || finite(s.kappaProj) || finite(s.kappaPred));
  if (kind === 'pretrain' || hasKappa) {
    const panels: PanelSpec[] = (
      [
        ['kappaRep', '(a) κ rep', C.rep],
        ['kappaProj', '(b) κ proj', C.proj],
        ['kappaPred', '(c) κ pred', C.pred],
      ] as const
    ).map(([k, title, color]) => ({
      id: `kappa-${k}`,
      title,
      xLabel: 'epoch',
      yLabel: 'κ (epoch mean)',
      yLog: true,
      xInteger: true,
      series: [
        {
          name: title,
          points: epochSpans.map((a) => [a.epoch, a[k] ?? NaN] as Point),
          band: epochSpans.map((a) => a.range[k] ?? ([NaN, NaN] as const)),
          color,
          markers: true,
        },
      ],
      vlines: epochVlines.map((v) => ({ ...v, label: '' })),
      emptyText: 'no data (κ needs n > 1 chunks)',
    }));
    const title = 'Concentration κ (vMF) per epoch: rep / proj / pred';
    charts.push({
      id: 'kappa',
      title,
      svg: panelRow(panels, WIDTH, HEIGHT, title),
      hasData: panels.some(hasPoints),
      caption:
        'Concentration of the n chunk features of an image (von Mises–Fisher κ, Banerjee et al.): ' +
        'lines are epoch means (the paper’s Figure 6), shading the min–max over the epoch’s logged steps.',
    });
  }

  const hasKnn = log.epochs.some((e) => finite(e.knnTop1));
  if (kind === 'pretrain' || hasKnn) {
    const best = bestOf(log.epochs, (e) => e.knnTop1);
    push(
      'knn',
      {
        title: `kNN top-1 accuracy${best ? ` (best ${best.v.toFixed(2)}% at epoch ${best.epoch})` : ''}`,
        xLabel: 'epoch',
        yLabel: 'top-1 (%)',
        xInteger: true,
        series: [{ name: 'kNN top-1', points: epochPoints(log.epochs, (e) => e.knnTop1), color: C.knn, markers: true }],
        vlines: epochVlines,
        emptyText: 'no data (no kNN evaluation logged)',
      },
      'kNN top-1 of the backbone’s features on the validation set, at the end of each evaluated epoch.',
    );
  }

  const hasEval = log.evals.some((e) => finite(e.top1) || finite(e.top5));
  if (kind === 'eval' || hasEval) {
    const best = bestOf(log.evals, (e) => e.top1);
    push(
      'accuracy',
      {
        title: `Evaluation accuracy${best ? ` (best top-1 ${best.v.toFixed(2)}% at epoch ${best.epoch})` : ''}`,
        xLabel: 'epoch',
        yLabel: 'accuracy (%)',
        xInteger: true,
        series: [
          { name: 'top-1', points: epochPoints(log.evals, (e) => e.top1), color: C.knn, markers: true },
          { name: 'top-5', points: epochPoints(log.evals, (e) => e.top5), color: C.top5, markers: true },
        ],
        vlines: epochVlines,
        emptyText: 'no data (no evaluation logged)',
      },
      'Top-1 and top-5 accuracy on the evaluation set after each epoch.',
    );
  }

  // Throughput: images/s per step, and per epoch over each epoch's steps.
  const epochIps = epochSpans
    .map((a) => ({ a, v: epochRec.get(a.epoch)?.imagesPerSec ?? a.imagesPerSec }))
    .filter((e): e is { a: EpochAgg; v: number } => finite(e.v));
  const ipsMedian = median(steps.map((s) => s.imagesPerSec ?? NaN));
  const throughput: Series[] = [
    { name: 'per step', points: stepSeries('imagesPerSec'), color: C.ips, width: 1, opacity: 0.6 },
    {
      name: 'epoch',
      points: epochIps.map(({ a, v }) => [(a.x0 + a.x1) / 2, v]),
      spans: epochIps.map(({ a }) => span(a)),
      color: '#08306b',
      width: 2.5,
    },
  ];
  if (haveSteps) {
    push(
      'throughput',
      {
        title: `Throughput${Number.isFinite(ipsMedian) ? ` (median ${ipsMedian.toFixed(1)} images/s)` : ''}`,
        xLabel: 'step',
        yLabel: 'images/s',
        series: throughput,
        vlines: stepVlines,
        yInclude: [0],
      },
      `Training images/s per logged step (light)${thinned('imagesPerSec')} and per epoch (dark).`,
    );
  } else {
    push('throughput', {
      title: 'Throughput (per epoch)',
      xLabel: 'epoch',
      yLabel: 'images/s',
      xInteger: true,
      series: [{ name: 'epoch', points: epochPoints(log.epochs, (e) => e.imagesPerSec), markers: true }],
      vlines: epochVlines,
      yInclude: [0],
    });
  }
  return charts;
}

function hasPoints(spec: PanelSpec): boolean {
  return spec.series.some((s) =>
    s.points.some(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!spec.yLog || y > 0)),
  );
}

function bestOf<T extends { epoch: number }>(rows: readonly T[], f: (r: T) => number | undefined) {
  let best: { v: number; epoch: number } | undefined;
  for (const r of rows) {
    const v = f(r);
    if (finite(v) && (!best || v > best.v)) best = { v, epoch: r.epoch };
  }
  return best;
}

function short(s: string, n: number): string {
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '–';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  if (h) return `${h} h ${String(m).padStart(2, '0')} min`;
  if (m) return `${m} min ${String(r).padStart(2, '0')} s`;
  return `${seconds < 10 ? seconds.toFixed(1) : r} s`;
}

function fmtNum(v: number | undefined, digits = 4): string {
  if (!finite(v)) return v === undefined ? '–' : String(v);
  if (v !== 0 && (Math.abs(v) < 1e-3 || Math.abs(v) >= 1e6)) return Number(v.toPrecision(3)).toExponential();
  return String(Number(v.toPrecision(digits)));
}

/** The config flattened to dotted keys (nested objects), values as short text. */
function flattenConfig(config: Config, prefix = '', out: [string, string][] = []): [string, string][] {
  for (const [k, v] of Object.entries(config)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (
      v !== null &&
      typeof v === 'object' &&
      !Array.isArray(v) &&
      Object.keys(v).length > 0 &&
      prefix.split('.').length < 3
    ) {
      flattenConfig(v as Config, key, out);
    } else out.push([key, short(typeof v === 'string' ? v : JSON.stringify(v), 160)]);
  }
  return out;
}

interface Summary {
  label: string;
  value: string;
  note?: string;
  tone?: 'bad' | 'warn';
}

function summarise(log: RunLog, config: Config): Summary[] {
  const out: Summary[] = [];
  const lastLoss = [...log.steps].reverse().find((s) => finite(s.loss));
  const lastEpoch = [...log.epochs].reverse().find((e) => finite(e.loss));
  if (lastLoss) out.push({ label: 'final loss', value: fmtNum(lastLoss.loss), note: `step ${lastLoss.step}` });
  else if (lastEpoch)
    out.push({ label: 'final loss', value: fmtNum(lastEpoch.loss), note: `epoch ${lastEpoch.epoch}` });
  else out.push({ label: 'final loss', value: '–' });
  if (lastEpoch && lastLoss)
    out.push({ label: 'last epoch mean loss', value: fmtNum(lastEpoch.loss), note: `epoch ${lastEpoch.epoch}` });
  const knn = bestOf(log.epochs, (e) => e.knnTop1);
  if (knn) {
    const last = [...log.epochs].reverse().find((e) => finite(e.knnTop1));
    out.push({
      label: 'best kNN top-1',
      value: `${knn.v.toFixed(2)}%`,
      note: `epoch ${knn.epoch}${last && last.knnTop1 !== knn.v ? `; last ${last.knnTop1!.toFixed(2)}%` : ''}`,
    });
  }
  const top1 = bestOf(log.evals, (e) => e.top1);
  if (top1) out.push({ label: 'best top-1', value: `${top1.v.toFixed(2)}%`, note: `epoch ${top1.epoch}` });
  const top5 = bestOf(log.evals, (e) => e.top5);
  if (top5) out.push({ label: 'best top-5', value: `${top5.v.toFixed(2)}%`, note: `epoch ${top5.epoch}` });
  let ips = median(log.steps.map((s) => s.imagesPerSec ?? NaN));
  let ipsNote = 'median over steps';
  if (!Number.isFinite(ips)) {
    ips = median(log.epochs.map((e) => e.imagesPerSec ?? NaN));
    ipsNote = 'median over epochs';
  }
  out.push({ label: 'images/s', value: Number.isFinite(ips) ? ips.toFixed(1) : '–', note: ipsNote });
  out.push({ label: 'wall time', value: formatDuration(log.wallSeconds ?? NaN) });
  const last = log.steps[log.steps.length - 1];
  const epochsDone = log.epochs.length ? log.epochs[log.epochs.length - 1]!.epoch + 1 : undefined;
  const planned = typeof config.epochs === 'number' ? config.epochs : log.plannedEpochs;
  if (epochsDone !== undefined || planned !== undefined) {
    out.push({
      label: 'epochs',
      value: `${epochsDone ?? 0}${planned !== undefined ? ` / ${planned}` : ''}`,
      note: log.extensions.length
        ? `completed; ${log.extensions.map((e) => `${extendLabel(e)} at step ${e.step ?? '?'}`).join(', ')}`
        : 'completed',
    });
  }
  if (last) out.push({ label: 'steps', value: String(last.x + 1), note: `last logged step ${last.step}` });
  out.push(
    log.resumes.length
      ? {
          label: 'resumed',
          value: `yes, ${log.resumes.length}×`,
          note: log.resumes
            .map((r) =>
              [r.epoch !== undefined ? `epoch ${r.epoch}` : '', r.step !== undefined ? `step ${r.step}` : '']
                .filter(Boolean)
                .join(' '),
            )
            .join('; '),
          tone: 'warn',
        }
      : { label: 'resumed', value: 'no' },
  );
  const stop = log.stops[log.stops.length - 1];
  out.push(
    stop
      ? { label: 'stopped', value: 'yes', note: short(stop.reason, 60), tone: 'bad' }
      : log.truncatedLastLine
        ? { label: 'stopped', value: 'killed?', note: 'the log ends mid-line', tone: 'warn' }
        : { label: 'stopped', value: 'no' },
  );
  return out;
}

/** The page style of the reports (the run report and the grid report share it). */
export const REPORT_CSS = `
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:0;background:#f4f5f7;color:#1d1d1f}
main{max-width:960px;margin:0 auto;padding:24px 16px 48px}
h1{font-size:22px;margin:0 0 4px}
h2{font-size:17px;margin:28px 0 10px}
.sub{color:#555;margin:0 0 16px}
.banner{border-radius:6px;padding:12px 16px;margin:12px 0;font-weight:600}
.banner.bad{background:#fde8e8;border:2px solid #c00000;color:#8b0000;font-size:17px}
.banner.warn{background:#fff6dd;border:1px solid #d4a017;color:#6b4e00}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(170px,1fr));gap:10px}
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:10px 12px}
.card .l{font-size:12px;color:#666;text-transform:uppercase;letter-spacing:.03em}
.card .v{font-size:20px;font-weight:600;margin-top:2px}
.card .n{font-size:12px;color:#666;margin-top:2px}
.card.bad{border-color:#c00000;background:#fff0f0}.card.bad .v{color:#c00000}
.card.warn{border-color:#d4a017;background:#fffaea}
figure{background:#fff;border:1px solid #ddd;border-radius:6px;margin:0 0 14px;padding:8px}
figure svg{display:block;width:100%;height:auto}
figcaption{font-size:12px;color:#555;padding:4px 6px 0}
details{margin-top:14px}summary{cursor:pointer;font-weight:600}
table.epochs td{text-align:right;white-space:nowrap}table.epochs td:first-child{width:auto}
th{background:#f0f1f3;font-size:12px;padding:4px 8px;text-align:right;border-bottom:1px solid #ddd}
table{border-collapse:collapse;background:#fff;border:1px solid #ddd;font-size:13px;width:100%}
td{border-top:1px solid #eee;padding:3px 8px;vertical-align:top}
td:first-child{color:#555;white-space:nowrap;width:30%}
td code{word-break:break-all}
footer{color:#777;font-size:12px;margin-top:24px}
`;

/** The report page as HTML text. */
export function renderHtml(
  runName: string,
  config: Config,
  log: RunLog,
  charts: readonly Chart[],
  configNote = '',
): string {
  const str = (k: string) =>
    typeof config[k] === 'string' || typeof config[k] === 'number' ? String(config[k]) : undefined;
  const headline = [str('command'), str('method'), str('model'), str('dataset') ?? str('data')]
    .filter(Boolean)
    .join(' · ');
  const has = (k: string) => str(k) !== undefined;
  const extras = [
    has('numChunks') ? `n = ${str('numChunks')}` : '',
    has('targetChunks') ? `m = ${str('targetChunks')}` : '',
    has('headNorm') ? `${str('headNorm')!.toUpperCase()} heads` : '',
    config.classAttention === true ? 'class attention' : '',
    has('imgSize') ? `${str('imgSize')} px${has('patchSize') ? ` / patch ${str('patchSize')}` : ''}` : '',
    has('epochs') ? `${str('epochs')} epochs` : '',
    has('batchSize') ? `batch ${str('batchSize')}` : '',
    has('blr') ? `blr ${fmtNum(Number(config.blr))}` : '',
    has('temperature') ? `τ ${str('temperature')}` : '',
    typeof config.momentum === 'number' ? `m₀ ${str('momentum')}` : '',
    has('device') ? String(str('device')) : '',
  ].filter(Boolean);
  const banners: string[] = [];
  for (const s of log.stops) {
    banners.push(
      `<div class="banner bad">Run stopped${s.step !== undefined ? ` at step ${s.step}` : ''}${
        s.epoch !== undefined ? ` (epoch ${s.epoch})` : ''
      }: ${esc(s.reason)}</div>`,
    );
  }
  if (log.resumes.length) {
    const where = log.resumes
      .map((r) =>
        [r.epoch !== undefined ? `epoch ${r.epoch}` : '', r.step !== undefined ? `step ${r.step}` : '']
          .filter(Boolean)
          .join(', '),
      )
      .join('; ');
    banners.push(
      `<div class="banner warn">Resumed ${log.resumes.length}× (${esc(where)}); marked on the charts${
        log.superseded
          ? `; ${log.superseded} records logged past a checkpoint and re-done after the resume are left out`
          : ''
      }.</div>`,
    );
  }
  if (log.truncatedLastLine && !log.stops.length) {
    banners.push('<div class="banner warn">The metrics log ends mid-line: the run was probably killed.</div>');
  }
  const cards = summarise(log, config)
    .map(
      (c) =>
        `<div class="card${c.tone ? ` ${c.tone}` : ''}"><div class="l">${esc(c.label)}</div><div class="v">${esc(c.value)}</div>${
          c.note ? `<div class="n">${esc(c.note)}</div>` : ''
        }</div>`,
    )
    .join('\n');
  const rows = flattenConfig(config)
    .map(([k, v]) => `<tr><td>${esc(k)}</td><td><code>${esc(v)}</code></td></tr>`)
    .join('\n');
  // Inline SVG in HTML needs no namespace declaration; dropping it keeps the page free of URLs.
  const figs = charts
    .map(
      (c) =>
        `<figure id="chart-${c.id}" data-chart="${c.id}">${c.svg.replace(' xmlns="http://www.w3.org/2000/svg"', '')}` +
        `${c.caption ? `<figcaption>${esc(c.caption)}</figcaption>` : ''}</figure>`,
    )
    .join('\n');
  const [tMin, tMax] = range([...log.steps, ...log.epochs, ...log.evals].map((r) => r.time).filter(finite));
  const t0 = Number.isFinite(tMin) ? new Date(tMin).toISOString() : undefined;
  const t1 = Number.isFinite(tMax) ? new Date(tMax).toISOString() : undefined;
  const footer = [
    `${log.lines} log lines`,
    log.badLines ? `${log.badLines} unreadable` : '',
    log.truncatedLastLine ? 'last line truncated' : '',
    t0 && t1 ? `logged ${t0.replace('T', ' ').slice(0, 19)} to ${t1.replace('T', ' ').slice(0, 19)} UTC` : '',
    log.stepsAreGlobal ? '' : 'the logged step restarts every epoch: the x axes count steps across epochs',
  ].filter(Boolean);
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mmoco report: ${esc(runName)}</title>
<style>${REPORT_CSS}</style>
</head>
<body>
<main>
<h1>mmoco report: ${esc(runName)}</h1>
<p class="sub">${esc(headline || 'run')}${extras.length ? ` — ${esc(extras.join(', '))}` : ''}</p>
${banners.join('\n')}
<section class="cards">
${cards}
</section>
<h2>Charts</h2>
${figs}
${epochTable(log)}
<h2>Configuration</h2>
${configNote ? `<p class="sub">${esc(configNote)}</p>` : ''}
${rows ? `<table>\n${rows}\n</table>` : ''}
<footer>${esc(footer.join(' · '))}</footer>
</main>
</body>
</html>
`;
}

/** Per-epoch numbers as a table (columns with data only), collapsed for long runs. */
function epochTable(log: RunLog): string {
  const agg = epochAggregates(log.steps);
  const epochs = new Map(log.epochs.map((e) => [e.epoch, e]));
  const evals = new Map(log.evals.map((e) => [e.epoch, e]));
  const all = [...new Set([...agg.keys(), ...epochs.keys(), ...evals.keys()])].sort((a, b) => a - b);
  if (all.length === 0) return '';
  const pct = (v: number | undefined) => (finite(v) ? v.toFixed(2) : '');
  const num = (v: number | undefined) => (finite(v) ? fmtNum(v) : '');
  const cols: [string, (e: number) => string][] = [
    ['loss', (e) => num(epochs.get(e)?.loss ?? agg.get(e)?.loss)],
    ['kNN top-1 %', (e) => pct(epochs.get(e)?.knnTop1)],
    ['top-1 %', (e) => pct(evals.get(e)?.top1)],
    ['top-5 %', (e) => pct(evals.get(e)?.top5)],
    ['eval loss', (e) => num(evals.get(e)?.loss)],
    ['κ rep', (e) => num(agg.get(e)?.kappaRep)],
    ['κ proj', (e) => num(agg.get(e)?.kappaProj)],
    ['κ pred', (e) => num(agg.get(e)?.kappaPred)],
    [
      'images/s',
      (e) =>
        finite(epochs.get(e)?.imagesPerSec ?? agg.get(e)?.imagesPerSec)
          ? (epochs.get(e)?.imagesPerSec ?? agg.get(e)!.imagesPerSec!).toFixed(1)
          : '',
    ],
    ['wall', (e) => (finite(epochs.get(e)?.wallS) ? formatDuration(epochs.get(e)!.wallS!) : '')],
  ];
  const used = cols.filter(([, f]) => all.some((e) => f(e) !== ''));
  const head = `<tr><th>epoch</th>${used.map(([h]) => `<th>${esc(h)}</th>`).join('')}</tr>`;
  const rows = all
    .map((e) => `<tr><td>${e}</td>${used.map(([, f]) => `<td>${esc(f(e))}</td>`).join('')}</tr>`)
    .join('\n');
  return `<details${all.length <= 20 ? ' open' : ''}><summary>Per-epoch numbers (${all.length} epochs)</summary>
<table class="epochs">
${head}
${rows}
</table></details>`;
}

async function readConfig(runDir: string): Promise<{ config: Config; note: string }> {
  const path = join(runDir, 'config.json');
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return { config: {}, note: 'no config.json in the run folder' };
  }
  try {
    const v: unknown = JSON.parse(text);
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) return { config: v as Config, note: '' };
    return { config: {}, note: 'config.json is not a JSON object' };
  } catch (e) {
    return { config: {}, note: `config.json does not parse: ${(e as Error).message}` };
  }
}

/**
 * Writes `<run>/report.html` (self-contained) and, unless `png: false`, a PNG of every chart
 * with data into `<run>/report/` (loss.png, lr.png, momentum.png, kappa.png, knn.png or
 * accuracy.png, throughput.png). A missing or empty metrics.jsonl is an Error naming the path.
 */
export async function writeReport(runDir: string, o: ReportOptions = {}): Promise<ReportResult> {
  const dir = resolve(runDir);
  const log = await readMetrics(join(dir, 'metrics.jsonl'));
  const { config, note } = await readConfig(dir);
  const charts = buildCharts(log, config, o.maxPoints ?? 2000);
  const html = o.out ? resolve(o.out) : join(dir, 'report.html');
  await mkdir(dirname(html), { recursive: true });
  await writeFile(html, renderHtml(basename(dir), config, log, charts, note));
  const pngs: string[] = [];
  if (o.png !== false) {
    const pngDir = join(dirname(html), basename(html, extname(html)));
    await mkdir(pngDir, { recursive: true });
    for (const c of charts) {
      if (!c.hasData) continue;
      const file = join(pngDir, `${c.id}.png`);
      await sharp(Buffer.from(c.svg), { density: 144 }).png({ compressionLevel: 9 }).toFile(file);
      pngs.push(file);
    }
  }
  return { html, pngs };
}
