// `mmoco pack <ImageFolder root> <out.mmpack>`: one packed file of a data set (src/data/pack.ts).
import { packImageFolder } from '../../data/pack.js';
import { UsageError } from './common.js';

const HELP = `usage: mmoco pack <ImageFolder root> <out.mmpack> [--splits train,val] [--max-per-class N] [--seed S]

Packs an ImageFolder tree — train/ and val/ (or test/) sub-folders of class folders, or a single
class folder tree (packed as the split 'train') — into one file that --data accepts. JPEGs that
share their header (one encoder, one size) store it once; the images decode to exactly the
folder's pixels. Written atomically; prints one JSON line (counts, bytes, ratio to the files).

  --splits a,b         the split sub-folders to pack (default: train and whichever of val/test exist)
  --max-per-class N    at most N images per class and split, a seeded choice (small packs)
  --seed S             the seed of that choice (default 0)`;

function positiveInt(flag: string, v: string | undefined, min: number): number {
  const n = Number(v);
  if (v === undefined || !Number.isInteger(n) || n < min)
    throw new UsageError(`${flag} needs an integer ≥ ${min}, got ${v ?? 'nothing'}`);
  return n;
}

export function packCommand(argv: readonly string[]): number {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(HELP);
    return 0;
  }
  const pos: string[] = [];
  let splits: string[] | undefined;
  let maxPerClass: number | undefined;
  let seed: number | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const [flag, inline] =
      a.startsWith('--') && a.includes('=')
        ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)]
        : [a, undefined];
    const value = (): string | undefined => inline ?? argv[++i];
    if (flag === '--splits') {
      const v = value();
      if (!v) throw new UsageError('--splits needs a comma-separated list, e.g. train,val');
      splits = v.split(',').filter((s) => s.length > 0);
    } else if (flag === '--max-per-class') maxPerClass = positiveInt('--max-per-class', value(), 1);
    else if (flag === '--seed') seed = positiveInt('--seed', value(), 0);
    else if (flag.startsWith('--')) throw new UsageError(`pack: unknown option ${flag}\n\n${HELP}`);
    else pos.push(a);
  }
  if (pos.length !== 2) throw new UsageError(`pack: expected a folder and an output file\n\n${HELP}`);
  const [root, out] = pos as [string, string];
  if (!out.endsWith('.mmpack')) throw new UsageError(`pack: the output file must end in .mmpack, got ${out}`);
  let stats;
  try {
    stats = packImageFolder(root, out, { splits, maxPerClass, seed });
  } catch (e) {
    if (e instanceof RangeError || (e instanceof Error && e.message.startsWith('pack: ')))
      throw new UsageError(e.message.replace(/^pack: /, ''));
    throw e;
  }
  console.log(
    JSON.stringify({ ...stats, ratio: Number(stats.ratio.toFixed(4)), seconds: Number(stats.seconds.toFixed(2)) }),
  );
  return 0;
}
