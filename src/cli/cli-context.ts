import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { loadConfigFile, type PoolConfig } from '../config/index.ts';
import { EbbError, ExitCode } from '../core/index.ts';
import { ApiClient } from './api-client.ts';
import { safeText } from './safe-text.ts';

export interface GlobalOptions {
  config?: string;
  api?: string;
  token?: string;
  json?: boolean;
}

export function globals(command: Command): GlobalOptions {
  return command.optsWithGlobals<GlobalOptions>();
}

/** The config named by --config / EBB_CONFIG / an argument, or ./ebb.yaml when it exists. */
export function findConfigPath(options: GlobalOptions, argument?: string): string | undefined {
  return argument ?? options.config ?? (existsSync('ebb.yaml') ? 'ebb.yaml' : undefined);
}

export function requireConfig(options: GlobalOptions, argument?: string): PoolConfig {
  const path = findConfigPath(options, argument);
  if (!path) {
    throw new EbbError('EBB_NO_CONFIG', 'no configuration: pass a file, --config FILE, or set EBB_CONFIG', {
      exitCode: ExitCode.usage,
    });
  }
  return loadConfigFile(path);
}

/**
 * The API's base URL from `--api` / `EBB_API`: an http(s) URL, else exit 2 (operator audit #30). A
 * trailing `/v1` (the routes' prefix, as in the OpenAPI document) is dropped rather than doubled.
 */
export function apiBaseUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    url = new URL('invalid:');
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.hostname === '') {
    throw new EbbError(
      'EBB_USAGE',
      `--api: ${JSON.stringify(safeText(text))} is not an http(s) URL (e.g. http://127.0.0.1:7070; env EBB_API)`,
      { exitCode: ExitCode.usage },
    );
  }
  if (url.search !== '' || url.hash !== '') url = new URL(url.origin + url.pathname);
  return url.href.replace(/\/+$/, '').replace(/\/v1$/, '');
}

/** --api / EBB_API, else the config's api.listen, else the default address. */
export function apiClient(options: GlobalOptions): ApiClient {
  if (options.api) return new ApiClient(apiBaseUrl(options.api), options.token);
  const path = findConfigPath(options);
  const listen = path ? loadConfigFile(path).api.listen : '127.0.0.1:7070';
  return new ApiClient(`http://${listen}`, options.token);
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}
