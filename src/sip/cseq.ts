import { isToken } from './sip-chars.ts';
import { SipErrorCode, SipParseError } from './sip-parse-error.ts';

export interface CSeq {
  seq: number;
  method: string;
}

/** RFC 3261 §20.16; the number must be below 2**31 (§8.1.1.5). */
export function parseCSeq(value: string): CSeq {
  const m = /^(\d{1,10})[ \t]+(\S+)$/.exec(value.trim());
  const seq = m ? Number(m[1]) : NaN;
  if (!m || seq >= 2 ** 31 || !isToken(m[2]!)) {
    throw new SipParseError(
      SipErrorCode.badCSeq,
      `CSeq ${JSON.stringify(value.slice(0, 100))} is not "number METHOD"`,
      {
        field: 'CSeq',
      },
    );
  }
  return { seq, method: m[2]! };
}

export function formatCSeq(cseq: CSeq): string {
  return `${cseq.seq} ${cseq.method}`;
}
