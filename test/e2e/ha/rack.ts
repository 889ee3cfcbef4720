// The HA test rack (issue 14): the e2e rack (../rack.ts: namespace, bridge, QEMU nodes with BMCs, lldpd, tgtd)
// plus three bootfarm replicas behind HAProxy, one PostgreSQL and one Ceph RGW.
//
//  namespace bfe2e-<pid> (the rack)                          namespace bfe2e-<pid>-r<i> (one per replica)
//  ├─ bfe2ebr0 10.77.0.1/16 ── veth bfhar<i> ──────────────── eth0 10.77.0.1<1+i>/16: bootfarm serve
//  │    ├─ QEMU taps (DHCP from whichever replica answers)         HTTP :8080, DHCP :67 on eth0, TFTP :69
//  │    └─ veth bfhasim ── namespace bfe2e-<pid>-sim: simulated nodes (test/support/sim), one leased address each
//  ├─ HAProxy 10.77.0.1:8080 → replicas :8080 (HTTP, X-Forwarded-For, health = /readyz)
//  │          10.77.0.1:7480 → RGW 127.0.0.1 (TCP)
//  ├─ PostgreSQL on 127.0.0.1 and 10.77.0.1 (replicas reach it over the bridge: a real TCP path a test can cut)
//  └─ Ceph RGW, ipmi_sim BMCs, tgtd, lldpd, radvd
//
// A replica in a namespace of its own is a host of its own: `kill -9` / SIGSTOP hit its one process, and iptables
// in its namespace cut it off from PostgreSQL (DROP both ways: a dead path, not a refused one) while it keeps its
// HTTP, DHCP and TFTP. Every process is registered with ../proc.ts and stopped by PID; destroy() deletes every
// namespace (also on SIGINT/SIGTERM; stale ones of a crashed run go at the next start, ../netns.ts).
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import postgres from 'postgres';
import { stringify as toYaml } from 'yaml';
import { createRack, repoRoot, type Rack } from '../rack.ts';
import { deleteNamespace } from '../netns.ts';
import { alive, must, onSignalCleanup, run, runAsync, startManaged, stopPid, tail, waitUntil, type Managed } from '../proc.ts';
import { socketApi, startForwarder, startInNetns, type ApiClient } from '../services.ts';
import { IMAGES_DIR } from '../product.ts';

export const LB_IP = '10.77.0.1';
export const HTTP_PORT = 8080;
export const RGW_PORT = 7480;
export const LB_URL = `http://${LB_IP}:${HTTP_PORT}`;
export const ADMIN_TOKEN = 'bfha-admin-token-0123456789abcdef';
/** the sim namespace's interface; the leased addresses go on it */
export const SIM_IFACE = 'eth0';

export interface Replica {
  index: number;
  name: string;
  netns: string;
  ip: string;
  dir: string;
  /** admin API straight to this replica (its own forwarder), not through the balancer */
  api: ApiClient;
  /** binary-safe request straight to this replica, with the admin token */
  http(method: string, path: string, o?: { body?: Buffer; headers?: Record<string, string> }): Promise<{ status: number; body: Buffer }>;
  proc(): Managed | undefined;
  pid(): number | undefined;
  /** every run's log (restarts append) */
  log(): string;
  start(): Promise<void>;
  /** SIGKILL: no shutdown, no lock release (the PostgreSQL session dies with the socket) */
  kill9(): Promise<void>;
  pause(): void;
  resume(): void;
  paused(): boolean;
  /** drops every packet between this replica and PostgreSQL (both directions) */
  cutDb(): void;
  restoreDb(): void;
  /** 1 when its /metrics says it leads (bootfarm_leader), 0 when not, undefined when it does not answer */
  leaderGauge(): Promise<number | undefined>;
}

export interface HaRack {
  rack: Rack;
  replicas: Replica[];
  /** admin API through HAProxy */
  api: ApiClient;
  haproxy: Managed;
  pg: { url: string; sql: postgres.Sql };
  simNetns: string;
  /** pushes an image with the CLI, through `via` (default: the balancer) */
  pushImage(dir: string, name: string, version: string, channel: string, via?: string): Promise<string>;
  /** log tails of every replica and HAProxy, for error messages */
  context(): string;
  destroy(): Promise<void>;
}

