// The smallest kernels and initrds that `image push` accepts (server/images/parts.ts), for tests that push images.
// They pass the same header checks a real Debian vmlinuz and a dracut/initramfs-tools initrd pass; they do not
// boot. The bytes after the header are random, so two calls give two different digests.
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** An x86 bzImage header (Documentation/arch/x86/boot.rst): boot flag, "HdrS", protocol 2.15, LOADED_HIGH. */
export function tinyBzImage(size = 4096): Buffer {
  const b = randomBytes(Math.max(size, 0x400));
  b.fill(0, 0, 0x260);
  b.writeUInt16LE(0xaa55, 0x1fe);
  b.write('HdrS', 0x202, 'latin1');
  b.writeUInt16LE(0x020f, 0x206);
  b[0x211] = 0x01; // loadflags: LOADED_HIGH
  return b;
}

/** A PE image ("MZ", e_lfanew → "PE\0\0", machine) like an arm64 EFI-stub kernel. */
export function tinyEfiKernel(machine = 0xaa64, size = 4096): Buffer {
  const b = randomBytes(Math.max(size, 0x200));
  b.fill(0, 0, 0x100);
  b.write('MZ', 0, 'latin1');
  b.writeUInt32LE(0x80, 0x3c);
  b.write('PE\0\0', 0x80, 'latin1');
  b.writeUInt16LE(machine, 0x84);
  return b;
}

/** A 64-bit little-endian ELF header of type ET_EXEC for `machine` (62 = x86_64). */
export function tinyElfKernel(machine = 62, size = 4096): Buffer {
  const b = randomBytes(Math.max(size, 0x100));
  b.fill(0, 0, 0x40);
  b.write('\x7fELF', 0, 'latin1');
  b[4] = 2; // ELFCLASS64
  b[5] = 1; // little endian
  b[6] = 1;
  b.writeUInt16LE(2, 0x10);
  b.writeUInt16LE(machine, 0x12);
  return b;
}

/** A newc cpio archive ("070701") of the given files, with its TRAILER!!!. */
export function newcCpio(files: Record<string, Buffer | string>): Buffer {
  const parts: Buffer[] = [];
  const pad = (n: number) => Buffer.alloc((4 - (n % 4)) % 4);
  let ino = 1;
  const entry = (name: string, data: Buffer, mode: number) => {
    const f = (n: number) => n.toString(16).padStart(8, '0');
    const nameBuf = Buffer.from(`${name}\0`);
    const header = Buffer.from(`070701${f(ino++)}${f(mode)}${f(0)}${f(0)}${f(1)}${f(0)}${f(data.length)}${f(0)}${f(0)}${f(0)}${f(0)}${f(nameBuf.length)}${f(0)}`, 'latin1');
    parts.push(header, nameBuf, pad(header.length + nameBuf.length), data, pad(data.length));
  };
  for (const [name, data] of Object.entries(files)) entry(name, Buffer.isBuffer(data) ? data : Buffer.from(data), 0o100644);
  entry('TRAILER!!!', Buffer.alloc(0), 0);
  return Buffer.concat(parts);
}

/** A gzip-compressed newc initramfs with `size` bytes of random file content (gzip cannot shrink it). */
export function tinyInitrd(size = 4096): Buffer {
  return gzipSync(newcCpio({ init: '#!/bin/sh\nexec /bin/sh\n', payload: randomBytes(size) }));
}

/** Kernel / initrd files with digests, shaped like blobFile() in the image tests. */
function writeBlob(dir: string, name: string, data: Buffer) {
  const path = join(dir, name);
  writeFileSync(path, data);
  return { path, data, digest: sha256(data), size: data.length };
}
export const kernelFile = (dir: string, name: string, size?: number) => writeBlob(dir, name, tinyBzImage(size));
export const initrdFile = (dir: string, name: string, size?: number) => writeBlob(dir, name, tinyInitrd(size));
