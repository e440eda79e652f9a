// `mmoco ablate`: a grid of pre-trainings at an equal budget (src/train/grid.ts, ablate.ts), each
// cell evaluated the same way, then table.json, table.md and grid.html. Under `mmoco launch
// --nproc K` every rank trains its share of the cells single-process and rank 0 writes the table.
import { runGrid } from '../../train/ablate.js';
import { gridCells, listGridPresets, loadGrid } from '../../train/grid.js';
import { ConfigError } from '../../train/schema.js';
import { consoleHooks, pretrainEpochLine } from '../progress.js';
import { UsageError } from './common.js';

export const ABLATE_USAGE =
  'mmoco ablate --grid <preset|file.json> [--data <folder|fashion-mnist|...>] [--out <dir>] [--seeds N] [--finetune] [--set key=value]';

function help(): string {
  const presets = listGridPresets();
  const w = Math.max(0, ...presets.map((p) => p.name.length)) + 4;
  return [
    `usage: ${ABLATE_USAGE}`,
    '',
    "Runs a grid of pre-trainings (the product of the grid's axes) at an equal budget, evaluates every",
    'cell the same way (weighted kNN and a linear probe on frozen features of the held-out split, and a',
    "short fine-tuning with --finetune) and writes <out>/table.json, table.md (laid out as the paper's",
    'tables) and grid.html (top-1 against n and m, the loss and κ curves overlaid). Each cell is a',
    'pre-training run folder <out>/cells/<cell>; run the same command again to skip the cells that are',
    'done and resume the others. Under `mmoco launch --nproc K mmoco ablate ...` the K processes share',
    'the cells (each trains its cells single-process) and rank 0 writes the table.',
    '',
    'options:',
    '  --grid <preset|file.json>   a grid preset (below) or a grid file: a base pretrain config (its keys,',
    '                              or "preset": "<configs name>"), "axes": {"<pretrain key>": [values]},',
    '                              "budget": {"epochs"|"images"|"minutes": N}, optional "probe" {epochs,',
    '                              batchSize, blr} and "finetune" (finetune keys, or "preset")',
    "  --data <folder|name>        the images (replaces the grid's data)",
    '  --out <dir>                 output folder (default runs/ablate-<grid>)',
    '  --seeds N                   run every cell with seeds 0..N-1; the table gives mean ± std (default 1)',
    '  --finetune                  also fine-tune every cell (the grid\'s "finetune" settings)',
    "  --set key=value             override a pretrain key of the grid's base (repeatable; not an axis)",
    '',
    'grid presets:',
    ...presets.map((p) => `  ${p.name.padEnd(w)}${p.description.split(/(?<=\.) /)[0]}`),
  ].join('\n');
}

interface AblateArgs {
  help: boolean;
  grid: string | null;
  data: string | null;
  out: string | null;
  seeds: number;
  finetune: boolean;
  sets: string[];
}

export function parseAblate(argv: readonly string[]): AblateArgs {
  const a: AblateArgs = { help: false, grid: null, data: null, out: null, seeds: 1, finetune: false, sets: [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--help' || arg === '-h') {
      a.help = true;
      continue;
    }
    if (!arg.startsWith('--')) throw new UsageError(`ablate: unexpected argument '${arg}' (see mmoco ablate --help)`);
    const eq = arg.indexOf('=');
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    const inline = eq > 0 ? arg.slice(eq + 1) : undefined;
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined || v === '') throw new UsageError(`ablate: ${flag} needs a value`);
      return v;
    };
    if (flag === '--finetune') a.finetune = true;
    else if (flag === '--grid') a.grid = value();
    else if (flag === '--data') a.data = value();
    else if (flag === '--out') a.out = value();
    else if (flag === '--set') a.sets.push(value());
    else if (flag === '--seeds') {
      const v = value();
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1) throw new ConfigError(`--seeds must be an integer ≥ 1, got '${v}'`);
      a.seeds = n;
    } else throw new UsageError(`ablate: unknown option ${flag} (see mmoco ablate --help)`);
  }
  return a;
}

export async function ablateCommand(argv: readonly string[]): Promise<number> {
  const a = parseAblate(argv);
  if (a.help) {
    console.log(help());
    return 0;
  }
  if (!a.grid) throw new UsageError(`ablate: --grid is required\n\nusage: ${ABLATE_USAGE}`);
  const spec = loadGrid(a.grid, { sets: a.sets, data: a.data });
  const out = a.out ?? `runs/ablate-${spec.name}`;
  // under `mmoco launch` the ranks share out the cells; each cell trains in a single process, so
  // the training code must not see a process group
  const rank = Number(process.env.RANK ?? 0);
  const world = Number(process.env.WORLD_SIZE ?? 1);
  for (const k of ['RANK', 'LOCAL_RANK', 'WORLD_SIZE', 'LOCAL_WORLD_SIZE']) delete process.env[k];
  const total = gridCells(spec, a.seeds).length;
  const tag = world > 1 ? `[rank ${rank}] ` : '';
  const { log, onStep } = consoleHooks(pretrainEpochLine, { tag });
  const res = await runGrid(spec, {
    out,
    seeds: a.seeds,
    finetune: a.finetune,
    rank,
    world,
    log,
    pretrainHooks: (cell) => ({
      log,
      onStep,
      onEpoch: (e) => log(`${cell}: ${pretrainEpochLine(e)}`),
    }),
  });
  if (!res.table) return 0;
  console.log(
    JSON.stringify({
      out: res.out,
      cells: total,
      trained: res.trained.length,
      skipped: res.skipped.length,
      epochs: res.table.budget.epochs,
      table: `${out}/table.md`,
      html: `${out}/grid.html`,
    }),
  );
  return 0;
}
