#!/usr/bin/env node
// Builds the native addon with node-gyp when its inputs changed; otherwise does nothing,
// so it is safe to call from every install. A change of configuration (binding.gyp, the
// libtorch found, Node) reconfigures from scratch; a change of sources only recompiles
// what make finds out of date.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
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
// every file under native/src, sub-folders (native/src/image) included
const sources = readdirSync(join(root, 'native/src'), { recursive: true, withFileTypes: true })
  .filter((e) => e.isFile())
  .map((e) =>
    relative(root, join(e.parentPath ?? e.path, e.name))
      .split(sep)
      .join('/'),
  )
  .sort();
const sourceHash = hash(sources, '');
const cxx = process.env.CXX || 'g++';
// binding.gyp's one target: its sources, defines and libraries (the direct build and --syntax-only)
const target = JSON.parse(readFileSync(join(root, 'binding.gyp'), 'utf8')).targets[0];

// --syntax-only: every source checked against the headers of $LIBTORCH (or the system's), with
// the build's flags; nothing is linked or written, so a headers-only libtorch is enough (how the
// addon is kept compiling against other PyTorch versions than the one installed: docs/gpu.md).
if (process.argv.includes('--syntax-only')) {
  console.error(`mmoco: checking the native sources against ${describeLibtorch()}`);
  try {
    const flags = directFlags();
    const failed = await compileEach((_, src) => [...flags, '-fsyntax-only', src]);
    if (failed.length) throw new Error(`${failed.join(', ')} did not compile`);
  } catch (e) {
    console.error(`mmoco: syntax check failed: ${e.message}`);
    process.exit(1);
  }
  console.error('mmoco: every native source compiles');
  process.exit(0);
}

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

// Without make (a bare GPU image may have a compiler but no make), node-gyp cannot build:
// compile and link directly with the same flags instead.
const hasMake = spawnSync('make', ['--version'], { stdio: 'ignore' }).status === 0;
if (process.env.MMOCO_DIRECT_BUILD === '1' || !hasMake) {
  try {
    await directBuild();
  } catch (e) {
    console.error(`mmoco: native build failed: ${e.message}`);
    process.exit(1);
  }
  writeFileSync(stampFile, JSON.stringify({ config: configHash, sources: sourceHash }));
  process.exit(0);
}

const reconfigure = force || stamp.config !== configHash || !existsSync(join(root, 'build/Makefile'));
const gyp = join(root, 'node_modules/node-gyp/bin/node-gyp.js');
const args = [gyp, reconfigure ? 'rebuild' : 'build', `--jobs=${Math.max(1, cpus().length)}`];
// Build against the headers of the running Node when it ships them (Debian's nodejs, official
// tarballs), so no header download is needed on machines without internet.
const prefix = join(dirname(process.execPath), '..');
if (!process.env.npm_config_nodedir && existsSync(join(prefix, 'include/node/node_api.h'))) {
  args.push(`--nodedir=${prefix}`);
}
console.error(`mmoco: building the native addon against ${describeLibtorch()}`);
const r = spawnSync(process.execPath, args, { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
if (r.status !== 0) {
  console.error('mmoco: native build failed (see above). Is libtorch installed? Run scripts/setup.sh or set LIBTORCH.');
  process.exit(r.status ?? 1);
}
writeFileSync(stampFile, JSON.stringify({ config: configHash, sources: sourceHash }));

// binding.gyp's flags for a direct compiler call.
function directFlags() {
  const nodeInclude = join(dirname(process.execPath), '..', 'include/node');
  return [
    '-fPIC', '-pthread', '-O2', '-fexceptions', '-frtti', '-fno-math-errno',
    '-Wno-unused-parameter', '-Wno-deprecated-declarations', '-DBUILDING_NODE_EXTENSION',
    ...target.defines.map((d) => `-D${d}`), ...libtorchQuery('cflags'),
    `-I${join(root, 'node_modules/node-addon-api')}`, `-I${nodeInclude}`, ...libtorchQuery('include').map((d) => `-I${d}`),
  ]; // prettier-ignore
}

// What libtorch.mjs found (its JSON line), or why it found none.
function describeLibtorch() {
  const r = spawnSync(process.execPath, [join(root, 'scripts/libtorch.mjs'), 'describe'], { encoding: 'utf8' });
  return r.stdout.trim() || r.stderr.trim();
}

function libtorchQuery(what) {
  const r = spawnSync(process.execPath, [join(root, 'scripts/libtorch.mjs'), what], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`libtorch.mjs ${what}: ${r.stderr}`);
  return r.stdout.trim().split(/\s+/).filter(Boolean);
}

// Runs the compiler once per source (one per core at a time); the sources that failed.
async function compileEach(argsFor) {
  const srcs = target.sources;
  const compile = (k) =>
    new Promise((resolve) => {
      const child = spawn(cxx, argsFor(k, join(root, srcs[k])), { stdio: 'inherit' });
      child.on('exit', (code) => resolve(code === 0 ? null : srcs[k]));
      child.on('error', (e) => resolve(`${srcs[k]} (${e.message})`));
    });
  let next = 0;
  const failed = [];
  const worker = async () => {
    while (next < srcs.length) {
      const bad = await compile(next++);
      if (bad) failed.push(bad);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, cpus().length) }, worker));
  return failed;
}

// binding.gyp's build without node-gyp: every source compiled, then linked into
// build/Release/mmoco_native.node.
async function directBuild() {
  const flags = directFlags();
  const objDir = join(root, 'build/direct');
  mkdirSync(objDir, { recursive: true });
  mkdirSync(dirname(out), { recursive: true });
  console.error(`mmoco: building the native addon directly with ${cxx} (no make here)`);
  const objs = target.sources.map((s) => join(objDir, s.replace(/\//g, '_').replace(/\.cc$/, '.o')));
  const failed = await compileEach((k, src) => [...flags, '-c', src, '-o', objs[k]]);
  if (failed.length) throw new Error(`compiling ${failed.join(', ')} failed`);
  const libs = target.libraries.flatMap((l) => (l.startsWith('<!@') ? libtorchQuery('libs') : [l]));
  const r = spawnSync(cxx, ['-shared', '-pthread', '-o', out, ...objs, ...libs], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error('linking the native addon failed');
}
