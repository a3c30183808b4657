import { readFile } from 'node:fs/promises';
import { createSecureContext, type SecureContext } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { TlsCredentialsError, TlsFileError, type TlsFileField } from './tls-errors.ts';

/** `tls: { cert, key }`: paths of a PEM certificate chain (leaf first) and its private key. */
export interface TlsFiles {
  cert: string;
  key: string;
}

/** A loaded pair: the context new connections use, and what the leaf says, for logs and status. */
export interface TlsCredentials {
  readonly context: SecureContext;
  readonly subject: string;
  /** SHA-256 fingerprint of the leaf, `AB:CD:…`. */
  readonly fingerprint256: string;
  readonly validTo: string;
  /** The bytes read, to tell a real change from a file touched without change. */
  readonly source: { cert: Buffer; key: Buffer };
}

/** TLS 1.2 is the oldest version still allowed for new deployments (RFC 9325 §3.1.1). */
const minVersion = 'TLSv1.2';

async function readField(field: TlsFileField, path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    throw new TlsFileError(field, path, err);
  }
}

/** Builds a context from PEM bytes; OpenSSL checks the key matches the certificate. */
export function credentialsOf(cert: Buffer, key: Buffer): TlsCredentials {
  let context: SecureContext;
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(cert);
  } catch (err) {
    throw new TlsCredentialsError(`tls.cert: not a PEM certificate (${(err as Error).message})`, err);
  }
  try {
    context = createSecureContext({ cert, key, minVersion });
  } catch (err) {
    throw new TlsCredentialsError(`tls.key: does not fit tls.cert (${(err as Error).message})`, err);
  }
  return {
    context,
    subject: leaf.subject,
    fingerprint256: leaf.fingerprint256,
    validTo: leaf.validTo,
    source: { cert, key },
  };
}

/** Reads both files and builds their context; a `TlsFileError` names the file that failed. */
export async function loadTlsCredentials(files: TlsFiles): Promise<TlsCredentials> {
  const [cert, key] = await Promise.all([readField('cert', files.cert), readField('key', files.key)]);
  return credentialsOf(cert, key);
}
