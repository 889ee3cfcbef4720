// The Secure Boot chain's loaders (issue 19 item 1; docs/secure-boot.md), from Debian packages, without installing
// them: shim-signed's postinst writes to the ESP and runs grub-install, which a build machine must not do.
//
//   npx tsx images/secureboot.ts [--out build/secureboot] [--cache build/images-cache]
//
// Same mechanism as the OS images (images/build.ts): the candidate version of each package is fetched once with
// `apt-get download NAME=VERSION` (or taken from the machine's .deb store when its SHA-256 is the one the package
// index names), unpacked with `dpkg-deb -x`, and the two signed binaries are copied out under the names bootfarm's
// boot.secureBoot expects. <out>/manifest.json records the package versions and every file's SHA-256, so a later
// build with the same versions is a no-op, and a changed file is visible in review.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { candidates, PackageCache } from './build.ts';

/** package → (path inside it, name in <out>). grubnetx64 is the netboot image: tftp, http, efinet built in. */
export const SECURE_BOOT_FILES = [
  { pkg: 'shim-signed', from: 'usr/lib/shim/shimx64.efi.signed', to: 'shimx64.efi' },
  { pkg: 'grub-efi-amd64-signed', from: 'usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed', to: 'grubx64.efi' },
] as const;

export interface SecureBootManifest {
  packages: { name: string; version: string; sha256: string }[];
  files: { name: string; from: string; size: number; sha256: string }[];
}

const sha256 = (file: string) => createHash('sha256').update(fs.readFileSync(file)).digest('hex');

export function buildSecureBoot({ out, cache, log = (l: string) => console.log(l) }: { out: string; cache: string; log?: (l: string) => void }): SecureBootManifest {
  const names = [...new Set(SECURE_BOOT_FILES.map((f) => f.pkg))];
  const versions = candidates(names);
  const manifestFile = path.join(out, 'manifest.json');
  if (fs.existsSync(manifestFile)) {
    const old = JSON.parse(fs.readFileSync(manifestFile, 'utf8')) as SecureBootManifest;
    const same = old.packages.length === names.length && old.packages.every((p) => versions.get(p.name) === p.version);
    const intact = old.files.every((f) => fs.existsSync(path.join(out, f.name)) && sha256(path.join(out, f.name)) === f.sha256);
    if (same && intact) {
      log(`secureboot: ${old.packages.map((p) => `${p.name}=${p.version}`).join(' ')} already in ${out}`);
      return old;
    }
  }
  const pkgs = new PackageCache(cache, log);
  pkgs.fetch(versions);
  fs.mkdirSync(out, { recursive: true });
  const files: SecureBootManifest['files'] = [];
  for (const f of SECURE_BOOT_FILES) {
    const src = path.join(pkgs.get(f.pkg).root, f.from);
    if (!fs.existsSync(src)) throw new Error(`${f.pkg}=${versions.get(f.pkg)} has no ${f.from}: did the package layout change?`);
    const dest = path.join(out, f.to);
    fs.copyFileSync(src, `${dest}.tmp`);
    fs.renameSync(`${dest}.tmp`, dest);
    files.push({ name: f.to, from: `${f.pkg}:/${f.from}`, size: fs.statSync(dest).size, sha256: sha256(dest) });
  }
  const manifest: SecureBootManifest = { packages: pkgs.all().map((d) => ({ name: d.name, version: d.version, sha256: d.sha256 })), files };
  fs.writeFileSync(manifestFile, JSON.stringify(manifest, null, 2) + '\n');
  log(`secureboot: ${files.map((f) => `${f.name} (${f.from})`).join(', ')} → ${out}`);
  return manifest;
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(import.meta.filename)) {
  const root = path.resolve(import.meta.dirname, '..');
  const { values } = parseArgs({
    options: {
      out: { type: 'string', default: path.join(root, 'build/secureboot') },
      cache: { type: 'string', default: path.join(root, 'build/images-cache') },
    },
  });
  try {
    buildSecureBoot({ out: path.resolve(values.out), cache: path.resolve(values.cache) });
  } catch (err) {
    console.error(`secureboot: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  }
}
