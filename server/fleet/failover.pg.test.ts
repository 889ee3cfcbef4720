// Failover on a REAL PostgreSQL (Debian's server, test/harness/postgres.ts) with replicas as real processes
// (test/support/ha/fleet-replica.ts: the controller and leader election, 1 s ticks and lock checks). Measured and
// printed, from the moment of the fault to the moment another replica holds the lock and a new epoch:
//   kill -9 of the leader        (the kernel closes its socket: the server ends the session at once)
//   pg_terminate_backend         (its lock session dies: the server releases the lock)
//   SIGSTOP of the leader        (its socket stays open: idle_session_timeout ends the session)
// and, after SIGCONT, the paused leader finds its epoch stale and leads nothing. Numbers go to docs/ha.md; the
// test asserts the order of events, never the speed (the machine is shared).
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';
import { startPostgres, type PgCluster } from '../../test/harness/postgres.ts';
import { until } from '../../test/harness/wait.ts';
import { createDb } from '../db/index.ts';

const SCRIPT = fileURLToPath(new URL('../../test/support/ha/fleet-replica.ts', import.meta.url));
const KEY = 4343;

interface Line {
  id: string;
  pid: number;
  at: number;
  event: 'started' | 'state' | 'lost';
  leader?: boolean;
  epoch?: number | null;
  reason?: string;
}
interface Replica {
  id: string;
  proc: ChildProcess;
  lines: Line[];
  errors: string[];
  state(): Line | undefined;
}

let pg: PgCluster;
let url: string;
let admin: postgres.Sql;
const replicas: Replica[] = [];

function spawnReplica(id: string): Replica {
  const proc = spawn(process.execPath, ['--import', 'tsx', SCRIPT], { env: { ...process.env, DATABASE_URL: url, REPLICA_ID: id, LOCK_KEY: String(KEY) }, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: Line[] = [];
  let buf = '';
  proc.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      lines.push(JSON.parse(buf.slice(0, i)) as Line);
      buf = buf.slice(i + 1);
    }
  });
  // the replica's warnings (leadership lost, lock session errors): printed when the test fails, to say why
  const errors: string[] = [];
  proc.stderr!.on('data', (d: Buffer) => {
    errors.push(...d.toString().split('\n').filter(Boolean));
    errors.splice(0, Math.max(0, errors.length - 200));
  });
  const r = { id, proc, lines, errors, state: () => lines.filter((l) => l.event === 'state').at(-1) };
  replicas.push(r);
  return r;
}

const leaders = () => replicas.filter((r) => r.proc.exitCode === null && r.proc.signalCode === null && r.state()?.leader);
const epochRow = async () => (await admin<{ epoch: string; holder: string }[]>`select leader_epoch as epoch, epoch_holder as holder from fleet_control where id = 'fleet'`)[0]!;
const lockHolderPid = async () => (await admin<{ pid: number }[]>`select pid from pg_locks where locktype = 'advisory' and granted and objid = ${KEY} and objsubid = 1`).map((r) => r.pid);

/** waits for a replica other than `old` to lead with an epoch above `epoch`; returns it and when its line was printed */
async function nextLeader(epoch: number, old?: Replica): Promise<{ r: Replica; line: Line }> {
  let found: { r: Replica; line: Line } | undefined;
  await until(`a replica other than ${old?.id ?? '-'} to lead with an epoch above ${epoch}`, () => {
    for (const r of replicas) {
      if (r === old) continue;
      const line = r.lines.find((l) => l.event === 'state' && l.leader && (l.epoch ?? 0) > epoch);
      if (line) found = { r, line };
    }
    return !!found;
  }, { limitMs: 120_000, pollMs: 20 });
  return found!;
}

const measured: Record<string, number> = {};
let failed = false;

