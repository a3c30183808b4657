/**
 * `builtin:web` on its own (SPEC §10): the demo app the http listener fronts when a pool has no web
 * server. Through the listener it is covered by test/http-proxy.test.ts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { BuiltinWeb } from '../src/listeners/http/index.ts';
import { nextMessage, openWebSocket } from './http-support.ts';

describe('builtin:web', () => {
  const app = new BuiltinWeb('fe01', '127.0.0.1');
  let base = '';
  before(async () => {
    const { host, port } = await app.start();
    base = `http://${host}:${port}`;
  });
  after(() => app.close());

  it('serves the chat page and a health check naming the member', async () => {
    const page = await fetch(`${base}/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /text\/html/);
    const html = await page.text();
    assert.match(html, /Ebb demo chat/);
    assert.match(html, /fe01/);
    assert.deepEqual(await (await fetch(`${base}/healthz`)).json(), { status: 'ok', member: 'fe01' });
    assert.equal((await fetch(`${base}/nope`)).status, 404);
  });

  it('streams bodies: /echo returns what it gets, /bytes sends n bytes', async () => {
    const echoed = await fetch(`${base}/echo`, { method: 'POST', body: 'x'.repeat(100_000) });
    assert.equal((await echoed.text()).length, 100_000);
    const bytes = await fetch(`${base}/bytes?n=300000`);
    assert.equal((await bytes.arrayBuffer()).byteLength, 300_000);
  });

  it('echoes on /ws', async () => {
    const ws = await openWebSocket(`${base.replace('http', 'ws')}/ws`);
    ws.send('hello');
    assert.equal(await nextMessage(ws), 'hello');
    ws.close();
  });

  it('broadcasts in the chat room on /ws/chat', async () => {
    const alice = await openWebSocket(`${base.replace('http', 'ws')}/ws/chat?name=alice`);
    const welcome = JSON.parse(await nextMessage(alice));
    assert.deepEqual(welcome, { type: 'welcome', name: 'alice', member: 'fe01', count: 1 });
    const bob = await openWebSocket(`${base.replace('http', 'ws')}/ws/chat?name=bob`);
    assert.equal(JSON.parse(await nextMessage(bob)).count, 2);
    assert.deepEqual(JSON.parse(await nextMessage(alice)), { type: 'join', name: 'bob', count: 2 });
    bob.send('hi all');
    const heard = JSON.parse(await nextMessage(alice));
    assert.equal(heard.type, 'message');
    assert.equal(heard.name, 'bob');
    assert.equal(heard.text, 'hi all');
    assert.equal(JSON.parse(await nextMessage(bob)).text, 'hi all');
    bob.close();
    assert.deepEqual(JSON.parse(await nextMessage(alice)), { type: 'leave', name: 'bob', count: 1 });
    alice.close();
  });
});
