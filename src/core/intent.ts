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

/**
 * `by` of an intent an agent kept from its local copy because the store had been wiped or replaced (its
 * identity changed) and no longer held it (issue 16, fault 4). Such a pause or stop stays until an
 * operator decides: `ebb resume`, or `ebb pause` (`ebb stop`) again to adopt it as the new store's own.
 */
export const keptIntentBy = 'agent-kept';

export function isKeptIntent(intent: ServiceIntent): boolean {
  return intent.by === keptIntentBy;
}

/** The local intent, as the agent writes it into a store that replaced the one it came from. */
export function keptIntent(
  local: ServiceIntent,
  copyStore: string | null,
  store: string,
  now: number,
): ServiceIntent {
  const from = copyStore === null ? 'an earlier store' : `store ${copyStore}`;
  return {
    ...local,
    by: keptIntentBy,
    at: now,
    reason:
      `kept ${local.run} by its agent: ${from} was replaced by store ${store}, which did not hold it` +
      (local.reason ? ` (was: ${local.reason})` : ''),
  };
}
