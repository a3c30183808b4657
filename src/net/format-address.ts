/** `127.0.0.1:7000`, `[::1]:7000`: an address as logs, errors and URIs write it (RFC 3986 §3.2.2). */
export function formatAddress(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
