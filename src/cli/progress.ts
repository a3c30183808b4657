import { formatDuration } from '../core/index.ts';

/**
 * Shows a drain's progress: a redrawn bar on a terminal, plain lines (only when something changed)
 * otherwise, so logs and CI output stay readable.
 */
export class DrainProgress {
  private readonly out: NodeJS.WriteStream;
  private readonly label: string;
  private readonly startedAt = Date.now();
  private initial: number | null = null;
  private lastLine = '';

  constructor(label: string, out: NodeJS.WriteStream = process.stderr) {
    this.label = label;
    this.out = out;
  }

  update(sessionsLeft: number, detail = ''): void {
    this.initial ??= Math.max(sessionsLeft, 1);
    const elapsed = formatDuration(Date.now() - this.startedAt);
    if (this.out.isTTY) {
      const width = 30;
      const done = Math.round(width * (1 - Math.min(sessionsLeft, this.initial) / this.initial));
      const bar = `${'█'.repeat(done)}${'░'.repeat(width - done)}`;
      this.out.write(
        `\r\x1b[2K${this.label} ${bar} ${sessionsLeft} session(s) left · ${elapsed}${detail ? ` · ${detail}` : ''}`,
      );
      return;
    }
    const line = `${this.label}: ${sessionsLeft} session(s) left${detail ? ` (${detail})` : ''}`;
    if (line !== this.lastLine) this.out.write(`${line} · ${elapsed}\n`);
    this.lastLine = line;
  }

  finish(message: string): void {
    if (this.out.isTTY) this.out.write('\r\x1b[2K');
    this.out.write(`${message} (${formatDuration(Date.now() - this.startedAt)})\n`);
  }
}
