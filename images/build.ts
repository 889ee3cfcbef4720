// Builds the stage-1 and compute OS images (Debian kernel + initramfs) from Debian packages, reproducibly.
//
//   npx tsx images/build.ts --agent build/agent/bootfarm-agent [--out build/images] [--image stage1] …
//
// Packages are fetched with `apt-get download` and unpacked with `dpkg-deb -x` into a cache under build/ (nothing is
// installed into /). Shared libraries come from the unpacked Debian library packages, not from the host, so the image
// depends only on package versions, the agent binary and the recipe. Output per image: vmlinuz, initrd.img,
// manifest.json, cmdline. The same inputs give byte-identical files: fixed SOURCE_DATE_EPOCH mtimes, sorted newc cpio with
// --reproducible, owner 0:0, single-threaded compression.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { isElf, parseDependsField, parseDynamic, parseInterpreter } from './elf.ts';
import { parseModulesBuiltin, parseModulesDep, selectModules, type ModuleRequest } from './modules.ts';

export type ImageName = 'stage1' | 'compute';

/** A resolver or mirror that fails for a minute must not fail the build (a CI run failed on one "Temporary failure
 * resolving deb.debian.org"): apt retries each fetch itself, with its own exponential delay (apt ≥ 2.3: 1 s, 2 s, 4 s …
 * capped at 30 s, so 8 retries wait about 2.5 min in all) — no retry loop of ours. */
const APT_RETRIES = ['-o', 'Acquire::Retries=8'];
export type Compression = 'zstd' | 'gzip';

export interface BuildOptions {
  /** output root: <out>/<image>/{vmlinuz,initrd.img,manifest.json} */
  out: string;
  /** package cache (debs and unpacked trees), shared between builds */
  cache: string;
  /** the compiled agent (or a stand-in script in tests) */
  agentBin: string;
  images?: ImageName[];
  /** image version written into the image and the manifest; default "dev+<inputs digest>" */
  version?: string;
  sourceDateEpoch?: number;
  compression?: Compression;
  /** zstd level (default 9); decompression speed hardly depends on it, size and build time do (-19: 12 % smaller, 20× slower) */
  zstdLevel?: number;
  /** reuse an existing output whose manifest has the same inputs digest */
  reuse?: boolean;
  /** kernel package; default: what linux-image-amd64 depends on */
  kernelPackage?: string;
  log?: (line: string) => void;
}

export interface FileEntry {
  path: string;
  type: 'file' | 'dir' | 'symlink' | 'char';
  mode: string;
  size?: number;
  sha256?: string;
  target?: string;
}

export interface Manifest {
  name: ImageName;
  version: string;
  inputsDigest: string;
  sourceDateEpoch: number;
  kernelRelease: string;
  compression: Compression;
  cmdline: string;
  kernel: { file: 'vmlinuz'; size: number; sha256: string; package: string };
  initrd: { file: 'initrd.img'; size: number; sha256: string; uncompressedSize: number };
  agent: { path: string; size: number; sha256: string; elf: boolean };
  packages: { name: string; version: string; sha256: string }[];
  modules: { load: string[]; missing: string[]; builtin: string[] };
  files: FileEntry[];
}

const ROOT = path.resolve(import.meta.dirname, '..');
const RECIPE_DIR = import.meta.dirname;
const KVER_PATTERN = /^linux-image-(6\.1\.\S+-amd64)$/;

/** The kernel modules each image loads (dependencies are added from modules.dep). FACTS.md: the virtio chain. */
const VIRTIO = ['virtio_pci', 'virtio_net'];
const IPMI = ['ipmi_msghandler', 'ipmi_devintf', 'ipmi_si'];
// The NICs found in servers; loaded whatever the hardware (an absent device costs a registration, nothing more).
const SERVER_NICS = ['e1000e', 'igb', 'ixgbe', 'i40e', 'ice', 'mlx5_core', 'bnxt_en', 'e1000', 'tg3'];
const STORAGE = ['ahci', 'nvme', 'virtio_blk', 'virtio_scsi', 'sd_mod'];
// efivarfs: /init mounts it for the agent's firmware.secureBoot fact (agent/facts/secureboot.ts); a module in Debian's
// kernel, not built in (without it a Secure Boot node reported "unknown", measured). Optional: BIOS nodes do not need it.
const FIRMWARE_FS = ['efivarfs'];
const ISCSI_EXT4 = ['crc32c_generic', 'iscsi_tcp', 'libiscsi', 'libiscsi_tcp', 'scsi_transport_iscsi', 'scsi_mod', 'sd_mod', 'ext4', 'jbd2', 'mbcache', 'crc16'];

interface ToolFile {
  pkg: string;
  /** path inside the package */
  from: string;
  /** path inside the image; default = from */
  to?: string;
}

