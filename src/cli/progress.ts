import { formatDuration } from '../core/index.ts';
import { safeText } from './safe-text.ts';

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
  /** A bar is on the terminal's current line: clear it before writing anything else. */
  private drawn = false;

  constructor(label: string, out: NodeJS.WriteStream = process.stderr) {
    this.label = label;
    this.out = out;
  }

  update(sessionsLeft: number, detail = ''): void {
    this.initial ??= Math.max(sessionsLeft, 1);
    const elapsed = formatDuration(Date.now() - this.startedAt);
    const shown = safeText(detail);
    if (this.out.isTTY) {
      const width = 30;
      const done = Math.round(width * (1 - Math.min(sessionsLeft, this.initial) / this.initial));
      const bar = `${'█'.repeat(done)}${'░'.repeat(width - done)}`;
      this.out.write(
        `\r\x1b[2K${this.label} ${bar} ${sessionsLeft} session(s) left · ${elapsed}${shown ? ` · ${shown}` : ''}`,
      );
      this.drawn = true;
      return;
    }
    const line = `${this.label}: ${sessionsLeft} session(s) left${shown ? ` (${shown})` : ''}`;
    if (line !== this.lastLine) this.out.write(`${line} · ${elapsed}\n`);
    this.lastLine = line;
  }

  /** A line of its own (the API went away, came back); on a terminal the bar is redrawn below it. */
  note(message: string): void {
    this.clear();
    this.out.write(`${safeText(message)}\n`);
    this.lastLine = '';
  }

  /** Removes the bar, so that an error printed next starts on a clean line. */
  clear(): void {
    if (this.drawn) this.out.write('\r\x1b[2K');
    this.drawn = false;
  }

  finish(message: string): void {
    this.clear();
    this.out.write(`${safeText(message)} (${formatDuration(Date.now() - this.startedAt)})\n`);
  }
}
