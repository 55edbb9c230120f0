/**
 * What a consumer group knows of one partition. Kafka stores one offset per group and partition, so only
 * the lowest unfinished message can be committed; handlers finish out of order, and the port counts
 * deliveries. The rest travels in the commit's metadata string (as confluentinc/parallel-consumer does):
 * offsets above the committed one that are already handled, how far messages were delivered, and the
 * attempts of messages delivered more than once. Whoever gets the partition next reads it back, so a
 * rebalance or a restart neither runs handled messages again nor restarts attempts at 1.
 */
export interface PartitionProgress {
  /** Every offset below is handled: the offset Kafka stores for the group. */
  committed: number;
  /** Every message below was delivered to a handler at least once. */
  deliveredEnd: number;
  /** Handled offsets above `committed`. */
  readonly handled: Set<number>;
  /** Deliveries so far, by offset, of messages at or above `committed` (absent: 1 below `deliveredEnd`, else 0). */
  readonly attempts: Map<number, number>;
}

// Kafka's default offset.metadata.max.bytes is 4096; a longer string fails the whole commit.
const MAX_METADATA_CHARS = 3_800;
const MAX_ATTEMPT_ENTRIES = 64;

interface Encoded {
  readonly strata: 1;
  readonly d: number;
  /** Handled ranges [from, to) above the committed offset. */
  readonly h: Array<[number, number]>;
  /** [offset, deliveries] of messages delivered more than once. */
  readonly a: Array<[number, number]>;
}

const isPair = (value: unknown): value is [number, number] =>
  Array.isArray(value) && value.length === 2 && value.every((item) => Number.isSafeInteger(item));

/** The progress a group left on a partition: its committed offset and the metadata committed with it. */
export const restoreProgress = (committed: number, metadata: string | null): PartitionProgress => {
  const progress: PartitionProgress = { committed, deliveredEnd: committed, handled: new Set(), attempts: new Map() };
  if (metadata === null || !metadata.startsWith('{"strata":1')) return progress;
  let encoded: Partial<Encoded>;
  try {
    encoded = JSON.parse(metadata) as Partial<Encoded>;
  } catch {
    return progress;
  }
  if (Number.isSafeInteger(encoded.d)) progress.deliveredEnd = Math.max(committed, encoded.d as number);
  for (const range of Array.isArray(encoded.h) ? encoded.h : []) {
    if (!isPair(range)) continue;
    for (let offset = Math.max(range[0], progress.committed); offset < range[1]; offset += 1)
      markHandled(progress, offset);
  }
  for (const entry of Array.isArray(encoded.a) ? encoded.a : []) {
    if (isPair(entry) && !isHandled(progress, entry[0])) {
      progress.attempts.set(entry[0], entry[1]);
    }
  }
  return progress;
};

/** Counts a delivery of the message at `offset`; returns its attempt number (1 on first delivery). */
export const countDelivery = (progress: PartitionProgress, offset: number): number => {
  const attempt = (progress.attempts.get(offset) ?? (offset < progress.deliveredEnd ? 1 : 0)) + 1;
  progress.attempts.set(offset, attempt);
  if (offset >= progress.deliveredEnd) progress.deliveredEnd = offset + 1;
  return attempt;
};

export const markHandled = (progress: PartitionProgress, offset: number): void => {
  if (offset < progress.committed) return;
  progress.handled.add(offset);
  progress.attempts.delete(offset);
  while (progress.handled.delete(progress.committed)) progress.committed += 1;
};

/** Offsets in [from, to) are not in the log (deleted, compacted, transaction markers): nothing to handle. */
export const markAbsent = (progress: PartitionProgress, from: number, to: number): void => {
  if (progress.committed >= from && progress.committed < to) {
    progress.committed = to;
    while (progress.handled.delete(progress.committed)) progress.committed += 1;
    for (const offset of progress.attempts.keys()) if (offset < progress.committed) progress.attempts.delete(offset);
    return;
  }
  for (let offset = Math.max(from, progress.committed); offset < to; offset += 1) markHandled(progress, offset);
};

export const isHandled = (progress: PartitionProgress, offset: number): boolean =>
  offset < progress.committed || progress.handled.has(offset);

/** The metadata to commit with `progress.committed`; ranges that do not fit are left out (they run again). */
export const encodeProgress = (progress: PartitionProgress): string => {
  const ranges: Array<[number, number]> = [];
  for (const offset of [...progress.handled].sort((a, b) => a - b)) {
    const last = ranges[ranges.length - 1];
    if (last !== undefined && last[1] === offset) last[1] = offset + 1;
    else ranges.push([offset, offset + 1]);
  }
  const attempts: Array<[number, number]> = [];
  for (const [offset, count] of progress.attempts) {
    if (count > 1) attempts.push([offset, count]);
    if (attempts.length === MAX_ATTEMPT_ENTRIES) break;
  }
  const encode = (h: Array<[number, number]>): string =>
    JSON.stringify({ strata: 1, d: progress.deliveredEnd, h, a: attempts } satisfies Encoded);
  let text = encode(ranges);
  if (text.length <= MAX_METADATA_CHARS) return text;
  // Keeps the lowest ranges: those are what a long-running message holds back.
  let keep = ranges.length;
  while (keep > 0 && text.length > MAX_METADATA_CHARS) {
    keep = Math.floor(keep / 2);
    text = encode(ranges.slice(0, keep));
  }
  return text;
};
