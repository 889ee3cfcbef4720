// Configuration: parsed once in main with zod, from an optional YAML/JSON file (BOOTFARM_CONFIG) overlaid by
// environment variables, then passed down. Nothing imports a config singleton.
// Environment: DATABASE_URL, BOOTFARM_DATA_DIR, BOOTFARM_LOG_LEVEL, BOOTFARM_PUBLIC_URL, BOOTFARM_SECRET_KEY,
// BOOTFARM_KEK, BOOTFARM_KEK_FILE,
// BOOTFARM_TOKENS ("role:token,role:token"), and any nested setting as BOOTFARM_<SECTION>__<KEY>=value
// (e.g. BOOTFARM_HTTP__PORT=8080, BOOTFARM_DHCP__MODE=proxy); values that parse as JSON are taken as JSON.
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { isIP } from 'node:net';
import { z } from 'zod';
import { jsonDepth, MAX_DEPTH, yamlDepth } from './contract/limits.ts';

export const Role = z.enum(['viewer', 'operator', 'admin']);
export type Role = z.infer<typeof Role>;

const Port = z.coerce.number().int().min(0).max(65535);

const Cidr = z.string().refine((v) => {
  const [a, b] = v.split('/');
  const f = isIP(a ?? '');
  return f !== 0 && (b === undefined || (/^\d+$/.test(b) && Number(b) <= (f === 4 ? 32 : 128)));
}, 'must be an address or CIDR like 10.20.0.0/24');

const RateLimitSchema = z.strictObject({ perMinute: z.coerce.number().int().min(0), burst: z.coerce.number().int().min(1) });
/** A node fetches /boot.ipxe and /ipxe/<uuid> once per boot (every retrySeconds while it waits), and its agent
 * makes a handful of calls per boot plus one heartbeat per interval: these leave a real node far below the
 * limits and bound what one source can make the server do. */
export const DEFAULT_RATE_LIMITS = { ipxe: { perMinute: 60, burst: 20 }, agent: { perMinute: 600, burst: 120 } };

export const ProfileConfig = z.strictObject({
  /** image name and channel in the image catalog; never a raw digest */
  image: z.string().min(1).default('hypervisor'),
  channel: z.string().min(1).default('prod'),
  /** appended to the image's default kernel command line */
  cmdline: z.string().default(''),
  heartbeatIntervalSeconds: z.coerce.number().int().min(1).max(3600).default(30),
  /** how the node's firmware boots stage-1 (issue 19 item 1): `ipxe` (iPXE, /ipxe/<uuid>) or `shim-grub` (Secure
   * Boot: shimx64.efi → grubnetx64.efi → /grub/<uuid>.cfg, docs/secure-boot.md) */
  bootloader: z.enum(['ipxe', 'shim-grub']).default('ipxe'),
  /** iSCSI storage for the compute OS: target name is `${targetPrefix}${uuid}` */
  iscsi: z
    .strictObject({
      portal: z.string().min(1),
      targetPrefix: z.string().default('iqn.2026-11.io.bootfarm:'),
      lun: z.coerce.number().int().min(0).default(1),
      initiatorPrefix: z.string().default('iqn.2026-11.io.bootfarm.node:'),
      chapUser: z.string().optional(),
      chapPassword: z.string().optional(),
    })
    .optional(),
  /** the bond the compute OS builds from two NICs (issue 16 item 1); members are chosen from LLDP at `detail` */
  bond: z
    .strictObject({
      name: z.string().regex(/^[a-z][a-z0-9]{0,14}$/, 'a Linux device name: lower-case letters and digits, at most 15').default('bond0'),
      mode: z.enum(['802.3ad', 'active-backup']).default('802.3ad'),
    })
    .prefault({}),
  /** IPAM networks the node gets an address on (issue 16 item 1), in order; the first with a gateway per address
   * family gives the default route. `interface` is the allocation's key (a role or device name): the bond's name puts
   * the address on the bond (or on the only NIC of a one-NIC node), any other name on that NIC. */
  networks: z
    .array(
      z.strictObject({
        name: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/),
        interface: z.string().regex(/^[a-z][a-z0-9]{0,14}$/).default('bond0'),
      }),
    )
    .default([]),
  /** inventory only (issue 16 item 6): stage-1 registers and checks firmware, then the node powers itself off and
   * stays `ready` with reason "inventory only"; it is never handed a profile. Per label: a profile that matches it. */
  inventoryOnly: z.boolean().default(false),
  /** nodes whose labels include all of these get this profile (most specific wins, then name) */
  match: z.record(z.string(), z.string()).default({}),
});
export type ProfileConfig = z.infer<typeof ProfileConfig>;

