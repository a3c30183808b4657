import { spawn, type ChildProcess } from 'node:child_process';
import { isIPv6 } from 'node:net';

/**
 * sock_diag destroy notifications for one address:port (`ss -E`, through `stdbuf -oL` so each event
 * arrives as it happens rather than when a pipe buffer fills): `onEvent` is called when a socket with
 * that local end is destroyed — a drain's last connection closing is seen at once instead of at the
 * next reading. Only a hint: the count itself is always read afresh. What the process prints is not
 * kept, so it needs no limit; a watcher that fails to start or dies just leaves the readings alone.
 * (`ss` without its `stdbuf` would hold events in a pipe buffer: tested here, none arrived.)
 */
export class SocketEvents {
  #child: ChildProcess | null = null;

  get running(): boolean {
    return this.#child !== null;
  }

  start(address: string, port: number, onEvent: () => void): void {
    if (this.#child) return;
    const local = isIPv6(address) ? `[${address}]:${port}` : `${address}:${port}`;
    // Under a shell that ends it when its stdin closes: when Ebb goes, even by kill -9, so does ss.
    const child = spawn(
      'bash',
      ['-c', 'stdbuf -oL ss -E -H -t -n src "$1" & read -r _; kill $! 2>/dev/null', 'bash', local],
      { stdio: ['pipe', 'pipe', 'ignore'] },
    );
    child.stdin!.on('error', () => {});
    this.#child = child;
    child.stdout!.on('data', () => onEvent());
    child.once('error', () => this.#forget(child));
    child.once('exit', () => this.#forget(child));
  }

  /** Ends the watcher: its shell reads the end of its stdin and ends `ss` (its own child, by PID). */
  stop(): void {
    const child = this.#child;
    this.#child = null;
    if (child && child.exitCode === null && child.signalCode === null) child.stdin!.end();
  }

  #forget(child: ChildProcess): void {
    if (this.#child === child) this.#child = null;
  }
}
