import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  parseDatagram,
  removeHeader,
  setHeader,
  SipErrorCode,
  SipParseError,
  validateRequest,
  validateResponse,
  type SipRequest,
  type SipResponse,
} from './index.ts';
import { allFixtures, invite, ok200 } from './test-messages.ts';

const req = (b: Buffer = invite) => parseDatagram(b) as SipRequest;

function fails(r: SipRequest, code: string, field: string): void {
  assert.throws(
    () => validateRequest(r),
    (err) =>
      err instanceof SipParseError &&
      err.code === code &&
      err.field === field &&
      err.status === 400 &&
      err.head === r,
  );
}

describe('validateRequest', () => {
  test('returns the essentials, parsed', () => {
    const e = validateRequest(req());
    assert.equal(e.callId, 'a84b4c76e66710@pc33.atlanta.example.com');
    assert.deepEqual(e.cseq, { seq: 314159, method: 'INVITE' });
    assert.equal(e.from.params.get('tag'), '1928301774');
    assert.equal(e.to.params.get('tag'), undefined, 'no To-tag: a dialog-creating request');
    assert.equal(e.vias[0]!.params.get('branch'), 'z9hG4bK776asdhds');
    assert.equal(e.maxForwards, 70);
  });

  test('every request fixture validates', () => {
    for (const [name, b] of Object.entries(allFixtures)) {
      const m = parseDatagram(b);
      if (m.kind === 'request') assert.doesNotThrow(() => validateRequest(m), name);
      else assert.doesNotThrow(() => validateResponse(m), name);
    }
    assert.equal(validateRequest(req(allFixtures.folded)).vias.length, 4);
  });

  for (const name of ['To', 'From', 'CSeq', 'Call-ID', 'Via']) {
    test(`missing ${name}`, () => {
      const r = req();
      removeHeader(r, name);
      fails(r, SipErrorCode.missingHeader, name);
    });
  }

  test('duplicate single-valued headers', () => {
    const r = req();
    r.headers.push({ name: 't', value: '<sip:other@example.com>' });
    fails(r, SipErrorCode.duplicateHeader, 'To');
  });

  test('CSeq method must match the request method (RFC 3261 §8.1.1.5)', () => {
    const r = req();
    setHeader(r, 'CSeq', '314159 BYE');
    fails(r, SipErrorCode.cseqMismatch, 'CSeq');
  });

  test('malformed essentials', () => {
    const cases: [string, string, string, string][] = [
      ['CSeq', 'INVITE 1', SipErrorCode.badCSeq, 'CSeq'],
      ['From', '<sip:alice@atlanta.example.com', SipErrorCode.badNameAddr, 'From'],
      ['Via', 'SIP/2.0/UDP', SipErrorCode.badVia, 'Via'],
      ['Call-ID', 'two words', SipErrorCode.badHeader, 'Call-ID'],
      ['Max-Forwards', '300', SipErrorCode.badMaxForwards, 'Max-Forwards'],
    ];
    for (const [name, value, code, field] of cases) {
      const r = req();
      setHeader(r, name, value);
      fails(r, code, field);
    }
  });

  test('Max-Forwards is optional; a sip: Request-URI must parse', () => {
    const r = req();
    removeHeader(r, 'Max-Forwards');
    assert.equal(validateRequest(r).maxForwards, undefined);
    r.uri = 'sip:bob@biloxi.example.com:99999';
    fails(r, SipErrorCode.badUri, 'uri');
    r.uri = 'tel:+15550100';
    assert.doesNotThrow(() => validateRequest(r));
  });

  test('validateResponse needs the same headers, any CSeq method', () => {
    const res = parseDatagram(ok200) as SipResponse;
    assert.equal(validateResponse(res).vias.length, 2);
    removeHeader(res, 'Via');
    assert.throws(
      () => validateResponse(res),
      (err) => err instanceof SipParseError && err.field === 'Via',
    );
  });
});
