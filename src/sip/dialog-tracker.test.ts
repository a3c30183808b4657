import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Dialog } from './dialog.ts';
import { DialogUsage } from './dialog.ts';
import { DialogTracker } from './dialog-tracker.ts';
import { parseDatagram } from './parse-datagram.ts';
import type { SipRequest, SipResponse } from './sip-message.ts';
import { TIMER_64T1_MS } from './transaction-table.ts';
import { validateRequest, validateResponse } from './validate-request.ts';

// RFC 5737 addresses: the proxy is 192.0.2.10, the caller .101, the callee (upstream) .20.
const CALLER = { host: '192.0.2.101', port: 5062 };
const UP = { host: '192.0.2.20', port: 5080 };
const OWN_RR = '<sip:192.0.2.10:5060;transport=udp;lr>';
const isSelf = (rr: string): boolean => rr === OWN_RR;

function msg(lines: string[]): SipRequest | SipResponse {
  return parseDatagram(Buffer.from([...lines, 'Content-Length: 0', '', ''].join('\r\n'))) as
    SipRequest | SipResponse;
}

const common = ['From: <sip:alice@192.0.2.101>;tag=a1', 'Call-ID: unacked@192.0.2.101', 'Max-Forwards: 70'];

function invite(): SipRequest {
  return msg([
    'INVITE sip:conf@192.0.2.10 SIP/2.0',
    'Via: SIP/2.0/UDP 192.0.2.101:5062;branch=z9hG4bKinv1',
    ...common,
    'To: <sip:conf@192.0.2.10>',
    'CSeq: 1 INVITE',
    'Contact: <sip:alice@192.0.2.101:5062>',
  ]) as SipRequest;
}

function ok(cseq: number, recordRoute: string[] = [OWN_RR]): SipResponse {
  return msg([
    'SIP/2.0 200 OK',
    'Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKours',
    'Via: SIP/2.0/UDP 192.0.2.101:5062;branch=z9hG4bKinv1',
    ...recordRoute.map((rr) => `Record-Route: ${rr}`),
    ...common,
    'To: <sip:conf@192.0.2.10>;tag=b1',
    `CSeq: ${cseq} INVITE`,
    'Contact: <sip:bob@192.0.2.20:5080>',
  ]) as SipResponse;
}

function ack(cseq: number): SipRequest {
  return msg([
    'ACK sip:bob@192.0.2.20:5080 SIP/2.0',
    'Via: SIP/2.0/UDP 192.0.2.101:5062;branch=z9hG4bKack',
    ...common,
    'To: <sip:conf@192.0.2.10>;tag=b1',
    `CSeq: ${cseq} ACK`,
  ]) as SipRequest;
}

/** A tracker on a fake clock with one call answered 2xx; `unacked` collects what it reports. */
function answeredCall(recordRoute?: string[]) {
  const counts = { opened: 0, closed: 0, forced: 0 };
  const unacked: Dialog[] = [];
  const clock = { now: 5_000_000 };
  const tracker = new DialogTracker({
    sink: {
      opened: () => counts.opened++,
      closed: (forced) => {
        counts.closed++;
        if (forced) counts.forced++;
      },
      upstreamFailed: () => assert.fail('no upstream failure here'),
    },
    maxIdleMs: 7_200_000,
    now: clock.now,
    onUnacknowledged: (d) => unacked.push(d),
  });
  const req = invite();
  const attempt = tracker.begin(
    {
      key: 'k1',
      usage: DialogUsage.invite,
      req,
      ess: validateRequest(req),
      from: CALLER,
      dest: UP,
      ourBranch: 'z9hG4bKours',
      callerRoute: [],
    },
    clock.now,
  );
  const res = ok(1, recordRoute);
  const dialog = tracker.attemptResponse(attempt, res, validateResponse(res), UP, isSelf, clock.now)!;
  assert.ok(dialog);
  return { tracker, counts, unacked, clock, dialog, attempt };
}

describe('DialogTracker: a 2xx never ACKed (RFC 3261 §13.3.1.4)', () => {
  it('ends the call 64*T1 after the 2xx, not forced, and reports it once for the BYEs', () => {
    const { tracker, counts, unacked, clock, dialog } = answeredCall();
    assert.equal(tracker.sessions, 1);
    clock.now += TIMER_64T1_MS - 1;
    tracker.sweep(clock.now);
    assert.equal(tracker.sessions, 1, 'still waiting for the ACK');
    clock.now += 1_100; // the wheel's resolution is a second
    tracker.sweep(clock.now);
    assert.equal(tracker.sessions, 0);
    assert.deepEqual(counts, { opened: 1, closed: 1, forced: 0 });
    assert.deepEqual(unacked, [dialog]);
    clock.now += 10_000;
    tracker.sweep(clock.now);
    assert.equal(unacked.length, 1);
  });

  it('a retransmitted 2xx does not move the deadline', () => {
    const { tracker, clock, attempt, unacked } = answeredCall();
    clock.now += 20_000;
    const again = ok(1);
    tracker.attemptResponse(attempt, again, validateResponse(again), UP, isSelf, clock.now);
    clock.now += TIMER_64T1_MS - 20_000 + 1_100;
    tracker.sweep(clock.now);
    assert.equal(tracker.sessions, 0);
    assert.equal(unacked.length, 1);
  });

  it('an ACK keeps the call; a 2xx retransmitted after it arms nothing; a re-INVITE 2xx waits for its own ACK', () => {
    const { tracker, clock, dialog, attempt, unacked } = answeredCall();
    clock.now += 1_000;
    const a = ack(1);
    tracker.inDialogRequest(dialog, a, validateRequest(a), clock.now);
    const late = ok(1);
    tracker.attemptResponse(attempt, late, validateResponse(late), UP, isSelf, clock.now);
    clock.now += 10 * TIMER_64T1_MS;
    tracker.sweep(clock.now);
    assert.equal(tracker.sessions, 1, 'ACKed: the call goes on');
    // A re-INVITE (CSeq 2) answered 2xx and never ACKed ends the call too.
    tracker.inDialogResponse(dialog, 'INVITE', false, ok(2), 2, isSelf, clock.now);
    clock.now += TIMER_64T1_MS + 1_100;
    tracker.sweep(clock.now);
    assert.equal(tracker.sessions, 0);
    assert.equal(unacked.length, 1);
  });

  it('is not armed when the 2xx lost our Record-Route: its ACK does not pass here', () => {
    const { tracker, clock, unacked } = answeredCall([]);
    clock.now += 10 * TIMER_64T1_MS;
    tracker.sweep(clock.now);
    assert.equal(tracker.sessions, 1);
    assert.equal(unacked.length, 0);
  });
});
