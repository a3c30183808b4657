/** Colours (or any decoration) applied to a cell after it is padded, so ANSI codes never skew widths. */
export type CellPaint = (text: string, row: number, column: number) => string;

/**
 * A plain text table: columns padded to their widest cell; columns named in `right` are right-aligned
 * (numbers). `paint` decorates padded cells (row -1 is the header).
 */
export function formatTable(
  header: string[],
  rows: string[][],
  options: { right?: readonly number[]; paint?: CellPaint; indent?: string } = {},
): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const right = new Set(options.right ?? []);
  const paint = options.paint ?? ((text: string) => text);
  const line = (cells: string[], row: number) =>
    (options.indent ?? '') +
    cells
      .map((cell, i) => {
        const last = i === cells.length - 1;
        const padded = right.has(i) ? cell.padStart(widths[i]!) : last ? cell : cell.padEnd(widths[i]!);
        return row < 0 ? padded : paint(padded, row, i);
      })
      .join('  ')
      .trimEnd();
  return [line(header, -1), ...rows.map((r, i) => line(r, i))].join('\n');
}
