// A small SVG line-chart module: linear and log scales, "nice" ticks, paths with gaps,
// legends and vertical markers. Output is a plain SVG string with inline styles only (no
// CSS classes, no external fonts) so the same text renders in a browser and through
// librsvg (sharp) to PNG.

export const FONT = 'DejaVu Sans, Liberation Sans, Arial, Helvetica, sans-serif';

/** A data point; a non-finite y (or y <= 0 on a log axis) breaks the line. */
export type Point = readonly [x: number, y: number];

export interface Series {
  name: string;
  points: readonly Point[];
  color?: string;
  /** Stroke width in px (default 1.5). */
  width?: number;
  /** SVG stroke-dasharray, e.g. '4 3'. */
  dash?: string;
  opacity?: number;
  /** Draw a small circle at every point (for short per-epoch series). */
  markers?: boolean;
  /** Leave the series out of the legend. */
  noLegend?: boolean;
  /**
   * Draw each point as a horizontal segment from x to x2 (a step function, e.g. an epoch mean
   * drawn over the steps of its epoch). Same length as points.
   */
  spans?: readonly (readonly [x0: number, x1: number])[];
  /** A shaded range [lo, hi] around each point (e.g. min–max over an epoch's steps). */
  band?: readonly (readonly [lo: number, hi: number])[];
}

export interface VLine {
  x: number;
  label: string;
  color?: string;
  dash?: string;
}

export interface PanelSpec {
  title: string;
  xLabel: string;
  yLabel: string;
  series: readonly Series[];
  yLog?: boolean;
  /** Vertical markers (a resume, a stop). */
  vlines?: readonly VLine[];
  /** Force the y range to include these values (e.g. 0 or 100 for percentages). */
  yInclude?: readonly number[];
  /** Integer x ticks only (epochs). */
  xInteger?: boolean;
  /** Unique within a page (SVG ids are document-wide when several charts are inlined). */
  id?: string;
  /** Text shown instead of the plot when no series has a drawable point. */
  emptyText?: string;
}

export const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf'];

