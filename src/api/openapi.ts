import { z } from 'zod';
import { commandBodies, commandNames } from './request-schemas.ts';

/** The OpenAPI 3.1 description of the `/v1` API, served at `/v1/openapi.json` (SPEC §7). */
export function openApiDocument(): Record<string, unknown> {
  const error = {
    description: 'Error',
    content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
  };
  const commandPaths = Object.fromEntries(
    commandNames.map((name) => [
      `/v1/members/{member}/${name}`,
      {
        post: {
          summary: `${name} a member, or one of its services`,
          parameters: [{ name: 'member', in: 'path', required: true, schema: { type: 'string' } }],
          requestBody: {
            required: false,
            content: { 'application/json': { schema: z.toJSONSchema(commandBodies[name], { io: 'input' }) } },
          },
          responses: {
            '200': { description: 'Done; `applied` says whether the agent confirmed it' },
            '400': error,
            '401': error,
            '403': error,
            '404': error,
            '409': {
              ...error,
              description: 'Invalid transition, or refused by the capacity guard (code EBB_GUARD_REFUSED)',
            },
          },
        },
      },
    ]),
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
        get: { summary: 'Liveness of the API process', responses: { '200': { description: 'OK' } } },
      },
      '/ready/{member}/{service}': {
        get: {
          summary:
            'Readiness of one service for load balancers: 200 while it accepts new sessions, 503 otherwise',
          parameters: [
            { name: 'member', in: 'path', required: true, schema: { type: 'string' } },
            { name: 'service', in: 'path', required: true, schema: { type: 'string' } },
          ],
          responses: {
            '200': { description: 'accepting' },
            '503': { description: 'not accepting' },
            '404': error,
          },
        },
      },
      '/v1/pool': {
        get: {
          summary: 'The pool: members × services with state and sessions',
          responses: { '200': { description: 'PoolStatus' } },
        },
      },
      '/v1/members/{member}': {
        get: {
          summary: 'One member',
          parameters: [{ name: 'member', in: 'path', required: true, schema: { type: 'string' } }],
          responses: { '200': { description: 'MemberStatus' }, '404': error },
        },
      },
      ...commandPaths,
      '/v1/openapi.json': {
        get: { summary: 'This document', responses: { '200': { description: 'OpenAPI 3.1 JSON' } } },
      },
      '/v1/audit': {
        get: {
          summary: 'Audit trail, newest first',
          parameters: [
            {
              name: 'limit',
              in: 'query',
              required: false,
              schema: { type: 'integer', minimum: 1, maximum: 1000, default: 200 },
            },
          ],
          responses: { '200': { description: 'AuditRecord[]' } },
        },
      },
      '/v1/events': {
        get: {
          summary:
            'Server-sent events: `hello` (the pool), every SPEC §2 code, `pool` (a changed snapshot), ' +
            '`sessions` (live counts, at most 4 per service per second), `resync` (after a slow client lagged)',
          responses: { '200': { description: 'text/event-stream' } },
        },
      },
      '/metrics': {
        get: {
          summary: 'Prometheus metrics (text exposition format)',
          responses: { '200': { description: 'text/plain; version=0.0.4' } },
        },
      },
      '/': {
        get: {
          summary: 'The web console (503 when its build is missing)',
          responses: { '200': { description: 'text/html' }, '503': { description: 'console not built' } },
        },
      },
    },
    components: {
      schemas: {
        Error: {
          type: 'object',
          properties: {
            error: {
              type: 'object',
              properties: {
                code: { type: 'string' },
                message: { type: 'string' },
                details: { type: 'object' },
              },
              required: ['code', 'message'],
            },
          },
        },
      },
    },
  };
}
