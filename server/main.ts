// Wiring only: config in, components built and connected, HTTP server started. No logic lives here.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isMainThread } from 'node:worker_threads';
import type { Server } from 'node:http';
import { createAdaptorServer } from '@hono/node-server';
import { Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { ConfigError, parseSection, type Config } from './config.ts';
import { createFleet, FleetConfig } from './fleet/index.ts';
import { describeReplica } from './fleet/replica.ts';
import { createStalledSessionReaper } from './fleet/stalled-sessions.ts';
import { createRetention } from './fleet/retention.ts';
import { retentionMount } from './api/retention.ts';
import { clusterMount } from './api/cluster.ts';
import { createBeatBuffer } from './fleet/beats.ts';
import { createBeatMetrics } from './fleet/beats-metrics.ts';
import { createDhcpServer, DhcpConfigSchema, type DhcpServer } from '../boot/dhcp/index.ts';
import { createDhcp6Server, Dhcp6ConfigSchema, type Dhcp6Server } from '../boot/dhcp6/index.ts';
import { createDhcpLatency, registerDhcpMetrics } from './dhcp-metrics.ts';
import { registerDhcp6Metrics } from './dhcp6-metrics.ts';
import { createTftpDuration, registerTftpMetrics } from './tftp-metrics.ts';
import { createLeaseDbStore } from './store/leases.ts';
import { createLease6DbStore } from './store/leases6.ts';
import { createBootBackend } from './boot-backend.ts';
import { createMacChanges } from './store/mac-changes.ts';
import { createDb, type DbHandle } from './db/index.ts';
import { createNodeStore } from './store/nodes.ts';
import { createBmcStore } from './store/bmcs.ts';
import { loadKek, parseKey, planSigningSeed, restrictTree } from './secrets.ts';
import { createPlanSigner } from './contract/plan-signature.ts';
import { createKeyring } from './store/keyring.ts';
import { createTokenStore } from './store/tokens.ts';
import { createBmcSetupStore } from './store/bmc-setups.ts';
import { bootstrapAdminToken } from './admin-token.ts';
import { createApp } from './api/app.ts';
import { boundaryWarnings } from './api/trusted.ts';
import { selectProfile } from './domain/profiles.ts';
import { secureBootDefaults, secureBootWarnings, withGrubOverTftp } from './secure-boot.ts';
import { dhcp6TftpWarning } from './boot-paths.ts';
import { createImages, ImagesConfig } from './images/index.ts';
import { tuneHttpServer } from './images/serve.ts';
import { createBootBudget } from './images/budget.ts';
import { pacedBmcFactory } from './bmc/pacer.ts';
import { createTftpServer, createFsOpener, tftpConfigSchema, type TftpServer } from '../boot/tftp/index.ts';
import { createFirmwareStore } from './store/firmware.ts';
import { createCablingStore } from './store/cabling.ts';
import { createFirmwareGate } from './domain/firmware-gate.ts';
import { firmwareMount, nodeCompliance } from './api/firmware.ts';
import { bmcSetupMount } from './api/bmc-setup.ts';
import { createPowerControl, powerMount } from './api/power.ts';
import { secretsMount } from './api/secrets.ts';
import { backupMount } from './api/backup.ts';
import { retry } from './contract/backoff.ts';
import { imagesMount } from './api/images.ts';
import { fleetMount } from './api/fleet.ts';
import { createFleetStore } from './store/fleet.ts';
import { createConsoleStore } from './store/console.ts';
import { createConsoleCollector } from './fleet/console.ts';
import { consoleMount } from './api/console.ts';
import { createBmcFactory } from './bmc/index.ts';
import { startAdminListener, type AdminListener } from './admin-listener.ts';
import { bootListenerFetch } from './api/listeners.ts';
import { systemClock, type Clock } from './clock.ts';
import type { Logger } from './log.ts';

export interface Running {
  /** the boot listener (plain HTTP) */
  url: string;
  port: number;
  /** the admin listener (HTTPS) when `admin` is configured; the boot listener then serves only boot paths */
  admin?: AdminListener;
  db: DbHandle;
  adminToken?: string;
  stop(): Promise<void>;
}

/** Keys that sealed "v1" BMC passwords before issue 14 (config secretKey, <dataDir>/secret.key): imported. */
function legacyKeysOf(config: Config): Buffer[] {
  const out: Buffer[] = [];
  if (config.secretKey) out.push(parseKey(config.secretKey, 'secretKey (BOOTFARM_SECRET_KEY)'));
  const file = join(config.dataDir, 'secret.key');
  if (existsSync(file)) {
    const k = parseKey(readFileSync(file, 'utf8'), file);
    if (!out.some((o) => o.equals(k))) out.push(k);
  }
  return out;
}

async function connectWithRetry(config: Config, log: Logger): Promise<DbHandle> {
  // a PostgreSQL server may still be starting next to us (1, 2, 4, 8, then every 10 s; 30 attempts);
  // embedded PGlite failing to open is not something waiting fixes
  return retry(() => createDb({ url: config.databaseUrl, dataDir: join(config.dataDir, 'pglite') }), {
    baseMs: 1000,
    capMs: 10_000,
    attempts: 30,
    retryable: () => !!config.databaseUrl,
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
    onRetry: (err, n, wait) => log.warn({ err: (err as Error).message, attempt: n + 1, retryInMs: wait }, 'database not reachable at start-up; retrying'),
  });
}

export async function startServer(config: Config, { log, clock = systemClock }: { log: Logger; clock?: Clock }): Promise<Running> {
  // everything the server writes (database, secrets, image store, cache) is for this user only; a worker thread
  // cannot change the process umask, and restrictTree below covers what is already there
  if (isMainThread) process.umask(0o077);
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  for (const p of restrictTree(config.dataDir)) log.warn(p, 'could not make a data directory entry private to this user (0700 directories, 0600 files)');
  // the KEK and any pre-issue-14 secret.key, checked before the database is touched (a bad value fails fast)
  const kek = loadKek(config.secrets, config.dataDir);
  const legacyKeys = legacyKeysOf(config);

  // validate every module's section before touching the database, so a bad setting fails fast and whole
  const fleetConfig = parseSection('fleet', FleetConfig, config.fleet);
  // a profile's heartbeat interval is what its agents beat at: the health check follows it unless set apart
  for (const [name, p] of Object.entries(config.profiles)) fleetConfig.heartbeat.profiles[name] ??= p.heartbeatIntervalSeconds;
  // buffered heartbeats reach the database flushSeconds late: keep that well below the shortest failure window
  const shortestWindow = Math.min(fleetConfig.heartbeat.intervalSeconds, ...Object.values(fleetConfig.heartbeat.profiles)) * fleetConfig.heartbeat.missed;
  if (fleetConfig.heartbeat.flushSeconds * 4 > shortestWindow) throw new ConfigError([`fleet.heartbeat.flushSeconds: ${fleetConfig.heartbeat.flushSeconds} s is more than a quarter of the shortest heartbeat failure window (${shortestWindow} s = interval × missed): nodes could be failed on stale heartbeats`]);
  const dhcpConfig = config.dhcp === undefined ? undefined : parseSection('dhcp', DhcpConfigSchema, config.dhcp);
  const dhcp6Config = config.dhcp6 === undefined ? undefined : parseSection('dhcp6', Dhcp6ConfigSchema, config.dhcp6);
  const tftpConfig = config.tftp === undefined ? undefined : parseSection('tftp', tftpConfigSchema, config.tftp);
  const imagesConfig = parseSection('images', ImagesConfig, config.images);
  for (const w of boundaryWarnings(config)) log.warn(w);
  // UEFI PXE over IPv6 gets dhcp6's tftp:// URL: say so at start if our TFTP server does not serve it
  for (const w of secureBootWarnings(config)) log.warn(w);
  const tftp6 = dhcp6TftpWarning(dhcp6Config, tftpConfig);
  if (tftp6) log.warn(tftp6);
  const db = await connectWithRetry(config, log);
  // the shared keyring: a KEK that does not match the database's data keys stops the start here (KekMismatchError)
  const secrets = createKeyring(db.db, { kek: kek.kek, previousKeks: kek.previous, clock });
  try {
    const k = await secrets.init({ legacyKeys });
    if (k.created || k.imported) log.info({ kekCheck: secrets.kekCheck, legacyImported: k.imported }, 'data keys created in the database');
  } catch (e) {
    await db.close();
    throw e;
  }
  // no configured tokens: one bootstrap admin token for the whole database (server/admin-token.ts)
  const adminToken = config.auth.tokens.length === 0 ? await bootstrapAdminToken({ store: createTokenStore(db.db, { clock }), dataDir: config.dataDir, log }) : undefined;
  if (kek.source === 'generated') {
    const level = config.databaseUrl ? 'warn' : 'info';
    log[level]({ file: kek.path, kekCheck: secrets.kekCheck }, 'the key-encryption key (KEK) was generated into the data directory: fine for one replica; replicas sharing a database need the same KEK configured (secrets.kek, BOOTFARM_KEK or secrets.kekFile)');
  }
  // every replica derives the same plan-signing key from the shared KEK (issue 16 item 7)
  const planSigner = createPlanSigner(planSigningSeed(kek.kek));
  const metrics = new Registry();
  // every series says which replica it comes from (docs/ha.md "Cluster view")
  const replica = describeReplica({ url: config.http.publicUrl });
  metrics.setDefaultLabels({ replica: replica.id });
  collectDefaultMetrics({ register: metrics });
  const nodes = createNodeStore(db.db, { clock });
  const bmcs = createBmcStore(db.db, secrets, { clock });
  const firmware = createFirmwareStore(db.db, { clock });
  const cabling = createCablingStore(db.db, { clock });
  const createBmc = createBmcFactory();
  // the image rollback gate asks the fleet-wide circuit breaker (fleet_control, shared by every replica)
  const fleetStore = createFleetStore(db.db);
  const breaker = { breakerOpen: async () => (await fleetStore.breaker()).open, spans: (since: Date) => fleetStore.breakerSpans(since) };
  // this replica's boot budget (issue 15 item 2): image bodies in flight and registrations at once
  const budget = createBootBudget(config.boot.budget);
  for (const [name, help, pick] of [
    ['bootfarm_boot_transfers_in_flight', 'Image bodies being sent by this replica (boot.budget.transfers)', () => budget.stats().transfers],
    ['bootfarm_boot_registrations_in_flight', 'Registrations in progress on this replica (boot.budget.registrations)', () => budget.stats().registrations],
    ['bootfarm_boot_refused_boots', '/ipxe answers that told a node to wait for the boot budget (since start)', () => budget.stats().refusedBoots],
    ['bootfarm_boot_refused_registrations', 'Registrations answered 503 busy by the boot budget (since start)', () => budget.stats().refusedRegistrations],
  ] as const)
    new Gauge({ name, help, registers: [metrics], collect() { this.set(pick()); } });
  const images = await createImages({ config: { dataDir: config.dataDir, images: imagesConfig }, db: db.db, log: log.child({ component: 'images' }), clock, metrics, breaker, transfer: budget.transfer });
  // bounded tables (issue 17 item 5): pruned by the leader, in short fenced batches
  // serial consoles (issue 16 item 4): the leader reads booting nodes' consoles over IPMI SOL into a bounded store
  const consoleStore = createConsoleStore(db.db, { clock, maxBytes: fleetConfig.console.maxBytesPerNode });
  const consoles = createConsoleCollector({
    config: fleetConfig.console,
    listNodes: (states) => nodes.list({ state: states, limit: 100_000 }),
    target: async (uuid) => {
      const c = await bmcs.getCredentials(uuid);
      if (!c || c.driver !== 'ipmi') return null;
      const cipher = c.options?.cipherSuite;
      return { address: c.address, port: c.port, username: c.username, password: c.password, cipherSuite: typeof cipher === 'number' ? cipher : undefined };
    },
    store: consoleStore,
    logger: log.child({ component: 'console' }),
    metrics,
  });
  const retention = createRetention({ db: db.db, config: config.retention, clock, metrics, logger: log.child({ component: 'retention' }) });
  const fleet = createFleet({
    db,
    replica,
    store: nodes,
    bmcStore: bmcs,
    clock,
    config: fleetConfig,
    logger: log,
    metrics,
    // the upload sweep is safe on any replica (conditional marking, idempotent abort); one is enough
    leaderTasks: [
      { name: 'image-rollback', run: () => images.evaluateRollbacks() },
      { name: 'upload-expiry', run: () => images.sweepUploads() },
      retention.task,
      { name: 'console-capture', run: () => consoles.reconcile(), release: (why) => consoles.release(why) },
      createStalledSessionReaper({ db, metrics, logger: log.child({ component: 'db' }) }).task,
    ],
  });
  // operators' power actions share the fleet's power-on pacer: a scripted power-on of a rack goes out in waves
  const pacedBmcs = pacedBmcFactory(createBmc, fleet.powerPacer);
  const beatMetrics = createBeatMetrics(metrics);
  const beats = createBeatBuffer({ store: nodes, flushSeconds: fleetConfig.heartbeat.flushSeconds, log: log.child({ component: 'heartbeats' }), onFlush: beatMetrics.onFlush });
  beatMetrics.attach(beats);
  beats.start();
  const app = createApp(
    { config, db, nodes, beats, budget, bmcs, images: images.catalog, inspection: createFirmwareGate({ store: firmware }), log, clock, metrics, rebuild: fleet.rebuild, fleetBreaker: fleet.breaker, fleetWatchedSince: fleet.watchedSince, power: createPowerControl({ nodes, bmcs, createBmc: pacedBmcs }), imageChannels: images.pipeline, firmwareCompliance: (uuid) => nodeCompliance(firmware, uuid), planSigner, bootFiles: createFsOpener({ ...(tftpConfig ?? {}), defaults: secureBootDefaults(config) }), cabling },
    { extra: [firmwareMount({ nodes, firmware, cabling, clock, metrics, planSigner }), bmcSetupMount({ nodes, bmcs, setups: createBmcSetupStore(db.db, { secrets, clock }), clock, createBmc, log }), imagesMount(images), powerMount({ nodes, bmcs, createBmc: pacedBmcs }), fleetMount({ fleet, nodes }), clusterMount({ replicas: fleet.replicas, clock, goneAfterMs: fleet.goneAfterMs }), secretsMount({ keyring: secrets }), backupMount({ db, clock, log }), retentionMount({ retention }), consoleMount({ nodes, consoles: consoleStore, clock }), () => ({ at: '/', app: images.serveApp })] },
  );

  // with an admin listener, the boot listener keeps only what nodes use (server/api/listeners.ts)
  const server = createAdaptorServer({ fetch: config.admin ? bootListenerFetch(app.fetch) : app.fetch }) as Server;
  // iPXE keeps idle HTTP connections for ~10 s: keep ours open longer so it can reuse them
  tuneHttpServer(server, { keepAliveMs: config.http.keepAliveSeconds * 1000 });
  // a boot storm opens connections faster than Node's default backlog (511) drains them
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port: config.http.port, host: config.http.host, backlog: 4096 }, () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.http.port;
  // a wildcard is reached on loopback; an IPv6 literal goes in brackets (RFC 3986 §3.2.2)
  const host = config.http.host === '0.0.0.0' ? '127.0.0.1' : config.http.host === '::' ? '::1' : config.http.host;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  let admin: AdminListener | undefined;
  try {
    if (config.admin) admin = await startAdminListener({ config: config.admin, fetch: app.fetch, log });
  } catch (e) {
    server.close();
    await db.close();
    throw e;
  }
  log.info({ url, db: db.kind, dataDir: config.dataDir, ...(admin ? { adminUrl: admin.url } : {}) }, 'bootfarm serving');
  fleet.start();
  let tftp: TftpServer | undefined;
  if (tftpConfig?.enabled) {
    tftp = createTftpServer({ ...tftpConfig, open: withGrubOverTftp(createFsOpener({ ...tftpConfig, defaults: secureBootDefaults(config) }), { fetch: (req, env) => app.fetch(req, env), baseUrl: config.http.publicUrl ?? dhcpConfig?.httpBase }), logger: log.child({ component: 'tftp' }), onTransferDone: createTftpDuration(metrics) });
    const { listening } = await tftp.start();
    registerTftpMetrics(metrics, tftp);
    // one socket per address, IPv4 and IPv6 apart (boot/tftp/address.ts)
    log.info({ listening: listening.map((l) => (l.family === 6 ? `[${l.address}]:${l.port}` : `${l.address}:${l.port}`)) }, 'TFTP serving');
  }
  // DHCP binds privileged ports on a named interface: only when configured (never by default on `make run`)
  let dhcp: DhcpServer | undefined;
  const bootBackend = dhcpConfig?.enabled || dhcp6Config?.enabled ? createBootBackend({ nodes, changes: createMacChanges(db), log: log.child({ component: 'boot-backend' }), bootloaderOf: (n) => config.profiles[selectProfile(config.profiles, n) ?? '']?.bootloader ?? 'ipxe' }) : undefined;
  if (dhcpConfig?.enabled) {
    dhcp = createDhcpServer({ ...dhcpConfig, backend: bootBackend!, leases: createLeaseDbStore(db.db), logger: log.child({ component: 'dhcp' }), onHandled: createDhcpLatency(metrics) });
    await dhcp.start();
    registerDhcpMetrics(metrics, { mode: dhcpConfig.mode, responder: dhcp.responder, socketDrops: () => dhcp!.socketDrops() });
    log.info({ mode: dhcpConfig.mode, interface: dhcpConfig.interface, serverIp: dhcpConfig.serverIp }, 'DHCP serving');
  }
  // DHCPv6 likewise only when enabled. Its leases are in dhcp6_leases (server/store/leases6.ts): a restart keeps them,
  // and replicas serving one link share them, the store refusing a binding of an address another replica's client holds.
  let dhcp6: Dhcp6Server | undefined;
  if (dhcp6Config?.enabled) {
    dhcp6 = createDhcp6Server({ ...dhcp6Config, backend: bootBackend!, leases: createLease6DbStore(db.db), logger: log.child({ component: 'dhcp6' }) });
    await dhcp6.start();
    registerDhcp6Metrics(metrics, dhcp6);
    log.info({ interface: dhcp6Config.interface, serverAddress: dhcp6Config.serverAddress, serverDuid: dhcp6.serverDuid() }, 'DHCPv6 serving');
  }

  return {
    url,
    port,
    ...(admin ? { admin } : {}),
    db,
    adminToken,
    async stop() {
      await admin?.close();
      await dhcp?.stop();
      await dhcp6?.stop();
      bootBackend?.stop();
      await tftp?.stop();
      await fleet.stop();
      await consoles.stop();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections?.();
      });
      // after the listener: no new beats; what is buffered is written before the database closes
      await beats.stop().catch((e: Error) => log.warn({ err: e.message }, 'heartbeats could not be flushed at shutdown'));
      await db.close();
    },
  };
}
