import type { ServiceIntent, StartupType } from './lifecycle.ts';

/** The intent of a service nobody has commanded yet: what its startup type says. */
export function defaultIntent(startup: StartupType, at = 0): ServiceIntent {
  return {
    run: startup === 'automatic' ? 'running' : 'stopped',
    graceful: false,
    deadlineAt: null,
    startup,
    reason: '',
    by: 'config',
    at,
  };
}

/** Parses an intent read from the store or a local copy; null when it is not one. */
export function parseIntent(text: string): ServiceIntent | null {
  try {
    const value = JSON.parse(text) as Partial<ServiceIntent>;
    if (value.run !== 'running' && value.run !== 'paused' && value.run !== 'stopped') return null;
    if (value.startup !== 'automatic' && value.startup !== 'manual' && value.startup !== 'disabled')
      return null;
    return {
      run: value.run,
      graceful: value.graceful === true,
      deadlineAt: typeof value.deadlineAt === 'number' ? value.deadlineAt : null,
      startup: value.startup,
      reason: typeof value.reason === 'string' ? value.reason : '',
      by: typeof value.by === 'string' ? value.by : '',
      at: typeof value.at === 'number' ? value.at : 0,
    };
  } catch {
    return null;
  }
}
