import { useState } from 'preact/hooks';
import { apiToken, checkAccess, setApiToken } from './api-client.ts';

/**
 * Asked for when the API answers 401 (SPEC §8: `api.tokens` configured). The token is checked against
 * `GET /v1/pool` before it is kept, and kept in this tab's sessionStorage only.
 */
export function TokenPrompt({ onAccepted }: { onAccepted: () => void }) {
  const [value, setValue] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(
    apiToken() ? 'The token this tab had is no longer accepted (401).' : null,
  );

  const submit = async (e: Event) => {
    e.preventDefault();
    const token = value.trim();
    if (!token || busy) return;
    setBusy(true);
    setError(null);
    setApiToken(token);
    const access = await checkAccess();
    setBusy(false);
    if (access === 'ok') {
      setValue('');
      onAccepted();
      return;
    }
    setApiToken(null);
    setError(
      access === 'needs-token'
        ? 'That token was not accepted (401). Check it and try again.'
        : 'The API did not answer; try again.',
    );
  };

  return (
    <section class="card token-card" aria-labelledby="token-title">
      <form class="token-form" onSubmit={submit} noValidate>
        <h2 id="token-title">This pool's API needs a token</h2>
        <p class="muted">
          The API answered 401: it has <code>api.tokens</code> configured. A viewer token shows the pool; an
          operator token may also pause, resume and drain; an admin token may do everything. The token is kept
          in this tab only, until it is closed or you forget the token.
        </p>
        <label class="field">
          <span>API token</span>
          <input
            type="password"
            name="token"
            autocomplete="off"
            spellcheck={false}
            autoFocus
            value={value}
            aria-invalid={error !== null}
            aria-describedby={error ? 'token-error' : undefined}
            onInput={(e) => setValue((e.currentTarget as HTMLInputElement).value)}
          />
        </label>
        {error && (
          <p id="token-error" role="alert" class="alert alert-danger">
            {error}
          </p>
        )}
        <div class="dialog-actions">
          <button type="submit" class="btn btn-primary" disabled={busy || value.trim() === ''}>
            {busy ? 'Checking…' : 'Use token'}
          </button>
        </div>
      </form>
    </section>
  );
}
