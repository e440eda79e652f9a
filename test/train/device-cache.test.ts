// Pre-training served from the device cache gives the run the loader would: the same losses
// step for step (here on the CPU with deviceCache 'on'; on a GPU 'auto' turns it on).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { writeImageFolder, SyntheticImages } from '../../src/data/synthetic.js';
import { resolveConfig } from '../../src/train/config.js';
import { pretrain, type StepInfo } from '../../src/train/pretrain.js';
import { TOY_PRETRAIN } from './fixture.js';

const tmp = mkdtempSync(join(tmpdir(), 'mmoco-devcache-run-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

test('pretrain with deviceCache on matches the loader step for step', async () => {
  const data = join(tmp, 'data');
  await writeImageFolder(new SyntheticImages({ length: 96, numClasses: 4, size: 16, seed: 5 }), join(data, 'train'), {
    format: 'jpeg',
  });
  const run = async (deviceCache: 'on' | 'off'): Promise<{ losses: number[]; logs: string[] }> => {
    const cfg = resolveConfig('pretrain', {
      sets: [],
      flags: {
        data,
        out: join(tmp, `run-${deviceCache}`),
        ...TOY_PRETRAIN,
        deviceCache,
      },
    });
    const losses: number[] = [];
    const logs: string[] = [];
    await pretrain(cfg, { log: (m) => logs.push(m), onStep: (s: StepInfo) => losses.push(s.loss) });
    return { losses, logs };
  };
  const off = await run('off');
  const on = await run('on');
  assert.equal(off.losses.length, 12, '2 epochs of 6 steps');
  assert.deepEqual(on.losses, off.losses);
  assert.ok(
    on.logs.some((m) => /device cache: 96 images, 0 MiB on cpu/.test(m)),
    on.logs.join('\n'),
  );
  assert.ok(!off.logs.some((m) => /device cache/.test(m)));
});
