import type { Command } from 'commander';
import type { AuditRecord, PoolStatus } from '../control/index.ts';
import { BadRequestError, formatDuration, parseDuration } from '../core/index.ts';
import { apiClient, globals, printJson } from './cli-context.ts';
import { colourEnabled, paint as paintText, type Colour } from './colour.ts';
import { formatTable } from './format-table.ts';
import { safeText } from './safe-text.ts';
import { selectMembers, watchStatus } from './status-watch.ts';

export function registerStatusCommands(program: Command): void {
  program
    .command('status')
    .description(
      'the pool: members × services with state, startup type, accepting, sessions, drained, forced',
    )
    .option('--member <ids>', 'only these members (comma-separated)')
    .option('--wide', 'every column, however wide the terminal (default: what fits)')
    .option(
      '--watch [interval]',
      'redraw every interval (default 2s) until Ctrl-C; with --json a line per change',
    )
    .action(async (opts: { member?: string; wide?: boolean; watch?: string | true }, command: Command) => {
      const options = globals(command);
      const client = apiClient(options);
      const read = async () =>
        selectMembers(await client.get<PoolStatus>('/v1/pool'), opts.member, '--member');
      const render = (status: PoolStatus) =>
        renderStatus(status, {
          width: process.stdout.columns || Number(process.env['COLUMNS']) || 80,
          layout: opts.wide ? 'wide' : 'auto',
          colour: colourEnabled(process.stdout),
        });
      if (opts.watch !== undefined) {
        const intervalMs = opts.watch === true ? 2000 : parseDuration(opts.watch, '--watch');
        const stop = new AbortController();
        process.once('SIGINT', () => stop.abort());
        await watchStatus({
          read,
          render,
          json: options.json === true,
          tty: process.stdout.isTTY === true,
          intervalMs,
          write: (text) => process.stdout.write(text),
          signal: stop.signal,
        });
        return;
      }
      const status = await read();
      if (options.json) return printJson(status);
      process.stdout.write(`${render(status)}\n`);
    });

  program
    .command('audit')
    .description('who did what, when, why, with what result (newest first)')
    .option('--limit <n>', 'how many records, 1-1000', '50')
    .option('--member <id>', 'only this member')
    .option('--action <action>', 'only this action: pause, resume, start, stop, startup or force')
    .option('--since <when>', 'only records since: a duration ago (1h, 2d) or a time (2026-12-01T10:00:00Z)')
    .action(async (opts: AuditOptions, command: Command) => {
      const options = globals(command);
      const records = await apiClient(options).get<AuditRecord[]>(`/v1/audit?${auditQuery(opts)}`);
      if (options.json) return printJson(records);
      process.stdout.write(`${renderAudit(records)}\n`);
    });
}

interface AuditOptions {
  limit: string;
  member?: string;
  action?: string;
  since?: string;
}

/**
 * The query for `GET /v1/audit`; a limit that is not a whole number from 1 to 1000 is exit 2 here, before
 * anything is asked (operator audit #29). The API checks the rest and names what it refuses.
 */
export function auditQuery(opts: AuditOptions): string {
  if (!/^\d{1,4}$/.test(opts.limit) || Number(opts.limit) < 1 || Number(opts.limit) > 1000)
    throw new BadRequestError([
      { path: '--limit', message: `"${safeText(opts.limit)}" is not a whole number from 1 to 1000` },
    ]);
  const query = new URLSearchParams({ limit: String(Number(opts.limit)) });
  if (opts.member !== undefined) query.set('member', opts.member);
  if (opts.action !== undefined) query.set('action', opts.action);
  if (opts.since !== undefined) query.set('since', opts.since);
  return query.toString();
}

/**
 * The audit table. Reasons, details and names were typed by other operators or written by agents: each
 * cell is escaped (a newline or an ANSI sequence would break the table or recolour this terminal).
 */
export function renderAudit(records: readonly AuditRecord[]): string {
  const rows = records.map((r) =>
    [
      new Date(r.at).toISOString().replace('T', ' ').slice(0, 19),
      r.by,
      r.action,
      r.service ? `${r.member}/${r.service}` : r.member,
      // `--force` overrides the capacity guard; "forced" is for sessions ended (operator audit #28).
      r.result + (r.force ? ' (guard overridden)' : ''),
      r.reason,
      r.detail,
    ].map((cell) => safeText(String(cell))),
  );
  return formatTable(['TIME (UTC)', 'BY', 'ACTION', 'TARGET', 'RESULT', 'REASON', 'DETAIL'], rows);
}

