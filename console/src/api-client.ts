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

export type CommandName = 'pause' | 'resume' | 'start' | 'stop' | 'startup' | 'drain';

export interface CommandBody {
  service?: string;
  reason?: string;
  deadline?: string;
  graceful?: boolean;
  force?: boolean;
  startup?: string;
}

const tokenKey = 'ebb-token';

/**
 * The API token this tab uses, when the API asks for one (SPEC §8). Kept in sessionStorage: it ends with
 * the tab, is never written to localStorage, and never appears in the page's address.
 */
export function apiToken(): string | null {
  return sessionStorage.getItem(tokenKey);
}

export function setApiToken(token: string | null): void {
  if (token) sessionStorage.setItem(tokenKey, token);
  else sessionStorage.removeItem(tokenKey);
}

/**
 * The event stream's URL; EventSource cannot send headers, so the token rides in the query
 * (`access_token`, docs/api.md). Read at each (re)connection, so a new token is used at once.
 */
export function eventsUrl(): string {
  const token = apiToken();
  return token ? `/v1/events?access_token=${encodeURIComponent(token)}` : '/v1/events';
}

/** What `GET /v1/pool` says about this tab's token. */
export type Access = 'ok' | 'needs-token' | 'unreachable';

/** Asks the API whether this tab may read the pool; an EventSource that fails cannot tell why. */
export async function checkAccess(): Promise<Access> {
  const token = apiToken();
  const res = await fetch('/v1/pool', {
    headers: { accept: 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
  }).catch(() => null);
  if (!res) return 'unreachable';
  if (res.status === 401) return 'needs-token';
  return res.ok ? 'ok' : 'unreachable';
}

/**
 * A 403 in words: `Your token (viewer) may not stop: needs admin.` The API's message names both roles
 * (`token "ops" has role viewer; this needs admin`); without them, its message is shown as it is.
 */
export function forbiddenText(error: ApiError, action: string): string {
  const roles = /has role (\w+); this needs (\w+)/.exec(error.message);
  if (!roles) return error.message;
  return `Your token (${roles[1]}) may not ${action}: needs ${roles[2]}.`;
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
