// What `image push` checks before an image can reach a channel (issue 12 item 7): the kernel is a kernel iPXE can
// boot, the initrd is something the kernel can unpack, and the command line renders into an iPXE script. A part
// that fails is refused with a message naming it; nothing here touches the database, the store or HTTP.
//
// Formats and where they are specified:
//  - x86 bzImage: Linux Documentation/arch/x86/boot.rst, "The real-mode kernel header": boot_flag 0xAA55 at
//    0x1FE, the magic "HdrS" at 0x202, the protocol version at 0x206, loadflags at 0x211 (bit 0 LOADED_HIGH: the
//    protected-mode code loads at 0x100000, i.e. a bzImage rather than an ancient zImage). An x86 kernel with
//    the EFI stub starts with "MZ" as well, and is still judged by this header.
//  - EFI PE kernels (arm64, riscv64, zboot): "MZ", the PE header offset at 0x3C, "PE\0\0" there, then the machine.
//  - ELF kernels: "\x7fELF", class/endianness at e_ident[4..5], e_type at 0x10 (ET_EXEC or ET_DYN), e_machine at 0x12.
//  - initramfs: Linux Documentation/driver-api/early-userspace/buffer-format.rst and init/initramfs.c: newc cpio
//    ("070701", or "070702" with checksums), archives may be concatenated and separated by NUL padding (the early
//    microcode archive comes first, uncompressed), and a member may be compressed in any format the kernel has
//    a decompressor for (lib/decompress.c: gzip, bzip2, lzma, xz, lzo, lz4 legacy, zstd). The kernel reads only
//    newc: the old "070707" (odc) format is refused.
// What is checked of a compressed member: its magic bytes, and for gzip (node:zlib can do it cheaply) that the
// first decompressed bytes are a newc cpio header. zstd, xz, lzma, bzip2, lzo and lz4 are judged by magic only.
// Whatever follows a compressed member is not walked (its end is only known by decompressing all of it).
import { gunzipSync, constants as zlibConstants } from 'node:zlib';
import { renderKernelScript, safeCmdline, ScriptValueError } from '../../boot/ipxe/script.ts';

export type ImagePart = 'kernel' | 'initrd' | 'cmdline';

export class ImagePartError extends Error {
  constructor(
    readonly part: ImagePart,
    message: string,
  ) {
    super(`${part}: ${message}`);
    this.name = 'ImagePartError';
  }
}

/** Forward-only reads over a stream of chunks: the blob may be a file or an S3 object; only its head is read. */
export class ByteReader {
  private buf = Buffer.alloc(0);
  private done = false;
  /** bytes consumed so far */
  offset = 0;
  constructor(private readonly it: AsyncIterator<Buffer | Uint8Array>) {}

  static of(source: AsyncIterable<Buffer | Uint8Array> | Buffer): ByteReader {
    if (Buffer.isBuffer(source)) return new ByteReader((async function* () { yield source; })());
    return new ByteReader(source[Symbol.asyncIterator]());
  }

  private async fill(n: number): Promise<void> {
    while (this.buf.length < n && !this.done) {
      const r = await this.it.next();
      if (r.done) this.done = true;
      else this.buf = this.buf.length ? Buffer.concat([this.buf, Buffer.from(r.value)]) : Buffer.from(r.value);
    }
  }
  /** up to n bytes without consuming them (fewer at the end of the blob) */
  async peek(n: number): Promise<Buffer> {
    await this.fill(n);
    return this.buf.subarray(0, n);
  }
  /** exactly n bytes, or fewer at the end of the blob */
  async take(n: number): Promise<Buffer> {
    await this.fill(n);
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(out.length);
    this.offset += out.length;
    return out;
  }
  /** skip n bytes; false if the blob ended first */
  async skip(n: number): Promise<boolean> {
    let left = n;
    while (left > 0) {
      if (this.buf.length === 0) {
        await this.fill(1);
        if (this.buf.length === 0) return false;
      }
      const k = Math.min(left, this.buf.length);
      this.buf = this.buf.subarray(k);
      this.offset += k;
      left -= k;
    }
    return true;
  }
  async close(): Promise<void> {
    await this.it.return?.();
  }
}

const hex = (b: Buffer) => b.toString('hex').replace(/(..)/g, '$1 ').trim();

// ---- kernel ---------------------------------------------------------------------------------------------------

