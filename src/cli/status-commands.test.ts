import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AuditRecord, PoolStatus } from '../control/index.ts';
import { renderAudit, renderStatus } from './status-commands.ts';

describe('status and audit tables escape text from elsewhere (audit #23)', () => {
  it('a reason with a newline and an ANSI escape stays on its row, shown escaped', () => {
    const record: AuditRecord = {
      id: 'x',
      at: 0,
      by: 'ops\x1b]0;title\x07',
      action: 'pause',
      member: 'm1',
      service: 'echo',
      reason: 'line1\nline2\x1b[31mRED',
      force: false,
      result: 'ok',
      detail: 'echo: running → paused\r',
    };
    const table = renderAudit([record]);
    const lines = table.split('\n');
    assert.equal(lines.length, 2, table);
    const controls = [...table.replace(/\n/g, '')].filter(
      (c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f,
    );
    assert.deepEqual(controls, [], 'no control character left');
    assert.match(
      lines[1]!,
      /ops\\u001b\]0;title\\u0007 +pause +m1\/echo +ok +line1\\u000aline2\\u001b\[31mRED +echo: running → paused\\u000d$/,
    );
  });

  it('status shows why a service is not running, and its error, escaped', () => {
    const service = {
      id: 'echo',
      state: 'paused',
      startup: 'automatic',
      intent: 'paused',
      accepting: false,
      sessions: 0,
      sessionsByKind: {},
      drained: true,
      forced: 0,
      reason: 'patch\x1b[2J',
      error: 'bind EADDRINUSE\n',
    } as unknown as PoolStatus['members'][number]['services'][number];
    const status: PoolStatus = {
      pool: { name: 'p', fqdn: 'p.ebb.test', minAccepting: 1 },
      members: [{ id: 'm1', address: '127.0.0.1', agent: 'up', readyForOffline: true, services: [service] }],
    };
    const text = renderStatus(status);
    assert.match(
      text,
      /\nm1\/echo: paused, reason: patch\\u001b\[2J\nm1\/echo: error: bind EADDRINUSE\\u000a$/,
    );
  });
});
