import { randomBytes } from 'node:crypto';

/** RFC 6455 §7.4.1 status codes Ebb sends, and 1012 from the IANA registry (Service Restart). */
export const WebSocketCloseCode = {
  normal: 1000,
  goingAway: 1001,
  /** "The service is restarted; a client may reconnect" — SPEC §10: never a bare 1001 to clients. */
  serviceRestart: 1012,
  /** "Try again later": the connector's cue to go to another member. */
  tryAgainLater: 1013,
} as const;
export type WebSocketCloseCode = (typeof WebSocketCloseCode)[keyof typeof WebSocketCloseCode];

/**
 * One close frame (RFC 6455 §5.5.1): FIN, opcode 8, a 2-byte status code and a UTF-8 reason of at most
 * 123 bytes (control frames carry ≤ 125 bytes, §5.5). `masked` for frames a client sends (towards the
 * upstream: §5.3 requires a fresh random key per frame); a server's frames are unmasked.
 */
export function closeFrame(code: WebSocketCloseCode, reason: string, masked: boolean): Buffer {
  const text = Buffer.from(reason, 'utf8').subarray(0, 123);
  const payload = Buffer.allocUnsafe(2 + text.length);
  payload.writeUInt16BE(code, 0);
  text.copy(payload, 2);
  if (!masked) return Buffer.concat([Buffer.from([0x88, payload.length]), payload]);
  const key = randomBytes(4);
  for (let i = 0; i < payload.length; i++) payload[i] = payload[i]! ^ key[i & 3]!;
  return Buffer.concat([Buffer.from([0x88, 0x80 | payload.length]), key, payload]);
}
