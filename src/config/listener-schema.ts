import { z } from 'zod';
import { duration, port, upstreamField, type DurationValue, type UpstreamTarget } from './fields.ts';

/**
 * SPEC §12: the data paths of a tcp listener Ebb can run. `embedded` is specified but not built yet; it
 * becomes available by joining this list.
 */
export const tcpModes = ['proxy', 'kernel'] as const;
export type TcpMode = (typeof tcpModes)[number];
const specifiedTcpModes: readonly string[] = ['proxy', 'kernel', 'embedded'];

/** A `tcp` listener: a proxy in front of `upstream`, or the built-in echo server. */
export interface TcpListenerConfig {
  protocol: 'tcp';
  mode: 'proxy';
  /** Always tcp; written down because DNS SRV records are per transport. */
  transport: 'tcp';
  port: number;
  /** As written: `host:port` or `builtin:echo`. */
  upstream: string;
  target: UpstreamTarget<'echo'>;
}

/**
 * A `tcp` listener with `mode: kernel` (SPEC §12): no upstream, the real server listens on the member's
 * address and port itself; Ebb refuses new connections with an nftables rule and counts sessions in the
 * kernel's socket table.
 */
export interface TcpKernelListenerConfig {
  protocol: 'tcp';
  mode: 'kernel';
  transport: 'tcp';
  port: number;
}

/** The settings of a sip listener that its service may also give, for all its sip listeners (SPEC §4.2). */
export interface SipSettings {
  /** How a refusing listener turns away dialog-creating requests: 503, or 302 to an accepting member. */
  reroute: 'reject' | 'redirect';
  /** Seconds in Retry-After of the 503 sent while refusing. */
  retryAfter: number;
  /** A dialog with no request for this long is counted as ended, so a lost BYE cannot hold a drain. */
  maxIdle: string;
  maxIdleMs: number;
}

/** A `sip` listener: the record-routing proxy, in front of `upstream` or the built-in callee. */
export interface SipListenerConfig extends SipSettings {
  protocol: 'sip';
  transport: 'udp' | 'tcp' | 'tls' | 'ws' | 'wss';
  port: number;
  /** As written: `host:port` or `builtin:sip-uas`. */
  upstream: string;
  target: UpstreamTarget<'sip-uas'>;
  /** SPEC §14: while paused, idle client flows (tcp) are closed over this long, in random order. */
  closeSpread: string;
  closeSpreadMs: number;
  /** The clients' flows count as sessions: a drain and `readyForOffline` wait for them too. */
  drainFlows: boolean;
  /** `transport: tls` (SPEC §11, §14): required there, refused elsewhere. */
  tls?: TlsFilesConfig;
}

/** `tls: { cert, key }` (SPEC §11): paths of a PEM certificate chain and its private key. */
export interface TlsFilesConfig {
  cert: string;
  key: string;
}

/** An `http` listener (SPEC §10): a reverse proxy in front of `upstream`, or the built-in web app. */
export interface HttpListenerConfig {
  protocol: 'http';
  /** Always tcp; written down because DNS SRV records are per transport. */
  transport: 'tcp';
  port: number;
  /** As written: `host:port` or `builtin:web`. */
  upstream: string;
  target: UpstreamTarget<'web'>;
  tls?: TlsFilesConfig;
  /** Over how long the WebSockets left at a deadline are closed, in random order. */
  closeSpread: string;
  closeSpreadMs: number;
}

/**
 * `mode: embedded` (SPEC §12): the service's own Node server embeds Ebb (`import { embed } from 'ebb'`)
 * and its agent listens on `port` for it; no upstream. `ebb up` and `ebb agent` leave such a service alone.
 */
export interface EmbeddedListenerConfig {
  protocol: 'http' | 'tcp';
  mode: 'embedded';
  transport: 'tcp';
  port: number;
  /** Over how long the WebSockets (or tcp connections) left at a deadline are closed, in random order. */
  closeSpread: string;
  closeSpreadMs: number;
}

