import { pino, type Logger } from 'pino';

/** Structured logs on stderr (JSON lines); EBB_LOG_LEVEL sets the level (default warn). */
export function createLogger(): Logger {
  return pino(
    { level: process.env.EBB_LOG_LEVEL ?? 'warn', base: { pid: process.pid } },
    pino.destination(2),
  );
}