/** `3`, or by kind where a service has several (http: `3 (1 requests, 2 websockets)`). */
function sessionsCell(service: PoolStatus['members'][number]['services'][number]): string {
  const kinds = Object.entries(service.sessionsByKind ?? {});
  // SPEC §14: sip flows open, when they are not sessions already (drainFlows).
  if (kinds.length < 2 && (service.flows ?? 0) > 0)
    return `${service.sessions} (${service.flows} flows open)`;
  if (kinds.length < 2) return String(service.sessions);
  return `${service.sessions} (${kinds.map(([kind, n]) => `${n} ${kind}`).join(', ')})`;
}

export interface StatusOptions {
  /** The terminal's width: `auto` picks the wide table when it fits, else the compact one. */
  width?: number;
  layout?: 'auto' | 'wide' | 'compact';
  colour?: boolean;
  now?: number;
}

type ServiceView = PoolStatus['members'][number]['services'][number];

/** The states in which a service shows its intent as done (a graceful stop is done while it stops). */
const intentStates: Record<ServiceView['intent'], readonly string[]> = {
  running: ['running'],
  paused: ['paused'],
  stopped: ['stopped', 'stopping'],
};

/**
 * `paused`, `paused (drained)`, or `running → paused (pending)` while the agent has not applied the
 * intent (down, busy, or retrying after an error).
 */
export function stateCell(service: ServiceView): string {
  const pending = service.pending && !intentStates[service.intent].includes(service.state);
  let text = pending ? `${service.state} → ${service.intent} (pending)` : service.state;
  if (!pending && (service.state === 'paused' || service.state === 'stopping') && service.drained)
    text += ' (drained)';
  return text + (service.error ? ' (error)' : '');
}

/** How long the current intent has held, for services not simply running: `3m12s`. */
function sinceCell(service: ServiceView, now: number): string {
  if (service.intentAt === null || (service.intent === 'running' && !service.pending)) return '';
  return formatDuration(Math.max(0, now - service.intentAt));
}

export function renderStatus(status: PoolStatus, options: StatusOptions = {}): string {
  const now = options.now ?? Date.now();
  const colour = options.colour === true;
  const title = `pool ${status.pool.name} (${status.pool.fqdn}), min accepting ${status.pool.minAccepting}`;
  const notes = statusNotes(status);
  const wide = wideTable(status, now, colour);
  const layout = options.layout ?? 'auto';
  const width = options.width ?? 80;
  // Widths are measured without colour: escapes take no columns.
  const fits = wideTable(status, now, false)
    .split('\n')
    .every((line) => line.length <= width);
  const table = layout === 'wide' || (layout === 'auto' && fits) ? wide : compactTable(status, now, colour);
  return `${title}\n${table}${notes.length > 0 ? `\n\n${notes.join('\n')}` : ''}`;
}

function stateColour(service: ServiceView, agentUp: boolean): Colour | null {
  if (service.error || !agentUp) return 'red';
  if (service.pending && !intentStates[service.intent].includes(service.state)) return 'yellow';
  if (service.state === 'running') return 'green';
  if (service.state === 'stopped') return 'dim';
  return 'yellow';
}

/** Every column, one row per service: for wide terminals, or `--wide`. */
function wideTable(status: PoolStatus, now: number, colour: boolean): string {
  const rows: string[][] = [];
  const look: Array<{ service: ServiceView; agentUp: boolean }> = [];
  for (const member of status.members) {
    member.services.forEach((service, i) => {
      look.push({ service, agentUp: member.agent === 'up' });
      rows.push([
        i === 0 ? member.id : '',
        i === 0 ? member.address : '',
        i === 0 ? member.agent : '',
        service.id,
        stateCell(service),
        service.startup,
        service.accepting ? 'yes' : 'no',
        sessionsCell(service),
        String(service.forced),
        sinceCell(service, now),
        i === 0 ? (member.readyForOffline ? 'yes' : 'no') : '',
      ]);
    });
  }
  const header = [
    'MEMBER',
    'ADDRESS',
    'AGENT',
    'SERVICE',
    'STATE',
    'STARTUP',
    'ACCEPTING',
    'SESSIONS',
    'FORCED',
    'SINCE',
    'READY FOR OFFLINE',
  ];
  return formatTable(
    header,
    rows.map((row) => row.map(safeText)),
    {
      right: [8],
      paint: (text, row, column) => {
        const { service, agentUp } = look[row]!;
        if (column === 2) return paintText(text, agentUp ? null : 'red', colour);
        if (column === 4) return paintText(text, stateColour(service, agentUp), colour);
        if (column === 8) return paintText(text, service.forced > 0 ? 'red' : null, colour);
        return text;
      },
    },
  );
}

