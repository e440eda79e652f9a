// The report of an ablation grid: table.json, table.md and grid.html — the tables, top-1 against
// n (Figure 3(b)) and against m (Figure 4) with one line per combination of the other axes, and
// the cells' loss (Figure 5) and κ curves (Figure 6) overlaid. Built with the run report's SVG
// charts and page style.
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { downsampleMean } from './downsample.js';
import {
  axisLabel,
  cellTable,
  gridMarkdown,
  gridSummary,
  groupLabel,
  metricColumns,
  paperTable,
  valueLabel,
  type GridTable,
  type GridTableCell,
} from './grid-table.js';
import { readMetrics, type RunLog } from './metrics.js';
import { REPORT_CSS, type Chart } from './report.js';
import { PALETTE, escapeXml as esc, lineChart, panelRow, type PanelSpec, type Series } from './svg.js';

const WIDTH = 900;
const HEIGHT = 320;
/** Points per overlaid step series: enough for the shape, few enough for 24 cells on one chart. */
const CURVE_POINTS = 300;

/** The paper's figure for an axis drawn on x. */
const FIGURE: Record<string, string> = {
  numChunks: 'Figure 3(b): top-1 against n (online chunks)',
  targetChunks: 'Figure 4: top-1 against m (target chunks)',
};

/** Colour and dash of the i-th series: the palette, dashed on its second round. */
function style(i: number): { color: string; dash?: string } {
  const color = PALETTE[i % PALETTE.length]!;
  return i < PALETTE.length ? { color } : { color, dash: '6 3' };
}

const sameAxes = (a: Record<string, unknown>, b: Record<string, unknown>): boolean =>
  Object.keys(a).every((k) => JSON.stringify(a[k]) === JSON.stringify(b[k]));

/** Top-1 against a numeric axis, one series per combination of the other axes (±std as a band). */
function accuracyCharts(t: GridTable): Chart[] {
  const charts: Chart[] = [];
  for (const axis of t.axes) {
    if (axis.values.length < 2 || !axis.values.every((v) => typeof v === 'number')) continue;
    const others = t.axes.filter((a) => a.key !== axis.key);
    let combos: Record<string, unknown>[] = [{}];
    for (const a of others) combos = combos.flatMap((g) => a.values.map((v) => ({ ...g, [a.key]: v })));
    const panels: PanelSpec[] = metricColumns(t).map((m) => ({
      title: `${m.label} top-1`,
      xLabel: axisLabel(axis.key),
      yLabel: 'top-1 (%)',
      xInteger: true,
      id: `${axis.key}-${m.key}`,
      series: combos.map((g, i): Series => {
        const cells = (axis.values as number[])
          .map((v) => [v, t.cells.find((c) => sameAxes({ ...g, [axis.key]: v }, c.axes))] as const)
          .filter((x): x is readonly [number, GridTableCell] => !!x[1] && !!x[1][m.key]);
        const s = cells.map(([v, c]) => [v, c[m.key]!] as const);
        return {
          name: others.length ? groupLabel(g) : m.label,
          points: s.map(([v, st]) => [v, st.mean] as const),
          markers: true,
          width: 2,
          ...style(i),
          ...(t.seeds > 1
            ? { band: s.map(([, st]) => [st.mean - (st.std ?? 0), st.mean + (st.std ?? 0)] as const) }
            : {}),
        };
      }),
    }));
    const title = FIGURE[axis.key] ?? `top-1 against ${axisLabel(axis.key)}`;
    charts.push({
      id: `acc-${axis.key}`,
      title,
      svg: panelRow(panels, WIDTH, HEIGHT, title),
      hasData: panels.some((p) => p.series.some((s) => s.points.length > 0)),
      caption: `${title}; ${t.seeds > 1 ? `mean over ${t.seeds} seeds, the band ±1 std` : 'one seed'}.`,
    });
  }
  return charts;
}

/** The step series of one field of a cell's log, averaged down to CURVE_POINTS points. */
function curve(log: RunLog, field: 'loss' | 'kappaRep' | 'kappaProj' | 'kappaPred'): [number, number][] {
  const pts = log.steps.map((s) => [s.x, s[field] ?? NaN] as [number, number]).filter((p) => Number.isFinite(p[1]));
  return downsampleMean(pts, CURVE_POINTS) as [number, number][];
}

