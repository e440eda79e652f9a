#!/usr/bin/env node
// Builds the native addon with node-gyp when its inputs changed; otherwise does nothing,
// so it is safe to call from every install. A change of configuration (binding.gyp, the
// libtorch found, Node) reconfigures from scratch; a change of sources only recompiles
// what make finds out of date.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpus } from 'node:os';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'build/Release/mmoco_native.node');
const stampFile = join(root, 'build/inputs.json');

function hash(files, extra) {
  const h = createHash('sha256');
  for (const f of files) h.update(f).update(readFileSync(join(root, f)));
  h.update(extra);
  return h.digest('hex');
}
const configHash = hash(['binding.gyp', 'scripts/libtorch.mjs'], `${process.env.LIBTORCH || ''}|${process.version}`);
const sources = readdirSync(join(root, 'native/src'))
  .sort()
  .map((f) => `native/src/${f}`);
const sourceHash = hash(sources, '');

// One build at a time in this folder: concurrent makes in build/ would corrupt each other.
const lock = join(root, 'build/.lock');
mkdirSync(join(root, 'build'), { recursive: true });
for (let waited = 0; ; waited += 1) {
  try {
    mkdirSync(lock);
    break;
  } catch {
    // a lock older than 15 minutes was left by a killed build
    if (Date.now() - statSync(lock).mtimeMs > 15 * 60 * 1000) rmSync(lock, { recursive: true, force: true });
    else if (waited === 0) console.error('mmoco: waiting for another native build to finish');
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1000);
  }
}
process.on('exit', () => rmSync(lock, { recursive: true, force: true }));

const force = process.argv.includes('--force');
const stamp = existsSync(stampFile) ? JSON.parse(readFileSync(stampFile, 'utf8')) : {};
if (!force && existsSync(out) && stamp.config === configHash && stamp.sources === sourceHash) process.exit(0);

const reconfigure = force || stamp.config !== configHash || !existsSync(join(root, 'build/Makefile'));
const gyp = join(root, 'node_modules/node-gyp/bin/node-gyp.js');
const args = [gyp, reconfigure ? 'rebuild' : 'build', `--jobs=${Math.max(1, cpus().length)}`];
// Build against the headers of the running Node when it ships them (Debian's nodejs, official
// tarballs), so no header download is needed on machines without internet.
const prefix = join(dirname(process.execPath), '..');
if (!process.env.npm_config_nodedir && existsSync(join(prefix, 'include/node/node_api.h'))) {
  args.push(`--nodedir=${prefix}`);
}
const where = spawnSync(process.execPath, [join(root, 'scripts/libtorch.mjs'), 'describe']);
console.error(
  `mmoco: building the native addon against ${where.stdout.toString().trim() || where.stderr.toString().trim()}`,
);
const r = spawnSync(process.execPath, args, { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
if (r.status !== 0) {
  console.error('mmoco: native build failed (see above). Is libtorch installed? Run scripts/setup.sh or set LIBTORCH.');
  process.exit(r.status ?? 1);
}
writeFileSync(stampFile, JSON.stringify({ config: configHash, sources: sourceHash }));
