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

const tokenKey = 'ebb-token';

/** The API token this tab uses, when the API asks for one (SPEC §8); kept for the session only. */
export function apiToken(): string | null {
  return sessionStorage.getItem(tokenKey);
}

export function setApiToken(token: string | null): void {
  if (token) sessionStorage.setItem(tokenKey, token);
  else sessionStorage.removeItem(tokenKey);
}

/** The event stream's URL; EventSource cannot send headers, so the token rides in the query. */
export function eventsUrl(): string {
  const token = apiToken();
  return token ? `/v1/events?access_token=${encodeURIComponent(token)}` : '/v1/events';
}

/** Asks for a token until the API accepts one (or the operator cancels). */
export async function ensureToken(): Promise<void> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const token = apiToken();
    const res = await fetch('/v1/pool', { headers: token ? { authorization: `Bearer ${token}` } : {} }).catch(
      () => null,
    );
    if (!res || (res.status !== 401 && res.status !== 403)) return;
    const entered = window.prompt(
      attempt === 0 ? 'Ebb API token' : 'That token was not accepted. Ebb API token',
    );
    if (entered === null) return;
    setApiToken(entered.trim());
  }
}

async function call<T>(path: string, init: RequestInit = {}): Promise<T> {
  let res: Response;
  const token = apiToken();
  try {
    res = await fetch(path, {
      ...init,
      headers: {
        accept: 'application/json',
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...init.headers,
      },
    });
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
