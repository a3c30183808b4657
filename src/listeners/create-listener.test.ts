import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfig, type ListenerConfig } from '../config/index.ts';
import type { PoolView } from '../core/index.ts';
import { createListener } from './create-listener.ts';
import { SipListener } from './sip-listener.ts';
import { TcpListener } from './tcp-listener.ts';

const config = parseConfig(`
pool: { name: p, fqdn: p.ebb.test }
store: sqlite:/tmp/unused.db
members:
  - id: m1
    address: 127.0.0.1
    services:
      - id: svc
        listeners:
          - { protocol: tcp, port: 7000, upstream: builtin:echo }
          - { protocol: sip, port: 5060, upstream: builtin:sip-uas }
`);
const service = config.members[0]!.services[0]!;
const view: PoolView = { name: 'p', fqdn: 'p.ebb.test', dnsTtl: 5, members: [] };
const context = { member: 'm1', service, view: () => view };
const events = { onChange: () => {} };

describe('createListener (the registry of listener kinds)', () => {
  it('builds each configured kind, bound to the member address', () => {
    const [tcp, sip] = service.listeners.map((l) => createListener('127.0.0.1', l, events, context));
    assert.ok(tcp instanceof TcpListener);
    assert.equal(tcp.description, 'tcp 127.0.0.1:7000 → builtin:echo');
    assert.ok(sip instanceof SipListener);
    assert.equal(sip.description, 'sip/udp 127.0.0.1:5060 → builtin:sip-uas');
    assert.equal(tcp.state, 'closed');
  });

  it('a protocol without a kind is refused with EBB_UNSUPPORTED_PROTOCOL', () => {
    const unknown = { ...service.listeners[0]!, protocol: 'gopher' } as unknown as ListenerConfig;
    assert.throws(() => createListener('127.0.0.1', unknown, events, context), {
      code: 'EBB_UNSUPPORTED_PROTOCOL',
    });
  });
});
