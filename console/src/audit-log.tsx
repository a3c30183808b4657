import { dateTime } from './format.ts';
import type { AuditRecord } from './types.ts';

interface Props {
  records: AuditRecord[] | null;
  error: string | null;
}

/** `GET /v1/audit`: who did what, when, why, with what result (SPEC §8), newest first. */
export function AuditLog({ records, error }: Props) {
  if (error) return <p class="alert alert-danger">Could not read the audit log: {error}</p>;
  if (!records) return <p class="muted">Loading…</p>;
  if (records.length === 0) return <p class="muted empty">No commands yet.</p>;
  return (
    <div class="table-scroll">
      <table class="audit-table">
        <caption class="visually-hidden">Audit log, newest first</caption>
        <thead>
          <tr>
            <th scope="col">Time</th>
            <th scope="col">By</th>
            <th scope="col">Action</th>
            <th scope="col">Target</th>
            <th scope="col">Reason</th>
            <th scope="col">Result</th>
            <th scope="col">Detail</th>
          </tr>
        </thead>
        <tbody>
          {records.map((r) => (
            <tr key={r.id} data-audit-result={r.result}>
              <td class="mono nowrap">{dateTime(r.at)}</td>
              <td>{r.by}</td>
              <td>
                {r.action}
                {r.force && (
                  <span
                    class="pill pill-danger pill-tiny"
                    title="--force: the capacity guard was overridden (not sessions forced)"
                  >
                    guard overridden
                  </span>
                )}
              </td>
              <td class="mono nowrap">{r.service ? `${r.member}/${r.service}` : r.member}</td>
              <td class="reason">{r.reason || <span class="muted">—</span>}</td>
              <td>
                <span
                  class={`pill pill-${r.result === 'ok' ? 'ok' : r.result === 'refused' ? 'warn' : 'danger'}`}
                >
                  {r.result}
                </span>
              </td>
              <td class="detail">{r.detail}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
