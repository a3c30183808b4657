import { Hono, type Context } from 'hono';
import { TokenTable, roleFor, type Principal } from '../auth/index.ts';
import { formatPath } from '../config/index.ts';
import type { Controller, PoolState } from '../control/index.ts';
import { BadRequestError, EbbError, NotFoundError, parseDuration, type StartupType } from '../core/index.ts';
import { ConsoleAssets } from './console-assets.ts';
import { EventsStream, type EventsStreamOptions } from './events-stream.ts';
import { openApiDocument } from './openapi.ts';
import { PoolMetrics } from './pool-metrics.ts';
import { commandBodies, commandNames, type CommandName } from './request-schemas.ts';

const maxBodyBytes = 16 * 1024;

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
  const events = new EventsStream(state, options.events);
  const metrics = new PoolMetrics(state, {
    processMetrics: options.processMetrics ?? false,
    streamClients: () => events.clients,
  });
  const consoleAssets = new ConsoleAssets(options.consoleDir);

  app.onError((err, c) => {
    const ebb =
      err instanceof EbbError ? err : new EbbError('EBB_INTERNAL', 'internal error', { cause: err });
    return c.json({ error: ebb.toJSON() }, ebb.httpStatus as 400);
  });
  app.notFound((c) =>
    c.json({ error: new NotFoundError(`route ${c.req.method} ${c.req.path}`).toJSON() }, 404),
  );

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
    const found = state
      .snapshot()
      .members.find((m) => m.id === member)
      ?.services.find((s) => s.id === service);
    if (!found) throw new NotFoundError(`service "${service}" on member "${member}"`);
    return c.json(
      { member, service, accepting: found.accepting, state: found.state },
      found.accepting ? 200 : 503,
    );
  });

  app.get('/v1/openapi.json', (c) => c.json(openApiDocument()));
  app.get('/v1/pool', (c) => c.json(state.snapshot()));
  app.get('/v1/members/:member', (c) => c.json(findMember(state, c.req.param('member'))));
  app.get('/v1/audit', async (c) => {
    const limit = Math.min(1000, Math.max(1, Number(c.req.query('limit') ?? 200) || 200));
    return c.json(await controller.auditLog(limit));
  });

  for (const name of commandNames) {
    app.post(`/v1/members/:member/${name}`, async (c) => {
      caller(c, roleFor(name, false));
      const body = (await readBody(c, name)) as CommandBody;
      const principal = caller(c, roleFor(name, body.force === true));
      const result = await controller.execute({
        action: name,
        member: c.req.param('member'),
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

function findMember(state: PoolState, id: string) {
  const member = state.snapshot().members.find((m) => m.id === id);
  if (!member) throw new NotFoundError(`member "${id}"`);
  return member;
}

async function readBody<N extends CommandName>(c: Context, name: N) {
  const text = await c.req.text();
  if (text.length > maxBodyBytes)
    throw new BadRequestError([{ path: '(body)', message: 'is larger than 16 KB' }]);
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
