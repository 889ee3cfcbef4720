// The full product on the rack: PostgreSQL and Ceph RGW inside the namespace (through inns.ts), the bootfarm
// server with DHCP (full mode on the bridge), TFTP, the S3 image store, the fleet controllers and the BMC
// drivers, the stage-1 and compute images pushed into the store, and iSCSI storage for the compute profile.
// Also: which pieces of the product exist yet, so scenarios can be skipped with a reason until they land.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRack, repoRoot, type Rack, type RackNodeOptions } from './rack.ts';
import { OVMF_SB_CODE, OVMF_SB_VARS } from './qemu.ts';
import { runAsync } from './proc.ts';
import { startInNetns } from './services.ts';

const read = (p: string) => (existsSync(join(repoRoot, p)) ? readFileSync(join(repoRoot, p), 'utf8') : '');
const mainTs = () => read('server/main.ts');

export const IMAGES_DIR = join(repoRoot, 'build/images');
/** shimx64.efi + grubx64.efi from Debian's shim-signed and grub-efi-amd64-signed (images/secureboot.ts, make secureboot) */
export const SECUREBOOT_DIR = join(repoRoot, 'build/secureboot');

/** Each product piece the rack scenarios need, and whether it is there (files built, module wired into main). */
export function productPieces(): Record<string, boolean> {
  const main = mainTs();
  return {
    'build/images (make images)': existsSync(join(IMAGES_DIR, 'stage1/manifest.json')) && existsSync(join(IMAGES_DIR, 'compute/manifest.json')),
    'DHCP server wired into server/main.ts': existsSync(join(repoRoot, 'boot/dhcp/index.ts')) && /boot\/dhcp/.test(main),
    'TFTP server wired into server/main.ts': existsSync(join(repoRoot, 'boot/tftp/index.ts')) && /boot\/tftp/.test(main),
    'image store wired into server/main.ts': /images\/index\.ts|createImages/.test(main),
    // the fleet controllers drive the BMC drivers (server/bmc) themselves
    'fleet controllers (with BMC drivers) wired into server/main.ts': /fleet\//.test(main),
    'firmware API wired into server/main.ts': /firmware/.test(main),
    'OVMF (Debian ovmf)': existsSync('/usr/share/ovmf/OVMF.fd'),
    'ipxe binaries (Debian ipxe)': existsSync('/usr/lib/ipxe/undionly.kpxe'),
    'Secure Boot loaders (make secureboot: build/secureboot)': existsSync(join(SECUREBOOT_DIR, 'manifest.json')),
    'Secure Boot OVMF (Debian ovmf: OVMF_CODE_4M.ms.fd, OVMF_VARS_4M.ms.fd)': existsSync(OVMF_SB_CODE) && existsSync(OVMF_SB_VARS),
  };
}

/** Names of the missing pieces among `needed` (all when omitted). */
export function missingPieces(...needed: string[]): string[] {
  const pieces = productPieces();
  return Object.entries(pieces)
    .filter(([name, ok]) => !ok && (needed.length === 0 || needed.some((n) => name.startsWith(n))))
    .map(([name]) => name);
}

// Every piece exists and is built by `make e2e`'s prerequisites (Debian packages from deps/e2e.txt, `make images`):
// a missing one is a broken build, not a reason to skip, so the suite fails, naming it, instead of passing on
// skipped scenarios. Everywhere, not only when CI is set.
export function requirePieces(...needed: string[]): void {
  const missing = missingPieces(...needed);
  if (missing.length) throw new Error(`e2e rack: missing product pieces: ${missing.join('; ')} (make e2e builds the images; make test installs the Debian packages in deps/*.txt)`);
}

/** The IPAM network of the `bonded` profile: the rack's data bridge (rack.ts DATA_BRIDGE, 10.78.0.1/24), no gateway (the
 * default route stays the boot NIC's) */
export const BONDED_NETWORK = { name: 'e2e-data', cidr: '10.78.0.0/24', pool: { start: '10.78.0.10', end: '10.78.0.99' } };

export interface ProductRack {
  rack: Rack;
  chap: { user: string; password: string };
  /** pushes an image directory (vmlinuz, initrd.img, manifest.json) into the store and publishes it */
  pushImage(dir: string, name: string, version: string, channel: string): Promise<string>;
  /** stops the bootfarm server process (a control-plane outage); PostgreSQL, Ceph and the nodes keep running */
  stopServer(): Promise<void>;
  /** starts it again with the same config and data directory */
  startServer(): Promise<void>;
  stop(): Promise<void>;
}

