/**
 * Every failure Ebb reports has a stable `code` callers can match on, an HTTP status for the API and an
 * exit code for the CLI (SPEC §7: 1 error, 2 bad usage/config, 3 timeout, 4 capacity guard, 5 not authorised).
 */
export const ExitCode = {
  ok: 0,
  error: 1,
  usage: 2,
  timeout: 3,
  guardRefused: 4,
  unauthorised: 5,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export class EbbError extends Error {
  readonly code: string;
  readonly httpStatus: number;
  readonly exitCode: ExitCode;
  readonly details: Record<string, unknown> | undefined;

  constructor(
    code: string,
    message: string,
    opts: {
      httpStatus?: number;
      exitCode?: ExitCode;
      cause?: unknown;
      details?: Record<string, unknown>;
    } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.code = code;
    this.httpStatus = opts.httpStatus ?? 500;
    this.exitCode = opts.exitCode ?? ExitCode.error;
    this.details = opts.details;
  }

  toJSON(): Record<string, unknown> {
    return { code: this.code, message: this.message, ...(this.details ? { details: this.details } : {}) };
  }
}

/** One problem in a configuration file or request body, with the path of the offending field. */
export interface FieldIssue {
  path: string;
  message: string;
}

export class ConfigError extends EbbError {
  readonly issues: FieldIssue[];
  constructor(issues: FieldIssue[], source = 'config') {
    super('EBB_BAD_CONFIG', `${source}: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, {
      httpStatus: 400,
      exitCode: ExitCode.usage,
      details: { issues },
    });
    this.issues = issues;
  }
}

export class BadRequestError extends EbbError {
  constructor(issues: FieldIssue[]) {
    super('EBB_BAD_REQUEST', issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join('; '), {
      httpStatus: 400,
      exitCode: ExitCode.usage,
      details: { issues },
    });
  }
}

export class NotFoundError extends EbbError {
  constructor(what: string) {
    super('EBB_NOT_FOUND', `${what} does not exist`, { httpStatus: 404, exitCode: ExitCode.usage });
  }
}

/** A command that the service's current state or startup type does not allow (e.g. start a disabled one). */
export class InvalidTransitionError extends EbbError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('EBB_INVALID_TRANSITION', message, {
      httpStatus: 409,
      exitCode: ExitCode.error,
      ...(details ? { details } : {}),
    });
  }
}

/** SPEC §5: afterwards fewer than `minAccepting` members would accept the service. */
export class GuardRefusedError extends EbbError {
  constructor(message: string, details: Record<string, unknown>) {
    super('EBB_GUARD_REFUSED', message, { httpStatus: 409, exitCode: ExitCode.guardRefused, details });
  }
}

export class TimeoutError extends EbbError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('EBB_TIMEOUT', message, {
      httpStatus: 504,
      exitCode: ExitCode.timeout,
      ...(details ? { details } : {}),
    });
  }
}

export class UnauthorisedError extends EbbError {
  constructor(message: string, httpStatus: 401 | 403 = 401) {
    super(httpStatus === 401 ? 'EBB_UNAUTHENTICATED' : 'EBB_FORBIDDEN', message, {
      httpStatus,
      exitCode: ExitCode.unauthorised,
    });
  }
}

export class StoreError extends EbbError {
  constructor(message: string, cause?: unknown) {
    super('EBB_STORE_UNAVAILABLE', message, { httpStatus: 503, exitCode: ExitCode.error, cause });
  }
}

/** The system error code (`EADDRINUSE`, …) of an error from Node, if it has one. */
export function errnoOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^E[A-Z0-9]+$/.test(code) ? code : undefined;
}

/** What an operator can do about the usual reasons a bind fails. */
const listenHints: Record<string, string> = {
  EADDRINUSE: 'address already in use: another process (or another listener) holds the port',
  EACCES: 'permission denied: ports below 1024 need root or CAP_NET_BIND_SERVICE',
  EADDRNOTAVAIL: 'address not available: no interface of this machine has that address',
};

/**
 * A socket could not bind or listen. `errno` is the system's code (EADDRINUSE, EACCES, EADDRNOTAVAIL, …),
 * also named in the message.
 */
export class ListenError extends EbbError {
  readonly errno: string | undefined;
  constructor(message: string, cause?: unknown) {
    const errno = errnoOf(cause);
    const hint = errno === undefined ? undefined : listenHints[errno];
    const text = errno === undefined || message.includes(errno) ? message : `${message}: ${errno}`;
    super('EBB_LISTEN_FAILED', hint === undefined ? text : `${text} (${hint})`, {
      httpStatus: 500,
      exitCode: ExitCode.error,
      cause,
      ...(errno === undefined ? {} : { details: { errno } }),
    });
    this.errno = errno;
  }

  /** The same error as another thread (a worker) reported it: its message is whole, hint and all. */
  static reported(message: string, errno: string | undefined): ListenError {
    const err = new ListenError(message);
    return Object.assign(err, { errno, details: errno === undefined ? err.details : { errno } });
  }
}

/**
 * An error as it crosses a thread boundary (a worker's message): structured clone keeps no class, so
 * what decides the class on the other side is carried as data.
 */
export interface ThreadError {
  code: string;
  message: string;
  errno?: string;
}

/** What a worker posts of `err`; `fallbackCode` names an error that is not Ebb's own. */
export function toThreadError(err: unknown, fallbackCode: string): ThreadError {
  return {
    code: err instanceof EbbError ? err.code : fallbackCode,
    message: err instanceof Error ? err.message : String(err),
    ...(err instanceof ListenError && err.errno !== undefined ? { errno: err.errno } : {}),
  };
}

/** The error a worker posted, as this thread's class where callers tell them apart. */
export function fromThreadError(error: ThreadError): EbbError {
  if (error.code === 'EBB_LISTEN_FAILED') return ListenError.reported(error.message, error.errno);
  if (error.code === 'EBB_INVALID_TRANSITION') return new InvalidTransitionError(error.message);
  return new EbbError(error.code, error.message);
}

/**
 * A listening socket failed to accept a connection (EMFILE, ENFILE: out of descriptors; ENOBUFS, …). The
 * client is turned away by the kernel or reset; the socket goes on listening.
 */
export class AcceptError extends EbbError {
  readonly errno: string | undefined;
  constructor(message: string, cause?: unknown) {
    const errno = errnoOf(cause);
    super('EBB_ACCEPT_FAILED', message, {
      httpStatus: 500,
      exitCode: ExitCode.error,
      cause,
      ...(errno === undefined ? {} : { details: { errno } }),
    });
    this.errno = errno;
  }
}

/** An error on a socket that stays open (a UDP send that failed: EMSGSIZE, ENETUNREACH, …). */
export class SocketError extends EbbError {
  readonly errno: string | undefined;
  constructor(message: string, cause?: unknown) {
    const errno = errnoOf(cause);
    super('EBB_SOCKET_ERROR', message, {
      httpStatus: 500,
      exitCode: ExitCode.error,
      cause,
      ...(errno === undefined ? {} : { details: { errno } }),
    });
    this.errno = errno;
  }
}

/**
 * A new session could not reach its upstream (ECONNREFUSED, ETIMEDOUT, EMFILE when Ebb is out of
 * descriptors, …): the client was turned away and `upstreamFailures` counted it.
 */
export class UpstreamConnectError extends EbbError {
  readonly errno: string | undefined;
  constructor(message: string, cause?: unknown) {
    const errno = errnoOf(cause);
    super('EBB_UPSTREAM_CONNECT_FAILED', message, {
      httpStatus: 502,
      exitCode: ExitCode.error,
      cause,
      ...(errno === undefined ? {} : { details: { errno } }),
    });
    this.errno = errno;
  }
}

/**
 * Sessions could not be ended when they had to be (a deadline, a hard stop, an agent shutdown): they may
 * still be open. Surfaced as a `service.failed` event and in status.
 */
export class ForceEndError extends EbbError {
  constructor(message: string, cause?: unknown) {
    super('EBB_FORCE_END_FAILED', message, { httpStatus: 500, exitCode: ExitCode.error, cause });
  }
}

/** What the kernel data path (SPEC §12) needs and may find missing when the agent starts. */
export type KernelPathNeed = 'linux' | 'CAP_NET_ADMIN' | 'nft' | 'ss';

/**
 * A listener with `mode: kernel` cannot run on this machine (not Linux, no CAP_NET_ADMIN, no `nft` or
 * `ss`): the agent refuses to start, naming the listener and what is missing.
 */
export class KernelPathError extends EbbError {
  readonly missing: KernelPathNeed;
  constructor(message: string, missing: KernelPathNeed, listener: string, cause?: unknown) {
    super('EBB_KERNEL_PATH_UNAVAILABLE', message, {
      httpStatus: 500,
      exitCode: ExitCode.error,
      cause,
      details: { missing, listener },
    });
    this.missing = missing;
  }
}

/**
 * An nftables transaction or a socket-table query of the kernel data path failed, or the kernel's rules
 * disagree with what the intents ask (another program changed Ebb's table).
 */
export class KernelRuleError extends EbbError {
  constructor(message: string, cause?: unknown) {
    super('EBB_KERNEL_RULE_FAILED', message, { httpStatus: 500, exitCode: ExitCode.error, cause });
  }
}
