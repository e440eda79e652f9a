// The report of a training run: `writeReport(runDir)` writes a self-contained report.html with
// SVG charts and PNGs of the charts.
export { writeReport, buildCharts, renderHtml, median, formatDuration } from './report.js';
export type { ReportOptions, ReportResult, Chart } from './report.js';
export { parseMetrics, readMetrics } from './metrics.js';
export type { RunLog, StepRecord, EpochRecord, EvalRecord, ResumeRecord, ExtendRecord, StopRecord } from './metrics.js';
export { downsampleMinMax, downsampleMean } from './downsample.js';
export {
  niceTicks,
  niceNum,
  logTicks,
  formatTick,
  lineChart,
  panelRow,
  linePath,
  bandPath,
  linearScale,
  logScale,
} from './svg.js';
export type { PanelSpec, Series, Point, VLine } from './svg.js';
export { writeGridReport, gridHtml, gridCharts } from './grid.js';
export { gridMarkdown, seedStat, formatStat } from './grid-table.js';
export type { GridTable, GridTableCell, SeedStat } from './grid-table.js';
