import { watch, type FSWatcher } from 'node:fs';
import { dirname } from 'node:path';
import type { SecureContext } from 'node:tls';
import type { EbbError } from '../core/index.ts';
import { onSighupReload } from './sighup.ts';
import { loadTlsCredentials, type TlsCredentials, type TlsFiles } from './tls-credentials.ts';

export interface ReloadingSecureContextOptions {
  files: TlsFiles;
  /** Told of each new pair in use (for logs: subject, fingerprint, expiry). */
  onReload?: (credentials: TlsCredentials) => void;
  /** Told when a re-read failed; the pair in use stays. */
  onError?: (err: EbbError) => void;
  /** How long to wait after the last file event before re-reading (renewals write both files). */
  debounceMs?: number;
  /** Re-read when the files change (default true). */
  watch?: boolean;
  /** Re-read on SIGHUP (default true). */
  sighup?: boolean;
}

const defaultDebounceMs = 200;

/**
 * The certificate and key of a TLS front end (SPEC §11), re-read when either file changes or on SIGHUP.
 * New connections take `context` as it is when they arrive; a swap never touches a connection already
 * open (each TLS socket keeps the context it was made with). A re-read that fails — a file half
 * written, a key that does not fit yet because only the certificate was replaced — keeps the pair in
 * use and is reported; the next change or SIGHUP tries again.
 *
 * The folders are watched, not the files: renewal tools replace files by rename (certbot, Kubernetes
 * secret volumes swap a symlink), which a watch on the old file would miss.
 */
export class ReloadingSecureContext {
  readonly #o: ReloadingSecureContextOptions;
  #current: TlsCredentials;
  readonly #watchers: FSWatcher[] = [];
  #timer: NodeJS.Timeout | null = null;
  #stopSighup: (() => void) | null = null;
  #reloading: Promise<boolean> | null = null;
  #again = false;
  #closed = false;
  #reloads = 0;

  private constructor(options: ReloadingSecureContextOptions, first: TlsCredentials) {
    this.#o = options;
    this.#current = first;
  }

  /** Reads the files (rejecting with `TlsFileError` / `TlsCredentialsError`) and starts watching them. */
  static async open(options: ReloadingSecureContextOptions): Promise<ReloadingSecureContext> {
    const source = new ReloadingSecureContext(options, await loadTlsCredentials(options.files));
    source.#start();
    return source;
  }

  /** The context a connection arriving now gets. */
  get context(): SecureContext {
    return this.#current.context;
  }

  get credentials(): TlsCredentials {
    return this.#current;
  }

  /** How many times a new pair was taken into use. */
  get reloads(): number {
    return this.#reloads;
  }

  /**
   * Re-reads both files now; resolves true if a new pair is in use, false if nothing changed or the
   * re-read failed (reported through `onError`). Calls while one runs are folded into one more.
   */
  reload(): Promise<boolean> {
    if (this.#reloading) {
      this.#again = true;
      return this.#reloading;
    }
    this.#reloading = this.#reloadOnce().finally(() => {
      this.#reloading = null;
      if (this.#again && !this.#closed) {
        this.#again = false;
        void this.reload();
      }
    });
    return this.#reloading;
  }

  close(): void {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    for (const w of this.#watchers.splice(0)) w.close();
    this.#stopSighup?.();
    this.#stopSighup = null;
  }

  async #reloadOnce(): Promise<boolean> {
    let next: TlsCredentials;
    try {
      next = await loadTlsCredentials(this.#o.files);
    } catch (err) {
      if (!this.#closed) this.#o.onError?.(err as EbbError);
      return false;
    }
    if (this.#closed) return false;
    const was = this.#current.source;
    if (was.cert.equals(next.source.cert) && was.key.equals(next.source.key)) return false;
    this.#current = next;
    this.#reloads++;
    this.#o.onReload?.(next);
    return true;
  }

  #start(): void {
    if (this.#o.sighup ?? true) this.#stopSighup = onSighupReload(() => void this.reload());
    if (!(this.#o.watch ?? true)) return;
    for (const dir of new Set([dirname(this.#o.files.cert), dirname(this.#o.files.key)])) {
      try {
        // Any change in the folder counts (a renamed temporary file, a swapped `..data` symlink): a
        // re-read whose bytes did not change is a no-op.
        const watcher = watch(dir, { persistent: false }, () => this.#debounce());
        watcher.on('error', () => watcher.close());
        this.#watchers.push(watcher);
      } catch {
        // A folder that cannot be watched (no inotify left): SIGHUP still re-reads.
      }
    }
  }

  #debounce(): void {
    if (this.#closed) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = null;
      void this.reload();
    }, this.#o.debounceMs ?? defaultDebounceMs);
    this.#timer.unref();
  }
}
