import type { Logger } from 'pino';
import type { ServiceConfig } from '../config/index.ts';
import {
  EbbError,
  EventCode,
  type ApplyError,
  type EbbEvent,
  type ServiceIntent,
  type ServiceStatus,
} from '../core/index.ts';
import type { LocalIntent } from './local-intents.ts';
import type { ServiceRuntime } from './service-runtime.ts';

/** A failed apply is tried again after this, doubling up to `maxRetryMs`, while it is the newest intent. */
const firstRetryMs = 1000;
const maxRetryMs = 30_000;

export interface ServiceSlotOptions {
  member: string;
  config: ServiceConfig;
  runtime: ServiceRuntime;
  logger: Logger;
  publish: (event: EbbEvent) => void;
  /** The slot's status changed in a way a reader must see now (an intent applied or failed). */
  onApplied: () => void;
}

/**
 * One service of a member agent: the newest intent known for it, the runtime that carries it out, and
 * what became of the last attempt. The agent confirms an intent revision only once the runtime is in
 * the asked state (SPEC §2: `pause` returns once the listener refuses); a failure is reported in status
 * with its code and tried again, never confirmed.
 */
export class ServiceSlot {
  readonly id: string;
  readonly config: ServiceConfig;
  readonly runtime: ServiceRuntime;
  private readonly options: ServiceSlotOptions;
  private wantedEntry: LocalIntent | null = null;
  /** The intent the runtime is known to be in, and its revision (what status confirms). */
  private appliedEntry: LocalIntent | null = null;
  private appliedRevision = 0;
  private failure: ApplyError | null = null;
  private queue: Promise<void> = Promise.resolve();
  private retryTimer: NodeJS.Timeout | null = null;
  private retryMs = firstRetryMs;
  private stopped = false;

  constructor(options: ServiceSlotOptions) {
    this.options = options;
    this.id = options.config.id;
    this.config = options.config;
    this.runtime = options.runtime;
  }

  /** The newest intent known (from the store, the local copy or the boot policy); null before boot. */
  get wanted(): LocalIntent | null {
    return this.wantedEntry;
  }

  /** Takes a newer intent and applies it after whatever is under way; an older or equal revision is ignored. */
  want(entry: LocalIntent): boolean {
    const known = this.wantedEntry;
    if (known && known.revision >= entry.revision) return false;
    this.wantedEntry = entry;
    void this.apply();
    return true;
  }

  /**
   * Takes an intent whatever its revision, because the store was replaced: its revisions started again,
   * and the old ones mean nothing there. What the runtime applied is confirmed again under the new
   * revision once it has been applied (never at once: a command in the new store must not look done).
   */
  rebase(entry: LocalIntent): void {
    this.wantedEntry = entry;
    this.appliedEntry = null;
    this.appliedRevision = 0;
    this.failure = null;
    void this.apply();
  }

  /** What the status writer publishes: the runtime's view plus which intent is in effect. */
  status(): ServiceStatus {
    return { ...this.runtime.status(), intentRevision: this.appliedRevision, applyError: this.failure };
  }

  /** Resolves once every application queued so far has run. */
  settled(): Promise<void> {
    return this.queue;
  }

  stop(): void {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
  }

  /** Applications for one service run one after another, in order. */
  private apply(): Promise<void> {
    this.queue = this.queue.then(() => this.applyNow());
    return this.queue;
  }

  private async applyNow(): Promise<void> {
    const entry = this.wantedEntry;
    if (this.stopped || !entry) return;
    if (entry === this.appliedEntry) return;
    try {
      await drive(this.runtime, entry.intent);
    } catch (err) {
      this.failed(entry, err);
      return;
    }
    // Confirm only what was asked: a newer intent that arrived meanwhile is applied by its own turn.
    this.appliedEntry = entry;
    this.appliedRevision = entry.revision;
    this.failure = null;
    this.retryMs = firstRetryMs;
    this.options.onApplied();
  }

  private failed(entry: LocalIntent, err: unknown): void {
    const code = err instanceof EbbError ? err.code : 'EBB_APPLY_FAILED';
    const message = err instanceof Error ? err.message : String(err);
    const first = this.failure?.intentRevision !== entry.revision || this.failure.message !== message;
    if (this.failure?.intentRevision !== entry.revision) this.retryMs = firstRetryMs;
    this.failure = { intentRevision: entry.revision, code, message, at: Date.now() };
    // A failed start is told by the runtime itself (with what its clean-up did); say it once.
    const toldByRuntime = this.runtime.status().error === message;
    if (first) {
      this.options.logger.error(
        { member: this.options.member, service: this.id, code, err: message, intentRevision: entry.revision },
        'cannot apply intent; retrying',
      );
      if (!toldByRuntime)
        this.options.publish({
          code: EventCode.serviceFailed,
          member: this.options.member,
          service: this.id,
          at: Date.now(),
          data: { state: this.runtime.state, intent: entry.intent.run, error: message, errorCode: code },
        });
    }
    this.options.onApplied();
    this.scheduleRetry(entry);
  }

  private scheduleRetry(entry: LocalIntent): void {
    if (this.stopped) return;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    const delay = this.retryMs;
    this.retryMs = Math.min(this.retryMs * 2, maxRetryMs);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (this.wantedEntry === entry) void this.apply();
    }, delay);
    this.retryTimer.unref();
  }
}

/** Moves the runtime towards the intent; every call is safe to repeat (the runtime skips what is done). */
async function drive(runtime: ServiceRuntime, intent: ServiceIntent): Promise<void> {
  const state = runtime.state;
  if (intent.run === 'running') {
    if (state === 'stopped') await runtime.start(false);
    else if (state === 'paused' || state === 'stopping') await runtime.resume();
  } else if (intent.run === 'paused') {
    if (state === 'stopped') await runtime.start(true);
    else await runtime.pause(intent.deadlineAt);
  } else {
    await runtime.stop(intent.graceful, intent.deadlineAt);
  }
}
