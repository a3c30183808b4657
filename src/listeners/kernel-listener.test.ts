import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemberChain, type KernelCommands } from '../kernel/index.ts';
import { KernelListener } from './kernel-listener.ts';

/** A kernel with one chain and a socket table the test sets; records what was asked of it. */
class FakeKernel implements KernelCommands {
  rules: string[] = [];
  peers: string[] = [];
  destroyWorks = true;
  log: string[] = [];
  async nft(script: string): Promise<void> {
    this.log.push('nft');
    this.rules = [...script.matchAll(/comment "(ebb [^"]+)"/g)].map((m) => m[1]!);
  }
  async listChain(): Promise<string | null> {
    return this.rules.length === 0
      ? null
      : JSON.stringify({ nftables: this.rules.map((comment) => ({ rule: { chain: 'm_fe01', comment } })) });
  }
  async sockets(): Promise<string> {
    this.log.push('ss');
    return this.peers.map((p) => `ESTAB 0 0 10.0.0.1:5432 ${p}\n`).join('');
  }
  async destroySockets(): Promise<string> {
    if (!this.destroyWorks) return '';
    const out = this.peers.map((p) => `0 0 10.0.0.1:5432 ${p}\n`).join('');
    this.peers = [];
    return out;
  }
}

function listener(kernel: FakeKernel) {
  const chain = new MemberChain('p', 'fe01', kernel);
  const changes: boolean[] = [];
  const l = new KernelListener({
    pool: 'p',
    member: 'fe01',
    service: 'db',
    host: '10.0.0.1',
    port: 5432,
    commands: kernel,
    chain,
    onChange: (urgent) => changes.push(urgent),
    idlePollMs: 60_000,
    drainPollMs: 60_000,
    watchEvents: false,
  });
  return { l, changes };
}

describe('KernelListener against a fake kernel', () => {
  it('the rule follows the state: none while accepting, one while refusing; counts come from the socket table', async () => {
    const kernel = new FakeKernel();
    kernel.peers = ['10.0.0.9:40000', '10.0.0.9:40001'];
    const { l } = listener(kernel);
    assert.equal(l.description, 'tcp 10.0.0.1:5432 (mode kernel)');
    await l.open(false);
    assert.deepEqual(kernel.rules, []);
    assert.equal(l.stats().sessions, 2);
    assert.equal(l.stats().accepted, 2);
    kernel.peers = [];
    assert.equal(await l.endSessions(), 0); // it reads the table again: now idle
    assert.equal(l.stats().sessions, 0);
    kernel.peers = ['10.0.0.9:40002']; // opened since the last reading
    kernel.log = [];
    await l.refuse();
    assert.deepEqual(kernel.rules, ['ebb db 10.0.0.1 5432']);
    assert.deepEqual(kernel.log, ['nft', 'ss'], 'the rule first, then a fresh count');
    assert.equal(l.stats().sessions, 1, 'a pause never sees a drain that is not there');
    await l.accept();
    assert.deepEqual(kernel.rules, []);
    await l.detach();
  });

  it('endSessions destroys the connections and counts them as forced; destroying none is an error', async () => {
    const kernel = new FakeKernel();
    kernel.peers = ['10.0.0.9:40000'];
    const { l } = listener(kernel);
    await l.open(true);
    assert.equal(await l.endSessions(), 1);
    assert.equal(l.stats().forced, 1);
    assert.equal(l.stats().sessions, 0);
    kernel.peers = ['10.0.0.9:40001'];
    kernel.destroyWorks = false;
    await assert.rejects(l.endSessions(), /ss -K destroyed none of 1 connections/);
    await l.detach();
  });

  it('closed means stopped: the rule stays after close, and close on a never-opened listener sets it', async () => {
    const kernel = new FakeKernel();
    const { l } = listener(kernel);
    await l.close();
    assert.deepEqual(kernel.rules, ['ebb db 10.0.0.1 5432']);
    await l.open(false);
    assert.deepEqual(kernel.rules, []);
    await l.close();
    assert.deepEqual(kernel.rules, ['ebb db 10.0.0.1 5432']);
    await l.detach();
  });

  it('detach leaves the kernel as it is: a refusing listener keeps its rule, the sessions are not touched', async () => {
    const kernel = new FakeKernel();
    kernel.peers = ['10.0.0.9:40000'];
    const { l } = listener(kernel);
    await l.open(true);
    await l.detach();
    assert.deepEqual(kernel.rules, ['ebb db 10.0.0.1 5432']);
    assert.deepEqual(kernel.peers, ['10.0.0.9:40000']);
  });
});
