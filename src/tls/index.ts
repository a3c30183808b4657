export { TlsAcceptor, type TlsAcceptorOptions } from './tls-acceptor.ts';
export { credentialsOf, loadTlsCredentials, type TlsCredentials, type TlsFiles } from './tls-credentials.ts';
export { ReloadingSecureContext, type ReloadingSecureContextOptions } from './reloading-secure-context.ts';
export { onSighupReload } from './sighup.ts';
export { TlsCredentialsError, TlsFileError, TlsHandshakeError, type TlsFileField } from './tls-errors.ts';
