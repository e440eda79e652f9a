// writeReport on synthetic run folders: the HTML is self-contained and has its charts, the PNGs
// are real images, odd logs (resume, stop, n = 1, truncated, empty) are handled.
import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import sharp from 'sharp';
import { parseMetrics, writeReport } from '../../src/report/index.js';
import { makeRun, removeTempDirs, tempDir } from './synthetic.js';

after(removeTempDirs);

/** The `<svg>…</svg>` blocks of a page, keyed by their figure's data-chart. */
function charts(html: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of html.matchAll(/<figure id="chart-[^"]*" data-chart="([^"]+)">([\s\S]*?)<\/figure>/g))
    out.set(m[1]!, m[2]!);
  return out;
}

/** The `d` of every data path (a stroked line of a series) in an SVG. */
function dataPaths(svg: string): string[] {
  return [
    ...svg.matchAll(/<path d="(M[^"]*)" fill="none" stroke="#[0-9a-f]{6}" stroke-width="[\d.]+" stroke-linejoin/g),
  ].map((m) => m[1]!);
}

const vertices = (d: string) => (d.match(/[ML]/g) ?? []).length;

test('pretrain run with a resume and κ: self-contained HTML with every chart, and PNGs', async () => {
  const dir = makeRun({ epochs: 12, stepsPerEpoch: 40, resumeEpoch: 5 });
  const { html, pngs } = await writeReport(dir);
  assert.equal(html, join(dir, 'report.html'));
  const page = readFileSync(html, 'utf8');

  // self-contained: no URL anywhere, no external script/style/font/image
  assert.ok(!/\b(src|href)\s*=\s*["']?\s*(https?:)?\/\//i.test(page), 'no remote src/href');
  assert.ok(!/https?:\/\//.test(page), 'no URL at all');
  assert.ok(
    !/<script|<link|@import|url\((?!#)/i.test(page),
    'no scripts, links, imports or url() other than fragment refs',
  );

  const c = charts(page);
  assert.deepEqual([...c.keys()], ['loss', 'lr', 'momentum', 'kappa', 'knn', 'throughput']);
  const ids = [...page.matchAll(/ id="([^"]+)"/g)].map((m) => m[1]);
  assert.equal(new Set(ids).size, ids.length, 'element ids are unique in the page');
  for (const ref of page.matchAll(/url\(#([^)]+)\)/g)) assert.ok(ids.includes(ref[1]), `url(#${ref[1]}) resolves`);
  assert.equal((page.match(/<svg/g) ?? []).length, 6, 'one <svg per chart');
  for (const [id, svg] of c) {
    const paths = dataPaths(svg);
    assert.ok(paths.length >= 1 && paths.every((d) => vertices(d) >= 2), `${id} has drawn paths`);
    assert.ok(!svg.includes('no data'), `${id} has data`);
    assert.ok(/<title>[^<]+<\/title>/.test(svg) && /font-size="14" font-weight="bold"/.test(svg), `${id} title`);
  }
  // loss: per-step line plus an epoch-mean line with one segment per epoch, and a legend
  const loss = dataPaths(c.get('loss')!);
  assert.equal(loss.length, 2);
  assert.equal(vertices(loss[0]!), 12 * 40);
  assert.equal((loss[1]!.match(/M/g) ?? []).length, 12);
  assert.ok(c.get('loss')!.includes('>epoch mean</text>'));
  // κ: three panels (rep / proj / pred), one point per epoch, log axes
  assert.equal(dataPaths(c.get('kappa')!).length, 3);
  for (const d of dataPaths(c.get('kappa')!)) assert.equal(vertices(d), 12);
  for (const t of ['(a) κ rep', '(b) κ proj', '(c) κ pred']) assert.ok(c.get('kappa')!.includes(t));
  // the resume is marked on the step charts and in the header; the superseded steps are gone
  for (const id of ['loss', 'lr', 'momentum', 'throughput'])
    assert.ok(c.get(id)!.includes('>resumed (epoch 5)</text>'), id);
  assert.ok(page.includes('Resumed 1×'));
  // header numbers
  assert.ok(page.includes('best kNN top-1') && page.includes('53.00%'), 'best kNN = 20 + 3·11');
  assert.ok(page.includes('images/s') && page.includes('wall time'));
  assert.ok(/final loss<\/div><div class="v">[\d.]+</.test(page));
  assert.ok(page.includes('vit_tiny') && page.includes('numChunks') && page.includes('data.root'));

  // PNGs: one per chart, PNG signature, 2× the SVG size
  assert.deepEqual(
    pngs.map((p) => p.slice(join(dir, 'report').length + 1)),
    ['loss.png', 'lr.png', 'momentum.png', 'kappa.png', 'knn.png', 'throughput.png'],
  );
  for (const p of pngs) {
    const buf = readFileSync(p);
    assert.deepEqual([...buf.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], p);
    const meta = await sharp(p).metadata();
    assert.equal(meta.format, 'png');
    assert.equal(meta.width, 1800);
    assert.equal(meta.height, 640);
    // the title renders: dark glyph pixels in the band above the plot, middle third
    const band = await sharp(p).extract({ left: 600, top: 8, width: 600, height: 36 }).greyscale().raw().toBuffer();
    assert.ok(band.filter((v) => v < 80).length > 200, `${p}: title text rendered`);
    const st = await sharp(p).stats();
    assert.ok(!st.isOpaque || st.channels.some((ch) => ch.stdev > 5), `${p} is not blank`);
  }
});

test('kNN every 5 epochs: the line joins the evaluated epochs; per-epoch table; κ bands; planned epochs', async () => {
  const dir = makeRun({ epochs: 12, stepsPerEpoch: 10, knnEvery: 5 });
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ command: 'pretrain', model: 'vit_tiny' }));
  const { html } = await writeReport(dir, { png: false, maxPoints: 50 });
  const page = readFileSync(html, 'utf8');
  const knn = dataPaths(charts(page).get('knn')!);
  assert.equal(knn.length, 1);
  assert.equal((knn[0]!.match(/M/g) ?? []).length, 1, 'one connected line');
  assert.equal(vertices(knn[0]!), 3, 'epochs 4, 9 and 11');
  // κ: a shaded min–max band behind each panel's line
  assert.equal(
    (
      charts(page)
        .get('kappa')!
        .match(/fill-opacity="0.18"/g) ?? []
    ).length,
    3,
  );
  // the step series honour maxPoints
  for (const d of dataPaths(charts(page).get('lr')!)) assert.ok(vertices(d) <= 50);
  assert.ok(page.includes('drawn as the min and max of each of 24 buckets'));
  // per-epoch table: 12 rows, kNN only where evaluated
  const table = page.slice(page.indexOf('<table class="epochs">'), page.indexOf('</table></details>'));
  assert.equal((table.match(/<tr><td>/g) ?? []).length, 12);
  assert.ok(table.includes('<th>κ rep</th>') && table.includes('<th>kNN top-1 %</th>'));
  assert.ok(table.includes('<tr><td>4</td><td>1.474</td><td>32.00</td>'));
  // the planned epoch count comes from the log's start record when the config lacks it
  assert.ok(/epochs<\/div><div class="v">12 \/ 12</.test(page));
});

test('the wall time leaves out the downtime before a resume', () => {
  const dir = makeRun({ epochs: 4, stepsPerEpoch: 10, resumeEpoch: 2 });
  const log = parseMetrics(readFileSync(join(dir, 'metrics.jsonl'), 'utf8'));
  assert.equal(log.resumes.length, 1);
  assert.equal(log.badLines, 1, 'the half line the kill left mid-file');
  assert.equal(log.steps.length, 40);
  assert.deepEqual(
    log.steps.map((s) => s.step),
    Array.from({ length: 40 }, (_, i) => i),
  );
  assert.ok(log.superseded >= 6);
  assert.ok(!log.steps.some((s) => s.loss === 99), 'the killed run’s superseded steps are gone');
  // from the start record: 25 steps of 1 s before the kill, 20 after the resume
  assert.equal(log.wallSeconds, 25 + 20);
});

test('n = 1 (no κ): the κ chart says "no data", no kappa.png, no crash', async () => {
  const dir = makeRun({ epochs: 3, stepsPerEpoch: 20, kappa: false });
  const { html, pngs } = await writeReport(dir);
  const c = charts(readFileSync(html, 'utf8'));
  assert.ok(c.get('kappa')!.includes('no data'));
  assert.equal(dataPaths(c.get('kappa')!).length, 0);
  assert.ok(!pngs.some((p) => p.endsWith('kappa.png')));
  assert.ok(pngs.some((p) => p.endsWith('loss.png')));
});

test('linear probe run: top-1/top-5 chart instead of kNN, momentum and κ', async () => {
  const dir = makeRun({ command: 'linprobe', epochs: 5, stepsPerEpoch: 20 });
  const { html } = await writeReport(dir, { png: false });
  const page = readFileSync(html, 'utf8');
  const c = charts(page);
  assert.deepEqual([...c.keys()], ['loss', 'lr', 'accuracy', 'throughput']);
  assert.equal(dataPaths(c.get('accuracy')!).length, 2);
  assert.ok(c.get('accuracy')!.includes('>top-5</text>'));
  assert.ok(page.includes('best top-1') && page.includes('48.00%') && page.includes('best top-5'));
  assert.ok(!existsSync(join(dir, 'report')), 'png: false writes no PNGs');
});

test('a NaN stop is shown prominently and marked; a truncated last line is tolerated', async () => {
  const dir = makeRun({ epochs: 4, stepsPerEpoch: 25, stopStep: 73, truncate: true });
  const out = join(tempDir('mmoco-report-out-'), 'r.html');
  const { html, pngs } = await writeReport(dir, { out });
  assert.equal(html, out);
  assert.ok(pngs.every((p) => p.startsWith(join(out, '..', 'r'))));
  const page = readFileSync(html, 'utf8');
  assert.ok(page.includes('<div class="banner bad">Run stopped at step 73 (epoch 2): loss NaN</div>'));
  assert.ok(charts(page).get('loss')!.includes('stop: loss NaN'));
  assert.ok(page.includes('last line truncated'));
});

test('missing, empty and record-less metrics files are errors naming the path', async () => {
  const dir = tempDir();
  const path = join(dir, 'metrics.jsonl');
  await assert.rejects(writeReport(dir), (e: Error) => e.message.includes(path) && /no such file/.test(e.message));
  writeFileSync(path, '');
  await assert.rejects(writeReport(dir), (e: Error) => e.message.includes(path) && /empty/.test(e.message));
  writeFileSync(path, '\n{"kind":"hello"}\n');
  await assert.rejects(
    writeReport(dir),
    (e: Error) => e.message.includes(path) && /no step\/epoch\/eval/.test(e.message),
  );
  // a metrics file but no config.json: still a report
  writeFileSync(path, '{"kind":"step","epoch":0,"step":0,"loss":1}\n{"kind":"step","epoch":0,"step":1,"loss":0.5}\n');
  const { html } = await writeReport(dir, { png: false });
  assert.ok(readFileSync(html, 'utf8').includes('no config.json'));
});

test('odd values: bare NaN, nulls, per-epoch step counters, unknown fields', () => {
  const log = parseMetrics(
    [
      '{"kind":"step","epoch":0,"step":0,"loss":2,"kappaRep":null,"foo":{"a":1}}',
      '{"kind":"step","epoch":0,"step":1,"loss":NaN}',
      '{"kind":"step","epoch":1,"step":0,"loss":1.5}',
      '{"kind":"step","epoch":1,"step":1,"loss":1.2}',
      '[1,2]',
      '{"kind":"epoch","epoch":0,"loss":1.9,"knnTop1":null}',
      '{"kind":"stop","reason":{"nan":true}}',
    ].join('\n'),
  );
  assert.equal(log.stepsAreGlobal, false);
  assert.deepEqual(
    log.steps.map((s) => s.x),
    [0, 1, 2, 3],
  );
  assert.ok(Number.isNaN(log.steps[1]!.loss!));
  assert.ok(Number.isNaN(log.steps[0]!.kappaRep!));
  assert.equal(log.badLines, 1);
  assert.equal(log.stops[0]!.reason, '{"nan":true}');
  assert.equal(log.stops[0]!.x, 3);
});

test('a 100k-step run stays small: at most 2000 points per step series', async () => {
  const dir = makeRun({ epochs: 100, stepsPerEpoch: 1000 });
  const { html } = await writeReport(dir, { png: false });
  const page = readFileSync(html, 'utf8');
  for (const [id, svg] of charts(page)) {
    for (const d of dataPaths(svg)) assert.ok(vertices(d) <= 2000, `${id}: ${vertices(d)} points`);
  }
  const loss = dataPaths(charts(page).get('loss')!)[0]!;
  assert.ok(vertices(loss) > 1500, 'still detailed');
  const size = statSync(html).size;
  assert.ok(size < 400_000, `report is ${size} bytes`);
});

test('report size for a 10k-step run', async () => {
  const dir = makeRun({ epochs: 50, stepsPerEpoch: 200 });
  const { html, pngs } = await writeReport(dir);
  const size = statSync(html).size;
  const pngBytes = pngs.reduce((a, p) => a + statSync(p).size, 0);
  console.log(`10k-step report: report.html ${size} bytes, ${pngs.length} PNGs ${pngBytes} bytes`);
  assert.ok(size < 400_000);
});

test('an extended run: the extend record sets the planned epochs and is marked on the step and epoch charts', async () => {
  const lines = [
    { kind: 'start', epochs: 2, time: 0 },
    ...[0, 1, 2, 3].map((s) => ({ kind: 'step', epoch: s >> 1, step: s, loss: 3 - s / 10, time: 1000 * (s + 1) })),
    { kind: 'epoch', epoch: 0, epochs: 2, loss: 2.95, time: 2500 },
    { kind: 'epoch', epoch: 1, epochs: 2, loss: 2.75, time: 4500 },
    { kind: 'resume', epoch: 2, step: 4, time: 100_000 },
    { kind: 'extend', epoch: 2, step: 4, fromEpochs: 2, toEpochs: 3, time: 100_000 },
    ...[4, 5].map((s) => ({ kind: 'step', epoch: 2, step: s, loss: 3 - s / 10, time: 100_000 + 1000 * (s - 3) })),
    { kind: 'epoch', epoch: 2, epochs: 3, loss: 2.55, time: 102_500 },
  ];
  const log = parseMetrics(lines.map((l) => JSON.stringify(l)).join('\n'));
  assert.deepEqual(log.extensions, [{ epoch: 2, step: 4, fromEpochs: 2, toEpochs: 3, time: 100_000, x: 4 }]);
  assert.equal(log.plannedEpochs, 3);
  // before an epoch of the new length is done, the extend record alone says so
  assert.equal(
    parseMetrics(
      lines
        .slice(0, -1)
        .map((l) => JSON.stringify(l))
        .join('\n'),
    ).plannedEpochs,
    3,
  );
  assert.equal(
    parseMetrics(
      lines
        .slice(0, 7)
        .map((l) => JSON.stringify(l))
        .join('\n'),
    ).plannedEpochs,
    2,
  );
  const dir = tempDir();
  writeFileSync(join(dir, 'metrics.jsonl'), lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ command: 'pretrain', epochs: 3 }));
  const r = await writeReport(dir, { png: false });
  const html = readFileSync(r.html, 'utf8');
  const c = charts(html);
  assert.match(c.get('loss')!, /epochs 2 → 3/);
  assert.match(html, /completed; epochs 2 → 3 at step 4/);
  assert.match(html, /3 \/ 3|3<\/[^>]+>\s*\/\s*3/);
  // a resume from before the extension drops it (the resumed run logs it again if it extends)
  const cut = parseMetrics(
    [...lines.slice(0, 8), { kind: 'resume', epoch: 1, step: 2, time: 200_000 }]
      .map((l) => JSON.stringify(l))
      .join('\n'),
  );
  assert.equal(cut.extensions.length, 0);
});
