import type { ServiceIntent } from '../core/index.ts';

/**
 * What a service does when its agent starts (SPEC §3). The source warns that a paused server restarted
 * with default settings takes connections at once; in Ebb a pause survives unless `onRestart: resume`.
 *
 * - disabled: stays stopped.
 * - manual: stays stopped until someone starts or resumes it.
 * - automatic: starts; a paused intent comes back paused (or running with `onRestart: resume`).
 */
export function bootIntent(stored: ServiceIntent, onRestart: 'keep' | 'resume', now: number): ServiceIntent {
  const by = 'agent-boot';
  if (stored.startup === 'disabled' || stored.startup === 'manual') {
    if (stored.run === 'stopped') return stored;
    return {
      ...stored,
      run: 'stopped',
      graceful: false,
      deadlineAt: null,
      by,
      at: now,
      reason: `startup ${stored.startup}`,
    };
  }
  if (stored.run === 'paused') {
    if (onRestart === 'keep') return stored;
    return { ...stored, run: 'running', deadlineAt: null, by, at: now, reason: 'onRestart: resume' };
  }
  if (stored.run === 'stopped') {
    return {
      ...stored,
      run: 'running',
      graceful: false,
      deadlineAt: null,
      by,
      at: now,
      reason: 'startup automatic',
    };
  }
  return stored;
}