/**
 * For 80 columns: a line per member (address, agent, ready for offline), then its services with state,
 * sessions, forced and since; the startup type only where it is not automatic.
 */
function compactTable(status: PoolStatus, now: number, colour: boolean): string {
  const blocks = status.members.map((member) => {
    const agentUp = member.agent === 'up';
    const head =
      `${safeText(member.id)}  ${member.address}  ` +
      `${paintText(`agent ${member.agent}`, agentUp ? null : 'red', colour)}  ` +
      `ready for offline: ${member.readyForOffline ? 'yes' : 'no'}`;
    const rows = member.services.map((service) =>
      [
        service.id + (service.startup === 'automatic' ? '' : ` (${service.startup})`),
        stateCell(service),
        compactSessions(service),
        String(service.forced),
        sinceCell(service, now),
      ].map(safeText),
    );
    const table = formatTable(['SERVICE', 'STATE', 'SESSIONS', 'FORCED', 'SINCE'], rows, {
      indent: '  ',
      right: [2, 3],
      paint: (text, row, column) => {
        const service = member.services[row]!;
        if (column === 1) return paintText(text, stateColour(service, agentUp), colour);
        if (column === 3) return paintText(text, service.forced > 0 ? 'red' : null, colour);
        return text;
      },
    });
    return `${head}\n${table}`;
  });
  return blocks.join('\n');
}

/** `3`, or `3 (2 ws)` where WebSockets are open: the sessions a drain of a web service waits for. */
function compactSessions(service: ServiceView): string {
  const ws = service.sessionsByKind?.['websockets'] ?? 0;
  return ws > 0 ? `${service.sessions} (${ws} ws)` : String(service.sessions);
}

/** `2026-12-01 11:02:03 UTC`. */
function utc(at: number): string {
  return `${new Date(at).toISOString().replace('T', ' ').slice(0, 19)} UTC`;
}

/**
 * Who paused or stopped what, when and why, below the table (one line for a member whose services share
 * it), and each service's last error; escaped (text from the store).
 */
function statusNotes(status: PoolStatus): string[] {
  const notes: string[] = [];
  for (const member of status.members) {
    const groups = new Map<string, { services: string[]; text: string }>();
    for (const service of member.services) {
      if (service.intent === 'running' && !service.pending) continue;
      if (service.intentBy === 'config' && !service.pending) continue;
      const when = service.intentAt === null ? '' : ` since ${utc(service.intentAt)}`;
      const by = service.intentBy ? ` by ${safeText(service.intentBy)}` : '';
      const why = service.reason ? `, reason: ${safeText(service.reason)}` : '';
      const text = `${service.intent}${by}${when}${why}${service.pending ? ' (not applied yet)' : ''}`;
      const group = groups.get(text) ?? { services: [], text };
      group.services.push(service.id);
      groups.set(text, group);
    }
    for (const { services, text } of groups.values()) {
      const all = services.length === member.services.length && services.length > 1;
      notes.push(`${member.id}${all ? '' : `/${services.join(', ')}`}: ${text}`);
    }
    for (const service of member.services) {
      if (service.error) notes.push(`${member.id}/${service.id}: error: ${safeText(service.error)}`);
      // Issue 16, fault 4: a wiped or replaced store; the agent kept what its local copy said.
      if (service.kept)
        notes.push(
          `warning: ${member.id}/${service.id} is ${service.intent} only because its agent kept it from its local copy (the store ` +
            `was wiped or replaced): ebb resume ${member.id} --service ${service.id} to resume, or ` +
            `ebb ${service.intent === 'stopped' ? 'stop' : 'pause'} ${member.id} --service ${service.id} to adopt it`,
        );
    }
  }
  return notes;
}
