import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import {
  CachedAnswers,
  HttpConnector,
  HttpSessionKind,
  PoolResolver,
  SipCaller,
  httpSession,
  runLoad,
  tcpSession,
  type LoadStats,
  type SessionRunner,
} from '../client/index.ts';
import type {
  EmbeddedListenerConfig,
  HttpListenerConfig,
  SipListenerConfig,
  TcpKernelListenerConfig,
  TcpListenerConfig,
} from '../config/index.ts';
import { BadRequestError, EbbError, formatDuration, parseDuration } from '../core/index.ts';
import { globals, printJson, requireConfig } from './cli-context.ts';

interface LoadCommandOptions {
  service?: string;
  rate: string;
  duration: string;
  hold: string;
  resolver?: string;
  kind: string;
  path: string;
  wsPath: string;
  messages: string;
  ca?: string;
}

const httpKinds = Object.values(HttpSessionKind) as string[];

export function registerLoadCommand(program: Command): void {
  program
    .command('load')
    .description(
      'demo traffic (TCP sessions, SIP calls, HTTP requests and WebSockets) through the client connector; prints accepted, failed and re-tried sessions',
    )
    .option(
      '--service <id>',
      "a tcp, sip or http service of the pool (default: the first member's primary service)",
    )
    .option('--rate <n/s>', 'new sessions per second', '10')
    .option('--duration <dur>', 'how long to start sessions', '30s')
    .option('--hold <dur>', 'how long each session (a WebSocket for http) stays open', '2s')
    .option(
      '--resolver <host:port>',
      "DNS server to ask (default: the pool's dns.listen; 'system' for the system resolver)",
    )
    .option('--kind <kind>', `http: ${httpKinds.join(', ')} (every other session a WebSocket)`, 'both')
    .option('--path <path>', 'http: the target of each request', '/')
    .option('--ws-path <path>', 'http: where WebSockets connect', '/ws')
    .option('--messages <n/s>', 'http: messages each WebSocket sends per second while held', '1')
    .option('--ca <file>', 'http with tls: PEM CA certificates to trust')
    .action(async (opts: LoadCommandOptions, command: Command) => {
      const options = globals(command);
      const config = requireConfig(options);
      const rate = perSecond(opts.rate, '--rate', (n) => n > 0 && n <= 5000, '0 < rate ≤ 5000');
      const durationMs = parseDuration(opts.duration, '--duration');
      const holdMs = parseDuration(opts.hold, '--hold');
      const serviceId = opts.service ?? config.members[0]!.services[0]!.id;
      const service = config.members.flatMap((m) => m.services).find((s) => s.id === serviceId);
      // A tcp listener, a sip one over UDP, or an http one: the sessions this load knows how to make.
      const listener =
        // (a `mode: embedded` one is a server of that protocol: loaded as such, with no built-in echo)
        service?.listeners.find(
          (l): l is TcpListenerConfig | TcpKernelListenerConfig | EmbeddedListenerConfig =>
            l.protocol === 'tcp',
        ) ??
        service?.listeners.find(
          (l): l is SipListenerConfig => l.protocol === 'sip' && l.transport === 'udp',
        ) ??
        service?.listeners.find(
          (l): l is HttpListenerConfig | EmbeddedListenerConfig => l.protocol === 'http',
        );
      if (!service || !listener) {
        throw new EbbError(
          'EBB_BAD_SERVICE',
          `--service: "${serviceId}" is not a tcp, sip/udp or http service of pool ${config.pool.fqdn}`,
          { exitCode: 2 },
        );
      }
      const resolver = new PoolResolver(
        opts.resolver === 'system' ? {} : { server: opts.resolver ?? config.dns.listen },
      );
      const transport = listener.protocol === 'sip' ? 'udp' : 'tcp';
      const answers = new CachedAnswers(
        () => resolver.resolveService(config.pool.fqdn, serviceId, transport),
        config.pool.dnsTtl * 1000,
      );

      let session: SessionRunner;
      let what: string;
      let closeSessions = async () => {};
      if (listener.protocol === 'sip') {
        const caller = await SipCaller.open();
        session = caller.runner(serviceId);
        what = 'SIP calls';
        closeSessions = async () => caller.close();
      } else if (listener.protocol === 'tcp') {
        session = tcpSession(builtin(listener, 'echo'));
        what = 'TCP sessions';
      } else {
        const http = httpLoad(opts, listener);
        session = http.session;
        what = http.what;
        closeSessions = () => http.connector.destroy();
      }
      if (!options.json) {
        process.stderr.write(
          `ebb load: ${rate}/s ${what} for ${formatDuration(durationMs)}, each held ${formatDuration(holdMs)}, via DNS _${serviceId}._${transport}.${config.pool.fqdn}\n`,
        );
      }
      const stats = await runLoad({
        endpoints: (o) => answers.next(o),
        session,
        ratePerSecond: rate,
        durationMs,
        holdMs,
        ...(options.json ? {} : { onProgress: (s: LoadStats) => process.stderr.write(`${line(s)}\n`) }),
      }).finally(closeSessions);
      if (options.json) printJson(stats);
      else
        process.stdout.write(
          `done: ${line(stats)}${Object.keys(stats.failures).length ? `\nfailures: ${JSON.stringify(stats.failures)}` : ''}\n`,
        );
      if (stats.failed > 0) process.exitCode = 1;
    });
}

