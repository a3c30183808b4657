import type { HttpBindings } from '@hono/node-server';
import { Hono, type Context } from 'hono';
import { TokenTable, roleFor, type Principal } from '../auth/index.ts';
import { formatPath } from '../config/index.ts';
import type { CommandRequest, Controller, PoolState } from '../control/index.ts';
import {
  BadRequestError,
  EbbError,
  NotFoundError,
  UnauthorisedError,
  parseDuration,
  type StartupType,
} from '../core/index.ts';
import { BodyTooLargeError, readBounded } from './body-limit.ts';
import { parseAuditQuery, selectAudit } from './audit-query.ts';
import { ConsoleAssets } from './console-assets.ts';
import { EventsStream, type EventsStreamOptions } from './events-stream.ts';
import { openApiDocument } from './openapi.ts';
import { DenialThrottle } from './denial-throttle.ts';
import { PoolMetrics } from './pool-metrics.ts';
import { RequestGuard, declaresJson, type LocalAddress } from './request-guard.ts';
import { commandBodies, commandNames, serviceId, type CommandName } from './request-schemas.ts';

const safeMethods = new Set(['GET', 'HEAD', 'OPTIONS']);
/** The config's member ids are DNS labels; anything else in the path cannot name a member. */
const memberId = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** The union of every command body's fields, each already validated by its schema. */
interface CommandBody {
  service?: string;
  reason?: string;
  deadline?: string;
  graceful?: boolean;
  force?: boolean;
  startup?: StartupType;
}

export interface ApiDeps {
  state: PoolState;
  controller: Controller;
  /** SPEC §8: without tokens every caller is the local admin (and the server binds loopback only). */
  tokens?: TokenTable;
}

export interface ApiOptions {
  /** The built web console (default `console/dist`). */
  consoleDir?: string;
  events?: EventsStreamOptions;
  /** Node's process metrics on `/metrics` (the server turns them on; tests building many apps do not). */
  processMetrics?: boolean;
  /**
   * The address the API serves (`ebb api --listen`; default `api.listen`): requests must name it, or a
   * name in `api.hosts`, in `Host` (SPEC §8). A request over a socket may also name the local address it
   * arrived on.
   */
  listen?: string;
  /** Aborted when the server hands over to a new process (SPEC §13): every event stream ends then. */
  streamsEnd?: AbortSignal;
}

