// Percentiles and small formatting helpers shared by the query benchmark's phases.

/** p50/p95 (nearest rank), mean and count of a sample, in the sample's unit, rounded to 0.1. */
export interface Summary {
  n: number;
  p50: number;
  p95: number;
  mean: number;
}

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(sorted.length * p) - 1))] ?? 0;
}

export const round1 = (x: number): number => Math.round(x * 10) / 10;
export const round3 = (x: number): number => Math.round(x * 1000) / 1000;

export function summarize(values: readonly number[]): Summary {
  const sorted = [...values].sort((a, b) => a - b);
  const mean = sorted.length === 0 ? 0 : sorted.reduce((a, b) => a + b, 0) / sorted.length;
  return { n: sorted.length, p50: round1(percentile(sorted, 0.5)), p95: round1(percentile(sorted, 0.95)), mean: round1(mean) };
}

/** "p50 / p95" for a table cell. */
export const cell = (s: Summary): string => `${s.p50} / ${s.p95}`;

/** Left-aligned columns of a text table. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: readonly string[]) => r.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}
