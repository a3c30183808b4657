import type { PoolView } from '../core/index.ts';
import { viewFingerprint } from './zone-serial.ts';

/** One cached answer: its encodings (the answer RRset in each rotation), and what it counts as. */
export interface CachedAnswer {
  readonly encodings: readonly Buffer[];
  next: number;
  readonly rcode: string | undefined;
  readonly truncated: boolean;
}

/** Queries longer than this are answered but never cached (a key is the whole query). */
const MAX_KEY_BYTES = 512;
/** At most this many answers are kept; a full cache starts over (random-case floods stay bounded). */
const DEFAULT_MAX_ENTRIES = 4096;
/** Rotations kept of an answer RRset with more records than this: the first ones. */
export const MAX_ROTATIONS = 16;

/**
 * Answers already encoded, by query, for as long as the pool's answers stay the same (issue 12: the
 * single-thread DNS path). A query's bytes after its ID are the key — question name with the case it
 * was sent in (RFC 4343: the answer echoes it), type, class, RD/CD, and the EDNS record, which decide
 * the size limit and truncation — so the cached bytes are exactly what encoding would give again, but
 * for the ID, which `answer()` patches in a copy.
 *
 * Where the zone shuffles an RRset to spread load, the cache keeps every rotation of it and hands them
 * out in turn (round robin, as BIND's cyclic rrset-order), so each member comes first equally often.
 *
 * Validity: the answers depend only on what `viewFingerprint` covers; when the view object changes
 * (which it does on every status write) the fingerprint is compared, and only a real change empties the
 * cache. The SOA serial changes with the fingerprint too, so no stale serial is served.
 */
export class AnswerCache {
  readonly #entries = new Map<string, CachedAnswer>();
  readonly #maxEntries: number;
  #view: PoolView | null = null;
  #fingerprint: string | null = null;
  hits = 0;
  misses = 0;

  constructor(maxEntries = DEFAULT_MAX_ENTRIES) {
    this.#maxEntries = maxEntries;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** Call with the view a query is answered from, before `get`/`set`. */
  use(view: PoolView): void {
    if (view === this.#view) return;
    this.#view = view;
    const fingerprint = viewFingerprint(view);
    if (fingerprint !== this.#fingerprint) {
      this.#fingerprint = fingerprint;
      this.#entries.clear();
    }
  }

  /** The cache key of a query, or null when it is not to be cached. */
  static keyOf(msg: Buffer, transport: 'udp' | 'tcp'): string | null {
    if (msg.length > MAX_KEY_BYTES) return null;
    return (transport === 'udp' ? 'u' : 't') + msg.toString('latin1', 2);
  }

  get(key: string): CachedAnswer | undefined {
    const entry = this.#entries.get(key);
    if (entry) this.hits++;
    else this.misses++;
    return entry;
  }

  set(key: string, entry: CachedAnswer): void {
    if (this.#entries.size >= this.#maxEntries) this.#entries.clear();
    this.#entries.set(key, entry);
  }

  /**
   * The next encoding of `entry` with the query's ID, as a new buffer (the cached one is never sent: a
   * UDP send may still be reading it when the next query comes). `idOffset` is 2 over TCP (the length).
   */
  static answer(entry: CachedAnswer, id: number, idOffset: number): Buffer {
    const encoded = entry.encodings[entry.next]!;
    entry.next = (entry.next + 1) % entry.encodings.length;
    const out = Buffer.allocUnsafe(encoded.length);
    encoded.copy(out);
    out.writeUInt16BE(id, idOffset);
    return out;
  }
}
