// The push checks on kernels, initrds and command lines (server/images/parts.ts). Compressed initrds are made by
// the real compressors (deps/images.txt), so the magic bytes are the ones those tools write, not our reading of a
// specification; the cpio archives come from test/fakes/boot-files.ts and from GNU cpio.
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { ByteReader, checkCmdline, checkInitrd, checkKernelHead, ImagePartError } from './parts.ts';
import { newcCpio, tinyBzImage, tinyEfiKernel, tinyElfKernel, tinyInitrd } from '../../test/fakes/boot-files.ts';

const initrd = (b: Buffer, opts?: { maxScanBytes?: number }) => checkInitrd(ByteReader.of(b), opts);
/** the same bytes in 7-byte chunks: headers and magics straddle chunk boundaries */
const chunked = (b: Buffer) =>
  ByteReader.of(
    (async function* () {
      for (let i = 0; i < b.length; i += 7) yield b.subarray(i, i + 7);
    })(),
  );
const refused = async (part: string, fn: () => unknown): Promise<string> => {
  try {
    await fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ImagePartError);
    expect((e as ImagePartError).part).toBe(part);
    expect((e as Error).message.startsWith(`${part}: `)).toBe(true);
    return (e as Error).message;
  }
  throw new Error(`expected the ${part} to be refused`);
};
const compress = (tool: string, args: string[], input: Buffer) => execFileSync(tool, args, { input, maxBuffer: 1 << 26 });

