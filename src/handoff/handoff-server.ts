import { existsSync, unlinkSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import type { ListenerStats } from '../listeners/index.ts';
import {
  PredecessorMessage,
  SuccessorMessage,
  type NoteMessage,
  type ServiceCount,
} from './handoff-messages.ts';
import { LineChannel } from './line-channel.ts';

/** `sessions` messages go out at most this often: a burst of closes is one message. */
const coalesceMs = 50;

/** What a running process does when a successor asks (the runner implements it). */
export interface HandingOver {
  /** The members this process runs (told to the successor). */
  readonly members: readonly string[];
  /** A successor said hello: confirm no intent until it takes over, so a pause waits for it. */
  holdConfirmations(): void;
  /** The successor went away before taking over: confirm again as before. */
  resumeConfirmations(): void;
  /** Stop accepting everywhere (listeners, agent-check, API, DNS); live sessions go on. */
  stopAccepting(deadlineMs: number): Promise<void>;
  /** Each service's stats now. */
  services(): Array<{ member: string; service: string; stats: ListenerStats }>;
  /** Calls `changed` whenever a service's stats change. */
  onChange(changed: () => void): void;
  /** Ends a service's sessions now, counted as forced; resolves with how many. */
  endSessions(member: string, service: string): Promise<number>;
  /** Ends every session left now (the hand-off deadline), counted as forced. */
  endAll(): Promise<number>;
  /** A listener of the successor routed a request inside a dialog of one of this process's listeners. */
  applyNote(note: NoteMessage): void;
}

export interface HandoffServerEvents {
  /** The successor took over: this process no longer accepts, and says so. */
  yielded(successorPid: number, sessions: number): void;
  /** Every session of this process has ended (or was ended at the deadline): it may exit. */
  finished(result: { ended: number; forced: number }): void;
}

/**
 * The running process's end of the hand-off (SPEC §13): listens on the control socket for the process
 * that replaces it, and does its part of the exchange in `handoff-messages.ts`. One successor at a time;
 * a second while one is under way is refused.
 */
export class HandoffServer {
  readonly #server: Server;
  readonly #path: string;
  readonly #parts: HandingOver;
  readonly #events: HandoffServerEvents;
  readonly #logger: Logger;
  #successor: LineChannel<SuccessorMessage, PredecessorMessage> | null = null;
  #yielded = false;

  private constructor(
    server: Server,
    path: string,
    parts: HandingOver,
    events: HandoffServerEvents,
    logger: Logger,
  ) {
    this.#server = server;
    this.#path = path;
    this.#parts = parts;
    this.#events = events;
    this.#logger = logger;
  }

  /**
   * Listens at `path`. A file left there by a process that is gone (nothing answers a connect) is removed
   * first; the caller has already found that no process listens there, or taken over from the one that did.
   */
  static async listen(
    path: string,
    parts: HandingOver,
    events: HandoffServerEvents,
    logger: Logger,
  ): Promise<HandoffServer> {
    if (existsSync(path)) unlinkSync(path);
    let handoff: HandoffServer | null = null;
    const server = createServer((socket) => {
      if (handoff) handoff.#connected(socket);
      else socket.destroy();
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => resolve());
    });
    server.removeAllListeners('error');
    server.on('error', (err) =>
      logger.warn({ code: 'EBB_HANDOFF_SOCKET', err: err.message }, 'hand-off control socket error'),
    );
    handoff = new HandoffServer(server, path, parts, events, logger);
    return handoff;
  }

  get path(): string {
    return this.#path;
  }

  /**
   * Stops listening; the successor's connection stays (net.Server's close callback would wait for it,
   * so it is not awaited). The successor's socket has the path by then: the file is left alone.
   */
  stopListening(): void {
    if (this.#server.listening) this.#server.close();
  }

  /** At exit: stops listening and removes the socket file if it is still ours. */
  close(): void {
    if (!this.#server.listening) return;
    this.stopListening();
    if (!this.#yielded && existsSync(this.#path)) unlinkSync(this.#path);
  }

  #connected(socket: Socket): void {
    const channel = new LineChannel<SuccessorMessage, PredecessorMessage>(socket, SuccessorMessage);
    if (this.#successor || this.#yielded) {
      channel.send({
        type: 'refused',
        reason: this.#yielded ? 'this process has already handed over' : 'another hand-off is under way',
      });
      channel.close();
      return;
    }
    this.#successor = channel;
    let pid = 0;
    channel.onMessage((message) => {
      switch (message.type) {
        case 'hello':
          pid = message.pid;
          this.#parts.holdConfirmations();
          this.#logger.info({ successorPid: pid }, 'a new process is taking over; confirmations wait for it');
          channel.send({ type: 'hello', pid: process.pid, members: [...this.#parts.members] });
          return;
        case 'yield':
          void this.#yield(channel, pid, message.timeoutMs);
          return;
        case 'note':
          this.#parts.applyNote(message);
          return;
        case 'end-sessions':
          void this.#parts
            .endSessions(message.member, message.service)
            .catch(() => 0)
            .then((count) => channel.send({ type: 'ended', id: message.id, count }));
          return;
      }
    });
    void channel.closed.then((err) => {
      if (err)
        this.#logger.warn(
          { code: err instanceof Error && 'code' in err ? err.code : undefined, err: err.message },
          'hand-off connection closed',
        );
      if (this.#yielded) return;
      this.#successor = null;
      this.#parts.resumeConfirmations();
      this.#logger.warn(
        { successorPid: pid },
        'the new process went away before taking over; this one carries on',
      );
    });
  }

  async #yield(
    channel: LineChannel<SuccessorMessage, PredecessorMessage>,
    pid: number,
    timeoutMs: number,
  ): Promise<void> {
    if (this.#yielded) return;
    this.#yielded = true;
    await this.#parts.stopAccepting(timeoutMs);
    this.stopListening();
    const base = new Map(this.#parts.services().map((s) => [`${s.member}\0${s.service}`, s.stats]));
    const report = (): ServiceCount[] =>
      this.#parts.services().map((s) => ({
        member: s.member,
        service: s.service,
        stats: since(s.stats, base.get(`${s.member}\0${s.service}`)),
      }));
    const live = () => report().reduce((n, s) => n + s.stats.sessions, 0);
    const startedWith = live();
    // Said here first: the successor reports itself up only after it has this answer.
    this.#events.yielded(pid, startedWith);
    channel.send({ type: 'yielded', services: report() });
    let finished = false;
    let timer: NodeJS.Timeout | null = null;
    const finish = () => {
      if (finished) return;
      finished = true;
      clearTimeout(deadline);
      if (timer) clearTimeout(timer);
      const services = report();
      // Ended at the deadline or at the successor's word (its own deadline, a stop) alike.
      const forced = services.reduce((n, s) => n + s.stats.forced, 0);
      const result = { ended: Math.max(0, startedWith - forced), forced };
      channel.send({ type: 'sessions', services });
      channel.send({ type: 'done', ...result });
      channel.close();
      this.#events.finished(result);
    };
    const deadline = setTimeout(() => {
      void this.#parts.endAll().then(finish, finish);
    }, timeoutMs);
    this.#parts.onChange(() => {
      if (finished || timer) return;
      timer = setTimeout(() => {
        timer = null;
        if (finished) return;
        channel.send({ type: 'sessions', services: report() });
        if (live() === 0) finish();
      }, coalesceMs);
    });
    if (startedWith === 0) finish();
  }
}

/** Counters since the hand-off began; what is open now as it is. */
function since(now: ListenerStats, then: ListenerStats | undefined): ListenerStats {
  if (!then) return now;
  return {
    ...now,
    accepted: Math.max(0, now.accepted - then.accepted),
    refused: Math.max(0, now.refused - then.refused),
    forced: Math.max(0, now.forced - then.forced),
    upstreamFailures: Math.max(0, now.upstreamFailures - then.upstreamFailures),
    acceptErrors: Math.max(0, now.acceptErrors - then.acceptErrors),
  };
}
