import { KernelRuleError } from '../core/index.ts';
import type { KernelCommands } from './kernel-commands.ts';
import {
  chainName,
  chainScript,
  parseChainListing,
  ruleKey,
  tableName,
  type RefusalRule,
} from './nft-script.ts';

/**
 * What a kernel listener asks of its rule: `refuse` (a rule rejects new connections), `accept` (no
 * rule), or `keep` — not told yet (the agent is booting): the rule stays as the kernel has it, so a
 * paused service stays paused through an agent restart and a running one never gains a rule.
 */
export type RuleWant = 'refuse' | 'accept' | 'keep';

/** How often the kernel's chain is read back and compared with what the listeners ask. */
const checkEveryMs = 2000;

interface Entry {
  rule: RefusalRule;
  want: RuleWant;
  /** The listener that has it; null once that one left (its rule then stays as the kernel has it). */
  owner: object | null;
}

/**
 * The rules of one member of one pool: the chain `m_<member>` of table `ebb_<pool>`. Every change
 * rewrites the whole chain in one atomic `nft -f` transaction, so the chain always holds exactly what
 * the listeners ask; changes that arrive while one is being written go together in the next. Every
 * `checkEveryMs` the chain is read back: a difference (another program flushed the ruleset) is a
 * `fault` until the chain is rewritten, which is tried at once.
 */
export class MemberChain {
  readonly pool: string;
  readonly member: string;
  readonly #commands: KernelCommands;
  readonly #entries = new Map<string, Entry>();
  /** Keys of the rules the kernel holds as far as we know; null until first read. */
  #inKernel: Set<string> | null = null;
  /** The rules' counters as last read, by key, and what earlier incarnations of each rule had counted. */
  #refusedNow = new Map<string, number>();
  readonly #refusedBefore = new Map<string, number>();
  #writing: Promise<void> | null = null;
  /** Writes begun, so a check knows whether one ran during its read. */
  #writes = 0;
  #next: Promise<void> | null = null;
  #fault: string | null = null;
  #timer: NodeJS.Timeout | null = null;
  readonly #watchers = new Set<(urgent: boolean) => void>();

  constructor(pool: string, member: string, commands: KernelCommands) {
    this.pool = pool;
    this.member = member;
    this.#commands = commands;
  }

  get table(): string {
    return tableName(this.pool);
  }

  get chain(): string {
    return chainName(this.member);
  }

  /** What is wrong between the kernel and the listeners' wishes, or null. */
  get fault(): string | null {
    return this.#fault;
  }

  /** Takes a listener's rule in, as `keep` until it says; returns its key. */
  add(rule: RefusalRule, onChange: (urgent: boolean) => void): string {
    const key = ruleKey(rule.address, rule.port);
    if (this.#entries.get(key)?.owner) {
      throw new KernelRuleError(`tcp ${rule.address}:${rule.port} (mode kernel) is configured twice`);
    }
    this.#entries.set(key, { rule, want: 'keep', owner: onChange });
    this.#watchers.add(onChange);
    this.#timer ??= setInterval(() => void this.check().catch(() => {}), checkEveryMs).unref();
    return key;
  }

