import { useEffect, useRef, useState } from 'preact/hooks';
import {
  availability,
  commandFor,
  explanation,
  requestBody,
  sessionsAt,
  targetLabel,
  verbs,
  type ActionRequest,
  type DialogFields,
} from './actions.ts';
import { ApiError, forbiddenText, runCommand } from './api-client.ts';
import { plural } from './format.ts';
import type { CommandResult } from './types.ts';

interface Props {
  request: ActionRequest | null;
  onClose: () => void;
  onDone: (request: ActionRequest, result: CommandResult) => void;
}

const durationPattern = /^\d+(\.\d+)?(ms|s|m|h|d)$/;

const blankFields = (request: ActionRequest): DialogFields => ({
  reason: '',
  deadline: '',
  graceful: true,
  force: false,
  startup: request.target.service?.startup ?? 'automatic',
});

/**
 * Confirms one action, naming its target, in a modal `<dialog>`: focus moves into it, stays in it, and
 * goes back to the button that opened it; Escape closes it. A refusal (the capacity guard's 409, an
 * invalid transition) is shown in the dialog, which stays open so the operator can read it or override.
 */
export function ActionDialog({ request, onClose, onDone }: Props) {
  const dialog = useRef<HTMLDialogElement>(null);
  const opener = useRef<HTMLElement | null>(null);
  const busy = useRef(false);

  useEffect(() => {
    const element = dialog.current;
    if (!element) return;
    if (request && !element.open) {
      opener.current = document.activeElement instanceof HTMLElement ? document.activeElement : null;
      element.showModal();
      element.querySelector<HTMLElement>('[data-autofocus]')?.focus();
    } else if (!request && element.open) {
      element.close();
    }
  }, [request]);

  const restoreFocus = () => {
    const target = opener.current;
    opener.current = null;
    if (target?.isConnected && !(target as HTMLButtonElement).disabled) return target.focus();
    // The button may be disabled now (nothing left to pause): go to its member instead.
    const member = target?.closest('[data-member]')?.querySelector<HTMLElement>('[data-focus-target]');
    member?.focus();
  };

  return (
    <dialog
      ref={dialog}
      class="dialog"
      aria-labelledby="dialog-title"
      aria-describedby="dialog-description"
      onCancel={(e) => busy.current && e.preventDefault()}
      onKeyDown={trapTab}
      onClose={() => {
        restoreFocus();
        onClose();
      }}
    >
      {request && (
        <DialogBody
          key={`${request.kind}:${targetLabel(request.target)}`}
          request={request}
          busy={busy}
          close={() => dialog.current?.close()}
          onDone={(result) => {
            onDone(request, result);
            dialog.current?.close();
          }}
        />
      )}
    </dialog>
  );
}

const focusable =
  'button:not([disabled]), input:not([disabled]), select:not([disabled]), textarea:not([disabled]), a[href], [tabindex]:not([tabindex="-1"])';

/**
 * Keeps Tab inside the dialog (operator audit #42): a modal `<dialog>` alone lets focus leave to the page
 * (BODY) or the browser once before it comes back. From the last control Tab goes to the first, and
 * Shift+Tab from the first to the last.
 */
function trapTab(e: KeyboardEvent): void {
  if (e.key !== 'Tab') return;
  const dialog = e.currentTarget as HTMLDialogElement;
  const items = [...dialog.querySelectorAll<HTMLElement>(focusable)].filter((el) => el.offsetParent !== null);
  if (items.length === 0) return;
  const first = items[0]!;
  const last = items[items.length - 1]!;
  const active = document.activeElement;
  if (e.shiftKey && (active === first || !dialog.contains(active))) {
    e.preventDefault();
    last.focus();
  } else if (!e.shiftKey && (active === last || !dialog.contains(active))) {
    e.preventDefault();
    first.focus();
  }
}

interface BodyProps {
  request: ActionRequest;
  busy: { current: boolean };
  close: () => void;
  onDone: (result: CommandResult) => void;
}

