// One fleet-controller replica as its own process, for the failover test (server/fleet/failover.pg.test.ts):
// the real controller and leader election on DATABASE_URL, ticking every second with a 1 s lock check, and one
// JSON line on stdout whenever its leadership (or epoch) changes, and for every tick that stopped part-way
// because leadership went away. Killed, stopped and resumed by the test by PID.
import { randomBytes } from 'node:crypto';
import { createDb } from '../../../server/db/index.ts';
import { createNodeStore } from '../../../server/store/nodes.ts';
import { createBmcStore } from '../../../server/store/bmcs.ts';
import { createSecrets } from '../../../server/secrets.ts';
import { createLogger } from '../../../server/log.ts';
import { createFleet } from '../../../server/fleet/controller.ts';

const url = process.env.DATABASE_URL!;
const id = process.env.REPLICA_ID ?? `replica-${process.pid}`;
const print = (o: Record<string, unknown>) => process.stdout.write(`${JSON.stringify({ id, pid: process.pid, at: Date.now(), ...o })}\n`);

const handle = await createDb({ url, maxConnections: 3, migrate: false });
const log = createLogger({ level: 'info', destination: process.stderr as never });
const fleet = createFleet({
  db: handle,
  store: createNodeStore(handle.db),
  bmcStore: createBmcStore(handle.db, createSecrets(randomBytes(32))),
  config: { tickSeconds: 1, leader: { lockKey: Number(process.env.LOCK_KEY ?? 4343), checkSeconds: 1 } },
  logger: log,
  instanceId: id,
});
let last = '';
const report = () => {
  const f = fleet.fence();
  const now = f ? `leader:${f.epoch}` : 'follower';
  if (now !== last) print({ event: 'state', leader: !!f, epoch: f?.epoch ?? null });
  last = now;
};
// the controller's own ticks; this wrapper only watches the result
const tick = fleet.tick.bind(fleet);
fleet.tick = async () => {
  const r = await tick();
  if (r.lost) print({ event: 'lost', epoch: r.epoch, reason: r.lost });
  report();
  return r;
};
fleet.start();
setInterval(report, 50);
print({ event: 'started' });
process.on('SIGTERM', () => void fleet.stop().then(() => handle.close()).finally(() => process.exit(0)));
