import type { WebSocket } from 'ws';

/** What the room sends its members, as JSON text frames. */
export type ChatEvent =
  | { type: 'welcome'; name: string; member: string; count: number }
  | { type: 'join' | 'leave'; name: string; count: number }
  | { type: 'message'; name: string; text: string; at: string };

const maxTextLength = 2000;

/** The broadcast chat room of `builtin:web`: one room per member, everything said goes to everyone in it. */
export class ChatRoom {
  readonly #member: string;
  readonly #people = new Map<WebSocket, string>();

  constructor(member: string) {
    this.#member = member;
  }

  get size(): number {
    return this.#people.size;
  }

  join(ws: WebSocket, name: string): void {
    this.#people.set(ws, name);
    this.#send(ws, { type: 'welcome', name, member: this.#member, count: this.#people.size });
    this.#broadcast({ type: 'join', name, count: this.#people.size }, ws);
    ws.on('message', (data, isBinary) => {
      if (isBinary) return;
      const text = data.toString().slice(0, maxTextLength);
      this.#broadcast({ type: 'message', name, text, at: new Date().toISOString() });
    });
    ws.once('close', () => {
      this.#people.delete(ws);
      this.#broadcast({ type: 'leave', name, count: this.#people.size });
    });
  }

  #broadcast(event: ChatEvent, except?: WebSocket): void {
    const text = JSON.stringify(event);
    for (const ws of this.#people.keys()) if (ws !== except) ws.send(text);
  }

  #send(ws: WebSocket, event: ChatEvent): void {
    ws.send(JSON.stringify(event));
  }
}
