import assert from 'node:assert/strict';
import { Agent, request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import type { PoolStatus, ServiceStatusView } from '../src/control/index.ts';
import { EbbServer, Workspace, runEbb } from './harness/ebb-process.ts';
import { Haproxy } from './harness/haproxy.ts';
import { loopbackMembers, loopbackNet } from './harness/pool-config.ts';
import { freePortRange } from './harness/ports.ts';
import { nextMessage, openWebSocket } from './http-support.ts';

const portBase = await freePortRange(5);

/**
 * A real HAProxy in `mode http` in front of two Ebb members' http listeners (`builtin:web`), steered by
 * Ebb's agent-check answers (SPEC §4.3, §10): a paused member gets no new request from HAProxy — neither
 * on new client connections nor on a client's keep-alive connection — while the WebSockets HAProxy had
 * opened through it go on; resume brings it back into rotation.
 */
describe('HAProxy mode http in front of Ebb http listeners, with agent-check', () => {
  const ws = new Workspace('ebb-http-haproxy-');
  const base = portBase;
  const webPort = base;
  const agentPort = base + 1;
  const members = loopbackMembers(
    2,
    loopbackNet(),
    () => [{ id: 'web', listeners: [{ protocol: 'http', port: webPort, upstream: 'builtin:web' }] }],
    { agentCheckPort: agentPort },
  );
  const frontend = { host: '127.0.0.1', port: base + 2 };
  const apiUrl = `http://127.0.0.1:${base + 3}`;
  let config: string;
  let ebb: EbbServer;
  let haproxy: Haproxy;
  const sockets: WebSocket[] = [];
  const keepAlive = new Agent({ keepAlive: true, maxSockets: 1 });
  const run = (...args: string[]) => runEbb(['--config', config, ...args]);

  const web = async (member: string): Promise<ServiceStatusView> => {
    const pool = (await (await fetch(`${apiUrl}/v1/pool`)).json()) as PoolStatus;
    return pool.members.find((m) => m.id === member)!.services.find((s) => s.id === 'web')!;
  };
  /** GET /healthz through HAProxy: which member answered. `agent`: one keep-alive client connection. */
  const whoAnswers = (agent?: Agent) =>
    new Promise<string>((resolve, reject) => {
      const req = request(
        `http://${frontend.host}:${frontend.port}/healthz`,
        agent ? { agent } : { agent: false },
        (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => (body += d));
          res.on('end', () => {
            if (res.statusCode !== 200) return reject(new Error(`HTTP ${res.statusCode}: ${body}`));
            resolve((JSON.parse(body) as { member: string }).member);
          });
        },
      );
      req.on('error', reject);
      req.end();
    });
  const waitForHaproxy = async (server: string, status: RegExp) => {
    const deadline = Date.now() + 10_000;
    let last = '';
    while (Date.now() < deadline) {
      last = (await haproxy.stats())[server]?.status ?? '';
      if (status.test(last)) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.fail(`haproxy never showed ${server} as ${status} (last: ${last})`);
  };
  /** A chat WebSocket through HAProxy; the room's welcome says which member it landed on. */
  const chat = async (name: string) => {
    const socket = await openWebSocket(`ws://${frontend.host}:${frontend.port}/ws/chat?name=${name}`);
    sockets.push(socket);
    const welcome = JSON.parse(await nextMessage(socket)) as { type: string; member: string };
    assert.equal(welcome.type, 'welcome');
    return { socket, member: welcome.member };
  };
  /** Says something in the room and waits until the room sends it back. */
  const say = async (socket: WebSocket, text: string) => {
    socket.send(text);
    for (;;) {
      const event = JSON.parse(await nextMessage(socket)) as { type: string; text?: string };
      if (event.type === 'message' && event.text === text) return;
    }
  };

  before(async () => {
    config = ws.config('pool.yaml', {
      pool: { name: `hh${base}`, fqdn: `hh${base}.ebb.test` },
      store: `sqlite:${ws.dir}/state.db`,
      dns: { listen: `127.0.0.1:${base + 4}` },
      api: { listen: `127.0.0.1:${base + 3}` },
      agent: { localState: `${ws.dir}/local` },
      members,
    });
    ebb = await EbbServer.start(['up', config], /is up/, { cwd: ws.dir });
    haproxy = await Haproxy.start(
      ws.dir,
      frontend,
      members.map((m) => ({ name: m.id, address: m.address, port: webPort, agentPort, agentSend: 'web' })),
      { mode: 'http' },
    );
    await waitForHaproxy('m1', /^UP/);
    await waitForHaproxy('m2', /^UP/);
  });

  after(async () => {
    for (const socket of sockets) socket.close();
    keepAlive.destroy();
    await haproxy?.stop();
    await ebb?.stop('SIGKILL');
    ws.cleanup();
  });

  it('a paused member gets no new request; its open WebSocket keeps working; resume brings it back', async () => {
    // Round robin per request: both members answer, and a WebSocket lands on each.
    const seen = new Set<string>();
    for (let i = 0; i < 6; i++) seen.add(await whoAnswers(keepAlive));
    assert.deepEqual([...seen].sort(), ['m1', 'm2']);
    const onM1: WebSocket[] = [];
    for (let i = 0; i < 8 && onM1.length < 2; i++) {
      const { socket, member } = await chat(`c${i}`);
      if (member === 'm1') onM1.push(socket);
    }
    assert.ok(onM1.length > 0, 'a WebSocket through HAProxy reached m1');
    let wsOnM1 = 0;
    for (let i = 0; i < 60 && wsOnM1 !== onM1.length; i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, 50));
      wsOnM1 = (await web('m1')).sessionsByKind['websockets'] ?? 0;
    }
    assert.equal(wsOnM1, onM1.length, 'm1 counts the WebSockets HAProxy opened through it');

    const pause = await run('pause', 'm1', '--service', 'web', '--reason', 'haproxy http test');
    assert.equal(pause.code, 0, pause.stderr);
    await waitForHaproxy('m1', /DRAIN/);
    const m1Before = (await haproxy.stats()).m1!;

    const answered: string[] = [];
    for (let i = 0; i < 20; i++) answered.push(await whoAnswers(keepAlive)); // one keep-alive connection
    for (let i = 0; i < 20; i++) answered.push(await whoAnswers()); // a new connection each
    assert.deepEqual(new Set(answered), new Set(['m2']), 'every request went to m2');
    const m1After = (await haproxy.stats()).m1!;
    assert.equal(m1After.stot, m1Before.stot, 'HAProxy sent m1 nothing new');
    assert.equal(m1After.econ, m1Before.econ, 'and did not even try (no connection errors)');

    // The WebSockets on m1 go on through HAProxy; m1 still counts them and is not drained.
    for (const socket of onM1) await say(socket, 'still here');
    const paused = await web('m1');
    assert.equal(paused.state, 'paused');
    assert.equal(paused.sessionsByKind['websockets'], onM1.length);
    assert.equal(paused.drained, false);
    // A new WebSocket goes to m2.
    assert.equal((await chat('late')).member, 'm2');

    // Closing them drains m1, with nothing forced.
    for (const socket of onM1) socket.close(1000);
    let drained = await web('m1');
    for (let i = 0; i < 100 && !drained.drained; i++) {
      await new Promise((r) => setTimeout(r, 50));
      drained = await web('m1');
    }
    assert.ok(drained.drained, `m1 drained once its WebSockets closed: ${JSON.stringify(drained)}`);
    assert.equal(drained.forced, 0);

    const resume = await run('resume', 'm1', '--service', 'web');
    assert.equal(resume.code, 0, resume.stderr);
    await waitForHaproxy('m1', /^UP/);
    const back = new Set<string>();
    for (let i = 0; i < 6; i++) back.add(await whoAnswers());
    assert.ok(back.has('m1'), `m1 answers again after resume (${[...back].join(', ')})`);
  });
});
