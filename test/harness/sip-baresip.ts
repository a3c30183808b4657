import { mkdirSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { ManagedProcess } from './managed-process.ts';

export interface BaresipEvent {
  type: string;
  param?: string;
  peeruri?: string;
  id?: string;
}

/**
 * A real SIP phone: Debian's baresip with a config directory of its own, a sine tone as microphone, a
 * WAV file as speaker, driven through its ctrl_tcp module (netstring JSON commands and events). Ended by
 * its PID.
 */
export class Baresip {
  readonly process: ManagedProcess;
  readonly events: BaresipEvent[] = [];
  #ctrl: Socket | undefined;
  #buffer = '';
  #waiters: Array<() => void> = [];

  private constructor(proc: ManagedProcess) {
    this.process = proc;
  }

  get child(): ManagedProcess['child'] {
    return this.process.child;
  }

  get output(): string {
    return this.process.output;
  }

  /** Starts baresip listening for SIP on 127.0.0.1:`sipPort` (UDP and TCP; it takes `sipPort`+1 for TLS too), controlled on `ctrlPort`. */
  static async start(
    dir: string,
    sipPort: number,
    ctrlPort: number,
    options: {
      /** The `accounts` line; default: no registration. */
      account?: string;
      /** More config lines (`dns_server …`). */
      config?: string[];
    } = {},
  ): Promise<Baresip> {
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      join(dir, 'config'),
      [
        'poll_method epoll',
        `sip_listen 127.0.0.1:${sipPort}`,
        `audio_player aufile,${join(dir, 'heard.wav')}`,
        'audio_source ausine,440',
        `audio_alert aufile,${join(dir, 'alert.wav')}`,
        'ausrc_srate 48000',
        'auplay_srate 48000',
        'ausrc_channels 2',
        'module_path /usr/lib/baresip/modules',
        'module g711.so',
        'module ausine.so',
        'module aufile.so',
        'module_app account.so',
        'module_app menu.so',
        'module_app ctrl_tcp.so',
        `ctrl_tcp_listen 127.0.0.1:${ctrlPort}`,
        ...(options.config ?? []),
        '',
      ].join('\n'),
    );
    // No registration: it calls front ends directly, as a phone given a server address would.
    writeFileSync(join(dir, 'accounts'), `${options.account ?? '<sip:alice@127.0.0.1>;regint=0'}\n`);
    const b = new Baresip(
      new ManagedProcess('baresip', 'baresip', ['-f', dir], { cwd: dir, maxOutput: 32_768 }),
    );
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (!b.process.running) throw new Error(`baresip exited (${b.child.exitCode}):\n${b.output}`);
      if (Date.now() > deadline) {
        await b.stop();
        throw new Error(`baresip did not start:\n${b.output}`);
      }
      if (b.output.includes('baresip is ready')) {
        try {
          await b.#connect(ctrlPort);
          return b;
        } catch {
          // not listening yet
        }
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Sends a ctrl_tcp command (`dial`, `hangup`, `quit`…). */
  command(command: string, params = ''): void {
    const json = JSON.stringify({ command, params, token: command });
    this.#ctrl!.write(`${Buffer.byteLength(json)}:${json},`);
  }

  /** Resolves with the first event of that type at or after index `from` (default: any so far). */
  async waitForEvent(type: string, timeoutMs = 5000, from = 0): Promise<BaresipEvent> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.events.slice(from).find((e) => e.type === type);
      if (found) return found;
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(
          `baresip: no ${type} within ${timeoutMs} ms; events ${JSON.stringify(this.events)}\n${this.output.slice(-2000)}`,
        );
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** SIGTERM by PID (SIGKILL after 3 s); resolves when it is gone. */
  async stop(): Promise<void> {
    this.#ctrl?.destroy();
    await this.process.stop('SIGTERM', 3000);
  }

  #connect(port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port });
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.removeAllListeners('error');
        socket.on('error', () => {});
        socket.on('data', (d: Buffer) => this.#onData(d.toString()));
        this.#ctrl = socket;
        resolve();
      });
    });
  }

  /** Netstrings: `<length>:<json>,`. */
  #onData(text: string): void {
    this.#buffer += text;
    for (;;) {
      const colon = this.#buffer.indexOf(':');
      if (colon === -1) return;
      const length = Number(this.#buffer.slice(0, colon));
      if (this.#buffer.length < colon + 1 + length + 1) return;
      const json = this.#buffer.slice(colon + 1, colon + 1 + length);
      this.#buffer = this.#buffer.slice(colon + 1 + length + 1);
      try {
        const msg = JSON.parse(json) as BaresipEvent & { event?: boolean };
        if (msg.event) this.events.push(msg);
      } catch {
        // not JSON: ignore
      }
      for (const w of this.#waiters.splice(0)) w();
    }
  }
}
