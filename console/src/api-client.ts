import type { AuditRecord, CommandResult } from './types.ts';

/** An API error answer: `{"error": {"code", "message", "details"}}` with its HTTP status. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

export type CommandName = 'pause' | 'resume' | 'start' | 'stop' | 'startup';

export interface CommandBody {
  service?: string;
  reason?: string;
  deadline?: string;
  graceful?: boolean;
  force?: boolean;
  startup?: string;
}

async function call<T>(path: string, init: RequestInit = {}): Promise<T> {
  let res: Response;
  try {
    res = await fetch(path, { ...init, headers: { accept: 'application/json', ...init.headers } });
  } catch (err) {
    throw new ApiError(0, 'EBB_UNREACHABLE', `the API did not answer: ${(err as Error).message}`);
  }
  const text = await res.text();
  let body: unknown = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    // not JSON: reported below
  }
  if (!res.ok) {
    const error = (body as { error?: { code?: string; message?: string } } | null)?.error;
    throw new ApiError(
      res.status,
      error?.code ?? `HTTP_${res.status}`,
      error?.message ?? (text || res.statusText),
    );
  }
  return body as T;
}

export function runCommand(member: string, command: CommandName, body: CommandBody): Promise<CommandResult> {
  return call(`/v1/members/${encodeURIComponent(member)}/${command}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

export function fetchAudit(limit = 50): Promise<AuditRecord[]> {
  return call(`/v1/audit?limit=${limit}`);
}
