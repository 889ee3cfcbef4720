// Typed rendering of GRUB scripts: the Secure Boot path's counterpart of boot/ipxe/script.ts (issue 19 item 1).
// The chain is UEFI PXE/HTTP → shimx64.efi → grubnetx64.efi → /grub/grub.cfg (renderGrubTopConfig) → the per-node
// /grub/<uuid>.cfg (these renderers) → the signed kernel + our initrd.
//
// Quoting (GRUB manual, "Shell-like scripting" → Quoting): inside single quotes every character is literal — no
// `$` expansion, no `;`, no line end — and a single quote cannot be written there at all, not even escaped. So every
// value is emitted as one single-quoted word, and a value that contains a quote (or any control character, which
// would end the line or the command) is refused, never escaped.
//
// Devices: files on our HTTP server are named `(http,HOST)/path`; a non-default port is written `(http,HOST:PORT)`.
// ASSUMED, not measured here: the port form needs a GRUB whose net code parses it (upstream 2.12); with GRUB 2.06
// serve the boot routes on port 80 (http.publicUrl without a port).

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

/** `http://host:port/a/b` → `(http,host:port)/a/b`; https is refused (Debian's signed GRUB speaks plain http). */
export function grubHttpPath(url: string, what = 'URL'): string {
  const m = /^http:\/\/([^/]+)(\/.*)?$/.exec(url);
  if (!m) throw new GrubValueError(`${what} (only http:// URLs can be fetched by GRUB)`, url);
  const [, authority, path = '/'] = m;
  // `,` and `)` would end the device name early
  if (/[,()\s]/.test(authority!)) throw new GrubValueError(`${what} host`, url);
  return grubQuote(`(http,${authority})${path}`, what);
}

const header = (comment: string) => `# bootfarm: ${comment.replace(/[^A-Za-z0-9 .,:;()/_+=@#%*!?-]/g, '?').slice(0, 200)}\n`;

/** The top-level grub.cfg every grubnetx64 loads: read the SMBIOS system UUID (type 1, offset 8 — the same UUID iPXE
 * sends to /ipxe/<uuid>) and chain to the per-node config. The GRUB manual documents `smbios --type 1 --get-uuid 8
 * --set VAR`; that Debian's signed grubnetx64 image has the smbios module built in is ASSUMED (not checked here). */
export function renderGrubTopConfig({ baseUrl }: { baseUrl: string }): string {
  const base = baseUrl.replace(/\/+$/, '');
  const retry = grubHttpPath(`${base}/grub/grub.cfg`, 'retry URL');
  // the per-node path is built in GRUB from a server-quoted prefix and a variable; "…" lets ${bf_uuid} expand, and
  // the prefix is checked to hold nothing that means something inside double quotes
  const prefix = grubHttpPath(`${base}/grub/`, 'base URL').slice(1, -1);
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

/** Boots a kernel + initrd over HTTP; on failure says so and fetches the per-node config again. */
export function renderGrubKernelConfig(input: GrubKernelInput): string {
  const kernel = grubHttpPath(input.kernelUrl, 'kernel URL');
  const initrd = grubHttpPath(input.initrdUrl, 'initrd URL');
  const retry = grubHttpPath(input.retryUrl, 'retry URL');
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
  const retry = grubHttpPath(retryUrl, 'retry URL');
  const s = Math.max(1, Math.floor(seconds));
  return header('waiting') + `echo ${grubEchoText(message)}\n` + `echo ${grubEchoText(`asking again in ${s} s`)}\n` + `sleep ${s}\n` + `configfile ${retry}\n`;
}
