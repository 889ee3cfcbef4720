// Which profile a node boots: an explicit assignment wins; otherwise the profile whose `match` labels are all on
// the node, most specific (most labels) first, then by name — a pure match plus a deterministic order
// (STYLE.md §7, after matchbox's SelectGroup). "default" is the fallback when it exists.
import type { ProfileConfig } from '../config.ts';

export function selectProfile(profiles: Record<string, ProfileConfig>, node: { profile: string | null; labels: Record<string, string> }): string | null {
  if (node.profile && profiles[node.profile]) return node.profile;
  const candidates = Object.entries(profiles)
    .filter(([, p]) => Object.keys(p.match).length > 0 && Object.entries(p.match).every(([k, v]) => node.labels[k] === v))
    .sort(([an, a], [bn, b]) => Object.keys(b.match).length - Object.keys(a.match).length || an.localeCompare(bn));
  if (candidates[0]) return candidates[0][0];
  return profiles.default ? 'default' : null;
}