export interface HaRackOptions {
  replicas?: number;
  qemuNodes?: number;
  /** deep-merged over every replica's config */
  config?: Record<string, unknown>;
  /** push build/images stage1 + compute to prod (default true) */
  images?: boolean;
}

function merge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const cur = out[k];
    out[k] = v && typeof v === 'object' && !Array.isArray(v) && cur && typeof cur === 'object' && !Array.isArray(cur) ? merge(cur as Record<string, unknown>, v as Record<string, unknown>) : v;
  }
  return out;
}

function haproxyConfig(replicas: { name: string; ip: string }[], rgwPort: number): string {
  return `# written by test/e2e/ha/rack.ts
global
  maxconn 8192
  log stderr format raw local0 notice
defaults
  mode http
  log global
  timeout connect 2s
  timeout client 120s
  # a paused replica holds a request until this; the agent's own timeout (30 s) and retry take over
  timeout server 60s
  # generous: on a loaded machine the last healthy replica's /readyz can take seconds, and a check that
  # times out takes it out of rotation too (measured: all three down at once, every request a 503)
  timeout check 5s
  retries 2
  option redispatch
frontend bootfarm
  bind ${LB_IP}:${HTTP_PORT}
  default_backend replicas
backend replicas
  balance roundrobin
  option forwardfor
  # when the balancer took the request: a replica drops node requests that waited past http.maxRequestAgeSeconds
  # (paused, stalled) instead of acting on them after their client retried elsewhere
  http-request set-header X-Request-Start t=%[date(0,ms)]
  # /readyz pings the database: a replica cut off from PostgreSQL goes out of rotation
  option httpchk
  # HTTP/1.1 with a Host header: the server builds the request URL from it (an HTTP/1.0 check without one fails)
  http-check send meth GET uri /readyz ver HTTP/1.1 hdr Host bootfarm
  http-check expect status 200
  default-server inter 1s fall 3 rise 2
${replicas.map((r) => `  server ${r.name} ${r.ip}:${HTTP_PORT} check`).join('\n')}
listen rgw
  mode tcp
  bind ${LB_IP}:${RGW_PORT}
  server rgw 127.0.0.1:${rgwPort}
`;
}

