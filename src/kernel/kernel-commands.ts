import { spawn } from 'node:child_process';
import { isIP } from 'node:net';
import { KernelRuleError } from '../core/index.ts';
import { ShellHelper, type ShellOp } from './shell-helper.ts';
import { maxListingBytes } from './nft-script.ts';
import { maxSocketOutputBytes, ssArgs } from './socket-table.ts';

/**
 * The commands the kernel data path runs, behind an interface so unit tests can use a fake. Each one is
 * a process of its own, bounded in time and output, run in the agent's network namespace.
 */
export interface KernelCommands {
  /** Applies one nftables script as one atomic transaction (`nft -f -`); resolves once it is in the kernel. */
  nft(script: string): Promise<void>;
  /** `nft -j list chain inet <table> <chain>`; null when the table or chain does not exist. */
  listChain(table: string, chain: string): Promise<string | null>;
  /** `ss` output listing the sessions of address:port. */
  sockets(address: string, port: number): Promise<string>;
  /** `ss -K`: destroys them (SOCK_DESTROY); its output lists those it destroyed. */
  destroySockets(address: string, port: number): Promise<string>;
}

const commandTimeoutMs = 10_000;

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a program to completion with `input` on its stdin; rejects on a spawn error, a timeout or too much output. */
export function runCommand(
  command: string,
  args: string[],
  options: { input?: string; maxBytes?: number; timeoutMs?: number } = {},
): Promise<CommandResult> {
  const maxBytes = options.maxBytes ?? 1 << 20;
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let bytes = 0;
    let failed: Error | null = null;
    const fail = (e: Error) => {
      failed ??= e;
      child.kill('SIGKILL');
    };
    const keep = (into: Buffer[]) => (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes > maxBytes) fail(new Error(`${command}: output over ${maxBytes} bytes`));
      else into.push(chunk);
    };
    child.stdout.on('data', keep(out));
    child.stderr.on('data', keep(err));
    const timer = setTimeout(
      () => fail(new Error(`${command}: no answer in ${commandTimeoutMs} ms`)),
      options.timeoutMs ?? commandTimeoutMs,
    );
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      if (failed) return reject(failed);
      resolve({
        code: code ?? -1,
        stdout: Buffer.concat(out).toString(),
        stderr: Buffer.concat(err).toString(),
      });
    });
    child.stdin.on('error', () => {}); // a program that exits before reading its input
    child.stdin.end(options.input ?? '');
  });
}

function firstLine(text: string): string {
  return text.trim().split('\n')[0]?.slice(0, 300) ?? '';
}

/** Through the shell helper while it can be started; from Ebb's own process otherwise. */
const shell = new ShellHelper(maxSocketOutputBytes);
let shellStarts = true;

async function run(
  op: ShellOp,
  args: { a?: string; b?: string; input?: string },
  direct: () => Promise<CommandResult>,
): Promise<CommandResult> {
  if (shellStarts) {
    try {
      const r = await shell.run(op, args.a, args.b, args.input);
      return { code: r.code, stdout: r.output, stderr: r.output };
    } catch (err) {
      if (!/could not start/.test((err as Error).message)) throw err;
      shellStarts = false;
    }
  }
  return direct();
}

const name = /^[a-z0-9_]{1,250}$/;

/** The real commands: `nft` and `ss` from the PATH. */
export const systemCommands: KernelCommands = {
  async nft(script) {
    const r = await run('nft', { input: script }, () =>
      runCommand('nft', ['-f', '-'], { input: script }),
    ).catch((err: unknown) => {
      throw new KernelRuleError(`nft: ${(err as Error).message}`, err);
    });
    if (r.code !== 0) throw new KernelRuleError(`nft -f failed: ${firstLine(r.stderr) || `exit ${r.code}`}`);
  },
  async listChain(table, chain) {
    if (!name.test(table) || !name.test(chain))
      throw new KernelRuleError(`bad table or chain: ${table} ${chain}`);
    const r = await run('list', { a: table, b: chain }, () =>
      runCommand('nft', ['-j', 'list', 'chain', 'inet', table, chain], { maxBytes: maxListingBytes }),
    ).catch((err: unknown) => {
      throw new KernelRuleError(`nft: ${(err as Error).message}`, err);
    });
    if (r.code === 0) return r.stdout;
    if (/No such file or directory/.test(r.stderr)) return null;
    throw new KernelRuleError(`nft list chain failed: ${firstLine(r.stderr) || `exit ${r.code}`}`);
  },
  sockets: (address, port) => ss('ss', address, port),
  destroySockets: (address, port) => ss('kill', address, port),
};

async function ss(op: 'ss' | 'kill', address: string, port: number): Promise<string> {
  if (isIP(address) === 0 || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new KernelRuleError(`bad address or port: ${address} ${port}`);
  }
  const args = ssArgs(address, port, op === 'kill');
  const r = await run('ss' === op ? 'ss' : 'kill', { a: args.at(-1)! }, () =>
    runCommand('ss', args, { maxBytes: maxSocketOutputBytes }),
  ).catch((err: unknown) => {
    throw new KernelRuleError(`ss: ${(err as Error).message}`, err);
  });
  if (r.code !== 0) throw new KernelRuleError(`ss failed: ${firstLine(r.stderr) || `exit ${r.code}`}`);
  return r.stdout;
}
