import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatEvent } from './server-commands.ts';

describe('ebb up / agent event lines', () => {
  it('times are UTC with how far off, not epoch ms (operator audit #35)', () => {
    const at = Date.UTC(2026, 11, 1, 12, 0, 1, 250);
    const line = formatEvent({
      code: 'service.paused',
      member: 'fe01',
      service: 'echo',
      at,
      data: { deadlineAt: at + 600_000, sessions: 2, drainStartedAt: at - 5000 },
    });
    assert.equal(
      line,
      '12:00:01.250 service.paused   fe01/echo  deadlineAt=2026-12-01T12:10:01Z (in 10m00s) sessions=2 ' +
        'drainStartedAt=2026-12-01T11:59:56Z (5s ago)',
    );
  });
});
