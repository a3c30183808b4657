import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { createServer, connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import pino from 'pino';
import { emptyStats, type ListenerStats } from '../listeners/index.ts';
import { SuccessorMessage } from './handoff-messages.ts';
import { HandoffServer, type HandingOver } from './handoff-server.ts';
import { handoffSocketPath } from './handoff-socket-path.ts';
import { HandoffProtocolError, LineChannel, maxLineBytes } from './line-channel.ts';
import { HandoffError, Predecessor } from './predecessor.ts';

const logger = pino({ level: 'silent' });
const dirs: string[] = [];
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'ebb-handoff-unit-'));
  dirs.push(dir);
  return dir;
};
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** A connected pair of stream sockets over a unix socket: the channel under test reads `server`. */
async function socketPair(): Promise<{ client: Socket; server: Socket; close: () => void }> {
  const path = join(tempDir(), 'pair.sock');
  const listening = createServer();
  const accepted = new Promise<Socket>((resolve) => listening.once('connection', resolve));
  await new Promise<void>((resolve) => listening.listen(path, resolve));
  const client = connect(path);
  const server = await accepted;
  listening.close();
  return { client, server, close: () => (client.destroy(), server.destroy()) };
}

describe('LineChannel: one checked message per line', () => {
  it('delivers messages split across chunks and several in one chunk', async () => {
    const { client, server, close } = await socketPair();
    const channel = new LineChannel(server, SuccessorMessage);
    const got: SuccessorMessage[] = [];
    channel.onMessage((m) => got.push(m));
    const a = JSON.stringify({ type: 'hello', pid: 7, version: '1' });
    const b = JSON.stringify({ type: 'yield', timeoutMs: 1000 });
    client.write(a.slice(0, 5));
    await new Promise((r) => setTimeout(r, 20));
    client.write(`${a.slice(5)}\n${b}\n`);
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(got, [JSON.parse(a), JSON.parse(b)]);
    close();
  });

  for (const [what, line, why] of [
    ['not JSON', '{nope\n', /not JSON/],
    ['an unknown message', '{"type":"format-disk"}\n', /unknown message/],
    ['a field out of range', '{"type":"yield","timeoutMs":-1}\n', /unknown message \(timeoutMs/],
  ] as const) {
    it(`closes the connection on ${what}, naming it, and delivers nothing`, async () => {
      const { client, server } = await socketPair();
      const channel = new LineChannel(server, SuccessorMessage);
      let delivered = 0;
      channel.onMessage(() => delivered++);
      client.write(line);
      const err = await channel.closed;
      assert.ok(err instanceof HandoffProtocolError, String(err));
      assert.match(err.message, why);
      assert.equal(err.code, 'EBB_HANDOFF_PROTOCOL');
      assert.equal(delivered, 0);
      client.destroy();
    });
  }

  it('a line over the size limit closes the connection before it is all buffered', async () => {
    const { client, server } = await socketPair();
    const channel = new LineChannel(server, SuccessorMessage);
    const chunk = Buffer.alloc(256 * 1024, 0x61);
    client.on('error', () => {});
    for (let sent = 0; sent <= maxLineBytes + chunk.length && !client.destroyed; sent += chunk.length) {
      client.write(chunk);
    }
    const err = await channel.closed;
    assert.ok(err instanceof HandoffProtocolError);
    assert.match(err.message, /longer than/);
    client.destroy();
  });

  it('fuzz: whatever bytes arrive, nothing throws; only valid messages are delivered', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 8 }), async (chunks) => {
        const { client, server, close } = await socketPair();
        const channel = new LineChannel(server, SuccessorMessage);
        channel.onMessage((m) => assert.ok(SuccessorMessage.safeParse(m).success));
        client.on('error', () => {});
        for (const c of chunks) client.write(c);
        await new Promise((r) => setTimeout(r, 5));
        close();
        await channel.closed;
      }),
      { numRuns: 60 },
    );
  });
});

/** The running process's side, with its parts recorded instead of real agents. */
class FakeParts implements HandingOver {
  readonly members = ['m1'];
  readonly calls: string[] = [];
  stats: ListenerStats = {
    ...emptyStats(),
    sessions: 3,
    byKind: { connections: 3 },
    accepted: 40,
    forced: 1,
  };
  #changed: Array<() => void> = [];
  holdConfirmations(): void {
    this.calls.push('hold');
  }
  resumeConfirmations(): void {
    this.calls.push('resume');
  }
  async stopAccepting(deadlineMs: number): Promise<void> {
    this.calls.push(`stopAccepting ${deadlineMs}`);
  }
  services() {
    return [{ member: 'm1', service: 'echo', stats: this.stats }];
  }
  ownSessions(): number {
    return this.stats.sessions;
  }
  onChange(changed: () => void): void {
    this.#changed.push(changed);
  }
  set(sessions: number, forcedMore = 0): void {
    this.stats = {
      ...this.stats,
      sessions,
      byKind: { connections: sessions },
      forced: this.stats.forced + forcedMore,
    };
    this.#changed.forEach((c) => c());
  }
  async endSessions(member: string, service: string): Promise<number> {
    this.calls.push(`endSessions ${member}/${service}`);
    const n = this.stats.sessions;
    this.set(0, n);
    return n;
  }
  async endAll(): Promise<number> {
    this.calls.push('endAll');
    return this.endSessions('m1', 'echo');
  }
  applyNote(): void {
    this.calls.push('note');
  }
}