  /** A listener leaves (the agent stops): its rule stays as it is now, and the checks end with the last. */
  remove(key: string, onChange: (urgent: boolean) => void): void {
    const entry = this.#entries.get(key);
    if (entry?.owner === onChange) {
      entry.owner = null;
      entry.want = 'keep';
    }
    this.#watchers.delete(onChange);
    if (this.#watchers.size === 0 && this.#timer) {
      clearInterval(this.#timer);
      this.#timer = null;
    }
  }

  /** Whether the kernel holds the rule of `key` (as last written or read). */
  refusing(key: string): boolean {
    return this.#inKernel?.has(key) ?? false;
  }

  /**
   * Connections the rule of `key` has rejected over this process's life, as last read (every
   * `checkEveryMs`). Every write of the chain restarts its counters; what they had is carried over, so
   * only rejections between the last read and a write are missed.
   */
  refused(key: string): number {
    return (this.#refusedBefore.get(key) ?? 0) + (this.#refusedNow.get(key) ?? 0);
  }

  /** Sets what `key` asks and resolves once the kernel's chain holds it. */
  async set(key: string, want: RuleWant): Promise<void> {
    const entry = this.#entries.get(key);
    if (!entry) throw new KernelRuleError(`no kernel rule ${key} in ${this.table} ${this.chain}`);
    entry.want = want;
    await this.#write();
  }

  /** Reads the chain back; a difference is a fault, and the chain is rewritten. */
  async check(): Promise<void> {
    if (this.#writing) return;
    const writes = this.#writes;
    let found: Set<string>;
    try {
      found = await this.#read();
    } catch (err) {
      this.#setFault(`cannot read ${this.#where()}: ${(err as Error).message}`);
      return;
    }
    if (this.#writing || writes !== this.#writes) return; // read while writing: compare next time
    const wanted = this.#wantedKeys(found);
    const same = found.size === wanted.size && [...found].every((k) => wanted.has(k));
    if (same) {
      this.#inKernel = found;
      if (this.#fault !== null) this.#setFault(null);
      return;
    }
    const drift = `${this.#where()} holds [${[...found].join(', ')}] but the intents ask [${[...wanted].join(', ')}]`;
    this.#setFault(drift);
    this.#inKernel = found;
    await this.#write().catch((err: unknown) =>
      this.#setFault(`${drift}; rewriting it failed: ${(err as Error).message}`),
    );
  }

  /** The keys whose rule the chain must hold, given what it holds now (`keep` keeps what is there). */
  #wantedKeys(found: ReadonlySet<string>): Set<string> {
    const keys = new Set<string>();
    for (const [key, e] of this.#entries) {
      if (e.want === 'refuse' || (e.want === 'keep' && found.has(key))) keys.add(key);
    }
    return keys;
  }

  /** Coalesces: one write in flight, and one more that takes every change made meanwhile. */
  #write(): Promise<void> {
    if (!this.#writing) {
      this.#writing = this.#writeNow().finally(() => (this.#writing = null));
      return this.#writing;
    }
    this.#next ??= this.#writing
      .catch(() => {})
      .then(() => {
        this.#next = null;
        return this.#write();
      });
    return this.#next;
  }

  async #writeNow(): Promise<void> {
    this.#writes++;
    this.#inKernel ??= await this.#read();
    const found = this.#inKernel;
    const keys = this.#wantedKeys(found);
    const rules = [...keys].map((key) => this.#entries.get(key)!.rule);
    // The chain holds it already: no transaction (its counters go on, no table is made for nothing).
    if (keys.size === found.size && [...keys].every((k) => found.has(k))) return;
    try {
      await this.#commands.nft(chainScript(this.pool, this.member, rules));
    } catch (err) {
      // One transaction: it failed whole, so the kernel holds what it held before.
      this.#setFault(`cannot write ${this.#where()}: ${(err as Error).message}`);
      throw err;
    }
    this.#inKernel = keys;
    for (const key of this.#refusedNow.keys()) this.#refusedBefore.set(key, this.refused(key));
    this.#refusedNow.clear();
    if (this.#fault !== null) this.#setFault(null);
  }

  async #read(): Promise<Set<string>> {
    const json = await this.#commands.listChain(this.table, this.chain);
    if (json === null) return new Set();
    const listing = parseChainListing(json, this.chain);
    let counted = false;
    for (const [key, n] of listing.refused) {
      counted ||= n !== (this.#refusedNow.get(key) ?? 0);
      // A counter lower than last read belongs to a rule written since (by us, or by someone else).
      if (n < (this.#refusedNow.get(key) ?? 0)) this.#refusedBefore.set(key, this.refused(key));
      this.#refusedNow.set(key, n);
    }
    if (counted) for (const listener of this.#watchers) listener(false);
    return listing.keys;
  }

  #where(): string {
    return `nftables table inet ${this.table} chain ${this.chain}`;
  }

  #setFault(fault: string | null): void {
    if (this.#fault === fault) return;
    this.#fault = fault;
    for (const listener of this.#watchers) listener(true);
  }
}

/** One chain per pool and member in this process: the kernel listeners of a member share it. */
const chains = new Map<string, MemberChain>();

export function memberChain(pool: string, member: string, commands: KernelCommands): MemberChain {
  const id = `${pool}\n${member}`;
  let chain = chains.get(id);
  if (!chain) {
    chain = new MemberChain(pool, member, commands);
    chains.set(id, chain);
  }
  return chain;
}
