/** A minimal reader of Ebb's server-sent events (`GET /v1/events`): event and data lines, a blank line ends one. */
import { request, type IncomingMessage } from 'node:http';
import type { EbbEvent } from '../../src/core/index.ts';

export class EventStream {
  private readonly response: IncomingMessage;

  private constructor(response: IncomingMessage) {
    this.response = response;
  }

  static open(url: string, onEvent: (event: EbbEvent, receivedAt: number) => void): Promise<EventStream> {
    return new Promise((resolveStream, reject) => {
      const req = request(url, { headers: { accept: 'text/event-stream' } }, (res) => {
        if (res.statusCode !== 200) {
          reject(new Error(`GET ${url}: HTTP ${res.statusCode}`));
          res.resume();
          return;
        }
        const stream = new EventStream(res);
        let buffer = '';
        let hello = false;
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          const receivedAt = performance.now();
          buffer += chunk;
          for (let end = buffer.indexOf('\n\n'); end !== -1; end = buffer.indexOf('\n\n')) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            let name = 'message';
            const data: string[] = [];
            for (const line of block.split('\n')) {
              if (line.startsWith('event:')) name = line.slice(6).trim();
              else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
            }
            if (name === 'hello') {
              if (!hello) resolveStream(stream);
              hello = true;
              continue;
            }
            try {
              onEvent(JSON.parse(data.join('\n')) as EbbEvent, receivedAt);
            } catch {
              // Not JSON: not an Ebb event; ignore.
            }
          }
        });
      });
      req.on('error', reject);
      req.end();
    });
  }

  close(): void {
    this.response.destroy();
  }
}
