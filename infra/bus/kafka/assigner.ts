import kafkajs from 'kafkajs';
import type { PartitionAssigner } from 'kafkajs';

// kafkajs is CommonJS whose exports Node cannot detect statically: named imports fail at run time.
const { AssignerProtocol } = kafkajs;

export const STICKY_ASSIGNER = 'StrataSticky';

/** Partitions by topic, as members claim them and as the leader hands them out. */
export type Ownership = Record<string, number[]>;

interface Member {
  readonly memberId: string;
  readonly topics: readonly string[];
  readonly owned: Ownership;
}

const decodeOwned = (userData: Buffer | null | undefined): Ownership => {
  if (!userData || userData.length === 0) return {};
  try {
    const parsed = JSON.parse(userData.toString('utf8')) as unknown;
    if (typeof parsed !== 'object' || parsed === null) return {};
    const owned: Ownership = {};
    for (const [topic, partitions] of Object.entries(parsed)) {
      if (Array.isArray(partitions)) owned[topic] = partitions.filter((p): p is number => Number.isSafeInteger(p));
    }
    return owned;
  } catch {
    return {};
  }
};

/**
 * Spreads each topic's partitions evenly over the members subscribed to it, leaving every partition with
 * the member that held it where the balance allows. Pure, for the tests.
 */
export const assignSticky = (members: readonly Member[], partitionsByTopic: ReadonlyMap<string, readonly number[]>) => {
  const assignment = new Map<string, Ownership>(members.map((member) => [member.memberId, {}]));
  for (const [topic, partitions] of partitionsByTopic) {
    const subscribers = members.filter((member) => member.topics.includes(topic));
    if (subscribers.length === 0) continue;
    const held = (member: Member) => (member.owned[topic] ?? []).filter((p) => partitions.includes(p));
    // Members holding the most get the larger shares, so fewer partitions move.
    const ordered = [...subscribers].sort(
      (a, b) => held(b).length - held(a).length || a.memberId.localeCompare(b.memberId),
    );
    const base = Math.floor(partitions.length / ordered.length);
    const extra = partitions.length % ordered.length;
    const quota = new Map(ordered.map((member, index) => [member.memberId, base + (index < extra ? 1 : 0)]));
    const taken = new Set<number>();
    const given = new Map<string, number[]>(ordered.map((member) => [member.memberId, []]));
    for (const member of ordered) {
      const mine = given.get(member.memberId) ?? [];
      for (const partition of held(member)) {
        if (mine.length >= (quota.get(member.memberId) ?? 0)) break;
        if (taken.has(partition)) continue;
        taken.add(partition);
        mine.push(partition);
      }
    }
    const free = partitions.filter((partition) => !taken.has(partition));
    for (const member of ordered) {
      const mine = given.get(member.memberId) ?? [];
      while (mine.length < (quota.get(member.memberId) ?? 0) && free.length > 0) mine.push(free.shift() as number);
    }
    for (const [memberId, mine] of given) {
      const ownership = assignment.get(memberId);
      if (ownership && mine.length > 0) ownership[topic] = mine.sort((a, b) => a - b);
    }
  }
  return assignment;
};

/**
 * A partition assigner that keeps partitions where they are (kafkajs only ships round-robin, which moves
 * nearly every partition whenever a runner joins or leaves, aborting work that could have gone on), and
 * that assigns each topic only to the members subscribed to it: the runners' consumers of the sync and the
 * async topic share the group `strata-runners`, and whichever is leader must hand out both topics.
 * Members tell the leader what they hold in their subscription's user data.
 */
export const stickyAssigner =
  (options: {
    readonly owned: () => Ownership;
    readonly partitionsOf: (topics: readonly string[]) => Promise<Map<string, number[]>>;
  }): PartitionAssigner =>
  () => ({
    name: STICKY_ASSIGNER,
    version: 0,
    async assign({ members }) {
      const decoded: Member[] = members.map(({ memberId, memberMetadata }) => {
        const metadata = AssignerProtocol.MemberMetadata.decode(memberMetadata);
        return { memberId, topics: metadata?.topics ?? [], owned: decodeOwned(metadata?.userData) };
      });
      const topics = [...new Set(decoded.flatMap((member) => member.topics))];
      const partitions = await options.partitionsOf(topics);
      const assignment = assignSticky(decoded, partitions);
      return [...assignment].map(([memberId, ownership]) => ({
        memberId,
        memberAssignment: AssignerProtocol.MemberAssignment.encode({
          version: 0,
          assignment: ownership,
          userData: Buffer.alloc(0),
        }),
      }));
    },
    protocol({ topics }) {
      return {
        name: STICKY_ASSIGNER,
        metadata: AssignerProtocol.MemberMetadata.encode({
          version: 0,
          topics,
          userData: Buffer.from(JSON.stringify(options.owned())),
        }),
      };
    },
  });
