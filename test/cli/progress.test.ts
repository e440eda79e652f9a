// Progress output: the epoch's ETA counts only the steps this process ran (right after a resume),
// and without a TTY a line is written every 10 % of an epoch with images/s and ETA.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EpochEta, ProgressBar, stepReporter } from '../../src/cli/progress.js';

/** A non-TTY stream that keeps what is written. */
function sink(): NodeJS.WriteStream & { text: string } {
  const s = {
    isTTY: false,
    text: '',
    write(chunk: string): boolean {
      s.text += chunk;
      return true;
    },
  };
  return s as unknown as NodeJS.WriteStream & { text: string };
}

test('EpochEta: after a resume at step 100 of 200, the ETA comes from the steps run since', () => {
  let now = 0;
  const eta = new EpochEta(() => now);
  // a resumed process: its first step in epoch 3 is step 101 of 200; 2 s per step from there
  assert.ok(Number.isNaN(eta.update(3, 101, 200).etaS));
  now = 20_000;
  const e = eta.update(3, 111, 200);
  assert.equal(e.stepsPerS, 0.5);
  assert.equal(e.etaS, 178); // 89 steps left at 2 s each (not 89 x 20 s / 111 steps)
  // the next epoch starts a new measurement
  now = 300_000;
  assert.ok(Number.isNaN(eta.update(4, 1, 200).etaS));
  now = 301_000;
  assert.equal(eta.update(4, 2, 200).etaS, 198);
});

test('ProgressBar without a TTY: a line per 10 % of an epoch, none for the last step, from the resume point', () => {
  const out = sink();
  const bar = new ProgressBar(out);
  for (let done = 1; done <= 20; done++) bar.update(done, 20, `x${done}`);
  const lines = out.text.trim().split('\n');
  assert.deepEqual(
    lines,
    [2, 4, 6, 8, 10, 12, 14, 16, 18].map((d) => `${d}/20 (${d * 5}%) x${d}`),
  );
  // a resume inside the epoch (step 11): no line for the 50 % already passed
  out.text = '';
  for (let done = 11; done <= 15; done++) bar.update(done, 20, 'y');
  assert.deepEqual(out.text.trim().split('\n'), ['12/20 (60%) y', '14/20 (70%) y']);
  // coarser lines; short epochs get a line per step crossing a boundary
  const o2 = sink();
  const b2 = new ProgressBar(o2, { lineEveryPercent: 25 });
  for (let done = 1; done <= 3; done++) b2.update(done, 3, 'z');
  assert.deepEqual(o2.text.trim().split('\n'), ['1/3 (33%) z', '2/3 (66%) z']);
  assert.throws(
    () => new ProgressBar(sink(), { lineEveryPercent: 0 }),
    /lineEveryPercent must be in \(0, 100\], got 0/,
  );
});

test('stepReporter: the line carries epoch, loss, lr, images/s and ETA from this process', () => {
  const out = sink();
  let now = 0;
  const report = stepReporter(new ProgressBar(out), new EpochEta(() => now));
  for (let batch = 50; batch < 100; batch++) {
    report({ epoch: 1, epochs: 4, batch, batches: 100, images: 64, loss: 1.5, lr: 1e-3 });
    now += 500;
  }
  const lines = out.text.trim().split('\n');
  // the first line is at 60 % (51..60 done), 9 steps measured at 0.5 s: 128 img/s, 40 steps left
  assert.equal(lines[0], '60/100 (60%) epoch 2/4 loss 1.5000 lr 1.00e-3 128.0 img/s eta 20s');
  assert.equal(lines.length, 4);
});
