import { EbbError, ExitCode, TimeoutError, UnauthorisedError } from '../core/index.ts';

/** The CLI's side of the HTTP API: JSON in, JSON out, API errors turned back into EbbErrors. */
export class ApiClient {
  readonly baseUrl: string;
  private readonly token: string | undefined;

  constructor(baseUrl: string, token?: string) {
    this.baseUrl = baseUrl.replace(/\/$/, '');
    this.token = token;
  }

  get<T>(path: string): Promise<T> {
    return this.request<T>('GET', path);
  }

  post<T>(path: string, body: Record<string, unknown>): Promise<T> {
    return this.request<T>('POST', path, body);
  }

  private async request<T>(method: string, path: string, body?: Record<string, unknown>): Promise<T> {
    let response: Response;
    try {
      response = await fetch(`${this.baseUrl}${path}`, {
        method,
        headers: {
          ...(body ? { 'content-type': 'application/json' } : {}),
          ...(this.token ? { authorization: `Bearer ${this.token}` } : {}),
        },
        ...(body ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(60_000),
      });
    } catch (err) {
      const inner = (err as { cause?: { code?: string; message?: string } }).cause;
      const cause = inner?.code ?? inner?.message ?? (err as Error).name;
      if (cause === 'TimeoutError')
        throw new TimeoutError(`the Ebb API at ${this.baseUrl} did not answer in 60 s`);
      throw new EbbError(
        'EBB_API_UNREACHABLE',
        `cannot reach the Ebb API at ${this.baseUrl} (${cause}); is \`ebb up\` or \`ebb api\` running? (--api URL or EBB_API)`,
      );
    }
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      throw new EbbError(
        'EBB_BAD_RESPONSE',
        `the API answered ${response.status} with something that is not JSON`,
      );
    }
    if (response.ok) return parsed as T;
    const error = (
      parsed as { error?: { code?: string; message?: string; details?: Record<string, unknown> } }
    )?.error;
    const code = error?.code ?? 'EBB_HTTP_ERROR';
    const message = error?.message ?? `HTTP ${response.status}`;
    if (response.status === 401 || response.status === 403)
      throw new UnauthorisedError(message, response.status);
    throw new EbbError(code, message, {
      httpStatus: response.status,
      exitCode: exitCodeFor(code, response.status),
      ...(error?.details ? { details: error.details } : {}),
    });
  }
}

function exitCodeFor(code: string, status: number): ExitCode {
  if (code === 'EBB_GUARD_REFUSED') return ExitCode.guardRefused;
  if (code === 'EBB_TIMEOUT') return ExitCode.timeout;
  if (status === 400 || status === 404) return ExitCode.usage;
  return ExitCode.error;
}