const X86_ARCHES = new Set(['x86_64', 'amd64', 'x86', 'i386', 'i686']);
const PE_MACHINES: Record<number, string> = { 0x8664: 'x86_64', 0x14c: 'i386', 0xaa64: 'aarch64', 0x5064: 'riscv64', 0x1c4: 'arm' };
const ELF_MACHINES: Record<number, string> = { 62: 'x86_64', 3: 'i386', 183: 'aarch64', 243: 'riscv64', 40: 'arm' };
const ARCH_ALIASES: Record<string, string> = { amd64: 'x86_64', arm64: 'aarch64', i686: 'i386', x86: 'i386' };
const normArch = (a: string) => ARCH_ALIASES[a] ?? a;

export interface KernelInfo {
  format: 'bzImage' | 'pe' | 'elf';
  /** the machine the kernel is built for */
  arch: string;
  /** x86 boot protocol version, e.g. "2.15" (bzImage only) */
  protocol?: string;
}

/** Judge a kernel by its first bytes (4 KiB are plenty). `arch` is the manifest's; a mismatch is refused. */
export function checkKernelHead(head: Buffer, arch?: string): KernelInfo {
  const fail = (m: string): never => {
    throw new ImagePartError('kernel', m);
  };
  const want = arch ? normArch(arch) : undefined;
  // only arches bootfarm knows are compared; anything else in the manifest is taken at its word
  const known = want !== undefined && Object.values(PE_MACHINES).includes(want);
  const mismatch = (got: string, what: string) => {
    if (known && want !== got) fail(`${what} built for ${got}, but the image's arch is ${arch}`);
  };
  if (head.length >= 0x212 && head.toString('latin1', 0x202, 0x206) === 'HdrS') {
    if (head.readUInt16LE(0x1fe) !== 0xaa55) fail('has the x86 "HdrS" header magic but no 0xAA55 boot flag at 0x1FE; not a bzImage');
    const version = head.readUInt16LE(0x206);
    const protocol = `${version >> 8}.${String(version & 0xff).padStart(2, '0')}`;
    if (version < 0x0200) fail(`x86 boot protocol ${protocol} is too old (2.00 or later needed)`);
    if ((head[0x211]! & 1) === 0) fail('is an x86 zImage (loadflags LOADED_HIGH not set); only bzImage kernels are booted');
    if (known && !X86_ARCHES.has(want!)) fail(`is an x86 bzImage, but the image's arch is ${arch}`);
    return { format: 'bzImage', arch: 'x86_64', protocol };
  }
  if (head.length >= 0x40 && head[0] === 0x4d && head[1] === 0x5a) {
    const pe = head.readUInt32LE(0x3c);
    if (pe + 6 > head.length) fail(`starts with "MZ" but its PE header offset 0x${pe.toString(16)} is beyond the first ${head.length} bytes; not an EFI kernel`);
    if (head.toString('latin1', pe, pe + 4) !== 'PE\0\0') fail(`starts with "MZ" but has no "PE\\0\\0" signature at 0x${pe.toString(16)}; not an EFI kernel`);
    const m = head.readUInt16LE(pe + 4);
    const got = PE_MACHINES[m];
    if (!got) fail(`is a PE file for machine 0x${m.toString(16)}, not a kernel architecture bootfarm knows`);
    mismatch(got!, 'is an EFI PE kernel');
    return { format: 'pe', arch: got! };
  }
  if (head.length >= 0x14 && head.toString('latin1', 0, 4) === '\x7fELF') {
    const le = head[5] === 1;
    if (head[5] !== 1 && head[5] !== 2) fail(`is an ELF file with an invalid data encoding byte ${head[5]}`);
    const type = le ? head.readUInt16LE(0x10) : head.readUInt16BE(0x10);
    if (type !== 2 && type !== 3) fail(`is an ELF file of type ${type}, not an executable (ET_EXEC) or position-independent (ET_DYN) kernel`);
    const m = le ? head.readUInt16LE(0x12) : head.readUInt16BE(0x12);
    const got = ELF_MACHINES[m];
    if (!got) fail(`is an ELF file for machine ${m}, not a kernel architecture bootfarm knows`);
    mismatch(got!, 'is an ELF kernel');
    return { format: 'elf', arch: got! };
  }
  if (head.length === 0) fail('is empty');
  return fail(`is not a bootable kernel: no x86 bzImage header ("HdrS" at 0x202), no EFI PE ("MZ" … "PE"), no ELF magic; it starts with ${hex(head.subarray(0, 8))}`);
}

