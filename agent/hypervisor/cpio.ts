// A newc ("070701") cpio writer: the self-test guest's initramfs is made on the node from the compute OS's own
// busybox, so the image carries no second initrd. Format: the kernel's Documentation/driver-api/early-userspace/
// buffer-format.rst — a 110-byte ASCII header of 8-hex-digit fields, the NUL-terminated name, padding to 4 bytes,
// the data, padding to 4 bytes; the archive ends with an entry named "TRAILER!!!". Uncompressed: the kernel takes it
// as it is, and 2 MB of busybox need no compression to cross a memory copy.

export type CpioEntry =
  | { path: string; type: 'file'; mode: number; data: Uint8Array }
  | { path: string; type: 'dir'; mode: number }
  | { path: string; type: 'char'; mode: number; major: number; minor: number };

const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFCHR = 0o020000;

const hex8 = (n: number) => n.toString(16).padStart(8, '0');
const pad4 = (n: number) => (4 - (n % 4)) % 4;

function header(ino: number, mode: number, nlink: number, size: number, rmajor: number, rminor: number, nameSize: number): string {
  // magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor, rdevmajor, rdevminor, namesize, check
  return ['070701', hex8(ino), hex8(mode), hex8(0), hex8(0), hex8(nlink), hex8(0), hex8(size), hex8(0), hex8(0), hex8(rmajor), hex8(rminor), hex8(nameSize), hex8(0)].join('');
}

/** The archive's bytes; owner 0:0 and mtime 0, so the same entries give the same bytes. Paths are relative ("init", "bin/busybox"). */
export function newcArchive(entries: readonly CpioEntry[]): Uint8Array {
  const parts: Uint8Array[] = [];
  const enc = new TextEncoder();
  let offset = 0;
  const push = (b: Uint8Array) => {
    parts.push(b);
    offset += b.length;
  };
  const pad = () => {
    const n = pad4(offset);
    if (n) push(new Uint8Array(n));
  };
  const entry = (ino: number, name: string, mode: number, nlink: number, data: Uint8Array, rdev: [number, number] = [0, 0]) => {
    if (name.length === 0 || name.startsWith('/') || name.includes('\0')) throw new Error(`cpio: bad path ${JSON.stringify(name)} (relative, no NUL)`);
    const nameBytes = enc.encode(`${name}\0`);
    push(enc.encode(header(ino, mode, nlink, data.length, rdev[0], rdev[1], nameBytes.length)));
    push(nameBytes);
    pad();
    push(data);
    pad();
  };
  entries.forEach((e, i) => {
    const perm = e.mode & 0o7777;
    if (e.type === 'file') entry(i + 1, e.path, S_IFREG | perm, 1, e.data);
    else if (e.type === 'dir') entry(i + 1, e.path, S_IFDIR | perm, 2, new Uint8Array(0));
    else entry(i + 1, e.path, S_IFCHR | perm, 1, new Uint8Array(0), [e.major, e.minor]);
  });
  entry(0, 'TRAILER!!!', 0, 1, new Uint8Array(0));
  const out = new Uint8Array(offset);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
