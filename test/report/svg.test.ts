// Chart primitives: nice ticks, log ticks, tick labels, paths and min/max downsampling.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  bandPath,
  downsampleMean,
  downsampleMinMax,
  formatTick,
  lineChart,
  linePath,
  linearScale,
  logScale,
  logTicks,
  niceNum,
  niceTicks,
  type Point,
} from '../../src/report/index.js';

test('niceNum rounds to 1, 2, 5 × 10^k', () => {
  assert.equal(niceNum(0.63, true), 0.5);
  assert.equal(niceNum(0.73, true), 1);
  assert.equal(niceNum(1.4, true), 1);
  assert.equal(niceNum(2.9, true), 2);
  assert.equal(niceNum(6.9, true), 5);
  assert.equal(niceNum(7.1, true), 10);
  assert.equal(niceNum(1.01, false), 2);
  assert.equal(niceNum(4.9, false), 5);
  assert.equal(niceNum(5.1, false), 10);
  assert.equal(niceNum(340, false), 500);
});

test('niceTicks covers the range with round steps and no float noise', () => {
  const t = niceTicks(0.13, 0.87, 5);
  assert.equal(t.step, 0.2);
  assert.deepEqual(t.ticks, [0, 0.2, 0.4, 0.6, 0.8, 1]);
  assert.ok(t.min <= 0.13 && t.max >= 0.87);

  const s = niceTicks(0, 9999, 5);
  assert.equal(s.step, 2000);
  assert.deepEqual(s.ticks, [0, 2000, 4000, 6000, 8000, 10000]);

  const lr = niceTicks(0, 1.5e-4, 4);
  assert.deepEqual(lr.ticks, [0, 5e-5, 1e-4, 1.5e-4]);

  const neg = niceTicks(-3.2, 7.9, 5);
  assert.deepEqual(neg.ticks, [-4, -2, 0, 2, 4, 6, 8]);

  // momentum 0.99 .. 0.999: small spans away from zero
  const m = niceTicks(0.99, 0.999, 5);
  assert.equal(m.step, 0.002);
  assert.equal(m.ticks[0], 0.99);
  assert.equal(m.ticks[m.ticks.length - 1], 1);
  for (const v of m.ticks) assert.equal(v, Number(v.toFixed(3)));

  // every tick is a whole multiple of the step, and the steps are equal
  for (const [lo, hi] of [
    [3.7, 81.2],
    [0.0012, 0.0049],
    [12345, 98765],
    [-0.5, 0.5],
  ] as const) {
    const r = niceTicks(lo, hi, 6);
    assert.ok(r.ticks[0]! <= lo && r.ticks[r.ticks.length - 1]! >= hi, `${lo}..${hi}: ${r.ticks}`);
    assert.ok(r.ticks.length >= 3 && r.ticks.length <= 13, `${r.ticks}`);
    for (let i = 1; i < r.ticks.length; i++)
      assert.ok(Math.abs(r.ticks[i]! - r.ticks[i - 1]! - r.step) < r.step * 1e-9);
  }
});

test('niceTicks: degenerate ranges and integer (epoch) axes', () => {
  const one = niceTicks(5, 5, 5);
  assert.ok(one.min < 5 && one.max > 5 && one.ticks.length >= 2);
  const zero = niceTicks(0, 0);
  assert.ok(zero.min < 0 && zero.max > 0);
  const bad = niceTicks(NaN, Infinity);
  assert.deepEqual([bad.min, bad.max], [0, 1]);
  const ep = niceTicks(0, 3, 8, true);
  assert.equal(ep.step, 1);
  assert.deepEqual(ep.ticks, [0, 1, 2, 3]);
});

test('logTicks: decades, with 2 and 5 over a short range', () => {
  const wide = logTicks(3, 4500);
  assert.deepEqual(wide.ticks, [3, 10, 30, 100, 300, 1000, 3000]);
  assert.deepEqual([wide.min, wide.max], [2, 5000]);
  const two = logTicks(3, 450);
  assert.deepEqual(two.ticks, [3, 10, 30, 100, 300]);
  const many = logTicks(1e-3, 1e5);
  assert.deepEqual(many.ticks, [1e-3, 1e-2, 1e-1, 1, 10, 100, 1000, 1e4, 1e5]);
  const short = logTicks(12, 48);
  assert.deepEqual(short.ticks, [10, 20, 50]);
  assert.ok(short.min === 10 && short.max === 50 && short.minor.includes(30));
  const pred = logTicks(52, 180);
  assert.deepEqual(pred.ticks, [50, 100, 200]);
  const narrow = logTicks(40, 55);
  assert.ok(narrow.ticks.length >= 1 && narrow.min <= 40 && narrow.max >= 55);
});

test('formatTick: k/M for steps, exponents for small values', () => {
  assert.equal(formatTick(20000, 10000), '20k');
  assert.equal(formatTick(1500000, 500000), '1.5M');
  assert.equal(formatTick(0), '0');
  assert.equal(formatTick(2e-4), '2e-4');
  assert.equal(formatTick(0.25), '0.25');
  assert.equal(formatTick(0.998), '0.998');
  assert.equal(formatTick(500), '500');
});

test('linePath: scaled coordinates, gaps at non-finite and non-positive (log) values', () => {
  const sx = linearScale(0, 10, 0, 100);
  const sy = linearScale(0, 1, 50, 0);
  assert.equal(
    linePath(
      [
        [0, 0],
        [5, 0.5],
        [6, NaN],
        [10, 1],
      ],
      sx,
      sy,
    ),
    'M0,50L50,25M100,0',
  );
  const ly = logScale(1, 100, 100, 0);
  assert.equal(ly(10), 50);
  assert.equal(
    linePath(
      [
        [0, 1],
        [5, -1],
        [10, 100],
      ],
      sx,
      ly,
    ),
    'M0,100M100,0',
  );
});

