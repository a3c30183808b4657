import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KernelPathError } from '../core/index.ts';
import { checkKernelPath, MemberChain, type KernelCommands, type PreflightProbe } from './index.ts';

/** A kernel of one chain: scripts are applied by reading back their `add rule … comment` lines. */
class FakeKernel implements KernelCommands {
  rules: string[] = [];
  scripts: string[] = [];
  failWrites = false;
  async nft(script: string): Promise<void> {
    if (this.failWrites) throw new Error('blocked');
    this.scripts.push(script);
    this.rules = [...script.matchAll(/comment "(ebb [^"]+)"/g)].map((m) => m[1]!);
  }
  async listChain(): Promise<string | null> {
    if (this.rules.length === 0) return null;
    return JSON.stringify({
      nftables: this.rules.map((comment) => ({
        rule: { chain: 'm_fe01', comment, expr: [{ counter: { packets: 2 } }] },
      })),
    });
  }
  async sockets(): Promise<string> {
    return '';
  }
  async destroySockets(): Promise<string> {
    return '';
  }
}

const rule = (port: number) => ({ service: `s${port}`, address: '10.0.0.1', port });
const noop = () => {};

describe('MemberChain: the chain holds exactly what the listeners ask', () => {
  it('keeps a rule found at boot until its listener says, then writes every change in one transaction', async () => {
    const kernel = new FakeKernel();
    kernel.rules = ['ebb s1 10.0.0.1 1', 'ebb gone 10.0.0.1 9'];
    const chain = new MemberChain('p', 'fe01', kernel);
    const one = chain.add(rule(1), noop);
    const two = chain.add(rule(2), noop);
    await chain.set(two, 'accept');
    // Rule 1 (paused before the restart) stays; rule 9 (no listener) goes; rule 2 was never there.
    assert.deepEqual(kernel.rules, ['ebb s1 10.0.0.1 1']);
    assert.equal(chain.refusing(one), true);
    await chain.set(one, 'accept');
    assert.deepEqual(kernel.rules, []);
    assert.match(kernel.scripts.at(-1)!, /delete chain inet ebb_p m_fe01/);
    chain.remove(one, noop);
    chain.remove(two, noop);
  });

  it('writes nothing when the chain already holds what is asked', async () => {
    const kernel = new FakeKernel();
    const chain = new MemberChain('p', 'fe01', kernel);
    const key = chain.add(rule(1), noop);
    await chain.set(key, 'accept');
    assert.equal(kernel.scripts.length, 0, 'no table made for nothing');
    await chain.set(key, 'refuse');
    await chain.set(key, 'refuse');
    assert.equal(kernel.scripts.length, 1);
    chain.remove(key, noop);
  });

  it('changes made while a write is under way go together in the next one', async () => {
    const kernel = new FakeKernel();
    const chain = new MemberChain('p', 'fe01', kernel);
    const keys = [1, 2, 3].map((p) => chain.add(rule(p), noop));
    await Promise.all(keys.map((k) => chain.set(k, 'refuse')));
    assert.ok(kernel.scripts.length <= 2, `${kernel.scripts.length} transactions`);
    assert.equal(kernel.rules.length, 3);
    for (const k of keys) chain.remove(k, noop);
  });

  it('a rule removed behind its back is a fault, put back by the check; a failed rewrite stays a fault', async () => {
    const kernel = new FakeKernel();
    const chain = new MemberChain('p', 'fe01', kernel);
    let told = 0;
    const watcher = () => void told++;
    const key = chain.add(rule(1), watcher);
    await chain.set(key, 'refuse');
    kernel.rules = [];
    await chain.check();
    assert.deepEqual(kernel.rules, ['ebb s1 10.0.0.1 1']);
    assert.equal(chain.fault, null);
    assert.ok(told > 0);
    kernel.rules = [];
    kernel.failWrites = true;
    await chain.check();
    assert.match(
      chain.fault!,
      /holds \[\] but the intents ask \[10\.0\.0\.1 1\]; rewriting it failed: blocked/,
    );
    kernel.failWrites = false;
    await chain.check();
    assert.equal(chain.fault, null);
    await chain.check(); // reads the rule's counter
    assert.equal(chain.refused(key), 2);
    chain.remove(key, watcher);
  });

  it('a listener that leaves keeps its rule as the kernel has it', async () => {
    const kernel = new FakeKernel();
    const chain = new MemberChain('p', 'fe01', kernel);
    const a = chain.add(rule(1), noop);
    const b = chain.add(rule(2), noop);
    await chain.set(a, 'refuse');
    chain.remove(a, noop);
    await chain.set(b, 'refuse');
    assert.deepEqual(kernel.rules, ['ebb s1 10.0.0.1 1', 'ebb s2 10.0.0.1 2']);
    chain.remove(b, noop);
  });
});

describe('checkKernelPath: refuses to start, naming the listener and what is missing', () => {
  const site = [{ member: 'fe01', service: 'db', address: '10.0.0.1', port: 5432 }];
  const probe = (over: Partial<PreflightProbe>): PreflightProbe => ({
    platform: 'linux',
    effectiveCaps: () => 1n << 12n,
    run: async () => ({ code: 0, stdout: '', stderr: '' }),
    ...over,
  });
  const missing = async (p: PreflightProbe) => {
    try {
      await checkKernelPath(site, p);
    } catch (err) {
      assert.ok(err instanceof KernelPathError);
      assert.equal(err.code, 'EBB_KERNEL_PATH_UNAVAILABLE');
      assert.equal(err.exitCode, 1);
      assert.match(err.message, /^fe01\/db tcp 10\.0\.0\.1:5432 \(mode kernel\): /);
      return err.missing;
    }
    return null;
  };

  it('passes with everything there, and with no kernel listener at all', async () => {
    assert.equal(await missing(probe({})), null);
    await checkKernelPath([], probe({ platform: 'darwin' }));
  });

  it('not Linux, no CAP_NET_ADMIN, no nft, nft not permitted, no ss', async () => {
    assert.equal(await missing(probe({ platform: 'darwin' })), 'linux');
    assert.equal(await missing(probe({ effectiveCaps: () => 0n })), 'CAP_NET_ADMIN');
    const enoent = Object.assign(new Error('spawn nft ENOENT'), { code: 'ENOENT' });
    assert.equal(await missing(probe({ run: async () => Promise.reject(enoent) })), 'nft');
    const eperm = async () => ({ code: 1, stdout: '', stderr: 'Error: Operation not permitted' });
    assert.equal(await missing(probe({ run: eperm })), 'CAP_NET_ADMIN');
    const noSs = async (command: string) =>
      command === 'ss' ? Promise.reject(enoent) : { code: 0, stdout: '', stderr: '' };
    assert.equal(await missing(probe({ run: noSs })), 'ss');
  });
});