export interface ProductOptions {
  nodes: RackNodeOptions[];
  /** push build/images stage1 + compute to prod (default true; off for a smoke test before the image store) */
  images?: boolean;
  /** deep-merged over the default server config */
  config?: Record<string, unknown>;
  /** a `secure` profile (`bootloader: shim-grub`, matched by the label secureboot=yes) and the signed loaders from
   * build/secureboot (docs/secure-boot.md) */
  secureBoot?: boolean;
  /** an IPv6-only boot network (issue 19 item 3): no IPv4 on the link; the server answers DHCPv6 (not DHCPv4) on the
   * bridge, serves HTTP and TFTP on fd00:77::1 and names itself http://[fd00:77::1]:8080; the iSCSI portal is
   * [fd00:77::1]:3260. PostgreSQL and Ceph stay on the namespace's loopback, off the boot network. */
  ipv6Only?: boolean;
}

function merge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const cur = out[k];
    out[k] = v && typeof v === 'object' && !Array.isArray(v) && cur && typeof cur === 'object' && !Array.isArray(cur) ? merge(cur as Record<string, unknown>, v as Record<string, unknown>) : v;
  }
  return out;
}

export async function startProductRack({ nodes, config = {}, images = true, secureBoot = false, ipv6Only = false }: ProductOptions): Promise<ProductRack> {
  // 1 GiB: at 512 MiB stage-1 (its initramfs holds the ~110 MB agent) runs out of memory in `kexec -l` of the
  // 57 MB compute initramfs it has just downloaded to tmpfs (measured: OOM killer, agent exits)
  const rack = await createRack({ nodes: nodes.map((n) => ({ memoryMiB: 1024, ...n })), ipv6Only });
  const { netns } = rack.net;
  const stops: (() => Promise<void>)[] = [];
  try {
    const [pg, ceph] = await Promise.all([
      startInNetns<{ url: string }>('postgres', { netns, dir: rack.dir, repoRoot }),
      startInNetns<{ endpoint: string; region: string; accessKeyId: string; secretAccessKey: string }>('ceph', { netns, dir: rack.dir, repoRoot }),
    ]);
    stops.push(pg.stop, ceph.stop);
    const ip = rack.net.ip;
    const port = 8080;
    const base = `http://${rack.net.host}:${port}`;
    const tgtd = rack.tgtd!;
    const serverConfig = merge(
      {
        databaseUrl: pg.info.url,
        http: { host: ipv6Only ? '::' : '0.0.0.0', port, publicUrl: base },
        // info: the test polls the admin API every 0.5 s and debug would fill the log tails with access lines
        log: { level: 'info' },
        ...(ipv6Only
          ? {
              // no dhcp section: DHCPv4 is off unless configured
              dhcp6: {
                enabled: true,
                interface: rack.net.bridge,
                serverAddress: rack.net.ipv6,
                httpBase: base,
                pools: [{ prefix: rack.net.ipv6Prefix, range: { start: rack.net.ipv6Prefix.replace(/::\/64$/, '::100'), end: rack.net.ipv6Prefix.replace(/::\/64$/, '::1ff') } }],
              },
            }
          : {
              dhcp: {
                enabled: true,
                mode: 'full',
                interface: rack.net.bridge,
                serverIp: ip,
                httpBase: base,
                pools: [{ subnet: '10.77.0.0/24', range: { start: '10.77.0.100', end: '10.77.0.199' }, leaseSeconds: 600 }],
              },
            }),
        tftp: { enabled: true, address: ipv6Only ? rack.net.ipv6 : ip, port: 69 },
        images: {
          store: { kind: 's3', endpoint: ceph.info.endpoint, region: ceph.info.region, bucket: 'bootfarm-e2e', accessKeyId: ceph.info.accessKeyId, secretAccessKey: ceph.info.secretAccessKey, createBucket: true },
          cache: { dir: join(rack.dir, 'image-cache') },
          // one node is the whole canary fleet here
          gates: { minActiveNodes: 1, minSuccessRatio: 0.5, windowHours: 1 },
        },
        fleet: {
          tickSeconds: 2,
          heartbeat: { intervalSeconds: 5, missed: 3 },
          rebuild: { backoffBaseSeconds: 5, maxAttempts: 3 },
          bmc: { pollSeconds: 5 },
          leader: { checkSeconds: 1 },
        },
        boot: {
          stage1: { image: 'stage1', channel: 'prod', cmdline: 'console=ttyS0,115200' },
          retrySeconds: 5,
          ...(secureBoot ? { secureBoot: { shim: join(SECUREBOOT_DIR, 'shimx64.efi'), grub: join(SECUREBOOT_DIR, 'grubx64.efi') } } : {}),
        },
        profiles: {
          default: {
            image: 'compute',
            channel: 'prod',
            heartbeatIntervalSeconds: 5,
            iscsi: { portal: tgtd.portal, targetPrefix: 'iqn.2026-11.io.bootfarm:', lun: 1, chapUser: tgtd.chapUser, chapPassword: tgtd.chapPassword },
          },
          canary: {
            image: 'compute',
            channel: 'canary',
            heartbeatIntervalSeconds: 5,
            match: { channel: 'canary' },
            iscsi: { portal: tgtd.portal, targetPrefix: 'iqn.2026-11.io.bootfarm:', lun: 1, chapUser: tgtd.chapUser, chapPassword: tgtd.chapPassword },
          },
          // issue 16 item 2: the default profile plus the hypervisor self-test (a nested guest, minutes under TCG):
          // only for a node labelled selftest=hypervisor (rack scenario 1)
          selftest: {
            image: 'compute',
            channel: 'prod',
            heartbeatIntervalSeconds: 5,
            match: { selftest: 'hypervisor' },
            cmdline: 'bootfarm.selftest=hypervisor',
            iscsi: { portal: tgtd.portal, targetPrefix: 'iqn.2026-11.io.bootfarm:', lun: 1, chapUser: tgtd.chapUser, chapPassword: tgtd.chapPassword },
          },
          // issue 16 item 1: a node labelled bond=active-backup bonds its further NICs (rack.ts RackNodeOptions.nics) and
          // puts its address on the data network (BONDED_NETWORK, which the scenario creates in IPAM) on the bond.
          // active-backup: 802.3ad needs a partner answering LACPDUs, which the rack's Linux bridge never forwards
          bonded: {
            image: 'compute',
            channel: 'prod',
            heartbeatIntervalSeconds: 5,
            match: { bond: 'active-backup' },
            bond: { name: 'bond0', mode: 'active-backup' },
            networks: [{ name: BONDED_NETWORK.name, interface: 'bond0' }],
            iscsi: { portal: tgtd.portal, targetPrefix: 'iqn.2026-11.io.bootfarm:', lun: 1, chapUser: tgtd.chapUser, chapPassword: tgtd.chapPassword },
          },
          ...(secureBoot
            ? {
                secure: {
                  image: 'compute',
                  channel: 'prod',
                  heartbeatIntervalSeconds: 5,
                  bootloader: 'shim-grub',
                  match: { secureboot: 'yes' },
                  iscsi: { portal: tgtd.portal, targetPrefix: 'iqn.2026-11.io.bootfarm:', lun: 1, chapUser: tgtd.chapUser, chapPassword: tgtd.chapPassword },
                },
              }
            : {}),
        },
      },
      config,
    );
    const server = await rack.startServer({ config: serverConfig, port });
    const pushImage = async (dir: string, name: string, version: string, channel: string) => {
      // the build writes the image's default command line into manifest.json; the CLI reads a `cmdline` file.
      // The rack seeds canary/prod directly (admin token): a push onto a gated channel needs --force.
      const manifest = join(dir, 'manifest.json');
      const cmdline = !existsSync(join(dir, 'cmdline')) && existsSync(manifest) ? (JSON.parse(readFileSync(manifest, 'utf8')) as { cmdline?: string }).cmdline : undefined;
      const r = await runAsync([process.execPath, '--import', 'tsx', 'test/e2e/inns.ts', 'image-push', base, server.adminToken, 'push', dir, '--name', name, '--version', version, '--channel', channel, ...(channel === 'dev' ? [] : ['--force']), ...(cmdline ? ['--cmdline', cmdline] : [])], { netns, timeoutMs: 120_000, cwd: repoRoot });
      if (r.status !== 0) throw new Error(`image push ${name} ${version} → ${channel} failed (${r.status}): ${r.stderr || r.stdout}\n${rack.context()}`);
      return r.stdout;
    };
    if (images) {
      await pushImage(join(IMAGES_DIR, 'stage1'), 'stage1', 'e2e-1', 'prod');
      await pushImage(join(IMAGES_DIR, 'compute'), 'compute', 'e2e-1', 'prod');
    }
    return {
      rack,
      chap: { user: tgtd.chapUser, password: tgtd.chapPassword },
      pushImage,
      async stopServer() {
        await rack.server?.stop();
        rack.server = undefined;
      },
      async startServer() {
        await rack.startServer({ config: serverConfig, port });
      },
      async stop() {
        await rack.server?.stop();
        for (const s of stops.reverse()) await s().catch(() => {});
        await rack.destroy();
      },
    };
  } catch (e) {
    await rack.server?.stop().catch(() => {});
    for (const s of stops.reverse()) await s().catch(() => {});
    await rack.destroy();
    throw e;
  }
}
