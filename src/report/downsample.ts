// Downsampling of long step series for charts: min/max per bucket keeps every spike (a loss
// blow-up, a κ collapse) visible while bounding the number of points.

import type { Point } from './svg.js';

/**
 * At most `maxPoints` points (at least 2): the series is cut into maxPoints/2 buckets of
 * consecutive points and each bucket contributes its minimum and its maximum, in x order. The
 * first and last points are kept. Non-finite y values are dropped first. Series that are already
 * short are returned unchanged (minus non-finite values).
 */
export function downsampleMinMax(points: readonly Point[], maxPoints = 2000): Point[] {
  const pts = points.filter((p) => Number.isFinite(p[0]) && Number.isFinite(p[1]));
  const limit = Math.max(2, Math.floor(maxPoints));
  if (pts.length <= limit) return pts;
  const first = pts[0]!;
  const last = pts[pts.length - 1]!;
  const inner = pts.slice(1, -1);
  const buckets = Math.max(1, Math.floor((limit - 2) / 2));
  const out: Point[] = [first];
  for (let b = 0; b < buckets; b++) {
    const i0 = Math.floor((b * inner.length) / buckets);
    const i1 = Math.floor(((b + 1) * inner.length) / buckets);
    if (i1 <= i0) continue;
    let lo = i0;
    let hi = i0;
    for (let i = i0 + 1; i < i1; i++) {
      if (inner[i]![1] < inner[lo]![1]) lo = i;
      if (inner[i]![1] > inner[hi]![1]) hi = i;
    }
    if (lo === hi) out.push(inner[lo]!);
    else if (lo < hi) out.push(inner[lo]!, inner[hi]!);
    else out.push(inner[hi]!, inner[lo]!);
  }
  out.push(last);
  return out;
}

/** At most `maxPoints` points: the mean x and mean y of each bucket of consecutive finite points. */
export function downsampleMean(points: readonly Point[], maxPoints = 2000): Point[] {
  const pts = points.filter((p) => Number.isFinite(p[0]) && Number.isFinite(p[1]));
  const limit = Math.max(1, Math.floor(maxPoints));
  if (pts.length <= limit) return pts;
  const out: Point[] = [];
  for (let b = 0; b < limit; b++) {
    const i0 = Math.floor((b * pts.length) / limit);
    const i1 = Math.floor(((b + 1) * pts.length) / limit);
    if (i1 <= i0) continue;
    let sx = 0;
    let sy = 0;
    for (let i = i0; i < i1; i++) {
      sx += pts[i]![0];
      sy += pts[i]![1];
    }
    out.push([sx / (i1 - i0), sy / (i1 - i0)]);
  }
  return out;
}
