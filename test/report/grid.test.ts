// The grid report: table.md laid out as the paper's tables (first axis down, the other axes'
// combinations across), mean ± std over seeds, and grid.html opened in headless Chromium (as
// chromium.test.ts does): the accuracy-against-n and -m charts, the overlaid loss and κ curves.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { accessSync, constants, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, test } from 'node:test';
import sharp from 'sharp';
import { gridMarkdown, seedStat, writeGridReport, type GridTable, type GridTableCell } from '../../src/report/index.js';
import { PALETTE } from '../../src/report/svg.js';
import { removeTempDirs, tempDir, writeRun } from './synthetic.js';

after(removeTempDirs);

/** A 3 (n) × 2 (method) × 2 (m) grid with two seeds, accuracies from a formula. */
function table(): GridTable {
  const cells: GridTableCell[] = [];
  for (const n of [1, 4, 8])
    for (const method of ['mmoco', 'mbyol'])
      for (const m of [1, 2]) {
        const base = 60 + n - m + (method === 'mbyol' ? -1 : 0);
        const name = `numChunks-${n}_method-${method}_targetChunks-${m}`;
        cells.push({
          name,
          axes: { numChunks: n, method, targetChunks: m },
          seeds: [0, 1],
          runs: [`${name}_seed-0`, `${name}_seed-1`],
          knnTop1: seedStat([base, base + 1]),
          linearTop1: seedStat([base - 10, base - 9]),
          finetuneTop1: seedStat([base + 20, base + 22]),
          imagesSeen: 15360,
          epochs: 3,
          imagesPerSec: 100 + n,
          wallS: 150,
          flopsPerImage: 2.5e8,
        });
      }
  return {
    grid: 'synthetic',
    description: 'a made-up grid',
    axes: [
      { key: 'numChunks', values: [1, 4, 8] },
      { key: 'method', values: ['mmoco', 'mbyol'] },
      { key: 'targetChunks', values: [1, 2] },
    ],
    budget: { kind: 'images', value: 15000, epochs: 3, imagesPerEpoch: 5120, note: '15000 images per cell → 3 epochs' },
    seeds: 2,
    evaluation: 'kNN and linear probe',
    cells,
  };
}

test('seedStat: mean and sample standard deviation; one seed has no std', () => {
  const s = seedStat([1, 2, 3, 6]);
  assert.equal(s.mean, 3);
  assert.ok(Math.abs(s.std! - Math.sqrt(14 / 3)) < 1e-12);
  assert.deepEqual(seedStat([5]), { mean: 5, std: null, values: [5] });
});

test('table.md: the first axis down the rows, the other axes across, mean ± std per cell', () => {
  const md = gridMarkdown(table());
  const lines = md.split('\n');
  const head = lines.find((l) => l.startsWith('| n |'))!;
  // 4 column groups (method × m) × 3 metrics, plus the row label
  assert.equal(head.split('|').length - 2, 1 + 4 * 3);
  assert.match(head, /\| M-MoCo, m = 1 Fine-tune \| M-MoCo, m = 1 Linear \| M-MoCo, m = 1 kNN \|/);
  const row8 = lines
    .find((l) => l.startsWith('| 8 |'))!
    .split('|')
    .map((s) => s.trim());
  // n = 8, M-MoCo, m = 1: base 67 → fine-tune mean 88 (87, 89), std √2; linear 57.5 ± 0.71; kNN 67.5 ± 0.71
  assert.deepEqual(row8.slice(2, 5), ['88.00 ± 1.41', '57.50 ± 0.71', '67.50 ± 0.71']);
  // M-BYOL, m = 2: base 65
  assert.deepEqual(row8.slice(11, 14), ['86.00 ± 1.41', '55.50 ± 0.71', '65.50 ± 0.71']);
  assert.match(md, /Budget: 15000 images per cell → 3 epochs\. Seeds: 2 \(mean ± sample std\)/);
  // every cell once in the cost table, with its images seen
  assert.equal(lines.filter((l) => / \| 15360 \| 3 \| /.test(l)).length, 12);
});

const BROWSERS = ['chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable'];

