import { existsSync, unlinkSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import type { ListenerStats } from '../listeners/index.ts';
import {
  PredecessorMessage,
  SuccessorMessage,
  type AdoptMessage,
  type NoteMessage,
  type ServiceCount,
} from './handoff-messages.ts';
import { connectToControlSocket } from './handoff-socket-path.ts';
import { LineChannel } from './line-channel.ts';

/** `sessions` messages go out at most this often: a burst of closes is one message. */
const coalesceMs = 50;
/** A predecessor whose successor exited looks for the next holder of the control socket this often. */
const reattachAttempts = 20;
const reattachGapMs = 250;

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
  /** Each service's stats now: this process's sessions and those it relays for its own predecessors. */
  services(): Array<{ member: string; service: string; stats: ListenerStats }>;
  /** Sessions this process serves itself (not those it relays): it may exit once they have ended. */
  ownSessions(): number;
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
  /**
   * A predecessor of a process that has since exited re-attached (`adopt`): from here on the channel is
   * its, speaking as a predecessor (the caller takes it over with `Predecessor.adopted`).
   */
  adopted(channel: LineChannel<PredecessorMessage, SuccessorMessage>, pid: number, members: string[]): void;
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
  #successorPid = 0;
  #yielded = false;
  #finished = false;

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
    let role: 'unknown' | 'successor' | 'adopted' = 'unknown';
    channel.onMessage((message) => {
      if (role === 'unknown') {
        if (message.type === 'adopt') {
          role = 'adopted';
          this.#logger.info(
            { predecessorPid: message.pid },
            'a predecessor re-attached: its sessions are counted here',
          );
          this.#events.adopted(
            channel.reread(PredecessorMessage) as LineChannel<PredecessorMessage, SuccessorMessage>,
            message.pid,
            message.members,
          );
          return;
        }
        if (this.#successor || this.#yielded) {
          channel.send({
            type: 'refused',
            reason: this.#yielded ? 'this process has already handed over' : 'another hand-off is under way',
          });
          channel.close();
          return;
        }
        role = 'successor';
        this.#successor = channel;
        void channel.closed.then((err) => this.#successorGone(channel, err));
      }
      this.#fromSuccessor(channel, message);
    });
  }

  #fromSuccessor(
    channel: LineChannel<SuccessorMessage, PredecessorMessage>,
    message: SuccessorMessage,
  ): void {
    switch (message.type) {
      case 'hello':
        this.#successorPid = message.pid;
        this.#parts.holdConfirmations();
        this.#logger.info(
          { successorPid: message.pid },
          'a new process is taking over; confirmations wait for it',
        );
        channel.send({ type: 'hello', pid: process.pid, members: [...this.#parts.members] });
        return;
      case 'yield':
        void this.#yield(channel, message.timeoutMs);
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
      case 'adopt':
        return; // only as a connection's first message
    }
  }

  #successorGone(channel: LineChannel<SuccessorMessage, PredecessorMessage>, err: Error | null): void {
    if (err)
      this.#logger.warn(
        { code: err instanceof Error && 'code' in err ? err.code : undefined, err: err.message },
        'hand-off connection closed',
      );
    if (this.#successor !== channel) return;
    this.#successor = null;
    if (!this.#yielded) {
      this.#parts.resumeConfirmations();
      this.#logger.warn(
        { successorPid: this.#successorPid },
        'the new process went away before taking over; this one carries on',
      );
      return;
    }
    // The successor exited (its own sessions ended, or it crashed) while this one still serves: report
    // to whoever holds the control socket now, so its status counts these sessions and its notes reach them.
    if (!this.#finished) void this.#reattach();
  }

  async #reattach(): Promise<void> {
    for (let attempt = 0; attempt < reattachAttempts && !this.#finished; attempt++) {
      const socket = await connectToControlSocket(this.#path);
      if (!(socket instanceof Error)) {
        const channel = new LineChannel<SuccessorMessage, PredecessorMessage>(socket, SuccessorMessage);
        this.#successor = channel;
        channel.onMessage((message) => this.#fromSuccessor(channel, message));
        void channel.closed.then((err) => this.#successorGone(channel, err));
        (channel as unknown as LineChannel<never, AdoptMessage>).send({
          type: 'adopt',
          pid: process.pid,
          members: [...this.#parts.members],
        });
        this.#report?.();
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, reattachGapMs));
    }
    this.#logger.warn({}, 'no process holds the hand-off control socket: serving the sessions left alone');
  }

  /** Sends the sessions now to the current successor (set once yielded). */
  #report: (() => void) | null = null;

  async #yield(channel: LineChannel<SuccessorMessage, PredecessorMessage>, timeoutMs: number): Promise<void> {
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
    const send = (message: PredecessorMessage) => this.#successor?.send(message);
    const startedWith = this.#parts.ownSessions();
    const forcedBefore = this.#parts.services().reduce((n, s) => n + s.stats.forced, 0);
    // Said here first: the successor reports itself up only after it has this answer.
    this.#events.yielded(this.#successorPid, startedWith);
    channel.send({ type: 'yielded', services: report() });
    this.#report = () => send({ type: 'sessions', services: report() });
    let timer: NodeJS.Timeout | null = null;
    const finish = () => {
      if (this.#finished) return;
      this.#finished = true;
      clearTimeout(deadline);
      if (timer) clearTimeout(timer);
      // Ended at the deadline or at the successor's word (its own deadline, a stop) alike.
      const forced = Math.max(
        0,
        this.#parts.services().reduce((n, s) => n + s.stats.forced, 0) - forcedBefore,
      );
      const result = { ended: Math.max(0, startedWith - forced), forced };
      send({ type: 'sessions', services: report() });
      send({ type: 'done', ...result });
      this.#successor?.close();
      this.#events.finished(result);
    };
    const deadline = setTimeout(() => {
      void this.#parts.endAll().then(finish, finish);
    }, timeoutMs);
    this.#parts.onChange(() => {
      if (this.#finished || timer) return;
      timer = setTimeout(() => {
        timer = null;
        if (this.#finished) return;
        send({ type: 'sessions', services: report() });
        // Its own sessions, not those it relays: a predecessor of its own re-attaches to the next holder.
        if (this.#parts.ownSessions() === 0) finish();
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