const FailureLimit = (failures: number, windowSeconds: number) =>
  z.strictObject({ failures: z.coerce.number().int().min(1).default(failures), windowSeconds: z.coerce.number().int().min(1).max(86400).default(windowSeconds) }).prefault({});

export const UiConfig = z
  .strictObject({
    /** a session ends this long after login (logout ends it earlier) */
    sessionTtlSeconds: z.coerce.number().int().min(60).max(30 * 86400).default(12 * 3600),
    /** failed logins tolerated per source address, and from all addresses together, within a sliding window;
     * beyond that /ui/login answers 429 with Retry-After, whatever token is presented */
    login: z.strictObject({ perAddress: FailureLimit(10, 600), global: FailureLimit(100, 600) }).prefault({}),
  })
  .prefault({});
export type UiConfig = z.infer<typeof UiConfig>;

/**
 * The boot budget of one replica (server/images/budget.ts, issue 15 item 2). Defaults for one server on a 10 Gbit/s
 * boot network: 64 stage-1 downloads at once share ~1.2 GB/s (a ~60 MB kernel + initrd in a few seconds each), and
 * 32 registrations keep the database's queue short. Over budget /ipxe tells the node to wait retrySeconds–2×
 * retrySeconds and ask again; register answers 503 with that Retry-After. 0 turns a limit off.
 */
export const BootBudgetConfig = z.strictObject({
  transfers: z.coerce.number().int().min(0).default(64),
  registrations: z.coerce.number().int().min(0).default(32),
  retrySeconds: z.coerce.number().int().min(1).max(600).default(5),
});
export type BootBudgetConfig = z.infer<typeof BootBudgetConfig>;

/** docs/security-model.md: when /ipxe opens a stage-1 boot attempt and how long its token lives */
/** Debian's signed shim (package shim-signed) and signed network GRUB (package grub-efi-amd64-signed) */
export const SecureBootConfig = z.strictObject({
  shim: z.string().min(1).default('/usr/lib/shim/shimx64.efi.signed'),
  grub: z.string().min(1).default('/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed'),
});

export const BootAttemptsConfig = z.strictObject({
  /** a stage-1 token expires this long after its attempt opened or was last used */
  tokenTtlSeconds: z.coerce.number().int().min(60).max(86_400).default(1800),
  /** an active node counts as gone (its boot over) after this many heartbeat intervals without a heartbeat */
  goneAfterMissedBeats: z.coerce.number().min(1).max(100).default(2),
  /** open attempts per node from different addresses; one more address gets a retry script */
  maxOpen: z.coerce.number().int().min(1).max(64).default(4),
  /** how long a boot the server started (rebuild, power action) is waited for */
  expectedBootSeconds: z.coerce.number().int().min(60).default(3600),
});
export type BootAttemptsConfig = z.infer<typeof BootAttemptsConfig>;

const Days = (d: number) => z.coerce.number().int().min(0).max(36_500).default(d);

/**
 * Retention (issue 17 item 5, server/fleet/retention.ts): how long rows of the tables that grow with time are kept.
 * The leader prunes every intervalSeconds, in batches of batchSize rows (one short statement each), at most
 * maxBatchesPerRun batches per table per run. A number of days of 0 keeps that table forever. What the live
 * system still reads is never pruned (server/store/retention.ts): a node's latest facts and latest transition
 * event, unexpired leases, open boot attempts, pending webhooks, running rebuilds, open firmware attempts and each node's
 * latest rebuild and firmware attempt, the active and legacy data keys and any data key a sealed value names.
 */
