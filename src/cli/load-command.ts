import type { Command } from 'commander';
import {
  PoolResolver,
  SipCaller,
  runLoad,
  tcpSession,
  type Endpoint,
  type LoadStats,
} from '../client/index.ts';
import type { SipListenerConfig, TcpListenerConfig } from '../config/index.ts';
import { BadRequestError, EbbError, formatDuration, parseDuration } from '../core/index.ts';
import { globals, printJson, requireConfig } from './cli-context.ts';

interface LoadCommandOptions {
  service?: string;
  rate: string;
  duration: string;
  hold: string;
  resolver?: string;
}

export function registerLoadCommand(program: Command): void {
  program
    .command('load')
    .description(
      'demo traffic (TCP sessions or SIP calls) through the client connector; prints accepted, failed and re-tried sessions',
    )
    .option(
      '--service <id>',
      "a tcp or sip service of the pool (default: the first member's primary service)",
    )
    .option('--rate <n/s>', 'new sessions per second', '10')
    .option('--duration <dur>', 'how long to start sessions', '30s')
    .option('--hold <dur>', 'how long each session stays open', '2s')
    .option(
      '--resolver <host:port>',
      "DNS server to ask (default: the pool's dns.listen; 'system' for the system resolver)",
    )
    .action(async (opts: LoadCommandOptions, command: Command) => {
      const options = globals(command);
      const config = requireConfig(options);
      const rate = Number(String(opts.rate).replace(/\/s$/, ''));
      if (!Number.isFinite(rate) || rate <= 0 || rate > 5000) {
        throw new BadRequestError([
          { path: '--rate', message: 'must be a number of sessions per second, 0 < rate ≤ 5000' },
        ]);
      }
      const durationMs = parseDuration(opts.duration, '--duration');
      const holdMs = parseDuration(opts.hold, '--hold');
      const serviceId = opts.service ?? config.members[0]!.services[0]!.id;
      const service = config.members.flatMap((m) => m.services).find((s) => s.id === serviceId);
      // A tcp listener, or a sip one over UDP: those are the sessions this load knows how to make.
      const listener =
        service?.listeners.find((l): l is TcpListenerConfig => l.protocol === 'tcp') ??
        service?.listeners.find((l): l is SipListenerConfig => l.protocol === 'sip' && l.transport === 'udp');
      if (!service || !listener) {
        throw new EbbError(
          'EBB_BAD_SERVICE',
          `--service: "${serviceId}" is not a tcp or sip/udp service of pool ${config.pool.fqdn}`,
          { exitCode: 2 },
        );
      }
      const resolver = new PoolResolver(
        opts.resolver === 'system' ? {} : { server: opts.resolver ?? config.dns.listen },
      );
      const transport = listener.protocol === 'sip' ? 'udp' : 'tcp';
      const what = listener.protocol === 'sip' ? 'SIP calls' : 'TCP sessions';
      if (!options.json) {
        process.stderr.write(
          `ebb load: ${rate}/s ${what} for ${formatDuration(durationMs)}, each held ${formatDuration(holdMs)}, via DNS _${serviceId}._${transport}.${config.pool.fqdn}\n`,
        );
      }
      const answers = new CachedAnswers(
        () => resolver.resolveService(config.pool.fqdn, serviceId, transport),
        config.pool.dnsTtl * 1000,
      );
      const caller = listener.protocol === 'sip' ? await SipCaller.open() : null;
      const stats = await runLoad({
        endpoints: () => answers.next(),
        session: caller
          ? caller.runner(serviceId)
          : tcpSession(listener.target.kind === 'builtin' && listener.target.name === 'echo'),
        ratePerSecond: rate,
        durationMs,
        holdMs,
        ...(options.json ? {} : { onProgress: (s: LoadStats) => process.stderr.write(`${line(s)}\n`) }),
      }).finally(() => caller?.close());
      if (options.json) printJson(stats);
      else
        process.stdout.write(
          `done: ${line(stats)}${Object.keys(stats.failures).length ? `\nfailures: ${JSON.stringify(stats.failures)}` : ''}\n`,
        );
      if (stats.failed > 0) process.exitCode = 1;
    });
}

/**
 * Like a real client's stub resolver: keeps a DNS answer for its TTL and rotates the order for each new
 * session. A member paused within the TTL is still in the list: the connector meets its refusal and moves
 * on (counted as re-tried).
 */
class CachedAnswers {
  private answer: Endpoint[] = [];
  private fetchedAt = 0;
  private turn = 0;
  private readonly resolve: () => Promise<Endpoint[]>;
  private readonly ttlMs: number;

  constructor(resolve: () => Promise<Endpoint[]>, ttlMs: number) {
    this.resolve = resolve;
    this.ttlMs = ttlMs;
  }

  async next(): Promise<Endpoint[]> {
    if (Date.now() - this.fetchedAt >= this.ttlMs || this.answer.length === 0) {
      this.answer = await this.resolve();
      this.fetchedAt = Date.now();
    }
    const start = this.turn++ % Math.max(1, this.answer.length);
    return [...this.answer.slice(start), ...this.answer.slice(0, start)];
  }
}

function line(s: LoadStats): string {
  return `${formatDuration(s.elapsedMs).padStart(6)}  started ${s.started}  accepted ${s.accepted}  failed ${s.failed}  retried ${s.retried}  active ${s.active}`;
}
