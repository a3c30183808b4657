/** Bounds enforced while bytes arrive, so no peer can make the parser buffer without limit (SPEC §8). */
export interface SipLimits {
  /** Start line + headers + body in bytes; leading keep-alive CRLFs do not count. */
  maxMessageSize: number;
  /** Header lines (a folded line and a comma list each count once). */
  maxHeaders: number;
  /** Bytes in one line without its CRLF, and characters in one unfolded header. */
  maxLineLength: number;
  /** Bytes of body; the effective bound is also what `maxMessageSize` leaves after the head. */
  maxBodySize: number;
}

export const defaultSipLimits: Readonly<SipLimits> = Object.freeze({
  maxMessageSize: 65535,
  maxHeaders: 100,
  maxLineLength: 8192,
  maxBodySize: 65535,
});

/** Fills in defaults; rejects limits that are not positive integers (validate at the edge). */
export function resolveSipLimits(limits: Partial<SipLimits> = {}): SipLimits {
  const out: SipLimits = { ...defaultSipLimits };
  for (const key of Object.keys(defaultSipLimits) as (keyof SipLimits)[]) {
    const v = limits[key];
    if (v === undefined) continue;
    if (!Number.isSafeInteger(v) || v <= 0)
      throw new RangeError(`SIP limit ${key} must be a positive integer`);
    out[key] = v;
  }
  return out;
}