export const RetentionConfig = z
  .strictObject({
    enabled: z.boolean().default(true),
    intervalSeconds: z.coerce.number().int().min(60).max(7 * 86_400).default(3600),
    batchSize: z.coerce.number().int().min(1).max(100_000).default(1000),
    maxBatchesPerRun: z.coerce.number().int().min(1).max(100_000).default(100),
    /** node events (timelines) */
    eventsDays: Days(90),
    /** facts history older than this goes, except each node's newest factsKeep rows */
    factsDays: Days(90),
    factsKeep: z.coerce.number().int().min(1).max(10_000).default(10),
    /** DHCP leases expired (or released, declined) this long ago */
    leasesDays: Days(7),
    /** stage-1 boot attempts closed or expired this long ago */
    bootAttemptsDays: Days(30),
    /** webhook deliveries delivered or given up this long ago */
    webhooksDays: Days(30),
    /** finished rebuilds and firmware update attempts (each node's latest always stays) */
    repairsDays: Days(180),
    /** the audit log and fleet-level history (breaker, leader changes, gaps) */
    auditDays: Days(365),
    /** data keys retired by `secrets rotate` this long ago that no sealed value names any more: deleted (each with
     * an audit row). The wait covers a replica that sealed a value with the old key just as the rotation committed. */
    dataKeysDays: Days(7),
    /** captured serial console output (per node it is also bounded in bytes: console.maxBytes) */
    consoleDays: Days(30),
  })
  .prefault({});
export type RetentionConfig = z.infer<typeof RetentionConfig>;

