// Console capture end to end with real components: OpenIPMI's ipmi_sim as the node's BMC with a `sol` device,
// ipmitool's `sol activate` (bmc/sol.ts), the fleet controller (leader election on PGlite) running the collector
// as a leader task, the bounded store, and the HTTP route through the full app.
//
// The serial peer is a TCP server of ours that ipmi_sim connects to as the host's serial port (lan.conf
// `sol "tcp:127.0.0.1:PORT"`, the same wiring as QEMU's `-serial tcp::PORT,server` on the test rack): it stands in
// for the VM's serial port because booting a VM here costs minutes (FACTS.md: TCG only). The BMC, the SOL session
// and ipmitool are real.
import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { startIpmiSim, type IpmiSim } from '../../test/harness/ipmisim.ts';
import { until } from '../../test/harness/wait.ts';
import { createTestDb } from '../../test/fakes/db.ts';
import { createFullApp } from '../../test/security/full-app.ts';
import { client, TOKENS } from '../../test/fakes/app.ts';
import { FakeClock } from '../clock.ts';
import { silentLogger } from '../log.ts';
import { createConsoleStore, consoleLines, type ConsoleStore } from '../store/console.ts';
import { createSolSession } from '../bmc/sol.ts';
import type { DbHandle } from '../db/index.ts';
import { createFleet, type Fleet } from './controller.ts';
import { chooseCaptured, createConsoleCollector, type ConsoleCollector } from './console.ts';
import { FleetConfig } from './config.ts';
import type { LeaderElector } from './leader.ts';
import { main } from '../cli.ts';

