// What tells a replica that the MAC table it answers DHCP from is stale (issue 14 item 4). A trigger on
// interfaces and nodes (migrations 0011_mac_changes, 0024_watch_node_profile) bumps the sequence
// bootfarm_mac_changes and notifies channel bootfarm_macs when anything DHCP answers from changes: an interface
// registered or moved, a node's state, hostname, labels (reservations are labels) or profile (the boot loader), a
// node deleted. The notification is delivered at commit; the
// sequence moves at once, so a poll that sees it move may still read the old rows — the boot backend reads once
// more on the next poll (server/boot-backend.ts).
import { sql } from 'drizzle-orm';
import type { DbHandle } from '../db/index.ts';

export const MAC_CHANNEL = 'bootfarm_macs';

export interface MacChanges {
  /** a number that changes whenever the table may have changed */
  version(): Promise<string>;
  /** LISTEN: onChange per notification, onListen when listening (re)starts; resolves to stop */
  subscribe(onChange: () => void, onListen?: () => void): Promise<() => Promise<void>>;
}

const rowsOf = <T>(r: unknown): T[] => (Array.isArray(r) ? (r as T[]) : (((r as { rows?: T[] }).rows ?? []) as T[]));

export function createMacChanges(handle: Pick<DbHandle, 'db' | 'listen'>): MacChanges {
  return {
    async version() {
      const [row] = rowsOf<{ v: string | number; called: boolean }>(await handle.db.execute(sql`select last_value as v, is_called as called from bootfarm_mac_changes`));
      return row ? `${row.v}:${row.called}` : '0';
    },
    subscribe: (onChange, onListen) => handle.listen(MAC_CHANNEL, () => onChange(), onListen),
  };
}
