import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { appendForwarding, clientAddressOf, forwardedElement } from './forwarded-headers.ts';
import { connectionOptions, endToEndHeaders, isHopByHop } from './hop-by-hop.ts';

describe('hop-by-hop fields (RFC 9110 §7.6.1)', () => {
  it('drops Connection, what it names and the known hop-by-hop fields', () => {
    const listed = connectionOptions(['keep-alive, X-Trace', ' x-other ']);
    assert.deepEqual([...listed], ['keep-alive', 'x-trace', 'x-other']);
    for (const name of [
      'connection',
      'keep-alive',
      'te',
      'transfer-encoding',
      'upgrade',
      'proxy-connection',
      'x-trace',
    ]) {
      assert.equal(isHopByHop(name, listed), true, name);
    }
    assert.equal(isHopByHop('content-length', listed), false);
    assert.deepEqual(
      endToEndHeaders({
        connection: 'x-secret',
        'x-secret': '1',
        'set-cookie': ['a=1', 'b=2'],
        'content-type': 'text/plain',
      }),
      [
        ['set-cookie', ['a=1', 'b=2']],
        ['content-type', 'text/plain'],
      ],
    );
  });
});

describe('forwarding fields (RFC 7239)', () => {
  it('writes for, host and proto, quoting IPv6 and non-token values', () => {
    assert.equal(
      forwardedElement({ clientAddress: '192.0.2.60', proto: 'http', host: 'example.com' }),
      'for=192.0.2.60;host=example.com;proto=http',
    );
    assert.equal(
      forwardedElement({ clientAddress: '2001:db8::1', proto: 'https', host: 'example.com:8443' }),
      'for="[2001:db8::1]";host="example.com:8443";proto=https',
    );
    assert.equal(
      forwardedElement({ clientAddress: undefined, proto: 'http', host: undefined }),
      'for=unknown;proto=http',
    );
    assert.equal(clientAddressOf('::ffff:10.1.2.3'), '10.1.2.3');
    assert.equal(clientAddressOf('::1'), '::1');
  });

  it('appends to what earlier hops wrote and replaces X-Forwarded-Proto', () => {
    const out: string[] = [];
    appendForwarding(
      out,
      { clientAddress: '10.0.0.2', proto: 'https', host: 'a' },
      '198.51.100.1',
      'for=198.51.100.1',
    );
    assert.deepEqual(out, [
      'x-forwarded-for',
      '198.51.100.1, 10.0.0.2',
      'x-forwarded-proto',
      'https',
      'forwarded',
      'for=198.51.100.1, for=10.0.0.2;host=a;proto=https',
    ]);
  });
});