/** The node's serial port as ipmi_sim sees it: ipmi_sim connects here, and what we write is what the node "prints". */
interface SerialPeer {
  port: number;
  connections(): number;
  write(text: string): void;
  close(): Promise<void>;
}
async function startSerialPeer(): Promise<SerialPeer> {
  const sockets = new Set<Socket>();
  let connections = 0;
  const server: Server = createServer((s) => {
    connections++;
    sockets.add(s);
    s.on('error', () => undefined);
    s.on('close', () => sockets.delete(s));
    s.resume(); // ipmitool's keystrokes (none) would arrive here
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as { port: number }).port,
    connections: () => connections,
    write: (text) => {
      for (const s of sockets) s.write(text);
    },
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

const UUID = '00000000-0000-4000-8000-0000000c0501';
const START = '2026-12-03T08:00:00Z';

describe('chooseCaptured', () => {
  const n = (uuid: string, state: string, since: string) => ({ uuid, state, stateSince: new Date(since) }) as Parameters<typeof chooseCaptured>[0][number];
  it.each([
    { name: 'a rebuild outranks an older inspection', nodes: [n('b', 'inspecting', '2026-01-01'), n('a', 'rebuilding', '2026-02-01')], max: 1, want: ['a'] },
    { name: 'within a state the longest in it first, then by UUID', nodes: [n('c', 'inspecting', '2026-01-02'), n('b', 'inspecting', '2026-01-01'), n('a', 'inspecting', '2026-01-02')], max: 2, want: ['b', 'a'] },
    { name: 'active and failed nodes are not captured by default', nodes: [n('a', 'active', '2026-01-01'), n('b', 'failed', '2026-01-01')], max: 5, want: [] },
    { name: 'maxSessions 0 captures nobody', nodes: [n('a', 'rebuilding', '2026-01-01')], max: 0, want: [] },
  ])('$name', ({ nodes, max, want }) => {
    expect(chooseCaptured(nodes, FleetConfig.parse({}).console.states, max).map((x) => x.uuid)).toEqual(want);
  });
});

describe('console capture over IPMI SOL (ipmi_sim + ipmitool)', () => {
  let db: DbHandle;
  let peer: SerialPeer;
  let sim: IpmiSim;
  let full: Awaited<ReturnType<typeof createFullApp>>;
  let consoles: ConsoleStore;
  let collector: ConsoleCollector;
  let fleet: Fleet;
  const registry = new Registry();
  const clock = new FakeClock(START);
  const config = FleetConfig.parse({ bmc: { poll: false }, timeouts: { inspectingSeconds: 60 }, console: { maxBytesPerNode: 4096, flushMs: 50, maxSessions: 4 } });

  beforeAll(async () => {
    peer = await startSerialPeer();
    sim = await startIpmiSim({ sol: `tcp:127.0.0.1:${peer.port}` });
    db = await createTestDb();
    full = await createFullApp(db, { clock });
    consoles = createConsoleStore(db.db, { clock, maxBytes: config.console.maxBytesPerNode });
    collector = createConsoleCollector({
      config: config.console,
      listNodes: (states) => full.nodes.list({ state: states }),
      target: async (uuid) => {
        const c = await full.bmcs.getCredentials(uuid);
        return c && { address: c.address, port: c.port, username: c.username, password: c.password };
      },
      store: consoles,
      logger: silentLogger(),
      metrics: registry,
      // restarts within a second here, so the reconnect test waits for ipmitool, not for the backoff
      session: (o) => createSolSession({ ...o, backoff: { baseMs: 100, capMs: 1000 } }),
    });
    fleet = createFleet({ db, store: full.nodes, bmcStore: full.bmcs, clock, config, logger: silentLogger(), leaderTasks: [{ name: 'console-capture', run: () => collector.reconcile(), release: (why) => collector.release(why) }] });
    await full.bmcs.set(UUID, { driver: 'ipmi', address: sim.host, port: sim.port, username: sim.username, password: sim.password }, 'test', { enroll: 'enrolled with its BMC' });
    await full.nodes.transition(UUID, { type: 'inspect' }, 'test');
  }, 60_000);

  afterAll(async () => {
    await fleet?.stop();
    await collector?.stop();
    await sim?.stop();
    await peer?.close();
    await full?.close();
    await db?.close();
  });

  /** The peer keeps printing `line` until the store has it: ipmi_sim drops serial output while no SOL session is up. */
  async function printUntilStored(line: string, limitMs = 20_000) {
    await until(
      `"${line}" in the console store`,
      async () => {
        peer.write(`${line}\r\n`);
        return (await consoles.tail(UUID)).text.includes(line);
      },
      { limitMs, pollMs: 200 },
    );
  }

  it('the leader captures a booting node: its serial lines arrive in the store in order', async () => {
    const tick = await fleet.tick();
    expect(tick.leader).toBe(true);
    expect(collector.sessions().map((s) => s.uuid)).toEqual([UUID]);
    await until('SOL session active', () => collector.sessions()[0]?.state === 'active', { limitMs: 15_000, pollMs: 50 });
    await until('ipmi_sim connected to the serial peer', () => peer.connections() > 0, { limitMs: 5000 });
    await printUntilStored('SeaBIOS (version 1.16.2-debian)');
    for (let i = 0; i < 30; i++) peer.write(`[    ${i}.000000] kernel: boot step ${i}\r\n`);
    await until('the last kernel line stored', async () => (await consoles.tail(UUID)).text.includes('boot step 29'), { limitMs: 10_000, pollMs: 50 });
    const lines = consoleLines((await consoles.tail(UUID)).text).filter((l) => l.includes('boot step'));
    expect(lines.map((l) => Number(/step (\d+)/.exec(l)![1]))).toEqual(Array.from({ length: 30 }, (_, i) => i));
    // the session count is a metric
    expect(await registry.getSingleMetricAsString('bootfarm_console_sessions')).toMatch(/bootfarm_console_sessions\{state="active"\} 1/);
  }, 60_000);

  it('keeps the per-node bound however much the node prints', async () => {
    // 300 lines × 60 bytes = 18 000 bytes through a 4096-byte budget
    for (let i = 0; i < 300; i++) peer.write(`flood ${String(i).padStart(4, '0')} ${'.'.repeat(47)}\r\n`);
    await until('the last flood line stored', async () => (await consoles.tail(UUID)).text.includes('flood 0299'), { limitMs: 15_000, pollMs: 50 });
    expect(await consoles.size(UUID)).toBeLessThanOrEqual(4096);
    const text = (await consoles.tail(UUID)).text;
    expect(text).not.toContain('SeaBIOS');
    expect(text).not.toContain('flood 0000');
  }, 30_000);

  it('serves the console over the API (viewer), as text and followed', async () => {
    const http = client(full.app);
    expect((await http.get(`/api/v1/nodes/${UUID}/console`)).status).toBe(401);
    const res = await full.app.request(`/api/v1/nodes/${UUID}/console?bytes=200`, { headers: { authorization: `Bearer ${TOKENS.viewer}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    const body = await res.text();
    expect(Buffer.byteLength(body)).toBeLessThanOrEqual(200);
    expect(body).toContain('flood 0299');
    expect((await http.get(`/api/v1/nodes/00000000-0000-4000-8000-0000000c05ff/console`, { token: TOKENS.viewer })).status).toBe(404);

    // follow: the tail first, then what the node prints afterwards
    const ac = new AbortController();
    const followed = await full.app.request(`/api/v1/nodes/${UUID}/console?bytes=64&follow=1`, { headers: { authorization: `Bearer ${TOKENS.viewer}` }, signal: ac.signal });
    const reader = followed.body!.getReader();
    const dec = new TextDecoder();
    let seen = '';
    const read = async (want: string) => {
      while (!seen.includes(want)) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`stream ended before "${want}": ${seen}`);
        seen += dec.decode(value, { stream: true });
      }
    };
    await read('flood 0299');
    await printUntilStored('login: follow me');
    await read('login: follow me');
    await reader.cancel();
    ac.abort();
  }, 30_000);

  it('reconnects after the BMC restarts', async () => {
    const before = collector.sessions()[0]!.starts;
    await sim.restart();
    // ipmitool notices the lost session on its keepalive (~26 s with -N 1 -R 1, bmc/sol.ts), then the session
    // restarts; ipmi_sim reconnects to the serial peer by itself
    await until('a new SOL session', () => collector.sessions()[0]!.starts > before && collector.sessions()[0]!.state === 'active', { limitMs: 60_000, pollMs: 200 });
    await printUntilStored('after the BMC came back');
  }, 90_000);

  it('the node page and `bootfarm nodes console` show the last lines', async () => {
    await printUntilStored('bootfarm-agent: registering');
    const page = await full.app.request(`/ui/nodes/${UUID}`, { headers: { authorization: `Bearer ${TOKENS.viewer}` } });
    expect(page.status).toBe(200);
    const html = await page.text();
    const pre = /<pre class="console" id="console">([^<]*)<\/pre>/.exec(html)?.[1];
    expect(pre?.split('\n').at(-1)).toBe('bootfarm-agent: registering');

    const lines: string[] = [];
    const fetchImpl = (async (url: string | URL | Request, init?: RequestInit) => full.app.request(String(url).replace('http://bootfarm', ''), init)) as typeof fetch;
    const code = await main(['nodes', 'console', UUID, '--bytes', '300'], { out: (l) => lines.push(l), err: () => undefined, fetchImpl, env: { BOOTFARM_URL: 'http://bootfarm', BOOTFARM_TOKEN: TOKENS.viewer } });
    expect(code).toBe(0);
    expect(lines.at(-1)).toBe('bootfarm-agent: registering');
    expect(lines.join('\n').length).toBeLessThanOrEqual(300);
  }, 30_000);

  it('a replica that does not lead captures nothing', async () => {
    const follower: LeaderElector = { check: async () => false, isLeader: () => false, fence: () => null, stepDown: () => undefined, stop: async () => undefined };
    const other = createFleet({ db, store: full.nodes, bmcStore: full.bmcs, clock, config, logger: silentLogger(), leader: follower, leaderTasks: [{ name: 'console-capture', run: () => collector.reconcile(), release: (why) => collector.release(why) }] });
    // the follower's tick runs no leader task: no reconcile, so no second SOL session that would take the
    // payload over from the leader's (the leader's collector keeps its one session)
    expect((await other.tick()).leader).toBe(false);
    expect(collector.sessions()).toHaveLength(1);
  });

  it('a node the fleet fails carries its last console lines in the failed event, and capture stops', async () => {
    await printUntilStored('Kernel panic - not syncing: VFS: Unable to mount root fs');
    await collector.flushAll();
    // the inspection never finishes: past timeouts.inspectingSeconds (60 s here) the controller fails the node;
    // ticks 15 s apart, as the controller runs (a longer gap would restart its observation window)
    const decisions: string[] = [];
    for (let i = 0; i < 6 && !decisions.includes('fail'); i++) {
      clock.advance(15_000);
      decisions.push(...(await fleet.tick()).decisions.map((d) => d.type));
    }
    expect(decisions).toContain('fail');
    expect((await full.nodes.require(UUID)).state).toBe('failed');
    const ev = (await full.nodes.events(UUID, { limit: 1000 })).filter((e) => e.kind === 'transition' && e.toState === 'failed').at(-1)!;
    const lines = (ev.data as { console?: string[] }).console!;
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.length).toBeLessThanOrEqual(config.console.failureLines);
    expect(lines.at(-1)).toBe('Kernel panic - not syncing: VFS: Unable to mount root fs');
    // the same tick's reconcile let the failed node go (failed is not a captured state)
    expect(collector.sessions()).toEqual([]);
    expect(await registry.getSingleMetricAsString('bootfarm_console_sessions')).toMatch(/state="active"\} 0/);
  }, 30_000);
});
