// scripts/libtorch.mjs, which tells the native build what libtorch asks for: version, libstdc++
// ABI and C++ standard read from the headers of layouts shaped like the real ones (a 2.14
// headers-only tree asking for C++20, a pip 2.5 torch/ folder built with the old ABI).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '../../..');
const tmp = mkdtempSync(join(tmpdir(), 'mmoco-libtorch-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** A libtorch prefix holding only the files the locator reads. */
function layout(name: string, files: Record<string, string>): string {
  const dir = join(tmp, name);
  mkdirSync(join(dir, 'lib'), { recursive: true });
  for (const [f, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, f)), { recursive: true });
    writeFileSync(join(dir, f), text);
  }
  return dir;
}

const version = (major: number, minor: number, patch: number): string =>
  `#define TORCH_VERSION_MAJOR ${major}\n#define TORCH_VERSION_MINOR ${minor}\n#define TORCH_VERSION_PATCH ${patch}\n`;
const aten = (floor: string): string =>
  `#pragma once\n#if !defined(_MSC_VER) && __cplusplus < ${floor}\n#error C++ too old\n#endif\n#include <ATen/Context.h>\n`;

function query(what: string, libtorch: string): { status: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [join(root, 'scripts/libtorch.mjs'), what], {
    encoding: 'utf8',
    env: { ...process.env, LIBTORCH: libtorch },
  });
  return { status: r.status, out: r.stdout.trim(), err: r.stderr };
}

test('a libtorch whose ATen.h asks for C++20 is built with -std=c++20 (2.14 layout)', () => {
  const lt = layout('v2.14', {
    'include/ATen/ATen.h': aten('202002L'),
    'include/torch/headeronly/version.h': version(2, 14, 1),
  });
  const d = JSON.parse(query('describe', lt).out) as Record<string, unknown>;
  assert.equal(d.version, '2.14.1');
  assert.equal(d.std, 'c++20');
  assert.equal(d.cxx11Abi, '1');
  assert.equal(d.cuda, false);
  const flags = query('cflags', lt).out.split(' ');
  assert.ok(flags.includes('-std=c++20'), flags.join(' '));
  assert.ok(flags.includes('-DMMOCO_WITH_CUDA=0'), flags.join(' '));
  assert.equal(flags.filter((f) => f.startsWith('-std=')).length, 1);
});

test('a pip torch before 2.6 keeps C++17 and the pre-C++11 ABI its TorchConfig.cmake names', () => {
  const lt = layout('v2.5', {
    'include/ATen/ATen.h': aten('201703L'),
    'include/torch/csrc/api/include/torch/version.h': version(2, 5, 1),
    'share/cmake/Torch/TorchConfig.cmake': 'set(TORCH_CXX_FLAGS "-D_GLIBCXX_USE_CXX11_ABI=0")\n',
  });
  const d = JSON.parse(query('describe', lt).out) as Record<string, unknown>;
  assert.equal(d.version, '2.5.1');
  assert.equal(d.std, 'c++17');
  assert.equal(d.cxx11Abi, '0');
  const flags = query('cflags', lt).out.split(' ');
  assert.ok(flags.includes('-std=c++17') && flags.includes('-D_GLIBCXX_USE_CXX11_ABI=0'), flags.join(' '));
});

test('a header floor below C++17 (1.13 asks for C++14) still builds as C++17', () => {
  const lt = layout('v1.13', { 'include/ATen/ATen.h': aten('201402L') });
  assert.equal((JSON.parse(query('describe', lt).out) as { std: string }).std, 'c++17');
});

test('an unknown C++ standard and a folder that is not libtorch are refused by name', () => {
  const future = layout('future', { 'include/ATen/ATen.h': aten('202612L') });
  const r = query('cflags', future);
  assert.notEqual(r.status, 0);
  assert.match(r.err, /ATen\.h asks for C\+\+ with __cplusplus >= 202612/);
  const empty = layout('empty', {});
  const e = query('describe', empty);
  assert.notEqual(e.status, 0);
  assert.match(e.err, /does not look like libtorch: expected include\/ATen\/ATen\.h/);
});

test('binding.gyp leaves the C++ standard to the locator (a fixed -std would override it)', () => {
  const gyp = JSON.parse(readFileSync(join(root, 'binding.gyp'), 'utf8')) as {
    targets: { cflags_cc: string[]; 'cflags_cc!': string[] }[];
  };
  const t = gyp.targets[0]!;
  assert.deepEqual(
    t.cflags_cc.filter((f) => f.startsWith('-std')),
    [],
  );
  // node-gyp's own default (gnu++17, or gnu++20 with newer Node) is removed
  assert.ok(t['cflags_cc!'].includes('-std=gnu++17') && t['cflags_cc!'].includes('-std=gnu++20'));
  assert.ok(t.cflags_cc.some((f) => f.includes('libtorch.mjs cflags')));
});
