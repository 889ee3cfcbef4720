// Typed rendering of iPXE scripts. Every value placed in a script is validated or escaped so that a request
// parameter cannot inject iPXE commands: iPXE splits a line on whitespace, runs `||`/`&&` chains, and expands
// ${…} settings anywhere on a line, so values are limited to characters that carry none of that meaning.
// Notes that shape these scripts (measured, FACTS.md):
//  - Debian's iPXE has no HTTPS: URLs are plain http.
//  - Under EFI, iPXE 1.0.0 needs `initrd=<name>` on the kernel command line, so the initrd is fetched with
//    `--name` and named on the command line for both BIOS and EFI.
//  - `${netX/...}` is the NIC iPXE last opened (the one that booted), unlike net0 on multi-NIC servers.

export class ScriptValueError extends Error {
  constructor(what: string, value: string) {
    super(`${what} contains characters not allowed in an iPXE script: ${JSON.stringify(value.slice(0, 80))}`);
    this.name = 'ScriptValueError';
  }
}

const URL_SAFE = /^https?:\/\/[A-Za-z0-9._~:/?#[\]@!&'()*+,;=%-]+$/;
/** kernel parameters: key or key=value, no whitespace, no $ (setting expansion), no quotes or pipes; [ ] for an
 * IPv6 literal in a URL (RFC 3986 §3.2.2: http://[fd00::1]:8080), which neither iPXE nor Linux treats specially */
const ARG_SAFE = /^[A-Za-z0-9._~:/@+,=%[\]-]+$/;

export function safeUrl(url: string, what = 'URL'): string {
  if (!URL_SAFE.test(url) || url.includes('$')) throw new ScriptValueError(what, url);
  return url;
}

export function safeArg(arg: string, what = 'kernel argument'): string {
  if (!ARG_SAFE.test(arg)) throw new ScriptValueError(what, arg);
  return arg;
}

/** Splits a command line and validates each argument. */
export function safeCmdline(cmdline: string | string[]): string[] {
  const args = Array.isArray(cmdline) ? cmdline : cmdline.split(/\s+/);
  return args.filter(Boolean).map((a) => safeArg(a));
}

/** Free text for `echo`: anything outside a conservative printable set becomes '?'. Never throws. */
export function echoText(text: string): string {
  return text.replace(/[^A-Za-z0-9 .,:;()'/_+=@#%*!?-]/g, '?').slice(0, 200);
}

const header = (comment: string) => `#!ipxe\n# bootfarm: ${echoText(comment)}\n`;

/** The first script every iPXE client fetches (DHCP hands out /boot.ipxe to user class iPXE): it chains to the
 * per-node script with what iPXE knows about the machine. `:uristring` percent-encodes the string settings;
 * the MAC uses `:hexhyp`, because iPXE 1.0.0 (Debian's) formats a MAC's raw bytes under `:uristring`, and the
 * NUL byte that yields ends the whole command line (measured in the e2e rack). */
export function renderBootScript({ baseUrl }: { baseUrl: string }): string {
  const base = safeUrl(baseUrl.replace(/\/+$/, ''), 'base URL');
  const q = [
    'mac=${netX/mac:hexhyp}',
    'serial=${serial:uristring}',
    'manufacturer=${manufacturer:uristring}',
    'product=${product:uristring}',
    'platform=${platform:uristring}',
    'buildarch=${buildarch:uristring}',
  ].join('&');
  return (
    header('chain to the per-node script by SMBIOS UUID') +
    `isset \${uuid} || goto nouuid\n` +
    `chain --autofree ${base}/ipxe/\${uuid}?${q} || goto failed\n` +
    `exit\n` +
    `:nouuid\n` +
    `echo bootfarm: this machine reports no SMBIOS UUID; it cannot be identified. Retrying in 60 s.\n` +
    `sleep 60\n` +
    `chain --autofree ${base}/boot.ipxe\n` +
    `:failed\n` +
    `echo bootfarm: could not fetch the node script from ${base}; retrying in 10 s\n` +
    `sleep 10\n` +
    `chain --autofree ${base}/boot.ipxe\n`
  );
}

export interface KernelBootInput {
  comment: string;
  kernelUrl: string;
  initrdUrl: string;
  /** kernel command line arguments, without initrd= (added here) */
  args: string[];
  /** where to start over if a fetch fails */
  retryUrl: string;
}

/** Boots a kernel + initrd over HTTP: stage-1 (inventory OS). */
export function renderKernelScript(input: KernelBootInput): string {
  const kernel = safeUrl(input.kernelUrl, 'kernel URL');
  const initrd = safeUrl(input.initrdUrl, 'initrd URL');
  const retry = safeUrl(input.retryUrl, 'retry URL');
  const args = ['initrd=initrd.img', ...input.args.map((a) => safeArg(a)), 'BOOTIF=01-${netX/mac:hexhyp}'];
  return (
    header(input.comment) +
    `kernel ${kernel} ${args.join(' ')} || goto failed\n` +
    `initrd --name initrd.img ${initrd} || goto failed\n` +
    `boot || goto failed\n` +
    `:failed\n` +
    `echo bootfarm: boot failed; retrying in 10 s\n` +
    `sleep 10\n` +
    `chain --autofree ${retry}\n`
  );
}

/** A node that must not boot now (quarantined, maintenance, retired): say why, then exit to the next boot device. */
export function renderHoldScript({ uuid, state, reason }: { uuid: string; state: string; reason: string }): string {
  return header(`node ${uuid} is ${state}`) + `echo bootfarm: node ${echoText(uuid)} is ${echoText(state)}: ${echoText(reason)}\n` + `echo bootfarm: not booting; exiting to the next boot device\n` + `sleep 5\n` + `exit 1\n`;
}

/** Nothing to boot yet (e.g. no stage-1 image published): say so and ask again later. */
export function renderRetryScript({ message, seconds, retryUrl }: { message: string; seconds: number; retryUrl: string }): string {
  const retry = safeUrl(retryUrl, 'retry URL');
  const s = Math.max(1, Math.floor(seconds));
  return header('waiting') + `echo bootfarm: ${echoText(message)}\n` + `echo bootfarm: asking again in ${s} s\n` + `sleep ${s}\n` + `chain --autofree ${retry}\n`;
}
