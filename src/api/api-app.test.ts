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
import { TokenTable } from '../auth/index.ts';
import { validateConfig } from '../config/index.ts';
import type { AuditRecord } from '../control/index.ts';
import { PoolRunner } from '../runner/index.ts';
import { z } from 'zod';
import { createApiApp } from './api-app.ts';
import { apiBase } from './api-test-support.ts';
import {
  AuditRecordSchema,
  CommandResultSchema,
  ErrorSchema,
  MemberStatusSchema,
  PoolStatusSchema,
  ReadinessSchema,
} from './response-schemas.ts';

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
    app.request(`${apiBase}${path}`, {
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
    assert.equal((await app.request(`${apiBase}/healthz`)).status, 200);
    const res = await app.request(`${apiBase}/v1/pool`);
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

  it('400 for a body that is not JSON or not an object', async () => {
    await badRequest(await post('/v1/members/m1/pause', '{"service": '), '(body)', /not valid JSON/);
    await badRequest(await post('/v1/members/m1/pause', '[1,2]'), '(root)');
    await badRequest(await post('/v1/members/m1/pause', 'null'), '(root)');
  });

  it('413 for a body over 16 KB, read no further than the limit (issue 16 #6, operator audit #34)', async () => {
    const tooLarge = async (res: Response) => {
      assert.equal(res.status, 413);
      assert.equal(res.headers.get('connection'), 'close');
      const body = (await res.json()) as ErrorBody;
      assert.equal(body.error.code, 'EBB_BODY_TOO_LARGE');
      assert.match(body.error.message, /larger than 16 KB/);
    };
    await tooLarge(await post('/v1/members/m1/pause', { reason: 'x', pad: 'y'.repeat(1024 * 1024) }));
    // No Content-Length (chunked): an endless body is read chunk by chunk and cut off at the limit.
    let pulled = 0;
    const endless = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulled += 4096;
        controller.enqueue(new Uint8Array(4096).fill(0x20));
      },
    });
    await tooLarge(
      await app.request(`${apiBase}/v1/members/m1/pause`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: endless,
        duplex: 'half',
      } as RequestInit),
    );
    assert.ok(pulled <= 64 * 1024, `read ${pulled} bytes of an endless body`);
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
      await app.request(`${apiBase}/v1/members/nope`),
      await app.request(`${apiBase}/ready/nope/echo`),
      await app.request(`${apiBase}/ready/m1/nope`),
      await app.request(`${apiBase}/v1/nothing-here`),
    ]) {
      assert.equal(res.status, 404);
      assert.equal(((await res.json()) as ErrorBody).error.code, 'EBB_NOT_FOUND');
    }
  });

  it('a readiness check of a member that does not exist names the member (operator audit #34)', async () => {
    const missing = (await (await app.request(`${apiBase}/ready/fe99/echo`)).json()) as ErrorBody;
    assert.equal(missing.error.message, 'member fe99 does not exist');
    const service = (await (await app.request(`${apiBase}/ready/m1/nope`)).json()) as ErrorBody;
    assert.equal(service.error.message, 'service nope on member m1 does not exist');
  });

  it('/ready/:m/:s answers 200 while accepting and 503 while paused', async () => {
    let res = await app.request(`${apiBase}/ready/m1/echo`);
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
    res = await app.request(`${apiBase}/ready/m1/echo`);
    assert.equal(res.status, 503);
    assert.deepEqual(await res.json(), { member: 'm1', service: 'echo', accepting: false, state: 'paused' });
    assert.equal(
      (await app.request(`${apiBase}/ready/m1/off`)).status,
      503,
      'a stopped service is not ready',
    );

    assert.equal((await post('/v1/members/m1/resume', { service: 'echo' })).status, 200);
    assert.equal((await app.request(`${apiBase}/ready/m1/echo`)).status, 200);
  });

  it('409 + EBB_GUARD_REFUSED when the capacity guard refuses; force overrides', async () => {
    assert.equal((await post('/v1/members/m1/pause', { service: 'echo' })).status, 200);
    assert.equal((await post('/v1/members/m2/pause', { service: 'echo' })).status, 200);
    const refused = await post('/v1/members/m3/pause', { service: 'echo', reason: 'the last one' });
    assert.equal(refused.status, 409);
    const body = (await refused.json()) as ErrorBody & { error: { details: Record<string, unknown> } };
    assert.equal(body.error.code, 'EBB_GUARD_REFUSED');
    assert.equal(body.error.details.acceptingAfter, 0);
    assert.equal((await app.request(`${apiBase}/ready/m3/echo`)).status, 200, 'nothing changed');

    const audit = (await (await app.request(`${apiBase}/v1/audit?limit=50`)).json()) as Array<{
      result: string;
      reason: string;
    }>;
    assert.ok(audit.length > 1 && audit.length <= 50);
    assert.equal(audit.find((a) => a.reason === 'the last one')?.result, 'refused');

    assert.equal((await post('/v1/members/m3/pause', { service: 'echo', force: true })).status, 200);
    assert.equal((await app.request(`${apiBase}/ready/m3/echo`)).status, 503);
    for (const m of ['m1', 'm2', 'm3']) assert.equal((await post(`/v1/members/${m}/resume`, {})).status, 200);
  });

  it('POST /v1/members/:member/drain pauses every service and is audited as drain (audit #28)', async () => {
    const drained = await post('/v1/members/m2/drain', { reason: 'drain audit' });
    assert.equal(drained.status, 200, await drained.clone().text());
    const result = (await drained.json()) as {
      action: string;
      changed: Array<{ service: string; to: string }>;
    };
    assert.equal(result.action, 'pause');
    assert.deepEqual(
      result.changed.filter((c) => c.to === 'paused').map((c) => c.service),
      ['echo'],
    );
    const records = (await (await app.request(`${apiBase}/v1/audit?action=drain`)).json()) as AuditRecord[];
    assert.equal(records[0]?.reason, 'drain audit');
    assert.equal(records[0]?.member, 'm2');
    assert.equal(records[0]?.service, null);
    // A drain is of the whole member: a service in the body is a 400 naming it.
    const one = await post('/v1/members/m2/drain', { service: 'echo' });
    assert.equal(one.status, 400);
    assert.equal((await post('/v1/members/m2/resume', {})).status, 200);
  });

  it('GET /v1/audit: a bad limit is a 400 naming it (audit #29); member, action and since filter', async () => {
    for (const bad of ['abc', '-5', '0', '1.5', '']) {
      const response = await app.request(`${apiBase}/v1/audit?limit=${bad}`);
      assert.equal(response.status, 400, `limit=${bad}`);
      const body = (await response.json()) as ErrorBody;
      assert.equal(body.error.details?.issues?.[0]?.path, 'limit');
    }
    for (const bad of ['action=bogus', 'member=M%0A1', 'since=yesterday']) {
      const response = await app.request(`${apiBase}/v1/audit?${bad}`);
      assert.equal(response.status, 400, bad);
    }
    const read = async (query: string) =>
      (await (await app.request(`${apiBase}/v1/audit?${query}`)).json()) as AuditRecord[];
    assert.equal((await read('limit=1')).length, 1);
    const m3 = await read('member=m3&limit=1000');
    assert.ok(m3.length > 0 && m3.every((r) => r.member === 'm3'));
    const resumes = await read('action=resume');
    assert.ok(resumes.length > 0 && resumes.every((r) => r.action === 'resume'));
    assert.deepEqual(await read('since=2999-01-01T00:00:00Z'), []);
    const recent = await read('since=1h');
    assert.ok(recent.length > 0 && recent.every((r) => r.at >= Date.now() - 3_600_000));
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

  it('400 naming reason: control characters are refused, not stored', async () => {
    for (const reason of ['line1\nline2', 'tab\there', 'red \u001b[31mRED', 'del \u007f', 'c1 \u009b31m']) {
      await badRequest(
        await post('/v1/members/m1/pause', { service: 'echo', reason }),
        'reason',
        /control characters/,
      );
    }
    assert.equal(runner.state.intent('m1', 'echo').intent.run, 'running');
    const ok = await post('/v1/members/m1/resume', { service: 'echo', reason: 'plain text, «unicode» ok' });
    assert.equal(ok.status, 200);
  });

  describe('cross-site requests and DNS rebinding (SPEC §8)', () => {
    const audit = async () =>
      (await (await app.request(`${apiBase}/v1/audit?limit=1000`)).json()) as AuditRecord[];
    const intents = () =>
      JSON.stringify(runner.state.snapshot().members.map((m) => m.services.map((s) => s.intent)));
    const send = (path: string, headers: Record<string, string>, body?: string) =>
      app.request(`${apiBase}${path}`, { method: 'POST', headers, ...(body === undefined ? {} : { body }) });
    const errorOf = async (res: Response) => ((await res.json()) as ErrorBody).error;

    it('415 EBB_NOT_JSON: a text/plain, form or missing Content-Type is never parsed', async () => {
      const before = intents();
      const body = JSON.stringify({ service: 'echo', force: true });
      for (const type of [
        'text/plain',
        'application/x-www-form-urlencoded',
        'multipart/form-data; boundary=x',
      ]) {
        const res = await send('/v1/members/m1/stop', { 'content-type': type }, body);
        assert.equal(res.status, 415, type);
        const error = await errorOf(res);
        assert.equal(error.code, 'EBB_NOT_JSON');
        assert.match(error.message, /Content-Type/);
      }
      const bare = await send('/v1/members/m1/pause', {});
      assert.equal(bare.status, 415);
      assert.match((await errorOf(bare)).message, /Content-Type is missing/);
      const charset = await send(
        '/v1/members/m1/resume',
        { 'content-type': 'Application/JSON; charset=utf-8' },
        '{}',
      );
      assert.equal(charset.status, 200, 'parameters and case do not matter');
      assert.equal(intents(), before);
    });

    it('403 EBB_FOREIGN_ORIGIN: a foreign or null Origin, Sec-Fetch-Site cross-site or same-site', async () => {
      const before = intents();
      const json = { 'content-type': 'application/json' };
      const body = JSON.stringify({ service: 'echo' });
      for (const origin of [
        'http://evil.example',
        'http://127.0.0.1:7071',
        'http://localhost:3000',
        'null',
        'http://127.0.0.1:7070.evil.example',
      ]) {
        const res = await send('/v1/members/m2/pause', { ...json, origin }, body);
        assert.equal(res.status, 403, origin);
        const error = await errorOf(res);
        assert.equal(error.code, 'EBB_FOREIGN_ORIGIN');
        assert.match(error.message, /^Origin /);
      }
      for (const site of ['cross-site', 'same-site']) {
        const res = await send('/v1/members/m2/pause', { ...json, 'sec-fetch-site': site }, body);
        assert.equal(res.status, 403, site);
        assert.match((await errorOf(res)).message, /^Sec-Fetch-Site "/);
      }
      assert.equal(intents(), before);
      const own: Array<Record<string, string>> = [
        { origin: 'http://127.0.0.1:7070', 'sec-fetch-site': 'same-origin' },
        { origin: 'http://localhost:7070' },
        { 'sec-fetch-site': 'none' },
      ];
      for (const headers of own) {
        const res = await send('/v1/members/m2/resume', { ...json, ...headers }, body);
        assert.equal(res.status, 200, JSON.stringify(headers));
      }
    });

    it('403 EBB_BAD_HOST on every route but the health checks', async () => {
      for (const path of ['/v1/pool', '/v1/audit', '/v1/openapi.json', '/metrics', '/']) {
        const res = await app.request(`http://attacker.example:7070${path}`);
        assert.equal(res.status, 403, path);
        const error = await errorOf(res);
        assert.equal(error.code, 'EBB_BAD_HOST');
        assert.match(error.message, /^Host "attacker\.example:7070" is not this API's address/);
      }
      assert.equal((await app.request('http://localhost/v1/pool')).status, 403, 'port 80 is not 7070');
      assert.equal((await app.request('http://localhost:7070/v1/pool')).status, 200, 'localhost on loopback');
      assert.equal((await app.request('http://attacker.example/healthz')).status, 200);
      assert.equal((await app.request('http://attacker.example/ready/m1/echo')).status, 200);
      const write = await app.request('http://attacker.example:7070/v1/members/m3/pause', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{}',
      });
      assert.equal(write.status, 403);
      assert.equal(runner.state.intent('m3', 'echo').intent.run, 'running');
    });

    it('the address is the listen option when given (`ebb api --listen`), else api.listen', async () => {
      const other = createApiApp(
        { state: runner.state, controller: runner.controller },
        { listen: '127.0.0.1:9999' },
      );
      assert.equal((await other.request('http://127.0.0.1:9999/v1/pool')).status, 200);
      assert.equal((await other.request(`${apiBase}/v1/pool`)).status, 403);
    });

    it('every refusal of a command is audited as denied: who, action, member, service, why', async () => {
      const res = await send(
        '/v1/members/m1/stop',
        { 'content-type': 'application/json', origin: 'http://evil.example' },
        JSON.stringify({ service: 'echo', force: true }),
      );
      assert.equal(res.status, 403);
      await send('/v1/members/m2/pause', { 'content-type': 'text/plain' }, '{"service":"echo"}');
      const records = (await audit()).filter((r) => r.result === 'denied');
      const origin = records.find((r) => r.member === 'm1' && r.action === 'stop' && /evil/.test(r.detail));
      assert.ok(origin, JSON.stringify(records));
      assert.equal(origin.by, 'anonymous');
      assert.equal(origin.service, 'echo');
      assert.equal(origin.force, true);
      assert.match(origin.detail, /^EBB_FOREIGN_ORIGIN: Origin "http:\/\/evil\.example"/);
      const plain = records.find((r) => r.member === 'm2' && /EBB_NOT_JSON/.test(r.detail));
      assert.ok(plain, 'a text/plain command is audited');
      assert.equal(plain.service, null, 'a body not declared JSON is not read, even for the audit');
    });

    it('a path with control characters is escaped in the audit, and is a 404 when let through', async () => {
      await send('/v1/members/m1%1b%5b31m/pause', { 'content-type': 'text/plain' }, '');
      const record = (await audit()).find((r) => r.result === 'denied' && r.member.startsWith('m1\\u001b'));
      assert.ok(record, 'escaped member in the audit');
      assert.equal(record.member, 'm1\\u001b[31m');
      const res = await post('/v1/members/m1%0a/pause', {});
      assert.equal(res.status, 404);
      assert.match((await errorOf(res)).message, /member "m1\\n"/);
    });

    describe('with tokens', () => {
      const env = { T_VIEW: 'view-token-0123456789', T_OPS: 'ops-token-0123456789' };
      let guarded: Hono;
      before(() => {
        const tokens = TokenTable.fromConfig(
          {
            ...config,
            api: {
              ...config.api,
              tokens: [
                { name: 'watcher', role: 'viewer', token: 'env:T_VIEW' },
                { name: 'ops', role: 'operator', token: 'env:T_OPS' },
              ],
            },
          },
          env,
        );
        guarded = createApiApp({ state: runner.state, controller: runner.controller, tokens });
      });
      const command = (path: string, token: string | undefined, body: object) =>
        guarded.request(`${apiBase}${path}`, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
          },
          body: JSON.stringify(body),
        });

      it('401 and 403 are audited with the token name (never its value), or anonymous', async () => {
        const before = intents();
        assert.equal((await command('/v1/members/m1/pause', undefined, { service: 'echo' })).status, 401);
        assert.equal(
          (await command('/v1/members/m1/pause', 'wrong-token-0123456789', { service: 'echo' })).status,
          401,
        );
        assert.equal((await command('/v1/members/m1/pause', env.T_VIEW, { service: 'echo' })).status, 403);
        assert.equal(
          (await command('/v1/members/m2/pause', env.T_OPS, { service: 'echo', force: true })).status,
          403,
        );
        assert.equal((await command('/v1/members/m3/stop', env.T_OPS, {})).status, 403);
        assert.equal(intents(), before);

        const records = (await audit()).filter(
          (r) => r.result === 'denied' && /EBB_UNAUTHENTICATED|EBB_FORBIDDEN/.test(r.detail),
        );
        const text = JSON.stringify(records);
        for (const value of [...Object.values(env), 'wrong-token-0123456789'])
          assert.ok(!text.includes(value), 'no token value in the audit');
        const m1 = records.filter((r) => r.member === 'm1');
        assert.deepEqual(m1.map((r) => r.by).sort(), ['anonymous', 'anonymous', 'watcher']);
        assert.ok(m1.every((r) => r.service === 'echo' && r.action === 'pause'));
        const forced = records.find((r) => r.member === 'm2')!;
        assert.equal(forced.by, 'ops');
        assert.equal(forced.force, true);
        assert.match(forced.detail, /^EBB_FORBIDDEN: token "ops" has role operator; this needs admin/);
        const stop = records.find((r) => r.member === 'm3')!;
        assert.equal(stop.action, 'stop');
        assert.equal(stop.service, null);
      });

      it('reads refused for a token are not commands and are not audited', async () => {
        const count = (await audit()).length;
        assert.equal((await guarded.request(`${apiBase}/v1/pool`)).status, 401);
        assert.equal((await audit()).length, count);
      });
    });
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
      const res = await app.request(`${apiBase}/v1/openapi.json`);
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

    it('the 200s carry response schemas generated from the zod schemas', () => {
      type Content = { content?: Record<string, { schema?: Record<string, unknown> }> };
      const schemaOf = (path: string, method: string, code = '200') =>
        (doc.paths[path]?.[method]?.responses?.[code] as Content | undefined)?.content?.['application/json']
          ?.schema;
      assert.deepEqual(schemaOf('/v1/pool', 'get'), { $ref: '#/components/schemas/PoolStatus' });
      assert.deepEqual(schemaOf('/v1/members/{member}', 'get'), {
        $ref: '#/components/schemas/MemberStatus',
      });
      assert.deepEqual(schemaOf('/v1/audit', 'get'), {
        type: 'array',
        items: { $ref: '#/components/schemas/AuditRecord' },
      });
      for (const name of ['pause', 'resume', 'start', 'stop', 'startup']) {
        assert.deepEqual(schemaOf(`/v1/members/{member}/${name}`, 'post'), {
          $ref: '#/components/schemas/CommandResult',
        });
        for (const code of ['400', '403', '404', '409', '415'])
          assert.deepEqual(schemaOf(`/v1/members/{member}/${name}`, 'post', code), {
            $ref: '#/components/schemas/Error',
          });
      }
      type Schema = { properties: Record<string, Record<string, unknown>>; required: string[] };
      const schemas = doc.components!.schemas as Record<string, Schema>;
      const result = schemas['CommandResult']!;
      assert.equal(result.properties['applied']!['type'], 'boolean');
      assert.deepEqual(result.properties['failures']!['items'], {
        $ref: '#/components/schemas/ApplyFailure',
      });
      assert.deepEqual(result.properties['status'], { $ref: '#/components/schemas/MemberStatus' });
      assert.deepEqual(schemas['ApplyFailure']!.required, ['service', 'code', 'message']);
      assert.deepEqual(schemas['AuditRecord']!.properties['result']!['enum'], [
        'ok',
        'refused',
        'denied',
        'error',
      ]);
      assert.deepEqual(schemas['Error']!.required, ['error']);
      assert.ok(!('securitySchemes' in doc.components!), 'no tokens, no security schemes');
      assert.ok(!JSON.stringify(doc).includes('"$schema"'), 'the document sets the dialect');
    });

    it('real answers match the response schemas', async () => {
      PoolStatusSchema.parse(await (await app.request(`${apiBase}/v1/pool`)).json());
      MemberStatusSchema.parse(await (await app.request(`${apiBase}/v1/members/m1`)).json());
      ReadinessSchema.parse(await (await app.request(`${apiBase}/ready/m1/echo`)).json());
      const result = CommandResultSchema.parse(await (await post('/v1/members/m1/resume', {})).json());
      assert.equal(result.applied, true);
      const audit = z.array(AuditRecordSchema).parse(await (await app.request(`${apiBase}/v1/audit`)).json());
      assert.ok(audit.some((r) => r.result === 'denied'));
      ErrorSchema.parse(await (await post('/v1/members/nope/pause', {})).json());
    });

    it('with tokens: a bearer security scheme, declared on every route but the health checks', async () => {
      const tokens = TokenTable.fromConfig(
        { ...config, api: { ...config.api, tokens: [{ name: 'v', role: 'viewer', token: 'env:T_V' }] } },
        { T_V: 'viewer-token-0123456789' },
      );
      const guarded = createApiApp({ state: runner.state, controller: runner.controller, tokens });
      const res = await guarded.request(`${apiBase}/v1/openapi.json`, {
        headers: { authorization: 'Bearer viewer-token-0123456789' },
      });
      const secured = (await res.json()) as typeof doc & {
        components: { securitySchemes: Record<string, { type: string; scheme?: string; in?: string }> };
        paths: Record<string, Record<string, { security?: unknown[] }>>;
      };
      assert.deepEqual(secured.components.securitySchemes['bearer'], {
        type: 'http',
        scheme: 'bearer',
        description: 'A token from api.tokens: `Authorization: Bearer <token>`',
      });
      assert.equal(secured.components.securitySchemes['accessToken']?.in, 'query');
      for (const path of ['/v1/pool', '/v1/audit', '/v1/members/{member}/pause', '/metrics'])
        assert.deepEqual(secured.paths[path]!['get' in secured.paths[path]! ? 'get' : 'post']!.security, [
          { bearer: [] },
        ]);
      assert.deepEqual(secured.paths['/v1/events']!['get']!.security, [{ bearer: [] }, { accessToken: [] }]);
      for (const path of ['/healthz', '/ready/{member}/{service}'])
        assert.equal(secured.paths[path]!['get']!.security, undefined, path);
      assert.ok(secured.paths['/v1/pool']!['get']!.responses?.['401']);
    });
  });
});