export async function checkKernel(reader: ByteReader, arch?: string): Promise<KernelInfo> {
  try {
    return checkKernelHead(await reader.peek(4096), arch);
  } finally {
    await reader.close();
  }
}

// ---- initrd ---------------------------------------------------------------------------------------------------

export type Compression = 'gzip' | 'bzip2' | 'lzma' | 'xz' | 'lzo' | 'lz4' | 'zstd';

/** Magic bytes as the kernel's lib/decompress.c table and each format's specification give them. */
const COMPRESSED: { name: Compression; magic: number[] }[] = [
  { name: 'gzip', magic: [0x1f, 0x8b] },
  { name: 'gzip', magic: [0x1f, 0x9e] }, // old gzip, still in the kernel's table
  { name: 'bzip2', magic: [0x42, 0x5a, 0x68] }, // "BZh"
  { name: 'lzma', magic: [0x5d, 0x00] }, // properties byte 0x5D; the kernel checks these two bytes
  { name: 'xz', magic: [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00] },
  { name: 'lzo', magic: [0x89, 0x4c, 0x5a, 0x4f] }, // "\x89LZO"
  { name: 'lz4', magic: [0x02, 0x21, 0x4c, 0x18] }, // legacy frame: the only LZ4 format the kernel reads
  { name: 'zstd', magic: [0x28, 0xb5, 0x2f, 0xfd] },
];
const LZ4_FRAME = [0x04, 0x22, 0x4d, 0x18];
const startsWith = (b: Buffer, m: readonly number[]) => b.length >= m.length && m.every((x, i) => b[i] === x);

export interface InitrdSegment {
  kind: 'cpio' | Compression;
  offset: number;
  /** cpio: entries walked */
  entries?: number;
}

export interface InitrdInfo {
  segments: InitrdSegment[];
  /** true when the walk stopped at the scan limit (everything up to it was valid) */
  truncated: boolean;
}

const NEWC_HEADER = 110;
const pad4 = (n: number) => (4 - (n % 4)) % 4;

/** Parse one newc header (the 6-byte magic, then 13 fields of 8 hex digits). */
function newcHeader(h: Buffer, at: number): { namesize: number; filesize: number } {
  const fields: number[] = [];
  for (let i = 0; i < 13; i++) {
    const s = h.toString('latin1', 6 + i * 8, 14 + i * 8);
    if (!/^[0-9A-Fa-f]{8}$/.test(s)) throw new ImagePartError('initrd', `cpio header at byte ${at} has a malformed field ${JSON.stringify(s)}; the archive is corrupt`);
    fields.push(parseInt(s, 16));
  }
  return { filesize: fields[6]!, namesize: fields[11]! };
}

/**
 * Walk an initrd: newc cpio archives (possibly several, NUL-padded) and at most one compressed member, which ends
 * the walk. `maxScanBytes` bounds how much uncompressed cpio is read; past it the initrd is accepted as far as seen.
 */
