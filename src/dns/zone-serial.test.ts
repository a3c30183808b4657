import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { member, sampleView } from './dns-test-support.ts';
import { ZoneSerial } from './zone-serial.ts';

describe('ZoneSerial', () => {
  it('starts at the Unix time and moves only when answers would change', () => {
    let now = 1_700_000_000_000;
    const serial = new ZoneSerial(() => now);
    const first = serial.current(sampleView());
    assert.equal(first, 1_700_000_000);
    now += 5000;
    assert.equal(serial.current(sampleView()), first, 'same content, new object');
    const sessions = sampleView();
    sessions.members[0]!.services[0]!.sessions = 42;
    assert.equal(serial.current(sessions), first, 'sessions do not change answers');
    const paused = sampleView();
    paused.members[0] = member('fe01', ['127.0.0.11', 'fd00::11'], { frontend: false });
    assert.equal(serial.current(paused), 1_700_000_005);
  });

  it('increases by one for changes within the same second', () => {
    const serial = new ZoneSerial(() => 1_700_000_000_000);
    const a = serial.current(sampleView());
    const b = serial.current(sampleView({ dnsTtl: 30 }));
    const c = serial.current(sampleView());
    assert.deepEqual([b - a, c - b], [1, 1]);
  });
});
