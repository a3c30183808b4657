import { Option } from 'commander';
import { pino, type DestinationStream, type Logger } from 'pino';
import { BadRequestError } from '../core/index.ts';
import { safeText } from './safe-text.ts';

export const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof logLevels)[number];
export const logFormats = ['pretty', 'json'] as const;
export type LogFormat = (typeof logFormats)[number];

export interface LogSettings {
  level: LogLevel;
  format: LogFormat;
}

/** `--log-format` (env `EBB_LOG_FORMAT`) for the commands that run something (`up`, `agent`, `api`, `dns`). */
export function logFormatOption(): Option {
  return new Option(
    '--log-format <format>',
    'log lines on stderr: pretty (human lines) or json (one object a line); default pretty on a terminal, json otherwise',
  )
    .choices(logFormats)
    .env('EBB_LOG_FORMAT');
}

/**
 * The level from `EBB_LOG_LEVEL` (default warn), the format from `--log-format` / `EBB_LOG_FORMAT`
 * (default: pretty when stderr is a terminal, json otherwise, for journald and log shippers). A bad value
 * is a usage error naming the variable, before anything starts.
 */
export function logSettings(env: NodeJS.ProcessEnv, format: string | undefined, isTTY: boolean): LogSettings {
  const level =
    env['EBB_LOG_LEVEL'] === undefined || env['EBB_LOG_LEVEL'] === '' ? 'warn' : env['EBB_LOG_LEVEL'];
  if (!(logLevels as readonly string[]).includes(level)) {
    throw new BadRequestError([
      {
        path: 'EBB_LOG_LEVEL',
        message: `"${safeText(level)}" is not a log level (${logLevels.join(', ')})`,
      },
    ]);
  }
  const chosen = format ?? (isTTY ? 'pretty' : 'json');
  if (!(logFormats as readonly string[]).includes(chosen)) {
    throw new BadRequestError([
      {
        path: '--log-format',
        message: `"${safeText(chosen)}" is not a log format (${logFormats.join(', ')})`,
      },
    ]);
  }
  return { level: level as LogLevel, format: chosen as LogFormat };
}

/** Logs on stderr, as `settings` say. */
export function createLogger(settings: LogSettings, out: NodeJS.WritableStream = process.stderr): Logger {
  if (settings.format === 'json') {
    return pino({ level: settings.level, base: { pid: process.pid } }, pino.destination(2));
  }
  return pino({ level: settings.level, base: null }, prettyStream(out));
}

const levelNames: Record<number, string> = {
  10: 'trace',
  20: 'debug',
  30: 'info',
  40: 'warn',
  50: 'error',
  60: 'fatal',
};

/**
 * One human line per log record, laid out like `ebb up`'s event lines (time, then a padded code column)
 * so the two read as one journal: `12:00:01.250 warn             store unreachable …  member=fe01`.
 */
export function prettyLine(json: string): string {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return safeText(json.trimEnd());
  }
  const { level, time, msg, ...fields } = record;
  const facts = Object.entries(fields).filter(([k]) => k !== 'pid' && k !== 'hostname');
  const at = typeof time === 'number' ? new Date(time).toISOString().slice(11, 23) : '';
  const name = levelNames[level as number] ?? String(level);
  const rest = facts
    .filter(([, v]) => v !== null && v !== undefined)
    .map(([k, v]) => `${k}=${factText(v)}`)
    .join(' ');
  return safeText(`${at} ${name.padEnd(16)} ${String(msg ?? '')}${rest ? `  ${rest}` : ''}`);
}

function factText(value: unknown): string {
  if (typeof value !== 'object') return String(value);
  // pino's error serializer: the message says it; the stack is for --log-format json.
  const message = (value as { message?: unknown }).message;
  if (typeof message === 'string') return JSON.stringify(message);
  return JSON.stringify(value);
}

function prettyStream(out: NodeJS.WritableStream): DestinationStream {
  return { write: (line: string) => void out.write(`${prettyLine(line)}\n`) };
}
