import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AuditRecord, PoolStatus } from '../control/index.ts';
import { EbbError, ExitCode } from '../core/index.ts';
import { serviceView as view } from './cli-test-support.ts';
import { colourEnabled } from './colour.ts';
import { renderAudit, renderStatus } from './status-commands.ts';
import { selectMembers, watchStatus } from './status-watch.ts';

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

  it('a --force command reads "guard overridden", not "forced" (sessions) (audit #28)', () => {
    const record: AuditRecord = {
      id: 'y',
      at: 0,
      by: 'ops',
      action: 'drain',
      member: 'm1',
      service: null,
      reason: 'last one',
      force: true,
      result: 'ok',
      detail: '',
    };
    assert.match(renderAudit([record]).split('\n')[1]!, / drain +m1 +ok \(guard overridden\) +last one$/);
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
      intentBy: 'ops',
      intentAt: 1000,
      pending: false,
      error: 'bind EADDRINUSE\n',
    } as unknown as PoolStatus['members'][number]['services'][number];
    const status: PoolStatus = {
      pool: { name: 'p', fqdn: 'p.ebb.test', minAccepting: 1 },
      members: [{ id: 'm1', address: '127.0.0.1', agent: 'up', readyForOffline: true, services: [service] }],
    };
    const text = renderStatus(status);
    assert.match(
      text,
      /\nm1\/echo: paused by ops since 1970-01-01 00:00:01 UTC, reason: patch\\u001b\[2J\nm1\/echo: error: bind EADDRINUSE\\u000a$/,
    );
  });
});

/** The demo pool's services (SPEC §7): the longest ids an operator meets out of the box. */
const demoServices = [
  'frontend',
  'conferencing-attendant',
  'conferencing-announcement',
  'response-group',
  'call-park',
  'echo',
  'web',
];

const now = Date.UTC(2026, 11, 1, 12, 0, 0);

/** fe01 paused for a patch (two sessions left on echo); fe02's agent down with a pause not applied. */
function demoStatus(): PoolStatus {
  const paused = {
    intent: 'paused',
    intentBy: 'ops',
    intentAt: now - 192_000,
    reason: 'patch KB123',
  } as const;
  return {
    pool: { name: 'pool1', fqdn: 'pool1.ebb.test', minAccepting: 1 },
    members: [
      {
        id: 'fe01',
        address: '127.0.0.11',
        agent: 'up',
        readyForOffline: false,
        services: demoServices.map((id) =>
          view(id, {
            ...paused,
            state: 'paused',
            accepting: false,
            sessions: id === 'echo' ? 2 : id === 'web' ? 3 : 0,
            sessionsByKind: id === 'web' ? { requests: 1, websockets: 2 } : {},
            drained: id !== 'echo' && id !== 'web',
            forced: id === 'echo' ? 1 : 0,
          }),
        ),
      },
      {
        id: 'fe02',
        address: '127.0.0.12',
        agent: 'down',
        readyForOffline: false,
        services: demoServices.map((id) =>
          view(id, { ...paused, reason: 'disk', accepting: false, pending: true }),
        ),
      },
      {
        id: 'fe03',
        address: '127.0.0.13',
        agent: 'up',
        readyForOffline: false,
        services: demoServices.map((id) =>
          view(id, id === 'call-park' ? { startup: 'manual', state: 'stopped', intent: 'stopped' } : {}),
        ),
      },
    ],
  };
}

