// Typed rendering of GRUB scripts: the Secure Boot path's counterpart of boot/ipxe/script.ts (issue 19 item 1).
// The chain is UEFI PXE/HTTP → shimx64.efi → grubnetx64.efi → /grub/grub.cfg (renderGrubTopConfig) → the per-node
// /grub/<uuid>.cfg (these renderers) → the signed kernel + our initrd.
//
// Quoting (GRUB manual, "Shell-like scripting" → Quoting): inside single quotes every character is literal — no
// `$` expansion, no `;`, no line end — and a single quote cannot be written there at all, not even escaped. So every
// value is emitted as one single-quoted word, and a value that contains a quote (or any control character, which
// would end the line or the command) is refused, never escaped.
//
// Files: every path is written without a device, so GRUB reads it from `$root`, the device it was itself loaded
// from. Measured (docs/secure-boot.md, the rack's Secure Boot scenario): Debian's signed grubnetx64 (2.06-13) has
// `tftp` and `efinet` built in but no `http` module, and under Secure Boot it cannot load one, so `(http,HOST)` paths
// fail there; after UEFI PXE its $root is `(tftp,SERVER)`, and bootfarm's TFTP server answers /grub/*.cfg and
// /images/<digest> with the same bytes as the HTTP routes (server/grub-tftp.ts). A GRUB that was loaded over HTTP
// (and has the module) reads the same paths from `(http,SERVER)` — no host or port in the config either way.

export class GrubValueError extends Error {
  constructor(what: string, value: string) {
    super(`${what} cannot be put into a GRUB script (a single quote or control character): ${JSON.stringify(value.slice(0, 80))}`);
    this.name = 'GrubValueError';
  }
}

/** One GRUB word holding `value` literally. */
export function grubQuote(value: string, what = 'value'): string {
  // eslint-disable-next-line no-control-regex
  if (/['\u0000-\u001f\u007f]/.test(value)) throw new GrubValueError(what, value);
  return `'${value}'`;
}

/** Free text for `echo`: quoted, with anything outside a conservative printable set turned into '?'. Never throws. */
export function grubEchoText(text: string): string {
  return grubQuote(`bootfarm: ${text.replace(/[^A-Za-z0-9 .,:;()/_+=@#%*!?-]/g, '?').slice(0, 200)}`);
}

/** `http://host:port/a/b` → `'/a/b'`: the path on GRUB's $root (see "Files" above); https is refused, as iPXE's. */
export function grubRootPath(url: string, what = 'URL'): string {
  const m = /^http:\/\/([^/]+)(\/.*)?$/.exec(url);
  if (!m) throw new GrubValueError(`${what} (only http:// URLs are served to GRUB)`, url);
  return grubQuote(m[2] ?? '/', what);
}

const header = (comment: string) => `# bootfarm: ${comment.replace(/[^A-Za-z0-9 .,:;()/_+=@#%*!?-]/g, '?').slice(0, 200)}\n`;

/** The top-level grub.cfg every grubnetx64 loads: read the SMBIOS system UUID (type 1, offset 8 — the same UUID iPXE
 * sends to /ipxe/<uuid>) and chain to the per-node config. Measured on the rack: Debian's signed grubnetx64 has the
 * smbios module built in, and its `--get-uuid` prints the UUID as iPXE's ${uuid} does. */
export function renderGrubTopConfig({ baseUrl }: { baseUrl: string }): string {
  const base = baseUrl.replace(/\/+$/, '');
  const retry = grubRootPath(`${base}/grub/grub.cfg`, 'retry URL');
  // the per-node path is built in GRUB from a server-quoted prefix and a variable; "…" lets ${bf_uuid} expand, and
  // the prefix is checked to hold nothing that means something inside double quotes
  const prefix = grubRootPath(`${base}/grub/`, 'base URL').slice(1, -1);
  if (/["$\\]/.test(prefix)) throw new GrubValueError('base URL', base);
  return (
    header('chain to the per-node config by SMBIOS UUID') +
    `set timeout=0\n` +
    `if smbios --type 1 --get-uuid 8 --set bf_uuid; then\n` +
    `  configfile "${prefix}\${bf_uuid}.cfg"\n` +
    `fi\n` +
    `echo ${grubEchoText('this machine reports no SMBIOS UUID (or the per-node config could not be fetched); retrying in 60 s')}\n` +
    `sleep 60\n` +
    `configfile ${retry}\n`
  );
}

export interface GrubKernelInput {
  comment: string;
  kernelUrl: string;
  initrdUrl: string;
  args: string[];
  retryUrl: string;
}

/** Boots a kernel + initrd from $root; on failure says so and fetches the per-node config again. */
export function renderGrubKernelConfig(input: GrubKernelInput): string {
  const kernel = grubRootPath(input.kernelUrl, 'kernel URL');
  const initrd = grubRootPath(input.initrdUrl, 'initrd URL');
  const retry = grubRootPath(input.retryUrl, 'retry URL');
  const args = input.args.map((a) => grubQuote(a, 'kernel argument'));
  return (
    header(input.comment) +
    `if linux ${kernel} ${args.join(' ')}; then\n` +
    `  if initrd ${initrd}; then\n` +
    `    boot\n` +
    `  fi\n` +
    `fi\n` +
    `echo ${grubEchoText('boot failed; retrying in 10 s')}\n` +
    `sleep 10\n` +
    `configfile ${retry}\n`
  );
}

/** A node that must not boot now: say why, then `exit` back to the firmware, which tries the next boot device. */
export function renderGrubHoldConfig({ uuid, state, reason }: { uuid: string; state: string; reason: string }): string {
  return header(`node ${uuid} is ${state}`) + `echo ${grubEchoText(`node ${uuid} is ${state}: ${reason}`)}\n` + `echo ${grubEchoText('not booting; exiting to the next boot device')}\n` + `sleep 5\n` + `exit 1\n`;
}

/** Nothing to boot yet: say so, wait, fetch the per-node config again. */
export function renderGrubRetryConfig({ message, seconds, retryUrl }: { message: string; seconds: number; retryUrl: string }): string {
  const retry = grubRootPath(retryUrl, 'retry URL');
  const s = Math.max(1, Math.floor(seconds));
  return header('waiting') + `echo ${grubEchoText(message)}\n` + `echo ${grubEchoText(`asking again in ${s} s`)}\n` + `sleep ${s}\n` + `configfile ${retry}\n`;
}
