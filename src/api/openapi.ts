import { z } from 'zod';
import { commandBodies, commandNames } from './request-schemas.ts';
import { responseSchemas } from './response-schemas.ts';

export interface OpenApiOptions {
  /** The pool has `api.tokens`: routes other than the health checks and the console declare bearer auth. */
  tokens?: boolean;
}

type Json = Record<string, unknown>;

/**
 * The OpenAPI 3.1 description of the API, served at `/v1/openapi.json` (SPEC §7). Request and response
 * bodies are generated from the zod schemas that validate them (`request-schemas.ts`) or describe them
 * (`response-schemas.ts`).
 */
export function openApiDocument(options: OpenApiOptions = {}): Json {
  const tokens = options.tokens === true;
  const ref = (name: keyof typeof responseSchemas) => ({ $ref: `#/components/schemas/${name}` });
  const json = (schema: Json, description: string) => ({
    description,
    content: { 'application/json': { schema } },
  });
  const error = (description: string) => json(ref('Error'), description);
  const member = { name: 'member', in: 'path', required: true, schema: { type: 'string' } };

  /** Responses every route but the health checks can give (SPEC §8). */
  const guarded = (security: Json[] = [{ bearer: [] }]) => ({
    ...(tokens ? { security } : {}),
    responses: {
      ...(tokens ? { '401': error('No token, or not a valid one (EBB_UNAUTHENTICATED)') } : {}),
      '403': error(
        `The Host header is not this API's address or a name in api.hosts (EBB_BAD_HOST)` +
          (tokens ? '; or the token is valid but its role too weak (EBB_FORBIDDEN)' : ''),
      ),
    },
  });
  const read = (
    summary: string,
    ok: Json,
    more: { parameters?: Json[]; responses?: Json; security?: Json[] } = {},
  ) => {
    const base = guarded(more.security);
    return {
      get: {
        summary,
        ...base,
        ...(more.parameters ? { parameters: more.parameters } : {}),
        responses: { '200': ok, ...base.responses, ...more.responses },
      },
    };
  };

  const commandPaths = Object.fromEntries(
    commandNames.map((name) => {
      const base = guarded();
      return [
        `/v1/members/{member}/${name}`,
        {
          post: {
            summary: `${name} a member, or one of its services`,
            description:
              'Needs `Content-Type: application/json`, even with an empty body. A request from a browser page ' +
              'on another origin (`Origin`, `Sec-Fetch-Site`) is refused. Every refusal is audited as `denied` (SPEC §8).',
            ...base,
            parameters: [member],
            requestBody: {
              required: false,
              content: { 'application/json': { schema: bodySchema(commandBodies[name]) } },
            },
            responses: {
              '200': json(
                ref('CommandResult'),
                'Stored. `applied` says whether the agent confirmed every change; `failures` names the changes it reported it could not apply (it keeps trying)',
              ),
              '400': error('A field of the body is wrong; the issue names it (EBB_BAD_REQUEST)'),
              '413': error('The body is larger than 16 KB; it is not read further (EBB_BODY_TOO_LARGE)'),
              ...base.responses,
              '403': error(
                'Refused by access control: a foreign Origin or Sec-Fetch-Site (EBB_FOREIGN_ORIGIN), ' +
                  `a Host that is not this API's (EBB_BAD_HOST)` +
                  (tokens ? ', or a token whose role is too weak (EBB_FORBIDDEN)' : ''),
              ),
              '404': error('No such member or service (EBB_NOT_FOUND)'),
              '409': error(
                'Invalid transition (EBB_INVALID_TRANSITION), or refused by the capacity guard (EBB_GUARD_REFUSED)',
              ),
              '415': error('The body is not declared `application/json` (EBB_NOT_JSON); it is not read'),
            },
          },
        },
      ];
    }),
  );

  return {
    openapi: '3.1.0',
    info: {
      title: 'Ebb API',
      version: '1',
      description: 'Drain pool members for maintenance without dropping a session.',
    },
    paths: {
      '/healthz': {
        get: {
          summary: 'Liveness of the API process (open to any Host and without a token, for health checkers)',
          responses: { '200': { description: 'OK' } },
        },
      },
      '/ready/{member}/{service}': {
        get: {
          summary:
            'Readiness of one service for load balancers: 200 while it accepts new sessions, 503 otherwise (open to any Host and without a token)',
          parameters: [member, { name: 'service', in: 'path', required: true, schema: { type: 'string' } }],
          responses: {
            '200': json(ref('Readiness'), 'accepting'),
            '503': json(ref('Readiness'), 'not accepting'),
            '404': error('No such member or service (EBB_NOT_FOUND)'),
          },
        },
      },
      '/v1/pool': read(
        'The pool: members × services with state and sessions (`ebb status --json`)',
        json(ref('PoolStatus'), 'The pool'),
      ),
      '/v1/members/{member}': read('One member', json(ref('MemberStatus'), 'The member'), {
        parameters: [member],
        responses: { '404': error('No such member (EBB_NOT_FOUND)') },
      }),
      ...commandPaths,
      '/v1/openapi.json': read('This document', { description: 'OpenAPI 3.1 JSON' }),
      '/v1/audit': read(
        'Audit trail, newest first: every command, refused and denied ones included',
        json({ type: 'array', items: ref('AuditRecord') }, 'Audit records'),
        {
          parameters: [
            {
              name: 'limit',
              in: 'query',
              required: false,
              schema: { type: 'integer', minimum: 1, maximum: 1000, default: 200 },
            },
            { name: 'member', in: 'query', required: false, schema: { type: 'string' } },
            {
              name: 'action',
              in: 'query',
              required: false,
              schema: {
                type: 'string',
                enum: ['pause', 'resume', 'start', 'stop', 'startup', 'drain', 'force'],
              },
            },
            {
              name: 'since',
              in: 'query',
              required: false,
              schema: { type: 'string' },
              description: 'an ISO time, epoch ms, or a duration ago (`1h`)',
            },
          ],
          responses: { '400': error('A bad limit, member, action or since (EBB_BAD_REQUEST)') },
        },
      ),
      '/v1/events': read(
        'Server-sent events: `hello` (the pool), every SPEC §2 code, `pool` (a changed snapshot), ' +
          '`sessions` (live counts, at most 4 per service per second), `resync` (`{dropped, pool, reason}`). ' +
          'SPEC §2 events carry an `id`; a reconnect with `Last-Event-ID` gets the events it missed',
        {
          description: 'text/event-stream',
          content: { 'text/event-stream': { schema: { type: 'string' } } },
        },
        {
          parameters: [
            {
              name: 'Last-Event-ID',
              in: 'header',
              required: false,
              schema: { type: 'string' },
              description:
                'The id of the last event received: resume after it (browsers send it by themselves)',
            },
          ],
          // EventSource cannot send headers: the token may ride in the query.
          security: [{ bearer: [] }, { accessToken: [] }],
        },
      ),
      '/metrics': read('Prometheus metrics (text exposition format)', {
        description: 'text/plain; version=0.0.4',
        content: { 'text/plain': { schema: { type: 'string' } } },
      }),
      '/': {
        get: {
          summary: 'The web console (503 when its build is missing)',
          responses: {
            '200': { description: 'text/html' },
            '403': error(`The Host header is not this API's address or a name in api.hosts (EBB_BAD_HOST)`),
            '503': { description: 'console not built' },
          },
        },
      },
    },
    components: {
      schemas: componentSchemas(),
      ...(tokens
        ? {
            securitySchemes: {
              bearer: {
                type: 'http',
                scheme: 'bearer',
                description: 'A token from api.tokens: `Authorization: Bearer <token>`',
              },
              accessToken: {
                type: 'apiKey',
                in: 'query',
                name: 'access_token',
                description: 'The same token, for /v1/events only (EventSource cannot send headers)',
              },
            },
          }
        : {}),
    },
  };
}

/** The response schemas as components, referring to each other by `$ref`. */
function componentSchemas(): Json {
  const registry = z.registry<{ id: string }>();
  for (const [id, schema] of Object.entries(responseSchemas)) registry.add(schema, { id });
  const { schemas } = z.toJSONSchema(registry, {
    io: 'output',
    uri: (id) => `#/components/schemas/${id}`,
    // Clients must tolerate new fields: a response schema does not promise that there are no others.
    override: ({ jsonSchema }) => {
      if (jsonSchema.additionalProperties === false) delete jsonSchema.additionalProperties;
    },
  });
  return Object.fromEntries(Object.entries(schemas).map(([id, schema]) => [id, embedded(schema)]));
}

function bodySchema(schema: z.ZodType): Json {
  return embedded(z.toJSONSchema(schema, { io: 'input' }));
}

/** A schema inside the document: the document sets the dialect, and `$ref` names components. */
function embedded(schema: Json): Json {
  const copy = { ...schema };
  delete copy['$schema'];
  delete copy['$id'];
  return copy;
}
