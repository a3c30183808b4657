import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import { parseDatagram, SipStreamParser, type SipMessage, type SipResponse } from '../../src/sip/index.ts';

export interface SipTarget {
  host: string;
  port: number;
  transport: 'udp' | 'tcp';
}

export interface ProbeResult {
  responses: SipResponse[];
  /** TCP: the front end closed the connection (after a framing error). */
  closed: boolean;
}

/**
 * Sends raw bytes to a SIP element from a fresh socket on 127.0.0.1 and collects the responses that come
 * back within `waitMs` (or until `until` is satisfied). For malformed input, huge messages and probes.
 */
export function sendRaw(
  target: SipTarget,
  data: Buffer | string,
  options: { waitMs?: number; until?: (responses: SipResponse[]) => boolean } = {},
): Promise<ProbeResult> {
  const bytes = typeof data === 'string' ? Buffer.from(data) : data;
  const waitMs = options.waitMs ?? 2000;
  const until = options.until ?? ((r: SipResponse[]) => r.some((x) => x.status >= 200));
  return target.transport === 'udp' ? udp(target, bytes, waitMs, until) : tcp(target, bytes, waitMs, until);
}

function udp(
  target: SipTarget,
  bytes: Buffer,
  waitMs: number,
  until: (r: SipResponse[]) => boolean,
): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const socket = createSocket('udp4');
    const responses: SipResponse[] = [];
    const finish = () => {
      clearTimeout(timer);
      socket.close();
      resolve({ responses, closed: false });
    };
    const timer = setTimeout(finish, waitMs);
    socket.on('error', () => {});
    socket.on('message', (buf) => {
      try {
        const msg = parseDatagram(buf);
        if (msg.kind === 'response') responses.push(msg);
      } catch {
        return;
      }
      if (until(responses)) finish();
    });
    socket.bind(0, '127.0.0.1', () => socket.send(bytes, target.port, target.host));
  });
}

function tcp(
  target: SipTarget,
  bytes: Buffer,
  waitMs: number,
  until: (r: SipResponse[]) => boolean,
): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const responses: SipResponse[] = [];
    let closed = false;
    let done = false;
    const socket = connect({ host: target.host, port: target.port, localAddress: '127.0.0.1' });
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ responses, closed });
    };
    const timer = setTimeout(finish, waitMs);
    const parser = new SipStreamParser({
      onMessage: (msg: SipMessage) => {
        if (msg.kind === 'response') responses.push(msg);
        if (until(responses)) finish();
      },
      onError: () => {},
    });
    socket.on('data', (chunk: Buffer) => parser.push(chunk));
    socket.on('error', () => {});
    socket.on('close', () => {
      closed = true;
      // Let a response that arrived with the FIN be parsed first.
      setImmediate(finish);
    });
    socket.on('connect', () => socket.write(bytes));
  });
}

/** An out-of-dialog request in the style of a load balancer's probe or a simple caller. */
export function request(
  method: string,
  target: SipTarget,
  options: { user?: string; headers?: string[]; body?: string; localPort?: number } = {},
): string {
  const t = target.transport.toUpperCase();
  const uri = `sip:${options.user ? `${options.user}@` : ''}${target.host}:${target.port}`;
  const body = options.body ?? '';
  const branch = `z9hG4bK${randomBytes(8).toString('hex')}`;
  return [
    `${method} ${uri} SIP/2.0`,
    `Via: SIP/2.0/${t} 127.0.0.1:${options.localPort ?? 9};branch=${branch};rport`,
    'Max-Forwards: 70',
    `From: <sip:probe@127.0.0.1>;tag=${randomBytes(4).toString('hex')}`,
    `To: <${uri}>`,
    `Call-ID: ${randomBytes(8).toString('hex')}@probe`,
    `CSeq: 1 ${method}`,
    ...(options.headers ?? []),
    `Content-Length: ${Buffer.byteLength(body)}`,
    '',
    body,
  ].join('\r\n');
}

/** The status an OPTIONS probe of the front end itself gets (no user part, SPEC §4.2), or 0 for none. */
export async function optionsStatus(target: SipTarget): Promise<number> {
  const { responses } = await sendRaw(target, request('OPTIONS', target));
  return responses.find((r) => r.status >= 200)?.status ?? 0;
}