export async function startHaRack({ replicas: count = 3, qemuNodes = 2, config = {}, images = true }: HaRackOptions = {}): Promise<HaRack> {
  // 1 GiB per QEMU node: stage-1 is OOM-killed in kexec -l at 512 MiB (../README.md)
  const rack = await createRack({ ipv4: `${LB_IP}/16`, nodes: Array.from({ length: qemuNodes }, (_, i) => ({ name: `node${i}`, memoryMiB: 1024 })) });
  const rackNs = rack.net.netns;
  const namespaces: string[] = [];
  const unhook = onSignalCleanup(() => namespaces.forEach(deleteNamespace));
  const stops: (() => Promise<void>)[] = [];
  const replicas: Replica[] = [];
  let sql: postgres.Sql | undefined;
  let haproxy: Managed | undefined;

  const addHost = (name: string, vethRack: string, ip: string) => {
    must(['ip', 'netns', 'add', name]);
    namespaces.push(name);
    must(['ip', 'link', 'add', vethRack, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', name], { netns: rackNs });
    must(['ip', 'link', 'set', vethRack, 'master', rack.net.bridge], { netns: rackNs });
    must(['ip', 'link', 'set', vethRack, 'up'], { netns: rackNs });
    must(['ip', 'link', 'set', 'lo', 'up'], { netns: name });
    if (ip) must(['ip', 'addr', 'add', `${ip}/16`, 'dev', 'eth0'], { netns: name });
    must(['ip', 'link', 'set', 'eth0', 'up'], { netns: name });
  };

  async function destroy() {
    for (const r of replicas) if (r.paused()) r.resume();
    await sql?.end({ timeout: 2 }).catch(() => {});
    for (const r of replicas) {
      const p = r.proc();
      if (p) await p.stop(5000);
    }
    await haproxy?.stop();
    for (const s of stops.reverse()) await s().catch(() => {});
    for (const ns of namespaces) deleteNamespace(ns);
    unhook();
    await rack.destroy();
  }

  try {
    const [pg, ceph] = await Promise.all([
      startInNetns<{ url: string; port: number; dir: string }>('postgres', { netns: rackNs, dir: rack.dir, repoRoot, options: { listen: [LB_IP] } }),
      startInNetns<{ endpoint: string; region: string; accessKeyId: string; secretAccessKey: string }>('ceph', { netns: rackNs, dir: rack.dir, repoRoot }),
    ]);
    stops.push(pg.stop, ceph.stop);
    const db = new URL(pg.info.url).pathname.slice(1);
    // the test reads the shared tables through the cluster's unix socket (a file: reachable from this namespace)
    sql = postgres({ host: pg.info.dir, port: pg.info.port, user: 'postgres', database: db, max: 2, onnotice: () => {} });
    const replicaDbUrl = `postgres://postgres@${LB_IP}:${pg.info.port}/${db}`;

    const rgwPort = Number(new URL(ceph.info.endpoint).port);
    const specs = Array.from({ length: count }, (_, i) => ({ name: `r${i}`, ip: `10.77.0.${11 + i}` }));
    const hcfg = join(rack.dir, 'haproxy.cfg');
    writeFileSync(hcfg, haproxyConfig(specs, rgwPort));
    must(['haproxy', '-c', '-f', hcfg]);
    haproxy = startManaged('haproxy', ['haproxy', '-db', '-f', hcfg], { netns: rackNs, logFile: join(rack.dir, 'haproxy.log') });

    // the same key-encryption key on every replica (issue 14: secrets readable by any replica; a replica with
    // another KEK refuses to start), and the same legacy secret key
    const secretKey = randomBytes(32).toString('base64');
    const kek = randomBytes(32).toString('base64');
    const base = (r: { ip: string; dir: string }) =>
      merge(
        {
          databaseUrl: replicaDbUrl,
          secretKey,
          secrets: { kek },
          http: { host: '0.0.0.0', port: HTTP_PORT, publicUrl: LB_URL, trustedProxies: [`${LB_IP}/32`] },
          log: { level: 'info' },
          dhcp: {
            enabled: true,
            mode: 'full',
            interface: 'eth0',
            serverIp: r.ip,
            httpBase: LB_URL,
            pools: [{ subnet: '10.77.0.0/16', range: { start: '10.77.1.1', end: '10.77.2.250' }, leaseSeconds: 3600 }],
          },
          tftp: { enabled: true, address: r.ip, port: 69 },
          images: {
            store: { kind: 's3', endpoint: `http://${LB_IP}:${RGW_PORT}`, region: ceph.info.region, bucket: 'bootfarm-ha', accessKeyId: ceph.info.accessKeyId, secretAccessKey: ceph.info.secretAccessKey, createBucket: true },
            cache: { dir: join(r.dir, 'image-cache') },
            gates: { minActiveNodes: 1, minSuccessRatio: 0.5, windowHours: 1 },
          },
          fleet: {
            tickSeconds: 2,
            // missed × interval (60 s) must exceed one stalled call (the agent's 30 s timeout, a request stuck in a
            // paused replica) plus an interval; at 10 s × 3 nodes whose beat hung in the paused replica were failed
            heartbeat: { intervalSeconds: 20, missed: 3 },
            rebuild: { backoffBaseSeconds: 5, maxAttempts: 3 },
            bmc: { pollSeconds: 5 },
            // c = 2 s: at 1 s a check on this loaded 2-core machine sometimes misses its deadline and leadership flaps
            leader: { checkSeconds: 2 },
          },
          boot: {
            stage1: { image: 'stage1', channel: 'prod', cmdline: 'console=ttyS0,115200' },
            retrySeconds: 5,
            // a rack powering on: 200 machines are new at once
            discoveredPerMinute: 1000,
          },
          profiles: {
            default: {
              image: 'compute',
              channel: 'prod',
              heartbeatIntervalSeconds: 20,
              iscsi: { portal: rack.tgtd!.portal, targetPrefix: 'iqn.2026-11.io.bootfarm:', lun: 1, chapUser: rack.tgtd!.chapUser, chapPassword: rack.tgtd!.chapPassword },
            },
          },
        },
        config,
      );

    for (const [i, s] of specs.entries()) {
      const netns = `${rackNs}-r${i}`;
      addHost(netns, `bfhar${i}`, s.ip);
      // A dead path to PostgreSQL must fail a query in seconds (3: ~3 s here), not after the kernel's ~15 minutes of retransmissions
      // (tcp_retries2=15): else a request stalls until the path is back and is then applied long after its client
      // gave up (measured here: a late /ipxe opened a new boot attempt and revoked a booting node's stage-1 token).
      // README "High availability" asks the same of every replica host.
      must(['sysctl', '-qw', 'net.ipv4.tcp_retries2=3'], { netns });
      const dir = join(rack.dir, s.name);
      mkdirSync(dir, { recursive: true });
      const configFile = join(dir, 'bootfarm.yaml');
      writeFileSync(configFile, toYaml(base({ ip: s.ip, dir })));
      const logFile = join(dir, 'server.log');
      const socket = join(rack.dir, `${s.name}.sock`);
      const fwd = startForwarder({ netns: rackNs, socket, host: s.ip, port: HTTP_PORT, logFile: join(dir, 'forwarder.log') });
      stops.push(() => fwd.stop());
      const api = socketApi(socket, ADMIN_TOKEN);
      let proc: Managed | undefined;
      let paused = false;
      let cut = false;
      const ipt = (op: '-I' | '-D') => {
        must(['iptables', op, 'OUTPUT', '-p', 'tcp', '-d', LB_IP, '--dport', String(pg.info.port), '-j', 'DROP'], { netns });
        must(['iptables', op, 'INPUT', '-p', 'tcp', '-s', LB_IP, '--sport', String(pg.info.port), '-j', 'DROP'], { netns });
      };
      const replica: Replica = {
        index: i,
        name: s.name,
        netns,
        ip: s.ip,
        dir,
        api,
        http: (method, path, o = {}) => binaryRequest(socket, method, path, o),
        proc: () => proc,
        pid: () => (proc && !proc.exited() ? proc.pid : undefined),
        log: () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''),
        async start() {
          if (proc && !proc.exited()) throw new Error(`${s.name} is running`);
          appendFileSync(logFile, `\n=== start ${new Date().toISOString()} ===\n`);
          proc = startManaged(`bootfarm-${s.name}`, [process.execPath, '--import', 'tsx', 'server/cli.ts', 'serve'], {
            netns,
            cwd: repoRoot,
            logFile,
            env: { PATH: process.env.PATH, HOME: process.env.HOME, BOOTFARM_DATA_DIR: join(dir, 'data'), BOOTFARM_CONFIG: configFile, BOOTFARM_TOKENS: `admin:${ADMIN_TOKEN}` },
          });
          const p = proc;
          await waitUntil(`${s.name} /healthz`, 90_000, async () => {
            if (p.exited()) throw new Error(`${s.name} exited with ${p.exitCode()}`);
            return (await api.raw('GET', '/healthz')).status === 200 ? true : undefined;
          }, { intervalMs: 250, context: () => tail(`${s.name} log`, p.output(), 40) });
        },
        async kill9() {
          const p = proc;
          if (!p || p.exited()) return;
          process.kill(p.pid, 'SIGKILL');
          await p.whenExit;
          await p.stop();
        },
        pause() {
          if (!proc || proc.exited()) throw new Error(`${s.name} is not running`);
          process.kill(proc.pid, 'SIGSTOP');
          paused = true;
        },
        resume() {
          if (proc && !proc.exited()) process.kill(proc.pid, 'SIGCONT');
          paused = false;
        },
        paused: () => paused,
        cutDb() {
          ipt('-I');
          cut = true;
        },
        restoreDb() {
          if (cut) ipt('-D');
          cut = false;
        },
        async leaderGauge() {
          const r = await api.raw('GET', '/metrics').catch(() => undefined);
          if (!r || r.status !== 200) return undefined;
          // bootfarm_leader: holds the lock and the current epoch (server/fleet/metrics.ts)
          const m = /^bootfarm_leader(?:\{[^}]*\})? (\d+)/m.exec(r.text) ?? /^bootfarm_fleet_leader(?:\{[^}]*\})? (\d+)/m.exec(r.text);
          return m ? Number(m[1]) : undefined;
        },
      };
      replicas.push(replica);
    }
    // one at a time: the first migrates the database (others wait on the migration lock anyway)
    for (const r of replicas) await r.start();

    const simNetns = `${rackNs}-sim`;
    addHost(simNetns, 'bfhasim', '');
    // no address until the first lease: a route lets the DHCP client's broadcasts out (from 0.0.0.0, as a PXE ROM's)
    must(['ip', 'route', 'add', '255.255.255.255/32', 'dev', 'eth0'], { netns: simNetns });

    const lbSocket = join(rack.dir, 'lb.sock');
    const fwd = startForwarder({ netns: rackNs, socket: lbSocket, host: LB_IP, port: HTTP_PORT, logFile: join(rack.dir, 'forwarder-lb.log') });
    stops.push(() => fwd.stop());
    const api = socketApi(lbSocket, ADMIN_TOKEN);
    await waitUntil('HAProxy → replicas', 30_000, async () => ((await api.raw('GET', '/readyz').catch(() => undefined))?.status === 200 ? true : undefined), { context: () => tail('haproxy log', haproxy!.output(), 20) });

    const ha: HaRack = {
      rack,
      replicas,
      api,
      haproxy,
      pg: { url: replicaDbUrl, sql },
      simNetns,
      // through the balancer: each chunk may reach another replica (uploads live in PostgreSQL and RGW)
      async pushImage(dir, name, version, channel, via = LB_URL) {
        const manifest = join(dir, 'manifest.json');
        const cmdline = !existsSync(join(dir, 'cmdline')) && existsSync(manifest) ? (JSON.parse(readFileSync(manifest, 'utf8')) as { cmdline?: string }).cmdline : undefined;
        const r = await runAsync([process.execPath, '--import', 'tsx', 'test/e2e/inns.ts', 'image-push', via, ADMIN_TOKEN, 'push', dir, '--name', name, '--version', version, '--channel', channel, ...(channel === 'dev' ? [] : ['--force']), ...(cmdline ? ['--cmdline', cmdline] : [])], { netns: rackNs, timeoutMs: 180_000, cwd: repoRoot });
        if (r.status !== 0) throw new Error(`image push ${name} ${version} → ${channel} failed (${r.status}): ${r.stderr || r.stdout}\n${ha.context()}`);
        return r.stdout;
      },
      context() {
        return [...replicas.map((r) => tail(`${r.name} log`, r.log(), 25)), tail('haproxy log', haproxy!.output(), 15)].join('\n');
      },
      destroy,
    };
    if (images) {
      await ha.pushImage(join(IMAGES_DIR, 'stage1'), 'stage1', 'ha-1', 'prod');
      await ha.pushImage(join(IMAGES_DIR, 'compute'), 'compute', 'ha-1', 'prod');
    }
    return ha;
  } catch (e) {
    await destroy();
    throw e;
  }
}

