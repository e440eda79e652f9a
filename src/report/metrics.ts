// Reading a run's metrics.jsonl: one JSON object per line, of kinds step / epoch / eval /
// resume / extend (a resume with a new `epochs`) / stop. Unknown kinds and fields are ignored, a truncated last line (a killed run) is
// tolerated, and records that a resume re-did are superseded by the resumed run's.

import { readFile } from 'node:fs/promises';

export interface StepRecord {
  epoch: number;
  step: number;
  /** Position on the chart's step axis: the global step (see `stepsAreGlobal`). */
  x: number;
  loss?: number;
  lr?: number;
  momentum?: number;
  kappaRep?: number;
  kappaProj?: number;
  kappaPred?: number;
  imagesPerSec?: number;
  time?: number;
}

export interface EpochRecord {
  epoch: number;
  loss?: number;
  knnTop1?: number;
  imagesPerSec?: number;
  wallS?: number;
  time?: number;
}

export interface EvalRecord {
  epoch: number;
  top1?: number;
  top5?: number;
  loss?: number;
  time?: number;
}

export interface ResumeRecord {
  epoch?: number;
  step?: number;
  time?: number;
  /** Position on the step axis (undefined when the step is unknown). */
  x?: number;
}

/** A resume that changed the run's length (`epochs`): the schedules follow the new one from `step`. */
export interface ExtendRecord {
  epoch?: number;
  step?: number;
  fromEpochs?: number;
  toEpochs?: number;
  time?: number;
  /** Position on the step axis (undefined when the step is unknown). */
  x?: number;
}

export interface StopRecord {
  reason: string;
  epoch?: number;
  step?: number;
  time?: number;
  x?: number;
}

export interface RunLog {
  steps: StepRecord[];
  epochs: EpochRecord[];
  evals: EvalRecord[];
  resumes: ResumeRecord[];
  extensions: ExtendRecord[];
  stops: StopRecord[];
  /** Non-empty lines read. */
  lines: number;
  /** Lines that were not JSON objects (other than a truncated last line). */
  badLines: number;
  /** The last line did not parse: the run was probably killed mid-write. */
  truncatedLastLine: boolean;
  /** Records dropped because a resume re-did their epochs/steps. */
  superseded: number;
  /** Whether the logged `step` counts across epochs (true) or restarts every epoch. */
  stepsAreGlobal: boolean;
  /** Epochs the run was set to train, when a `start` or `epoch` record says (`epochs`). */
  plannedEpochs?: number;
  /** Wall-clock seconds from the timestamps (resume gaps excluded), or from epoch wallS. */
  wallSeconds?: number;
}

/** A finite number; null and the strings "NaN"/"Infinity" become NaN/±Infinity; else undefined. */
function num(v: unknown): number | undefined {
  if (typeof v === 'number') return v;
  if (v === null) return NaN;
  if (typeof v === 'string') {
    const t = v.trim();
    if (t === 'NaN') return NaN;
    if (t === 'Infinity' || t === '+Infinity' || t === 'inf') return Infinity;
    if (t === '-Infinity' || t === '-inf') return -Infinity;
  }
  return undefined;
}

