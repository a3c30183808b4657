import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import type { PoolStatus, ServiceStatusView } from '../src/control/index.ts';
import { Workspace, runEbb } from './harness/ebb-process.ts';
import { ManagedProcess, nodeBin, root, runProcess } from './harness/managed-process.ts';
import { loopbackNet } from './harness/pool-config.ts';
import { freePortRange } from './harness/ports.ts';

/**
 * The library as an application meets it (issue 13, operator audit #5, #24): the project packed with
 * `npm pack`, the tarball installed into an empty app beside `ws`, and an app written here that embeds
 * Ebb (`import { embed } from 'ebb'`) for its chat service, driven by the `ebb` CLI against `ebb up`.
 */
describe('ebb as an installed package: npx ebb, and a server that embeds Ebb', () => {
  const ws = new Workspace('ebb-embed-pkg-');
  const net = loopbackNet();
  const address = `127.0.${net}.1`;
  const appDir = join(ws.dir, 'app');
  let base: number;
  let config: string;
  /** `ebb up` as the installed package runs it: compiled JavaScript from node_modules/ebb/dist. */
  let up: ManagedProcess;
  let app: ManagedProcess | null = null;

  const ebb = (...args: string[]) => runEbb(['--config', config, ...args]);
  const chat = async (): Promise<ServiceStatusView> => {
    const res = await fetch(`http://127.0.0.1:${base + 1}/v1/pool`);
    const pool = (await res.json()) as PoolStatus;
    return pool.members[0]!.services.find((s) => s.id === 'chat')!;
  };
  /** Waits for the pool's view of the service (status comes from the embedded agent through the store). */
  const until = async (check: (s: ServiceStatusView) => boolean, what: string) => {
    let last: ServiceStatusView | undefined;
    for (let i = 0; i < 300; i++) {
      last = await chat();
      if (check(last)) return last;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.fail(`${what}: not reached; last ${JSON.stringify(last)}\n${app?.output ?? ''}`);
  };
  const startApp = async (): Promise<{ state: string; ready: boolean }> => {
    app = new ManagedProcess('embedded chat app', nodeBin, ['app.mjs', config], { cwd: appDir });
    const [line] = await app.waitForOutput(/\{"up":true[^\n]*\}/, 20_000);
    return JSON.parse(line) as { state: string; ready: boolean };
  };
  const openSocket = async (): Promise<WebSocket> => {
    const socket = new WebSocket(`ws://${address}:${base}/chat`);
    await once(socket, 'open');
    return socket;
  };
  const refused = (): Promise<string> =>
    new Promise((resolve) => {
      const socket = connect(base, address);
      socket.once('connect', () => {
        socket.destroy();
        resolve('connected');
      });
      socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
    });

  before(async () => {
    base = await freePortRange(4);
    config = ws.config('pool.yaml', {
      pool: { name: `embed${base}`, fqdn: `embed${base}.ebb.test` },
      store: `sqlite:${ws.dir}/state.db`,
      dns: { listen: `127.0.0.1:${base + 2}` },
      api: { listen: `127.0.0.1:${base + 1}` },
      agent: { localState: `${ws.dir}/local` },
      members: [
        {
          id: 'fe01',
          address,
          services: [
            {
              id: 'chat',
              listeners: [{ protocol: 'http', mode: 'embedded', port: base, closeSpread: '500ms' }],
            },
          ],
        },
      ],
    });
    // The package as npm would publish it: compiled now (CI's `npm ci` ran prepare already), then packed.
    const npm = (args: string[], cwd: string) => runProcess('npm', args, { cwd, timeoutMs: 180_000 });
    const build = await npm(['run', 'build:lib'], root);
    assert.equal(build.code, 0, build.stderr);
    const pack = await npm(['pack', '--ignore-scripts', '--json', '--pack-destination', ws.dir], root);
    assert.equal(pack.code, 0, pack.stderr);
    const [packed] = JSON.parse(pack.stdout) as Array<{ filename: string; files: Array<{ path: string }> }>;
    const files = packed!.files.map((f) => f.path);
    assert.ok(
      files.includes('dist/embed/index.js') && files.includes('dist/embed/index.d.ts'),
      'library built in',
    );
    assert.ok(files.includes('console/dist/index.html'), 'console built in (audit #5)');
    assert.deepEqual(
      files.filter((f) => /\.test\.|(^|\/)test\//.test(f)),
      [],
      'no tests shipped',
    );
    assert.ok(!files.some((f) => f.startsWith('src/')), 'no TypeScript sources');

    mkdirSync(appDir);
    writeFileSync(
      join(appDir, 'package.json'),
      JSON.stringify({ name: 'chat-app', private: true, type: 'module' }),
    );
    const wsVersion = (
      JSON.parse(readFileSync(join(root, 'node_modules/ws/package.json'), 'utf8')) as { version: string }
    ).version;
    const typesWsVersion = (
      JSON.parse(readFileSync(join(root, 'node_modules/@types/ws/package.json'), 'utf8')) as {
        version: string;
      }
    ).version;
    const install = await npm(
      [
        'install',
        '--prefer-offline',
        '--no-audit',
        '--no-fund',
        join(ws.dir, packed!.filename),
        `ws@${wsVersion}`,
        // `ebb/client`'s WebSocket connector is typed with ws's types, as any TypeScript app using ws has.
        `@types/ws@${typesWsVersion}`,
      ],
      appDir,
    );
    assert.equal(install.code, 0, install.stderr);
    writeFileSync(join(appDir, 'app.mjs'), appSource);
    const installedBin = join(appDir, 'node_modules/ebb/bin/ebb.js');
    up = new ManagedProcess('ebb up (installed)', nodeBin, [installedBin, 'up', config], { cwd: ws.dir });
    await up.waitForOutput(/is up/);
  });

  after(async () => {
    await app?.stop();
    await up?.stop();
    ws.cleanup();
  });

  it('npx ebb --version runs the compiled CLI; an old Node is told what to do', async () => {
    const path = `${join(root, 'node_modules/.bin')}:${process.env.PATH ?? ''}`;
    const npx = await runProcess('npx', ['ebb', '--version'], { cwd: appDir, env: { PATH: path } });
    assert.equal(npx.code, 0, npx.stderr);
    assert.equal(npx.stdout.trim(), JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version);
    assert.doesNotMatch(npx.stderr, /EBADENGINE|ERR_/);
    // The system Node (20 on the CI machines): a sentence, not a stack trace (audit #24).
    const old = await runProcess('/usr/bin/node', [join(appDir, 'node_modules/.bin/ebb'), '--version'], {
      cwd: appDir,
    });
    const systemNode = await runProcess('/usr/bin/node', ['-p', 'process.versions.node'], {});
    if (Number(systemNode.stdout.split('.')[0]) < 24) {
      assert.equal(old.code, 1);
      assert.equal(
        old.stderr.trim(),
        `ebb needs Node ≥ 24 (found ${systemNode.stdout.trim()}): run via npx ebb`,
      );
    }
  });

  it('ebb up from the installed package serves the console it ships (audit #5)', async () => {
    const page = await fetch(`http://127.0.0.1:${base + 1}/`);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<html/i);
    assert.match(up.output, /is up/);
  });

  it('the library type-checks from the package (dist/ declarations), as an application written in TypeScript sees it', async () => {
    writeFileSync(
      join(appDir, 'typed.ts'),
      [
        "import { createServer } from 'node:http';",
        "import { embed, type EmbeddedAgent, type EbbEvent } from 'ebb';",
        "import { PoolResolver } from 'ebb/client';", // the client connector (audit #5)
        'void PoolResolver;',
        "const agent: EmbeddedAgent = await embed({ config: 'pool.yaml', member: 'fe01', service: 'chat' });",
        'await agent.attach(createServer());',
        'const sessions: number = agent.stats().sessions;',
        "agent.on('drained', (event: EbbEvent) => console.log(sessions, agent.ready, event.code));",
        '',
      ].join('\n'),
    );
    const tsconfig = {
      compilerOptions: {
        target: 'ES2024',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        strict: true,
        noEmit: true,
        types: ['node'],
        typeRoots: [join(root, 'node_modules/@types')],
      },
      files: ['typed.ts'],
    };
    writeFileSync(join(appDir, 'tsconfig.json'), JSON.stringify(tsconfig));
    const tsc = await runProcess(join(root, 'node_modules/.bin/tsc'), ['-p', appDir], { cwd: appDir });
    assert.equal(tsc.code, 0, tsc.stdout + tsc.stderr);
  });

  it('npx ebb in the repository under the system Node prints no EBADENGINE noise (audit #26)', async (t) => {
    const systemPath = '/usr/bin:/bin';
    const npx = await runProcess('npx', ['ebb', '--version'], { cwd: root, env: { PATH: systemPath } }).catch(
      () => null,
    );
    if (!npx) return t.skip('no npx with the system PATH');
    assert.equal(npx.code, 0, npx.stderr);
    assert.doesNotMatch(npx.stderr, /EBADENGINE/);
    // From the installed package too: its bin finds the Node 24 the package brings.
    const installed = await runProcess('npx', ['ebb', '--version'], {
      cwd: appDir,
      env: { PATH: systemPath },
    });
    assert.equal(installed.code, 0, installed.stderr);
    assert.doesNotMatch(installed.stderr, /EBADENGINE/);
  });

  it('10 WebSockets live through ebb pause, new connections are refused, a deadline closes the rest with 1012; resume accepts; a restart while paused comes back paused', async () => {
    assert.deepEqual(await startApp(), { up: true, state: 'running', ready: true });
    await until((s) => s.state === 'running' && s.accepting, 'embedded agent up and running');
    const sockets = await Promise.all(Array.from({ length: 10 }, () => openSocket()));
    await until((s) => s.sessionsByKind.websockets === 10, '10 WebSockets counted');

    const paused = await ebb('pause', 'fe01', '--service', 'chat', '--force', '--reason', 'embed test');
    assert.equal(paused.code, 0, paused.stderr);
    assert.equal(await refused(), 'ECONNREFUSED');
    for (const socket of sockets) {
      socket.send('still here');
      const [data] = (await once(socket, 'message')) as [Buffer];
      assert.equal(data.toString(), 'still here');
    }
    const status = await ebb('status', '--json');
    assert.equal(status.code, 0, status.stderr);
    const member = (JSON.parse(status.stdout) as PoolStatus).members[0]!;
    assert.equal(member.agent, 'up');
    const view = member.services.find((s) => s.id === 'chat')!;
    assert.equal(view.state, 'paused');
    assert.equal(view.sessions, 10);
    assert.equal(view.sessionsByKind.websockets, 10);

    const codes = sockets.map((socket) => once(socket, 'close').then(([code]) => code as number));
    const deadline = await ebb('pause', 'fe01', '--service', 'chat', '--force', '--deadline', '300ms');
    assert.equal(deadline.code, 0, deadline.stderr);
    assert.deepEqual(await Promise.all(codes), Array(10).fill(1012));
    const drained = await until((s) => s.drained && s.sessions === 0, 'drained by the deadline');
    assert.equal(drained.forced, 10);
    await app!.waitForOutput(/"event":"drained"/);

    const resumed = await ebb('resume', 'fe01', '--service', 'chat');
    assert.equal(resumed.code, 0, resumed.stderr);
    await until((s) => s.state === 'running', 'resumed');
    const health = await fetch(`http://${address}:${base}/health`).catch(async (err: unknown) => {
      assert.fail(`${String(err)}\n${resumed.stdout}\n${JSON.stringify(await chat())}\n${app!.output}`);
    });
    assert.equal(await health.text(), 'ready');

    assert.equal((await ebb('pause', 'fe01', '--service', 'chat', '--force')).code, 0);
    await app!.stop();
    await until((s) => !s.accepting, 'agent gone');
    assert.deepEqual(await startApp(), { up: true, state: 'paused', ready: false });
    assert.equal(await refused(), 'ECONNREFUSED');
    assert.equal((await ebb('resume', 'fe01', '--service', 'chat')).code, 0);
    const again = await openSocket();
    again.close();
  });
});

/** The app under test: node:http + ws, its service's agent embedded. */
const appSource = `import { createServer } from 'node:http';
import { WebSocketServer } from 'ws';
import { embed } from 'ebb';

const agent = await embed({ config: process.argv[2], member: 'fe01', service: 'chat' });
const server = createServer((req, res) => {
  if (req.url === '/health') {
    res.writeHead(agent.ready ? 200 : 503).end(agent.ready ? 'ready' : 'not ready');
  } else res.end('chat');
});
const wss = new WebSocketServer({ server });
wss.on('connection', (socket) => socket.on('message', (data) => socket.send(data.toString())));
await agent.attach(server);
agent.attachWebSocketServer(wss);
for (const name of ['paused', 'drained', 'resumed', 'forced']) {
  agent.on(name, () => console.log(JSON.stringify({ event: name })));
}
console.log(JSON.stringify({ up: true, state: agent.state, ready: agent.ready }));
process.once('SIGTERM', () => agent.destroy().then(() => process.exit(0)));
`;