test('bandPath: one closed polygon per run of drawable points (hi edge forward, lo edge back)', () => {
  const sx = linearScale(0, 4, 0, 40);
  const sy = linearScale(0, 10, 100, 0);
  const d = bandPath(
    [
      [0, 5],
      [1, 5],
      [2, 5],
      [3, 5],
      [4, 5],
    ],
    [
      [4, 6],
      [3, 7],
      [NaN, NaN],
      [2, 8],
      [1, 9],
    ],
    sx,
    sy,
  );
  assert.equal(d, 'M0,40L10,30L10,70L0,60ZM30,20L40,10L40,90L30,80Z');
  assert.equal(bandPath([[0, 1]], [[0.5, 2]], sx, sy), '', 'a single point has no area');
});

function series(n: number, f: (i: number) => number): Point[] {
  return Array.from({ length: n }, (_, i) => [i, f(i)] as Point);
}

test('downsampleMinMax keeps the global and every bucket min/max, in x order, within the limit', () => {
  let s = 7;
  const rand = () => (s = (s * 16807) % 2147483647) / 2147483647 - 0.5;
  const pts = series(100_000, (i) => Math.sin(i / 3000) + 0.1 * rand());
  pts[31_337] = [31_337, 50]; // a spike
  pts[77_777] = [77_777, -40]; // a dip
  const out = downsampleMinMax(pts, 2000);
  assert.ok(out.length <= 2000 && out.length >= 1900, `${out.length}`);
  assert.deepEqual(out[0], pts[0]);
  assert.deepEqual(out[out.length - 1], pts[pts.length - 1]);
  for (let i = 1; i < out.length; i++) assert.ok(out[i]![0] > out[i - 1]![0], 'x increasing');
  assert.ok(
    out.some((p) => p[0] === 31_337 && p[1] === 50),
    'spike kept',
  );
  assert.ok(
    out.some((p) => p[0] === 77_777 && p[1] === -40),
    'dip kept',
  );
  const ys = out.map((p) => p[1]);
  assert.equal(Math.max(...ys), 50);
  assert.equal(Math.min(...ys), -40);
  // every bucket's extremes survive: over any 1% window (widened by one bucket, ~100 points, at
  // each side since buckets straddle window edges) the kept points reach the data's max and min
  for (let w = 0; w < 100; w++) {
    const lo = w * 1000;
    const win = pts.slice(lo, lo + 1000).map((p) => p[1]);
    const kept = out.filter((p) => p[0] >= lo - 101 && p[0] < lo + 1000 + 101).map((p) => p[1]);
    assert.ok(Math.max(...kept) >= Math.max(...win), `window ${w}`);
    assert.ok(Math.min(...kept) <= Math.min(...win), `window ${w}`);
  }
  // and at bucket resolution exactly: each of the 999 buckets contributes its own max and min
  const inner = pts.slice(1, -1);
  for (let b = 0; b < 999; b += 37) {
    const i0 = Math.floor((b * inner.length) / 999);
    const i1 = Math.floor(((b + 1) * inner.length) / 999);
    const ys = inner.slice(i0, i1).map((p) => p[1]);
    const kept = out.filter((p) => p[0] >= i0 + 1 && p[0] < i1 + 1).map((p) => p[1]);
    assert.deepEqual(
      kept.sort((a, c) => a - c),
      [Math.min(...ys), Math.max(...ys)],
      `bucket ${b}`,
    );
  }
});

test('downsampleMinMax: short series unchanged, non-finite dropped; downsampleMean bounds the count', () => {
  const short = series(10, (i) => i * i);
  assert.deepEqual(downsampleMinMax(short, 2000), short);
  const withNaN: Point[] = [
    [0, 1],
    [1, NaN],
    [2, Infinity],
    [3, 2],
  ];
  assert.deepEqual(downsampleMinMax(withNaN), [
    [0, 1],
    [3, 2],
  ]);
  const m = downsampleMean(
    series(10_000, (i) => i),
    100,
  );
  assert.equal(m.length, 100);
  assert.deepEqual(m[0], [49.5, 49.5]);
});

test('lineChart: one SVG with title, axis labels, ticks, legend and a path; empty data says so', () => {
  const svg = lineChart({
    title: 'Loss & more',
    xLabel: 'step',
    yLabel: 'loss',
    series: [
      { name: 'a', points: series(50, (i) => 1 / (i + 1)) },
      { name: 'b', points: series(50, (i) => 0.5 / (i + 1)), dash: '4 3' },
    ],
    vlines: [{ x: 20, label: 'resumed' }],
  });
  assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg" width="900" height="320"/);
  assert.ok(svg.includes('Loss &amp; more'));
  assert.ok(svg.includes('>step</text>') && svg.includes('>loss</text>') && svg.includes('>resumed</text>'));
  assert.ok(svg.includes('>a</text>') && svg.includes('>b</text>'), 'legend');
  const paths = [...svg.matchAll(/<path d="(M[^"]+)" fill="none" stroke="#/g)];
  assert.equal(paths.length, 2, 'one path per series');
  assert.ok(paths.every((p) => (p[1]!.match(/L/g) ?? []).length >= 40));
  const empty = lineChart({
    title: 'κ',
    xLabel: 'epoch',
    yLabel: 'κ',
    series: [{ name: 'x', points: [[0, NaN]] }],
    yLog: true,
  });
  assert.ok(empty.includes('no data'));
  assert.ok(!/<path d="M[^"]+" fill="none" stroke-width/.test(empty));
});
