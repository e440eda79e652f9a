// A whole training state as one folder: each module's state dict as its own safetensors file
// (keys as the module names them, so a backbone file loads into timm as it is), every other
// stateful object (optimisers, schedules, ...) as JSON with its tensors in a safetensors
// file, the random generators' states, and the progress counters. The folder is replaced
// atomically: a reader sees the previous checkpoint or the new one, never a mixture.
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Module } from '../nn/module.js';
import { getRngState, setRngState } from '../random.js';
import { keep, tidy } from '../scope.js';
import { Tensor } from '../tensor.js';
import { cuda } from '../threads.js';
import { writeFileAtomic } from './atomic.js';
import * as safetensors from './safetensors.js';

/** Anything with PyTorch's state-dict protocol (optimisers, schedulers, ...). */
export interface Stateful {
  stateDict(): unknown;
  loadStateDict(state: never): unknown;
}

export interface TrainingState {
  /** saved as `<name>.safetensors` */
  modules: Record<string, Module>;
  /** saved as `<name>.json` + `<name>.safetensors` */
  stateful?: Record<string, Stateful>;
  /** epoch, step, schedule position, config ...: plain JSON */
  progress?: Record<string, unknown>;
}

const STATE_FILE = 'state.json';
const FORMAT = 'mmoco-checkpoint/1';

// ---- JSON with tensors: tensors go to a side table, the JSON keeps {"$tensor": key} ----
function encode(value: unknown, path: string, tensors: Map<string, Tensor>): unknown {
  if (value instanceof Tensor) {
    tensors.set(path, value);
    return { $tensor: path };
  }
  if (value instanceof Map) return { $map: [...value].map(([k, v], i) => [k, encode(v, `${path}.${i}`, tensors)]) };
  if (Array.isArray(value)) return value.map((v, i) => encode(v, `${path}.${i}`, tensors));
  if (typeof value === 'number' && !Number.isFinite(value)) return { $number: String(value) };
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, encode(v, `${path}.${k}`, tensors)]));
  }
  return value;
}

function decode(value: unknown, tensors: Map<string, Tensor>, source: string): unknown {
  if (Array.isArray(value)) return value.map((v) => decode(v, tensors, source));
  if (value !== null && typeof value === 'object') {
    const o = value as Record<string, unknown>;
    if (typeof o.$tensor === 'string') {
      const t = tensors.get(o.$tensor);
      if (!t) throw new Error(`checkpoint: ${source}: tensor '${o.$tensor}' is missing from its safetensors file`);
      // The object may hold on to it (as optimisers do with their state): it outlives the load's scope.
      return keep(t);
    }
    if (Array.isArray(o.$map)) {
      return new Map((o.$map as [unknown, unknown][]).map(([k, v]) => [k, decode(v, tensors, source)]));
    }
    if (typeof o.$number === 'string') return Number(o.$number);
    return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, decode(v, tensors, source)]));
  }
  return value;
}

function rngDevices(): string[] {
  const n = cuda.isAvailable() ? cuda.deviceCount() : 0;
  return ['cpu', ...Array.from({ length: n }, (_, i) => `cuda:${i}`)];
}

/**
 * Writes the training state to folder `dir`, replacing an older checkpoint there atomically.
 * A failed write (full disk, no permission) removes its temporary folder and throws an error that
 * names `dir`, the cause, and whether the previous checkpoint is intact.
 */
export function saveCheckpoint(dir: string, s: TrainingState): void {
  const parent = dirname(dir);
  const tmp = join(parent, `.${basename(dir)}.tmp-${process.pid}`);
  const old = join(parent, `.${basename(dir)}.old-${process.pid}`);
  saves++;
  try {
    mkdirSync(parent, { recursive: true });
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp);
    writeState(tmp, s);
  } catch (e) {
    removeQuietly(tmp);
    throw saveError(dir, e);
  }
  const hadOld = existsSync(dir);
  try {
    if (hadOld) renameSync(dir, old);
    renameSync(tmp, dir);
  } catch (e) {
    // put the previous checkpoint back where readers look for it
    try {
      if (hadOld && !existsSync(dir) && existsSync(old)) renameSync(old, dir);
    } catch {
      // findCheckpoint still finds it under its .old name
    }
    removeQuietly(tmp);
    throw saveError(dir, e);
  }
  // the new checkpoint is in place; an old one left here is removed at the run's next start
  removeQuietly(old);
}

/** Cleaning up after a failure must not hide the failure. */
function removeQuietly(path: string): void {
  try {
    rmSync(path, { recursive: true, force: true });
  } catch {
    // nothing there to remove, or it cannot be: the error being thrown says why
  }
}

let saves = 0;

function writeState(tmp: string, s: TrainingState): void {
  tidy(() => {
    for (const [name, m] of Object.entries(s.modules)) {
      safetensors.save(join(tmp, `${name}.safetensors`), m.stateDict(), { format: 'pt' });
      injectedFault();
    }
    for (const [name, obj] of Object.entries(s.stateful ?? {})) {
      const tensors = new Map<string, Tensor>();
      const json = encode(obj.stateDict(), name, tensors);
      safetensors.save(join(tmp, `${name}.safetensors`), tensors);
      writeFileAtomic(join(tmp, `${name}.json`), Buffer.from(JSON.stringify(json)));
    }
    const rng = new Map(rngDevices().map((d) => [d, getRngState(d)]));
    safetensors.save(join(tmp, 'rng.safetensors'), rng);
    const state = {
      format: FORMAT,
      modules: Object.keys(s.modules),
      stateful: Object.keys(s.stateful ?? {}),
      progress: s.progress ?? {},
    };
    // written last: a folder without it is incomplete
    writeFileAtomic(join(tmp, STATE_FILE), Buffer.from(JSON.stringify(state, null, 1)));
  });
}