/** The HTTP API (SPEC §7), as a Hono app so tests can call it without a socket. */
export function createApiApp({ state, controller, tokens }: ApiDeps, options: ApiOptions = {}): Hono {
  const app = new Hono();
  const open = TokenTable.none();
  /**
   * Who is calling, checked before anything else is read. EventSource cannot send headers, so the event
   * stream also takes the token as `?access_token=`.
   */
  const caller = (c: Context, needed: Parameters<TokenTable['authorise']>[1]): Principal => {
    const query = c.req.path === '/v1/events' ? c.req.query('access_token') : undefined;
    const header = c.req.header('authorization') ?? (query ? `Bearer ${query}` : undefined);
    return (tokens ?? open).authorise(header, needed);
  };
  const guard = new RequestGuard({
    listen: options.listen ?? state.config.api.listen,
    hosts: state.config.api.hosts,
  });
  /**
   * SPEC §8: a state-changing request refused by access control (401, 403, and 415 from the cross-site
   * rules) is audited with what is known of it: the token's name if it carried a valid one, the action,
   * the member, and the service and force flag of a body that is declared JSON. Never the token itself.
   */
  const throttle = new DenialThrottle();
  const deny = async (c: Context, err: EbbError, parsed?: CommandBody): Promise<void> => {
    const route = c.req.method === 'POST' ? commandRoute(c.req.path) : null;
    if (!route) return;
    const body = parsed ?? (declaresJson(c.req.header('content-type')) ? await peekBody(c) : {});
    const request: CommandRequest = {
      ...asCommand(route.action),
      member: route.member,
      by: (tokens ?? open).identify(c.req.header('authorization'))?.name ?? 'anonymous',
      ...(body.service ? { service: body.service } : {}),
      ...(body.force !== undefined ? { force: body.force } : {}),
    };
    const detail = throttle.admit(`${err.code}: ${err.message}`);
    // A store that cannot take the record must not turn a refusal into a 500.
    if (detail !== null) await controller.auditDenied(request, detail).catch(() => {});
  };
  const events = new EventsStream(state, options.events);
  options.streamsEnd?.addEventListener('abort', () => events.close(), { once: true });
  const metrics = new PoolMetrics(state, {
    processMetrics: options.processMetrics ?? false,
    streamClients: () => events.clients,
  });
  const consoleAssets = new ConsoleAssets(options.consoleDir);

  app.onError((err, c) => {
    const ebb =
      err instanceof EbbError ? err : new EbbError('EBB_INTERNAL', 'internal error', { cause: err });
    // A body cut off at the limit is not read on: the connection closes after the answer.
    if (ebb instanceof BodyTooLargeError) c.header('Connection', 'close');
    return c.json({ error: ebb.toJSON() }, ebb.httpStatus as 400);
  });
  app.notFound((c) =>
    c.json({ error: new NotFoundError(`route ${c.req.method} ${c.req.path}`).toJSON() }, 404),
  );

  // SPEC §8, before anything else is read: the Host of every route but the health checks (a rebinding
  // page must not read the pool), and the cross-site rules for every state-changing request. The health
  // checks stay open as they do for tokens: load balancers probe them (HAProxy's httpchk sends no Host
  // unless told), they change nothing and say only what the pool's DNS answers publish anyway.
  app.use('*', async (c, next) => {
    const stateChanging = !safeMethods.has(c.req.method);
    const local = localAddress(c);
    try {
      if (!isHealthCheck(c.req.path)) guard.checkHost(c.req.header('host') ?? new URL(c.req.url).host, local);
      if (stateChanging)
        guard.checkStateChanging(
          {
            origin: c.req.header('origin'),
            secFetchSite: c.req.header('sec-fetch-site'),
            contentType: c.req.header('content-type'),
          },
          local,
        );
    } catch (err) {
      if (stateChanging && err instanceof EbbError) await deny(c, err);
      throw err;
    }
    await next();
  });

  // Reads need a viewer token; /healthz, /ready and the console's static files stay open (they are for
  // load balancers and hold no data), and commands check their own role below.
  app.use('/v1/*', async (c, next) => {
    if (c.req.method === 'GET') caller(c, 'viewer');
    await next();
  });
  app.use('/metrics', async (c, next) => {
    caller(c, 'viewer');
    await next();
  });

  app.get('/healthz', (c) => c.json({ ok: true }));

  // For load balancers and orchestrators that are not DNS-based (SPEC §4.3).
  app.get('/ready/:member/:service', (c) => {
    const { member, service } = c.req.param();
    const owner = state.snapshot().members.find((m) => m.id === member);
    // Operator audit #34: name what is missing — the member, or the service on a member that exists.
    if (!owner) throw new NotFoundError(`member ${pathWord(member)}`);
    const found = owner.services.find((s) => s.id === service);
    if (!found) throw new NotFoundError(`service ${pathWord(service)} on member ${member}`);
    return c.json(
      { member, service, accepting: found.accepting, state: found.state },
      found.accepting ? 200 : 503,
    );
  });

  app.get('/v1/openapi.json', (c) => c.json(openApiDocument({ tokens: tokens?.enabled === true })));
  app.get('/v1/pool', (c) => c.json(state.snapshot()));
  app.get('/v1/members/:member', (c) => c.json(findMember(state, c.req.param('member'))));
  app.get('/v1/audit', async (c) => {
    // Operator audit #29: `limit=abc` is a 400 naming it, not every record.
    const query = parseAuditQuery(c.req.query());
    return c.json(selectAudit(await controller.auditLog(Number.MAX_SAFE_INTEGER), query));
  });

  /** The caller of a command and its body; a 401 or 403 is audited before it is answered. */
  const authorised = async (c: Context, name: CommandName) => {
    let body: CommandBody | undefined;
    try {
      caller(c, roleFor(name, false));
      body = (await readBody(c, name)) as CommandBody;
      return { body, principal: caller(c, roleFor(name, body.force === true)) };
    } catch (err) {
      if (err instanceof UnauthorisedError) await deny(c, err, body);
      throw err;
    }
  };

  for (const name of commandNames) {
    app.post(`/v1/members/:member/${name}`, async (c) => {
      const { body, principal } = await authorised(c, name);
      const member = c.req.param('member');
      // Not a member id: not audited, so the audit log never holds control characters from a path.
      if (!memberId.test(member)) throw new NotFoundError(`member ${JSON.stringify(member)}`);
      const result = await controller.execute({
        ...asCommand(name),
        member,
        by: principal.name,
        ...(body.service ? { service: body.service } : {}),
        ...(body.reason ? { reason: body.reason } : {}),
        ...(body.deadline ? { deadlineMs: parseDuration(body.deadline, 'deadline') } : {}),
        ...(body.graceful !== undefined ? { graceful: body.graceful } : {}),
        ...(body.force !== undefined ? { force: body.force } : {}),
        ...(body.startup ? { startup: body.startup } : {}),
      });
      return c.json(result);
    });
  }

  app.get('/v1/events', (c) => events.respond(c));

  app.get('/metrics', async (c) => {
    const { contentType, body } = await metrics.scrape();
    return c.body(body, 200, { 'Content-Type': contentType });
  });

  // The web console: a static build that talks to the routes above.
  app.get('/', (c) => consoleAssets.index(c));
  app.get('/index.html', (c) => consoleAssets.index(c));
  app.get('/assets/:file', (c) => consoleAssets.asset(c));

  return app;
}

