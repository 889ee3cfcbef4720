// The rack's supporting daemons, each started inside the rack namespace and stopped by PID:
//  - radvd: a router advertisement for a private fd00::/64 on the bridge. iPXE otherwise waits ~15 s for IPv6
//    autoconfiguration on every boot (FACTS.md); AdvDefaultLifetime 0 so nobody takes us for a router.
//  - dnsmasq (DHCP only, --port=0): the plumbing proof before bootfarm's own DHCP lands, and the baseline.
//  - lldpd on each node's tap (a bridge never forwards LLDP frames, IEEE 802.1AB / 802.1D reserved group
//    address 01:80:c2:00:00:0e), so the stage-1 agent sees a real neighbour with our system name and a port
//    description per node.
//  - tgtd: a user-space iSCSI target with one file-backed LUN per node behind CHAP (RFC 7143 §12.1.3).
//  - the bootfarm server itself, and a tiny unix-socket → TCP forwarder so the test process (host namespace)
//    can call the server's admin API without giving the host an address in the rack.
import { mkdirSync, writeFileSync, closeSync, openSync, ftruncateSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { must, run, startManaged, sleep, waitUntil, type Managed } from './proc.ts';

// ---------- radvd ----------

/** `managed`: the Managed and Other flags too (RFC 4861 §4.2), for an IPv6-only rack: iPXE and UEFI firmware take their
 * address and boot-file URL from DHCPv6 only when an RA says so; the autonomous prefix stays on for the stage-1 and
 * compute OS, which autoconfigure (their busybox has no DHCPv6 client; images/rootfs/common/lib/bootfarm/common.sh). */
export function startRadvd({ netns, dir, iface, prefix, managed = false }: { netns: string; dir: string; iface: string; prefix: string; managed?: boolean }): Managed {
  const conf = join(dir, 'radvd.conf');
  writeFileSync(
    conf,
    `# written by test/e2e/services.ts
interface ${iface} {
  AdvSendAdvert on;${managed ? '\n  AdvManagedFlag on;\n  AdvOtherConfigFlag on;' : ''}
  MinRtrAdvInterval 3;
  MaxRtrAdvInterval 10;
  # not a default router: only the prefix, so iPXE's autoconfiguration finishes at once (RFC 4861 6.2.1)
  AdvDefaultLifetime 0;
  prefix ${prefix} {
    AdvOnLink on;
    AdvAutonomous on;
  };
};
`,
  );
  return startManaged('radvd', ['radvd', '-n', '-C', conf, '-p', join(dir, 'radvd.pid'), '-m', 'stderr'], { netns, logFile: join(dir, 'radvd.log') });
}

// ---------- dnsmasq (proof / baseline only) ----------

export function startDnsmasq({ netns, dir, iface, range, bootUrl, tftpRoot, tftpServer }: { netns: string; dir: string; iface: string; range: [string, string]; bootUrl: string; tftpRoot?: string; tftpServer?: string }): Managed {
  const args = [
    'dnsmasq',
    '--keep-in-foreground', '--log-facility=-', '--log-dhcp',
    '--conf-file=/dev/null', '--port=0', '--user=root', '--group=root',
    `--interface=${iface}`, '--bind-interfaces',
    `--dhcp-range=${range[0]},${range[1]},255.255.255.0,1h`,
    `--dhcp-leasefile=${join(dir, 'dnsmasq.leases')}`,
    `--pid-file=${join(dir, 'dnsmasq.pid')}`,
    '--dhcp-authoritative',
    // iPXE (ROM or chained) says so in option 77; it gets the script URL, which breaks the chain loop
    '--dhcp-userclass=set:ipxe,iPXE',
    `--dhcp-boot=tag:ipxe,${bootUrl}`,
    ...(tftpRoot ? ['--enable-tftp', `--tftp-root=${tftpRoot}`] : []),
    // PXE firmware (not yet iPXE): the iPXE binary by TFTP, from dnsmasq itself or from another TFTP server
    // (siaddr = tftpServer). Client architecture 7 = EFI x86-64 (RFC 4578 §2.1).
    ...(tftpRoot || tftpServer
      ? ['--dhcp-match=set:efi64,option:client-arch,7', `--dhcp-boot=tag:!ipxe,tag:efi64,snponly.efi${tftpServer ? `,bfe2e,${tftpServer}` : ''}`, `--dhcp-boot=tag:!ipxe,tag:!efi64,undionly.kpxe${tftpServer ? `,bfe2e,${tftpServer}` : ''}`]
      : []),
  ];
  return startManaged('dnsmasq', args, { netns, logFile: join(dir, 'dnsmasq.log') });
}

// ---------- bootfarm's DHCP module on its own (until it is wired into the server) ----------

export async function startBootfarmDhcp({ netns, dir, repoRoot, iface, serverIp, httpBase }: { netns: string; dir: string; repoRoot: string; iface: string; serverIp: string; httpBase: string }): Promise<Managed> {
  const proc = startManaged('bootfarm-dhcp', [process.execPath, '--import', 'tsx', 'test/e2e/dhcp-entry.ts', iface, serverIp, httpBase], { netns, cwd: repoRoot, logFile: join(dir, 'bootfarm-dhcp.log'), stdin: 'pipe' });
  await waitUntil('bootfarm DHCP listening', 30_000, () => {
    if (proc.exited()) throw new Error(`bootfarm DHCP exited ${proc.exitCode()}: ${proc.output().slice(-1500)}`);
    return /^READY$/m.test(proc.output()) ? true : undefined;
  });
  return proc;
}

// ---------- nginx (static files: the baseline, and images served before bootfarm's image store is wired) ----------

/** nginx serving `root` on ip:port inside the namespace (runs as root so it can read temp dirs). */
export function startNginx({ netns, dir, ip, port, root }: { netns: string; dir: string; ip: string; port: number; root: string }): Managed {
  const conf = join(dir, `nginx-${port}.conf`);
  writeFileSync(
    conf,
    `user root; worker_processes 1; daemon off; pid ${dir}/nginx-${port}.pid; error_log ${dir}/nginx-${port}.err;
events { worker_connections 64; }
http { access_log ${dir}/nginx-${port}.access; default_type application/octet-stream; sendfile on; keepalive_timeout 65;
  types { text/plain ipxe; }
  server { listen ${ip}:${port}; root ${root}; } }
`,
  );
  return startManaged(`nginx:${port}`, ['nginx', '-c', conf, '-p', dir], { netns, logFile: join(dir, `nginx-${port}.log`) });
}

/** bootfarm's TFTP module on ADDRESS:69 inside the namespace (test/e2e/tftp-entry.ts). */
export async function startBootfarmTftp({ netns, dir, repoRoot, address }: { netns: string; dir: string; repoRoot: string; address: string }): Promise<Managed> {
  const proc = startManaged('bootfarm-tftp', [process.execPath, '--import', 'tsx', 'test/e2e/tftp-entry.ts', address], { netns, cwd: repoRoot, logFile: join(dir, 'bootfarm-tftp.log'), stdin: 'pipe' });
  await waitUntil('bootfarm TFTP listening', 30_000, () => {
    if (proc.exited()) throw new Error(`bootfarm TFTP exited ${proc.exitCode()}: ${proc.output().slice(-1500)}`);
    return /^READY$/m.test(proc.output()) ? true : undefined;
  });
  return proc;
}

// ---------- lldpd ----------

export interface Lldpd {
  proc: Managed;
  socket: string;
  systemName: string;
  /** `lldpcli show neighbors` etc. through this instance's control socket */
  cli(args: string[]): string;
  stop(): Promise<void>;
}

/**
 * One lldpd = one switch: its system name (and, with `chassisId`, its chassis ID) on each of its ports. Several run
 * in one namespace side by side, each with its own control socket and files (`name`); without `chassisId` the
 * chassis ID is a MAC of the namespace's interfaces, which two instances would share.
 */
export async function startLldpd({ netns, dir, ports, systemName = 'bfe2e-switch', chassisId, name = 'lldpd' }: { netns: string; dir: string; ports: { iface: string; description: string }[]; systemName?: string; chassisId?: string; name?: string }): Promise<Lldpd> {
  const socket = join(dir, `${name}.sock`);
  const conf = join(dir, `${name}.conf`);
  writeFileSync(
    conf,
    [
      `configure system hostname ${systemName}`,
      ...(chassisId ? [`configure system chassisid "${chassisId}"`] : []),
      'configure system description "bootfarm e2e rack switch"',
      // 1 s instead of 30 s: the stage-1 agent collects facts about a second after its own lldpd starts, and a
      // switch port that transmits rarely is missed (measured: "0 LLDP neighbours" at 5 s)
      'configure lldp tx-interval 1',
      ...ports.map((p) => `configure ports ${p.iface} lldp portdescription "${p.description}"`),
      '',
    ].join('\n'),
  );
  const pattern = ports.map((p) => p.iface).join(',') || 'bfe2et*';
  const proc = startManaged(name, ['lldpd', '-d', '-u', socket, '-I', pattern, '-O', conf], { netns, logFile: join(dir, `${name}.log`) });
  const cli = (args: string[]) => must(['lldpcli', '-u', socket, ...args], { netns });
  await waitUntil('lldpd control socket', 10_000, () => (run(['lldpcli', '-u', socket, 'show', 'configuration'], { netns }).status === 0 ? true : undefined), { context: () => proc.output().slice(-500) });
  return { proc, socket, systemName, cli, stop: () => proc.stop() };
}

// ---------- tgtd (iSCSI target) ----------

export interface IscsiLun {
  uuid: string;
  target: string;
  tid: number;
  lun: number;
  file: string;
}

export interface Tgtd {
  proc: Managed;
  portal: string;
  controlPort: number;
  chapUser: string;
  chapPassword: string;
  luns: IscsiLun[];
  /** `tgtadm --mode target --op show` */
  show(): string;
  stop(): Promise<void>;
}

export async function startTgtd({ netns, dir, ip, nodes, targetPrefix = 'iqn.2026-11.io.bootfarm:', lun = 1, sizeMiB = 64, chapUser = 'bfe2e', chapPassword = 'bfe2e-chap-secret' }: { netns: string; dir: string; ip: string; nodes: string[]; targetPrefix?: string; lun?: number; sizeMiB?: number; chapUser?: string; chapPassword?: string }): Promise<Tgtd> {
  // tgtd's management socket is a path (/var/run/tgtd/socket.N), shared across namespaces: a control port of our
  // own keeps us clear of any other tgtd on the machine.
  // (tgtd accepts control ports up to 32767 only)
  const controlPort = 20000 + (process.pid % 12000);
  mkdirSync('/var/run/tgtd', { recursive: true });
  const proc = startManaged('tgtd', ['tgtd', '-f', '-C', String(controlPort), '--iscsi', `portal=${ip}:3260`], { netns, logFile: join(dir, 'tgtd.log') });
  const adm = (args: string[]) => must(['tgtadm', '-C', String(controlPort), '--lld', 'iscsi', ...args], { netns });
  await waitUntil('tgtd management socket', 10_000, () => {
    if (proc.exited()) throw new Error(`tgtd exited: ${proc.output().slice(-500)}`);
    return run(['tgtadm', '-C', String(controlPort), '--lld', 'iscsi', '--op', 'show', '--mode', 'target'], { netns }).status === 0 ? true : undefined;
  });
  const luns: IscsiLun[] = [];
  adm(['--op', 'new', '--mode', 'account', '--user', chapUser, '--password', chapPassword]);
  nodes.forEach((uuid, i) => {
    const tid = i + 1;
    const target = `${targetPrefix}${uuid}`;
    const file = join(dir, `lun-${uuid}.img`);
    const fd = openSync(file, 'w');
    ftruncateSync(fd, sizeMiB * 1024 * 1024); // sparse
    closeSync(fd);
    adm(['--op', 'new', '--mode', 'target', '--tid', String(tid), '-T', target]);
    adm(['--op', 'new', '--mode', 'logicalunit', '--tid', String(tid), '--lun', String(lun), '-b', file]);
    adm(['--op', 'bind', '--mode', 'target', '--tid', String(tid), '-I', 'ALL']);
    // binding an account to the target turns CHAP on for it: logins without the secret are refused
    adm(['--op', 'bind', '--mode', 'account', '--tid', String(tid), '--user', chapUser]);
    luns.push({ uuid, target, tid, lun, file });
  });
  return {
    proc,
    portal: `${ip}:3260`,
    controlPort,
    chapUser,
    chapPassword,
    luns,
    show: () => adm(['--op', 'show', '--mode', 'target']),
    async stop() {
      await proc.stop();
      for (const f of [`/var/run/tgtd/socket.${controlPort}`, `/var/run/tgtd/socket.${controlPort}.lock`]) rmSync(f, { force: true });
    },
  };
}

// ---------- the bootfarm server ----------

export interface ServerProc {
  proc: Managed;
  /** http://10.77.0.1:PORT (http://[fd00:77::1]:PORT on an IPv6-only rack) as nodes see it */
  url: string;
  port: number;
  adminToken: string;
  dataDir: string;
  /** admin/boot API through the forwarder */
  api: ApiClient;
  stop(): Promise<void>;
}

export interface ApiClient {
  get<T = unknown>(path: string): Promise<T>;
  post<T = unknown>(path: string, body: unknown): Promise<T>;
  put<T = unknown>(path: string, body: unknown): Promise<T>;
  raw(method: string, path: string, body?: unknown): Promise<{ status: number; text: string }>;
}

/** HTTP over a unix socket (the forwarder's), with the admin bearer token. */
export function socketApi(socketPath: string, token: string): ApiClient {
  const raw = (method: string, path: string, body?: unknown) =>
    new Promise<{ status: number; text: string }>((resolve, reject) => {
      const data = body === undefined ? undefined : JSON.stringify(body);
      // `timeout` bounds idleness only; a whole-request deadline bounds a server (or the forwarder behind HAProxy)
      // that trickles, and a response whose socket closes before its end rejects instead of leaving the test
      // waiting with no answer (HA run 4 of 2026-12-03 sat on a probe for minutes)
      const deadline = setTimeout(() => req.destroy(new Error(`${method} ${path}: no complete answer in 30 s`)), 30_000);
      const fail = (e: Error) => {
        clearTimeout(deadline);
        reject(e);
      };
      const req = request({ socketPath, path, method, headers: { host: 'bootfarm', authorization: `Bearer ${token}`, ...(data ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } : {}) }, timeout: 15_000 }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (text += d));
        res.on('error', fail);
        res.on('end', () => {
          clearTimeout(deadline);
          resolve({ status: res.statusCode ?? 0, text });
        });
        res.on('close', () => {
          if (!res.complete) fail(new Error(`${method} ${path}: the connection closed before the end of the answer (${text.length} bytes read)`));
        });
      });
      req.on('timeout', () => req.destroy(new Error(`${method} ${path}: timeout`)));
      req.on('error', fail);
      req.end(data);
    });
  const json = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    const r = await raw(method, path, body);
    if (r.status < 200 || r.status >= 300) throw new Error(`${method} ${path} → ${r.status}: ${r.text.slice(0, 500)}`);
    return JSON.parse(r.text) as T;
  };
  return { get: (p) => json('GET', p), post: (p, b) => json('POST', p, b), put: (p, b) => json('PUT', p, b), raw };
}

