#!/usr/bin/env node
// Builds the native addon with node-gyp when its inputs changed (sources, binding.gyp,
// the libtorch found); otherwise does nothing, so it is safe to call from every install.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpus } from 'node:os';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'build/Release/mmoco_native.node');
const stampFile = join(root, 'build/inputs.sha256');

function inputsHash() {
  const h = createHash('sha256');
  const files = ['binding.gyp', 'scripts/libtorch.mjs'].concat(
    readdirSync(join(root, 'native/src'))
      .sort()
      .map((f) => `native/src/${f}`),
  );
  for (const f of files) h.update(f).update(readFileSync(join(root, f)));
  h.update(String(process.env.LIBTORCH || '')).update(process.version);
  return h.digest('hex');
}

const force = process.argv.includes('--force');
const hash = inputsHash();
if (!force && existsSync(out) && existsSync(stampFile) && readFileSync(stampFile, 'utf8') === hash) {
  process.exit(0);
}
const gyp = join(root, 'node_modules/node-gyp/bin/node-gyp.js');
const args = [gyp, 'rebuild', `--jobs=${Math.max(1, cpus().length)}`];
// Build against the headers of the running Node when it ships them (Debian's nodejs, official
// tarballs), so no header download is needed on machines without internet.
const prefix = join(dirname(process.execPath), '..');
if (!process.env.npm_config_nodedir && existsSync(join(prefix, 'include/node/node_api.h'))) {
  args.push(`--nodedir=${prefix}`);
}
console.error(`mmoco: building the native addon (${spawnSync('node', [join(root, 'scripts/libtorch.mjs'), 'describe']).stdout.toString().trim()})`);
const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
if (r.status !== 0) {
  console.error('mmoco: native build failed (see above). Is libtorch installed? Run scripts/setup.sh or set LIBTORCH.');
  process.exit(r.status ?? 1);
}
writeFileSync(stampFile, hash);