/** The sessions for an http service: requests and WebSockets through one keep-alive connector. */
function httpLoad(
  opts: LoadCommandOptions,
  listener: HttpListenerConfig | EmbeddedListenerConfig,
): { session: SessionRunner; what: string; connector: HttpConnector } {
  if (!httpKinds.includes(opts.kind)) {
    throw new BadRequestError([{ path: '--kind', message: `must be one of ${httpKinds.join(', ')}` }]);
  }
  const kind = opts.kind as HttpSessionKind;
  for (const [flag, value] of [
    ['--path', opts.path],
    ['--ws-path', opts.wsPath],
  ] as const) {
    if (!value.startsWith('/'))
      throw new BadRequestError([{ path: flag, message: 'must be a path that starts with /' }]);
  }
  const messagesPerSecond = perSecond(
    opts.messages,
    '--messages',
    (n) => n >= 0 && n <= 1000,
    '0 ≤ n ≤ 1000',
  );
  const tls = 'tls' in listener && listener.tls !== undefined;
  let ca: Buffer | undefined;
  if (opts.ca) {
    try {
      ca = readFileSync(opts.ca);
    } catch (err) {
      throw new EbbError(
        'EBB_BAD_FILE',
        `--ca: cannot read ${opts.ca}: ${(err as NodeJS.ErrnoException).code}`,
        {
          exitCode: 2,
        },
      );
    }
  }
  const connector = new HttpConnector({ tls, ...(ca ? { ca } : {}) });
  const session = httpSession({
    kind,
    connector,
    requestPath: opts.path,
    webSocketPath: opts.wsPath,
    messagesPerSecond,
    // builtin:web echoes on /ws: each message's echo is checked.
    echo: builtin(listener, 'web') && opts.wsPath === '/ws',
    tls,
    ...(ca ? { ca } : {}),
  });
  const what = {
    websocket: 'WebSockets',
    request: 'HTTP requests',
    both: 'WebSockets and HTTP requests',
  }[kind];
  return { session, what, connector };
}

function perSecond(text: string, flag: string, ok: (n: number) => boolean, range: string): number {
  const n = Number(String(text).replace(/\/s$/, ''));
  if (!Number.isFinite(n) || !ok(n)) {
    throw new BadRequestError([{ path: flag, message: `must be a number per second, ${range}` }]);
  }
  return n;
}

function line(s: LoadStats): string {
  return `${formatDuration(s.elapsedMs).padStart(6)}  started ${s.started}  accepted ${s.accepted}  failed ${s.failed}  retried ${s.retried}  active ${s.active}${s.dropped ? `  (${s.dropped} of the failed were dropped after a member took them)` : ''}`;
}

/** Whether the listener fronts Ebb's built-in `name` backend (never an embedded one: it is its own server). */
/** Whether the listener fronts Ebb's own builtin of that name (mode kernel and embedded front none). */
function builtin(
  listener: TcpListenerConfig | TcpKernelListenerConfig | HttpListenerConfig | EmbeddedListenerConfig,
  name: 'echo' | 'web',
): boolean {
  return 'target' in listener && listener.target.kind === 'builtin' && listener.target.name === name;
}