async function handoffPair(parts: FakeParts) {
  const path = join(tempDir(), 'h.sock');
  const finished: Array<{ ended: number; forced: number }> = [];
  const yielded: number[] = [];
  const server = await HandoffServer.listen(
    path,
    parts,
    {
      yielded: (_pid, sessions) => yielded.push(sessions),
      finished: (r) => finished.push(r),
      adopted: (channel) => channel.close(),
    },
    logger,
  );
  return { path, server, finished, yielded };
}

describe('HandoffServer and Predecessor over a real control socket', () => {
  it('no process at the path: no predecessor', async () => {
    assert.equal(await Predecessor.find(join(tempDir(), 'none.sock'), logger), null);
  });

  it('hello holds confirmations; yield stops accepting and reports sessions; counters start at the yield', async () => {
    const parts = new FakeParts();
    const { path, server, finished, yielded } = await handoffPair(parts);
    const predecessor = (await Predecessor.find(path, logger))!;
    assert.equal(predecessor.pid, process.pid);
    assert.deepEqual(predecessor.members, ['m1']);
    assert.deepEqual(parts.calls, ['hold']);
    assert.equal(predecessor.stats('m1', 'echo').sessions, 0, 'nothing counted here before the yield');

    assert.equal(await predecessor.yield(5000), 3);
    assert.deepEqual(parts.calls, ['hold', 'stopAccepting 5000']);
    assert.deepEqual(yielded, [3]);
    const stats = predecessor.stats('m1', 'echo');
    assert.equal(stats.sessions, 3);
    assert.equal(stats.accepted, 0, 'what it accepted before the hand-off is its own history');
    assert.equal(stats.forced, 0);

    let told = 0;
    predecessor.onChange(() => told++);
    parts.set(1);
    await new Promise((r) => setTimeout(r, 120));
    assert.equal(predecessor.stats('m1', 'echo').sessions, 1);
    assert.ok(told > 0);

    predecessor.note({
      member: 'm1',
      service: 'echo',
      listener: 0,
      note: { kind: 'sip-dialog', callId: 'c1', fromTag: 'a', toTag: 'b', cseq: 2, event: 'ended' },
    });
    assert.equal(await predecessor.endSessions('m1', 'echo'), 1);
    assert.ok(parts.calls.includes('note'), 'the note reached the running process');
    const result = await predecessor.finished;
    assert.deepEqual(result, { ended: 2, forced: 1 });
    assert.deepEqual(finished, [{ ended: 2, forced: 1 }]);
    assert.equal(predecessor.stats('m1', 'echo').sessions, 0);
    server.close();
  });

  it('the successor going away before the yield: confirmations resume; a later successor may try again', async () => {
    const parts = new FakeParts();
    const { path, server } = await handoffPair(parts);
    const first = (await Predecessor.find(path, logger))!;
    first.abandon();
    await first.finished;
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(parts.calls, ['hold', 'resume']);
    const second = (await Predecessor.find(path, logger))!;
    assert.equal(second.pid, process.pid);
    second.abandon();
    server.close();
  });

  it('one successor at a time: a second is refused with a reason', async () => {
    const parts = new FakeParts();
    const { path, server } = await handoffPair(parts);
    const first = (await Predecessor.find(path, logger))!;
    await assert.rejects(Predecessor.find(path, logger), (err: unknown) => {
      assert.ok(err instanceof HandoffError);
      assert.match(err.message, /refused the hand-off: another hand-off is under way/);
      return true;
    });
    first.abandon();
    server.close();
  });

  it('the deadline ends what is left, counted as forced', async () => {
    const parts = new FakeParts();
    const { path, server } = await handoffPair(parts);
    const predecessor = (await Predecessor.find(path, logger))!;
    await predecessor.yield(100);
    assert.deepEqual(await predecessor.finished, { ended: 0, forced: 3 });
    assert.ok(parts.calls.includes('endAll'));
    server.close();
  });
});

describe('handoffSocketPath', () => {
  it('is in a directory only its user may enter, the same for the same pool and scope', () => {
    const dir = tempDir();
    const a = handoffSocketPath(dir, 'web', 'up');
    assert.equal(a, handoffSocketPath(dir, 'web', 'up'));
    assert.notEqual(a, handoffSocketPath(dir, 'web', 'agent m1'));
    assert.notEqual(a, handoffSocketPath(dir, 'other', 'up'));
    assert.equal(statSync(join(dir, 'handoff')).mode & 0o777, 0o700);
  });

  it('a localState too deep for a socket path falls back to a per-user temp directory', () => {
    const deep = join(tempDir(), 'x'.repeat(120));
    const path = handoffSocketPath(deep, 'web', 'up');
    assert.ok(path.length <= 107, path);
    assert.ok(path.startsWith(tmpdir()));
  });
});