describe('ebb status fits 80 columns, with why, who and since (audit #19)', () => {
  it('the demo pool in 80 columns: every line fits, a pending pause says so', () => {
    const text = renderStatus(demoStatus(), { width: 80, now });
    // The table; the notes below it carry free text (reasons), which a terminal wraps.
    const table = text.split('\n\n')[0]!;
    for (const line of table.split('\n')) assert.ok(line.length <= 80, `${line.length}: ${line}`);
    assert.match(text, /^fe01 {2}127\.0\.0\.11 {2}agent up {2}ready for offline: no$/m);
    assert.match(text, /^ {2}echo +paused +2 +1 +3m12s$/m);
    assert.match(text, /^ {2}conferencing-announcement +paused \(drained\) +0 +0 +3m12s$/m);
    assert.match(text, /^fe02 {2}127\.0\.0\.12 {2}agent down/m);
    assert.match(text, /^ {2}frontend +running → paused \(pending\) +0 +0 +3m12s$/m);
    assert.match(text, /^ {2}call-park \(manual\) +stopped +0 +0$/m);
    assert.match(text, /^ {2}web +paused +3 \(2 ws\) +0 +3m12s$/m, 'the WebSockets a drain waits for');
    // Who, when and why: one line for a member whose services share them.
    assert.match(text, /^fe01: paused by ops since 2026-12-01 11:56:48 UTC, reason: patch KB123$/m);
    assert.match(
      text,
      /^fe02: paused by ops since 2026-12-01 11:56:48 UTC, reason: disk \(not applied yet\)$/m,
    );
    assert.doesNotMatch(text, /fe03.*reason|fe03\/call-park:/, 'a default from the config is no news');
    assert.ok(!text.includes('\x1b'), 'no colour unless asked');
  });

  it('a wide terminal gets every column; --wide forces it', () => {
    const wide = renderStatus(demoStatus(), { width: 200, now });
    assert.match(
      wide.split('\n')[1]!,
      /^MEMBER +ADDRESS +AGENT +SERVICE +STATE +STARTUP +ACCEPTING +SESSIONS +FORCED +SINCE +READY FOR OFFLINE$/,
    );
    assert.match(wide, /web +paused +automatic +no +3 \(1 requests, 2 websockets\) +0 +3m12s/);
    assert.equal(renderStatus(demoStatus(), { width: 80, layout: 'wide', now }), wide);
  });

  it('colour marks paused, down and forced on a terminal, and widths stay right', () => {
    const plain = renderStatus(demoStatus(), { width: 80, now });
    const coloured = renderStatus(demoStatus(), { width: 80, now, colour: true });
    assert.ok(coloured.includes('\x1b[31magent down\x1b[0m'), 'agent down in red');
    assert.ok(coloured.includes(`\x1b[33m${'paused'.padEnd(16)}\x1b[0m`), 'paused in yellow, padded inside');
    assert.equal(coloured.replaceAll(new RegExp(`${'\x1b'}\\[\\d+m`, 'g'), ''), plain);
  });

  it('NO_COLOR, a dumb terminal or a pipe turn colour off; FORCE_COLOR turns it on', () => {
    assert.equal(colourEnabled({ isTTY: true }, {}), true);
    assert.equal(colourEnabled({ isTTY: true }, { NO_COLOR: '1' }), false);
    assert.equal(colourEnabled({ isTTY: true }, { TERM: 'dumb' }), false);
    assert.equal(colourEnabled({ isTTY: false }, {}), false);
    assert.equal(colourEnabled({ isTTY: false }, { FORCE_COLOR: '1' }), true);
    assert.equal(colourEnabled({ isTTY: true }, { NO_COLOR: '1', FORCE_COLOR: '1' }), false);
  });

  it('--member keeps the members named; an unknown one is exit 2 naming the pool members', () => {
    const only = selectMembers(demoStatus(), 'fe02, fe03', '--member');
    assert.deepEqual(
      only.members.map((m) => m.id),
      ['fe02', 'fe03'],
    );
    assert.throws(
      () => selectMembers(demoStatus(), 'fe9', '--member'),
      (err: EbbError) =>
        err.exitCode === ExitCode.usage &&
        err.message === '--member: "fe9" is not a member of pool pool1 (fe01, fe02, fe03)',
    );
  });
});

describe('ebb status --watch', () => {
  /** Runs a watch over `frames` (a status, or an error to throw), one per poll. */
  async function watch(frames: Array<PoolStatus | Error>, tty: boolean, json = false): Promise<string[]> {
    const out: string[] = [];
    const stop = new AbortController();
    let i = 0;
    await watchStatus({
      read: async () => {
        const frame = frames[i++]!;
        if (i >= frames.length) stop.abort();
        if (frame instanceof Error) throw frame;
        return frame;
      },
      render: (s) => renderStatus(s, { now }),
      json,
      tty,
      intervalMs: 1000,
      write: (text) => out.push(text),
      signal: stop.signal,
      sleep: async () => {},
      now: () => now,
    });
    return out;
  }

  it('on a terminal, redraws in place each interval and says when it read', async () => {
    const out = await watch([demoStatus(), demoStatus()], true);
    assert.equal(out.length, 2);
    for (const frame of out) {
      assert.ok(frame.startsWith('\x1b[H\x1b[2Jpool pool1'), frame.slice(0, 20));
      assert.match(frame, /every 1000 ms · 12:00:00 UTC · Ctrl-C stops\n$/);
    }
  });

  it('in a pipe, prints a frame only when the pool changed; the API going away is said and waited for', async () => {
    const changed = demoStatus();
    changed.members[0]!.services[5]!.sessions = 0;
    const gone = new EbbError('EBB_API_UNREACHABLE', 'cannot reach the Ebb API at http://127.0.0.1:7070');
    const out = await watch([demoStatus(), demoStatus(), gone, gone, changed], false);
    assert.equal(out.length, 3, out.join('---'));
    assert.match(out[1]!, /^\nebb: cannot reach the Ebb API at http:\/\/127\.0\.0\.1:7070; retrying/);
    assert.match(out[2]!, /^\npool pool1/);
  });

  it('with --json, a JSON line per change; a usage error ends the watch', async () => {
    const out = await watch([demoStatus(), demoStatus()], false, true);
    assert.equal(out.length, 1);
    assert.equal((JSON.parse(out[0]!) as PoolStatus).members.length, 3);
    const usage = new EbbError('EBB_USAGE', 'bad', { exitCode: ExitCode.usage });
    await assert.rejects(watch([usage], false), /bad/);
  });
});
