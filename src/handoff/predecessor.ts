import type { Logger } from 'pino';
import { EbbError, ExitCode } from '../core/index.ts';
import { emptyStats, type ListenerStats } from '../listeners/index.ts';
import {
  PredecessorMessage,
  SuccessorMessage,
  type NoteMessage,
  type ServiceCount,
} from './handoff-messages.ts';
import { connectToControlSocket } from './handoff-socket-path.ts';
import { LineChannel } from './line-channel.ts';

/** How long the running process has to answer each step before the new one gives up. */
const answerMs = 10_000;

/** The hand-off could not be done: the new process exits, the running one carries on. */
export class HandoffError extends EbbError {
  constructor(message: string, cause?: unknown) {
    super('EBB_HANDOFF_FAILED', message, { exitCode: ExitCode.error, cause });
  }
}

type Reply<T extends PredecessorMessage['type']> = Extract<PredecessorMessage, { type: T }>;

/**
 * The running process as the new one sees it during a hand-off (SPEC §13): found on the control socket,
 * told hello (it holds its confirmations), then told to yield (it stops accepting). From then on its
 * sessions are reported here per service, until it says it is done or its connection closes (it exited).
 */
export class Predecessor {
  readonly #channel: LineChannel<PredecessorMessage, SuccessorMessage>;
  readonly #stats = new Map<string, ListenerStats>();
  readonly #watchers = new Set<() => void>();
  readonly #endings = new Map<number, (count: number) => void>();
  #nextId = 1;
  #next: ((message: PredecessorMessage) => void) | null = null;
  #result: { ended: number; forced: number } | null = null;
  pid = 0;
  members: readonly string[] = [];
  /** Resolves when the predecessor is gone: its `done` (the result), or its connection closed (null). */
  readonly finished: Promise<{ ended: number; forced: number } | null>;

  private constructor(channel: LineChannel<PredecessorMessage, SuccessorMessage>) {
    this.#channel = channel;
    channel.onMessage((message) => this.#receive(message));
    this.finished = channel.closed.then(() => {
      // Gone: what it still reported open is no longer anyone's (it exited, or crashed).
      for (const [key, stats] of this.#stats) this.#stats.set(key, closedStats(stats));
      for (const resolve of this.#endings.values()) resolve(0);
      this.#endings.clear();
      this.#notify();
      return this.#result;
    });
  }

  /** The process listening at `path`, told hello; null when none listens there (no hand-off). */
  static async find(path: string, logger: Logger): Promise<Predecessor | null> {
    const socket = await connectToControlSocket(path);
    if (socket instanceof Error) {
      if (socket.code !== 'ENOENT' && socket.code !== 'ECONNREFUSED')
        logger.warn({ code: 'EBB_HANDOFF_SOCKET', err: socket.message }, 'hand-off control socket');
      return null;
    }
    const predecessor = new Predecessor(new LineChannel(socket, PredecessorMessage));
    predecessor.#channel.send({ type: 'hello', pid: process.pid, version: '1' });
    const hello = await predecessor.#await('hello');
    predecessor.pid = hello.pid;
    predecessor.members = hello.members;
    return predecessor;
  }

  /**
   * A predecessor of a process that has exited, re-attached on `channel` (`adopt`): it yielded long
   * ago, and reports its sessions from here on.
   */
  static adopted(
    channel: LineChannel<PredecessorMessage, SuccessorMessage>,
    pid: number,
    members: readonly string[],
  ): Predecessor {
    const predecessor = new Predecessor(channel);
    predecessor.pid = pid;
    predecessor.members = members;
    return predecessor;
  }

  /** Tells it to stop accepting; resolves once it has, with how many sessions it still serves. */
  async yield(timeoutMs: number): Promise<number> {
    this.#channel.send({ type: 'yield', timeoutMs });
    const yielded = await this.#await('yielded');
    this.#record(yielded.services);
    return yielded.services.reduce((n, s) => n + s.stats.sessions, 0);
  }

  /** Its stats for one service since it yielded (empty before, and for a service it does not run). */
  stats(member: string, service: string): ListenerStats {
    return this.#stats.get(key(member, service)) ?? emptyStats();
  }

  /** Sessions it still serves, all services together. */
  get sessions(): number {
    let n = 0;
    for (const s of this.#stats.values()) n += s.sessions;
    return n;
  }

  /** Calls `changed` whenever its stats change. */
  onChange(changed: () => void): () => void {
    this.#watchers.add(changed);
    return () => this.#watchers.delete(changed);
  }

  /** Asks it to end one service's sessions now (counted as forced there); resolves with how many. */
  endSessions(member: string, service: string): Promise<number> {
    if (!this.#channel.open) return Promise.resolve(0);
    const id = this.#nextId++;
    return new Promise((resolve) => {
      this.#endings.set(id, resolve);
      this.#channel.send({ type: 'end-sessions', id, member, service });
    });
  }

  /** Passes a note of one of this process's listeners on to the predecessor's listener of that config. */
  note(message: Omit<NoteMessage, 'type'>): void {
    this.#channel.send({ type: 'note', ...message });
  }

  /** Closes the connection (a hand-off the new process abandons: the running one carries on). */
  abandon(): void {
    this.#channel.close();
  }

  #receive(message: PredecessorMessage): void {
    switch (message.type) {
      case 'sessions':
        this.#record(message.services);
        return;
      case 'ended':
        this.#endings.get(message.id)?.(message.count);
        this.#endings.delete(message.id);
        return;
      case 'done':
        this.#result = { ended: message.ended, forced: message.forced };
        return;
      default:
        this.#next?.(message);
    }
  }

  #record(services: ServiceCount[]): void {
    for (const s of services) this.#stats.set(key(s.member, s.service), s.stats);
    this.#notify();
  }

  #notify(): void {
    for (const changed of [...this.#watchers]) changed();
  }

  /** The next message, which must be of `type`; a `refused`, silence or a closed connection rejects. */
  #await<T extends PredecessorMessage['type']>(type: T): Promise<Reply<T>> {
    return new Promise((resolve, reject) => {
      let settled = false;
      const settle = (err: HandoffError | null, message?: PredecessorMessage) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.#next = null;
        if (!err) return resolve(message as Reply<T>);
        this.#channel.close();
        reject(err);
      };
      const timer = setTimeout(
        () =>
          settle(new HandoffError(`the running process did not answer ${type} within ${answerMs / 1000} s`)),
        answerMs,
      );
      void this.#channel.closed.then((err) =>
        settle(
          new HandoffError(
            `the running process closed the hand-off before ${type}${err ? `: ${err.message}` : ''}`,
            err,
          ),
        ),
      );
      this.#next = (message) => {
        if (message.type === type) settle(null, message);
        else if (message.type === 'refused')
          settle(new HandoffError(`the running process refused the hand-off: ${message.reason}`));
        else settle(new HandoffError(`the running process sent ${message.type} where ${type} was due`));
      };
    });
  }
}

function key(member: string, service: string): string {
  return `${member}\0${service}`;
}

/** The counters kept, nothing open. */
function closedStats(stats: ListenerStats): ListenerStats {
  return {
    ...stats,
    sessions: 0,
    byKind: {},
    idleConnections: 0,
    ...(stats.flows !== undefined ? { flows: 0 } : {}),
  };
}