function DialogBody({ request, busy: busyRef, close, onDone }: BodyProps) {
  const [fields, setFields] = useState<DialogFields>(blankFields(request));
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const [guardRefused, setGuardRefused] = useState(false);

  const { kind, target } = request;
  const label = targetLabel(target);
  const verb = verbs[kind];
  const set = <K extends keyof DialogFields>(key: K, value: DialogFields[K]) =>
    setFields((f) => ({ ...f, [key]: value }));
  const deadlineShown = kind === 'pause' || kind === 'drain' || (kind === 'stop' && fields.graceful);
  const deadlineBad =
    deadlineShown && fields.deadline.trim() !== '' && !durationPattern.test(fields.deadline.trim());
  const sessions = sessionsAt(target);
  const destructive = kind === 'stop' && !fields.graceful;
  const { enabled } = availability(kind, target);

  const submit = async (e: Event) => {
    e.preventDefault();
    if (busy || deadlineBad) return;
    setBusy(true);
    busyRef.current = true;
    setError(null);
    try {
      const result = await runCommand(target.member.id, commandFor(kind), requestBody(request, fields));
      busyRef.current = false;
      onDone(result);
    } catch (err) {
      const apiError = err instanceof ApiError ? err : new ApiError(0, 'EBB_CONSOLE', (err as Error).message);
      setError(apiError);
      if (apiError.code === 'EBB_GUARD_REFUSED') setGuardRefused(true);
      busyRef.current = false;
      setBusy(false);
    }
  };

  return (
    <form onSubmit={submit} noValidate>
      <h2 id="dialog-title">{kind === 'startup' ? `Startup type of ${label}` : `${verb} ${label}?`}</h2>
      <div id="dialog-description" class="dialog-text">
        {explanation(request, fields).map((line) => (
          <p key={line}>{line}</p>
        ))}
        {sessions > 0 && (kind === 'pause' || kind === 'drain' || kind === 'stop') && (
          <p class={destructive ? 'note note-danger' : 'note'}>
            {plural(sessions, 'session')} in progress{' '}
            {destructive ? 'will be ended now.' : 'will be left to end.'}
          </p>
        )}
        {!enabled && kind !== 'startup' && (
          <p class="note">Nothing to change right now; the command will report that.</p>
        )}
      </div>

      {kind === 'startup' && (
        <label class="field">
          <span>Startup type</span>
          <select
            data-autofocus
            value={fields.startup}
            onChange={(e) => set('startup', (e.currentTarget as HTMLSelectElement).value)}
          >
            <option value="automatic">automatic — starts with its agent</option>
            <option value="manual">manual — stays stopped until started</option>
            <option value="disabled">disabled — cannot be started</option>
          </select>
        </label>
      )}
      {kind === 'stop' && (
        <label class="check">
          <input
            type="checkbox"
            checked={fields.graceful}
            onChange={(e) => set('graceful', (e.currentTarget as HTMLInputElement).checked)}
          />
          <span>Graceful: let the sessions in progress end first</span>
        </label>
      )}
      <label class="field">
        <span>
          Reason <small>kept in the audit log</small>
        </span>
        <input
          type="text"
          maxLength={500}
          placeholder="e.g. patching KB5031234"
          value={fields.reason}
          data-autofocus={kind === 'startup' ? undefined : true}
          onInput={(e) => set('reason', (e.currentTarget as HTMLInputElement).value)}
        />
      </label>
      {deadlineShown && (
        <label class="field">
          <span>
            Deadline <small>optional: sessions left then are ended and counted as forced</small>
          </span>
          <input
            type="text"
            placeholder="e.g. 30m"
            value={fields.deadline}
            aria-invalid={deadlineBad}
            aria-describedby={deadlineBad ? 'deadline-error' : undefined}
            onInput={(e) => set('deadline', (e.currentTarget as HTMLInputElement).value)}
          />
          {deadlineBad && (
            <span id="deadline-error" class="field-error">
              A duration such as 90s, 30m or 2h.
            </span>
          )}
        </label>
      )}

      {error && (
        <div
          role="alert"
          class={error.code === 'EBB_GUARD_REFUSED' ? 'alert alert-warn' : 'alert alert-danger'}
        >
          <strong>{errorTitle(error)}</strong>
          <p>{errorText(error, kind)}</p>
        </div>
      )}
      {guardRefused && (
        <label class="check check-warn">
          <input
            type="checkbox"
            checked={fields.force}
            onChange={(e) => set('force', (e.currentTarget as HTMLInputElement).checked)}
          />
          <span>Override the capacity guard (audited as forced)</span>
        </label>
      )}

      <div class="dialog-actions">
        <button type="button" class="btn" onClick={close} disabled={busy}>
          Cancel
        </button>
        <button
          type="submit"
          class={destructive || fields.force ? 'btn btn-danger' : 'btn btn-primary'}
          disabled={busy || deadlineBad || (guardRefused && !fields.force)}
        >
          {busy ? `${verb}…` : kind === 'startup' ? `Set ${label} to ${fields.startup}` : `${verb} ${label}`}
        </button>
      </div>
    </form>
  );
}

/** The API's message, except for a 403, which says which role the action needs (SPEC §8). */
function errorText(error: ApiError, kind: ActionRequest['kind']): string {
  if (error.code === 'EBB_FORBIDDEN')
    return forbiddenText(error, kind === 'startup' ? 'set a startup type' : kind);
  if (error.code === 'EBB_UNAUTHENTICATED')
    return `${error.message}. Use Forget token at the top and enter one that is valid.`;
  return error.message;
}

function errorTitle(error: ApiError): string {
  switch (error.code) {
    case 'EBB_GUARD_REFUSED':
      return 'Refused by the capacity guard';
    case 'EBB_INVALID_TRANSITION':
      return 'Not possible in the current state';
    case 'EBB_BAD_REQUEST':
      return 'The request was not valid';
    case 'EBB_UNREACHABLE':
      return 'The API did not answer';
    case 'EBB_FORBIDDEN':
      return 'Not allowed with your token (403)';
    case 'EBB_UNAUTHENTICATED':
      return 'Your token was not accepted (401)';
    default:
      return `Failed (${error.code})`;
  }
}
