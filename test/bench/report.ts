/** Plain-text tables for the bench's report. */

export type Cell = string | number;

/** Formats a number with a fixed count of decimals and thousands separators. */
export function num(value: number, decimals = 0): string {
  if (!Number.isFinite(value)) return '–';
  return value.toLocaleString('en-US', { minimumFractionDigits: decimals, maximumFractionDigits: decimals });
}

/** A table with a header rule; text cells are left-aligned, numbers (and numeric text) right-aligned. */
export function table(headers: string[], rows: Cell[][]): string {
  const text = rows.map((row) => row.map((cell) => String(cell)));
  const widths = headers.map((header, i) =>
    Math.max(header.length, ...text.map((row) => (row[i] ?? '').length)),
  );
  const numeric = (cell: string) => /^[-+]?[\d,.]+[×%]?$|^–$/.test(cell);
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => (numeric(cell) ? cell.padStart(widths[i] ?? 0) : cell.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...text.map((row) => line(row))].join(
    '\n',
  );
}

export function heading(title: string): string {
  return `\n== ${title} ${'='.repeat(Math.max(0, 100 - title.length - 4))}`;
}