// A dependency-free forwarder: accepts on a unix socket (a file, so reachable from the host namespace) and
// connects each stream to host:port inside the namespace.
const FORWARDER_JS = `
const net = require('node:net'); const fs = require('node:fs');
const [sock, host, port] = process.argv.slice(1);
try { fs.unlinkSync(sock); } catch {}
net.createServer((c) => { const u = net.connect(Number(port), host); c.pipe(u).pipe(c); const end = () => { c.destroy(); u.destroy(); }; c.on('error', end); u.on('error', end); }).listen(sock, () => console.log('forwarding ' + sock + ' -> ' + host + ':' + port));
process.on('SIGTERM', () => process.exit(0));
`;

export function startForwarder({ netns, socket, host, port, logFile }: { netns: string; socket: string; host: string; port: number; logFile?: string }): Managed {
  return startManaged(`forward:${port}`, [process.execPath, '-e', FORWARDER_JS, socket, host, String(port)], { netns, logFile });
}

/** `ip` is the URL host: 10.77.0.1, or [fd00:77::1] (then the server listens on `::`, which takes the forwarder's
 * 127.0.0.1 too: net.ipv6.bindv6only is 0) */
export async function startBootfarm({ netns, dir, repoRoot, ip, port = 8080, env = {}, configFile, adminToken = 'bfe2e-admin-token-0123456789' }: { netns: string; dir: string; repoRoot: string; ip: string; port?: number; env?: Record<string, string>; configFile?: string; adminToken?: string }): Promise<ServerProc> {
  const dataDir = join(dir, 'server-data');
  mkdirSync(dataDir, { recursive: true });
  const url = `http://${ip}:${port}`;
  const proc = startManaged('bootfarm', [process.execPath, '--import', 'tsx', 'server/cli.ts', 'serve'], {
    netns,
    cwd: repoRoot,
    logFile: join(dir, 'server.log'),
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      BOOTFARM_DATA_DIR: dataDir,
      BOOTFARM_PUBLIC_URL: url,
      BOOTFARM_HTTP__HOST: ip.startsWith('[') ? '::' : '0.0.0.0',
      BOOTFARM_HTTP__PORT: String(port),
      BOOTFARM_TOKENS: `admin:${adminToken}`,
      BOOTFARM_LOG_LEVEL: 'info',
      ...(configFile ? { BOOTFARM_CONFIG: configFile } : {}),
      ...env,
    },
  });
  const socket = join(dir, 'api.sock');
  const fwd = startForwarder({ netns, socket, host: '127.0.0.1', port, logFile: join(dir, 'forwarder.log') });
  const api = socketApi(socket, adminToken);
  try {
    await waitUntil('bootfarm /healthz', 60_000, async () => {
      if (proc.exited()) throw new Error(`bootfarm server exited with ${proc.exitCode()}`);
      const r = await api.raw('GET', '/healthz');
      return r.status === 200 ? true : undefined;
    }, { intervalMs: 250, context: () => proc.output().slice(-3000) });
  } catch (e) {
    await fwd.stop();
    await proc.stop();
    throw e;
  }
  return {
    proc,
    url,
    port,
    adminToken,
    dataDir,
    api,
    async stop() {
      await proc.stop(8000);
      await fwd.stop();
    },
  };
}