function int(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

function parseLine(line: string): Record<string, unknown> | undefined {
  const tryParse = (s: string): unknown => {
    try {
      return JSON.parse(s);
    } catch {
      return undefined;
    }
  };
  // Python's json.dumps writes NaN / Infinity bare; read them as null.
  const v = tryParse(line) ?? tryParse(line.replace(/(?<=[:,[]\s*)(-?Infinity|NaN)(?=\s*[,}\]])/g, 'null'));
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

export function parseMetrics(text: string): RunLog {
  const raw = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  const log: RunLog = {
    steps: [],
    epochs: [],
    evals: [],
    resumes: [],
    extensions: [],
    stops: [],
    lines: raw.length,
    badLines: 0,
    truncatedLastLine: false,
    superseded: 0,
    stepsAreGlobal: true,
  };
  const records: Record<string, unknown>[] = [];
  raw.forEach((line, i) => {
    const r = parseLine(line);
    if (r) records.push(r);
    else if (i === raw.length - 1) log.truncatedLastLine = true;
    else log.badLines++;
  });

  // Pass 1: is `step` a global counter, or does it restart every epoch? Per-epoch when, within
  // one segment of the run (between resumes), the step goes back as the epoch goes up.
  let prev: { epoch: number; step: number } | undefined;
  for (const r of records) {
    if (r.kind === 'resume') prev = undefined;
    if (r.kind !== 'step' || int(r.step) === undefined) continue;
    const cur = { epoch: int(r.epoch) ?? 0, step: int(r.step)! };
    if (prev && cur.epoch > prev.epoch && cur.step < prev.step) log.stepsAreGlobal = false;
    prev = cur;
  }
  const global = log.stepsAreGlobal;
  /** a - b in run order. */
  const cmp = (a: { epoch?: number; step?: number }, b: { epoch?: number; step?: number }) =>
    global && a.step !== undefined && b.step !== undefined
      ? a.step - b.step
      : (a.epoch ?? 0) - (b.epoch ?? 0) || (a.step ?? 0) - (b.step ?? 0);

  // Pass 2. A resumed run re-does everything from its checkpoint on: what the killed run logged
  // past that point is superseded, so the curves do not double back.
  const opt = <K extends string>(k: K, v: number | undefined) => (v === undefined ? {} : { [k]: v });
  const epochs = new Map<number, EpochRecord>();
  const evals = new Map<number, EvalRecord>();
  const cutSteps = (at: { epoch?: number; step?: number }) => {
    const n = log.steps.length;
    log.steps = log.steps.filter((s) => cmp(s, at) < 0);
    log.superseded += n - log.steps.length;
  };
  let pendingCut = false;
  const timedSegments: number[][] = [[]];
  for (const r of records) {
    const time = int(r.time);
    if ((r.kind === 'start' || r.kind === 'epoch') && int(r.epochs) !== undefined) log.plannedEpochs = int(r.epochs);
    switch (r.kind) {
      case 'step': {
        const step = int(r.step);
        if (step === undefined) continue;
        const rec: StepRecord = {
          epoch: int(r.epoch) ?? 0,
          step,
          x: step,
          ...opt('loss', num(r.loss)),
          ...opt('lr', num(r.lr)),
          ...opt('momentum', num(r.momentum)),
          ...opt('kappaRep', num(r.kappaRep)),
          ...opt('kappaProj', num(r.kappaProj)),
          ...opt('kappaPred', num(r.kappaPred)),
          ...opt('imagesPerSec', num(r.imagesPerSec)),
          ...opt('time', time),
        };
        if (pendingCut) cutSteps(rec);
        pendingCut = false;
        log.steps.push(rec);
        break;
      }
      case 'epoch': {
        const epoch = int(r.epoch);
        if (epoch === undefined) continue;
        if (epochs.has(epoch)) log.superseded++;
        epochs.set(epoch, {
          epoch,
          ...opt('loss', num(r.loss)),
          ...opt('knnTop1', num(r.knnTop1)),
          ...opt('imagesPerSec', num(r.imagesPerSec)),
          ...opt('wallS', num(r.wallS)),
          ...opt('time', time),
        });
        break;
      }
      case 'eval': {
        const epoch = int(r.epoch);
        if (epoch === undefined) continue;
        if (evals.has(epoch)) log.superseded++;
        evals.set(epoch, {
          epoch,
          ...opt('top1', num(r.top1)),
          ...opt('top5', num(r.top5)),
          ...opt('loss', num(r.loss)),
          ...opt('time', time),
        });
        break;
      }
      case 'resume': {
        const at: ResumeRecord = { ...opt('epoch', int(r.epoch)), ...opt('step', int(r.step)), ...opt('time', time) };
        if (at.step !== undefined) cutSteps(at);
        // The first step after the resume also cuts (a resume record without a step).
        pendingCut = true;
        if (at.epoch !== undefined) {
          for (const m of [epochs, evals] as Map<number, unknown>[]) {
            for (const e of [...m.keys()]) {
              if (e > at.epoch) {
                m.delete(e);
                log.superseded++;
              }
            }
          }
        }
        // an extension that the resumed run re-does is logged again by it
        log.extensions = log.extensions.filter(
          (x) => at.step === undefined || x.step === undefined || x.step < at.step,
        );
        log.resumes.push(at);
        timedSegments.push([]);
        break;
      }
      case 'extend': {
        const ext: ExtendRecord = {
          ...opt('epoch', int(r.epoch)),
          ...opt('step', int(r.step)),
          ...opt('fromEpochs', int(r.fromEpochs)),
          ...opt('toEpochs', int(r.toEpochs)),
          ...opt('time', time),
        };
        if (ext.toEpochs !== undefined) log.plannedEpochs = ext.toEpochs;
        log.extensions.push(ext);
        break;
      }
      case 'stop': {
        const reason = r.reason;
        log.stops.push({
          reason: typeof reason === 'string' ? reason : reason === undefined ? 'stopped' : JSON.stringify(reason),
          ...opt('epoch', int(r.epoch)),
          ...opt('step', int(r.step)),
          ...opt('time', time),
        });
        break;
      }
      case 'start':
        break; // the run's start: only its time counts (wall time)
      default:
        continue; // unknown kind: ignored, and its time does not count
    }
    if (time !== undefined) timedSegments[timedSegments.length - 1]!.push(time);
  }
  log.epochs = [...epochs.values()].sort((a, b) => a.epoch - b.epoch);
  log.evals = [...evals.values()].sort((a, b) => a.epoch - b.epoch);
  log.steps.sort(cmp);

  const toX = stepAxis(log.steps, global);
  for (const s of log.steps) s.x = toX(s.epoch, s.step);
  for (const r of log.resumes) if (r.step !== undefined) r.x = toX(r.epoch, r.step);
  for (const r of log.extensions) if (r.step !== undefined) r.x = toX(r.epoch, r.step);
  for (const r of log.stops) {
    if (r.step !== undefined) r.x = toX(r.epoch, r.step);
    else if (log.steps.length) r.x = log.steps[log.steps.length - 1]!.x;
  }

  let wall = 0;
  let timed = false;
  for (const seg of timedSegments) {
    if (seg.length >= 2) {
      let lo = Infinity;
      let hi = -Infinity;
      for (const t of seg) {
        lo = Math.min(lo, t);
        hi = Math.max(hi, t);
      }
      wall += (hi - lo) / 1000;
      timed = true;
    }
  }
  if (timed) log.wallSeconds = wall;
  else if (log.epochs.some((e) => e.wallS !== undefined)) {
    log.wallSeconds = log.epochs.reduce((a, e) => a + (Number.isFinite(e.wallS) ? e.wallS! : 0), 0);
  }
  return log;
}

/** Maps (epoch, step) to a global step: identity for a global counter, else epoch offsets. */
function stepAxis(steps: readonly StepRecord[], global: boolean): (epoch: number | undefined, step: number) => number {
  if (global) return (_e, s) => s;
  const perEpoch = new Map<number, number>();
  for (const s of steps) perEpoch.set(s.epoch, Math.max(perEpoch.get(s.epoch) ?? 0, s.step + 1));
  const width = Math.max(1, ...perEpoch.values());
  const offsets = new Map<number, number>();
  let acc = 0;
  for (const e of [...perEpoch.keys()].sort((a, b) => a - b)) {
    offsets.set(e, acc);
    acc += perEpoch.get(e)!;
  }
  return (e, s) => {
    if (e === undefined) return s;
    const off = offsets.get(e);
    return (off ?? e * width) + s;
  };
}

/** Reads and parses `path`; a missing or empty file is an Error naming the path. */
export async function readMetrics(path: string): Promise<RunLog> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Error(
      `report: cannot read metrics file ${path}${code === 'ENOENT' ? ': no such file' : `: ${String(e)}`}`,
    );
  }
  const log = parseMetrics(text);
  const n = log.steps.length + log.epochs.length + log.evals.length + log.resumes.length + log.stops.length;
  if (n === 0) {
    throw new Error(
      log.lines === 0
        ? `report: metrics file ${path} is empty`
        : `report: metrics file ${path} has no step/epoch/eval records (${log.lines} lines)`,
    );
  }
  return log;
}
