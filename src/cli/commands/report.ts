// `mmoco report <run>`: the self-contained HTML report of a run and PNGs of its charts.
import { writeReport } from '../../report/index.js';
import { UsageError } from './common.js';

const HELP = `usage: mmoco report <run folder> [--out <file.html>] [--no-png]

Writes <run>/report.html (one self-contained file: inline SVG charts of loss, lr, momentum, κ
rep/proj/pred, kNN or top-1/top-5 accuracy and throughput; no network needed to view it) and
PNG images of the charts in <run>/report/.`;

export async function reportCommand(argv: readonly string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(HELP);
    return 0;
  }
  let out: string | undefined;
  let png = true;
  const pos: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--out') out = argv[++i];
    else if (a.startsWith('--out=')) out = a.slice(6);
    else if (a === '--no-png') png = false;
    else if (a.startsWith('--')) throw new UsageError(`report: unknown option ${a}`);
    else pos.push(a);
  }
  if (pos.length !== 1) throw new UsageError(`report: expected one run folder\n\n${HELP}`);
  const r = await writeReport(pos[0]!, { ...(out ? { out } : {}), png });
  console.log(JSON.stringify({ html: r.html, pngs: r.pngs }));
  return 0;
}