export async function checkInitrd(reader: ByteReader, { maxScanBytes = 32 * 1024 * 1024 }: { maxScanBytes?: number } = {}): Promise<InitrdInfo> {
  const fail = (m: string): never => {
    throw new ImagePartError('initrd', m);
  };
  const segments: InitrdSegment[] = [];
  try {
    for (;;) {
      if (reader.offset > maxScanBytes) return { segments, truncated: true };
      const head = await reader.peek(8);
      if (head.length === 0) {
        if (segments.length === 0) fail('is empty');
        return { segments, truncated: false };
      }
      if (head[0] === 0) {
        // NUL padding between concatenated archives (init/initramfs.c skips it)
        for (;;) {
          const chunk = await reader.peek(4096);
          let n = 0;
          while (n < chunk.length && chunk[n] === 0) n++;
          await reader.skip(n);
          if (n < chunk.length || chunk.length === 0 || reader.offset > maxScanBytes) break;
        }
        if (segments.length === 0 && (await reader.peek(1)).length === 0) fail('is all zero bytes');
        continue;
      }
      const magic = head.toString('latin1', 0, 6);
      if (magic === '070701' || magic === '070702') {
        const seg: InitrdSegment = { kind: 'cpio', offset: reader.offset, entries: 0 };
        segments.push(seg);
        for (;;) {
          const at = reader.offset;
          const h = await reader.take(NEWC_HEADER);
          if (h.length < NEWC_HEADER) fail(`the cpio archive at byte ${seg.offset} ends inside an entry header at byte ${at} (truncated, no TRAILER!!!)`);
          const m = h.toString('latin1', 0, 6);
          if (m !== '070701' && m !== '070702') fail(`the cpio archive at byte ${seg.offset} has a bad entry header at byte ${at} (magic ${JSON.stringify(m)}); the archive is corrupt`);
          const { namesize, filesize } = newcHeader(h, at);
          if (namesize < 1 || namesize > 4096) fail(`cpio entry at byte ${at} has a name size of ${namesize}; the archive is corrupt`);
          const name = await reader.take(namesize);
          if (name.length < namesize) fail(`the cpio archive ends inside the name of the entry at byte ${at}`);
          const trailer = name.toString('latin1', 0, namesize - 1) === 'TRAILER!!!';
          const jump = pad4(NEWC_HEADER + namesize) + filesize + pad4(filesize);
          // a large uncompressed file is not read through just to find the next header
          if (reader.offset + jump > maxScanBytes) return { segments, truncated: true };
          if (!(await reader.skip(jump)) && !trailer)
            fail(`the cpio archive ends inside the data of ${JSON.stringify(name.toString('utf8', 0, namesize - 1).slice(0, 80))} (entry at byte ${at})`);
          if (trailer) break;
          seg.entries!++;
          if (reader.offset > maxScanBytes) return { segments, truncated: true };
        }
        continue;
      }
      if (magic === '070707') fail(`the archive at byte ${reader.offset} is an old portable (odc) cpio; the kernel unpacks only newc ("070701"/"070702"): build it with cpio -H newc`);
      if (startsWith(head, LZ4_FRAME)) fail(`the member at byte ${reader.offset} is LZ4 frame format; the kernel reads only LZ4 legacy format (lz4 -l)`);
      const c = COMPRESSED.find((x) => startsWith(head, x.magic));
      if (!c) fail(`${segments.length ? `after ${segments.length} cpio archive(s), the data at byte ${reader.offset}` : 'it'} is neither a newc cpio archive ("070701"/"070702") nor compressed in a format the kernel reads (gzip, zstd, xz, lzma, bzip2, lzo, lz4 legacy); it starts with ${hex(head)}`);
      segments.push({ kind: c!.name, offset: reader.offset });
      if (c!.name === 'gzip') {
        // Decompress only what the first 64 KiB give (Z_SYNC_FLUSH accepts the truncated input) and look for cpio.
        const part = await reader.take(64 * 1024);
        let out: Buffer;
        try {
          out = gunzipSync(part, { finishFlush: zlibConstants.Z_SYNC_FLUSH });
        } catch (e) {
          return fail(`the gzip member at byte ${segments.at(-1)!.offset} does not decompress: ${(e as Error).message}`);
        }
        const inner = out.toString('latin1', 0, 6);
        if (out.length >= 6 && inner !== '070701' && inner !== '070702')
          fail(`the gzip member at byte ${segments.at(-1)!.offset} does not hold a newc cpio archive (it starts with ${hex(out.subarray(0, 8))})`);
      }
      return { segments, truncated: false };
    }
  } finally {
    await reader.close();
  }
}

// ---- command line ---------------------------------------------------------------------------------------------

/**
 * The image's command line must render into the same iPXE script the boot route renders (boot/ipxe/script.ts):
 * every argument passes safeCmdline, so `${x}`, quotes, `||` and the like are refused here rather than turning
 * every /ipxe answer into an error. Returns the arguments.
 */
export function checkCmdline(cmdline: string): string[] {
  try {
    const args = safeCmdline(cmdline);
    const d = '0'.repeat(64);
    renderKernelScript({ comment: 'push check', kernelUrl: `http://bootfarm.invalid/images/${d}`, initrdUrl: `http://bootfarm.invalid/images/${d}`, args, retryUrl: 'http://bootfarm.invalid/boot.ipxe' });
    return args;
  } catch (e) {
    if (e instanceof ScriptValueError) throw new ImagePartError('cmdline', `${e.message.replace(/^kernel argument/, 'an argument')}; it cannot be put into an iPXE script`);
    throw e;
  }
}