export const ConfigSchema = z.strictObject({
  dataDir: z.string().min(1).default('var'),
  databaseUrl: z.url({ protocol: /^postgres(ql)?$/, error: 'must be a postgres:// URL' }).optional(),
  log: z.strictObject({ level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info') }).default({ level: 'info' }),
  http: z
    .strictObject({
      host: z.string().default('0.0.0.0'),
      port: Port.default(8080),
      /** the URL nodes use to reach this server (iPXE has no HTTPS: plain http) */
      publicUrl: z.url().optional(),
      bodyLimitBytes: z.coerce.number().int().min(1024).default(4 * 1024 * 1024),
      /** iPXE keeps idle connections for 10 s; stay open longer than that */
      keepAliveSeconds: z.coerce.number().int().min(11).default(65),
      /** load balancers whose X-Forwarded-For is believed (CIDRs); see server/api/trusted.ts */
      trustedProxies: z.array(Cidr).default([]),
      /** a node request a trusted proxy stamped (X-Request-Start) longer ago than this gets a 503 and does nothing
       * (its client has given up and retried elsewhere); below the agent's 30 s timeout; 0 = off */
      maxRequestAgeSeconds: z.coerce.number().min(0).max(3600).default(20),
    })
    .default({ host: '0.0.0.0', port: 8080, bodyLimitBytes: 4 * 1024 * 1024, keepAliveSeconds: 65, trustedProxies: [], maxRequestAgeSeconds: 20 }),
  /** A second listener for the admin API and the dashboard, over TLS (server/admin-listener.ts). When set, the
   * `http` listener serves only what nodes need (iPXE, agent API, images, health, metrics) and answers 404 to
   * admin and UI paths. Certificate and key are PEM files, read again on SIGHUP. */
  admin: z
    .strictObject({
      listen: z.strictObject({ host: z.string().default('0.0.0.0'), port: Port.default(8443) }).prefault({}),
      tls: z.strictObject({ cert: z.string().min(1, 'a PEM certificate (chain) file'), key: z.string().min(1, 'a PEM private key file') }),
    })
    .optional(),
  auth: z
    .strictObject({
      tokens: z.array(z.strictObject({ name: z.string().default('token'), role: Role, token: z.string().min(16, 'tokens must be at least 16 characters') })).default([]),
    })
    .default({ tokens: [] }),
  /** before issue 14: the one key that sealed BMC passwords ("v1" values). Still read (and `<dataDir>/secret.key`
   * if present) and imported into the database keyring as a legacy key, so old values open; no longer generated. */
  secretKey: z.string().optional(),
  /** the key-encryption key (KEK) wrapping the data keys in the database (server/store/keyring.ts): base64 of 32
   * bytes, the same on every replica. Unset: `<dataDir>/kek`, generated on first start (one replica only). */
  secrets: z
    .strictObject({
      kek: z.string().optional(),
      kekFile: z.string().min(1).optional(),
      /** while rolling to a new KEK (docs/security-model.md): the old one(s), so keys wrapped by them still open */
      previousKeks: z.array(z.string()).default([]),
    })
    .refine((s) => !(s.kek && s.kekFile), 'set secrets.kek or secrets.kekFile, not both')
    .prefault({}),
  boot: z
    .strictObject({
      stage1: z.strictObject({ image: z.string().default('stage1'), channel: z.string().default('prod'), cmdline: z.string().default('console=ttyS0,115200 console=tty0') }).default({ image: 'stage1', channel: 'prod', cmdline: 'console=ttyS0,115200 console=tty0' }),
      /** seconds an iPXE client waits before asking again when no stage-1 image is published */
      retrySeconds: z.coerce.number().int().min(1).default(30),
      /** CIDRs allowed to fetch boot scripts and call the agent API (empty: any); see server/api/trusted.ts */
      trustedNetworks: z.array(Cidr).default([]),
      /** stage-1 boot attempts and their tokens (docs/security-model.md) */
      attempts: BootAttemptsConfig.default(BootAttemptsConfig.parse({})),
      /** concurrent stage-1 downloads and registrations per replica (BootBudgetConfig) */
      budget: BootBudgetConfig.prefault({}),
      /** the signed binaries of the Secure Boot path (profiles with `bootloader: shim-grub`, docs/secure-boot.md),
       * served over TFTP and HTTP as shimx64.efi and grubx64.efi (the name shim loads next to itself) */
      secureBoot: SecureBootConfig.prefault({}),
      /** new (`discovered`) nodes enrolled per minute, all sources together; more get a retry script and no row */
      discoveredPerMinute: z.coerce.number().int().min(1).default(120),
      /** per source address (server/api/ratelimit.ts); perMinute 0 turns one off */
      rateLimit: z
        .strictObject({
          ipxe: RateLimitSchema.default(DEFAULT_RATE_LIMITS.ipxe),
          agent: RateLimitSchema.default(DEFAULT_RATE_LIMITS.agent),
          /** source addresses remembered at once; the least recently seen is forgotten first */
          maxSources: z.coerce.number().int().min(1).default(65536),
        })
        .default({ ...DEFAULT_RATE_LIMITS, maxSources: 65536 }),
    })
    .default({ stage1: { image: 'stage1', channel: 'prod', cmdline: 'console=ttyS0,115200 console=tty0' }, retrySeconds: 30, trustedNetworks: [], attempts: BootAttemptsConfig.parse({}), budget: BootBudgetConfig.parse({}), secureBoot: SecureBootConfig.parse({}), discoveredPerMinute: 120, rateLimit: { ...DEFAULT_RATE_LIMITS, maxSources: 65536 } }),
  /** the dashboard's sessions and login limits (server/api/ui.ts) */
  ui: UiConfig,
  /** `requireToken: true` puts /metrics behind a viewer token (Prometheus: `authorization: {credentials_file}`) */
  metrics: z.strictObject({ requireToken: z.boolean().default(false) }).prefault({}),
  /** how long history is kept (RetentionConfig) */
  retention: RetentionConfig,
  profiles: z.record(z.string().regex(/^[a-z0-9][a-z0-9-]*$/), ProfileConfig).default({ default: ProfileConfig.parse({}) }),
  /** sections owned by the boot protocols, image store, fleet and firmware modules; each validates its own */
  dhcp: z.unknown().optional(),
  /** DHCPv6 (boot/dhcp6): off unless `dhcp6.enabled` is true */
  dhcp6: z.unknown().optional(),
  tftp: z.unknown().optional(),
  images: z.unknown().optional(),
  fleet: z.unknown().optional(),
  firmware: z.unknown().optional(),
});
export type Config = z.infer<typeof ConfigSchema>;

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

function setPath(obj: Record<string, unknown>, path: string[], value: unknown) {
  let o = obj;
  for (const k of path.slice(0, -1)) {
    if (typeof o[k] !== 'object' || o[k] === null) o[k] = {};
    o = o[k] as Record<string, unknown>;
  }
  o[path.at(-1)!] = value;
}

const camel = (s: string) => s.toLowerCase().replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());

function envValue(v: string): unknown {
  try {
    return JSON.parse(v);
  } catch {
    return v;
  }
}

/** Raw settings from a file and the environment, before validation. */
export function rawConfig(env: NodeJS.ProcessEnv, fileText?: { path: string; text: string }): Record<string, unknown> {
  let raw: Record<string, unknown> = {};
  if (fileText) {
    try {
      const json = fileText.path.endsWith('.json');
      // the same parser limits as request bodies (server/limits.ts): a config file is text too
      if ((json ? jsonDepth(fileText.text) : yamlDepth(fileText.text)) > MAX_DEPTH) throw new Error(`the document nests deeper than ${MAX_DEPTH} levels`);
      const parsed = json ? JSON.parse(fileText.text) : parseYaml(fileText.text, { maxAliasCount: 100 });
      if (parsed !== null && typeof parsed !== 'object') throw new Error('the top level must be a mapping');
      raw = (parsed as Record<string, unknown>) ?? {};
    } catch (e) {
      throw new ConfigError([`${fileText.path}: ${(e as Error).message}`]);
    }
  }
  const direct: Record<string, string[]> = {
    DATABASE_URL: ['databaseUrl'],
    BOOTFARM_DATA_DIR: ['dataDir'],
    BOOTFARM_LOG_LEVEL: ['log', 'level'],
    BOOTFARM_PUBLIC_URL: ['http', 'publicUrl'],
    BOOTFARM_SECRET_KEY: ['secretKey'],
    BOOTFARM_KEK: ['secrets', 'kek'],
    BOOTFARM_KEK_FILE: ['secrets', 'kekFile'],
  };
  for (const [name, path] of Object.entries(direct)) if (env[name]) setPath(raw, path, env[name]);
  if (env.BOOTFARM_TOKENS) {
    const tokens = env.BOOTFARM_TOKENS.split(',').filter(Boolean).map((pair, i) => {
      const at = pair.indexOf(':');
      return { name: `env-${i + 1}`, role: pair.slice(0, at), token: pair.slice(at + 1) };
    });
    setPath(raw, ['auth', 'tokens'], tokens);
  }
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith('BOOTFARM_') || !name.includes('__') || value === undefined) continue;
    setPath(raw, name.slice('BOOTFARM_'.length).split('__').map(camel), envValue(value));
  }
  return raw;
}

/** Parses and validates; a ConfigError names every invalid setting by its path. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const path = env.BOOTFARM_CONFIG;
  let fileText: { path: string; text: string } | undefined;
  if (path) {
    try {
      fileText = { path, text: readFileSync(path, 'utf8') };
    } catch (e) {
      throw new ConfigError([`BOOTFARM_CONFIG=${path}: ${(e as Error).message}`]);
    }
  }
  return parseConfig(rawConfig(env, fileText));
}

/** Validates one module's section (dhcp, dhcp6, tftp, images, fleet, firmware) with that module's own schema, so its
 * errors read like the rest: `fleet.heartbeat.missedBeats: …`. */
export function parseSection<S extends z.ZodType>(name: string, schema: S, value: unknown): z.output<S> {
  const r = schema.safeParse(value ?? {});
  if (!r.success) throw new ConfigError(r.error.issues.map((i) => `${[name, ...i.path].join('.')}: ${i.message}`));
  return r.data;
}

export function parseConfig(raw: unknown): Config {
  const r = ConfigSchema.safeParse(raw);
  if (!r.success) throw new ConfigError(r.error.issues.map((i) => `${i.path.join('.') || '(top level)'}: ${i.message}`));
  return r.data;
}