/** The controller's command for a route: `drain` is a pause of every service, audited as `drain`. */
function asCommand(name: CommandName): Pick<CommandRequest, 'action' | 'auditAs'> {
  return name === 'drain' ? { action: 'pause', auditAs: 'drain' } : { action: name };
}

function findMember(state: PoolState, id: string) {
  const member = state.snapshot().members.find((m) => m.id === id);
  if (!member) throw new NotFoundError(`member "${id}"`);
  return member;
}

/** `/v1/members/<member>/<command>`, or null for any other path. */
function commandRoute(path: string): { member: string; action: CommandName } | null {
  const match = /^\/v1\/members\/([^/]+)\/([^/]+)$/.exec(path);
  const action = commandNames.find((n) => n === match?.[2]);
  if (!match || !action) return null;
  let member = match[1]!;
  try {
    member = decodeURIComponent(member);
  } catch {
    // not percent-encoded text: recorded as it came
  }
  // The audit log is printed to terminals: a path's control characters are escaped, its length capped.
  if (!memberId.test(member)) member = JSON.stringify(member.slice(0, 100)).slice(1, -1);
  return { member, action };
}

/** A member or service id from a path, as is when it is a DNS label (ids are), else quoted and capped. */
function pathWord(text: string): string {
  return memberId.test(text) ? text : JSON.stringify(text.slice(0, 100));
}

function isHealthCheck(path: string): boolean {
  return path === '/healthz' || path.startsWith('/ready/');
}

/** The socket's local end under @hono/node-server; undefined for in-process requests (`app.request`). */
function localAddress(c: Context): LocalAddress | undefined {
  const socket = (c.env as Partial<HttpBindings> | undefined)?.incoming?.socket;
  if (!socket?.localAddress || !socket.localPort) return undefined;
  return { address: socket.localAddress, port: socket.localPort };
}

/** What a refused command's JSON body says about its target, if it can be read and is well-formed. */
async function peekBody(c: Context): Promise<CommandBody> {
  let raw: unknown;
  try {
    raw = JSON.parse(await bodyText(c));
  } catch {
    return {};
  }
  if (typeof raw !== 'object' || raw === null) return {};
  const { service, force } = raw as Record<string, unknown>;
  return {
    ...(serviceId.safeParse(service).success ? { service: service as string } : {}),
    ...(typeof force === 'boolean' ? { force } : {}),
  };
}

const bodies = new WeakMap<Request, Promise<string>>();

/** The body as text, read once per request and never past the limit (however large the sender's). */
function bodyText(c: Context): Promise<string> {
  const request = c.req.raw;
  let text = bodies.get(request);
  if (!text) {
    text = readBounded(request);
    bodies.set(request, text);
  }
  return text;
}

async function readBody<N extends CommandName>(c: Context, name: N) {
  const text = await bodyText(c);
  let raw: unknown = {};
  if (text.trim() !== '') {
    try {
      raw = JSON.parse(text);
    } catch {
      throw new BadRequestError([{ path: '(body)', message: 'is not valid JSON' }]);
    }
  }
  const parsed = commandBodies[name].safeParse(raw);
  if (!parsed.success) {
    throw new BadRequestError(
      parsed.error.issues.map((i) => ({
        path: formatPath(i.path),
        message: i.code === 'unrecognized_keys' ? `unknown field(s): ${i.keys.join(', ')}` : i.message,
      })),
    );
  }
  return parsed.data;
}
