/** How numbers and dates read in the UI. Credits are integers. */
const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const decimal = new Intl.NumberFormat('en-US', { maximumSignificantDigits: 6 });
const dateTime = new Intl.DateTimeFormat('en-GB', {
  dateStyle: 'medium',
  timeStyle: 'short',
  timeZone: 'UTC',
});

export function credits(amount: number): string {
  return `${integer.format(amount)} ${Math.abs(amount) === 1 ? 'credit' : 'credits'}`;
}

export function signedCredits(amount: number): string {
  return `${amount > 0 ? '+' : amount < 0 ? '−' : ''}${integer.format(Math.abs(amount))}`;
}

export function count(value: number): string {
  return integer.format(value);
}

export function number(value: number): string {
  return decimal.format(value);
}

export function percent(fraction: number): string {
  return `${(fraction * 100).toFixed(1)} %`;
}

export function when(iso: string | undefined): string {
  if (!iso) return '—';
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : `${dateTime.format(date)} UTC`;
}

export function bytes(size: number): string {
  if (size < 1024) return `${size} B`;
  if (size < 1024 * 1024) return `${(size / 1024).toFixed(1)} KiB`;
  return `${(size / 1024 / 1024).toFixed(1)} MiB`;
}

/** `[null, 4]` → `N × 4`. */
export function shape(dimensions: (number | null)[]): string {
  return dimensions.length ? dimensions.map((d) => (d === null ? 'N' : String(d))).join(' × ') : 'scalar';
}

/** A UTC date `YYYY-MM-DD`, `daysAgo` days before today. */
export function isoDate(daysAgo = 0): string {
  return new Date(Date.now() - daysAgo * 86_400_000).toISOString().slice(0, 10);
}

export const ledgerKindLabel: Record<string, string> = {
  top_up: 'Top-up',
  grant: 'Grant',
  charge: 'Charge',
  refund: 'Refund',
};
