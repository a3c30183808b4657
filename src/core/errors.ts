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

export class ListenError extends EbbError {
  constructor(message: string, cause?: unknown) {
    super('EBB_LISTEN_FAILED', message, { httpStatus: 500, exitCode: ExitCode.error, cause });
  }
}