/**
 * Fault injection for the tests of a failed write (a full disk cannot be made without root):
 * MMOCO_FAIL_CHECKPOINT=<n>[:<code>] makes the n-th save from the first one that sees this value
 * (in a new process: its n-th save) fail after its first file is written, as a write failing with
 * <code> (default ENOSPC) would.
 */
function injectedFault(): void {
  const spec = process.env.MMOCO_FAIL_CHECKPOINT;
  if (!spec) {
    fault = null;
    return;
  }
  if (fault?.spec !== spec) fault = { spec, base: saves - 1 };
  const [n, code = 'ENOSPC'] = spec.trim().split(':');
  if (Number(n) !== saves - fault.base) return;
  const text: Record<string, string> = {
    ENOSPC: 'no space left on device',
    EACCES: 'permission denied',
    EIO: 'i/o error',
  };
  throw Object.assign(new Error(`${code}: ${text[code] ?? 'write failed'}, write`), { code, syscall: 'write' });
}

let fault: { spec: string; base: number } | null = null;

/** "could not write checkpoint <dir> (<cause>); the previous checkpoint (...) is intact". */
function saveError(dir: string, e: unknown): Error {
  const cause = e instanceof Error ? e.message : String(e);
  let prev: string | null = null;
  try {
    prev = findCheckpoint(dir);
  } catch {
    // the folder around it is unreadable too: there is none to speak of
  }
  let previous = 'there is no previous checkpoint';
  if (prev) {
    let at = '';
    try {
      const p = (JSON.parse(readFileSync(join(prev, STATE_FILE), 'utf8')) as { progress?: Record<string, unknown> })
        .progress;
      if (p) at = ` (${describeProgress(p)})`;
    } catch {
      // the message still says where it is
    }
    previous = `the previous checkpoint${at} is intact`;
  }
  return Object.assign(new Error(`could not write checkpoint ${dir} (${cause}); ${previous}`), {
    code: (e as { code?: unknown }).code,
  });
}

/** "epoch 3, step 120" / "epoch 2 step 50 of it": where a checkpoint's progress stands. */
export function describeProgress(p: Record<string, unknown>): string {
  const partial = p.partial as { epoch?: unknown; batch?: unknown } | undefined;
  const parts: string[] = [];
  if (partial && typeof partial.epoch === 'number')
    parts.push(`inside epoch ${partial.epoch}, ${String(partial.batch)} batches done`);
  else if (typeof p.epoch === 'number') parts.push(`end of epoch ${p.epoch}`);
  if (typeof p.step === 'number') parts.push(`step ${p.step}`);
  return parts.join(', ');
}

/**
 * The checkpoint folder to read: `dir`, or the previous checkpoint when a save was
 * interrupted between its two renames. Null when there is none.
 */
export function findCheckpoint(dir: string): string | null {
  if (existsSync(join(dir, STATE_FILE))) return dir;
  const parent = dirname(dir);
  if (!existsSync(parent)) return null;
  const old = readdirSync(parent)
    .filter((f) => f.startsWith(`.${basename(dir)}.old-`))
    .map((f) => join(parent, f))
    .find((f) => existsSync(join(f, STATE_FILE)));
  return old ?? null;
}

/**
 * Loads a checkpoint written by saveCheckpoint into the given modules and stateful objects
 * (strict: every module and object saved must be given, and the reverse), restores the random
 * generators, and returns the saved progress.
 */
export function loadCheckpoint(dir: string, s: TrainingState): Record<string, unknown> {
  const found = findCheckpoint(dir);
  if (!found) throw new Error(`checkpoint: ${dir}: no checkpoint (${STATE_FILE} missing)`);
  const state = JSON.parse(readFileSync(join(found, STATE_FILE), 'utf8')) as {
    format: string;
    modules: string[];
    stateful: string[];
    progress: Record<string, unknown>;
  };
  if (state.format !== FORMAT) throw new Error(`checkpoint: ${found}: format '${state.format}', expected '${FORMAT}'`);
  const same = (a: string[], b: string[]): boolean => a.length === b.length && a.every((x) => b.includes(x));
  const given = Object.keys(s.modules);
  if (!same(state.modules, given)) {
    throw new Error(`checkpoint: ${found}: holds modules [${state.modules.join(', ')}], given [${given.join(', ')}]`);
  }
  const givenStateful = Object.keys(s.stateful ?? {});
  if (!same(state.stateful, givenStateful)) {
    throw new Error(`checkpoint: ${found}: holds [${state.stateful.join(', ')}], given [${givenStateful.join(', ')}]`);
  }
  tidy(() => {
    for (const [name, m] of Object.entries(s.modules)) {
      const file = join(found, `${name}.safetensors`);
      try {
        m.loadStateDict(safetensors.load(file).tensors);
      } catch (e) {
        throw new Error(`checkpoint: ${file}: ${(e as Error).message}`);
      }
    }
    for (const [name, obj] of Object.entries(s.stateful ?? {})) {
      const file = join(found, `${name}.json`);
      const tensors = safetensors.load(join(found, `${name}.safetensors`)).tensors;
      obj.loadStateDict(decode(JSON.parse(readFileSync(file, 'utf8')), tensors, file) as never);
    }
    const rng = safetensors.load(join(found, 'rng.safetensors')).tensors;
    for (const [device, st] of rng) {
      if (device === 'cpu' || rngDevices().includes(device)) setRngState(st, device);
    }
  });
  return state.progress;
}
