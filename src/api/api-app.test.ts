/**
 * The HTTP API in process through `app.request()` (no socket for the API), over a real pool: agents with
 * real listeners on loopback aliases and a temporary SQLite store.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Hono } from 'hono';
import { pino } from 'pino';
import { validateConfig } from '../config/index.ts';
import { PoolRunner } from '../runner/index.ts';
import { createApiApp } from './api-app.ts';

const net = 100 + Math.floor(Math.random() * 150);
const port = 20_000 + Math.floor(Math.random() * 30_000);

interface ErrorBody {
  error: { code: string; message: string; details?: { issues?: Array<{ path: string; message: string }> } };
}

describe('API app (in process)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ebb-api-'));
  const config = validateConfig({
    pool: { name: `api${port}`, fqdn: `api${port}.ebb.test` },
    store: `sqlite:${join(dir, 'state.db')}`,
    agent: { leaseTtl: '2s', localState: join(dir, 'local') },
    members: [1, 2, 3].map((i) => ({
      id: `m${i}`,
      address: `127.0.${net}.${i}`,
      services: [
        { id: 'echo', listeners: [{ protocol: 'tcp', port, upstream: 'builtin:echo' }] },
        {
          id: 'off',
          startup: 'disabled',
          listeners: [{ protocol: 'tcp', port: port + 1, upstream: 'builtin:echo' }],
        },
      ],
    })),
  });
  const runner = new PoolRunner({ config, logger: pino({ level: 'silent' }), api: false, dns: false });
  let app: Hono;

  const post = (path: string, body: string | object | undefined) =>
    app.request(path, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    });

  /** Expects a 400 whose issues name `path`. */
  async function badRequest(res: Response, path: string, message?: RegExp): Promise<void> {
    assert.equal(res.status, 400);
    const body = (await res.json()) as ErrorBody;
    assert.equal(body.error.code, 'EBB_BAD_REQUEST');
    const issues = body.error.details?.issues ?? [];
    const issue = issues.find((i) => i.path === path);
    assert.ok(issue, `an issue for ${path} in ${JSON.stringify(issues)}`);
    if (message) assert.match(issue.message, message);
    assert.ok(body.error.message.includes(path === '(root)' ? issue.message : path), body.error.message);
  }

  before(async () => {
    await runner.start();
    app = createApiApp({ state: runner.state, controller: runner.controller });
    const up = await runner.state.waitFor(
      () => runner.state.snapshot().members.every((m) => m.services[0]!.accepting),
      5000,
    );
    assert.ok(up, 'every member accepting echo');
  });

  after(async () => {
    await runner.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('GET /healthz and /v1/pool', async () => {
    assert.equal((await app.request('/healthz')).status, 200);
    const res = await app.request('/v1/pool');
    assert.equal(res.status, 200);
    const pool = (await res.json()) as { pool: { name: string }; members: Array<{ id: string }> };
    assert.equal(pool.pool.name, `api${port}`);
    assert.deepEqual(
      pool.members.map((m) => m.id),
      ['m1', 'm2', 'm3'],
    );
  });

  it('400 naming the field: unknown field', async () => {
    await badRequest(
      await post('/v1/members/m1/pause', { service: 'echo', colour: 'red' }),
      '(root)',
      /colour/,
    );
    await badRequest(await post('/v1/members/m1/resume', { deadline: '5s' }), '(root)', /deadline/);
  });

  it('400 naming the field: bad deadline, bad types, too-long reason', async () => {
    await badRequest(await post('/v1/members/m1/pause', { deadline: 'ten minutes' }), 'deadline', /duration/);
    await badRequest(await post('/v1/members/m1/stop', { deadline: '-5s', graceful: true }), 'deadline');
    await badRequest(await post('/v1/members/m1/pause', { deadline: 30 }), 'deadline');
    await badRequest(await post('/v1/members/m1/pause', { service: 'Echo!' }), 'service');
    await badRequest(await post('/v1/members/m1/pause', { force: 'yes' }), 'force');
    await badRequest(await post('/v1/members/m1/pause', { reason: 'x'.repeat(501) }), 'reason', /500/);
    await badRequest(await post('/v1/members/m1/startup', { startup: 'automatic' }), 'service');
    await badRequest(
      await post('/v1/members/m1/startup', { service: 'echo', startup: 'sometimes' }),
      'startup',
    );
  });

  it('400 for a body that is not JSON, not an object, or too large', async () => {
    await badRequest(await post('/v1/members/m1/pause', '{"service": '), '(body)', /not valid JSON/);
    await badRequest(await post('/v1/members/m1/pause', '[1,2]'), '(root)');
    await badRequest(await post('/v1/members/m1/pause', 'null'), '(root)');
    await badRequest(
      await post('/v1/members/m1/pause', { reason: 'x', pad: 'y'.repeat(20_000) }),
      '(body)',
      /larger than 16 KB/,
    );
  });

  it('bad bodies change nothing', async () => {
    const before = JSON.stringify(
      runner.state.snapshot().members.map((m) => m.services.map((s) => s.intent)),
    );
    await post('/v1/members/m1/pause', { deadline: 'soon' });
    const after = JSON.stringify(runner.state.snapshot().members.map((m) => m.services.map((s) => s.intent)));
    assert.equal(after, before);
  });

  it('an empty body is fine', async () => {
    const res = await post('/v1/members/m1/resume', undefined);
    assert.equal(res.status, 200);
  });

  it('404 for an unknown member, service or route', async () => {
    for (const res of [
      await post('/v1/members/nope/pause', {}),
      await post('/v1/members/m1/pause', { service: 'nope' }),
      await app.request('/v1/members/nope'),
      await app.request('/ready/nope/echo'),
      await app.request('/ready/m1/nope'),
      await app.request('/v1/nothing-here'),
    ]) {
      assert.equal(res.status, 404);
      assert.equal(((await res.json()) as ErrorBody).error.code, 'EBB_NOT_FOUND');
    }
  });

  it('/ready/:m/:s answers 200 while accepting and 503 while paused', async () => {
    let res = await app.request('/ready/m1/echo');
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { member: 'm1', service: 'echo', accepting: true, state: 'running' });

    const paused = await post('/v1/members/m1/pause', { service: 'echo', reason: 'patch' });
    assert.equal(paused.status, 200);
    const result = (await paused.json()) as {
      applied: boolean;
      changed: Array<{ service: string; to: string }>;
    };
    assert.equal(result.applied, true);
    assert.deepEqual(
      result.changed.map((c) => [c.service, c.to]),
      [['echo', 'paused']],
    );
    res = await app.request('/ready/m1/echo');
    assert.equal(res.status, 503);
    assert.deepEqual(await res.json(), { member: 'm1', service: 'echo', accepting: false, state: 'paused' });
    assert.equal((await app.request('/ready/m1/off')).status, 503, 'a stopped service is not ready');

    assert.equal((await post('/v1/members/m1/resume', { service: 'echo' })).status, 200);
    assert.equal((await app.request('/ready/m1/echo')).status, 200);
  });

  it('409 + EBB_GUARD_REFUSED when the capacity guard refuses; force overrides', async () => {
    assert.equal((await post('/v1/members/m1/pause', { service: 'echo' })).status, 200);
    assert.equal((await post('/v1/members/m2/pause', { service: 'echo' })).status, 200);
    const refused = await post('/v1/members/m3/pause', { service: 'echo', reason: 'the last one' });
    assert.equal(refused.status, 409);
    const body = (await refused.json()) as ErrorBody & { error: { details: Record<string, unknown> } };
    assert.equal(body.error.code, 'EBB_GUARD_REFUSED');
    assert.equal(body.error.details.acceptingAfter, 0);
    assert.equal((await app.request('/ready/m3/echo')).status, 200, 'nothing changed');

    const audit = (await (await app.request('/v1/audit?limit=50')).json()) as Array<{
      result: string;
      reason: string;
    }>;
    assert.ok(audit.length > 1 && audit.length <= 50);
    assert.equal(audit.find((a) => a.reason === 'the last one')?.result, 'refused');

    assert.equal((await post('/v1/members/m3/pause', { service: 'echo', force: true })).status, 200);
    assert.equal((await app.request('/ready/m3/echo')).status, 503);
    for (const m of ['m1', 'm2', 'm3']) assert.equal((await post(`/v1/members/${m}/resume`, {})).status, 200);
  });

  it('409 + EBB_INVALID_TRANSITION for starting a disabled service', async () => {
    const res = await post('/v1/members/m1/start', { service: 'off' });
    assert.equal(res.status, 409);
    assert.equal(((await res.json()) as ErrorBody).error.code, 'EBB_INVALID_TRANSITION');
  });

  it('a deadline in the body reaches the intent', async () => {
    const before = Date.now();
    const res = await post('/v1/members/m2/pause', { service: 'echo', deadline: '10m' });
    assert.equal(res.status, 200);
    const deadlineAt = runner.state.intent('m2', 'echo').intent.deadlineAt!;
    assert.ok(deadlineAt >= before + 600_000 && deadlineAt <= Date.now() + 600_000, String(deadlineAt));
    assert.equal((await post('/v1/members/m2/resume', { service: 'echo' })).status, 200);
  });

  describe('/v1/openapi.json', () => {
    type Operation = {
      responses?: Record<string, { description?: string }>;
      parameters?: Array<{ name: string; in: string; required?: boolean }>;
    };
    let doc: {
      openapi: string;
      info: { title: string; version: string };
      paths: Record<string, Record<string, Operation>>;
      components?: { schemas?: Record<string, unknown> };
    };
    /** The app's routes as OpenAPI templates, without the console's static files. */
    const routes = () =>
      app.routes
        .filter((r) => r.method !== 'ALL')
        .filter((r) => r.path !== '/index.html' && !r.path.startsWith('/assets/'))
        .map((r) => ({ method: r.method.toLowerCase(), path: r.path.replace(/:(\w+)/g, '{$1}') }));

    before(async () => {
      const res = await app.request('/v1/openapi.json');
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /application\/json/);
      doc = (await res.json()) as typeof doc;
    });

    it('is OpenAPI 3.1 with info, paths and operations that each describe a response', () => {
      assert.match(doc.openapi, /^3\.1\.\d+$/);
      assert.equal(typeof doc.info.title, 'string');
      assert.equal(typeof doc.info.version, 'string');
      const methods = new Set(['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace']);
      for (const [path, item] of Object.entries(doc.paths)) {
        assert.ok(path.startsWith('/'), path);
        for (const [method, operation] of Object.entries(item)) {
          assert.ok(methods.has(method), `${path}: ${method} is an HTTP method`);
          const responses = Object.entries(operation.responses ?? {});
          assert.ok(responses.length > 0, `${method} ${path} has responses`);
          for (const [code, response] of responses) {
            assert.match(code, /^[1-5]\d\d$|^default$/);
            assert.equal(
              typeof response.description,
              'string',
              `${method} ${path} ${code} has a description`,
            );
          }
          // Every template parameter is declared as a required path parameter.
          for (const [, name] of path.matchAll(/\{(\w+)\}/g)) {
            const parameter = operation.parameters?.find((p) => p.name === name && p.in === 'path');
            assert.ok(parameter, `${method} ${path} declares {${name}}`);
            assert.equal(parameter.required, true);
          }
        }
      }
    });

    it('every $ref points into components', () => {
      const refs = [...JSON.stringify(doc).matchAll(/"\$ref":"([^"]+)"/g)].map((m) => m[1]!);
      assert.ok(refs.length > 0);
      for (const ref of refs) {
        const match = /^#\/components\/schemas\/(.+)$/.exec(ref);
        assert.ok(match, ref);
        assert.ok(doc.components?.schemas?.[match[1]!], `${ref} exists`);
      }
    });

    it('lists every API route of the app, and nothing the app does not serve', () => {
      const served = routes();
      for (const { method, path } of served) {
        if (path === '/v1/openapi.json') continue; // see the next test
        assert.ok(doc.paths[path]?.[method], `${method.toUpperCase()} ${path} is in the document`);
      }
      for (const [path, item] of Object.entries(doc.paths)) {
        for (const method of Object.keys(item)) {
          assert.ok(
            served.some((r) => r.path === path && r.method === method),
            `${method.toUpperCase()} ${path} is served`,
          );
        }
      }
    });

    it('lists itself', () => {
      assert.ok(doc.paths['/v1/openapi.json']?.get);
    });
  });
});
