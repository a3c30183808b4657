import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BadHostError, ForeignOriginError, NotJsonError, RequestGuard, isLoopback } from './request-guard.ts';

const json = { origin: undefined, secFetchSite: undefined, contentType: 'application/json' };

describe('RequestGuard (SPEC §8)', () => {
  const loopback = new RequestGuard({ listen: '127.0.0.1:7070', hosts: [] });
  const named = new RequestGuard({
    listen: '0.0.0.0:7070',
    hosts: ['ebb.example.com', 'Proxy.Example:8443', '[fd00::1]:7070'],
  });
  const onSocket = { address: '10.0.0.5', port: 7070 };

  it('Host: the listen address, localhost at its port on loopback, a name in api.hosts', () => {
    for (const host of ['127.0.0.1:7070', 'localhost:7070', 'LOCALHOST:7070', ' 127.0.0.1:7070 '])
      assert.doesNotThrow(() => loopback.checkHost(host), host);
    for (const host of [
      'attacker.example:7070',
      '127.0.0.1:7071',
      '127.0.0.1',
      'localhost',
      'localhost.:7070',
      '127.0.0.1:7070@evil',
      '[::1]:7070',
      '',
    ])
      assert.throws(() => loopback.checkHost(host), BadHostError, JSON.stringify(host));
    assert.throws(() => loopback.checkHost(undefined), /Host header is missing/);
  });

  it('Host: on a wildcard listen, the local address the connection arrived on', () => {
    assert.doesNotThrow(() => named.checkHost('10.0.0.5:7070', onSocket));
    assert.doesNotThrow(() => named.checkHost('10.0.0.5:7070', { address: '::ffff:10.0.0.5', port: 7070 }));
    assert.throws(() => named.checkHost('10.0.0.6:7070', onSocket), BadHostError);
    assert.throws(() => named.checkHost('localhost:7070', onSocket), BadHostError, 'not a loopback socket');
    assert.doesNotThrow(() => named.checkHost('localhost:7070', { address: '127.0.0.1', port: 7070 }));
    assert.doesNotThrow(() => named.checkHost('0.0.0.0:7070'), 'the CLI uses http://<api.listen>');
  });

  it('Host: api.hosts without a port match any port, with one only that port', () => {
    for (const host of [
      'ebb.example.com',
      'ebb.example.com:7070',
      'EBB.example.com:443',
      'proxy.example:8443',
    ])
      assert.doesNotThrow(() => named.checkHost(host, onSocket), host);
    assert.doesNotThrow(() => named.checkHost('[fd00::1]:7070', onSocket));
    for (const host of ['proxy.example', 'proxy.example:7070', 'sub.ebb.example.com', 'ebb.example.com.evil'])
      assert.throws(() => named.checkHost(host, onSocket), BadHostError, host);
  });

  it('the message names the header and what is expected', () => {
    assert.throws(
      () => loopback.checkHost('attacker.example:7070'),
      (err: unknown) =>
        err instanceof BadHostError &&
        err.code === 'EBB_BAD_HOST' &&
        err.httpStatus === 403 &&
        /^Host "attacker\.example:7070" is not this API's address; use 127\.0\.0\.1:7070, localhost/.test(
          err.message,
        ),
    );
  });

  it('Origin: absent, or one of the API’s own names (http or https)', () => {
    for (const origin of [undefined, 'http://127.0.0.1:7070', 'http://localhost:7070'])
      assert.doesNotThrow(() => loopback.checkStateChanging({ ...json, origin }), String(origin));
    assert.doesNotThrow(() =>
      named.checkStateChanging({ ...json, origin: 'https://ebb.example.com' }, onSocket),
    );
    assert.doesNotThrow(() =>
      named.checkStateChanging({ ...json, origin: 'https://proxy.example:8443' }, onSocket),
    );
    assert.throws(
      () => named.checkStateChanging({ ...json, origin: 'https://proxy.example' }, onSocket),
      ForeignOriginError,
      'https without a port is 443, not 8443',
    );
    for (const origin of [
      'http://evil.example',
      'http://127.0.0.1:7071',
      'http://127.0.0.1',
      'http://localhost:3000',
      'null',
      'file://',
      'http://127.0.0.1:7070/path',
      'ftp://127.0.0.1:7070',
      'http://user@127.0.0.1:7070',
    ])
      assert.throws(
        () => loopback.checkStateChanging({ ...json, origin }),
        (err: unknown) =>
          err instanceof ForeignOriginError &&
          err.code === 'EBB_FOREIGN_ORIGIN' &&
          /^Origin "/.test(err.message),
        origin,
      );
  });

  it('Sec-Fetch-Site: same-origin and none pass; cross-site, same-site and the unknown do not', () => {
    for (const secFetchSite of ['same-origin', 'none', 'Same-Origin'])
      assert.doesNotThrow(() => loopback.checkStateChanging({ ...json, secFetchSite }), secFetchSite);
    for (const secFetchSite of ['cross-site', 'same-site', 'whatever'])
      assert.throws(
        () => loopback.checkStateChanging({ ...json, secFetchSite }),
        (err: unknown) => err instanceof ForeignOriginError && /^Sec-Fetch-Site "/.test(err.message),
        secFetchSite,
      );
  });

  it('Content-Type: application/json (any parameters, any case), else 415', () => {
    for (const contentType of ['application/json', 'application/json; charset=utf-8', 'APPLICATION/JSON'])
      assert.doesNotThrow(() => loopback.checkStateChanging({ ...json, contentType }), contentType);
    for (const contentType of [
      undefined,
      'text/plain',
      'text/plain; application/json',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      'application/jsonp',
      'application/json-patch+json',
    ])
      assert.throws(
        () => loopback.checkStateChanging({ ...json, contentType }),
        (err: unknown) =>
          err instanceof NotJsonError && err.httpStatus === 415 && /^Content-Type /.test(err.message),
        String(contentType),
      );
  });

  it('isLoopback', () => {
    for (const host of ['127.0.0.1', '127.8.9.10', 'localhost', '::1', '[::1]', '::ffff:127.0.0.1'])
      assert.equal(isLoopback(host), true, host);
    for (const host of ['0.0.0.0', '10.0.0.1', '::', 'localhost.example', '128.0.0.1'])
      assert.equal(isLoopback(host), false, host);
  });
});