/** Waits until something listens on ip:port inside the namespace (a TCP connect from there succeeds). */
export async function waitTcp(netns: string, ip: string, port: number, timeoutMs = 10_000): Promise<void> {
  const probe = `require('node:net').connect(${port}, '${ip}').on('connect', () => process.exit(0)).on('error', () => process.exit(1))`;
  await waitUntil(`TCP ${ip}:${port} in ${netns}`, timeoutMs, () => (run([process.execPath, '-e', probe], { netns, timeoutMs: 5000 }).status === 0 ? true : undefined), { intervalMs: 200 });
}

/** Starts test/harness/{postgres,ceph}.ts inside the namespace through inns.ts; resolves with what it printed. */
export async function startInNetns<T>(kind: 'postgres' | 'ceph', { netns, dir, repoRoot, timeoutMs = 90_000, options }: { netns: string; dir: string; repoRoot: string; timeoutMs?: number; options?: Record<string, unknown> }): Promise<{ proc: Managed; info: T; stop(): Promise<void> }> {
  // stdin is a pipe the helper watches: if this process dies, the pipe closes and the helper stops its harness
  const proc = startManaged(`inns:${kind}`, [process.execPath, '--import', 'tsx', 'test/e2e/inns.ts', kind, ...(options ? [JSON.stringify(options)] : [])], { netns, cwd: repoRoot, logFile: join(dir, `${kind}.log`), stdin: 'pipe' });
  const line = await waitUntil(`${kind} harness in ${netns}`, timeoutMs, () => {
    if (proc.exited()) throw new Error(`${kind} harness exited ${proc.exitCode()}: ${proc.output().slice(-1500)}`);
    return /^READY (.*)$/m.exec(proc.output())?.[1];
  }, { intervalMs: 200 });
  // the helper stops its harness on SIGTERM (Postgres: pg_ctl stop; Ceph: every daemon by PID)
  return { proc, info: JSON.parse(line) as T, stop: () => proc.stop(30_000) };
}

export { sleep };