interface ImageSpec {
  name: ImageName;
  tools: ToolFile[];
  links: { path: string; target: string }[];
  modules: ModuleRequest;
  cmdline: string;
}

export const IMAGE_SPECS: Record<ImageName, ImageSpec> = {
  stage1: {
    name: 'stage1',
    tools: [
      { pkg: 'lldpd', from: 'usr/sbin/lldpd' },
      { pkg: 'lldpd', from: 'usr/sbin/lldpcli' },
      { pkg: 'dmidecode', from: 'usr/sbin/dmidecode' },
      { pkg: 'ethtool', from: 'sbin/ethtool' },
      { pkg: 'ipmitool', from: 'usr/bin/ipmitool' },
      { pkg: 'kexec-tools', from: 'sbin/kexec' },
      // the agent's disk facts (agent/README.md); busybox has no lsblk
      { pkg: 'util-linux', from: 'bin/lsblk' },
    ],
    links: [{ path: 'usr/sbin/lldpctl', target: 'lldpcli' }],
    modules: { required: [...VIRTIO, ...IPMI], optional: [...SERVER_NICS, ...STORAGE, ...FIRMWARE_FS] },
    cmdline: 'console=ttyS0 bootfarm.mode=stage1',
  },
  compute: {
    name: 'compute',
    tools: [
      { pkg: 'open-iscsi', from: 'sbin/iscsistart' },
      { pkg: 'e2fsprogs', from: 'sbin/mke2fs' },
      { pkg: 'e2fsprogs', from: 'sbin/e2fsck' },
      { pkg: 'e2fsprogs', from: 'sbin/dumpe2fs' },
      { pkg: 'e2fsprogs', from: 'etc/mke2fs.conf' },
      { pkg: 'dmidecode', from: 'usr/sbin/dmidecode' },
      { pkg: 'ethtool', from: 'sbin/ethtool' },
      { pkg: 'kexec-tools', from: 'sbin/kexec' },
      { pkg: 'util-linux', from: 'bin/lsblk' },
      // the agent applies the node's network with iproute2 and reads it back as JSON (agent/network): busybox's ip
      // has no -j, no bond and no vlan. Debian 12's iproute2 ships bin/ip (sbin/ip is a link to it); installed as
      // sbin/ip so it takes the applet's path: /init's PATH puts /sbin before /bin, and tools go in before applets
      { pkg: 'iproute2', from: 'bin/ip', to: 'sbin/ip' },
      // The hypervisor (issue 16 item 2): QEMU itself, managed by the agent over QMP (agent/hypervisor). Not libvirt:
      // libvirtd is a daemon with its own state, XML domain store, polkit/dbus expectations and ~60 more library
      // packages, and this OS has no service manager to keep it alive; QMP is the same control channel libvirt
      // itself drives, reached over one unix socket per guest. Firmware: SeaBIOS for the guest's BIOS and the
      // linuxboot/multiboot option ROMs for -kernel; no NIC ROMs (guests start with -nic none), no VGA BIOS
      // (-vga none), no keymaps (no VNC). Debian's QEMU searches /usr/share/qemu and /usr/share/seabios.
      { pkg: 'qemu-system-x86', from: 'usr/bin/qemu-system-x86_64' },
      // Debian builds TCG as a module: without it `-accel tcg` dies "could not load module for type 'tcg-accel-ops'"
      // (measured inside the compute OS); QEMU looks in its compiled-in /usr/lib/x86_64-linux-gnu/qemu
      { pkg: 'qemu-system-common', from: 'usr/lib/x86_64-linux-gnu/qemu/accel-tcg-x86_64.so' },
      { pkg: 'seabios', from: 'usr/share/seabios/bios-256k.bin' },
      { pkg: 'qemu-system-data', from: 'usr/share/qemu/linuxboot_dma.bin' },
      { pkg: 'qemu-system-data', from: 'usr/share/qemu/multiboot_dma.bin' },
      { pkg: 'qemu-system-data', from: 'usr/share/qemu/kvmvapic.bin' },
    ],
    links: [
      { path: 'sbin/mkfs.ext4', target: 'mke2fs' },
      { path: 'sbin/fsck.ext4', target: 'e2fsck' },
    ],
    // bonding and 8021q: the detail's bond and vlans (agent/network); modules in Debian's amd64 kernel, not built in
    // kvm_intel/kvm_amd: /dev/kvm for the guests where the CPU has VT-x/AMD-V (one of them fails to load, as does
    // either on a CPU without it: /init counts them "not loaded" and goes on; the agent then reports kvm false)
    modules: { required: [...VIRTIO, ...ISCSI_EXT4, 'bonding', '8021q'], optional: [...SERVER_NICS, ...STORAGE, 'crc32c_intel', ...IPMI, 'kvm_intel', 'kvm_amd', ...FIRMWARE_FS] },
    cmdline: 'console=ttyS0 bootfarm.mode=compute',
  },
};

