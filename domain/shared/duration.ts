import { parse } from 'tinyduration';

/**
 * Milliseconds in an ISO-8601 duration (`PT1H`, `P7D`, `PT0.5S`), or undefined when the text is not
 * one. Years and months are refused: their length depends on the calendar.
 */
export const durationMs = (text: string): number | undefined => {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(text);
  } catch {
    return undefined;
  }
  if (parsed.negative || (parsed.years ?? 0) !== 0 || (parsed.months ?? 0) !== 0) return undefined;
  const seconds =
    (parsed.weeks ?? 0) * 604_800 +
    (parsed.days ?? 0) * 86_400 +
    (parsed.hours ?? 0) * 3_600 +
    (parsed.minutes ?? 0) * 60 +
    (parsed.seconds ?? 0);
  return Number.isFinite(seconds) ? Math.round(seconds * 1000) : undefined;
};
