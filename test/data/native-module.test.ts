// The data pipeline's native module (native/src/image, src/data/native): its ops are the addon's
// `image` functions, all present, none of them in mmoco/torch's binding or exports, and every
// C++ file under native/src/image registers through IMAGE_OP (so the generated lists hold).
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { IMG } from '../../src/data/native/binding.js';
import { IMAGE_OPS } from '../../src/data/native/ops.js';
import * as torch from '../../src/torch/index.js';
import { N, addonGroup } from '../../src/torch/native.js';
import { NATIVE_OPS } from '../../src/torch/native-ops.js';

function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'binding.gyp'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('binding.gyp not found above the test');
    dir = parent;
  }
  return dir;
}

test('the image kernels are the addon’s image functions, outside mmoco/torch', () => {
  assert.deepEqual([...IMAGE_OPS].sort(), Object.keys(addonGroup('image')).sort());
  for (const op of IMAGE_OPS) {
    assert.equal(typeof IMG[op], 'function', op);
    assert.ok(!(NATIVE_OPS as readonly string[]).includes(op), `${op} in NATIVE_OPS`);
    assert.ok(!Object.hasOwn(N, op), `${op} on the tensor library's binding`);
    assert.ok(!Object.hasOwn(torch, op), `${op} exported by mmoco/torch`);
    assert.ok(!Object.hasOwn(torch.F, op), `${op} exported by mmoco/torch's F`);
  }
  assert.throws(() => addonGroup('nonesuch'), /the native addon has no 'nonesuch' functions; rebuild it/);
});

test('native/src/image registers with IMAGE_OP only, and binding.gyp compiles every file there', () => {
  const root = repoRoot();
  const dir = join(root, 'native/src/image');
  const files = readdirSync(dir).filter((f) => f.endsWith('.cc'));
  const defined = files.flatMap((f) => {
    const text = readFileSync(join(dir, f), 'utf8');
    assert.doesNotMatch(text, /^OP\(/m, `${f}: an OP(...) in native/src/image`);
    return [...text.matchAll(/^IMAGE_OP\((\w+), "/gm)].map((m) => m[1]!);
  });
  assert.deepEqual(defined.sort(), [...IMAGE_OPS].sort());
  const gyp = JSON.parse(readFileSync(join(root, 'binding.gyp'), 'utf8')) as { targets: { sources: string[] }[] };
  for (const f of files) assert.ok(gyp.targets[0]!.sources.includes(`native/src/image/${f}`), `binding.gyp lacks ${f}`);
});
