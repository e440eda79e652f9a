// The table of an ablation grid (`mmoco ablate`): what table.json holds, and table.md laid out
// as the paper's tables — the first axis down the rows, the other axes' combinations across as
// column groups, each with its accuracies.

/** A number over the seeds of a cell: their mean, sample standard deviation (null for one seed) and values. */
export interface SeedStat {
  mean: number;
  std: number | null;
  values: number[];
}

export interface GridTableCell {
  /** the axis values joined (`numChunks-4_method-mmoco`): the cell folders are `<name>_seed-<s>` */
  name: string;
  axes: Record<string, unknown>;
  seeds: number[];
  /** the cell folders under cells/, one per seed */
  runs: string[];
  knnTop1: SeedStat;
  linearTop1: SeedStat;
  /** null without --finetune */
  finetuneTop1: SeedStat | null;
  /** images the pre-training stepped through (steps × batch), the same in every cell */
  imagesSeen: number;
  epochs: number;
  /** median images/s of the pre-training epochs (mean over seeds) */
  imagesPerSec: number;
  /** pre-training wall time (epochs and their kNN monitor; mean over seeds) */
  wallS: number;
  /** FLOPs of one training step per image (2 × MACs, src/ssl/flops.ts) */
  flopsPerImage: number;
}

export interface GridTable {
  grid: string;
  description: string;
  axes: { key: string; values: unknown[] }[];
  budget: { kind: string; value: number; epochs: number; imagesPerEpoch: number; note: string };
  seeds: number;
  evaluation: string;
  cells: GridTableCell[];
}

/** The paper's symbols for the axes it varies. */
const SYMBOL: Record<string, string> = {
  numChunks: 'n',
  targetChunks: 'm',
  method: 'method',
  headNorm: 'heads',
  classAttention: 'CA',
  augmentation: 'augmentation',
};

export function axisLabel(key: string): string {
  return SYMBOL[key] ?? key;
}

/** A value as the paper writes it: M-MoCo, BN, ✓. */
export function valueLabel(key: string, v: unknown): string {
  if (key === 'method') return v === 'mmoco' ? 'M-MoCo' : v === 'mbyol' ? 'M-BYOL' : String(v);
  if (key === 'headNorm') return String(v).toUpperCase();
  if (typeof v === 'boolean') return v ? '✓' : '–';
  return String(v);
}

/** "65.32" or "65.32 ± 0.41". */
export function formatStat(s: SeedStat | null): string {
  if (!s) return '–';
  return s.std === null ? s.mean.toFixed(2) : `${s.mean.toFixed(2)} ± ${s.std.toFixed(2)}`;
}

export function seedStat(values: readonly number[]): SeedStat {
  const n = values.length;
  const mean = values.reduce((a, b) => a + b, 0) / n;
  const std = n > 1 ? Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / (n - 1)) : null;
  return { mean, std, values: [...values] };
}

function formatSeconds(s: number): string {
  if (s < 90) return `${s.toFixed(1)} s`;
  if (s < 5400) return `${(s / 60).toFixed(1)} min`;
  return `${(s / 3600).toFixed(2)} h`;
}

function formatFlops(f: number): string {
  return f >= 1e9 ? `${(f / 1e9).toFixed(2)} G` : `${(f / 1e6).toFixed(1)} M`;
}

/** The accuracies shown per cell: kNN and linear, plus fine-tune when any cell has it. */
export function metricColumns(t: GridTable): { key: 'knnTop1' | 'linearTop1' | 'finetuneTop1'; label: string }[] {
  const cols: { key: 'knnTop1' | 'linearTop1' | 'finetuneTop1'; label: string }[] = [];
  if (t.cells.some((c) => c.finetuneTop1)) cols.push({ key: 'finetuneTop1', label: 'Fine-tune' });
  cols.push({ key: 'linearTop1', label: 'Linear' }, { key: 'knnTop1', label: 'kNN' });
  return cols;
}

