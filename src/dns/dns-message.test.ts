import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as dnsPacket from 'dns-packet';
import { decodeQuery, Rcode, type DecodeResult } from './dns-message.ts';
import { FQDN, queryBytes } from './dns-test-support.ts';

function expectReject(result: DecodeResult, rcode: number): void {
  assert.equal(result.kind, 'reject');
  if (result.kind === 'reject') assert.equal(result.rcode, rcode);
}

describe('decodeQuery', () => {
  it('reads the header, the question as sent, and EDNS', () => {
    const msg = queryBytes('Fe01.POOL1.ebb.test', 'AAAA', { id: 777, edns: 1400, dnssecOk: true });
    const result = decodeQuery(msg);
    assert.equal(result.kind, 'query');
    if (result.kind !== 'query') return;
    const { query } = result;
    assert.equal(query.id, 777);
    assert.deepEqual(query.question.labels, ['Fe01', 'POOL1', 'ebb', 'test']);
    assert.equal(query.question.name, 'Fe01.POOL1.ebb.test');
    assert.equal(query.question.type, 28);
    assert.equal(query.question.class, 1);
    assert.deepEqual(query.edns, { udpPayloadSize: 1400, version: 0, dnssecOk: true });
    assert.equal(query.question.wire.length, 21 + 4);
  });

  it('drops messages shorter than a header and responses', () => {
    assert.deepEqual(decodeQuery(Buffer.alloc(11)), { kind: 'drop', reason: 'short' });
    const response = queryBytes(FQDN, 'A');
    response[2]! |= 0x80;
    assert.deepEqual(decodeQuery(response), { kind: 'drop', reason: 'response' });
  });

  it('answers NOTIMP to opcodes other than QUERY', () => {
    for (const opcode of [1, 2, 4, 5, 15]) {
      const msg = queryBytes(FQDN, 'A');
      msg[2] = (msg[2]! & 0x87) | (opcode << 3);
      expectReject(decodeQuery(msg), Rcode.notImp);
    }
  });

  it('answers FORMERR to anything but exactly one question', () => {
    const none = dnsPacket.encode({ type: 'query', id: 1, questions: [] });
    expectReject(decodeQuery(none), Rcode.formErr);
    const two = dnsPacket.encode({
      type: 'query',
      id: 1,
      questions: [
        { name: FQDN, type: 'A' },
        { name: FQDN, type: 'AAAA' },
      ],
    });
    expectReject(decodeQuery(two), Rcode.formErr);
  });

  it('answers FORMERR to a truncated question, trailing bytes, or counts beyond the message', () => {
    const msg = queryBytes(FQDN, 'A');
    for (let cut = 12; cut < msg.length; cut++)
      expectReject(decodeQuery(msg.subarray(0, cut)), Rcode.formErr);
    expectReject(decodeQuery(Buffer.concat([msg, Buffer.from([0])])), Rcode.formErr);
    const lying = Buffer.from(msg);
    lying.writeUInt16BE(3, 10);
    expectReject(decodeQuery(lying), Rcode.formErr);
  });

  it('answers FORMERR to a compression pointer in the question, including one to itself', () => {
    const msg = Buffer.from(queryBytes(FQDN, 'A'));
    msg.writeUInt16BE(0xc000 | 12, 12);
    expectReject(decodeQuery(msg.subarray(0, 18)), Rcode.formErr);
    const toHeader = Buffer.concat([msg.subarray(0, 12), Buffer.from([0xc0, 0x00, 0, 1, 0, 1])]);
    expectReject(decodeQuery(toHeader), Rcode.formErr);
  });

  it('skips records in the answer and authority sections, compressed names included', () => {
    const msg = dnsPacket.encode({
      type: 'query',
      id: 9,
      questions: [{ name: FQDN, type: 'A' }],
      answers: [{ type: 'A', name: FQDN, data: '1.2.3.4' }],
    });
    // Replace the answer's owner name with a pointer to the question name.
    const q = 12 + FQDN.length + 2 + 4;
    const compressed = Buffer.concat([
      msg.subarray(0, q),
      Buffer.from([0xc0, 12]),
      msg.subarray(q + FQDN.length + 2),
    ]);
    const result = decodeQuery(compressed);
    assert.equal(result.kind, 'query');
  });

  it('answers FORMERR to two OPT records or one not owned by the root (RFC 6891 §6.1.1)', () => {
    const opt = {
      type: 'OPT' as const,
      name: '.',
      udpPayloadSize: 1232,
      extendedRcode: 0,
      ednsVersion: 0,
      flags: 0,
      flag_do: false,
      options: [],
    };
    const two = dnsPacket.encode({
      type: 'query',
      id: 1,
      questions: [{ name: FQDN, type: 'A' }],
      additionals: [opt, opt],
    });
    expectReject(decodeQuery(two), Rcode.formErr);
    const one = dnsPacket.encode({
      type: 'query',
      id: 1,
      questions: [{ name: FQDN, type: 'A' }],
      additionals: [opt],
    });
    const ownerPos = one.length - 11;
    const named = Buffer.concat([
      one.subarray(0, ownerPos),
      Buffer.from([1, 0x61, 0]),
      one.subarray(ownerPos + 1),
    ]);
    expectReject(decodeQuery(named), Rcode.formErr);
  });

  it('keeps a label containing a dot as one label', () => {
    const msg = Buffer.concat([
      queryBytes(FQDN, 'A').subarray(0, 12),
      Buffer.from([3, 0x61, 0x2e, 0x62, 0]),
      Buffer.from([0, 1, 0, 1]),
    ]);
    const result = decodeQuery(msg);
    assert.ok(result.kind === 'query');
    assert.deepEqual(result.query.question.labels, ['a.b']);
  });
});
