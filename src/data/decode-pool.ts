// Decoding off the main thread: a pool of worker processes (decode-worker.ts), each reading
// and decoding whole lists of image files with sharp. The main thread sends one message per
// list and gets one back (the pixels in one buffer), so it stays free for the training step.
//
// Processes, not worker threads: sharp's cost per image is mostly libvips bookkeeping that
// takes process-wide GLib locks, so two decoding threads of one process reach about 1.25×
// one thread on two cores, where two processes reach about 2× (CIFAR-sized JPEGs; see
// bench/data.ts). A process that dies (a decoder crash on a hostile file) takes only its
// requests with it; they are rejected with DecodeCrash and the pool starts a new process for
// the next request.
//
// One pool per process, grown on demand (ensureDecodeWorkers). Idle workers do not keep the
// parent alive; they exit when it does.
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { RgbImage } from './dataset.js';
import type { DecodeReply, DecodeRequest } from './decode-worker.js';

export interface DecodedFile {
  image: RgbImage | null;
  /** why image is null */
  error?: string;
}

/** The worker process handling a request died (e.g. the decoder crashed on one of its files). */
export class DecodeCrash extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DecodeCrash';
  }
}

interface Proc {
  child: ChildProcess;
  busy: number;
  dead: boolean;
}

const procs: Proc[] = [];
let nextId = 1;
const pending = new Map<number, { proc: Proc; resolve: (r: DecodedFile[]) => void; reject: (e: Error) => void }>();

function setRef(p: Proc, on: boolean): void {
  if (on) {
    p.child.ref();
    p.child.channel?.ref();
  } else {
    p.child.unref();
    p.child.channel?.unref();
  }
}

function spawnWorker(): Proc {
  const child = fork(fileURLToPath(new URL('./decode-worker.js', import.meta.url)), [], {
    serialization: 'advanced',
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    // a debugger flag would make every worker open the same port
    execArgv: process.execArgv.filter((a) => !a.startsWith('--inspect')),
  });
  const p: Proc = { child, busy: 0, dead: false };
  child.on('message', (reply: DecodeReply | { id: number; fatal: string }) => {
    const req = pending.get(reply.id);
    if (!req) return;
    pending.delete(reply.id);
    if (--p.busy === 0) setRef(p, false);
    if ('fatal' in reply) {
      req.reject(new Error(`decode worker: ${reply.fatal}`));
      return;
    }
    const { pixels, meta: m } = reply;
    const out: DecodedFile[] = [];
    for (let o = 0; o < m.length; o += 3) {
      const width = m[o + 1]!;
      const height = m[o + 2]!;
      if (width < 0) out.push({ image: null, error: 'unreadable' });
      else out.push({ image: { data: pixels.subarray(m[o]!, m[o]! + width * height * 3), width, height } });
    }
    for (const [k, msg] of reply.errors) out[k]!.error = msg;
    req.resolve(out);
  });
  const died = (why: string): void => {
    if (p.dead) return;
    p.dead = true;
    const i = procs.indexOf(p);
    if (i >= 0) procs.splice(i, 1);
    for (const [id, req] of pending) {
      if (req.proc !== p) continue;
      pending.delete(id);
      req.reject(new DecodeCrash(`decode worker ${why}`));
    }
  };
  child.on('exit', (code, signal) => died(signal ? `killed by ${signal}` : `exited with code ${code}`));
  child.on('error', (err) => died(`failed: ${err.message}`));
  setRef(p, false);
  return p;
}

/** Grows the pool to at least `n` worker processes. */
export function ensureDecodeWorkers(n: number): void {
  while (procs.length < n) procs.push(spawnWorker());
}

export function decodeWorkers(): number {
  return procs.length;
}

/** Process ids of the pool's workers. */
export function decodeWorkerPids(): number[] {
  return procs.flatMap((p) => (p.child.pid === undefined ? [] : [p.child.pid]));
}

/**
 * Reads and decodes the files (in order) in the least busy worker process. A file that
 * cannot be read or decoded gets `image: null` and the reason; rejects with DecodeCrash when
 * the worker dies meanwhile.
 */
export function decodeFiles(paths: readonly string[]): Promise<DecodedFile[]> {
  if (paths.length === 0) return Promise.resolve([]);
  ensureDecodeWorkers(1);
  let p = procs[0]!;
  for (const q of procs) if (q.busy < p.busy) p = q;
  const id = nextId++;
  const proc = p;
  return new Promise<DecodedFile[]>((resolve, reject) => {
    pending.set(id, { proc, resolve, reject });
    if (proc.busy++ === 0) setRef(proc, true); // keep the parent alive while a request is out
    const req: DecodeRequest = { id, paths: paths.join('\0') };
    proc.child.send(req);
  });
}

/**
 * Stops the pool's workers, abandoning their requests (which reject with DecodeCrash). They
 * also end by themselves when this process ends (their IPC channel closes).
 */
export async function closeDecodePool(): Promise<void> {
  const all = procs.splice(0);
  await Promise.all(
    all.map(
      (p) =>
        new Promise<void>((resolve) => {
          if (p.dead || p.child.exitCode !== null || p.child.signalCode !== null) return resolve();
          p.child.once('exit', () => resolve());
          p.child.kill('SIGTERM');
        }),
    ),
  );
}