const sameAxes = (a: Record<string, unknown>, b: Record<string, unknown>): boolean =>
  Object.keys(a).every((k) => JSON.stringify(a[k]) === JSON.stringify(b[k]));

/** The other axes' combinations, in grid order. */
export function columnGroups(t: GridTable): Record<string, unknown>[] {
  let groups: Record<string, unknown>[] = [{}];
  for (const a of t.axes.slice(1)) groups = groups.flatMap((g) => a.values.map((v) => ({ ...g, [a.key]: v })));
  return groups;
}

export function groupLabel(g: Record<string, unknown>): string {
  return Object.entries(g)
    .map(([k, v]) =>
      k === 'method' || k === 'headNorm' || k === 'augmentation'
        ? valueLabel(k, v)
        : typeof v === 'boolean'
          ? `${v ? '' : 'no '}${axisLabel(k)}`
          : `${axisLabel(k)} = ${valueLabel(k, v)}`,
    )
    .join(', ');
}

/** The paper-style table: the first axis down the rows, the other axes' combinations across. */
export function paperTable(t: GridTable): { head: string[]; rows: string[][] } {
  const rowAxis = t.axes[0]!;
  const groups = columnGroups(t);
  const metrics = metricColumns(t);
  const head: string[] = [axisLabel(rowAxis.key)];
  for (const g of groups)
    for (const m of metrics) head.push(t.axes.length > 1 ? `${groupLabel(g)} ${m.label}` : m.label);
  const rows = rowAxis.values.map((v) => {
    const row = [valueLabel(rowAxis.key, v)];
    for (const g of groups) {
      const cell = t.cells.find((c) => sameAxes({ ...g, [rowAxis.key]: v }, c.axes));
      for (const m of metrics) row.push(cell ? formatStat(cell[m.key]) : '');
    }
    return row;
  });
  return { head, rows };
}

/** Every cell with its accuracies and its cost. */
export function cellTable(t: GridTable): { head: string[]; rows: string[][] } {
  const metrics = metricColumns(t);
  const head = [
    ...t.axes.map((a) => axisLabel(a.key)),
    ...metrics.map((m) => m.label),
    'images seen',
    'epochs',
    'images/s',
    'wall',
    'FLOPs/image',
  ];
  const rows = t.cells.map((c) => [
    ...t.axes.map((a) => valueLabel(a.key, c.axes[a.key])),
    ...metrics.map((m) => formatStat(c[m.key])),
    String(c.imagesSeen),
    String(c.epochs),
    c.imagesPerSec.toFixed(1),
    formatSeconds(c.wallS),
    formatFlops(c.flopsPerImage),
  ]);
  return { head, rows };
}

/** The budget, seeds and evaluation in one paragraph. */
export function gridSummary(t: GridTable): string {
  return `Budget: ${t.budget.note}. Seeds: ${t.seeds}${t.seeds > 1 ? ' (mean ± sample std)' : ''}. Evaluation: ${t.evaluation}.`;
}

function mdTable(x: { head: string[]; rows: string[][] }, numeric: boolean): string[] {
  return [
    `| ${x.head.join(' | ')} |`,
    `| ${x.head.map((_, i) => (numeric && i > 0 ? '---:' : '---')).join(' | ')} |`,
    ...x.rows.map((r) => `| ${r.join(' | ')} |`),
  ];
}

/** table.md: the paper-style table (top-1 %), then every cell with its cost. */
export function gridMarkdown(t: GridTable): string {
  return (
    [
      `# Ablation grid: ${t.grid}`,
      '',
      ...(t.description ? [t.description, ''] : []),
      gridSummary(t),
      '',
      'Top-1 accuracy (%):',
      '',
      ...mdTable(paperTable(t), true),
      '',
      'Every cell:',
      '',
      ...mdTable(cellTable(t), false),
    ].join('\n') + '\n'
  );
}