function findBrowser(): string | undefined {
  for (const name of BROWSERS) {
    for (const dir of (process.env.PATH ?? '').split(delimiter)) {
      if (!dir) continue;
      try {
        accessSync(join(dir, name), constants.X_OK);
        return join(dir, name);
      } catch {
        // not here
      }
    }
  }
  return undefined;
}

function run(bin: string, args: string[]): Promise<string> {
  return new Promise((res, rej) => {
    execFile(bin, args, { timeout: 120_000, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (err) rej(new Error(`${bin} failed: ${err.message}\n${stderr.slice(-2000)}`));
      else res(stdout);
    });
  });
}

test('grid.html in headless Chromium: top-1 against n and m, loss and κ of every cell overlaid', async () => {
  const browser = findBrowser();
  assert.ok(browser, `no headless Chromium on PATH (looked for ${BROWSERS.join(', ')}); scripts/setup.sh installs it`);
  const t = table();
  const out = tempDir('mmoco-grid-');
  for (const c of t.cells) {
    const dir = join(out, 'cells', c.runs[0]!);
    mkdirSync(dir, { recursive: true });
    writeRun(dir, { epochs: 3, stepsPerEpoch: 40, kappa: c.axes.numChunks !== 1 });
  }
  const paths = await writeGridReport(out, t);
  assert.deepEqual(JSON.parse(readFileSync(paths.json, 'utf8')), t);
  assert.equal(readFileSync(paths.md, 'utf8'), gridMarkdown(t));

  const profile = mkdtempSync(join(tmpdir(), 'mmoco-chromium-'));
  const common = ['--headless', '--no-sandbox', '--disable-gpu', '--hide-scrollbars', `--user-data-dir=${profile}`];
  const url = pathToFileURL(paths.html).href;
  try {
    const dom = await run(browser!, [...common, '--dump-dom', url]);
    assert.ok(dom.includes('<h1>mmoco ablation grid: synthetic</h1>'), 'the page loaded');
    const figures = [...dom.matchAll(/<figure id="chart-([a-zA-Z-]+)"[^>]*>([\s\S]*?)<\/figure>/g)];
    assert.deepEqual(
      figures.map((f) => f[1]),
      ['acc-numChunks', 'acc-targetChunks', 'loss', 'kappa'],
    );
    const paths = (body: string): string[] =>
      [...body.matchAll(/<path d="(M[^"]*)" fill="none" stroke="#[0-9a-f]{6}"/g)].map((m) => m[1]!);
    const [accN, accM, loss, kappa] = figures.map((f) => f[2]!);
    // against n: 3 panels (fine-tune, linear, kNN) × 4 lines (method × m), each through the 3 values of n
    assert.equal(paths(accN!).length, 12);
    for (const p of paths(accN!)) assert.equal((p.match(/L/g) ?? []).length, 2, 'a line through n = 1, 4, 8');
    // against m: 3 panels × 6 lines (n × method), each through m = 1, 2
    assert.equal(paths(accM!).length, 18);
    assert.match(accN!, /Figure 3\(b\)/);
    assert.match(accM!, /Figure 4/);
    // one loss curve per cell; κ for the 8 cells with n > 1, in each of the 3 panels
    assert.equal(paths(loss!).length, 12);
    assert.equal(paths(kappa!).length, 3 * 8);
    for (const p of paths(loss!)) assert.ok((p.match(/L/g) ?? []).length >= 100, 'a loss curve with data');
    assert.match(dom, /<td>88\.00 ± 1\.41<\/td>/);

    const shot = join(profile, 'shot.png');
    await run(browser!, [...common, '--window-size=1000,2600', `--screenshot=${shot}`, url]);
    const { data } = await sharp(shot).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    const count = (hex: string, tol = 24): number => {
      const [r, g, b] = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)) as [number, number, number];
      let n = 0;
      for (let i = 0; i < data.length; i += 3)
        if (Math.abs(data[i]! - r) <= tol && Math.abs(data[i + 1]! - g) <= tol && Math.abs(data[i + 2]! - b) <= tol)
          n++;
      return n;
    };
    // the first four series colours (the four lines of the n chart) are painted
    for (const hex of PALETTE.slice(0, 4)) assert.ok(count(hex) >= 150, `${hex}: ${count(hex)} pixels`);
  } finally {
    rmSync(profile, { recursive: true, force: true });
  }
});
