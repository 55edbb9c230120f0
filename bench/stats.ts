/** Nearest-rank percentile of ascending samples (`fraction` 0.5 for p50); NaN when there are none. */
export const percentile = (sorted: readonly number[], fraction: number): number =>
  sorted[Math.max(0, Math.ceil(fraction * sorted.length) - 1)] ?? Number.NaN;

/** p50 and p99 of unsorted samples, in ms to three decimals. */
export const summary = (samples: readonly number[]) => {
  const sorted = [...samples].sort((a, b) => a - b);
  return { p50: Number(percentile(sorted, 0.5).toFixed(3)), p99: Number(percentile(sorted, 0.99).toFixed(3)) };
};
