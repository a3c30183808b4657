import { spawn, type ChildProcess } from 'node:child_process';

/**
 * One long-lived `bash` that runs the kernel path's commands for Ebb, so that each `nft` or `ss` is
 * forked from a 4 MB shell instead of from Ebb's process: a fork costs in proportion to the parent's
 * memory (measured here: ~5 ms from a 50 MB Node process, ~20 ms from 380 MB; `ebb up` is ~130 MB),
 * and it holds Ebb's event loop meanwhile — most of a pause's latency otherwise.
 *
 * The shell knows four fixed requests, each a line `<id> <op> <a> <b>` whose arguments the caller has
 * checked (addresses, ports, table and chain names: no shell text is ever built from input): `nft`
 * (the script follows, ended by a line `.EBB-END`), `list` (nft -j list chain inet a b), `ss` and
 * `kill` (the sessions of address:port a, listed or destroyed). Each answer is a header
 * `@@EBB <id> <exit code> <bytes>` and that many bytes of output (stdout and stderr together).
 */
const script = [
  "while IFS=' ' read -r id op a b; do",
  '  case "$op" in',
  '    nft)',
  "      body=''",
  '      while IFS= read -r line && [ "$line" != \'.EBB-END\' ]; do body+="$line"$\'\\n\'; done',
  '      out=$(printf \'%s\' "$body" | nft -f - 2>&1); rc=$? ;;',
  '    list) out=$(nft -j list chain inet "$a" "$b" 2>&1); rc=$? ;;',
  '    ss) out=$(ss -H -t -n state established state close-wait src "$a" 2>&1); rc=$? ;;',
  '    kill) out=$(ss -K -H -t -n state established state close-wait src "$a" 2>&1); rc=$? ;;',
  "    *) out='unknown request'; rc=2 ;;",
  '  esac',
  '  printf \'@@EBB %s %s %s\\n%s\\n\' "$id" "$rc" "${#out}" "$out"',
  'done',
].join('\n');

export type ShellOp = 'nft' | 'list' | 'ss' | 'kill';

export interface ShellAnswer {
  code: number;
  output: string;
}

interface Pending {
  id: number;
  done: (answer: ShellAnswer | Error) => void;
}

export class ShellHelper {
  readonly #maxBytes: number;
  #child: ChildProcess | null = null;
  #nextId = 1;
  #queue: Pending[] = [];
  #buffer: Buffer = Buffer.alloc(0);
  /** The header of the answer being read, once it has come. */
  #header: { id: number; code: number; bytes: number } | null = null;

  constructor(maxBytes: number) {
    this.#maxBytes = maxBytes;
  }

  /** Runs one request; rejects when the shell cannot be started, dies, or does not answer in time. */
  run(op: ShellOp, a = '', b = '', input = '', timeoutMs = 10_000): Promise<ShellAnswer> {
    const child = this.#start();
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.#fail(new Error(`${op}: no answer in ${timeoutMs} ms`)), timeoutMs);
      this.#queue.push({
        id,
        done: (answer) => {
          clearTimeout(timer);
          if (this.#queue.length === 0) (child.stdout as unknown as { unref?: () => void }).unref?.();
          if (answer instanceof Error) reject(answer);
          else resolve(answer);
        },
      });
      // While a request is out, the shell's output keeps Ebb's process alive.
      (child.stdout as unknown as { ref?: () => void }).ref?.();
      const body = op === 'nft' ? `${input.endsWith('\n') ? input : `${input}\n`}.EBB-END\n` : '';
      child.stdin!.write(`${id} ${op} ${a || '-'} ${b || '-'}\n${body}`);
    });
  }

  #start(): ChildProcess {
    if (this.#child) return this.#child;
    const child = spawn('bash', ['-c', script], {
      stdio: ['pipe', 'pipe', 'ignore'],
      env: { ...process.env, LC_ALL: 'C' }, // ${#out} counts bytes
    });
    this.#child = child;
    this.#buffer = Buffer.alloc(0);
    this.#header = null;
    child.unref();
    (child.stdout as unknown as { unref?: () => void }).unref?.();
    child.stdin!.on('error', () => {});
    child.stdout!.on('data', (chunk: Buffer) => this.#read(chunk));
    const gone = (why: string) => () => {
      if (this.#child === child) this.#fail(new Error(`the command shell ${why}`));
    };
    child.once('error', (err) => gone(`could not start: ${err.message}`)());
    child.once('exit', gone('exited'));
    return child;
  }

  #read(chunk: Buffer): void {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    for (;;) {
      if (!this.#header) {
        const end = this.#buffer.indexOf(10);
        if (end === -1) {
          if (this.#buffer.length > 200) this.#fail(new Error('the command shell answered garbage'));
          return;
        }
        const match = /^@@EBB (\d+) (\d+) (\d+)$/.exec(this.#buffer.subarray(0, end).toString());
        if (!match) return this.#fail(new Error('the command shell answered garbage'));
        const bytes = Number(match[3]);
        if (bytes > this.#maxBytes) return this.#fail(new Error(`output over ${this.#maxBytes} bytes`));
        this.#header = { id: Number(match[1]), code: Number(match[2]), bytes };
        this.#buffer = this.#buffer.subarray(end + 1);
      }
      const { id, code, bytes } = this.#header;
      if (this.#buffer.length < bytes + 1) return;
      const output = this.#buffer.subarray(0, bytes).toString();
      this.#buffer = this.#buffer.subarray(bytes + 1);
      this.#header = null;
      const next = this.#queue.shift();
      if (!next || next.id !== id) return this.#fail(new Error('the command shell answered out of turn'));
      next.done({ code, output });
    }
  }

  /** Ends the shell (by its handle) and fails what is pending; the next request starts a new one. */
  #fail(err: Error): void {
    const child = this.#child;
    this.#child = null;
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    for (const pending of this.#queue.splice(0)) pending.done(err);
  }
}
