import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFsOpener } from './fs-open.ts';

let dir: string;
let root: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'bftftp-fs-'));
  root = path.join(dir, 'root');
  await mkdir(path.join(root, 'efi'), { recursive: true });
  await writeFile(path.join(root, 'efi', 'boot.efi'), 'inside');
  await writeFile(path.join(dir, 'secret'), 'outside');
  await symlink(path.join(dir, 'secret'), path.join(root, 'escape')); // points out of the root
  await symlink(path.join(root, 'efi', 'boot.efi'), path.join(root, 'alias.efi')); // stays inside
});
afterAll(() => rm(dir, { recursive: true, force: true }));

async function read(open: ReturnType<typeof createFsOpener>, p: string): Promise<string | null> {
  const f = await open(p);
  if (!f?.stream) return null;
  const chunks: Buffer[] = [];
  for await (const c of f.stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString();
}

describe('createFsOpener', () => {
  it('serves files under the root, including symlinks that stay inside it', async () => {
    const open = createFsOpener({ root });
    expect(await read(open, 'efi/boot.efi')).toBe('inside');
    expect(await read(open, 'alias.efi')).toBe('inside');
    expect((await open('efi/boot.efi'))?.size).toBe(6);
  });

  it('refuses what would leave the root, even when called directly', async () => {
    const open = createFsOpener({ root });
    for (const p of ['escape', '../secret', '/etc/passwd', 'efi/../../secret', 'efi', 'missing', 'a\0b']) expect(await open(p), p).toBeNull();
  });

  it('maps the Debian iPXE binaries by default, and configured names on top', async () => {
    const open = createFsOpener({ files: { 'custom.bin': path.join(dir, 'secret') } });
    expect((await open('undionly.kpxe'))?.size).toBeGreaterThan(10_000);
    expect((await open('snponly.efi'))?.size).toBeGreaterThan(10_000);
    expect((await open('ipxe.efi'))?.size).toBeGreaterThan(10_000);
    expect(await read(open, 'custom.bin')).toBe('outside'); // explicitly configured: allowed
    expect(await open('efi/boot.efi')).toBeNull(); // no root configured
    expect(await createFsOpener({ ipxeDefaults: false })('undionly.kpxe')).toBeNull();
  });

  it('a file in the root wins over the built-in iPXE name; a configured name wins over both', async () => {
    const own = path.join(dir, 'own-root');
    await mkdir(own, { recursive: true });
    await writeFile(path.join(own, 'undionly.kpxe'), 'operator build with an embedded script');
    const open = createFsOpener({ root: own });
    expect(await read(open, 'undionly.kpxe')).toBe('operator build with an embedded script');
    expect((await open('snponly.efi'))?.size).toBeGreaterThan(10_000); // not in the root: Debian's
    const configured = createFsOpener({ root: own, files: { 'undionly.kpxe': path.join(dir, 'secret') } });
    expect(await read(configured, 'undionly.kpxe')).toBe('outside');
    // a symlink in the root that leaves it is never followed: the built-in binary answers instead
    await symlink(path.join(dir, 'secret'), path.join(own, 'ipxe.efi'));
    expect((await open('ipxe.efi'))?.size).toBeGreaterThan(10_000);
  });
});