function run(cmd: string, args: string[], opts: { cwd?: string; input?: Buffer } = {}): string {
  return execFileSync(cmd, args, { cwd: opts.cwd, input: opts.input, encoding: 'utf8', maxBuffer: 256 << 20, stdio: ['pipe', 'pipe', 'pipe'] });
}

function sha256File(file: string): string {
  const h = createHash('sha256');
  const fd = fs.openSync(file, 'r');
  const buf = Buffer.alloc(1 << 20);
  try {
    for (let n; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0; ) h.update(buf.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
  return h.digest('hex');
}

// ---------------------------------------------------------------------------------------------- Debian packages

/** Candidate versions from `apt-cache policy` (one call for all names). */
export function parsePolicy(text: string): Map<string, string> {
  const out = new Map<string, string>();
  let current: string | null = null;
  for (const line of text.split('\n')) {
    const head = /^(\S+):$/.exec(line);
    if (head) current = head[1]!;
    const cand = /^\s+Candidate:\s+(\S+)/.exec(line);
    if (cand && current && cand[1] !== '(none)') out.set(current, cand[1]!);
  }
  return out;
}

let aptUpdated = false;

export function candidates(names: string[]): Map<string, string> {
  let found = parsePolicy(run('apt-cache', ['policy', ...names]));
  if (names.some((n) => !found.has(n)) && !aptUpdated) {
    // A fresh machine (or container) may have empty package lists: refresh them once, as `make deps-apt` does.
    aptUpdated = true;
    run('apt-get', ['update', '-qq', ...APT_RETRIES]);
    found = parsePolicy(run('apt-cache', ['policy', ...names]));
  }
  const missing = names.filter((n) => !found.has(n));
  if (missing.length) throw new Error(`apt-cache offers no version of ${missing.join(', ')} (run apt-get update first)`);
  return found;
}

function kernelPackage(explicit?: string): string {
  if (!explicit) candidates(['linux-image-amd64']); // refreshes empty package lists first
  const name = explicit ?? (/Depends:\s+(linux-image-\S+)/.exec(run('apt-cache', ['depends', 'linux-image-amd64']))?.[1] ?? '');
  if (!KVER_PATTERN.test(name)) throw new Error(`kernel package ${JSON.stringify(name)} is not linux-image-6.1.*-amd64`);
  return name;
}

/**
 * Where this machine keeps .debs outside any clone: apt's archive cache, then bootfarm's own store (written after a
 * download). BOOTFARM_DEB_DIRS (colon-separated) replaces the list; the last entry is the one written.
 */
export function machineDebDirs(env: NodeJS.ProcessEnv = process.env): string[] {
  const dirs = (env.BOOTFARM_DEB_DIRS ?? '/var/cache/apt/archives:/var/cache/bootfarm/debs').split(':').filter(Boolean);
  return dirs.length ? dirs : ['/var/cache/bootfarm/debs'];
}

/** SHA256 of name=version's .deb as the package lists give it (`apt-cache show`, offline). */
export function indexSha256(name: string, version: string): string | undefined {
  const r = spawnSync('apt-cache', ['show', `${name}=${version}`], { encoding: 'utf8' });
  if (r.status !== 0) return undefined;
  return parseIndexSha256(r.stdout);
}

/** The first stanza's SHA256 field (several stanzas when several lists carry the version: the same file). */
export function parseIndexSha256(text: string): string | undefined {
  return /^SHA256:\s*([0-9a-f]{64})\s*$/m.exec(text)?.[1];
}

interface Deb {
  name: string;
  version: string;
  file: string;
  sha256: string;
  /** unpacked tree */
  root: string;
}

export class PackageCache {
  private readonly debDir: string;
  private readonly unpackDir: string;
  private readonly debs = new Map<string, Deb>();

  constructor(cache: string, private readonly log: (l: string) => void) {
    this.debDir = path.join(cache, 'debs');
    this.unpackDir = path.join(cache, 'unpacked');
    fs.mkdirSync(this.debDir, { recursive: true });
    fs.mkdirSync(this.unpackDir, { recursive: true });
  }

  get(name: string): Deb {
    const d = this.debs.get(name);
    if (!d) throw new Error(`package ${name} was not fetched`);
    return d;
  }

  all(): Deb[] {
    return [...this.debs.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
  }

  /** apt-get download of name=version for those not in the cache yet; then unpack each once. */
  fetch(versions: Map<string, string>): Deb[] {
    const fileOf = (name: string, version: string): string | undefined => {
      // apt-get names the file NAME_VERSION_ARCH.deb with the epoch colon written as %3a.
      const prefix = `${name}_${version.replace(/:/g, '%3a')}_`;
      return fs.readdirSync(this.debDir).find((f) => f.startsWith(prefix) && f.endsWith('.deb'));
    };
    for (const [n, v] of versions) if (!fileOf(n, v)) this.fromMachineCache(n, v);
    const want = [...versions].filter(([n, v]) => !fileOf(n, v)).map(([n, v]) => `${n}=${v}`);
    if (want.length) {
      this.log(`apt-get download ${want.join(' ')}`);
      const r = spawnSync('apt-get', ['download', '-q', ...APT_RETRIES, ...want], { cwd: this.debDir, encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`apt-get download failed: ${r.stderr.trim()}`);
      for (const [n, v] of versions) {
        const f = fileOf(n, v);
        if (f) this.toMachineCache(f);
      }
    }
    const out: Deb[] = [];
    for (const [name, version] of versions) {
      const f = fileOf(name, version);
      if (!f) throw new Error(`apt-get download left no .deb for ${name}=${version}`);
      const file = path.join(this.debDir, f);
      const root = path.join(this.unpackDir, f.replace(/\.deb$/, ''));
      if (!fs.existsSync(path.join(root, '.unpacked'))) {
        fs.rmSync(root, { recursive: true, force: true });
        fs.mkdirSync(root, { recursive: true });
        run('dpkg-deb', ['-x', file, root]);
        fs.writeFileSync(path.join(root, '.unpacked'), '');
      }
      const control = path.join(root, '.control');
      if (!fs.existsSync(control)) fs.writeFileSync(control, run('dpkg-deb', ['-f', file]));
      const deb = { name, version, file, sha256: sha256File(file), root };
      this.debs.set(name, deb);
      out.push(deb);
    }
    return out;
  }

  /**
   * A .deb this machine already holds (apt's own archive cache, or the store an earlier build of any clone filled),
   * taken only when its SHA-256 is the one the package lists name for name=version: the same file apt-get download
   * would fetch. So a fresh clone builds without the mirror once this machine has built (or installed) the packages
   * — a CI run on a day the resolver is down (2026-12-03), or an air-gapped builder seeded by hand.
   */
  private fromMachineCache(name: string, version: string): void {
    const base = `${name}_${version.replace(/:/g, '%3a')}_`;
    for (const dir of machineDebDirs()) {
      let files: string[];
      try {
        files = fs.readdirSync(dir).filter((f) => f.startsWith(base) && f.endsWith('.deb'));
      } catch {
        continue;
      }
      for (const f of files) {
        const src = path.join(dir, f);
        const want = indexSha256(name, version);
        if (!want || sha256File(src) !== want) continue;
        fs.copyFileSync(src, path.join(this.debDir, f));
        this.log(`${name}=${version}: from ${src} (sha256 matches the package index)`);
        return;
      }
    }
  }

  /** Keeps a downloaded .deb in the machine's store (best effort: a read-only or foreign /var is no error). */
  private toMachineCache(file: string): void {
    const dir = machineDebDirs().at(-1)!;
    try {
      fs.mkdirSync(dir, { recursive: true });
      const dest = path.join(dir, file);
      if (!fs.existsSync(dest)) {
        fs.copyFileSync(path.join(this.debDir, file), `${dest}.tmp`);
        fs.renameSync(`${dest}.tmp`, dest);
      }
    } catch (e) {
      this.log(`could not keep ${file} in ${dir}: ${(e as Error).message}`);
    }
  }

  /** A field of the package's control file (read once at unpack time; RFC 822-style, continuation lines folded). */
  field(name: string, field: string): string {
    const text = fs.readFileSync(path.join(this.get(name).root, '.control'), 'utf8');
    const m = new RegExp(`^${field}:(.*(?:\\n[ \\t].*)*)`, 'mi').exec(text);
    return m ? m[1]!.replace(/\n[ \t]+/g, ' ').trim() : '';
  }
}

/**
 * The library packages a set of packages can need: Depends + Pre-Depends, recursively, names starting with "lib" (and zlib1g).
 * A superset (only the files the ELF closure needs are copied); it keeps the image independent of the host's /lib.
 */
const LIBRARY_PACKAGE = /^(lib|zlib1g$)/;

function fetchLibraryClosure(pkgs: PackageCache, roots: string[], cacheDir: string): void {
  // apt-cache takes seconds per call on a busy machine: ask once for every name the last build's closure had.
  const hintFile = path.join(cacheDir, 'library-closure.json');
  const hint = fs.existsSync(hintFile) ? (JSON.parse(fs.readFileSync(hintFile, 'utf8')) as string[]) : [];
  const known = hint.length ? candidates(hint.filter((n) => !roots.includes(n))) : new Map<string, string>();
  const seen = new Set(roots);
  let frontier = roots;
  while (frontier.length) {
    const next = new Set<string>();
    for (const p of frontier) {
      const deps = [...parseDependsField(pkgs.field(p, 'Depends')), ...parseDependsField(pkgs.field(p, 'Pre-Depends'))];
      for (const d of deps) if (LIBRARY_PACKAGE.test(d) && !seen.has(d)) next.add(d);
    }
    const names = [...next].sort();
    names.forEach((n) => seen.add(n));
    const unknown = names.filter((n) => !known.has(n));
    const versions = unknown.length ? candidates(unknown) : new Map<string, string>();
    for (const n of names) if (known.has(n)) versions.set(n, known.get(n)!);
    if (names.length) pkgs.fetch(versions);
    frontier = names;
  }
  fs.writeFileSync(hintFile, JSON.stringify([...seen].sort()));
}

// ------------------------------------------------------------------------------------------ shared libraries

/** Follows symlinks inside an unpacked tree (absolute links are taken relative to the tree, not the host). */
function realInTree(root: string, rel: string): string {
  let cur = rel.replace(/^\/+/, '');
  for (let hops = 0; hops < 40; hops++) {
    const abs = path.join(root, cur);
    const st = fs.lstatSync(abs, { throwIfNoEntry: false });
    if (!st) throw new Error(`${cur} does not exist in ${root}`);
    if (!st.isSymbolicLink()) return abs;
    const target = fs.readlinkSync(abs);
    cur = target.startsWith('/') ? target.slice(1) : path.posix.normalize(path.posix.join(path.posix.dirname(cur), target));
  }
  throw new Error(`symlink loop at ${rel} in ${root}`);
}

const LIB_DIRS = ['lib/x86_64-linux-gnu', 'usr/lib/x86_64-linux-gnu', 'lib64', 'lib', 'usr/lib'];

/** soname → file, over every unpacked package (sorted by name so the first provider is always the same). */
function libraryIndex(pkgs: PackageCache): Map<string, { pkg: string; file: string }> {
  const index = new Map<string, { pkg: string; file: string }>();
  for (const deb of pkgs.all()) {
    for (const dir of LIB_DIRS) {
      const abs = path.join(deb.root, dir);
      if (!fs.existsSync(abs)) continue;
      for (const f of fs.readdirSync(abs).sort()) {
        if (!/\.so(\.|$)/.test(f) || index.has(f)) continue;
        try {
          const real = realInTree(deb.root, path.posix.join(dir, f));
          if (fs.statSync(real).isFile()) index.set(f, { pkg: deb.name, file: real });
        } catch {
          // dangling link (e.g. a -dev symlink whose target is in another package): not a provider
        }
      }
    }
  }
  return index;
}

/** Copies the ELF closure of `binaries` (NEEDED, recursively, plus the interpreter) into the image's /lib. */
function copyLibraries(stage: string, binaries: string[], index: Map<string, { pkg: string; file: string }>, used: Set<string>): void {
  const done = new Set<string>();
  const queue = [...binaries];
  while (queue.length) {
    const bin = queue.shift()!;
    const head = Buffer.alloc(4);
    const fd = fs.openSync(bin, 'r');
    fs.readSync(fd, head, 0, 4, 0);
    fs.closeSync(fd);
    if (!isElf(head)) continue;
    const interp = parseInterpreter(run('readelf', ['-lW', bin]));
    if (interp && !done.has(interp)) {
      done.add(interp);
      const base = path.basename(interp);
      const lib = index.get(base);
      if (!lib) throw new Error(`no unpacked package provides the ELF interpreter ${interp}`);
      used.add(lib.pkg);
      copy(lib.file, path.join(stage, 'lib/x86_64-linux-gnu', base), 0o755);
      if (interp !== `/lib/x86_64-linux-gnu/${base}`) symlink(stage, interp.slice(1), `/lib/x86_64-linux-gnu/${base}`);
    }
    for (const so of parseDynamic(run('readelf', ['-dW', bin])).needed) {
      if (done.has(so)) continue;
      done.add(so);
      const lib = index.get(so);
      if (!lib) throw new Error(`no unpacked package provides ${so} (needed by ${path.basename(bin)})`);
      used.add(lib.pkg);
      const dest = path.join(stage, 'lib/x86_64-linux-gnu', so);
      copy(lib.file, dest, 0o755);
      queue.push(dest);
    }
  }
}

// ------------------------------------------------------------------------------------------- staging helpers

function copy(from: string, to: string, mode?: number): void {
  fs.mkdirSync(path.dirname(to), { recursive: true });
  fs.copyFileSync(from, to);
  fs.chmodSync(to, mode ?? fs.statSync(from).mode & 0o7777);
}

function symlink(stage: string, at: string, target: string): void {
  const abs = path.join(stage, at);
  fs.mkdirSync(path.dirname(abs), { recursive: true });
  fs.rmSync(abs, { force: true });
  fs.symlinkSync(target, abs);
}

/** Copies a recipe directory (images/rootfs/<x>) into the stage: scripts 0755, the rest 0644. */
function copyRecipeTree(from: string, stage: string): void {
  for (const rel of walk(from)) {
    const src = path.join(from, rel);
    const dest = path.join(stage, rel);
    if (fs.statSync(src).isDirectory()) fs.mkdirSync(dest, { recursive: true });
    else copy(src, dest, fs.readFileSync(src).subarray(0, 2).toString() === '#!' ? 0o755 : 0o644);
  }
}

/** Relative paths under dir, sorted bytewise (LC_ALL=C), directories before their contents. */
function walk(dir: string): string[] {
  const out: string[] = [];
  const rec = (rel: string): void => {
    for (const name of fs.readdirSync(path.join(dir, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      out.push(r);
      if (fs.lstatSync(path.join(dir, r)).isDirectory()) rec(r);
    }
  };
  rec('');
  return out;
}

function fileList(stage: string): FileEntry[] {
  return walk(stage).map((rel) => {
    const abs = path.join(stage, rel);
    const st = fs.lstatSync(abs);
    const mode = (st.mode & 0o7777).toString(8).padStart(4, '0');
    if (st.isSymbolicLink()) return { path: `/${rel}`, type: 'symlink', mode, target: fs.readlinkSync(abs) };
    if (st.isDirectory()) return { path: `/${rel}`, type: 'dir', mode };
    if (st.isCharacterDevice()) return { path: `/${rel}`, type: 'char', mode };
    return { path: `/${rel}`, type: 'file', mode, size: st.size, sha256: sha256File(abs) };
  });
}

function recipeDigest(): string {
  const h = createHash('sha256');
  for (const f of ['build.ts', 'modules.ts', 'elf.ts']) h.update(f).update(fs.readFileSync(path.join(RECIPE_DIR, f)));
  const rootfs = path.join(RECIPE_DIR, 'rootfs');
  for (const rel of walk(rootfs)) {
    const abs = path.join(rootfs, rel);
    if (fs.statSync(abs).isFile()) h.update(rel).update(fs.readFileSync(abs));
  }
  return h.digest('hex');
}

// ------------------------------------------------------------------------------------------------------ build

export async function buildImages(options: BuildOptions): Promise<Manifest[]> {
  // Absolute paths: the archive step runs from inside the staging directory.
  const opts = { ...options, out: path.resolve(options.out), cache: path.resolve(options.cache), agentBin: path.resolve(options.agentBin) };
  const log = opts.log ?? ((l: string) => console.log(l));
  const epoch = opts.sourceDateEpoch ?? 1_700_000_000;
  const compression = opts.compression ?? 'zstd';
  const zstdLevel = opts.zstdLevel ?? 9;
  const images = opts.images ?? ['stage1', 'compute'];
  if (!fs.existsSync(opts.agentBin)) throw new Error(`agent binary ${opts.agentBin} does not exist (make agent, or pass AGENT_BIN=…)`);

  const t0 = Date.now();
  const secs = (): string => `${((Date.now() - t0) / 1000).toFixed(1)} s`;
  const pkgs = new PackageCache(opts.cache, log);
  const kpkg = kernelPackage(opts.kernelPackage);
  // Every recipe's packages, whichever images are built: the inputs digest (and so the version written into the
  // image) must not depend on which images one build happens to make.
  const toolPkgs = [...new Set(Object.values(IMAGE_SPECS).flatMap((s) => s.tools.map((t) => t.pkg)))].sort();
  const direct = ['busybox-static', 'libc6', ...toolPkgs];
  pkgs.fetch(candidates([kpkg, ...direct]));
  fetchLibraryClosure(pkgs, direct, opts.cache);

  const kroot = pkgs.get(kpkg).root;
  const release = fs.readdirSync(path.join(kroot, 'lib/modules'))[0]!;
  if (!release) throw new Error(`kernel package ${kpkg} has no lib/modules/<release>`);
  // The package ships no modules.dep (postinst runs depmod): generate it in the unpacked tree, never in /lib.
  const depFile = path.join(kroot, 'lib/modules', release, 'modules.dep');
  if (!fs.existsSync(depFile)) run('depmod', ['-b', kroot, release]);
  const modIndex = parseModulesDep(fs.readFileSync(depFile, 'utf8'));
  const builtins = parseModulesBuiltin(fs.readFileSync(path.join(kroot, 'lib/modules', release, 'modules.builtin'), 'utf8'));
  const libs = libraryIndex(pkgs);
  log(`packages ready (${pkgs.all().length} unpacked) after ${secs()}`);
  const agentSha = sha256File(opts.agentBin);
  const recipe = recipeDigest();

  const manifests: Manifest[] = [];
  for (const name of images) {
    const spec = IMAGE_SPECS[name];
    const selection = selectModules(modIndex, spec.modules, builtins);
    const inputsDigest = createHash('sha256')
      .update(JSON.stringify({ name, recipe, agentSha, epoch, compression, zstdLevel, version: opts.version ?? null, packages: pkgs.all().map((d) => [d.name, d.sha256]) }))
      .digest('hex');
    const version = opts.version ?? `dev+${inputsDigest.slice(0, 12)}`;
    const outDir = path.join(opts.out, name);
    const manifestFile = path.join(outDir, 'manifest.json');
    if (opts.reuse && fs.existsSync(manifestFile)) {
      const old = JSON.parse(fs.readFileSync(manifestFile, 'utf8')) as Manifest;
      if (old.inputsDigest === inputsDigest && fs.existsSync(path.join(outDir, 'initrd.img')) && sha256File(path.join(outDir, 'initrd.img')) === old.initrd.sha256) {
        log(`${name}: up to date (inputs ${inputsDigest.slice(0, 12)})`);
        manifests.push(old);
        continue;
      }
    }

    const stage = path.join(opts.out, `.stage-${name}`);
    fs.rmSync(stage, { recursive: true, force: true });
    for (const d of ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'lib/x86_64-linux-gnu', 'etc/bootfarm', 'dev', 'proc', 'sys', 'run', 'tmp', 'root', 'mnt', 'var/log', 'var/lib/bootfarm']) {
      fs.mkdirSync(path.join(stage, d), { recursive: true });
    }
    fs.chmodSync(path.join(stage, 'tmp'), 0o1777);
    const used = new Set(['busybox-static']);

    // Tools first, so busybox applets never shadow a real program of the same name (mke2fs, …).
    const elfs: string[] = [];
    for (const t of spec.tools) {
      const dest = path.join(stage, t.to ?? t.from);
      copy(realInTree(pkgs.get(t.pkg).root, t.from), dest);
      used.add(t.pkg);
      elfs.push(dest);
    }
    for (const l of spec.links) symlink(stage, l.path, l.target);
    const agentDest = path.join(stage, 'bin/bootfarm-agent');
    copy(opts.agentBin, agentDest, 0o755);
    elfs.push(agentDest);
    copyLibraries(stage, elfs, libs, used);

    // busybox-static provides the shell and every small tool (udhcpc, ip, wget, insmod, cttyhack, …).
    const busybox = path.join(pkgs.get('busybox-static').root, 'bin/busybox');
    copy(busybox, path.join(stage, 'bin/busybox'), 0o755);
    for (const applet of run(busybox, ['--list-full']).split('\n').map((s) => s.trim()).filter(Boolean).sort()) {
      if (!fs.existsSync(path.join(stage, applet)) && applet !== 'bin/busybox') symlink(stage, applet, '/bin/busybox');
    }

    // Kernel modules: the selection's files plus a depmod run over the trimmed tree (modules.dep/alias for modprobe).
    const modRoot = path.join(stage, 'lib/modules', release);
    for (const m of selection.order) copy(path.join(kroot, 'lib/modules', release, modIndex.path.get(m)!), path.join(modRoot, modIndex.path.get(m)!), 0o644);
    for (const f of ['modules.builtin', 'modules.builtin.modinfo', 'modules.order']) copy(path.join(kroot, 'lib/modules', release, f), path.join(modRoot, f), 0o644);
    run('depmod', ['-b', stage, release]);
    // "name path" per line, dependencies first: /init insmods the paths and needs no modprobe logic of its own.
    fs.writeFileSync(path.join(stage, 'etc/bootfarm/modules.load'), selection.order.map((m) => `${m} ${modIndex.path.get(m)!}`).join('\n') + '\n');

    copyRecipeTree(path.join(RECIPE_DIR, 'rootfs/common'), stage);
    copyRecipeTree(path.join(RECIPE_DIR, 'rootfs', name), stage);
    fs.writeFileSync(path.join(stage, 'etc/bootfarm/image'), `BOOTFARM_IMAGE=${name}\nBOOTFARM_IMAGE_VERSION=${version}\n`);
    fs.writeFileSync(path.join(stage, 'etc/hostname'), `bootfarm-${name}\n`);
    for (const f of ['etc/bootfarm/image', 'etc/bootfarm/modules.load', 'etc/hostname']) fs.chmodSync(path.join(stage, f), 0o644);
    run('mknod', ['-m', '600', path.join(stage, 'dev/console'), 'c', '5', '1']);
    if (!fs.existsSync(path.join(stage, 'init'))) throw new Error(`recipe images/rootfs/${name} has no init`);

    // Reproducible archive: every mtime = SOURCE_DATE_EPOCH, names sorted bytewise, owners 0:0, inode numbers
    // renumbered by --reproducible, and no timestamps in the compressed stream (gzip -n; zstd has none).
    log(`${name}: staged after ${secs()}`);
    run('find', [stage, '-exec', 'touch', '-h', '-d', `@${epoch}`, '{}', '+']);
    fs.mkdirSync(outDir, { recursive: true });
    const cpioFile = path.join(opts.out, `.${name}.cpio`);
    const cpio = spawnSync('bash', ['-c', `set -o pipefail; cd "$1" && find . -print0 | LC_ALL=C sort -z | cpio -o -0 -H newc --reproducible -R 0:0 --quiet > "$2"`, 'cpio', stage, cpioFile], { encoding: 'utf8' });
    if (cpio.status !== 0) throw new Error(`cpio failed: ${cpio.stderr}`);
    const initrd = path.join(outDir, 'initrd.img');
    fs.rmSync(initrd, { force: true });
    if (compression === 'zstd') run('zstd', ['-q', '-f', `-${zstdLevel}`, '-T1', cpioFile, '-o', initrd]);
    else fs.writeFileSync(initrd, execFileSync('gzip', ['-n', '-9', '-c', cpioFile], { maxBuffer: 1 << 30 }));
    const uncompressedSize = fs.statSync(cpioFile).size;
    fs.rmSync(cpioFile);
    const vmlinuz = path.join(outDir, 'vmlinuz');
    copy(path.join(kroot, 'boot', `vmlinuz-${release}`), vmlinuz, 0o644);
    for (const f of [vmlinuz, initrd]) fs.utimesSync(f, epoch, epoch);

    const manifest: Manifest = {
      name,
      version,
      inputsDigest,
      sourceDateEpoch: epoch,
      kernelRelease: release,
      compression,
      cmdline: spec.cmdline,
      kernel: { file: 'vmlinuz', size: fs.statSync(vmlinuz).size, sha256: sha256File(vmlinuz), package: `${kpkg}=${pkgs.get(kpkg).version}` },
      initrd: { file: 'initrd.img', size: fs.statSync(initrd).size, sha256: sha256File(initrd), uncompressedSize },
      agent: { path: '/bin/bootfarm-agent', size: fs.statSync(opts.agentBin).size, sha256: agentSha, elf: isElf(fs.readFileSync(opts.agentBin).subarray(0, 4)) },
      packages: [kpkg, ...[...used].sort()].map((n) => pkgs.get(n)).map((d) => ({ name: d.name, version: d.version, sha256: d.sha256 })),
      modules: { load: selection.order, missing: selection.missing, builtin: selection.builtin },
      files: fileList(stage),
    };
    fs.writeFileSync(manifestFile, JSON.stringify(manifest, null, 2) + '\n');
    // The image pipeline's `image push DIR` takes the default kernel command line from DIR/cmdline.
    fs.writeFileSync(path.join(outDir, 'cmdline'), spec.cmdline + '\n');
    fs.rmSync(stage, { recursive: true, force: true });
    const mib = (n: number): string => `${(n / 1048576).toFixed(1)} MiB`;
    log(`${name}: vmlinuz ${mib(manifest.kernel.size)}, initrd.img ${mib(manifest.initrd.size)} (${compression}, ${mib(uncompressedSize)} unpacked), ${manifest.modules.load.length} modules, ${manifest.files.length} files → ${outDir} (${secs()})`);
    manifests.push(manifest);
  }
  return manifests;
}

// ---------------------------------------------------------------------------------------------------- the CLI

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(import.meta.filename)) {
  const { values } = parseArgs({
    options: {
      agent: { type: 'string', default: process.env.AGENT_BIN ?? path.join(ROOT, 'build/agent/bootfarm-agent') },
      out: { type: 'string', default: path.join(ROOT, 'build/images') },
      cache: { type: 'string', default: path.join(ROOT, 'build/images-cache') },
      image: { type: 'string', multiple: true },
      version: { type: 'string', default: process.env.VERSION || undefined },
      compression: { type: 'string', default: process.env.COMPRESSION ?? 'zstd' },
      'zstd-level': { type: 'string', default: process.env.ZSTD_LEVEL ?? '9' },
      'source-date-epoch': { type: 'string', default: process.env.SOURCE_DATE_EPOCH ?? '1700000000' },
      reuse: { type: 'boolean', default: false },
    },
  });
  const compression = values.compression;
  if (compression !== 'zstd' && compression !== 'gzip') throw new Error(`--compression must be zstd or gzip, not ${compression}`);
  for (const i of values.image ?? []) if (i !== 'stage1' && i !== 'compute') throw new Error(`--image must be stage1 or compute, not ${i}`);
  buildImages({
    out: values.out,
    cache: values.cache,
    agentBin: values.agent,
    images: values.image as ImageName[] | undefined,
    version: values.version,
    compression,
    zstdLevel: Number(values['zstd-level']),
    sourceDateEpoch: Number(values['source-date-epoch']),
    reuse: values.reuse,
  }).catch((err: unknown) => {
    console.error(`images: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
}
