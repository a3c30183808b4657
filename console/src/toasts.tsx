export interface Toast {
  id: number;
  tone: 'ok' | 'warn' | 'danger';
  title: string;
  text: string;
}

/** Outcomes of commands, announced politely to screen readers and gone after a few seconds. */
export function Toasts({ toasts, onDismiss }: { toasts: Toast[]; onDismiss: (id: number) => void }) {
  return (
    <div class="toasts" role="status" aria-live="polite">
      {toasts.map((t) => (
        <div key={t.id} class={`toast toast-${t.tone}`}>
          <div>
            <strong>{t.title}</strong>
            <p>{t.text}</p>
          </div>
          <button type="button" class="toast-close" aria-label="Dismiss" onClick={() => onDismiss(t.id)}>
            ×
          </button>
        </div>
      ))}
    </div>
  );
}