/** The listeners Ebb's agents run themselves: every kind except `mode: embedded`. */
export type ProxyListenerConfig =
  TcpListenerConfig | TcpKernelListenerConfig | SipListenerConfig | HttpListenerConfig;
export type ListenerConfig = ProxyListenerConfig | EmbeddedListenerConfig;
export type ListenerProtocol = ListenerConfig['protocol'];
export const listenerProtocols = ['tcp', 'sip', 'http'] as const satisfies readonly ListenerProtocol[];

/** SPEC §4.2: the schemas of `reroute` and `retryAfter`, on a sip listener or its service. */
export const rerouteField = z.enum(['reject', 'redirect']);
export const retryAfterField = z.number().int().min(0).max(86_400);

/** Sip settings as given on a listener or on its service; any may be left out. */
export interface SipSettingsInput {
  reroute?: SipSettings['reroute'] | undefined;
  retryAfter?: number | undefined;
  maxIdle?: DurationValue | undefined;
}

/** What a sip listener gets when neither it nor its service sets them (as `SipListener` defaults them too). */
const sipDefaults = { reroute: 'reject', retryAfter: 30, maxIdle: { text: '2h', ms: 7_200_000 } } as const;

const tcpListener = z
  .object({
    protocol: z.literal('tcp'),
    mode: z
      .enum(tcpModes, {
        error: (issue) =>
          typeof issue.input === 'string' && specifiedTcpModes.includes(issue.input)
            ? `mode ${issue.input} is not supported yet (${tcpModes.join(', ')})`
            : undefined,
      })
      .default('proxy'),
    /** Accepted so files that spell it out keep loading. */
    transport: z.literal('tcp', { error: 'must be tcp for protocol tcp' }).optional(),
    port,
    upstream: upstreamField('echo').optional(),
  })
  .strict()
  .transform(({ upstream, mode, ...l }, ctx): TcpListenerConfig | TcpKernelListenerConfig => {
    if (mode === 'kernel') {
      if (upstream !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['upstream'],
          input: upstream.text,
          message: 'must not be given with mode kernel: the real server listens on the member address itself',
        });
      }
      return { ...l, mode, transport: 'tcp' };
    }
    if (upstream === undefined) {
      ctx.addIssue({ code: 'custom', path: ['upstream'], input: undefined, message: 'is required' });
      return z.NEVER;
    }
    return { ...l, mode, transport: 'tcp', upstream: upstream.text, target: upstream.target };
  });

/** Until its service is parsed: the settings it leaves out are filled in by `completeListener`. */
const tlsFiles = z
  .object({ cert: z.string().min(1, 'must be a path'), key: z.string().min(1, 'must be a path') })
  .strict();

/** SIPS over TLS listens on 5061 unless told otherwise (RFC 3261 §26.2, as Lync front ends did). */
const SIP_TLS_DEFAULT_PORT = 5061;

const sipListener = z
  .object({
    protocol: z.literal('sip'),
    transport: z.enum(['udp', 'tcp', 'tls', 'ws', 'wss']).default('udp'),
    port: port.optional(),
    tls: tlsFiles.optional(),
    upstream: upstreamField('sip-uas'),
    reroute: rerouteField.optional(),
    retryAfter: retryAfterField.optional(),
    maxIdle: duration.optional(),
    closeSpread: duration.prefault('10s'),
    drainFlows: z.boolean().default(false),
  })
  .strict()
  .superRefine((l, ctx) => {
    const secure = l.transport === 'tls' || l.transport === 'wss';
    if (l.port === undefined && l.transport !== 'tls')
      ctx.addIssue({ code: 'custom', path: ['port'], message: 'is required' });
    if (secure && !l.tls)
      ctx.addIssue({ code: 'custom', path: ['tls'], message: `is required for transport ${l.transport}` });
    if (!secure && l.tls)
      ctx.addIssue({ code: 'custom', path: ['tls'], message: 'only for transport tls or wss' });
  })
  .transform(({ upstream, closeSpread, port, ...l }) => ({
    ...l,
    port: port ?? SIP_TLS_DEFAULT_PORT,
    upstream: upstream.text,
    target: upstream.target,
    closeSpread: closeSpread.text,
    closeSpreadMs: closeSpread.ms,
  }));