export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&${{ '&': 'amp', '<': 'lt', '>': 'gt', '"': 'quot', "'": 'apos' }[c]};`);
}

// ---------------------------------------------------------------------------------------------
// Ticks

/** Heckbert's nice number: the closest (round) or next larger (!round) of 1, 2, 5 × 10^k. */
export function niceNum(x: number, round: boolean): number {
  if (!(x > 0) || !Number.isFinite(x)) return 1;
  const exp = Math.floor(Math.log10(x));
  const f = x / 10 ** exp;
  let nf: number;
  if (round) nf = f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10;
  else nf = f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10;
  return nf * 10 ** exp;
}

/** The 1, 2 or 5 × 10^k closest to `raw` on a log scale (thresholds √2, √10, √50). */
function niceStep(raw: number): number {
  const exp = Math.floor(Math.log10(raw));
  const f = raw / 10 ** exp;
  const m = f >= Math.sqrt(50) ? 10 : f >= Math.sqrt(10) ? 5 : f >= Math.SQRT2 ? 2 : 1;
  return m * 10 ** exp;
}

export interface Ticks {
  /** The axis range, widened to whole tick steps. */
  min: number;
  max: number;
  step: number;
  ticks: number[];
}

/**
 * Ticks at 1, 2 or 5 × 10^k spacing covering [lo, hi] with about `count` intervals. A zero-width
 * or non-finite range is widened so that the result is always usable.
 */
export function niceTicks(lo: number, hi: number, count = 5, integer = false): Ticks {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) {
    lo = 0;
    hi = 1;
  }
  if (lo > hi) [lo, hi] = [hi, lo];
  if (lo === hi) {
    const d = lo === 0 ? 1 : Math.abs(lo) * 0.1;
    lo -= d;
    hi += d;
  }
  let step = niceStep((hi - lo) / Math.max(1, count));
  if (integer) step = Math.max(1, Math.round(step));
  const min = Math.floor(lo / step + 1e-9) * step;
  const max = Math.ceil(hi / step - 1e-9) * step;
  const ticks: number[] = [];
  const n = Math.round((max - min) / step);
  for (let i = 0; i <= n; i++) ticks.push(roundTo(min + i * step, step));
  return { min, max, step, ticks };
}

/** Removes floating-point noise: 0.30000000000000004 -> 0.3 given a step of 0.1. */
function roundTo(v: number, step: number): number {
  const digits = Math.max(0, -Math.floor(Math.log10(step)) + 1);
  const r = Number(v.toFixed(Math.min(20, digits)));
  return Object.is(r, -0) ? 0 : r;
}

/** Log-axis ticks: powers of ten, with 2 and 5 between them when the range spans few decades. */
export function logTicks(lo: number, hi: number): Ticks & { minor: number[] } {
  if (!(lo > 0) || !(hi > 0) || !Number.isFinite(lo) || !Number.isFinite(hi)) {
    lo = 1;
    hi = 10;
  }
  if (lo > hi) [lo, hi] = [hi, lo];
  if (lo === hi) {
    lo /= 2;
    hi *= 2;
  }
  const e0 = Math.floor(Math.log10(lo) + 1e-9);
  const e1 = Math.max(e0 + 1, Math.ceil(Math.log10(hi) - 1e-9));
  // The range, tightened to the 1-2-5 grid so one decade of data does not leave half the plot empty.
  const grid: number[] = [];
  for (let e = e0; e <= e1; e++) for (const m of [1, 2, 5]) grid.push(Number((m * 10 ** e).toPrecision(12)));
  let min = grid[0]!;
  let max = grid[grid.length - 1]!;
  for (const g of grid) if (g <= lo * (1 + 1e-9)) min = g;
  for (const g of [...grid].reverse()) if (g >= hi * (1 - 1e-9)) max = g;
  const decades = Math.log10(max / min);
  const mults = decades <= 1.5 ? [1, 2, 5] : decades <= 3.5 ? [1, 3] : [1];
  const ticks: number[] = [];
  const minor: number[] = [];
  for (let e = e0; e <= e1; e++) {
    for (let m = 1; m <= 9; m++) {
      const v = Number((m * 10 ** e).toPrecision(12));
      if (v < min * (1 - 1e-9) || v > max * (1 + 1e-9)) continue;
      if (mults.includes(m)) ticks.push(v);
      else minor.push(v);
    }
  }
  // Label both ends when the grid leaves fewer than two ticks.
  if (ticks.length < 2) {
    for (const v of [min, max]) if (!ticks.includes(v)) ticks.push(v);
    ticks.sort((a, b) => a - b);
  }
  return { min, max, step: NaN, ticks, minor };
}

/** Short tick labels: 20k, 1.5M, 2e-4, 0.25. */
export function formatTick(v: number, step?: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e4 && a < 1e9 && (step === undefined || step >= 1000 || !Number.isFinite(step))) {
    const [d, s] = a >= 1e6 ? [1e6, 'M'] : [1e3, 'k'];
    return `${trimNum(v / d)}${s}`;
  }
  if (a < 1e-3 || a >= 1e9) {
    const [m, e] = v.toExponential().split('e') as [string, string];
    return `${trimNum(Number(m))}e${Number(e)}`;
  }
  return trimNum(v);
}

function trimNum(v: number): string {
  return String(Number(v.toPrecision(6)));
}

// ---------------------------------------------------------------------------------------------
// Scales and paths

export interface Scale {
  (v: number): number;
  ok(v: number): boolean;
}

export function linearScale(d0: number, d1: number, r0: number, r1: number): Scale {
  const k = d1 === d0 ? 0 : (r1 - r0) / (d1 - d0);
  const f = ((v: number) => r0 + (v - d0) * k) as Scale;
  f.ok = (v) => Number.isFinite(v);
  return f;
}

export function logScale(d0: number, d1: number, r0: number, r1: number): Scale {
  const l0 = Math.log10(d0);
  const l1 = Math.log10(d1);
  const k = l1 === l0 ? 0 : (r1 - r0) / (l1 - l0);
  const f = ((v: number) => r0 + (Math.log10(v) - l0) * k) as Scale;
  f.ok = (v) => Number.isFinite(v) && v > 0;
  return f;
}

const fmt = (v: number) => String(Math.round(v * 10) / 10);

/** An SVG path `d` through the points; undrawable points start a new sub-path. */
export function linePath(points: readonly Point[], sx: Scale, sy: Scale): string {
  let d = '';
  let pen = false;
  let prev = '';
  for (const [x, y] of points) {
    if (!sx.ok(x) || !sy.ok(y)) {
      pen = false;
      continue;
    }
    const seg = `${fmt(sx(x))},${fmt(sy(y))}`;
    if (pen && seg === prev) continue; // identical pixel: skip
    d += (pen ? 'L' : 'M') + seg;
    pen = true;
    prev = seg;
  }
  return d;
}

/** A closed area between the band's lo and hi edges, one polygon per run of drawable points. */
export function bandPath(
  points: readonly Point[],
  band: readonly (readonly [number, number])[],
  sx: Scale,
  sy: Scale,
): string {
  let d = '';
  let run: [number, number, number][] = [];
  const flush = () => {
    if (run.length >= 2) {
      d += 'M' + run.map(([x, , hi]) => `${fmt(x)},${fmt(hi)}`).join('L');
      d +=
        'L' +
        [...run]
          .reverse()
          .map(([x, lo]) => `${fmt(x)},${fmt(lo)}`)
          .join('L') +
        'Z';
    }
    run = [];
  };
  points.forEach((p, i) => {
    const b = band[i];
    if (b && sx.ok(p[0]) && sy.ok(b[0]) && sy.ok(b[1])) run.push([sx(p[0]), sy(b[0]), sy(b[1])]);
    else flush();
  });
  flush();
  return d;
}

// ---------------------------------------------------------------------------------------------
// Panels and documents

export interface Box {
  x: number;
  y: number;
  w: number;
  h: number;
}

function drawable(s: Series, yLog: boolean): Point[] {
  const out: Point[] = [];
  s.points.forEach((p, i) => {
    if (!Number.isFinite(p[0]) || !Number.isFinite(p[1]) || (yLog && !(p[1] > 0))) return;
    const span = s.spans?.[i];
    if (span) out.push([span[0], p[1]], [span[1], p[1]]);
    else out.push(p);
  });
  return out;
}

const text = (x: number, y: number, s: string, attrs = '') =>
  `<text x="${fmt(x)}" y="${fmt(y)}" font-family="${FONT}"${attrs}>${escapeXml(s)}</text>`;

/** One chart panel (title, axes, grid, series, legend, markers) as an SVG `<g>` inside `box`. */
export function renderPanel(spec: PanelSpec, box: Box): string {
  const yLog = spec.yLog === true;
  const m = { l: 62, r: 14, t: 46, b: 44 };
  const px0 = box.x + m.l;
  const px1 = box.x + box.w - m.r;
  const py0 = box.y + m.t;
  const py1 = box.y + box.h - m.b;
  const out: string[] = [`<g>`];
  out.push(text(box.x + box.w / 2, box.y + 18, spec.title, ' font-size="14" font-weight="bold" text-anchor="middle"'));

  const pts = spec.series.map((s) => drawable(s, yLog));
  const all = pts.flat();
  if (all.length === 0) {
    out.push(
      `<rect x="${px0}" y="${py0}" width="${fmt(px1 - px0)}" height="${fmt(py1 - py0)}" fill="#fafafa" stroke="#ccc"/>`,
      text(
        (px0 + px1) / 2,
        (py0 + py1) / 2,
        spec.emptyText ?? 'no data',
        ' font-size="14" fill="#888" text-anchor="middle"',
      ),
      '</g>',
    );
    return out.join('');
  }

  let xlo = Infinity;
  let xhi = -Infinity;
  let ylo = Infinity;
  let yhi = -Infinity;
  const bandPts = spec.series.flatMap((s) =>
    s.band ? s.points.flatMap((p, i) => s.band![i]!.map((y) => [p[0], y] as Point)) : [],
  );
  for (const [x, y] of [
    ...all,
    ...bandPts.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!yLog || y > 0)),
  ]) {
    if (x < xlo) xlo = x;
    if (x > xhi) xhi = x;
    if (y < ylo) ylo = y;
    if (y > yhi) yhi = y;
  }
  for (const v of spec.vlines ?? []) {
    if (Number.isFinite(v.x)) {
      xlo = Math.min(xlo, v.x);
      xhi = Math.max(xhi, v.x);
    }
  }
  for (const v of spec.yInclude ?? []) {
    if (!yLog || v > 0) {
      ylo = Math.min(ylo, v);
      yhi = Math.max(yhi, v);
    }
  }

  const xt = niceTicks(xlo, xhi, Math.max(2, Math.round((px1 - px0) / 90)), spec.xInteger === true);
  // x axis: data range exactly when it is already wide (no empty margin at the right of a
  // 10k-step run), the nice range otherwise.
  const xmin = xlo < xhi ? xlo : xt.min;
  const xmax = xlo < xhi ? xhi : xt.max;
  const sx = linearScale(xmin, xmax, px0, px1);
  let sy: Scale;
  let yTicks: number[];
  let yMinor: number[] = [];
  let yStep: number | undefined;
  if (yLog) {
    const lt = logTicks(ylo, yhi);
    sy = logScale(lt.min, lt.max, py1, py0);
    yTicks = lt.ticks;
    yMinor = lt.minor;
  } else {
    const yt = niceTicks(ylo, yhi, Math.max(2, Math.round((py1 - py0) / 45)));
    sy = linearScale(yt.min, yt.max, py1, py0);
    yTicks = yt.ticks;
    yStep = yt.step;
  }

  // Frame, grid and ticks.
  out.push(
    `<rect x="${px0}" y="${py0}" width="${fmt(px1 - px0)}" height="${fmt(py1 - py0)}" fill="#fff" stroke="none"/>`,
  );
  const grid: string[] = [];
  for (const v of yMinor) grid.push(`M${px0},${fmt(sy(v))}H${px1}`);
  if (grid.length) out.push(`<path d="${grid.join('')}" stroke="#f0f0f0" stroke-width="1" fill="none"/>`);
  grid.length = 0;
  const tickMarks: string[] = [];
  for (const v of yTicks) {
    const y = sy(v);
    grid.push(`M${px0},${fmt(y)}H${px1}`);
    tickMarks.push(`M${px0 - 5},${fmt(y)}H${px0}`);
    out.push(text(px0 - 8, y + 4, formatTick(v, yStep), ' font-size="11" fill="#333" text-anchor="end"'));
  }
  for (const v of xt.ticks) {
    if (v < xmin - 1e-9 * Math.abs(xmax - xmin) || v > xmax + 1e-9 * Math.abs(xmax - xmin)) continue;
    const x = sx(v);
    grid.push(`M${fmt(x)},${py0}V${py1}`);
    tickMarks.push(`M${fmt(x)},${py1}V${py1 + 5}`);
    out.push(text(x, py1 + 18, formatTick(v, xt.step), ' font-size="11" fill="#333" text-anchor="middle"'));
  }
  out.push(`<path d="${grid.join('')}" stroke="#e3e3e3" stroke-width="1" fill="none"/>`);
  out.push(`<path d="${tickMarks.join('')}" stroke="#333" stroke-width="1" fill="none"/>`);
  out.push(
    `<path d="M${px0},${py0}V${py1}H${px1}" stroke="#333" stroke-width="1" fill="none"/>`,
    text((px0 + px1) / 2, box.y + box.h - 8, spec.xLabel, ' font-size="12" fill="#222" text-anchor="middle"'),
    text(
      0,
      0,
      spec.yLabel,
      ` font-size="12" fill="#222" text-anchor="middle" transform="translate(${fmt(box.x + 14)},${fmt((py0 + py1) / 2)}) rotate(-90)"`,
    ),
  );

  // Series, clipped to the plot area.
  const clip = `clip-${spec.id ?? Math.abs(hash(spec.title))}-${Math.round(box.x)}-${Math.round(box.y)}`;
  out.push(
    `<clipPath id="${clip}"><rect x="${px0 - 4}" y="${py0 - 4}" width="${fmt(px1 - px0 + 8)}" height="${fmt(py1 - py0 + 8)}"/></clipPath>`,
    `<g clip-path="url(#${clip})">`,
  );
  spec.series.forEach((s, i) => {
    if (!s.band) return;
    const d = bandPath(s.points, s.band, sx, sy);
    const color = s.color ?? PALETTE[i % PALETTE.length]!;
    if (d) out.push(`<path d="${d}" fill="${color}" fill-opacity="0.18" stroke="none"/>`);
  });
  spec.series.forEach((s, i) => {
    const color = s.color ?? PALETTE[i % PALETTE.length]!;
    const p = pts[i]!;
    if (p.length === 0) return;
    let d: string;
    if (s.spans) {
      d = '';
      for (let k = 0; k + 1 < p.length; k += 2) d += linePath([p[k]!, p[k + 1]!], sx, sy);
    } else d = linePath(p, sx, sy);
    const dash = s.dash ? ` stroke-dasharray="${s.dash}"` : '';
    const op = s.opacity !== undefined ? ` stroke-opacity="${s.opacity}"` : '';
    if (d)
      out.push(
        `<path d="${d}" fill="none" stroke="${color}" stroke-width="${s.width ?? 1.5}" stroke-linejoin="round" stroke-linecap="round"${dash}${op}/>`,
      );
    if (s.markers && !s.spans) {
      const circles = p
        .filter(([x, y]) => sx.ok(x) && sy.ok(y))
        .map(([x, y]) => `<circle cx="${fmt(sx(x))}" cy="${fmt(sy(y))}" r="2.5" fill="${color}"/>`);
      out.push(...circles);
    }
  });
  for (const v of spec.vlines ?? []) {
    if (!Number.isFinite(v.x)) continue;
    const x = fmt(sx(v.x));
    const c = v.color ?? '#555';
    out.push(
      `<path d="M${x},${py0}V${py1}" stroke="${c}" stroke-width="1.5" stroke-dasharray="${v.dash ?? '5 3'}" fill="none"/>`,
    );
  }
  out.push('</g>');
  for (const v of spec.vlines ?? []) {
    if (!Number.isFinite(v.x)) continue;
    const x = sx(v.x);
    const right = x < (px0 + px1) / 2;
    out.push(
      text(
        right ? x + 4 : x - 4,
        py0 + 12,
        v.label,
        ` font-size="11" fill="${v.color ?? '#555'}" text-anchor="${right ? 'start' : 'end'}"`,
      ),
    );
  }

  // Legend, above the plot at the right, when there are several series.
  const legend = spec.series.map((s, i) => ({ s, i })).filter(({ s, i }) => !s.noLegend && pts[i]!.length > 0);
  if (legend.length > 1 || (legend.length === 1 && spec.series.length > 1)) {
    const y = box.y + m.t - 8;
    let x = px1;
    for (const { s, i } of [...legend].reverse()) {
      const color = s.color ?? PALETTE[i % PALETTE.length]!;
      const dash = s.dash ? ` stroke-dasharray="${s.dash}"` : '';
      x -= s.name.length * 6.4 + 4;
      out.push(text(x, y + 4, s.name, ' font-size="11" fill="#222"'));
      out.push(
        `<path d="M${fmt(x - 24)},${fmt(y)}H${fmt(x - 6)}" stroke="${color}" stroke-width="${Math.max(2, s.width ?? 1.5)}"${dash}/>`,
      );
      x -= 24 + 14;
    }
  }
  out.push('</g>');
  return out.join('');
}

function hash(s: string): number {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (h * 31 + s.charCodeAt(i)) | 0;
  return h;
}

/** A standalone SVG document of the given size around `body`. */
export function svgDocument(width: number, height: number, body: string, title?: string): string {
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}"` +
    ` role="img" font-family="${FONT}">` +
    (title ? `<title>${escapeXml(title)}</title>` : '') +
    `<rect width="${width}" height="${height}" fill="#fff"/>${body}</svg>`
  );
}

/** One panel as a standalone SVG. */
export function lineChart(spec: PanelSpec, width = 900, height = 320): string {
  return svgDocument(width, height, renderPanel(spec, { x: 0, y: 0, w: width, h: height }), spec.title);
}

/** Several panels side by side in one SVG (e.g. κ rep / proj / pred). */
export function panelRow(specs: readonly PanelSpec[], width = 900, height = 320, title?: string): string {
  const w = width / Math.max(1, specs.length);
  const body = specs.map((s, i) => renderPanel(s, { x: i * w, y: 0, w, h: height })).join('');
  return svgDocument(width, height, body, title);
}