/** Loss (Figure 5) and κ (Figure 6) of every cell (its first seed) overlaid. */
function curveCharts(t: GridTable, logs: Map<string, RunLog>): Chart[] {
  const cells = t.cells.filter((c) => logs.has(c.name));
  const series = (field: 'loss' | 'kappaRep' | 'kappaProj' | 'kappaPred'): Series[] =>
    cells.map((c, i) => ({ name: label(t, c), points: curve(logs.get(c.name)!, field), ...style(i) }));
  const loss: PanelSpec = {
    title: 'training loss',
    xLabel: 'step',
    yLabel: 'loss',
    series: series('loss'),
    id: 'grid-loss',
  };
  const kappa: PanelSpec[] = (
    [
      ['kappaRep', 'κ rep (mean patch token)'],
      ['kappaProj', 'κ proj'],
      ['kappaPred', 'κ pred'],
    ] as const
  ).map(([f, title]) => ({
    title,
    xLabel: 'step',
    yLabel: 'κ',
    series: series(f),
    id: `grid-${f}`,
    emptyText: 'no κ (n = 1 gives one chunk per image)',
  }));
  const has = (ps: PanelSpec[]): boolean => ps.some((p) => p.series.some((s) => s.points.length > 0));
  return [
    {
      id: 'loss',
      title: 'Figure 5: training loss of the cells',
      svg: lineChart(loss, WIDTH, HEIGHT),
      hasData: has([loss]),
      caption: `Step loss of each cell (seed 0), averaged to ${CURVE_POINTS} points.`,
    },
    {
      id: 'kappa',
      title: 'Figure 6: concentration κ of the chunks of an image',
      svg: panelRow(kappa, WIDTH, HEIGHT, 'κ'),
      hasData: has(kappa),
      caption: 'von Mises–Fisher concentration of the n chunk representations of an image, per step (seed 0).',
    },
  ];
}

/** A cell's legend text: its values of the axes. */
function label(t: GridTable, c: GridTableCell): string {
  return t.axes
    .map((a) =>
      a.key === 'method' ? valueLabel(a.key, c.axes[a.key]) : `${axisLabel(a.key)} ${valueLabel(a.key, c.axes[a.key])}`,
    )
    .join(', ');
}

function htmlTable(x: { head: string[]; rows: string[][] }, cls: string): string {
  const head = `<tr>${x.head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr>`;
  const rows = x.rows.map((r) => `<tr>${r.map((v) => `<td>${esc(v)}</td>`).join('')}</tr>`).join('\n');
  return `<table class="${cls}">\n${head}\n${rows}\n</table>`;
}

/** The charts of a grid (exported for tests). */
export function gridCharts(t: GridTable, logs: Map<string, RunLog>): Chart[] {
  return [...accuracyCharts(t), ...curveCharts(t, logs)];
}

/** grid.html as text. */
export function gridHtml(t: GridTable, logs: Map<string, RunLog>): string {
  const figs = gridCharts(t, logs)
    .map(
      (c) =>
        `<figure id="chart-${c.id}" data-chart="${c.id}">${c.svg.replace(' xmlns="http://www.w3.org/2000/svg"', '')}` +
        `${c.caption ? `<figcaption>${esc(c.caption)}</figcaption>` : ''}</figure>`,
    )
    .join('\n');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mmoco ablation grid: ${esc(t.grid)}</title>
<style>${REPORT_CSS}
table.grid td{text-align:right;white-space:nowrap}table.grid td:first-child{width:auto;text-align:left}
</style>
</head>
<body>
<main>
<h1>mmoco ablation grid: ${esc(t.grid)}</h1>
${t.description ? `<p class="sub">${esc(t.description)}</p>` : ''}
<p class="sub">${esc(gridSummary(t))}</p>
<h2>Top-1 accuracy (%)</h2>
${htmlTable(paperTable(t), 'grid')}
<h2>Charts</h2>
${figs}
<h2>Every cell</h2>
${htmlTable(cellTable(t), 'grid')}
<p class="sub">Run reports: ${t.cells
    .flatMap((c) => c.runs)
    .map((r) => `<a href="cells/${encodeURIComponent(r)}/report.html">${esc(r)}</a>`)
    .join(', ')}</p>
<footer>${esc(`${t.cells.length} cells; each is a run folder under cells/ with its own report`)}</footer>
</main>
</body>
</html>
`;
}

/**
 * Writes `<out>/table.json`, `<out>/table.md` and `<out>/grid.html`; the curves come from each
 * cell's first run (`<out>/cells/<run>/metrics.jsonl`).
 */
export async function writeGridReport(out: string, t: GridTable): Promise<{ json: string; md: string; html: string }> {
  await mkdir(out, { recursive: true });
  const logs = new Map<string, RunLog>();
  for (const c of t.cells) {
    const path = join(out, 'cells', c.runs[0]!, 'metrics.jsonl');
    if (existsSync(path)) logs.set(c.name, await readMetrics(path));
  }
  const paths = { json: join(out, 'table.json'), md: join(out, 'table.md'), html: join(out, 'grid.html') };
  await writeFile(paths.json, JSON.stringify(t, null, 2) + '\n');
  await writeFile(paths.md, gridMarkdown(t));
  await writeFile(paths.html, gridHtml(t, logs));
  return paths;
}
