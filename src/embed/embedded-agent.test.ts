import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { pino } from 'pino';
import { embed } from './index.ts';

const dir = mkdtempSync(join(tmpdir(), 'ebb-embed-'));
after(() => rmSync(dir, { recursive: true, force: true }));

async function freePort(): Promise<number> {
  const probe = createServer().listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const { port } = probe.address() as { port: number };
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

/** A pool whose member fe01 has one embedded service, `svc`, of `protocol`; its own store file. */
function config(name: string, protocol: 'http' | 'tcp', port: number): object {
  return {
    pool: { name, fqdn: `${name}.ebb.test` },
    store: `sqlite:${join(dir, `${name}.db`)}`,
    agent: { localState: join(dir, `${name}-local`) },
    members: [
      {
        id: 'fe01',
        address: '127.0.0.1',
        services: [{ id: 'svc', listeners: [{ protocol, mode: 'embedded', port, closeSpread: '100ms' }] }],
      },
    ],
  };
}

const quiet = pino({ level: 'silent' });

/** Waits for a state (checked every few ms: the server side of a connect lands a moment after it). */
async function until(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((resolve) => setTimeout(resolve, 5));
}

async function client(port: number): Promise<Socket> {
  const socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  return socket;
}

describe('embed()', () => {
  it('joins as the member agent for its service: ready, stats, and close() waits for the sessions to end', async () => {
    const port = await freePort();
    const agent = await embed({
      config: config('grace', 'tcp', port),
      member: 'fe01',
      service: 'svc',
      logger: quiet,
    });
    assert.equal(agent.ready, true);
    assert.equal(agent.state, 'running');
    const server = createServer((socket) => socket.on('end', () => socket.end()));
    await agent.attach(server);
    assert.deepEqual(agent.addresses(), [{ host: '127.0.0.1', port }]);
    const socket = await client(port);
    await until(() => agent.stats().sessions === 1);
    assert.equal(agent.stats().byKind.connections, 1);

    const events: string[] = [];
    for (const name of ['paused', 'drained'] as const) agent.on(name, () => events.push(name));
    let closed = false;
    const closing = agent.close().then(() => (closed = true));
    await once(agent, 'paused');
    assert.equal(agent.ready, false);
    assert.equal(closed, false, 'close() waits while a session is open');
    socket.end();
    await closing;
    assert.deepEqual(events, ['paused', 'drained']);
    assert.equal(agent.stats().forced, 0);
    assert.equal(agent.close(), agent.close(), 'the same promise');
  });

  it('destroy() ends the sessions left, counted as forced; a service that is not embedded is refused', async () => {
    const port = await freePort();
    const agent = await embed({
      config: config('hard', 'http', port),
      member: 'fe01',
      service: 'svc',
      logger: quiet,
    });
    const server = createHttpServer(() => {}); // never answers: a request stays in flight
    await agent.attach(server);
    const socket = await client(port);
    socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    await once(server, 'request');
    assert.equal(agent.stats().byKind.requests, 1);
    assert.equal(await agent.destroy(), 1);
    await once(socket, 'close');

    const proxy = config('proxy', 'tcp', port) as {
      members: Array<{ services: Array<{ listeners: unknown[] }> }>;
    };
    proxy.members[0]!.services[0]!.listeners = [{ protocol: 'tcp', port, upstream: 'builtin:echo' }];
    await assert.rejects(embed({ config: proxy, member: 'fe01', service: 'svc', logger: quiet }), {
      code: 'EBB_EMBED_USAGE',
      message: /must say mode: embedded/,
    });
  });
});
