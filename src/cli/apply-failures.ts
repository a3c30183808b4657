import type { CommandResult } from '../control/index.ts';
import { EbbError, ExitCode } from '../core/index.ts';
import { safeText } from './safe-text.ts';

/**
 * A command the member's agent could not apply (SPEC §2: `pause` returns only once the listener
 * refuses): exit 1, naming each failure. The intent stays stored and the agent keeps trying.
 */
export function throwIfNotApplied(result: CommandResult): void {
  if (result.failures.length === 0) return;
  const lines = result.failures.map(
    (f) => `${result.member}/${f.service}: not applied: ${safeText(f.message)} (${f.code})`,
  );
  throw new EbbError('EBB_APPLY_FAILED', `${lines.join('; ')}; the agent keeps trying`, {
    exitCode: ExitCode.error,
    // With --json this is the whole output: the error, and the command's result beside it.
    details: { failures: result.failures, result },
  });
}
