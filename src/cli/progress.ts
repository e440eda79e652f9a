// Progress output: on a TTY one line redrawn in place (bar, step, loss, lr, images/s, ETA);
// elsewhere nothing per step — the caller prints one concise line per epoch.

export class ProgressBar {
  private last = 0;
  private readonly tty: boolean;

  constructor(private readonly stream: NodeJS.WriteStream = process.stderr) {
    this.tty = Boolean(stream.isTTY);
  }

  /** Redraws at most 10 times a second. */
  update(done: number, total: number, text: string): void {
    if (!this.tty) return;
    const now = Date.now();
    if (now - this.last < 100 && done < total) return;
    this.last = now;
    const width = 24;
    const filled = Math.round((width * done) / Math.max(1, total));
    const bar = '█'.repeat(filled) + '░'.repeat(width - filled);
    const cols = this.stream.columns ?? 120;
    this.stream.write(`\r${`${bar} ${done}/${total} ${text}`.slice(0, cols - 1)}\x1b[K`);
  }

  /** Clears the bar so that a normal line can be printed. */
  clear(): void {
    if (this.tty) this.stream.write('\r\x1b[K');
  }
}

export function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return '?';
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = Math.floor(s % 60);
  return h ? `${h}h${String(m).padStart(2, '0')}m` : m ? `${m}m${String(sec).padStart(2, '0')}s` : `${sec}s`;
}
