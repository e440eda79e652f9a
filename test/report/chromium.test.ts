// The report opened in headless Chromium (Debian's `chromium`, installed by the set-up script):
// the rendered DOM holds the SVG charts with their paths, and a screenshot shows the series
// drawn in their colours.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { accessSync, constants, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, test } from 'node:test';
import sharp from 'sharp';
import { writeReport } from '../../src/report/index.js';
import { makeRun, removeTempDirs } from './synthetic.js';

after(removeTempDirs);

const BROWSERS = ['chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable'];

function findBrowser(): string | undefined {
  for (const name of BROWSERS) {
    for (const dir of (process.env.PATH ?? '').split(delimiter)) {
      if (!dir) continue;
      const p = join(dir, name);
      try {
        accessSync(p, constants.X_OK);
        return p;
      } catch {
        // not here
      }
    }
  }
  return undefined;
}

function run(bin: string, args: string[]): Promise<{ stdout: string; stderr: string }> {
  return new Promise((res, rej) => {
    execFile(bin, args, { timeout: 120_000, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (err) rej(new Error(`${bin} ${args.join(' ')} failed: ${err.message}\n${stderr.slice(-2000)}`));
      else res({ stdout, stderr });
    });
  });
}

const browser = findBrowser();
const common = (profile: string) => [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--hide-scrollbars',
  `--user-data-dir=${profile}`,
];

test('headless Chromium renders the report: SVG charts in the DOM, coloured lines on screen', async () => {
  assert.ok(
    browser,
    `no headless Chromium on PATH (looked for ${BROWSERS.join(', ')}); scripts/setup.sh installs Debian's chromium`,
  );
  const dir = makeRun({ epochs: 12, stepsPerEpoch: 200, resumeEpoch: 4 });
  const { html } = await writeReport(dir, { png: false });
  const url = pathToFileURL(html).href;
  const profile = mkdtempSync(join(tmpdir(), 'mmoco-chromium-'));
  try {
    // 1. The DOM after load: six charts, each an <svg> with drawn paths.
    const { stdout: dom } = await run(browser!, [...common(profile), '--dump-dom', url]);
    assert.ok(dom.includes('<h1>mmoco report:'), 'the page loaded');
    const figures = [...dom.matchAll(/<figure id="chart-([a-z]+)"[^>]*>([\s\S]*?)<\/figure>/g)];
    assert.deepEqual(
      figures.map((f) => f[1]),
      ['loss', 'lr', 'momentum', 'kappa', 'knn', 'throughput'],
    );
    for (const [, id, body] of figures) {
      assert.equal((body!.match(/<svg/g) ?? []).length, 1, `${id}: one svg`);
      const lines = [
        ...body!.matchAll(
          /<path d="(M[^"]*)" fill="none" stroke="#[0-9a-f]{6}" stroke-width="[\d.]+" stroke-linejoin/g,
        ),
      ];
      assert.ok(lines.length >= 1, `${id}: a series path`);
      for (const l of lines) assert.ok((l[1]!.match(/L/g) ?? []).length >= 5, `${id}: path with data`);
      assert.ok(/<text[^>]*>step<\/text>|<text[^>]*>epoch<\/text>/.test(body!), `${id}: x axis label`);
    }

    // 2. A screenshot of the whole page: not blank, and each series colour is painted.
    const shot = join(profile, 'shot.png');
    await run(browser!, [...common(profile), '--window-size=1000,3000', `--screenshot=${shot}`, url]);
    assert.ok(existsSync(shot), 'screenshot written');
    const { data, info } = await sharp(shot).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    assert.equal(info.width, 1000);
    const stats = await sharp(shot).stats();
    assert.ok(
      stats.channels.slice(0, 3).every((c) => c.stdev > 10),
      'the screenshot is not uniform',
    );
    const count = (hex: string, tol = 24) => {
      const [r, g, b] = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)) as [number, number, number];
      let n = 0;
      for (let i = 0; i < data.length; i += 3) {
        if (Math.abs(data[i]! - r) <= tol && Math.abs(data[i + 1]! - g) <= tol && Math.abs(data[i + 2]! - b) <= tol)
          n++;
      }
      return n;
    };
    const colours = {
      'epoch-mean loss / kNN (red)': '#d62728',
      'lr / κ pred (green)': '#2ca02c',
      'momentum (purple)': '#9467bd',
      'κ proj (orange)': '#ff7f0e',
      'κ rep (blue)': '#1f77b4',
      'resume marker (amber)': '#b8860b',
      'throughput per epoch (navy)': '#08306b',
    };
    for (const [what, hex] of Object.entries(colours)) {
      const n = count(hex);
      assert.ok(n >= 150, `${what} ${hex}: ${n} pixels`);
    }
  } finally {
    rmSync(profile, { recursive: true, force: true });
  }
});