beforeAll(async () => {
  pg = await startPostgres();
  url = await pg.createDatabase('failover');
  await (await createDb({ url })).close(); // migrate once
  admin = postgres(url, { max: 1, onnotice: () => {} });
}, 120_000);
afterAll(async () => {
  for (const r of replicas) {
    // eslint-disable-next-line no-console
    if (failed) console.log(`${r.id} (pid ${r.proc.pid}) state lines:\n${r.lines.map((l) => JSON.stringify(l)).join('\n')}\nstderr:\n${r.errors.join('\n')}`);
    try {
      r.proc.kill('SIGCONT');
      r.proc.kill('SIGKILL');
    } catch {}
  }
  await admin?.end({ timeout: 2 });
  pg?.stop();
  // eslint-disable-next-line no-console
  console.log(`failover (1 s lock checks): ${Object.entries(measured).map(([k, v]) => `${k} ${v} ms`).join(', ')}`);
});

describe('leader failover between replica processes on one PostgreSQL', () => {
  it('kill -9, pg_terminate_backend and SIGSTOP of the leader each hand leadership to another replica with a new epoch; a resumed leader leads nothing', async () => {
    onTestFailed(() => {
      failed = true;
    });
    const a = spawnReplica('replica-a');
    await until('replica-a to lead', () => !!a.state()?.leader, { limitMs: 120_000, pollMs: 20 });
    const b = spawnReplica('replica-b');
    await until('replica-b to report as a follower', () => b.state()?.leader === false, { limitMs: 120_000, pollMs: 20 });
    expect(leaders().map((r) => r.id)).toEqual(['replica-a']);
    let epoch = a.state()!.epoch!;
    expect(await epochRow()).toEqual({ epoch: String(epoch), holder: 'replica-a' });

    // 1. kill -9 the leader
    let t0 = Date.now();
    a.proc.kill('SIGKILL');
    let next = await nextLeader(epoch, a);
    measured['kill -9'] = next.line.at - t0;
    expect(next.r).toBe(b);
    epoch = next.line.epoch!;

    // 2. terminate the leader's lock session on the server (a third replica joins as a follower first)
    const c = spawnReplica('replica-c');
    await until('replica-c to report as a follower', () => c.state()?.leader === false, { limitMs: 120_000, pollMs: 20 });
    const [pid] = await lockHolderPid();
    t0 = Date.now();
    expect((await admin<{ ok: boolean }[]>`select pg_terminate_backend(${pid!}) as ok`)[0]!.ok).toBe(true);
    // the replica whose session died may take the lock back on its new session: either way, a new epoch
    next = await nextLeader(epoch);
    measured['pg_terminate_backend'] = next.line.at - t0;
    epoch = next.line.epoch!;
    await until('b to have stepped down unless it is the new leader', () => next.r === b || b.state()?.leader === false, { limitMs: 60_000, pollMs: 20 });

    // 3. SIGSTOP the leader: its socket stays open; the server's idle_session_timeout (3 checks) ends its session
    const paused = next.r;
    const other = paused === b ? c : b;
    t0 = Date.now();
    paused.proc.kill('SIGSTOP');
    next = await nextLeader(epoch, paused);
    measured['SIGSTOP'] = next.line.at - t0;
    expect(next.r).toBe(other);
    const newEpoch = next.line.epoch!;
    expect(newEpoch).toBeGreaterThan(epoch);
    // resume it: it must find its session gone and its epoch stale, and lead nothing
    const resumedAt = Date.now();
    const before = paused.lines.length;
    paused.proc.kill('SIGCONT');
    await until('the resumed replica to report that it does not lead', () => paused.lines.slice(before).some((l) => l.event === 'state' && l.leader === false), { limitMs: 60_000, pollMs: 20 });
    measured['resumed leader steps down after'] = paused.lines.slice(before).find((l) => l.event === 'state')!.at - resumedAt;
    expect(paused.lines.slice(before).filter((l) => l.event === 'state' && l.leader)).toEqual([]);
    expect(await epochRow()).toEqual({ epoch: String(newEpoch), holder: other.id });
    // a few more ticks: still exactly one leader, the same epoch
    await until('two more ticks of the new leader', async () => Date.now() - resumedAt > 3000, { limitMs: 10_000, pollMs: 100 });
    expect(leaders().map((r) => r.id)).toEqual([other.id]);
    expect(await lockHolderPid()).toHaveLength(1);
    expect((await epochRow()).epoch).toBe(String(newEpoch));
  }, 600_000);
});
