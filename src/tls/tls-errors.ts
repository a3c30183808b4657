import { EbbError, errnoOf, ExitCode } from '../core/index.ts';

/** Which file of a `tls: { cert, key }` block, named as the config names it. */
export type TlsFileField = 'cert' | 'key';

/** A certificate or key file that cannot be read (missing, unreadable). `field` names it (SPEC §11). */
export class TlsFileError extends EbbError {
  readonly field: TlsFileField;
  readonly path: string;
  readonly errno: string | undefined;
  constructor(field: TlsFileField, path: string, cause: unknown) {
    const errno = errnoOf(cause);
    super('EBB_TLS_FILE', `tls.${field}: cannot read ${path}${errno ? `: ${errno}` : ''}`, {
      httpStatus: 500,
      exitCode: ExitCode.usage,
      cause,
      details: { field: `tls.${field}`, path, ...(errno ? { errno } : {}) },
    });
    this.field = field;
    this.path = path;
    this.errno = errno;
  }
}

/** The files were read but do not make a usable pair: not PEM, or a key that does not match the certificate. */
export class TlsCredentialsError extends EbbError {
  constructor(message: string, cause: unknown) {
    super('EBB_TLS_CREDENTIALS', message, { httpStatus: 500, exitCode: ExitCode.usage, cause });
  }
}

/** A client's TLS handshake failed or did not finish in time; the connection is closed. */
export class TlsHandshakeError extends EbbError {
  constructor(message: string, cause?: unknown) {
    super('EBB_TLS_HANDSHAKE', message, { httpStatus: 400, exitCode: ExitCode.error, cause });
  }
}
