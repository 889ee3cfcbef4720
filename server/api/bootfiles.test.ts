// UEFI HTTP boot fetches the iPXE EFI binary from the boot listener (issue 19 item 2). Over real HTTP with the
// real opener the TFTP server uses (boot/tftp/fs-open.ts) on a temporary root: OVMF's HEAD then GET, the
// Content-Type it reads the image type from, 404 for names the opener does not know, and the boot-network rule.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFsOpener } from '../../boot/tftp/index.ts';
import { createTestDb } from '../../test/fakes/db.ts';
import { bootNetworkConfig, createTestApp, loopbackServers } from '../../test/fakes/app.ts';
import type { DbHandle } from '../db/index.ts';
import { isBootListenerPath } from './listeners.ts';
import { isPublicPath } from './app.ts';
import { secureBootDefaults } from '../secure-boot.ts';

const dir = mkdtempSync(join(tmpdir(), 'bfbootfiles-'));
const binary = randomBytes(300_000); // larger than one stream chunk
writeFileSync(join(dir, 'ipxe.efi'), binary);
writeFileSync(join(dir, 'notes.txt'), 'not a boot binary');
let db: DbHandle;
const servers = loopbackServers();

const serveWith = (trustedNetworks: string[] = [], withFiles = true): Promise<string> =>
  servers.listen(createTestApp(db, { config: bootNetworkConfig({ trustedNetworks }), bootFiles: withFiles ? createFsOpener({ root: dir, ipxeDefaults: false }) : undefined }).app.fetch);

beforeAll(async () => {
  db = await createTestDb();
});
afterAll(async () => {
  servers.close();
  await db?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('GET /ipxe.efi for UEFI HTTP boot', () => {
  it('HEAD gives the size and type without a body; GET gives the exact bytes as application/efi', async () => {
    const url = await serveWith();
    const head = await fetch(`${url}/ipxe.efi`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-type')).toBe('application/efi');
    expect(head.headers.get('content-length')).toBe(String(binary.length));
    expect((await head.arrayBuffer()).byteLength).toBe(0);
    const res = await fetch(`${url}/ipxe.efi`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/efi');
    expect(Buffer.from(await res.arrayBuffer()).equals(binary)).toBe(true);
  });

  it('a name the opener does not know is a 404 naming it; only single-segment .efi names are routed here', async () => {
    const url = await serveWith();
    const missing = await fetch(`${url}/snponly.efi`);
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: { message: string } }).error.message).toBe('no boot file named snponly.efi');
    expect((await fetch(`${url}/notes.txt`)).status).toBe(404);
    expect((await fetch(`${url}/x/ipxe.efi`)).status).toBe(404);
    expect((await fetch(`${url}/..%2Fipxe.efi`)).status).toBe(404);
  });

  it('without boot files configured the route does not exist', async () => {
    const url = await serveWith([], false);
    expect((await fetch(`${url}/ipxe.efi`)).status).toBe(404);
  });

  it('is refused outside boot.trustedNetworks, like the scripts it leads to', async () => {
    const url = await serveWith(['10.20.0.0/24']);
    expect((await fetch(`${url}/ipxe.efi`)).status).toBe(403);
  });

  it('is public and on the boot listener (nodes have no token and no HTTPS)', () => {
    for (const p of ['/ipxe.efi', '/snponly.efi']) {
      expect(isPublicPath(p), p).toBe(true);
      expect(isBootListenerPath(p), p).toBe(true);
    }
    for (const p of ['/x/ipxe.efi', '/ipxe.efi/x', '/.efi', '/ipxe.efix']) expect(isBootListenerPath(p), p).toBe(false);
  });
});

describe('the Secure Boot binaries (issue 19 item 1)', () => {
  it('serves shimx64.efi and grubx64.efi from boot.secureBoot, and a 404 that names the missing package', async () => {
    const sb = mkdtempSync(join(tmpdir(), 'bfsecureboot-'));
    try {
      const shim = randomBytes(1000);
      writeFileSync(join(sb, 'shimx64.efi.signed'), shim);
      const base = bootNetworkConfig();
      const config = { ...base, boot: { ...base.boot, secureBoot: { shim: join(sb, 'shimx64.efi.signed'), grub: join(sb, 'grubnetx64.efi.signed') } } };
      const url = await servers.listen(createTestApp(db, { config, bootFiles: createFsOpener({ root: dir, ipxeDefaults: false, defaults: secureBootDefaults(config) }) }).app.fetch);
      const got = await fetch(`${url}/shimx64.efi`);
      expect(got.status).toBe(200);
      expect(Buffer.from(await got.arrayBuffer()).equals(shim)).toBe(true);
      const missing = await fetch(`${url}/grubx64.efi`);
      expect(missing.status).toBe(404);
      expect(((await missing.json()) as any).error.message).toBe(`no boot file named grubx64.efi: ${join(sb, 'grubnetx64.efi.signed')} is missing; install the Debian package grub-efi-amd64-signed or set boot.secureBoot.grub`);
      // other names keep the plain message
      expect(((await (await fetch(`${url}/nothere.efi`)).json()) as any).error.message).toBe('no boot file named nothere.efi');
      expect(isBootListenerPath('/grub/grub.cfg') && isPublicPath('/grub/grub.cfg')).toBe(true);
    } finally {
      rmSync(sb, { recursive: true, force: true });
    }
  });
});