const httpListener = z
  .object({
    protocol: z.literal('http'),
    port,
    upstream: upstreamField('web'),
    tls: tlsFiles.optional(),
    closeSpread: duration.prefault('2s'),
  })
  .strict()
  .transform(({ upstream, closeSpread, ...l }): HttpListenerConfig => ({
    ...l,
    transport: 'tcp',
    upstream: upstream.text,
    target: upstream.target,
    closeSpread: closeSpread.text,
    closeSpreadMs: closeSpread.ms,
  }));

/** One listener, by `protocol`; each kind takes only its own fields. */
export const listenerSchema = z.discriminatedUnion('protocol', [tcpListener, sipListener, httpListener], {
  error: (issue) => {
    if (issue.code !== 'invalid_union') return undefined;
    const given = (issue.input as { protocol?: unknown } | undefined)?.protocol;
    return given === undefined
      ? 'is required'
      : `Invalid option: expected one of ${listenerProtocols.map((p) => `"${p}"`).join('|')}`;
  },
});

const embeddedListener = z
  .object({
    protocol: z.enum(['http', 'tcp'], { error: 'must be http or tcp for mode embedded' }),
    mode: z.literal('embedded'),
    /** Accepted so files that spell it out keep loading. */
    transport: z.literal('tcp', { error: 'must be tcp for mode embedded' }).optional(),
    port,
    closeSpread: duration.prefault('2s'),
  })
  .strict()
  .transform(({ closeSpread, ...l }): EmbeddedListenerConfig => ({
    ...l,
    transport: 'tcp',
    closeSpread: closeSpread.text,
    closeSpreadMs: closeSpread.ms,
  }));

/** Whether a listener is run by the server that embeds Ebb rather than by an agent (SPEC §12). */
export function isEmbeddedListener(l: ListenerConfig | ParsedListener): l is EmbeddedListenerConfig {
  return (l as { mode?: string }).mode === 'embedded';
}

/**
 * One listener of any kind: `mode: embedded` ones share their protocols with the proxies, so they are
 * told apart by `mode` before the union by `protocol` sees them.
 */
export const anyListenerSchema = z
  // Typed as either input (ConfigInput stays checked); the schema below does the checking.
  .custom<z.input<typeof listenerSchema> | z.input<typeof embeddedListener>>(() => true)
  .transform((input, ctx) => {
    const embedded = (input as { mode?: unknown } | null)?.mode === 'embedded';
    const schema = embedded ? embeddedListener : listenerSchema;
    const result = schema.safeParse(input, { reportInput: true });
    if (result.success) return result.data;
    // The issues as they are (codes kept: `unrecognized_keys` names the fields), under this listener's path.
    for (const issue of result.error.issues) ctx.issues.push(issue as (typeof ctx.issues)[number]);
    return z.NEVER;
  });

export type ParsedListener = z.output<typeof listenerSchema> | EmbeddedListenerConfig;

/** A listener as its service sees it: what a sip listener leaves out comes from its service, then the defaults. */
export function completeListener(parsed: ParsedListener, service: SipSettingsInput): ListenerConfig {
  if (parsed.protocol !== 'sip' || isEmbeddedListener(parsed)) return parsed;
  const { reroute, retryAfter, maxIdle, ...listener } = parsed;
  const idle = maxIdle ?? service.maxIdle ?? sipDefaults.maxIdle;
  return {
    ...listener,
    reroute: reroute ?? service.reroute ?? sipDefaults.reroute,
    retryAfter: retryAfter ?? service.retryAfter ?? sipDefaults.retryAfter,
    maxIdle: idle.text,
    maxIdleMs: idle.ms,
  };
}
