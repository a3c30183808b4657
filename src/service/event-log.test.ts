/**
 * EventLog over a real SQLite store: a `session.forced` event is also an audit record (SPEC §2, §8),
 * under the audit key and in the controller's record shape, so `ebb audit` and the console show it.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { pino } from 'pino';
import { EventCode, StoreError } from '../core/index.ts';
import { PoolKeys, SqliteStore, type Store } from '../store/index.ts';
import { EventLog, forcedAuditRecord } from './event-log.ts';

describe('EventLog: forced sessions in the audit log', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ebb-event-log-'));
  const store = new SqliteStore(join(dir, 'state.db'));
  const keys = new PoolKeys('p');

  after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const until = async (check: () => Promise<boolean>) => {
    for (let i = 0; i < 100 && !(await check()); i++) await new Promise((r) => setTimeout(r, 10));
  };

  it('a session.forced event writes an audit record naming the agent, the count and why', async () => {
    const log = new EventLog({ member: 'm1', store, keys, logger: pino({ level: 'silent' }) });
    log.publish({ code: EventCode.servicePaused, member: 'm1', service: 'echo', at: 1_000, data: {} });
    log.publish({
      code: EventCode.sessionForced,
      member: 'm1',
      service: 'echo',
      at: 2_000,
      data: { count: 2, why: 'deadline' },
    });
    await until(async () => (await store.list(keys.audits())).length > 0);
    const rows = await store.list(keys.audits());
    assert.equal(rows.length, 1, 'only the forced event is audited');
    const record = JSON.parse(rows[0]!.value) as Record<string, unknown>;
    assert.ok(rows[0]!.key.startsWith(keys.audit(2_000, '')), 'the audit key of its time');
    assert.deepEqual(
      { ...record, id: typeof record['id'] },
      {
        id: 'string',
        at: 2_000,
        by: 'agent:m1',
        action: 'force',
        member: 'm1',
        service: 'echo',
        reason: '',
        force: false,
        result: 'ok',
        detail: '2 session(s) ended at the deadline',
      },
    );
  });

  it('says why: a hard stop, the agent shutting down', () => {
    const detail = (why: string) =>
      forcedAuditRecord({ code: EventCode.sessionForced, member: 'm2', at: 1, data: { count: 1, why } })
        .detail;
    assert.equal(detail('stop'), '1 session(s) ended by a hard stop');
    assert.equal(detail('shutdown'), '1 session(s) ended as the agent shut down');
  });

  it('a record the store does not take is logged whole, as a warning', async () => {
    const lines: string[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => lines.push(line) });
    const failing = new Proxy(store, {
      get: (target, name) =>
        name === 'put'
          ? () => Promise.reject(new StoreError('store unreachable (test)'))
          : (Reflect.get(target, name) as unknown),
    }) as Store;
    const log = new EventLog({ member: 'm3', store: failing, keys, logger });
    log.publish({ code: EventCode.sessionForced, member: 'm3', at: 3, data: { count: 4, why: 'stop' } });
    await until(async () => lines.some((l) => l.includes('EBB_AUDIT_WRITE_FAILED')));
    const warning = JSON.parse(lines.find((l) => l.includes('EBB_AUDIT_WRITE_FAILED'))!) as {
      record: { detail: string };
    };
    assert.equal(warning.record.detail, '4 session(s) ended by a hard stop');
  });
});
