import type { RoutingConfig } from './events.ts';

/**
 * Picks a version by the alias's weights. `random` is a number in [0, 1) (injected: domain/ reads no
 * random source); versions are visited in ascending order so the same number always picks the same one.
 */
export const chooseVersion = (routing: RoutingConfig, random: number): number | undefined => {
  const entries = Object.entries(routing)
    .map(([version, weight]) => [Number(version), weight] as const)
    .filter(([, weight]) => weight > 0)
    .sort(([a], [b]) => a - b);
  const total = entries.reduce((sum, [, weight]) => sum + weight, 0);
  if (total === 0) return undefined;
  let point = random * total;
  for (const [version, weight] of entries) {
    if (point < weight) return version;
    point -= weight;
  }
  return entries.at(-1)?.[0];
};
