import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  getHeader,
  parseDatagram,
  SipErrorCode,
  SipParseError,
  SipStreamParser,
  SipStreamState,
  type SipLimits,
  type SipMessage,
  type SipRequest,
} from './index.ts';
import { allFixtures, bye, invite, notify, ok200, options, sip } from './test-messages.ts';

function collect(limits?: Partial<SipLimits>) {
  const messages: SipMessage[] = [];
  const errors: SipParseError[] = [];
  let pings = 0;
  const parser = new SipStreamParser(
    {
      onMessage: (m) => messages.push(m),
      onError: (e) => errors.push(e),
      onKeepAlive: () => pings++,
    },
    limits,
  );
  return { parser, messages, errors, pings: () => pings };
}

describe('SipStreamParser', () => {
  test('several messages in one chunk come out in order, equal to datagram parsing', () => {
    const { parser, messages, errors } = collect();
    const all = Object.values(allFixtures);
    parser.push(Buffer.concat(all));
    assert.deepEqual(errors, []);
    assert.deepEqual(
      messages,
      all.map((b) => parseDatagram(b)),
    );
    assert.equal(parser.state, SipStreamState.idle);
  });

  test('byte-by-byte delivery gives the same messages', () => {
    const { parser, messages } = collect();
    const stream = Buffer.concat([invite, ok200, notify]);
    for (let i = 0; i < stream.length; i++) parser.push(stream.subarray(i, i + 1));
    assert.deepEqual(
      messages,
      [invite, ok200, notify].map((b) => parseDatagram(b)),
    );
  });

  test('double-CRLF pings are reported, single CRLFs between messages are ignored (RFC 5626 §3.5.1)', () => {
    const { parser, messages, pings } = collect();
    parser.push(Buffer.from('\r\n\r\n'));
    assert.equal(pings(), 1);
    parser.push(Buffer.from('\r'));
    parser.push(Buffer.from('\n\r'));
    parser.push(Buffer.from('\n'));
    assert.equal(pings(), 2, 'a ping split across chunks still counts');
    parser.push(Buffer.concat([options, Buffer.from('\r\n'), bye]));
    assert.equal(pings(), 2);
    assert.equal(messages.length, 2);
  });

  test('Content-Length is mandatory on streams; the error is fatal and reported once', () => {
    const { parser, messages, errors } = collect();
    parser.push(
      sip(['OPTIONS sip:a@example.com SIP/2.0', 'Via: SIP/2.0/TCP h;branch=z9hG4bK1', 'CSeq: 1 OPTIONS']),
    );
    assert.equal(errors.length, 1);
    assert.equal(errors[0]!.code, SipErrorCode.missingHeader);
    assert.equal(errors[0]!.field, 'Content-Length');
    assert.equal(errors[0]!.status, 400);
    assert.equal((errors[0]!.head as SipRequest).method, 'OPTIONS', 'the head lets the transport answer');
    assert.equal(parser.state, SipStreamState.failed);
    parser.push(options);
    parser.end();
    assert.equal(messages.length, 0);
    assert.equal(errors.length, 1);
  });

  test('a 70 KB message is refused as soon as its head is read, before its body is buffered', () => {
    const { parser, errors } = collect();
    const body = 'x'.repeat(70 * 1024);
    const msg = sip(
      ['MESSAGE sip:a@example.com SIP/2.0', 'Via: SIP/2.0/TCP h;branch=z9hG4bK1', 'Content-Length: {len}'],
      body,
    );
    const headEnd = msg.indexOf('\r\n\r\n') + 4;
    parser.push(msg.subarray(0, headEnd));
    assert.equal(errors.length, 1);
    assert.equal(errors[0]!.code, SipErrorCode.bodyTooLarge);
    assert.equal(parser.buffered, 0);
  });

  test('a 70 KB head of short lines is refused within the size limit', () => {
    const { parser, errors } = collect({ maxHeaders: 100_000 });
    parser.push(Buffer.from('OPTIONS sip:a@example.com SIP/2.0\r\n'));
    let pushed = 0;
    const line = Buffer.from(`X-Pad: ${'p'.repeat(100)}\r\n`);
    while (errors.length === 0 && pushed < 70 * 1024) {
      parser.push(line);
      pushed += line.length;
      assert.ok(parser.buffered <= line.length);
    }
    assert.equal(errors[0]!.code, SipErrorCode.tooLarge);
    assert.equal(errors[0]!.status, 513);
    assert.ok(pushed <= 65535, `refused after ${pushed} bytes`);
  });

  test('a line without end is refused at maxLineLength, whatever the chunking', () => {
    const { parser, errors } = collect();
    parser.push(Buffer.from('OPTIONS sip:a@example.com SIP/2.0\r\nX-Long: '));
    let pushed = 0;
    while (errors.length === 0 && pushed < 20000) {
      parser.push(Buffer.alloc(100, 0x61));
      pushed += 100;
    }
    assert.equal(errors[0]!.code, SipErrorCode.lineTooLong);
    assert.ok(pushed <= 8192 + 100);
  });

  test('too many headers', () => {
    const { parser, errors } = collect({ maxHeaders: 3 });
    parser.push(options);
    assert.equal(errors[0]!.code, SipErrorCode.tooManyHeaders);
  });

  test('a bad start line is fatal', () => {
    const { parser, errors } = collect();
    parser.push(Buffer.from('HELLO WORLD\r\n\r\n'));
    assert.equal(errors[0]!.code, SipErrorCode.badStartLine);
    assert.equal(errors[0]!.head, undefined);
  });

  test('end() inside a message reports it truncated; between messages it is quiet', () => {
    const a = collect();
    a.parser.push(invite.subarray(0, invite.length - 5));
    a.parser.end();
    assert.equal(a.errors[0]!.code, SipErrorCode.truncated);
    const b = collect();
    b.parser.push(Buffer.concat([invite, Buffer.from('\r\n')]));
    b.parser.end();
    assert.deepEqual(b.errors, []);
    assert.equal(b.messages.length, 1);
  });

  test('the body buffer never exceeds Content-Length; the message after it parses', () => {
    const { parser, messages } = collect();
    const stream = Buffer.concat([invite, bye]);
    const split = invite.length - 10;
    parser.push(stream.subarray(0, split));
    assert.ok(parser.buffered < invite.length);
    parser.push(stream.subarray(split));
    assert.equal(messages.length, 2);
    assert.equal(getHeader(messages[1]!, 'CSeq'), '231 BYE');
  });

  test('limits are validated', () => {
    assert.throws(() => new SipStreamParser({ onMessage() {}, onError() {} }, { maxHeaders: 0 }), RangeError);
  });
});