describe('kernel check', () => {
  it('accepts an x86 bzImage, an EFI PE kernel and an ELF kernel of the image arch', () => {
    expect(checkKernelHead(tinyBzImage(), 'x86_64')).toEqual({ format: 'bzImage', arch: 'x86_64', protocol: '2.15' });
    expect(checkKernelHead(tinyEfiKernel(0xaa64), 'aarch64')).toEqual({ format: 'pe', arch: 'aarch64' });
    expect(checkKernelHead(tinyEfiKernel(0x8664), 'x86_64')).toEqual({ format: 'pe', arch: 'x86_64' });
    expect(checkKernelHead(tinyElfKernel(62), 'amd64')).toEqual({ format: 'elf', arch: 'x86_64' });
  });

  it('refuses random bytes, a zImage, a PE without its signature and a kernel for another arch, naming the kernel', async () => {
    expect(await refused('kernel', () => checkKernelHead(randomBytes(4096), 'x86_64'))).toMatch(/not a bootable kernel: no x86 bzImage header \("HdrS" at 0x202\)/);
    const z = tinyBzImage();
    z[0x211] = 0;
    expect(await refused('kernel', () => checkKernelHead(z))).toMatch(/zImage/);
    const noFlag = tinyBzImage();
    noFlag.writeUInt16LE(0, 0x1fe);
    expect(await refused('kernel', () => checkKernelHead(noFlag))).toMatch(/0xAA55/);
    const pe = tinyEfiKernel();
    pe.write('XX', 0x80, 'latin1');
    expect(await refused('kernel', () => checkKernelHead(pe))).toMatch(/no "PE\\0\\0" signature/);
    expect(await refused('kernel', () => checkKernelHead(tinyEfiKernel(0xaa64), 'x86_64'))).toMatch(/built for aarch64, but the image's arch is x86_64/);
    expect(await refused('kernel', () => checkKernelHead(tinyBzImage(), 'aarch64'))).toMatch(/x86 bzImage, but the image's arch is aarch64/);
    expect(await refused('kernel', () => checkKernelHead(Buffer.alloc(0)))).toBe('kernel: is empty');
  });
});

describe('initrd check', () => {
  const cpio = newcCpio({ init: '#!/bin/sh\n', 'etc/hostname': 'node\n' });
  const microcode = newcCpio({ 'kernel/x86/microcode/GenuineIntel.bin': randomBytes(3000) });

  it('accepts a plain newc cpio, also when read in small chunks', async () => {
    expect(await initrd(cpio)).toEqual({ segments: [{ kind: 'cpio', offset: 0, entries: 2 }], truncated: false });
    expect(await checkInitrd(chunked(Buffer.concat([microcode, tinyInitrd(100)])))).toMatchObject({ segments: [{ kind: 'cpio' }, { kind: 'gzip' }] });
  });

  it('accepts an early microcode cpio, NUL padding, then a compressed main archive, for every compressor the kernel reads', async () => {
    const padded = Buffer.concat([microcode, Buffer.alloc(512 - (microcode.length % 512))]);
    const main = Buffer.concat([cpio, randomBytes(2000)]);
    const cases: [string, Buffer][] = [
      ['gzip', gzipSync(cpio)],
      ['zstd', compress('zstd', ['-q', '-c'], main)],
      ['xz', compress('xz', ['-c', '--check=crc32'], main)],
      ['lzma', compress('lzma', ['-c'], main)],
      ['bzip2', compress('bzip2', ['-c'], main)],
      ['lz4', compress('lz4', ['-l', '-c'], main)],
    ];
    for (const [kind, data] of cases) {
      const r = await initrd(Buffer.concat([padded, data]));
      expect(r.segments, kind).toEqual([
        { kind: 'cpio', offset: 0, entries: 1 },
        { kind, offset: padded.length },
      ]);
    }
  });

  it('reads cpio archives written by GNU cpio -H newc and refuses -H odc', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bfparts-'));
    try {
      writeFileSync(join(dir, 'init'), '#!/bin/sh\n');
      const newc = execFileSync('cpio', ['-o', '-H', 'newc', '--quiet'], { cwd: dir, input: 'init\n' });
      expect((await initrd(newc)).segments).toEqual([{ kind: 'cpio', offset: 0, entries: 1 }]);
      const odc = execFileSync('cpio', ['-o', '-H', 'odc', '--quiet'], { cwd: dir, input: 'init\n' });
      expect(await refused('initrd', () => initrd(odc))).toMatch(/old portable \(odc\) cpio; the kernel unpacks only newc/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses random bytes, a gzip of something that is not cpio, corrupt gzip, LZ4 frame format and a truncated cpio', async () => {
    expect(await refused('initrd', () => initrd(randomBytes(4096)))).toMatch(/neither a newc cpio archive \("070701"\/"070702"\) nor compressed in a format the kernel reads/);
    expect(await refused('initrd', () => initrd(gzipSync(Buffer.from('ext2 image, say'))))).toMatch(/gzip member at byte 0 does not hold a newc cpio archive/);
    const bad = gzipSync(cpio);
    bad.fill(0xff, 10, 30);
    expect(await refused('initrd', () => initrd(bad))).toMatch(/gzip member at byte 0 does not decompress/);
    expect(await refused('initrd', () => initrd(compress('lz4', ['-c'], cpio)))).toMatch(/LZ4 frame format; the kernel reads only LZ4 legacy format \(lz4 -l\)/);
    expect(await refused('initrd', () => initrd(cpio.subarray(0, cpio.length - 20)))).toMatch(/ends inside/);
    expect(await refused('initrd', () => initrd(Buffer.concat([cpio, randomBytes(64)])))).toMatch(/after 1 cpio archive\(s\), the data at byte \d+ is neither/);
    expect(await refused('initrd', () => initrd(Buffer.alloc(1024)))).toBe('initrd: is all zero bytes');
  });

  it('stops walking a large uncompressed archive at the scan limit', async () => {
    const big = newcCpio({ a: randomBytes(100_000), b: randomBytes(100_000) });
    expect(await initrd(big, { maxScanBytes: 50_000 })).toEqual({ segments: [{ kind: 'cpio', offset: 0, entries: 0 }], truncated: true });
  });
});

describe('command line check', () => {
  it('accepts what the boot route can render and names the argument it cannot', async () => {
    expect(checkCmdline('console=ttyS0,115200 quiet  ip=dhcp')).toEqual(['console=ttyS0,115200', 'quiet', 'ip=dhcp']);
    expect(checkCmdline('')).toEqual([]);
    expect(await refused('cmdline', () => checkCmdline('quiet root=${x}'))).toBe('cmdline: an argument contains characters not allowed in an iPXE script: "root=${x}"; it cannot be put into an iPXE script');
    expect(await refused('cmdline', () => checkCmdline('a||shell'))).toMatch(/"a\|\|shell"/);
  });
});
