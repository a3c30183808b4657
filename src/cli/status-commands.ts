import type { Command } from 'commander';
import type { AuditRecord, PoolStatus } from '../control/index.ts';
import { apiClient, globals, printJson } from './cli-context.ts';
import { formatTable } from './format-table.ts';
import { safeText } from './safe-text.ts';

export function registerStatusCommands(program: Command): void {
  program
    .command('status')
    .description(
      'the pool: members × services with state, startup type, accepting, sessions, drained, forced',
    )
    .action(async (_opts, command: Command) => {
      const options = globals(command);
      const status = await apiClient(options).get<PoolStatus>('/v1/pool');
      if (options.json) return printJson(status);
      process.stdout.write(`${renderStatus(status)}\n`);
    });

  program
    .command('audit')
    .description('who did what, when, why, with what result')
    .option('--limit <n>', 'how many records', '50')
    .action(async (opts: { limit: string }, command: Command) => {
      const options = globals(command);
      const records = await apiClient(options).get<AuditRecord[]>(
        `/v1/audit?limit=${Number(opts.limit) || 50}`,
      );
      if (options.json) return printJson(records);
      process.stdout.write(`${renderAudit(records)}\n`);
    });
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
      r.result + (r.force ? ' (forced)' : ''),
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

export function renderStatus(status: PoolStatus): string {
  const rows: string[][] = [];
  for (const member of status.members) {
    member.services.forEach((service, i) => {
      rows.push([
        i === 0 ? member.id : '',
        i === 0 ? member.address : '',
        i === 0 ? member.agent : '',
        service.id,
        service.state + (service.error ? ' (error)' : ''),
        service.startup,
        service.accepting ? 'yes' : 'no',
        sessionsCell(service),
        service.state === 'paused' || service.state === 'stopping' ? (service.drained ? 'yes' : 'no') : '-',
        String(service.forced),
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
    'DRAINED',
    'FORCED',
    'READY FOR OFFLINE',
  ];
  const notes = statusNotes(status);
  const cells = rows.map((row) => row.map(safeText));
  return `pool ${status.pool.name} (${status.pool.fqdn}), min accepting ${status.pool.minAccepting}\n${formatTable(header, cells)}${notes.length > 0 ? `\n\n${notes.join('\n')}` : ''}`;
}

/** Why services are not running, and what went wrong, below the table; escaped (text from the store). */
function statusNotes(status: PoolStatus): string[] {
  const notes: string[] = [];
  for (const member of status.members) {
    for (const service of member.services) {
      const target = `${member.id}/${service.id}`;
      if (service.reason && service.intent !== 'running')
        notes.push(`${target}: ${service.intent}, reason: ${safeText(service.reason)}`);
      if (service.error) notes.push(`${target}: error: ${safeText(service.error)}`);
    }
  }
  return notes;
}