/** HTTP over a forwarder's unix socket with Buffer bodies (socketApi's client is for JSON). */
function binaryRequest(socketPath: string, method: string, path: string, { body, headers = {} }: { body?: Buffer; headers?: Record<string, string> }): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path, method, headers: { host: 'bootfarm', authorization: `Bearer ${ADMIN_TOKEN}`, ...(body ? { 'content-type': 'application/octet-stream', 'content-length': String(body.length) } : {}), ...headers }, timeout: 60_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.on('error', reject);
      // a replica killed mid-answer: reject (a no-op after 'end'), never leave the test waiting (as socketApi)
      res.on('close', () => {
        if (!res.complete) reject(new Error(`${method} ${path}: the connection closed before the end of the answer`));
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: timeout`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** Pino lines of a replica's log with a msg matching `re`: [epoch ms, parsed line]. */
export function logLines(log: string, re: RegExp): { at: number; line: Record<string, unknown> }[] {
  const out: { at: number; line: Record<string, unknown> }[] = [];
  for (const l of log.split('\n')) {
    if (!l.startsWith('{')) continue;
    try {
      const line = JSON.parse(l) as Record<string, unknown>;
      if (typeof line.msg === 'string' && re.test(line.msg)) out.push({ at: Date.parse(String(line.time)), line });
    } catch {}
  }
  return out;
}

export { alive, run, stopPid };
