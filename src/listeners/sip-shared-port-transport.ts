import type { SipPeer, SipTransportName } from '../sip/index.ts';
import type { SipTransport } from './sip-transport.ts';

/** Connection ids of the own transport start here; the shared one's below (the id says whose it is). */
export const OWN_FIRST_CONNECTION_ID = 2 ** 30;

/**
 * A SIP front end that shares its port with others of the same config (worker threads, a process
 * handing over; SPEC §13) and has a port of its own besides. The kernel spreads what reaches the shared
 * port over every socket bound to it by the packets' addresses, so a response, or a request inside a
 * dialog, may reach a sibling; the own port, written in the Via and Record-Route the front end adds, makes
 * responses (RFC 3261 §16.6 step 8, §18.2.2) and requests that follow the route set (§16.12) come back to
 * the one that forwarded the request.
 *
 * What it sends leaves from the own socket, except what answers a UDP message that came in on the shared
 * one (RFC 3581 §4); on TCP a message goes over the connection it names, whichever listening socket
 * accepted it. `stopShared()` gives the shared port up for good while the own port and every connection
 * stay, so a closing front end still serves its dialogs while new traffic goes to the others.
 */
export class SipSharedPortTransport implements SipTransport {
  readonly name: SipTransportName;
  readonly #shared: SipTransport;
  readonly #own: SipTransport;
  #sharing = false;
  #gaveUp = false;

  /** `shared` binds the configured port with `reusePort`; `own` port 0 with `OWN_FIRST_CONNECTION_ID`. */
  constructor(shared: SipTransport, own: SipTransport) {
    this.#shared = shared;
    this.#own = own;
    this.name = own.name;
  }

  /** The shared port: the one clients are configured with. */
  get port(): number {
    return this.#shared.port;
  }

  /** The port only this front end listens on. */
  get ownPort(): number {
    return this.#own.port;
  }

  get acceptErrors(): number {
    return this.#shared.acceptErrors + this.#own.acceptErrors;
  }

  async listen(): Promise<void> {
    await this.#shared.listen();
    try {
      await this.#own.listen();
    } catch (err) {
      await this.#shared.close();
      throw err;
    }
    this.#sharing = true;
  }

  send(to: SipPeer, data: Buffer, onFail?: (err: Error) => void): void {
    if (to.connection !== undefined) return this.#owner(to.connection).send(to, data, onFail);
    if (to.shared && this.#sharing) return this.#shared.send(to, data, onFail);
    this.#own.send(to, data, onFail);
  }

  /**
   * Flows are what clients opened to the port they are configured with (their registrations ride on
   * them, SPEC §14). A connection to the own port comes from a party following the route set of a
   * dialog (the callee's BYE, say): never a registration, so neither counted nor closed as a flow.
   */
  *flowIds(): Iterable<number> {
    yield* this.#shared.flowIds?.() ?? [];
  }

  get flows(): number {
    return this.#shared.flows ?? 0;
  }

  closeFlow(id: number): void {
    this.#owner(id).closeFlow?.(id);
  }

  /** Gives the shared port up (SPEC §13 hand-off); the own port and every connection stay. Idempotent. */
  async stopShared(): Promise<void> {
    this.#sharing = false;
    await this.#shared.stopListening?.();
    this.#gaveUp = true;
  }

  /** True once `stopShared()` is done: the kernel hands this front end nothing on the shared port. */
  get gaveUpSharedPort(): boolean {
    return this.#gaveUp;
  }

  async close(): Promise<void> {
    this.#sharing = false;
    await Promise.all([this.#shared.close(), this.#own.close()]);
  }

  #owner(connection: number): SipTransport {
    return connection >= OWN_FIRST_CONNECTION_ID ? this.#own : this.#shared;
  }
}
